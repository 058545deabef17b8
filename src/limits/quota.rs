//! cc-bridge channel quotas: which period "now" falls in.
//!
//! `quotaType` `requests` counts successful requests, `credit` their cost in USD, up to
//! `quotaLimit`. `fixed` periods (the default) start at `quotaResetAt` and repeat every
//! `quotaResetInterval` × `quotaResetUnit` (hours, days, weeks or calendar months), forwards and
//! backwards; `rolling` counts the trailing interval. `quotaModels` limits what counts to models
//! containing one of its entries.

use time::{Duration, OffsetDateTime};

use crate::domain::Channel;

#[derive(Debug, Clone, PartialEq)]
pub struct QuotaPeriod {
    pub limit: f64,
    pub credit: bool,
    pub rolling: bool,
    /// Fixed: unix start of the current period (`i64::MIN / 2` for "since ever").
    pub start: i64,
    /// Fixed: unix end of the current period, when it ever ends.
    pub end: Option<i64>,
    /// Rolling: window length in seconds.
    pub length: i64,
}

/// `quotaResetUnit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuotaUnit {
    Hours,
    Days,
    Weeks,
    /// Calendar months.
    Months,
}

impl QuotaUnit {
    /// cc-bridge's spelling; empty or unknown means days.
    fn parse(text: &str) -> QuotaUnit {
        match text {
            "hours" => QuotaUnit::Hours,
            "weeks" => QuotaUnit::Weeks,
            "months" => QuotaUnit::Months,
            _ => QuotaUnit::Days,
        }
    }
}

/// A channel's quota settings, parsed once (when the configuration changes), so finding the
/// current period on the request path parses no date and compares no string.
#[derive(Debug, Clone, PartialEq)]
pub struct QuotaSchedule {
    pub limit: f64,
    /// `credit` (USD) rather than `requests`.
    pub credit: bool,
    pub rolling: bool,
    /// `quotaResetInterval`, when positive.
    pub interval: Option<i64>,
    pub unit: QuotaUnit,
    /// `quotaResetAt`, when it is RFC 3339.
    pub anchor: Option<OffsetDateTime>,
}

impl QuotaSchedule {
    /// `None` when the channel has no quota.
    #[must_use]
    pub fn of(channel: &Channel) -> Option<QuotaSchedule> {
        let limit = channel.quota_limit.filter(|l| *l > 0.0)?;
        let credit = match channel.quota_type.as_str() {
            "requests" => false,
            "credit" => true,
            _ => return None,
        };
        Some(QuotaSchedule {
            limit,
            credit,
            rolling: channel.quota_reset_mode == "rolling",
            interval: channel.quota_reset_interval.filter(|n| *n > 0),
            unit: QuotaUnit::parse(&channel.quota_reset_unit),
            anchor: channel.quota_reset_at.as_deref().and_then(|t| {
                OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()
            }),
        })
    }
}

fn step(at: OffsetDateTime, unit: QuotaUnit, n: i64) -> Option<OffsetDateTime> {
    match unit {
        // Checked: the interval is the channel's own number (an import may hold any).
        QuotaUnit::Hours => at.checked_add(Duration::seconds(n.checked_mul(3600)?)),
        QuotaUnit::Weeks => at.checked_add(Duration::seconds(n.checked_mul(604_800)?)),
        QuotaUnit::Months => {
            let months =
                (i64::from(at.year()) * 12 + i64::from(u8::from(at.month())) - 1).checked_add(n)?;
            let year = i32::try_from(months.div_euclid(12)).ok()?;
            let month =
                time::Month::try_from(u8::try_from(months.rem_euclid(12) + 1).ok()?).ok()?;
            let last_day = time::util::days_in_month(month, year);
            let date = time::Date::from_calendar_date(year, month, at.day().min(last_day)).ok()?;
            Some(at.replace_date(date))
        }
        QuotaUnit::Days => at.checked_add(Duration::seconds(n.checked_mul(86_400)?)),
    }
}

/// The quota period of `channel` at `now`, or `None` when the channel has no quota.
#[must_use]
pub fn period(channel: &Channel, now: OffsetDateTime) -> Option<QuotaPeriod> {
    QuotaSchedule::of(channel)?.period(now)
}

impl QuotaSchedule {
    /// The period `now` falls in.
    #[must_use]
    pub fn period(&self, now: OffsetDateTime) -> Option<QuotaPeriod> {
        period_of(self, now)
    }
}

