//! Per-key limits: admission (rate, windows, budgets), the concurrency permit, usage
//! recording and seeding from the log store.

use std::sync::Arc;

use serde::Serialize;
use time::OffsetDateTime;

use super::shared::{RemoteKey, window_frees_in, window_sum};
use super::window::RollingSum;
use super::{CLEAN, Limiter, RPM_WINDOW, USAGE_BUCKET, local_share, lock};
use crate::FastMap;
use crate::domain::ClientKey;
use crate::domain::key::KeyLimits;

/// Why a request was refused, and whether waiting helps.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    /// `requests_per_minute`, `concurrent_requests`, `tokens_per_window`, …
    pub limit: &'static str,
    pub message: String,
    /// Seconds until it would be accepted again; `None` when waiting does not help.
    pub retry_after: Option<u64>,
}

#[derive(Debug)]
pub(super) struct KeyState {
    recent: RollingSum,
    in_flight: u32,
    pub(super) requests: RollingSum,
    pub(super) tokens: RollingSum,
    pub(super) cost: RollingSum,
    pub(super) day: time::Date,
    pub(super) day_cost: f64,
    pub(super) total_cost: f64,
    /// The limits the window sums were seeded for; a change re-seeds them.
    pub(super) seeded_for: Option<KeyLimits>,
    /// The oldest minute whose usage changed since the last export ([`CLEAN`]: none).
    pub(super) dirty_from: i64,
    /// What the cluster's other instances used, as of the last sync.
    pub(super) remote: Option<Box<RemoteKey>>,
}

impl KeyState {
    fn new(today: time::Date) -> Self {
        Self {
            recent: RollingSum::new(1),
            in_flight: 0,
            requests: RollingSum::new(USAGE_BUCKET),
            tokens: RollingSum::new(USAGE_BUCKET),
            cost: RollingSum::new(USAGE_BUCKET),
            day: today,
            day_cost: 0.0,
            total_cost: 0.0,
            seeded_for: None,
            dirty_from: CLEAN,
            remote: None,
        }
    }

    /// Usage of the minute holding `at_unix` changed.
    fn touched(&mut self, at_unix: i64) {
        self.dirty_from = self.dirty_from.min(at_unix.div_euclid(USAGE_BUCKET));
    }

    fn roll_day(&mut self, today: time::Date) {
        if self.day != today {
            self.day = today;
            self.day_cost = 0.0;
        }
    }
}

/// The longest rolling window a key's limits need, in seconds.
#[must_use]
pub fn key_horizon(limits: &KeyLimits) -> i64 {
    [
        &limits.tokens_per_window,
        &limits.requests_per_window,
        &limits.cost_per_window,
    ]
    .into_iter()
    .flatten()
    .map(|w| i64::try_from(w.window_seconds).unwrap_or(i64::MAX))
    .max()
    .unwrap_or(0)
}

/// The state of a key, created on first use (looked up without allocating on the hot path).
pub(super) fn key_state<'a>(
    keys: &'a mut FastMap<String, KeyState>,
    id: &str,
    today: time::Date,
) -> &'a mut KeyState {
    if !keys.contains_key(id) {
        keys.insert(id.to_string(), KeyState::new(today));
    }
    keys.get_mut(id)
        .unwrap_or_else(|| unreachable!("inserted above"))
}

fn seconds_to_midnight(now: OffsetDateTime) -> u64 {
    let next = now
        .date()
        .next_day()
        .map_or(now, |d| d.midnight().assume_utc());
    u64::try_from((next - now).whole_seconds())
        .unwrap_or(1)
        .max(1)
}

/// How a per-minute or concurrency refusal names this instance's share (nothing for one).
fn share_note(limit: u32, instances: usize) -> String {
    if instances > 1 {
        format!(
            " across {instances} instances ({} on this one)",
            local_share(limit, instances)
        )
    } else {
        String::new()
    }
}

fn positive(seconds: i64) -> u64 {
    u64::try_from(seconds).unwrap_or(1).max(1)
}

/// Holds one concurrency slot of a key; released when dropped.
pub struct KeyPermit {
    limiter: Arc<Limiter>,
    key_id: String,
}

impl std::fmt::Debug for KeyPermit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyPermit")
            .field("key_id", &self.key_id)
            .finish()
    }
}

impl Drop for KeyPermit {
    fn drop(&mut self) {
        if let Some(state) = lock(&self.limiter.keys).get_mut(&self.key_id) {
            state.in_flight = state.in_flight.saturating_sub(1);
        }
    }
}

