//! Shared pieces of the property tests: the case budget and cuts of a byte stream.

use proptest::prelude::*;
use proptest::test_runner::Config;

/// `cases` per property unless `PROPTEST_CASES` says otherwise; failures are not written to
/// `proptest-regressions/` (a real failure becomes a named unit test instead).
pub(crate) fn config(cases: u32) -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(cases);
    Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    }
}

/// Sorted cut positions inside `0..=len`, as fractions turned into offsets by [`cuts_of`].
pub(crate) fn cut_points() -> impl Strategy<Value = Vec<f64>> {
    prop::collection::vec(0.0..=1.0f64, 0..12)
}

/// Fractions → sorted byte offsets into a stream of `len` bytes (duplicates give empty chunks).
pub(crate) fn cuts_of(fractions: &[f64], len: usize) -> Vec<usize> {
    let mut cuts: Vec<usize> = fractions
        .iter()
        .map(|f| ((len as f64) * f).floor() as usize)
        .map(|c| c.min(len))
        .collect();
    cuts.sort_unstable();
    cuts
}

/// `\n` or `\r\n`.
pub(crate) fn line_end() -> impl Strategy<Value = &'static str> {
    prop_oneof![Just("\n"), Just("\r\n")]
}

/// Text with the characters that trouble framers: newlines, quotes, braces, `data:` itself.
pub(crate) fn awkward_text() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            4 => "[a-zA-Z0-9 ]{1,6}",
            1 => Just("\n".to_string()),
            1 => Just("\r\n".to_string()),
            1 => Just("\"".to_string()),
            1 => Just("\\".to_string()),
            1 => Just("{[}]".to_string()),
            1 => Just("data: x\n\n".to_string()),
            1 => Just("é😀".to_string()),
        ],
        0..8,
    )
    .prop_map(|parts| parts.concat())
}
