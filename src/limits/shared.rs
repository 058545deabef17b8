//! Cluster mode: limits shared by the instances of a cluster.
//!
//! - **Budgets, rolling windows and channel quotas** count this instance's usage plus the other
//!   instances' ([`Limiter::apply_remote_usage`] hands their sums over after each sync; the
//!   request path reads a per-key / per-channel field under the lock it already takes). This
//!   instance's own figures go the other way as absolute totals per bucket
//!   ([`Limiter::export_usage`]), only those that changed since the previous export.
//! - **Requests per minute and concurrency** stay local and use this instance's share:
//!   ⌈limit ÷ [`Limiter::set_live_instances`]⌉.
//!
//! The rows' format is [`crate::store::postgres::counters`]; `cluster::budgets` moves them.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use time::OffsetDateTime;

use super::keys::{KeyState, key_horizon};
use super::window::RollingSum;
use super::{CLEAN, ChannelState, Limiter, RPM_WINDOW, USAGE_BUCKET, channel_state, lock};
use crate::FastMap;
use crate::store::postgres::counters::{CounterRow, Scope};

const DAY: i64 = 86_400;

/// What the other instances used of one key, as of the last sync.
#[derive(Debug)]
pub(super) struct RemoteKey {
    pub(super) requests: RollingSum,
    pub(super) tokens: RollingSum,
    pub(super) cost: RollingSum,
    /// (unix day, cost in USD)
    days: Vec<(i64, f64)>,
    pub(super) total_cost: f64,
}

impl RemoteKey {
    /// The others' cost on the UTC day `day`.
    pub(super) fn day_cost(&self, day: time::Date) -> f64 {
        let index = unix_day(day);
        self.days
            .iter()
            .find(|(d, _)| *d == index)
            .map_or(0.0, |(_, cost)| *cost)
    }
}

/// What the other instances used of one channel's quota, as of the last sync.
#[derive(Debug)]
pub(super) struct RemoteChannel {
    /// (fixed period start, requests, cost in USD)
    periods: Vec<(i64, f64, f64)>,
    rolling_requests: RollingSum,
    rolling_cost: RollingSum,
}

impl RemoteChannel {
    /// The others' usage of the fixed period starting at `start`, in the quota's unit.
    pub(super) fn period(&self, start: i64, credit: bool) -> f64 {
        self.periods
            .iter()
            .find(|(s, _, _)| *s == start)
            .map_or(
                0.0,
                |(_, requests, cost)| {
                    if credit { *cost } else { *requests }
                },
            )
    }

    /// The others' rolling usage, in the quota's unit.
    pub(super) fn rolling(&self, credit: bool) -> &RollingSum {
        if credit {
            &self.rolling_cost
        } else {
            &self.rolling_requests
        }
    }
}

/// `local` plus `remote` over the trailing `window` seconds.
pub(super) fn window_sum(
    local: &RollingSum,
    remote: Option<&RollingSum>,
    now_unix: i64,
    window: i64,
) -> f64 {
    local.sum(now_unix, window) + remote.map_or(0.0, |r| r.sum(now_unix, window))
}

/// Seconds until the oldest use counted by [`window_sum`] leaves the window (0: none counted).
pub(super) fn window_frees_in(
    local: &RollingSum,
    remote: Option<&RollingSum>,
    now_unix: i64,
    window: i64,
) -> i64 {
    let mine = local.seconds_until_oldest_expires(now_unix, window);
    let theirs = remote.map_or(0, |r| r.seconds_until_oldest_expires(now_unix, window));
    match (mine, theirs) {
        (0, other) | (other, 0) => other,
        (a, b) => a.min(b),
    }
}

fn unix_day(day: time::Date) -> i64 {
    day.midnight().assume_utc().unix_timestamp().div_euclid(DAY)
}

#[expect(
    clippy::cast_possible_truncation,
    reason = "costs and counts are far inside i64"
)]
fn micros(usd: f64) -> i64 {
    (usd * 1e6).round() as i64
}

#[expect(clippy::cast_possible_truncation, reason = "counts are far inside i64")]
fn count(value: f64) -> i64 {
    value.round() as i64
}

#[expect(clippy::cast_precision_loss, reason = "far below 2^52")]
fn float(value: i64) -> f64 {
    value as f64
}

