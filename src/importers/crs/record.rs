//! One claude-relay-service record (a Redis hash, or Bedrock's JSON document) with the value
//! conventions of the format notes §0: booleans are `'true'`/`'false'`, numbers decimal
//! strings, lists and objects JSON strings, times ISO-8601 UTC; `''` means "not set".

use std::collections::BTreeMap;

use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

#[derive(Debug, Clone)]
pub(crate) struct Record {
    pub fields: BTreeMap<String, String>,
}

impl Record {
    pub fn from_hash(fields: &BTreeMap<String, String>) -> Self {
        Self {
            fields: fields.clone(),
        }
    }

    /// Bedrock keeps a JSON document with native types; flatten it to the hash conventions.
    pub fn from_json(text: &str) -> Result<Self, String> {
        let value: Value =
            serde_json::from_str(text).map_err(|e| format!("not a JSON document: {e}"))?;
        let object = value
            .as_object()
            .ok_or_else(|| "not a JSON object".to_string())?;
        let fields = object
            .iter()
            .map(|(field, value)| {
                let text = match value {
                    Value::Null => String::new(),
                    Value::String(s) => s.clone(),
                    Value::Bool(b) => b.to_string(),
                    Value::Number(n) => n.to_string(),
                    other => other.to_string(),
                };
                (field.clone(), text)
            })
            .collect();
        Ok(Self { fields })
    }

    /// The value, when set (not empty).
    pub fn get(&self, field: &str) -> Option<&str> {
        self.fields
            .get(field)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    pub fn text(&self, field: &str) -> &str {
        self.get(field).unwrap_or("")
    }

    pub fn flag(&self, field: &str, default: bool) -> bool {
        match self.get(field) {
            Some("true") => true,
            Some("false") => false,
            _ => default,
        }
    }

    pub fn number(&self, field: &str) -> Option<f64> {
        self.get(field)
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|n| n.is_finite())
    }

    /// A positive number, or `None` for `0`, unset or unparsable ("off" in CRS).
    pub fn positive(&self, field: &str) -> Option<f64> {
        self.number(field).filter(|n| *n > 0.0)
    }

    pub fn int(&self, field: &str) -> Option<i64> {
        self.number(field).map(|n| n.round() as i64)
    }

    pub fn json(&self, field: &str) -> Option<Value> {
        self.get(field).and_then(|v| serde_json::from_str(v).ok())
    }

    pub fn time(&self, field: &str) -> Option<OffsetDateTime> {
        self.get(field).and_then(parse_time)
    }
}

pub(crate) fn parse_time(text: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(text.trim(), &Rfc3339).ok()
}

/// A JSON list of strings, also the legacy forms: `'all'`, a bare string, a comma list.
pub(crate) fn string_list(raw: &str) -> Vec<String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Vec::new();
    }
    match serde_json::from_str::<Value>(raw) {
        Ok(Value::Array(items)) => items
            .iter()
            .filter_map(|v| v.as_str().map(str::trim).filter(|s| !s.is_empty()))
            .map(str::to_string)
            .collect(),
        Ok(Value::String(single)) => vec![single],
        _ => raw
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conventions() {
        let record = Record::from_json(
            r#"{"isActive":true,"priority":50,"subscriptionExpiresAt":null,"awsCredentials":{"iv":"00"}}"#,
        )
        .unwrap();
        assert!(record.flag("isActive", false));
        assert_eq!(record.int("priority"), Some(50));
        assert_eq!(record.get("subscriptionExpiresAt"), None);
        assert_eq!(record.json("awsCredentials").unwrap()["iv"], "00");
        assert_eq!(string_list(r#"["claude","gemini"]"#), ["claude", "gemini"]);
        assert_eq!(string_list("all"), ["all"]);
        assert_eq!(string_list("claude, openai"), ["claude", "openai"]);
        assert!(string_list("[]").is_empty());
        assert!(parse_time("2026-11-21T05:28:09.920Z").is_some());
    }
}

#[cfg(test)]
mod proptests {
    //! Every accessor takes any field value without a panic, and a JSON document flattens to
    //! the hash conventions the accessors read.

    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;
    use crate::providers::proptest_support::{config, json_value};

    fn field_value() -> impl Strategy<Value = String> {
        prop_oneof![
            ".{0,20}",
            "-?[0-9]{1,30}(\\.[0-9]{0,5})?(e[0-9]{1,3})?",
            prop::sample::select(vec![
                "true",
                "false",
                "NaN",
                "inf",
                "-inf",
                "1e309",
                "[]",
                "all",
                "a,,b",
                "9999-12-31T23:59:59.999999999-23:59",
                "0000-01-01T00:00:00+23:59",
            ])
            .prop_map(str::to_owned),
        ]
    }

    proptest! {
        #![proptest_config(config(512))]

        #[test]
        fn accessors_take_any_value(fields in prop::collection::btree_map("[a-c]", field_value(), 0..4)) {
            let record = Record::from_hash(&fields);
            for field in ["a", "b", "c"] {
                let _ = (record.text(field), record.flag(field, true), record.json(field));
                if let Some(n) = record.number(field) {
                    prop_assert!(n.is_finite());
                }
                prop_assert!(record.positive(field).is_none_or(|n| n > 0.0));
                let _ = record.int(field);
                let _ = record.time(field);
                let _ = string_list(record.text(field));
            }
        }

        #[test]
        fn json_documents_flatten_to_hash_conventions(
            object in prop::collection::btree_map("[a-z]{1,6}", json_value(), 0..6),
        ) {
            let text = serde_json::Value::Object(object.clone().into_iter().collect()).to_string();
            let record = Record::from_json(&text).expect("a JSON object");
            let want: BTreeMap<String, String> = object
                .into_iter()
                .map(|(k, v)| {
                    let flat = match v {
                        Value::Null => String::new(),
                        Value::String(s) => s,
                        other => other.to_string(),
                    };
                    (k, flat)
                })
                .collect();
            prop_assert_eq!(record.fields, want);
        }

        #[test]
        fn any_text_is_a_record_or_a_reason(text in ".{0,60}") {
            if let Err(reason) = Record::from_json(&text) {
                prop_assert!(!reason.is_empty());
            }
        }
    }
}
