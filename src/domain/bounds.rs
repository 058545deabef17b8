//! What admin input may hold: one [`Bounds`] per numeric field, checked by each input type's
//! `validate()`, and [`InvalidField`], the typed error that names the field and its range.
//!
//! Adding a bound for a new field is one line in that type's `validate()`:
//! `SECONDS_UP_TO_A_DAY.check("streamIdleTimeoutSeconds", self.stream_idle_timeout_seconds)?;`

use std::fmt::Display;

use serde_json::{Map, Value};

/// A value an input type cannot hold: which field (a dotted path such as
/// `limits.tokensPerWindow.windowSeconds`), and what it must be instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} {rule}")]
pub struct InvalidField {
    pub field: String,
    /// `must be between 1 and 86400, not 0`, `is not a known field`, …
    pub rule: String,
}

impl InvalidField {
    #[must_use]
    pub fn new(field: impl Into<String>, rule: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            rule: rule.into(),
        }
    }

    /// A field the input type does not have.
    #[must_use]
    pub fn unknown(field: impl Into<String>) -> Self {
        Self::new(field, "is not a known field")
    }

    /// The same problem, one level deeper (`limits` + `costPerDay`).
    #[must_use]
    pub fn under(mut self, parent: &str) -> Self {
        self.field = format!("{parent}.{}", self.field);
        self
    }
}

/// The closed range a number must lie in (`min` excluded when `above_min`). The range is part
/// of every error message, so a caller learns what is allowed, not only what is not.
#[derive(Debug, Clone, Copy)]
pub struct Bounds<T> {
    pub min: T,
    pub max: T,
    pub above_min: bool,
    /// What the number counts (`seconds`, `bytes`, `USD`), for the message.
    pub unit: &'static str,
}

impl<T: PartialOrd + Display + Copy> Bounds<T> {
    /// `min ..= max`.
    #[must_use]
    pub const fn between(min: T, max: T, unit: &'static str) -> Self {
        Self {
            min,
            max,
            above_min: false,
            unit,
        }
    }

    /// `min < value <= max` (amounts of money, where 0 would refuse everything).
    #[must_use]
    pub const fn above(min: T, max: T, unit: &'static str) -> Self {
        Self {
            min,
            max,
            above_min: true,
            unit,
        }
    }

    #[must_use]
    pub fn contains(&self, value: T) -> bool {
        // Written so that NaN is outside every range.
        let low = if self.above_min {
            value > self.min
        } else {
            value >= self.min
        };
        low && value <= self.max
    }

    /// `Ok` inside the range, else an error naming `field`, the range and the value.
    pub fn check(&self, field: &str, value: T) -> Result<(), InvalidField> {
        if self.contains(value) {
            return Ok(());
        }
        let unit = if self.unit.is_empty() {
            String::new()
        } else {
            format!(" {}", self.unit)
        };
        let rule = if self.above_min {
            format!(
                "must be above {} and at most {}{unit}, not {value}",
                self.min, self.max
            )
        } else {
            format!(
                "must be between {} and {}{unit}, not {value}",
                self.min, self.max
            )
        };
        Err(InvalidField::new(field, rule))
    }

    /// [`Self::check`] for an optional field (absent is always fine).
    pub fn check_some(&self, field: &str, value: Option<T>) -> Result<(), InvalidField> {
        value.map_or(Ok(()), |v| self.check(field, v))
    }
}

/// The fields of an admin JSON object that a type would keep only as carried-over extras
/// (its `#[serde(flatten)] extra`): unknown to relaybox, so refused. A field the stored record
/// already carries with the same value is let through, so a document read with GET can be sent
/// back unchanged.
pub fn unknown_fields(
    sent: &Map<String, Value>,
    landed_in_extra: &Map<String, Value>,
    stored_extra: Option<&Map<String, Value>>,
) -> Result<(), InvalidField> {
    for field in sent.keys() {
        if landed_in_extra.contains_key(field)
            && stored_extra.and_then(|s| s.get(field)) != sent.get(field)
        {
            return Err(InvalidField::unknown(field.as_str()));
        }
    }
    Ok(())
}