/// A row unless every figure is zero (a bucket nobody used needs no row).
fn row(
    scope: Scope,
    subject: &str,
    bucket: i64,
    figures: (i64, i64, i64),
    ends_at: Option<i64>,
) -> Option<CounterRow> {
    let (requests, tokens, cost_micros) = figures;
    (requests != 0 || tokens != 0 || cost_micros != 0).then(|| CounterRow {
        scope,
        subject: subject.to_string(),
        bucket,
        requests,
        tokens,
        cost_micros,
        ends_at,
    })
}

fn export_key(id: &str, state: &KeyState, from: i64, out: &mut Vec<CounterRow>) {
    let mut minutes: BTreeMap<i64, (f64, f64, f64)> = BTreeMap::new();
    for (index, value) in state.requests.buckets_from(from) {
        minutes.entry(index).or_default().0 += value;
    }
    for (index, value) in state.tokens.buckets_from(from) {
        minutes.entry(index).or_default().1 += value;
    }
    for (index, value) in state.cost.buckets_from(from) {
        minutes.entry(index).or_default().2 += value;
    }
    out.extend(
        minutes
            .into_iter()
            .filter_map(|(index, (requests, tokens, cost))| {
                row(
                    Scope::KeyMinute,
                    id,
                    index,
                    (count(requests), count(tokens), micros(cost)),
                    Some((index + 1) * USAGE_BUCKET),
                )
            }),
    );
    let day = unix_day(state.day);
    out.extend(row(
        Scope::KeyDay,
        id,
        day,
        (0, 0, micros(state.day_cost)),
        Some((day + 1) * DAY),
    ));
    out.extend(row(
        Scope::KeyTotal,
        id,
        0,
        (0, 0, micros(state.total_cost)),
        None,
    ));
}

fn export_channel(id: &str, state: &ChannelState, from: i64, out: &mut Vec<CounterRow>) {
    let Some(period) = &state.last_period else {
        return;
    };
    let figures = |amount: f64| {
        if period.credit {
            (0, 0, micros(amount))
        } else {
            (count(amount), 0, 0)
        }
    };
    if period.rolling {
        out.extend(
            state
                .quota_rolling
                .buckets_from(from)
                .filter_map(|(index, amount)| {
                    row(
                        Scope::ChannelMinute,
                        id,
                        index,
                        figures(amount),
                        Some((index + 1) * USAGE_BUCKET),
                    )
                }),
        );
    } else if state.quota_period_start == period.start {
        out.extend(row(
            Scope::ChannelPeriod,
            id,
            period.start,
            figures(state.quota_used),
            period.end,
        ));
    }
}

/// The others' rows of one subject, gathered before they become a [`RemoteKey`] or
/// [`RemoteChannel`].
#[derive(Default)]
struct Gathered {
    /// (minute, requests, tokens, cost) in the order the rows came
    minutes: Vec<(i64, f64, f64, f64)>,
    /// (day or period start, requests, cost)
    buckets: Vec<(i64, f64, f64)>,
    total_cost: f64,
}

impl Gathered {
    fn sum(&mut self, pick: impl Fn(&(i64, f64, f64, f64)) -> f64) -> RollingSum {
        self.minutes.sort_unstable_by_key(|m| m.0);
        let mut buckets: Vec<(i64, f64)> = Vec::with_capacity(self.minutes.len());
        for minute in &self.minutes {
            let value = pick(minute);
            match buckets.last_mut() {
                Some((index, sum)) if *index == minute.0 => *sum += value,
                _ => buckets.push((minute.0, value)),
            }
        }
        RollingSum::from_sorted(USAGE_BUCKET, buckets)
    }

    fn into_key(mut self) -> RemoteKey {
        RemoteKey {
            requests: self.sum(|m| m.1),
            tokens: self.sum(|m| m.2),
            cost: self.sum(|m| m.3),
            days: self
                .buckets
                .iter()
                .map(|(d, _, cost)| (*d, *cost))
                .collect(),
            total_cost: self.total_cost,
        }
    }

    fn into_channel(mut self) -> RemoteChannel {
        RemoteChannel {
            rolling_requests: self.sum(|m| m.1),
            rolling_cost: self.sum(|m| m.3),
            periods: self.buckets,
        }
    }
}

