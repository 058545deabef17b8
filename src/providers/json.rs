//! Allocation-light JSON helpers shared by the protocol files: tolerant token counts, and
//! byte-level look-ups that find one key's value without parsing the whole document.

use std::borrow::Cow;
use std::fmt;

use memchr::memmem;
use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// A token count as upstreams send it. Tolerant: `null`, negative numbers, booleans, objects and
/// unparsable strings count as 0; floats are rounded; numeric strings are read. One odd field
/// must not cost the whole usage record.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Count(pub u64);

impl<'de> Deserialize<'de> for Count {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(CountVisitor)
    }
}

struct CountVisitor;

impl<'de> Visitor<'de> for CountVisitor {
    type Value = Count;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a token count")
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Count, E> {
        Ok(Count(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Count, E> {
        Ok(Count(u64::try_from(v).unwrap_or(0)))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Count, E> {
        // A float-to-int `as` cast saturates: NaN and negatives become 0, huge values u64::MAX.
        Ok(Count(v.round() as u64))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Count, E> {
        Ok(Count(v.trim().parse().unwrap_or(0)))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Count, E> {
        Ok(Count(0))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Count, E> {
        Ok(Count(0))
    }

    fn visit_none<E: de::Error>(self) -> Result<Count, E> {
        Ok(Count(0))
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Count, D::Error> {
        Count::deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Count, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Count(0))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Count, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Count(0))
    }
}

/// The count a raw JSON value stands for, as [`Count`] reads it; plain digits without serde.
pub(crate) fn count_of(raw: &[u8]) -> u64 {
    if !raw.is_empty() && raw.len() <= 19 && raw.iter().all(u8::is_ascii_digit) {
        return raw
            .iter()
            .fold(0, |n, digit| n * 10 + u64::from(digit - b'0'));
    }
    serde_json::from_slice::<Count>(raw).map_or(0, |c| c.0)
}

/// Reads an optional count as a plain number (absent or `null` = 0).
pub(crate) fn count(c: Option<Count>) -> u64 {
    c.map_or(0, |c| c.0)
}

/// Only the `type` of an event object.
#[derive(Deserialize)]
struct TypeOnly<'a> {
    #[serde(borrow, default, rename = "type")]
    kind: Option<Cow<'a, str>>,
}

/// The `"type"` of an event's JSON object. Cheap when `type` is the first key (the usual
/// layout): read straight off the bytes. Otherwise the object is parsed for that one field.
pub(crate) fn event_type(data: &[u8]) -> Option<Cow<'_, [u8]>> {
    if let Some(kind) = leading_type(data) {
        return Some(Cow::Borrowed(kind));
    }
    let parsed: TypeOnly<'_> = serde_json::from_slice(data).ok()?;
    match parsed.kind? {
        Cow::Borrowed(s) => Some(Cow::Borrowed(s.as_bytes())),
        Cow::Owned(s) => Some(Cow::Owned(s.into_bytes())),
    }
}

/// `{"type":"X"` at the start of `data` (whitespace allowed, no escapes in X) → `X`.
fn leading_type(data: &[u8]) -> Option<&[u8]> {
    let rest = skip_ws(data, 0);
    let rest = expect(data, rest, b'{')?;
    let rest = skip_ws(data, rest);
    let rest = data
        .get(rest..)?
        .strip_prefix(b"\"type\"")
        .map(|r| data.len() - r.len())?;
    let rest = skip_ws(data, rest);
    let rest = expect(data, rest, b':')?;
    let rest = skip_ws(data, rest);
    let start = expect(data, rest, b'"')?;
    let len = memchr::memchr2(b'"', b'\\', data.get(start..)?)?;
    (data.get(start + len) == Some(&b'"')).then(|| &data[start..start + len])
}

fn skip_ws(data: &[u8], mut i: usize) -> usize {
    while data.get(i).is_some_and(u8::is_ascii_whitespace) {
        i += 1;
    }
    i
}

fn expect(data: &[u8], i: usize, byte: u8) -> Option<usize> {
    (data.get(i) == Some(&byte)).then_some(i + 1)
}

/// The raw JSON value of the first `"key": value` pair found anywhere in `json`, located by a
/// byte search instead of a parse. `quoted_key` includes the quotes (`b"\"usageMetadata\""`).
///
/// Sound for keys that only occur as object keys: a string value cannot contain the quoted key
/// unescaped, so any hit followed by `:` is a real key. The value's extent is found by a
/// string-aware bracket scan.
pub(crate) fn find_value<'a>(json: &'a [u8], quoted_key: &[u8]) -> Option<&'a [u8]> {
    find_span(json, quoted_key).map(|(start, end)| &json[start..end])
}

/// What follows the value of the first `"key": value` pair (the whole of `json` when there is
/// none): to look past a part of the document that may hold arbitrary keys.
pub(crate) fn after_value<'a>(json: &'a [u8], quoted_key: &[u8]) -> &'a [u8] {
    find_span(json, quoted_key).map_or(json, |(_, end)| &json[end..])
}