/// The fields of an admin JSON object that are not in `known` (types without extras).
pub fn only_fields(sent: &Map<String, Value>, known: &[&str]) -> Result<(), InvalidField> {
    match sent.keys().find(|field| !known.contains(&field.as_str())) {
        Some(field) => Err(InvalidField::new(
            field.as_str(),
            format!("is not a known field (known: {})", known.join(", ")),
        )),
        None => Ok(()),
    }
}

// ---- the shared ranges ----------------------------------------------------------------------

pub const DAY_SECONDS: u64 = 86_400;
/// Ten years: the longest window, expiry or period anything may have.
pub const TEN_YEARS_SECONDS: u64 = 10 * 365 * DAY_SECONDS;
/// Money: far beyond any real budget or price, small enough that sums stay exact enough.
pub const MAX_USD: f64 = 1e9;
/// Counts of requests, tokens or attempts per window.
pub const MAX_COUNT: f64 = 1e15;

/// A duration that may be 0 (off) and at most a day.
pub const SECONDS_UP_TO_A_DAY: Bounds<u64> = Bounds::between(0, DAY_SECONDS, "seconds");
/// A duration of up to a day where 0 turns the bound off.
pub const SECONDS_UP_TO_A_DAY_OR_OFF: Bounds<u64> =
    Bounds::between(0, DAY_SECONDS, "seconds (0 = off)");
/// A duration that must be at least a second and at most a day.
pub const SECONDS_1_TO_A_DAY: Bounds<u64> = Bounds::between(1, DAY_SECONDS, "seconds");
/// A rolling window.
pub const WINDOW_SECONDS: Bounds<u64> = Bounds::between(1, TEN_YEARS_SECONDS, "seconds");
/// An amount of money that must be above 0 (a limit of 0 would refuse every request).
pub const POSITIVE_USD: Bounds<f64> = Bounds::above(0.0, MAX_USD, "USD");
/// A price: 0 means free.
pub const PRICE_USD: Bounds<f64> = Bounds::between(0.0, MAX_USD, "USD per million tokens");
/// A cost multiplier.
pub const MULTIPLIER: Bounds<f64> = Bounds::between(0.0, 1000.0, "");
/// A request or token count limit.
pub const POSITIVE_COUNT: Bounds<f64> = Bounds::above(0.0, MAX_COUNT, "");
/// Per-minute or concurrent request limits.
pub const POSITIVE_U32: Bounds<u32> = Bounds::between(1, 1_000_000, "");

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail loudly")]

    use super::*;

    #[test]
    fn bounds_name_the_field_and_the_range() {
        let b = Bounds::between(1_u64, 10, "seconds");
        assert!(b.check("x", 1).is_ok() && b.check("x", 10).is_ok());
        assert_eq!(
            b.check("x", 0).unwrap_err().to_string(),
            "x must be between 1 and 10 seconds, not 0"
        );
        assert!(b.check("x", u64::MAX).is_err());
        let money = POSITIVE_USD;
        for bad in [0.0, -5.0, f64::NAN, f64::INFINITY, 2e9] {
            let err = money.check("costPerDay", bad).unwrap_err();
            assert_eq!(err.field, "costPerDay");
            assert!(err.rule.contains("above 0"), "{err}");
        }
        assert!(money.check("costPerDay", 0.01).is_ok());
        assert!(money.check_some("costPerDay", None).is_ok());
    }

    #[test]
    fn unknown_fields_are_those_that_would_land_in_extra() {
        let sent: Map<String, Value> =
            serde_json::from_str(r#"{"a":1,"legacy":2,"bogusKnob":1}"#).unwrap_or_default();
        let landed: Map<String, Value> =
            serde_json::from_str(r#"{"legacy":2,"bogusKnob":1}"#).unwrap_or_default();
        let stored: Map<String, Value> =
            serde_json::from_str(r#"{"legacy":2}"#).unwrap_or_default();
        let err = unknown_fields(&sent, &landed, Some(&stored)).unwrap_err();
        assert_eq!(err.field, "bogusKnob");
        assert!(unknown_fields(&sent, &Map::new(), None).is_ok());
    }
}