impl Limiter {
    /// How many instances share the per-minute and concurrency limits (the cluster's live
    /// instances; 0 is taken as 1). Takes effect on the next request.
    pub fn set_live_instances(&self, instances: usize) {
        self.live_instances
            .store(instances.max(1), Ordering::Relaxed);
    }

    #[must_use]
    pub fn live_instances(&self) -> usize {
        self.live_instances.load(Ordering::Relaxed)
    }

    /// This instance's own usage as absolute totals per bucket, to publish: with `full`, every
    /// bucket it holds; otherwise only the buckets that changed since the previous export.
    /// Buckets nobody used are left out.
    #[must_use]
    pub fn export_usage(&self, full: bool) -> Vec<CounterRow> {
        let mut out = Vec::new();
        {
            let mut keys = lock(&self.keys);
            for (id, state) in keys.iter_mut() {
                let from = if full { i64::MIN } else { state.dirty_from };
                if from != CLEAN {
                    export_key(id, state, from, &mut out);
                }
                state.dirty_from = CLEAN;
            }
        }
        let mut channels = lock(&self.channels);
        for (id, state) in channels.iter_mut() {
            let from = if full { i64::MIN } else { state.dirty_from };
            if from != CLEAN {
                export_channel(id, state, from, &mut out);
            }
            state.dirty_from = CLEAN;
        }
        out
    }

    /// Take what the other instances used (the sums of their rows, as
    /// [`crate::store::postgres::counters::Counters::others`] returns them) in place of what
    /// the previous sync said. A key or channel without rows is back to its own usage only.
    pub fn apply_remote_usage(&self, rows: &[CounterRow]) {
        let mut keys: FastMap<&str, Gathered> = FastMap::default();
        let mut channels: FastMap<&str, Gathered> = FastMap::default();
        for row in rows {
            let (requests, tokens, cost) = (
                float(row.requests),
                float(row.tokens),
                float(row.cost_micros) / 1e6,
            );
            let target = match row.scope {
                Scope::KeyMinute | Scope::KeyDay | Scope::KeyTotal => &mut keys,
                Scope::ChannelPeriod | Scope::ChannelMinute => &mut channels,
            };
            let gathered = target.entry(row.subject.as_str()).or_default();
            match row.scope {
                Scope::KeyMinute | Scope::ChannelMinute => {
                    gathered.minutes.push((row.bucket, requests, tokens, cost));
                }
                Scope::KeyDay | Scope::ChannelPeriod => {
                    gathered.buckets.push((row.bucket, requests, cost));
                }
                Scope::KeyTotal => gathered.total_cost += cost,
            }
        }
        let mut keys: FastMap<&str, Box<RemoteKey>> = keys
            .into_iter()
            .map(|(id, g)| (id, Box::new(g.into_key())))
            .collect();
        let mut channels: FastMap<&str, Box<RemoteChannel>> = channels
            .into_iter()
            .map(|(id, g)| (id, Box::new(g.into_channel())))
            .collect();
        let today = self.clock.now().date();
        // The previous figures are dropped after the locks are released.
        let mut previous_keys = Vec::new();
        let mut previous_channels = Vec::new();
        {
            let mut states = lock(&self.keys);
            for (id, state) in states.iter_mut() {
                previous_keys.push(std::mem::replace(
                    &mut state.remote,
                    keys.remove(id.as_str()),
                ));
            }
            // Keys used elsewhere but not here yet.
            for (id, remote) in keys {
                super::keys::key_state(&mut states, id, today).remote = Some(remote);
            }
        }
        let mut states = lock(&self.channels);
        for (id, state) in states.iter_mut() {
            previous_channels.push(std::mem::replace(
                &mut state.remote,
                channels.remove(id.as_str()),
            ));
        }
        for (id, remote) in channels {
            channel_state(&mut states, id).remote = Some(remote);
        }
        drop(states);
        drop((previous_keys, previous_channels));
    }

