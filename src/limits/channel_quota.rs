//! Channel quotas as the limiter keeps them: checking, counting and seeding the counter of
//! the period [`super::quota`] computes, and the channel usage report.

use serde::Serialize;
use time::OffsetDateTime;

use super::quota::{self, QuotaPeriod, QuotaSchedule};
use super::shared::{window_frees_in, window_sum};
use super::window::RollingSum;
use super::{ChannelState, Limiter, RPM_WINDOW, USAGE_BUCKET, channel_state, lock};
use crate::domain::Channel;

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

/// The channel's usage in `period`: this instance's plus the other instances' (cluster mode).
fn quota_used(state: &ChannelState, period: &QuotaPeriod, t: i64) -> f64 {
    let remote = state.remote.as_deref();
    if period.rolling {
        window_sum(
            &state.quota_rolling,
            remote.map(|r| r.rolling(period.credit)),
            t,
            period.length,
        )
    } else {
        state.quota_used + remote.map_or(0.0, |r| r.period(period.start, period.credit))
    }
}

impl Limiter {
    fn with_channel<T>(
        &self,
        channel: &Channel,
        f: impl FnOnce(&mut ChannelState, Option<QuotaPeriod>, i64) -> T,
    ) -> T {
        self.with_schedule(&channel.id, QuotaSchedule::of(channel).as_ref(), f)
    }

    /// As `with_channel`, with the schedule already parsed (the request path's way).
    fn with_schedule<T>(
        &self,
        channel_id: &str,
        schedule: Option<&QuotaSchedule>,
        f: impl FnOnce(&mut ChannelState, Option<QuotaPeriod>, i64) -> T,
    ) -> T {
        let now = self.clock.now();
        let t = now.unix_timestamp();
        let period = schedule.and_then(|s| s.period(now));
        let mut channels = lock(&self.channels);
        let state = channel_state(&mut channels, channel_id);
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
        if state.last_period != period {
            state.last_period.clone_from(&period);
        }
        f(state, period, t)
    }

    /// `Err(reason)` while the channel is over its quota.
    pub fn channel_quota_check(&self, channel: &Channel) -> Result<(), String> {
        self.quota_check(&channel.id, QuotaSchedule::of(channel).as_ref())
    }

    /// [`Limiter::channel_quota_check`] with the schedule parsed once per configuration.
    pub fn quota_check(
        &self,
        channel_id: &str,
        schedule: Option<&QuotaSchedule>,
    ) -> Result<(), String> {
        if schedule.is_none() {
            return Ok(());
        }
        self.with_schedule(channel_id, schedule, |state, period, t| {
            let Some(period) = period else { return Ok(()) };
            let used = quota_used(state, &period, t);
            if used < period.limit {
                return Ok(());
            }
            let when = if period.rolling {
                let others = state.remote.as_deref().map(|r| r.rolling(period.credit));
                rfc3339(t + window_frees_in(&state.quota_rolling, others, t, period.length))
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
        self.record_quota_usage(
            channel,
            QuotaSchedule::of(channel).as_ref(),
            model,
            started,
            cost,
        );
    }

    /// [`Limiter::record_channel_usage`] with the schedule parsed once per configuration.
    pub fn record_quota_usage(
        &self,
        channel: &Channel,
        schedule: Option<&QuotaSchedule>,
        model: &str,
        started: OffsetDateTime,
        cost: f64,
    ) {
        if schedule.is_none() || !quota::counts_model(channel, model) {
            return;
        }
        self.with_schedule(&channel.id, schedule, |state, period, _| {
            let Some(period) = period else { return };
            let amount = if period.credit { cost } else { 1.0 };
            let at = started.unix_timestamp();
            if period.rolling {
                state.quota_rolling.add(at, amount);
                state.quota_rolling.prune(at, period.length);
            } else if at >= state.quota_floor {
                state.quota_used += amount;
            }
            state.dirty_from = state.dirty_from.min(at.div_euclid(USAGE_BUCKET));
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
            // Publish every figure again: they were rebuilt from the log.
            state.dirty_from = i64::MIN;
        });
    }

    /// Start a channel's quota afresh now (admin reset).
    pub fn reset_channel_quota(&self, channel: &Channel) -> OffsetDateTime {
        let now = self.clock.now();
        self.seed_channel(channel, 0.0, Some(now), &[]);
        now
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
                used: quota_used(state, &p, t),
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
}
