//! Plain data types and rules of relaybox: no IO, no HTTP, no storage engine.
//!
//! Field names follow cc-bridge (camelCase) wherever it has them, so its files import unchanged
//! and the admin API speaks the same names.

pub mod bounds;
pub mod channel;
pub mod failover;
pub mod key;
pub mod money;
pub mod pricing;
pub mod settings;

pub use channel::{Channel, ChannelStatus, Pool};
pub use key::{ClientKey, KeyStatus};
pub use pricing::{ModelAliases, ModelPrice, PricingTable};
pub use settings::Settings;

use time::OffsetDateTime;

/// Current wall-clock time in UTC; one place so tests and code agree on the clock source.
///
/// A request asks for the time about ten times (auth, limits, log row). Turning a system time
/// into a calendar date is most of what `OffsetDateTime::now_utc` costs, so each thread keeps
/// the last whole second it converted and only swaps in the sub-second part within it.
#[must_use]
pub fn now() -> OffsetDateTime {
    use std::cell::Cell;
    use std::time::{SystemTime, UNIX_EPOCH};
    thread_local! {
        static LAST_SECOND: Cell<SecondCache> = const { Cell::new(None) };
    }
    let Ok(since_epoch) = SystemTime::now().duration_since(UNIX_EPOCH) else {
        return OffsetDateTime::now_utc();
    };
    LAST_SECOND
        .with(|last| {
            let mut cache = last.get();
            let now = time_at(
                &mut cache,
                since_epoch.as_secs(),
                since_epoch.subsec_nanos(),
            );
            last.set(cache);
            now
        })
        .unwrap_or_else(OffsetDateTime::now_utc)
}

/// The last whole second (Unix seconds) [`now`] converted, and that second as a date and time.
type SecondCache = Option<(u64, OffsetDateTime)>;

/// The instant `seconds` and `nanos` after the Unix epoch. Within the second in `cache` only the
/// sub-second part is swapped in; another second is converted and becomes the cached one.
/// `None` (and `cache` unchanged) when the instant is out of range.
fn time_at(cache: &mut SecondCache, seconds: u64, nanos: u32) -> Option<OffsetDateTime> {
    if let Some((second, at)) = *cache
        && second == seconds
        && let Ok(now) = at.replace_nanosecond(nanos)
    {
        return Some(now);
    }
    let whole = i64::try_from(seconds)
        .ok()
        .and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok())?;
    *cache = Some((seconds, whole));
    Some(whole.replace_nanosecond(nanos).unwrap_or(whole))
}

/// RFC 3339 UTC with milliseconds (`2026-11-21T06:30:00.123Z`): fixed width, so text order is
/// time order; the form of every timestamp in `logs.sqlite`.
///
/// Written by hand: three of these go into every log row, and the generic formatter costs ten
/// times as much. Each thread keeps the text of the last whole second it wrote, so most calls
/// only write the milliseconds.
#[must_use]
pub fn format_time(at: OffsetDateTime) -> String {
    use std::cell::Cell;
    thread_local! {
        static LAST_SECOND: Cell<Option<(i64, [u8; 24])>> = const { Cell::new(None) };
    }
    let at = at.to_offset(time::UtcOffset::UTC);
    let year = at.year();
    if !(0..=9999).contains(&year) {
        const FORMAT: &[time::format_description::BorrowedFormatItem<'static>] = time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
        );
        return at.format(FORMAT).unwrap_or_default();
    }
    let second = at.unix_timestamp();
    let mut out = LAST_SECOND.with(|last| match last.get() {
        Some((cached, text)) if cached == second => text,
        _ => {
            let mut text = *b"0000-00-00T00:00:00.000Z";
            put_digits(&mut text[0..4], year.unsigned_abs());
            put_digits(&mut text[5..7], u32::from(u8::from(at.month())));
            put_digits(&mut text[8..10], u32::from(at.day()));
            put_digits(&mut text[11..13], u32::from(at.hour()));
            put_digits(&mut text[14..16], u32::from(at.minute()));
            put_digits(&mut text[17..19], u32::from(at.second()));
            last.set(Some((second, text)));
            text
        }
    });
    put_digits(&mut out[20..23], u32::from(at.millisecond()));
    String::from_utf8_lossy(&out).into_owned()
}