    /// How far back usage can still count against any limit held here: the longest rolling
    /// window of a key or channel quota (at least a day, for the daily budgets). Counter rows
    /// that ended before `now` minus this are no longer needed by this instance.
    #[must_use]
    pub fn counter_retention(&self) -> time::Duration {
        let mut longest = DAY;
        for state in lock(&self.keys).values() {
            if let Some(limits) = &state.seeded_for {
                longest = longest.max(key_horizon(limits));
            }
        }
        for state in lock(&self.channels).values() {
            if let Some(period) = state.last_period.as_ref().filter(|p| p.rolling) {
                longest = longest.max(period.length);
            }
        }
        time::Duration::seconds(longest.max(RPM_WINDOW))
    }

    /// The buckets of the others that matter here end after this instant.
    #[must_use]
    pub fn remote_since(&self) -> OffsetDateTime {
        let now = self.clock.now();
        now.checked_sub(self.counter_retention())
            .unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail loudly")]

    use std::sync::Arc;

    use time::macros::datetime;

    use super::*;
    use crate::domain::key::{KeyLimits, WindowLimit};
    use crate::domain::{Channel, ClientKey};
    use crate::limits::{Clock as _, ManualClock};

    const NOW: OffsetDateTime = datetime!(2026-11-21 10:00:30 UTC);

    fn key(limits: KeyLimits) -> ClientKey {
        let mut key: ClientKey = serde_json::from_value(serde_json::json!({
            "id": "k1", "name": "k", "hash": "00", "displayPrefix": "rb_",
            "createdAt": "2026-01-01T00:00:00Z", "updatedAt": "2026-01-01T00:00:00Z",
        }))
        .unwrap();
        key.limits = limits;
        key
    }

    fn limiter() -> (Arc<Limiter>, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::new(NOW));
        (Limiter::new(clock.clone()), clock)
    }

    fn others(scope: Scope, subject: &str, bucket: i64, figures: (i64, i64, i64)) -> CounterRow {
        CounterRow {
            scope,
            subject: subject.into(),
            bucket,
            requests: figures.0,
            tokens: figures.1,
            cost_micros: figures.2,
            ends_at: None,
        }
    }

    fn minute(at: OffsetDateTime) -> i64 {
        at.unix_timestamp().div_euclid(60)
    }

    #[test]
    fn windows_and_budgets_count_local_plus_remote() {
        let (limiter, clock) = limiter();
        let key = key(KeyLimits {
            requests_per_window: Some(WindowLimit {
                limit: 10.0,
                window_seconds: 600,
            }),
            cost_per_day: Some(5.0),
            cost_total: Some(100.0),
            ..KeyLimits::default()
        });
        let now_minute = minute(NOW);
        limiter.apply_remote_usage(&[
            others(Scope::KeyMinute, "k1", now_minute - 12, (50, 0, 0)), // left the window
            others(Scope::KeyMinute, "k1", now_minute - 2, (4, 0, 0)),
            others(Scope::KeyMinute, "k1", now_minute, (3, 0, 0)),
        ]);
        // 10 allowed, 7 used elsewhere: 3 here.
        for _ in 0..3 {
            drop(limiter.admit_key(&key).unwrap());
        }
        let refusal = limiter.admit_key(&key).unwrap_err();
        assert_eq!(refusal.limit, "requests_per_window");
        // The oldest counted use (the others', in the minute that began 2.5 minutes ago) leaves
        // the 10-minute window first: 7.5 minutes on.
        assert_eq!(refusal.retry_after, Some(450));
        let usage = limiter.key_usage(&key);
        assert!((usage.windows[0].used - 10.0).abs() < 1e-9);
        // The others' 4 leave the window: room for 4 more.
        clock.advance(time::Duration::minutes(9));
        for _ in 0..4 {
            drop(limiter.admit_key(&key).unwrap());
        }
        assert!(limiter.admit_key(&key).is_err());

        // Cost per day: 4.5 elsewhere today, 1.0 yesterday (another day's row), 0.6 here.
        let (limiter, _) = self::limiter();
        let today = unix_day(NOW.date());
        limiter.apply_remote_usage(&[
            others(Scope::KeyDay, "k1", today - 1, (0, 0, 1_000_000)),
            others(Scope::KeyDay, "k1", today, (0, 0, 4_500_000)),
        ]);
        let permit = limiter.admit_key(&key).unwrap();
        limiter.record_key_usage(&key, NOW, 10, 0.4);
        drop(permit);
        assert!(limiter.admit_key(&key).is_ok(), "4.9 of 5.0");
        limiter.record_key_usage(&key, NOW, 10, 0.2);
        assert_eq!(limiter.admit_key(&key).unwrap_err().limit, "cost_per_day");
        assert!((limiter.key_usage(&key).cost_today - 5.1).abs() < 1e-9);

        // Total cost: the others' total plus this instance's.
        let (limiter, _) = self::limiter();
        limiter.apply_remote_usage(&[others(Scope::KeyTotal, "k1", 0, (0, 0, 99_000_000))]);
        assert!(limiter.admit_key(&key).is_ok());
        limiter.record_key_usage(&key, NOW, 0, 1.0);
        assert_eq!(limiter.admit_key(&key).unwrap_err().limit, "cost_total");
        // A sync without the key's rows: its own usage only again.
        limiter.apply_remote_usage(&[]);
        assert!(limiter.admit_key(&key).is_ok());
        assert!((limiter.key_usage(&key).cost_total - 1.0).abs() < 1e-9);
    }