/// Start and end of the value found by [`find_value`].
fn find_span(json: &[u8], quoted_key: &[u8]) -> Option<(usize, usize)> {
    let mut from = 0;
    while let Some(at) = memmem::find(json.get(from..)?, quoted_key) {
        let after_key = from + at + quoted_key.len();
        let colon = skip_ws(json, after_key);
        if json.get(colon) == Some(&b':') {
            let start = skip_ws(json, colon + 1);
            return Some((start, value_end(json, start)?));
        }
        from = after_key;
    }
    None
}

/// As [`find_value`], but the LAST `"key": value` pair: for keys that a document has at top
/// level after a part holding arbitrary objects (Gemini puts `usageMetadata` and
/// `modelVersion` after the candidates, whose function-call arguments may use any key).
pub(crate) fn find_last_value<'a>(json: &'a [u8], quoted_key: &[u8]) -> Option<&'a [u8]> {
    let mut end = json.len();
    while let Some(at) = memmem::rfind(&json[..end], quoted_key) {
        let colon = skip_ws(json, at + quoted_key.len());
        if json.get(colon) == Some(&b':') {
            let start = skip_ws(json, colon + 1);
            let value_end = value_end(json, start)?;
            return Some(&json[start..value_end]);
        }
        end = at;
    }
    None
}

/// The first key of a JSON object (`{"error": …` → `error`), read off the bytes; `None` when
/// the key has escapes.
pub(crate) fn first_key(data: &[u8]) -> Option<&[u8]> {
    let start = skip_ws(data, 0);
    let start = expect(data, start, b'{')?;
    let start = expect(data, skip_ws(data, start), b'"')?;
    let len = memchr::memchr2(b'"', b'\\', data.get(start..)?)?;
    (data.get(start + len) == Some(&b'"')).then(|| &data[start..start + len])
}

/// True when `quoted_key` occurs as a key whose value is not `null`.
pub(crate) fn has_non_null(json: &[u8], quoted_key: &[u8]) -> bool {
    find_value(json, quoted_key).is_some_and(|v| v != b"null")
}

/// The top-level `"key": value` pairs of a JSON object, raw and in document order. Keys come
/// without their quotes and as written (escapes are not decoded). The walk steps over nested
/// values with a string-aware bracket scan instead of parsing them; it does not validate, and
/// stops at the first thing that is not a member.
pub(crate) fn members(json: &[u8]) -> Members<'_> {
    let start = expect(json, skip_ws(json, 0), b'{');
    Members {
        json,
        at: start.unwrap_or(json.len()),
    }
}

pub(crate) struct Members<'a> {
    json: &'a [u8],
    at: usize,
}

impl<'a> Iterator for Members<'a> {
    type Item = (&'a [u8], &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        let json = self.json;
        // Any early return below leaves `at` at the end: the walk is over.
        let at = std::mem::replace(&mut self.at, json.len());
        let key_start = expect(json, skip_ws(json, at), b'"')?;
        let key_end = string_end(json, key_start - 1)?;
        let colon = expect(json, skip_ws(json, key_end), b':')?;
        let value_start = skip_ws(json, colon);
        let value_end = value_end(json, value_start)?;
        let next = skip_ws(json, value_end);
        if json.get(next) == Some(&b',') {
            self.at = next + 1;
        }
        Some((&json[key_start..key_end - 1], &json[value_start..value_end]))
    }
}

/// A raw JSON string value, unescaped (borrowed when it has no escapes).
pub(crate) fn string_value(raw: &[u8]) -> Option<Cow<'_, str>> {
    let inner = raw.strip_prefix(b"\"")?.strip_suffix(b"\"")?;
    if inner.contains(&b'\\') {
        return serde_json::from_slice::<String>(raw).ok().map(Cow::Owned);
    }
    std::str::from_utf8(inner).ok().map(Cow::Borrowed)
}