fn period_of(schedule: &QuotaSchedule, now: OffsetDateTime) -> Option<QuotaPeriod> {
    let QuotaSchedule {
        limit,
        credit,
        rolling,
        interval,
        unit,
        anchor,
    } = *schedule;
    if rolling {
        let n = interval.unwrap_or(1);
        let length = step(now, unit, n).map_or(86_400, |later| (later - now).whole_seconds());
        return Some(QuotaPeriod {
            limit,
            credit,
            rolling: true,
            start: 0,
            end: None,
            length,
        });
    }
    let never = i64::MIN / 2;
    let (start, end) = match (anchor, interval) {
        (None, _) => (never, None),
        (Some(anchor), None) if now < anchor => (never, Some(anchor.unix_timestamp())),
        (Some(anchor), None) => (anchor.unix_timestamp(), None),
        (Some(anchor), Some(n)) => {
            // Walk from the anchor to the period that contains `now`; fixed-length units jump.
            // An interval too long to compute with (stored before intervals were checked)
            // leaves the channel without a quota rather than panicking.
            let approx_len = n.checked_mul(match unit {
                QuotaUnit::Hours => 3600,
                QuotaUnit::Weeks => 604_800,
                QuotaUnit::Months => 2_419_200, // 28 days: never overshoots a calendar month
                QuotaUnit::Days => 86_400,
            })?;
            let periods = |k: i64| n.checked_mul(k);
            let mut k = (now - anchor).whole_seconds().div_euclid(approx_len);
            let mut start = step(anchor, unit, periods(k)?)?;
            while start > now {
                k -= 1;
                start = step(anchor, unit, periods(k)?)?;
            }
            let mut next = step(anchor, unit, periods(k + 1)?)?;
            while next <= now {
                k += 1;
                start = next;
                next = step(anchor, unit, periods(k + 1)?)?;
            }
            (start.unix_timestamp(), Some(next.unix_timestamp()))
        }
    };
    Some(QuotaPeriod {
        limit,
        credit,
        rolling: false,
        start,
        end,
        length: 0,
    })
}

/// Whether a request for `model` counts against the channel's quota.
#[must_use]
pub fn counts_model(channel: &Channel, model: &str) -> bool {
    channel.quota_models.is_empty()
        || channel
            .quota_models
            .iter()
            .any(|m| model.contains(m.as_str()))
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;
    use crate::domain::channel::ChannelOrigin;
    use crate::domain::{ChannelStatus, Pool};

    fn channel(
        kind: &str,
        reset_at: Option<&str>,
        interval: Option<i64>,
        unit: &str,
        mode: &str,
    ) -> Channel {
        serde_json::from_value::<Channel>(serde_json::json!({
            "id": "c1", "pool": "messages", "name": "c", "serviceType": "claude", "baseUrl": "https://x",
            "quotaType": kind, "quotaLimit": 10.0, "quotaResetAt": reset_at, "quotaResetInterval": interval,
            "quotaResetUnit": unit, "quotaResetMode": mode
        }))
        .map(|mut c| {
            c.status = ChannelStatus::Active;
            c.origin = ChannelOrigin::Admin;
            c.pool = Pool::Messages;
            c
        })
        .unwrap()
    }

    #[test]
    fn fixed_daily_periods_walk_both_ways_from_the_anchor() {
        let c = channel(
            "requests",
            Some("2026-08-01T00:00:00Z"),
            Some(1),
            "days",
            "fixed",
        );
        let p = period(&c, datetime!(2026-11-21 13:00 UTC)).unwrap();
        assert_eq!(p.start, datetime!(2026-11-21 00:00 UTC).unix_timestamp());
        assert_eq!(
            p.end,
            Some(datetime!(2026-11-22 00:00 UTC).unix_timestamp())
        );
        let before = period(&c, datetime!(2026-07-30 13:00 UTC)).unwrap();
        assert_eq!(
            before.start,
            datetime!(2026-07-30 00:00 UTC).unix_timestamp()
        );
        assert!(!p.credit && !p.rolling);
    }

    #[test]
    fn monthly_periods_follow_the_calendar() {
        let c = channel(
            "credit",
            Some("2026-01-31T00:00:00Z"),
            Some(1),
            "months",
            "",
        );
        let p = period(&c, datetime!(2026-03-15 00:00 UTC)).unwrap();
        assert_eq!(p.start, datetime!(2026-02-28 00:00 UTC).unix_timestamp());
        assert_eq!(
            p.end,
            Some(datetime!(2026-03-31 00:00 UTC).unix_timestamp())
        );
        assert!(p.credit);
    }

    #[test]
    fn rolling_and_no_quota() {
        let c = channel("requests", None, Some(5), "hours", "rolling");
        let p = period(&c, datetime!(2026-03-15 00:00 UTC)).unwrap();
        assert!(p.rolling);
        assert_eq!(p.length, 5 * 3600);
        assert!(
            period(
                &channel("", None, None, "", ""),
                datetime!(2026-03-15 00:00 UTC)
            )
            .is_none()
        );
    }
}
