//! Limits, enforced in memory on the request path and durable across restarts.
//!
//! - Per key: requests per minute, concurrent requests, requests/tokens/cost per rolling window,
//!   cost per UTC day, total cost. [`Limiter::admit_key`] checks and counts a request and returns
//!   a [`KeyPermit`] that holds its concurrency slot until dropped — on every path: success,
//!   error, client disconnect, panic.
//! - Per channel: cc-bridge quotas (requests or credit, fixed or rolling periods, model filter)
//!   and `rateLimitRpm` with an optional bounded queue.
//! - Sticky sessions: a conversation stays on the channel that served it first.
//!
//! Nothing here touches a disk. The request-log rows are the durable record: they are
//! group-committed together with the daily usage roll-ups, and [`Limiter::seed_key`] /
//! [`Limiter::seed_channel`] rebuild the counters from them at start. A hard kill therefore loses
//! at most the rows of the last group commit (≤ 100 ms).

pub mod clock;
pub mod quota;
pub mod seed;
pub mod window;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde::Serialize;
use time::OffsetDateTime;

pub use clock::{Clock, ManualClock, SystemClock};
use quota::QuotaPeriod;
use window::RollingSum;

use crate::FastMap;
use crate::domain::key::KeyLimits;
use crate::domain::{Channel, ClientKey};

const RPM_WINDOW: i64 = 60;
/// Rolling windows of tokens, requests and cost keep one-minute buckets.
const USAGE_BUCKET: i64 = 60;

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
struct KeyState {
    recent: RollingSum,
    in_flight: u32,
    requests: RollingSum,
    tokens: RollingSum,
    cost: RollingSum,
    day: time::Date,
    day_cost: f64,
    total_cost: f64,
    /// The limits the window sums were seeded for; a change re-seeds them.
    seeded_for: Option<KeyLimits>,
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
        }
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

#[derive(Debug)]
struct ChannelState {
    recent: RollingSum,
    queued: u32,
    quota_used: f64,
    quota_period_start: i64,
    /// A manual reset (or an imported `lastResetAt`): usage before it does not count.
    quota_floor: i64,
    quota_rolling: RollingSum,
    seeded_for: Option<String>,
}

impl Default for ChannelState {
    fn default() -> Self {
        Self {
            recent: RollingSum::new(1),
            queued: 0,
            quota_used: 0.0,
            quota_period_start: i64::MIN,
            quota_floor: i64::MIN,
            quota_rolling: RollingSum::new(USAGE_BUCKET),
            seeded_for: None,
        }
    }
}

/// A fingerprint of the quota fields, so an edit re-seeds the counter.
fn quota_signature(channel: &Channel) -> String {
    format!(
        "{}|{:?}|{:?}|{:?}|{}|{}|{:?}",
        channel.quota_type,
        channel.quota_limit,
        channel.quota_reset_at,
        channel.quota_reset_interval,
        channel.quota_reset_unit,
        channel.quota_reset_mode,
        channel.quota_models
    )
}

pub struct Limiter {
    clock: Arc<dyn Clock>,
    keys: Mutex<FastMap<String, KeyState>>,
    channels: Mutex<FastMap<String, ChannelState>>,
    /// `key id / session id` → (channel id, expires at unix seconds)
    sessions: Mutex<HashMap<String, (String, i64)>>,
}

impl std::fmt::Debug for Limiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limiter").finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The state of a key, created on first use (looked up without allocating on the hot path).
fn key_state<'a>(
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

fn channel_state<'a>(
    channels: &'a mut FastMap<String, ChannelState>,
    id: &str,
) -> &'a mut ChannelState {
    if !channels.contains_key(id) {
        channels.insert(id.to_string(), ChannelState::default());
    }
    channels
        .get_mut(id)
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
    pub cost_today: f64,
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

/// Current figures of a channel, for `GET /admin/api/channels/{id}/usage`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChannelUsage {
    pub requests_last_minute: u64,
    pub rate_limit_rpm: u32,
    pub queued: u32,
    pub quota: Option<QuotaUsage>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QuotaUsage {
    /// `requests` or `credit` (USD).
    pub kind: String,
    pub used: f64,
    pub limit: f64,
    pub mode: String,
    pub period_start: Option<String>,
    pub resets_at: Option<String>,
}

fn rfc3339(unix: i64) -> Option<String> {
    OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .map(crate::domain::format_time)
}

