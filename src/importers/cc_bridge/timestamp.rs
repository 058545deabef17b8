//! Timestamps as cc-bridge writes them.
//!
//! JSON files hold RFC 3339 (Go `time.Time`). SQLite `DATETIME` columns hold whatever the Go
//! driver wrote: `time.Time.String()` (`2026-07-01 12:34:56.123456789 +0000 UTC`, possibly with a
//! monotonic `m=+…` suffix), the SQLite form (`2026-07-01 12:34:56.123+00:00`), or SQLite's own
//! `CURRENT_TIMESTAMP` (`2026-07-01 12:34:56`, UTC). Unix seconds or milliseconds are accepted too.

use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

/// Parse any of the forms above; `None` when the text is none of them, or names a moment
/// outside the calendar in UTC (`9999-12-31 23:59 -23:59`), which could not be stored.
pub(crate) fn parse(text: &str) -> Option<OffsetDateTime> {
    parse_any(text).filter(|t| t.checked_to_offset(UtcOffset::UTC).is_some())
}

fn parse_any(text: &str) -> Option<OffsetDateTime> {
    let s = text.trim();
    if s.is_empty() {
        return None;
    }
    if s.bytes().all(|b| b.is_ascii_digit()) {
        let n: i64 = s.parse().ok()?;
        // Milliseconds from 2001-09 on; seconds before (no cc-bridge value is that old).
        return if n >= 1_000_000_000_000 {
            OffsetDateTime::from_unix_timestamp_nanos(i128::from(n) * 1_000_000).ok()
        } else {
            OffsetDateTime::from_unix_timestamp(n).ok()
        };
    }
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        return Some(t);
    }
    parse_loose(s)
}

/// `YYYY-MM-DD[( |T)HH:MM[:SS[.frac]]][ ][Z|±HH[:]MM][ zone][ m=…]`.
fn parse_loose(s: &str) -> Option<OffsetDateTime> {
    let date = parse_date(s.get(..10)?)?;
    let rest = s.get(10..)?;
    if rest.is_empty() {
        return Some(PrimitiveDateTime::new(date, Time::MIDNIGHT).assume_utc());
    }
    let rest = rest.strip_prefix(' ').or_else(|| rest.strip_prefix('T'))?;
    let (time, rest) = parse_time(rest)?;
    let offset = parse_offset(rest.trim_start())?;
    Some(PrimitiveDateTime::new(date, time).assume_offset(offset))
}

