//! Plain data types and rules of relaybox: no IO, no HTTP, no storage engine.
//!
//! Field names follow cc-bridge (camelCase) wherever it has them, so its files import unchanged
//! and the admin API speaks the same names.

pub mod channel;
pub mod key;
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
        static LAST_SECOND: Cell<Option<(u64, OffsetDateTime)>> = const { Cell::new(None) };
    }
    let Ok(since_epoch) = SystemTime::now().duration_since(UNIX_EPOCH) else {
        return OffsetDateTime::now_utc();
    };
    let (seconds, nanos) = (since_epoch.as_secs(), since_epoch.subsec_nanos());
    LAST_SECOND.with(|last| {
        if let Some((second, at)) = last.get()
            && second == seconds
            && let Ok(now) = at.replace_nanosecond(nanos)
        {
            return now;
        }
        let Some(whole) = i64::try_from(seconds)
            .ok()
            .and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok())
        else {
            return OffsetDateTime::now_utc();
        };
        last.set(Some((seconds, whole)));
        whole.replace_nanosecond(nanos).unwrap_or(whole)
    })
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
    use super::{format_time, now};
    use time::OffsetDateTime;

    #[test]
    fn now_follows_the_system_clock_within_and_across_seconds() {
        for _ in 0..3 {
            let before = OffsetDateTime::now_utc();
            let ours = now();
            let after = OffsetDateTime::now_utc();
            assert!(before <= ours && ours <= after, "{before} {ours} {after}");
            assert_eq!(ours.offset(), time::UtcOffset::UTC);
            std::thread::sleep(std::time::Duration::from_millis(600));
        }
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