    #[test]
    fn export_publishes_absolute_totals_of_changed_buckets_only() {
        let (limiter, clock) = limiter();
        // A window keeps its minutes (without one, only the last minute is held).
        let key = key(KeyLimits {
            requests_per_window: Some(WindowLimit {
                limit: 1000.0,
                window_seconds: 3600,
            }),
            ..KeyLimits::default()
        });
        assert!(limiter.export_usage(false).is_empty());
        drop(limiter.admit_key(&key).unwrap());
        limiter.record_key_usage(&key, NOW, 100, 0.25);
        drop(limiter.admit_key(&key).unwrap());
        let rows = limiter.export_usage(false);
        let m = minute(NOW);
        assert_eq!(
            rows,
            vec![
                CounterRow {
                    scope: Scope::KeyMinute,
                    subject: "k1".into(),
                    bucket: m,
                    requests: 2,
                    tokens: 100,
                    cost_micros: 250_000,
                    ends_at: Some((m + 1) * 60),
                },
                CounterRow {
                    scope: Scope::KeyDay,
                    subject: "k1".into(),
                    bucket: unix_day(NOW.date()),
                    requests: 0,
                    tokens: 0,
                    cost_micros: 250_000,
                    ends_at: Some((unix_day(NOW.date()) + 1) * DAY),
                },
                CounterRow {
                    scope: Scope::KeyTotal,
                    subject: "k1".into(),
                    bucket: 0,
                    requests: 0,
                    tokens: 0,
                    cost_micros: 250_000,
                    ends_at: None,
                },
            ]
        );
        assert!(limiter.export_usage(false).is_empty(), "nothing changed");
        // The next minute: only its bucket (plus the day and total) again, with absolute values.
        clock.advance(time::Duration::minutes(1));
        drop(limiter.admit_key(&key).unwrap());
        limiter.record_key_usage(&key, clock.now(), 0, 0.5);
        let rows = limiter.export_usage(false);
        assert_eq!(rows.len(), 3, "{rows:?}");
        assert_eq!((rows[0].bucket, rows[0].requests), (m + 1, 1));
        assert_eq!(rows[2].cost_micros, 750_000);
        // A full export: every bucket held.
        assert_eq!(limiter.export_usage(true).len(), 4);
        // Remote figures are never exported as this instance's.
        limiter.apply_remote_usage(&[others(Scope::KeyTotal, "k1", 0, (0, 0, 1_000_000))]);
        let total = limiter
            .export_usage(true)
            .into_iter()
            .find(|r| r.scope == Scope::KeyTotal)
            .unwrap();
        assert_eq!(total.cost_micros, 750_000);
    }

    fn quota_channel(mode: &str, kind: &str) -> Channel {
        serde_json::from_value(serde_json::json!({
            "id": "c1", "pool": "messages", "name": "c", "serviceType": "claude",
            "baseUrl": "https://x", "quotaType": kind, "quotaLimit": 10.0,
            "quotaResetAt": "2026-11-21T00:00:00Z", "quotaResetInterval": 1,
            "quotaResetUnit": "days", "quotaResetMode": mode
        }))
        .unwrap()
    }