fn digits(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn parse_date(s: &str) -> Option<Date> {
    let mut parts = s.split('-');
    let year = i32::try_from(digits(parts.next()?)?).ok()?;
    let month = Month::try_from(u8::try_from(digits(parts.next()?)?).ok()?).ok()?;
    let day = u8::try_from(digits(parts.next()?)?).ok()?;
    if parts.next().is_some() {
        return None;
    }
    Date::from_calendar_date(year, month, day).ok()
}

/// The time of day and what follows it.
fn parse_time(s: &str) -> Option<(Time, &str)> {
    let end = s
        .find(|c: char| !(c.is_ascii_digit() || c == ':' || c == '.'))
        .unwrap_or(s.len());
    let (clock, rest) = s.split_at(end);
    let (hms, fraction) = match clock.split_once('.') {
        Some((hms, fraction)) => (hms, Some(fraction)),
        None => (clock, None),
    };
    let mut fields = hms.split(':');
    let hour = u8::try_from(digits(fields.next()?)?).ok()?;
    let minute = u8::try_from(digits(fields.next()?)?).ok()?;
    let second = match fields.next() {
        Some(text) => u8::try_from(digits(text)?).ok()?,
        None => 0,
    };
    if fields.next().is_some() {
        return None;
    }
    let nanos = match fraction {
        Some(text) => {
            digits(text)?;
            let padded: String = text.chars().chain(std::iter::repeat('0')).take(9).collect();
            padded.parse().ok()?
        }
        None => 0,
    };
    Some((Time::from_hms_nano(hour, minute, second, nanos).ok()?, rest))
}

/// `Z`, `±HH:MM`, `±HHMM` or nothing (UTC); a zone name or monotonic reading after it is ignored.
fn parse_offset(s: &str) -> Option<UtcOffset> {
    if s.is_empty() || s.starts_with("UTC") || s.starts_with("m=") {
        return Some(UtcOffset::UTC);
    }
    if let Some(rest) = s.strip_prefix('Z') {
        return (rest.is_empty() || rest.starts_with(' ')).then_some(UtcOffset::UTC);
    }
    let sign: i8 = match s.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let body = s.get(1..)?;
    let body = body.split(' ').next()?;
    let (hours, minutes) = match body.split_once(':') {
        Some((h, m)) => (h, m),
        None if body.len() == 4 => body.split_at(2),
        None if body.len() == 2 => (body, "00"),
        None => return None,
    };
    let hours = i8::try_from(digits(hours)?).ok()?;
    let minutes = i8::try_from(digits(minutes)?).ok()?;
    UtcOffset::from_hms(sign * hours, sign * minutes, 0).ok()
}

/// relaybox's log form: RFC 3339, UTC, milliseconds (`2026-07-01T12:34:56.123Z`).
pub(crate) fn to_log_form(t: OffsetDateTime) -> String {
    let format =
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    t.to_offset(UtcOffset::UTC)
        .format(&format)
        .unwrap_or_else(|_| t.to_string())
}

/// A log time column: normalised when it parses, kept as written otherwise; Go's zero time and
/// empty values are `None`.
pub(crate) fn log_time(text: &str) -> Option<String> {
    if text.trim().is_empty() {
        return None;
    }
    match parse(text) {
        Some(t) if t.year() <= 1 => None,
        Some(t) => Some(to_log_form(t)),
        None => Some(text.to_string()),
    }
}

/// Whether a JSON timestamp is valid RFC 3339 (what Go writes for `time.Time`).
pub(crate) fn is_rfc3339(text: &str) -> bool {
    OffsetDateTime::parse(text, &Rfc3339).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_forms_go_and_sqlite_write() {
        let want = "2026-07-01T12:34:56.123Z";
        for text in [
            "2026-07-01T12:34:56.123Z",
            "2026-07-01T14:34:56.123+02:00",
            "2026-07-01 12:34:56.123456789 +0000 UTC",
            "2026-07-01 20:34:56.123 +0800 CST m=+12.000000001",
            "2026-07-01 12:34:56.123+00:00",
            "1782909296123",
        ] {
            assert_eq!(
                parse(text).map(to_log_form).as_deref(),
                Some(want),
                "{text}"
            );
        }
        assert_eq!(
            log_time("2026-07-01 12:34:56").as_deref(),
            Some("2026-07-01T12:34:56.000Z")
        );
        assert_eq!(
            log_time("2026-07-01").as_deref(),
            Some("2026-07-01T00:00:00.000Z")
        );
        assert_eq!(log_time("0001-01-01 00:00:00 +0000 UTC"), None);
        assert_eq!(log_time(""), None);
        assert_eq!(log_time("yesterday").as_deref(), Some("yesterday"));
        assert!(parse("2026-13-01 00:00:00").is_none());
        // Past the end of the calendar once in UTC: not a time (converting it used to panic).
        assert_eq!(parse("9999-12-31 23:59:59.999-23:59"), None);
        assert_eq!(
            log_time("9999-12-31T23:59:59-23:59").as_deref(),
            Some("9999-12-31T23:59:59-23:59")
        );
        assert!(is_rfc3339("2026-08-01T00:00:00Z"));
        assert!(!is_rfc3339("2026-08-01"));
    }
}

#[cfg(test)]
mod proptests {
    //! Any text, and every form of a time near the ends of the calendar, parses or not without
    //! a panic, and a parsed time always has a log form.

    use proptest::prelude::*;

    use super::*;
    use crate::providers::proptest_support::config;

    fn near_the_edges() -> impl Strategy<Value = String> {
        (
            prop::sample::select(vec!["0000", "0001", "1970", "2026", "9999", "-9999"]),
            prop::sample::select(vec![(1u8, 1u8), (12, 31), (2, 29), (6, 15)]),
            prop::sample::select(vec![(0u8, 0u8), (23, 59), (12, 30)]),
            prop::sample::select(vec![
                "Z",
                "+00:00",
                "-23:59",
                "+23:59",
                " +1400 ",
                " -1200 UTC",
                "",
                " m=+1.0",
            ]),
            any::<bool>(),
        )
            .prop_map(|(year, (month, day), (hour, minute), offset, t)| {
                let sep = if t { 'T' } else { ' ' };
                format!("{year}-{month:02}-{day:02}{sep}{hour:02}:{minute:02}:59.999{offset}")
            })
    }

    proptest! {
        #![proptest_config(config(512))]

        #[test]
        fn any_text_parses_or_not_without_panic(
            text in prop_oneof![near_the_edges(), ".{0,40}", "[0-9]{1,20}", "[0-9: .+TZ-]{0,30}"],
        ) {
            if let Some(time) = parse(&text) {
                prop_assert!(!to_log_form(time).is_empty());
            }
            let _ = log_time(&text);
            let _ = is_rfc3339(&text);
        }
    }
}