/// Current figures of a key, for `GET /admin/api/keys/{id}/usage`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyUsage {
    pub requests_last_minute: u64,
    pub in_flight: u32,
    /// Dollars, as decimal strings in JSON (no float noise).
    #[serde(serialize_with = "crate::domain::money::serialize_usd")]
    pub cost_today: f64,
    #[serde(serialize_with = "crate::domain::money::serialize_usd")]
    pub cost_total: f64,
    pub windows: Vec<WindowUsage>,
    pub limits: KeyLimits,
    /// When the current UTC day ends (the daily cost resets).
    pub day_resets_at: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WindowUsage {
    pub limit: &'static str,
    pub used: f64,
    pub max: f64,
    pub window_seconds: u64,
    /// Seconds until the oldest counted use leaves the window.
    pub frees_in_seconds: u64,
}

/// What the log store says about a key, to seed its counters.
#[derive(Debug, Clone, Default)]
pub struct KeySeed {
    /// (unix seconds, total tokens, cost) of each request inside the key's longest window
    pub recent: Vec<crate::store::sqlite::KeyRequest>,
    pub cost_today: f64,
    pub cost_total: f64,
}

impl Limiter {
    /// Check every limit of `key` and count the request; the permit holds its concurrency slot.
    pub fn admit_key(self: &Arc<Self>, key: &ClientKey) -> Result<KeyPermit, Refusal> {
        let now = self.clock.now();
        let t = now.unix_timestamp();
        let limits = &key.limits;
        let instances = self.live_instances();
        let mut keys = lock(&self.keys);
        let state = key_state(&mut keys, &key.id, now.date());
        state.roll_day(now.date());
        let remote = state.remote.as_deref();
        if let Some(max) = limits.cost_total
            && state.total_cost + remote.map_or(0.0, |r| r.total_cost) >= max
        {
            return Err(Refusal {
                limit: "cost_total",
                message: format!(
                    "this API key has used its total budget of ${max:.2}; ask the relay's admin to raise it"
                ),
                retry_after: None,
            });
        }
        if let Some(max) = limits.cost_per_day
            && state.day_cost + remote.map_or(0.0, |r| r.day_cost(state.day)) >= max
        {
            return Err(Refusal {
                limit: "cost_per_day",
                message: format!(
                    "this API key has used its daily budget of ${max:.2}; it resets at midnight UTC"
                ),
                retry_after: Some(seconds_to_midnight(now)),
            });
        }
        let windows = [
            (
                "cost_per_window",
                &limits.cost_per_window,
                &state.cost,
                remote.map(|r| &r.cost),
                "cost",
            ),
            (
                "tokens_per_window",
                &limits.tokens_per_window,
                &state.tokens,
                remote.map(|r| &r.tokens),
                "tokens",
            ),
            (
                "requests_per_window",
                &limits.requests_per_window,
                &state.requests,
                remote.map(|r| &r.requests),
                "requests",
            ),
        ];
        for (name, limit, sum, others, what) in windows {
            if let Some(limit) = limit {
                let window = i64::try_from(limit.window_seconds).unwrap_or(i64::MAX);
                if window_sum(sum, others, t, window) >= limit.limit {
                    return Err(Refusal {
                        limit: name,
                        message: format!(
                            "this API key has reached its limit of {} {what} per {} s; retry later",
                            limit.limit, limit.window_seconds
                        ),
                        retry_after: Some(positive(window_frees_in(sum, others, t, window))),
                    });
                }
            }
        }
        if let Some(rpm) = limits.requests_per_minute
            && state.recent.sum(t, RPM_WINDOW) >= f64::from(local_share(rpm, instances))
        {
            return Err(Refusal {
                limit: "requests_per_minute",
                message: format!(
                    "this API key may make {rpm} requests per minute{}; retry later",
                    share_note(rpm, instances)
                ),
                retry_after: Some(positive(
                    state.recent.seconds_until_oldest_expires(t, RPM_WINDOW),
                )),
            });
        }
        if let Some(max) = limits.concurrent_requests
            && state.in_flight >= local_share(max, instances)
        {
            return Err(Refusal {
                limit: "concurrent_requests",
                message: format!(
                    "this API key may have {max} requests in flight at once{}; retry when one has finished",
                    share_note(max, instances)
                ),
                retry_after: Some(1),
            });
        }
        state.recent.add(t, 1.0);
        state.recent.prune(t, RPM_WINDOW);
        state.requests.add(t, 1.0);
        state.touched(t);
        state.in_flight += 1;
        Ok(KeyPermit {
            limiter: Arc::clone(self),
            key_id: key.id.clone(),
        })
    }

