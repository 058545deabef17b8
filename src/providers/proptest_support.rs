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

/// JSON values with awkward strings (quotes, braces, escapes, non-ASCII) at any depth.
pub(crate) fn json_value() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value;
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-1e12..1e12f64).prop_map(Value::from),
        awkward_text().prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map(awkward_text(), inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}