/// End (exclusive) of the JSON value starting at `start`.
fn value_end(json: &[u8], start: usize) -> Option<usize> {
    match *json.get(start)? {
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut i = start;
            while i < json.len() {
                match json[i] {
                    b'"' => i = string_end(json, i)? - 1,
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(i + 1);
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
            None
        }
        b'"' => string_end(json, start),
        _ => {
            let len = json[start..]
                .iter()
                .position(|&b| matches!(b, b',' | b'}' | b']') || b.is_ascii_whitespace())
                .unwrap_or(json.len() - start);
            (len > 0).then_some(start + len)
        }
    }
}

/// End (exclusive, after the closing quote) of the JSON string whose opening quote is at `start`.
fn string_end(json: &[u8], start: usize) -> Option<usize> {
    let mut i = start + 1;
    loop {
        let at = memchr::memchr2(b'"', b'\\', json.get(i..)?)?;
        i += at;
        if json[i] == b'\\' {
            i += 2;
        } else {
            return Some(i + 1);
        }
    }
}

/// True for a raw JSON array value with at least one element.
pub(crate) fn non_empty_array(raw: &[u8]) -> bool {
    raw.first() == Some(&b'[') && raw.get(skip_ws(raw, 1)).is_some_and(|&b| b != b']')
}

/// `data` without surrounding ASCII whitespace.
pub(crate) fn trim(data: &[u8]) -> &[u8] {
    data.trim_ascii()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Counts {
        a: Option<Count>,
        b: Option<Count>,
        c: Option<Count>,
        d: Option<Count>,
        e: Option<Count>,
        f: Option<Count>,
        g: Option<Count>,
    }

    #[test]
    fn counts_are_tolerant() {
        let c: Counts = serde_json::from_str(
            r#"{"a":12,"b":null,"c":-3,"d":7.6,"e":"41","f":{"x":1},"g":[1,2]}"#,
        )
        .unwrap();
        assert_eq!(
            [c.a, c.b, c.c, c.d, c.e, c.f, c.g].map(count),
            [12, 0, 0, 8, 41, 0, 0]
        );
        let missing: Counts = serde_json::from_str("{}").unwrap();
        assert_eq!(count(missing.a), 0);
    }

    #[test]
    fn members_walks_the_top_level_only() {
        let json = br#" { "model" : "m\"x" , "content":[{"usage":{"a":1}},"}]"],"n":-1.5e3,
            "usage":{"input_tokens":3},"t":true,"z":null } "#;
        let found: Vec<(&[u8], &[u8])> = members(json).collect();
        let keys: Vec<&[u8]> = found.iter().map(|(k, _)| *k).collect();
        assert_eq!(
            keys,
            [&b"model"[..], b"content", b"n", b"usage", b"t", b"z"]
        );
        assert_eq!(found[0].1, br#""m\"x""#);
        assert_eq!(found[1].1, br#"[{"usage":{"a":1}},"}]"]"#);
        assert_eq!(found[2].1, b"-1.5e3");
        assert_eq!(found[3].1, br#"{"input_tokens":3}"#);
        assert_eq!(found[5].1, b"null");
        assert_eq!(string_value(found[0].1).as_deref(), Some("m\"x"));
        assert_eq!(string_value(br#""plain""#), Some(Cow::Borrowed("plain")));
        assert_eq!(string_value(b"12"), None);
        // Not an object, or broken off: the walk ends where the members end.
        assert_eq!(members(b"[1,2]").count(), 0);
        assert_eq!(members(b"").count(), 0);
        assert_eq!(members(b"{}").count(), 0);
        let cut: Vec<&[u8]> = members(br#"{"a":1,"b":{"c":"#).map(|(k, _)| k).collect();
        assert_eq!(cut, [&b"a"[..]]);
        assert_eq!(members(br#"{"a" 1}"#).count(), 0);
    }

    #[test]
    fn count_of_reads_raw_values_like_count() {
        for (raw, expected) in [
            (&b"0"[..], 0),
            (b"1234", 1234),
            (b"9999999999999999999", 9_999_999_999_999_999_999),
            (b"18446744073709551615", u64::MAX),
            (b"7.6", 8),
            (b"-3", 0),
            (b"\"41\"", 41),
            (b"null", 0),
            (b"true", 0),
            (b"{\"x\":1}", 0),
            (b"[1]", 0),
            (b"", 0),
        ] {
            assert_eq!(count_of(raw), expected, "{}", String::from_utf8_lossy(raw));
        }
    }

    #[test]
    fn event_type_fast_and_slow_path() {
        assert_eq!(
            event_type(br#"{"type":"message_start","message":{}}"#).as_deref(),
            Some(&b"message_start"[..])
        );
        assert_eq!(
            event_type(b" { \"type\" : \"ping\" }").as_deref(),
            Some(&b"ping"[..])
        );
        // Not the first key: parsed.
        assert_eq!(
            event_type(br#"{"sequence_number":3,"type":"response.output_text.delta"}"#).as_deref(),
            Some(&b"response.output_text.delta"[..])
        );
        // Escapes in the value: parsed (and unescaped).
        assert_eq!(
            event_type(br#"{"type":"a\u0062c"}"#).as_deref(),
            Some(&b"abc"[..])
        );
        assert_eq!(event_type(b"[DONE]"), None);
        assert_eq!(event_type(br#"{"other":1}"#), None);
    }

    #[test]
    fn find_value_locates_nested_values() {
        let json = br#"{"candidates":[{"content":{"parts":[{"text":"say \"usageMetadata\": {x}"}]}}],
            "usageMetadata" : {"promptTokenCount": 5, "promptTokensDetails":[{"modality":"TEXT","tokenCount":5}]},
            "modelVersion":"gemini-2.5-flash","n":12,"z":null}"#;
        assert_eq!(
            find_value(json, b"\"usageMetadata\""),
            Some(
                &br#"{"promptTokenCount": 5, "promptTokensDetails":[{"modality":"TEXT","tokenCount":5}]}"#[..]
            )
        );
        assert_eq!(
            find_value(json, b"\"modelVersion\""),
            Some(&br#""gemini-2.5-flash""#[..])
        );
        assert_eq!(find_value(json, b"\"n\""), Some(&b"12"[..]));
        assert_eq!(
            find_value(json, b"\"parts\""),
            Some(&br#"[{"text":"say \"usageMetadata\": {x}"}]"#[..])
        );
        assert!(has_non_null(json, b"\"n\""));
        assert!(!has_non_null(json, b"\"z\""));
        assert!(!has_non_null(json, b"\"missing\""));
        // A truncated document has no value end.
        assert_eq!(find_value(br#"{"a":{"b":1"#, b"\"a\""), None);
        assert_eq!(find_value(br#"{"a":"#, b"\"a\""), None);
    }

    #[test]
    fn last_value_and_first_key() {
        let json = br#"{"candidates":[{"content":{"parts":[{"functionCall":{"name":"f","args":{"usageMetadata":{"x":1},"error":"e"}}}]},"finishReason":"STOP"}],"usageMetadata":{"promptTokenCount":3},"modelVersion":"m"}"#;
        assert_eq!(
            find_value(json, b"\"usageMetadata\""),
            Some(&br#"{"x":1}"#[..])
        );
        assert_eq!(
            find_last_value(json, b"\"usageMetadata\""),
            Some(&br#"{"promptTokenCount":3}"#[..])
        );
        assert_eq!(
            find_last_value(json, b"\"finishReason\""),
            Some(&br#""STOP""#[..])
        );
        assert_eq!(find_last_value(json, b"\"missing\""), None);
        assert_eq!(first_key(json), Some(&b"candidates"[..]));
        assert_eq!(first_key(b" {\r\n  \"error\": {}}"), Some(&b"error"[..]));
        assert_eq!(first_key(b"{}"), None);
        assert_eq!(first_key(b"[1]"), None);
    }

    #[test]
    fn non_empty_arrays() {
        assert!(non_empty_array(b"[1]"));
        assert!(non_empty_array(b"[ {\"text\":\"\"} ]"));
        assert!(!non_empty_array(b"[ ]"));
        assert!(!non_empty_array(b"[]"));
        assert!(!non_empty_array(b"{}"));
    }
}

#[cfg(test)]
mod proptests {
    //! The byte-level walks agree with serde_json on valid JSON and never panic on any bytes.

    use proptest::prelude::*;
    use serde_json::{Map, Value};

    use super::*;
    use crate::providers::proptest_support::{awkward_text, config, json_value};

    fn object() -> impl Strategy<Value = Map<String, Value>> {
        prop::collection::btree_map(awkward_text(), json_value(), 0..6)
            .prop_map(|m| m.into_iter().collect())
    }

    /// Compact or pretty (whitespace, newlines between tokens).
    fn render(value: &Value, pretty: bool) -> String {
        if pretty {
            serde_json::to_string_pretty(value).unwrap_or_default()
        } else {
            serde_json::to_string(value).unwrap_or_default()
        }
    }

    proptest! {
        #![proptest_config(config(256))]

        #[test]
        fn members_are_the_top_level_of_serde_json(object in object(), pretty in any::<bool>()) {
            let text = render(&Value::Object(object.clone()), pretty);
            let found: Vec<(String, Value)> = members(text.as_bytes())
                .map(|(key, value)| {
                    let key = [b"\"", key, b"\""].concat();
                    (
                        serde_json::from_slice::<String>(&key).unwrap_or_default(),
                        serde_json::from_slice::<Value>(value).unwrap_or(Value::Bool(false)),
                    )
                })
                .collect();
            let want: Vec<(String, Value)> = object.into_iter().collect();
            prop_assert_eq!(found, want);
        }

        #[test]
        fn find_value_reads_a_key_serde_json_reads(
            object in object(),
            key in "[a-zA-Z]{1,12}",
            value in json_value(),
            pretty in any::<bool>(),
        ) {
            // The key must be the only one of its name (find_value finds the first anywhere).
            let quoted = format!("\"{key}\"");
            prop_assume!(!serde_json::to_string(&object).unwrap_or_default().contains(&quoted));
            prop_assume!(!serde_json::to_string(&value).unwrap_or_default().contains(&quoted));
            prop_assert_eq!(
                has_non_null(text_of(&object, &key, &value, pretty).as_bytes(), quoted.as_bytes()),
                !value.is_null()
            );
            let mut object = object;
            object.insert(key.clone(), value.clone());
            let text = render(&Value::Object(object), pretty);
            let parse = |raw: Option<&[u8]>| raw.and_then(|r| serde_json::from_slice::<Value>(r).ok());
            prop_assert_eq!(parse(find_value(text.as_bytes(), quoted.as_bytes())), Some(value.clone()));
            prop_assert_eq!(parse(find_last_value(text.as_bytes(), quoted.as_bytes())), Some(value));

        }

        #[test]
        fn counts_and_strings_agree_with_serde(value in json_value()) {
            let raw = serde_json::to_string(&value).unwrap_or_default();
            prop_assert_eq!(
                count_of(raw.as_bytes()),
                serde_json::from_str::<Count>(&raw).map_or(0, |c| c.0)
            );
            prop_assert_eq!(
                string_value(raw.as_bytes()).map(std::borrow::Cow::into_owned),
                value.as_str().map(str::to_owned)
            );
            if let Value::Object(map) = &value
                && let Some(first) = map.keys().next()
                && !first.contains(['"', '\\'])
                && !first.chars().any(char::is_control)
            {
                prop_assert_eq!(first_key(raw.as_bytes()), Some(first.as_bytes()));
            }
            let event = format!(r#"{{"type":{},"x":{raw}}}"#, serde_json::to_string(&value.to_string()).unwrap_or_default());
            prop_assert_eq!(
                event_type(event.as_bytes()).map(|t| t.into_owned()),
                Some(value.to_string().into_bytes())
            );
        }

        #[test]
        fn walks_never_panic_on_arbitrary_bytes(
            bytes in prop::collection::vec(
                prop_oneof![3 => any::<u8>(), 2 => prop::sample::select(b"{}[]\":,\\ 0".to_vec())],
                0..300,
            ),
        ) {
            let walked: usize = members(&bytes).map(|(k, v)| k.len() + v.len()).sum();
            prop_assert!(walked <= bytes.len());
            for key in [&b"\"a\""[..], b"\"usage\"", b"\""] {
                let _ = find_value(&bytes, key);
                let _ = find_last_value(&bytes, key);
                let _ = has_non_null(&bytes, key);
                prop_assert!(after_value(&bytes, key).len() <= bytes.len());
            }
            let _ = first_key(&bytes);
            let _ = event_type(&bytes);
            let _ = count_of(&bytes);
            let _ = string_value(&bytes);
            let _ = non_empty_array(&bytes);
        }
    }

    /// `object` with `key: value` added, rendered.
    fn text_of(object: &Map<String, Value>, key: &str, value: &Value, pretty: bool) -> String {
        let mut object = object.clone();
        object.insert(key.to_owned(), value.clone());
        render(&Value::Object(object), pretty)
    }
}
