//! Money in the admin API: exact integer nano-dollars inside, decimal strings of US dollars
//! outside ("0.0008617", "12.5", "0"), never a float with noise such as 0.0008617000000000001.

use serde::{Deserialize, Deserializer, Serializer};

/// Nano-dollars per dollar: nine decimals, finer than any per-token price.
pub const NANOS_PER_USD: i64 = 1_000_000_000;

/// A cost in dollars, rounded once to whole nano-dollars (NaN and infinities count as 0; a
/// value beyond ±9.2 billion dollars saturates).
#[must_use]
pub fn nanos_from_usd(usd: f64) -> i64 {
    if !usd.is_finite() {
        return 0;
    }
    // `as` saturates at the i64 bounds, which is what an absurd cost should do.
    #[allow(clippy::cast_possible_truncation, reason = "rounded first, saturates")]
    let nanos = (usd * 1e9).round() as i64;
    nanos
}

/// Nano-dollars as a decimal string of dollars: at most nine decimals, no trailing zeros, no
/// exponent.
#[must_use]
pub fn format_usd(nanos: i64) -> String {
    let sign = if nanos < 0 { "-" } else { "" };
    let magnitude = nanos.unsigned_abs();
    let per = NANOS_PER_USD.unsigned_abs();
    let (whole, fraction) = (magnitude / per, magnitude % per);
    if fraction == 0 {
        return format!("{sign}{whole}");
    }
    let digits = format!("{fraction:09}");
    format!("{sign}{whole}.{}", digits.trim_end_matches('0'))
}

/// A float cost serialized as its decimal string (`#[serde(serialize_with = ...)]`).
pub fn serialize_usd<S: Serializer>(usd: &f64, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&format_usd(nanos_from_usd(*usd)))
}

/// A cost read back from either form: the decimal string this API writes, or a number.
pub fn deserialize_usd<'de, D: Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        Number(f64),
        Text(String),
    }
    match Either::deserialize(deserializer)? {
        Either::Number(usd) => Ok(usd),
        Either::Text(text) => text
            .parse::<f64>()
            .map_err(|_| serde::de::Error::custom(format!("not a dollar amount: {text:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn costs_format_as_short_exact_decimals() {
        assert_eq!(format_usd(0), "0");
        assert_eq!(format_usd(861_700), "0.0008617");
        assert_eq!(format_usd(12_500_000_000), "12.5");
        assert_eq!(format_usd(1), "0.000000001");
        assert_eq!(format_usd(-1_250_000_000), "-1.25");
        assert_eq!(format_usd(i64::MIN), "-9223372036.854775808");
    }

    #[test]
    fn floats_round_once_to_nanos() {
        assert_eq!(nanos_from_usd(0.000_861_700_000_000_000_1), 861_700);
        assert_eq!(nanos_from_usd(0.1 + 0.2), 300_000_000);
        assert_eq!(nanos_from_usd(f64::NAN), 0);
        assert_eq!(nanos_from_usd(1e30), i64::MAX);
        assert_eq!(format_usd(nanos_from_usd(4.5)), "4.5");
    }
}