impl Limiter {
    #[must_use]
    pub fn new(clock: Arc<dyn Clock>) -> Arc<Self> {
        Arc::new(Self {
            clock,
            keys: Mutex::new(FastMap::default()),
            channels: Mutex::new(FastMap::default()),
            sessions: Mutex::new(HashMap::new()),
        })
    }

    #[must_use]
    pub fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }

    // ---- keys -------------------------------------------------------------------------------

    /// Check every limit of `key` and count the request; the permit holds its concurrency slot.
    pub fn admit_key(self: &Arc<Self>, key: &ClientKey) -> Result<KeyPermit, Refusal> {
        let now = self.clock.now();
        let t = now.unix_timestamp();
        let limits = &key.limits;
        let mut keys = lock(&self.keys);
        let state = key_state(&mut keys, &key.id, now.date());
        state.roll_day(now.date());
        if let Some(max) = limits.cost_total
            && state.total_cost >= max
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
            && state.day_cost >= max
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
                "cost",
            ),
            (
                "tokens_per_window",
                &limits.tokens_per_window,
                &state.tokens,
                "tokens",
            ),
            (
                "requests_per_window",
                &limits.requests_per_window,
                &state.requests,
                "requests",
            ),
        ];
        for (name, limit, sum, what) in windows {
            if let Some(limit) = limit {
                let window = i64::try_from(limit.window_seconds).unwrap_or(i64::MAX);
                if sum.sum(t, window) >= limit.limit {
                    return Err(Refusal {
                        limit: name,
                        message: format!(
                            "this API key has reached its limit of {} {what} per {} s; retry later",
                            limit.limit, limit.window_seconds
                        ),
                        retry_after: Some(positive(sum.seconds_until_oldest_expires(t, window))),
                    });
                }
            }
        }
        if let Some(rpm) = limits.requests_per_minute
            && state.recent.sum(t, RPM_WINDOW) >= f64::from(rpm)
        {
            return Err(Refusal {
                limit: "requests_per_minute",
                message: format!("this API key may make {rpm} requests per minute; retry later"),
                retry_after: Some(positive(
                    state.recent.seconds_until_oldest_expires(t, RPM_WINDOW),
                )),
            });
        }
        if let Some(max) = limits.concurrent_requests
            && state.in_flight >= max
        {
            return Err(Refusal {
                limit: "concurrent_requests",
                message: format!(
                    "this API key may have {max} requests in flight at once; retry when one has finished"
                ),
                retry_after: Some(1),
            });
        }
        state.recent.add(t, 1.0);
        state.recent.prune(t, RPM_WINDOW);
        state.requests.add(t, 1.0);
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
    }

    #[must_use]
    pub fn key_usage(&self, key: &ClientKey) -> KeyUsage {
        let now = self.clock.now();
        let t = now.unix_timestamp();
        let mut keys = lock(&self.keys);
        let state = key_state(&mut keys, &key.id, now.date());
        state.roll_day(now.date());
        let limits = &key.limits;
        let mut windows = Vec::new();
        for (name, limit, sum) in [
            (
                "requests_per_window",
                &limits.requests_per_window,
                &state.requests,
            ),
            (
                "tokens_per_window",
                &limits.tokens_per_window,
                &state.tokens,
            ),
            ("cost_per_window", &limits.cost_per_window, &state.cost),
        ] {
            if let Some(limit) = limit {
                let window = i64::try_from(limit.window_seconds).unwrap_or(i64::MAX);
                windows.push(WindowUsage {
                    limit: name,
                    used: sum.sum(t, window),
                    max: limit.limit,
                    window_seconds: limit.window_seconds,
                    frees_in_seconds: u64::try_from(sum.seconds_until_oldest_expires(t, window))
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
            cost_today: state.day_cost,
            cost_total: state.total_cost,
            windows,
            limits: limits.clone(),
            day_resets_at: now
                .date()
                .next_day()
                .map(|d| crate::domain::format_time(d.midnight().assume_utc()))
                .unwrap_or_default(),
        }
    }

    // ---- channels ---------------------------------------------------------------------------

    fn with_channel<T>(
        &self,
        channel: &Channel,
        f: impl FnOnce(&mut ChannelState, Option<QuotaPeriod>, i64) -> T,
    ) -> T {
        let now = self.clock.now();
        let t = now.unix_timestamp();
        let period = quota::period(channel, now);
        let mut channels = lock(&self.channels);
        let state = channel_state(&mut channels, &channel.id);
        if let Some(period) = &period
            && !period.rolling
            && period.start != state.quota_period_start
        {
            // A new fixed period began: the counter starts again.
            if state.quota_period_start != i64::MIN {
                state.quota_used = 0.0;
            }
            state.quota_period_start = period.start;
        }
        f(state, period, t)
    }

    /// `Err(reason)` while the channel is over its quota.
    pub fn channel_quota_check(&self, channel: &Channel) -> Result<(), String> {
        self.with_channel(channel, |state, period, t| {
            let Some(period) = period else { return Ok(()) };
            let used = if period.rolling {
                state.quota_rolling.sum(t, period.length)
            } else {
                state.quota_used
            };
            if used < period.limit {
                return Ok(());
            }
            let when = if period.rolling {
                rfc3339(
                    t + state
                        .quota_rolling
                        .seconds_until_oldest_expires(t, period.length),
                )
            } else {
                period.end.and_then(rfc3339)
            };
            Err(match when {
                Some(when) => format!("over its quota ({used} of {}) until {when}", period.limit),
                None => format!("over its quota ({used} of {})", period.limit),
            })
        })
    }

    /// Count a finished request against the channel's quota (successful requests only).
    pub fn record_channel_usage(
        &self,
        channel: &Channel,
        model: &str,
        started: OffsetDateTime,
        cost: f64,
    ) {
        if !quota::counts_model(channel, model) {
            return;
        }
        self.with_channel(channel, |state, period, _| {
            let Some(period) = period else { return };
            let amount = if period.credit { cost } else { 1.0 };
            let at = started.unix_timestamp();
            if period.rolling {
                state.quota_rolling.add(at, amount);
                state.quota_rolling.prune(at, period.length);
            } else if at >= state.quota_floor {
                state.quota_used += amount;
            }
        });
    }

    #[must_use]
    pub fn channel_needs_seed(&self, channel: &Channel) -> bool {
        let signature = quota_signature(channel);
        lock(&self.channels)
            .get(&channel.id)
            .is_none_or(|s| s.seeded_for.as_deref() != Some(signature.as_str()))
    }

    /// The window a channel's seed must cover: rows since this instant count.
    #[must_use]
    pub fn channel_seed_since(
        &self,
        channel: &Channel,
        floor: Option<OffsetDateTime>,
    ) -> Option<OffsetDateTime> {
        let now = self.clock.now();
        let period = quota::period(channel, now)?;
        let start = if period.rolling {
            now.unix_timestamp() - period.length
        } else {
            period.start
        };
        let start = floor.map_or(start, |f| start.max(f.unix_timestamp()));
        OffsetDateTime::from_unix_timestamp(start).ok()
    }

    /// Rebuild a channel's quota counter: `baseline` (imported or manually reset usage, counted
    /// from `floor`) plus the rows since the period start.
    pub fn seed_channel(
        &self,
        channel: &Channel,
        baseline: f64,
        floor: Option<OffsetDateTime>,
        rows: &[(i64, String, f64)],
    ) {
        let signature = quota_signature(channel);
        self.with_channel(channel, |state, period, _| {
            state.quota_floor = floor.map_or(i64::MIN, OffsetDateTime::unix_timestamp);
            state.quota_used = 0.0;
            state.quota_rolling = RollingSum::new(USAGE_BUCKET);
            if let Some(period) = period {
                if period.rolling {
                    state.quota_rolling.add(state.quota_floor.max(0), baseline);
                } else if state.quota_floor >= period.start {
                    state.quota_used = baseline;
                }
                for (at, model, cost) in rows {
                    if !quota::counts_model(channel, model) {
                        continue;
                    }
                    let amount = if period.credit { *cost } else { 1.0 };
                    if period.rolling {
                        state.quota_rolling.add(*at, amount);
                    } else if *at >= period.start && *at >= state.quota_floor {
                        state.quota_used += amount;
                    }
                }
            }
            state.seeded_for = Some(signature);
        });
    }

    /// Start a channel's quota afresh now (admin reset).
    pub fn reset_channel_quota(&self, channel: &Channel) -> OffsetDateTime {
        let now = self.clock.now();
        self.seed_channel(channel, 0.0, Some(now), &[]);
        now
    }

    /// Take a slot of the channel's `rateLimitRpm`; with `queueEnabled`, wait for one (up to
    /// `queueTimeout`, at most `max_queue` waiting). `Err(reason)` when none can be had.
    pub async fn acquire_channel_slot(
        &self,
        channel: &Channel,
        max_queue: u32,
    ) -> Result<(), String> {
        let rpm = channel.rate_limit_rpm;
        if rpm == 0 {
            return Ok(());
        }
        let timeout = Duration::from_secs(channel.queue_timeout.unwrap_or(60));
        let started = std::time::Instant::now();
        let mut queued = false;
        let result = loop {
            let wait = {
                let t = self.clock.now().unix_timestamp();
                let mut channels = lock(&self.channels);
                let state = channel_state(&mut channels, &channel.id);
                if state.recent.sum(t, RPM_WINDOW) < f64::from(rpm) {
                    state.recent.add(t, 1.0);
                    state.recent.prune(t, RPM_WINDOW);
                    if queued {
                        state.queued = state.queued.saturating_sub(1);
                    }
                    return Ok(());
                }
                if !channel.queue_enabled {
                    break Err(format!("at its rate limit of {rpm} requests per minute"));
                }
                if !queued {
                    if state.queued >= max_queue {
                        break Err(format!(
                            "at its rate limit of {rpm} requests per minute and its queue is full"
                        ));
                    }
                    state.queued += 1;
                    queued = true;
                }
                state.recent.seconds_until_oldest_expires(t, RPM_WINDOW)
            };
            if started.elapsed() >= timeout {
                break Err(format!(
                    "at its rate limit of {rpm} requests per minute (waited {} s in its queue)",
                    timeout.as_secs()
                ));
            }
            // Short naps: the slot is re-checked against the clock, which tests control.
            let nap = Duration::from_secs(u64::try_from(wait).unwrap_or(1))
                .min(Duration::from_millis(50));
            tokio::time::sleep(nap).await;
        };
        if queued && let Some(state) = lock(&self.channels).get_mut(&channel.id) {
            state.queued = state.queued.saturating_sub(1);
        }
        result
    }

    #[must_use]
    pub fn channel_usage(&self, channel: &Channel) -> ChannelUsage {
        self.with_channel(channel, |state, period, t| {
            #[expect(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                reason = "a count of requests"
            )]
            let requests_last_minute = state.recent.sum(t, RPM_WINDOW) as u64;
            let quota = period.map(|p| QuotaUsage {
                kind: if p.credit {
                    "credit".into()
                } else {
                    "requests".into()
                },
                used: if p.rolling {
                    state.quota_rolling.sum(t, p.length)
                } else {
                    state.quota_used
                },
                limit: p.limit,
                mode: if p.rolling {
                    "rolling".into()
                } else {
                    "fixed".into()
                },
                period_start: if p.rolling {
                    rfc3339(t - p.length)
                } else {
                    rfc3339(p.start.max(state.quota_floor))
                },
                resets_at: if p.rolling {
                    None
                } else {
                    p.end.and_then(rfc3339)
                },
            });
            ChannelUsage {
                requests_last_minute,
                rate_limit_rpm: channel.rate_limit_rpm,
                queued: state.queued,
                quota,
            }
        })
    }

    // ---- sticky sessions --------------------------------------------------------------------

    /// The channel this conversation is bound to, if the binding is still fresh.
    #[must_use]
    pub fn sticky_channel(&self, session: &str) -> Option<String> {
        let t = self.clock.now().unix_timestamp();
        lock(&self.sessions)
            .get(session)
            .filter(|(_, expires)| *expires > t)
            .map(|(id, _)| id.clone())
    }

    /// Bind (or refresh) a conversation to a channel for `ttl_seconds`.
    pub fn stick(&self, session: &str, channel_id: &str, ttl_seconds: u64) {
        let t = self.clock.now().unix_timestamp();
        let expires = t + i64::try_from(ttl_seconds).unwrap_or(i64::MAX / 2);
        let mut sessions = lock(&self.sessions);
        // Most requests continue a conversation already bound here: refresh it in place.
        if let Some((bound, at)) = sessions.get_mut(session) {
            if bound != channel_id {
                channel_id.clone_into(bound);
            }
            *at = expires;
            return;
        }
        if sessions.len() > 10_000 {
            sessions.retain(|_, (_, expires)| *expires > t);
        }
        sessions.insert(session.to_string(), (channel_id.to_string(), expires));
    }
}

/// What the log store says about a key, to seed its counters.
#[derive(Debug, Clone, Default)]
pub struct KeySeed {
    /// (unix seconds, total tokens, cost) of each request inside the key's longest window
    pub recent: Vec<crate::store::sqlite::KeyRequest>,
    pub cost_today: f64,
    pub cost_total: f64,
}