    #[test]
    fn channel_quotas_count_local_plus_remote_and_export_their_unit() {
        let (limiter, _) = limiter();
        let fixed = quota_channel("fixed", "requests");
        let start = datetime!(2026-11-21 00:00 UTC).unix_timestamp();
        limiter.seed_channel(&fixed, 0.0, None, &[]);
        limiter.apply_remote_usage(&[
            others(Scope::ChannelPeriod, "c1", start - DAY, (9, 0, 0)), // yesterday's period
            others(Scope::ChannelPeriod, "c1", start, (8, 0, 0)),
        ]);
        limiter.record_channel_usage(&fixed, "claude-x", NOW, 1.0);
        assert!(limiter.channel_quota_check(&fixed).is_ok(), "9 of 10");
        limiter.record_channel_usage(&fixed, "claude-x", NOW, 1.0);
        let refused = limiter.channel_quota_check(&fixed).unwrap_err();
        assert!(refused.contains("10 of 10"), "{refused}");
        let period_row = limiter
            .export_usage(false)
            .into_iter()
            .find(|r| r.scope == Scope::ChannelPeriod)
            .unwrap();
        assert_eq!(
            (period_row.bucket, period_row.requests, period_row.ends_at),
            (start, 2, Some(start + DAY))
        );

        let (limiter, _) = self::limiter();
        let rolling = quota_channel("rolling", "credit");
        limiter.seed_channel(&rolling, 0.0, None, &[]);
        limiter.apply_remote_usage(&[others(
            Scope::ChannelMinute,
            "c1",
            minute(NOW) - 5,
            (0, 0, 9_500_000),
        )]);
        limiter.record_channel_usage(&rolling, "claude-x", NOW, 0.25);
        assert!(limiter.channel_quota_check(&rolling).is_ok());
        limiter.record_channel_usage(&rolling, "claude-x", NOW, 0.25);
        assert!(limiter.channel_quota_check(&rolling).is_err());
        let usage = limiter.channel_usage(&rolling).quota.unwrap();
        assert!((usage.used - 10.0).abs() < 1e-9);
        let minute_row = limiter
            .export_usage(false)
            .into_iter()
            .find(|r| r.scope == Scope::ChannelMinute)
            .unwrap();
        assert_eq!((minute_row.cost_micros, minute_row.requests), (500_000, 0));
    }

    #[test]
    fn rate_and_concurrency_use_this_instances_share() {
        let (limiter, _) = limiter();
        let key = key(KeyLimits {
            requests_per_minute: Some(10),
            concurrent_requests: Some(5),
            ..KeyLimits::default()
        });
        limiter.set_live_instances(3);
        let permits: Vec<_> = (0..2).map(|_| limiter.admit_key(&key).unwrap()).collect();
        let refusal = limiter.admit_key(&key).unwrap_err();
        assert_eq!(refusal.limit, "concurrent_requests");
        assert!(
            refusal
                .message
                .contains("5 requests in flight at once across 3 instances (2 on this one)"),
            "{}",
            refusal.message
        );
        drop(permits);
        drop(limiter.admit_key(&key).unwrap());
        drop(limiter.admit_key(&key).unwrap());
        // 4 of ⌈10 ÷ 3⌉ = 4 this minute.
        let refusal = limiter.admit_key(&key).unwrap_err();
        assert_eq!(refusal.limit, "requests_per_minute");
        limiter.set_live_instances(1);
        assert!(limiter.admit_key(&key).is_ok());
        limiter.set_live_instances(0);
        assert_eq!(limiter.live_instances(), 1);
    }

    #[test]
    fn retention_follows_the_longest_window() {
        let (limiter, _) = limiter();
        assert_eq!(limiter.counter_retention(), time::Duration::days(1));
        let long = key(KeyLimits {
            tokens_per_window: Some(WindowLimit {
                limit: 1.0,
                window_seconds: 7 * 86_400,
            }),
            ..KeyLimits::default()
        });
        limiter.seed_key(&long, &crate::limits::KeySeed::default());
        assert_eq!(limiter.counter_retention(), time::Duration::days(7));
        assert_eq!(limiter.remote_since(), NOW - time::Duration::days(7));
    }
}