/// `value` in decimal, zero-padded to the width of `out`.
fn put_digits(out: &mut [u8], mut value: u32) {
    for digit in out.iter_mut().rev() {
        *digit = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

/// A new time-ordered identifier (UUIDv7, simple hex form).
#[must_use]
pub fn new_id() -> String {
    uuid::Uuid::now_v7().simple().to_string()
}

/// A short random channel id (8 hex characters, the cc-bridge form).
#[must_use]
pub fn new_channel_id() -> String {
    // The tail of a UUIDv7 is random; its head is the timestamp and would repeat.
    let id = new_id();
    id[id.len() - 8..].to_string()
}

#[cfg(test)]
mod tests {
    use super::{SecondCache, format_time, now, time_at};
    use time::OffsetDateTime;

    #[test]
    fn now_follows_the_system_clock() {
        // Twice: the first call may convert the second, the second one may reuse it.
        for _ in 0..2 {
            let before = OffsetDateTime::now_utc();
            let ours = now();
            let after = OffsetDateTime::now_utc();
            assert!(before <= ours && ours <= after, "{before} {ours} {after}");
            assert_eq!(ours.offset(), time::UtcOffset::UTC);
        }
    }

    #[test]
    fn the_second_cache_is_used_within_a_second_and_replaced_across_seconds() {
        let exact = |seconds: u64, nanos: u32| {
            OffsetDateTime::from_unix_timestamp_nanos(
                i128::from(seconds) * 1_000_000_000 + i128::from(nanos),
            )
            .unwrap()
        };
        let second = 1_795_305_599; // 2026-11-21T23:59:59Z: the next second is another day
        let mut cache: SecondCache = None;
        // Forward within a second, across a second (and a day), and back again, as a clock
        // stepped back by NTP goes.
        for (seconds, nanos) in [
            (second, 0),
            (second, 1),
            (second, 999_999_999),
            (second + 1, 0),
            (second + 1, 500_000_000),
            (second, 250_000_000),
            (second + 86_400 * 366, 7),
        ] {
            assert_eq!(
                time_at(&mut cache, seconds, nanos),
                Some(exact(seconds, nanos)),
                "{seconds}.{nanos:09}"
            );
            assert_eq!(
                cache,
                Some((seconds, exact(seconds, 0))),
                "the second is cached"
            );
        }

        // Within the cached second only the sub-second part changes: the cached date is used,
        // not converted again (a planted wrong one shows through).
        let planted = time::macros::datetime!(2000-01-01 00:00:00 UTC);
        let mut cache: SecondCache = Some((second, planted));
        assert_eq!(
            time_at(&mut cache, second, 42),
            Some(planted.replace_nanosecond(42).unwrap())
        );
        assert_eq!(
            time_at(&mut cache, second + 1, 42),
            Some(exact(second + 1, 42)),
            "another second is converted"
        );

        // Out of range: no time, and the cache stays as it was.
        let before = cache;
        assert_eq!(time_at(&mut cache, u64::MAX, 0), None);
        assert_eq!(cache, before);
    }

    #[test]
    fn format_time_matches_the_generic_rfc3339_formatter() {
        let reference = time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
        );
        // Every month and day boundary of a leap year and a plain one, at odd milliseconds.
        let mut at = time::macros::datetime!(2023-12-31 23:59:59.999 UTC);
        for _ in 0..800 {
            assert_eq!(format_time(at), at.format(reference).unwrap());
            at += time::Duration::milliseconds(86_400_000 + 3_601_007);
        }
        for at in [
            time::macros::datetime!(0000-01-01 00:00:00.000 UTC),
            time::macros::datetime!(9999-12-31 23:59:59.999 UTC),
            OffsetDateTime::UNIX_EPOCH,
            // Another offset is written in UTC.
            time::macros::datetime!(2026-11-21 09:30:00.5 +08:00),
        ] {
            assert_eq!(
                format_time(at),
                at.to_offset(time::UtcOffset::UTC)
                    .format(reference)
                    .unwrap()
            );
        }
        assert_eq!(
            format_time(time::macros::datetime!(2026-11-21 09:30:00.5 +08:00)),
            "2026-11-21T01:30:00.500Z"
        );
        // Within one second and across seconds, back and forth (the per-second cache).
        let base = time::macros::datetime!(2026-11-21 23:59:59.000 UTC);
        for offset_ms in [0, 1, 999, 1000, 1001, 0, 998, -1, 86_400_000, 999] {
            let at = base + time::Duration::milliseconds(offset_ms);
            assert_eq!(
                format_time(at),
                at.format(reference).unwrap(),
                "{offset_ms}"
            );
        }
    }
}