    /// Count what a finished request used (tokens, cost) at the time it started.
    pub fn record_key_usage(
        &self,
        key: &ClientKey,
        started: OffsetDateTime,
        tokens: u64,
        cost: f64,
    ) {
        let now = self.clock.now();
        let mut keys = lock(&self.keys);
        let state = key_state(&mut keys, &key.id, now.date());
        state.roll_day(now.date());
        let t = started.unix_timestamp();
        #[expect(
            clippy::cast_precision_loss,
            reason = "token counts are far below 2^52"
        )]
        state.tokens.add(t, tokens as f64);
        state.cost.add(t, cost);
        if started.date() == state.day {
            state.day_cost += cost;
        }
        state.total_cost += cost;
        state.touched(t);
        let horizon = key_horizon(&key.limits).max(RPM_WINDOW);
        let now_unix = now.unix_timestamp();
        state.requests.prune(now_unix, horizon);
        state.tokens.prune(now_unix, horizon);
        state.cost.prune(now_unix, horizon);
    }

    /// Whether the key's window sums were seeded for its current limits.
    #[must_use]
    pub fn key_needs_seed(&self, key: &ClientKey) -> bool {
        lock(&self.keys)
            .get(&key.id)
            .is_none_or(|s| s.seeded_for.as_ref() != Some(&key.limits))
    }

    /// Replace a key's durable counters with figures read from the log store (at start, and
    /// when its limits change). In-flight requests and the last minute's count are kept.
    pub fn seed_key(&self, key: &ClientKey, seed: &KeySeed) {
        let now = self.clock.now();
        let mut keys = lock(&self.keys);
        let state = key_state(&mut keys, &key.id, now.date());
        state.requests = RollingSum::new(USAGE_BUCKET);
        state.tokens = RollingSum::new(USAGE_BUCKET);
        state.cost = RollingSum::new(USAGE_BUCKET);
        for (at, tokens, cost) in &seed.recent {
            state.requests.add(*at, 1.0);
            #[expect(
                clippy::cast_precision_loss,
                reason = "token counts are far below 2^52"
            )]
            state.tokens.add(*at, *tokens as f64);
            state.cost.add(*at, *cost);
        }
        state.day = now.date();
        state.day_cost = seed.cost_today;
        state.total_cost = seed.cost_total;
        state.seeded_for = Some(key.limits.clone());
        // Publish every figure again: they were rebuilt from the log.
        state.dirty_from = i64::MIN;
    }

    #[must_use]
    pub fn key_usage(&self, key: &ClientKey) -> KeyUsage {
        let now = self.clock.now();
        let t = now.unix_timestamp();
        let mut keys = lock(&self.keys);
        let state = key_state(&mut keys, &key.id, now.date());
        state.roll_day(now.date());
        let limits = &key.limits;
        let remote = state.remote.as_deref();
        let mut windows = Vec::new();
        for (name, limit, sum, others) in [
            (
                "requests_per_window",
                &limits.requests_per_window,
                &state.requests,
                remote.map(|r| &r.requests),
            ),
            (
                "tokens_per_window",
                &limits.tokens_per_window,
                &state.tokens,
                remote.map(|r| &r.tokens),
            ),
            (
                "cost_per_window",
                &limits.cost_per_window,
                &state.cost,
                remote.map(|r| &r.cost),
            ),
        ] {
            if let Some(limit) = limit {
                let window = i64::try_from(limit.window_seconds).unwrap_or(i64::MAX);
                windows.push(WindowUsage {
                    limit: name,
                    used: window_sum(sum, others, t, window),
                    max: limit.limit,
                    window_seconds: limit.window_seconds,
                    frees_in_seconds: u64::try_from(window_frees_in(sum, others, t, window))
                        .unwrap_or(0),
                });
            }
        }
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "a count of requests"
        )]
        let requests_last_minute = state.recent.sum(t, RPM_WINDOW) as u64;
        KeyUsage {
            requests_last_minute,
            in_flight: state.in_flight,
            cost_today: state.day_cost + remote.map_or(0.0, |r| r.day_cost(state.day)),
            cost_total: state.total_cost + remote.map_or(0.0, |r| r.total_cost),
            windows,
            limits: limits.clone(),
            day_resets_at: now
                .date()
                .next_day()
                .map(|d| crate::domain::format_time(d.midnight().assume_utc()))
                .unwrap_or_default(),
        }
    }
}
