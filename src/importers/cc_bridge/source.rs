//! cc-bridge's JSON files as they are on disk, parsed with precise errors.
//!
//! The structs here mirror cc-bridge's Go types. They are deliberately separate from relaybox's
//! domain types: no `#[serde(flatten)]` (it would hide the field path of a type error), every
//! collection accepts `null` (Go writes nil slices and maps as `null`), and fields cc-bridge does
//! not know are picked up from the raw JSON afterwards ([`extras`]) so nothing is lost.

use std::collections::{BTreeMap, BTreeSet};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use super::{ConfigFile, FileError};
use crate::domain::channel::PriceMultiplier;
use crate::domain::pricing::ModelAlias;

/// A field that may be `null` or absent: both mean the type's default.
fn nullable<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// `config.json`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct SrcConfig {
    #[serde(deserialize_with = "nullable")]
    pub upstream: Vec<SrcChannel>,
    #[serde(deserialize_with = "nullable")]
    pub responses_upstream: Vec<SrcChannel>,
    #[serde(deserialize_with = "nullable")]
    pub gemini_upstream: Vec<SrcChannel>,
    #[serde(deserialize_with = "nullable")]
    pub chat_upstream: Vec<SrcChannel>,
    #[serde(deserialize_with = "nullable")]
    pub load_balance: String,
    #[serde(deserialize_with = "nullable")]
    pub responses_load_balance: String,
    #[serde(deserialize_with = "nullable")]
    pub gemini_load_balance: String,
    #[serde(deserialize_with = "nullable")]
    pub chat_load_balance: String,
    pub failover: Option<SrcFailover>,
    pub debug_log: Option<Map<String, Value>>,
    pub user_agent: Option<Map<String, Value>>,
    pub outbound_header_policy: Option<Map<String, Value>>,
}

/// One channel (`UpstreamConfig`).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct SrcChannel {
    #[serde(deserialize_with = "nullable")]
    pub id: String,
    #[serde(deserialize_with = "nullable")]
    pub name: String,
    #[serde(deserialize_with = "nullable")]
    pub service_type: String,
    #[serde(deserialize_with = "nullable")]
    pub base_url: String,
    #[serde(deserialize_with = "nullable")]
    pub api_keys: Vec<String>,
    #[serde(deserialize_with = "nullable")]
    pub key_load_balance: String,
    #[serde(deserialize_with = "nullable")]
    pub description: String,
    #[serde(deserialize_with = "nullable")]
    pub website: String,
    #[serde(deserialize_with = "nullable")]
    pub insecure_skip_verify: bool,
    #[serde(deserialize_with = "nullable")]
    pub model_mapping: BTreeMap<String, String>,
    pub response_header_timeout: Option<u64>,
    #[serde(deserialize_with = "nullable")]
    pub priority: i64,
    #[serde(deserialize_with = "nullable")]
    pub status: String,
    pub promotion_until: Option<String>,
    #[serde(deserialize_with = "nullable")]
    pub price_multipliers: BTreeMap<String, PriceMultiplier>,
    pub oauth_tokens: Option<Map<String, Value>>,
    #[serde(deserialize_with = "nullable")]
    pub quota_type: String,
    pub quota_limit: Option<f64>,
    pub quota_reset_at: Option<String>,
    pub quota_reset_interval: Option<i64>,
    #[serde(deserialize_with = "nullable")]
    pub quota_reset_unit: String,
    #[serde(deserialize_with = "nullable")]
    pub quota_reset_mode: String,
    #[serde(deserialize_with = "nullable")]
    pub quota_models: Vec<String>,
    #[serde(deserialize_with = "nullable")]
    pub rate_limit_rpm: u32,
    #[serde(deserialize_with = "nullable")]
    pub queue_enabled: bool,
    pub queue_timeout: Option<u64>,
    #[serde(deserialize_with = "nullable")]
    pub composite_mappings: Vec<Map<String, Value>>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct SrcFailover {
    /// Go's zero value when absent: `false` (use the built-in behaviour).
    #[serde(deserialize_with = "nullable")]
    pub enabled: bool,
    #[serde(deserialize_with = "nullable")]
    pub rules: Vec<SrcRule>,
    pub generic_resource_wait_seconds: Option<u64>,
    pub model_cooldown_extra_seconds: Option<u64>,
    pub model_cooldown_max_wait_seconds: Option<u64>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct SrcRule {
    #[serde(deserialize_with = "nullable")]
    pub error_codes: String,
    #[serde(deserialize_with = "nullable")]
    pub action_chain: Vec<SrcStep>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct SrcStep {
    #[serde(deserialize_with = "nullable")]
    pub action: String,
    pub wait_seconds: Option<u64>,
    pub max_attempts: Option<u32>,
}

/// `pricing.json`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct SrcPricing {
    #[serde(deserialize_with = "nullable")]
    pub currency: String,
    #[serde(deserialize_with = "nullable")]
    pub models: BTreeMap<String, SrcPrice>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct SrcPrice {
    #[serde(deserialize_with = "nullable")]
    pub input_price: f64,
    #[serde(deserialize_with = "nullable")]
    pub output_price: f64,
    pub cache_creation_price: Option<f64>,
    pub cache_read_price: Option<f64>,
    pub description: Option<String>,
    pub export_to_models: Option<bool>,
}

/// `model-aliases.json`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct SrcAliases {
    #[serde(deserialize_with = "nullable")]
    pub messages_models: Vec<ModelAlias>,
    #[serde(deserialize_with = "nullable")]
    pub responses_models: Vec<ModelAlias>,
    #[serde(deserialize_with = "nullable")]
    pub gemini_models: Vec<ModelAlias>,
    /// Not in cc-bridge; relaybox's own list, kept when the file does not have it.
    pub chat_models: Option<Vec<ModelAlias>>,
}

/// `quota_usage.json`: pool → channel index (as a string) → usage.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct SrcQuotaUsage {
    #[serde(deserialize_with = "nullable")]
    pub messages: BTreeMap<String, SrcUsage>,
    #[serde(deserialize_with = "nullable")]
    pub responses: BTreeMap<String, SrcUsage>,
    #[serde(deserialize_with = "nullable")]
    pub gemini: BTreeMap<String, SrcUsage>,
    /// cc-bridge has no chat section; accepted if a later version adds one.
    #[serde(deserialize_with = "nullable")]
    pub chat: BTreeMap<String, SrcUsage>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct SrcUsage {
    #[serde(deserialize_with = "nullable")]
    pub used: f64,
    #[serde(deserialize_with = "nullable")]
    pub last_reset_at: String,
}

/// Parse `bytes` as `T` (errors carry line, column and field path), and as raw JSON for
/// [`extras`]. A UTF-8 byte-order mark is tolerated.
pub(crate) fn parse<T: DeserializeOwned>(
    file: ConfigFile,
    bytes: &[u8],
) -> Result<(T, Value), FileError> {
    let bytes = bytes
        .strip_prefix(b"\xEF\xBB\xBF".as_slice())
        .unwrap_or(bytes);
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let typed: T = serde_path_to_error::deserialize(&mut deserializer)
        .map_err(|err| type_error(file, &err.path().to_string(), err.inner()))?;
    deserializer
        .end()
        .map_err(|err| type_error(file, ".", &err))?;
    let raw: Value = serde_json::from_slice(bytes).map_err(|err| type_error(file, ".", &err))?;
    if !raw.is_object() {
        return Err(FileError::semantic(
            file,
            None,
            "the file must hold one JSON object",
        ));
    }
    Ok((typed, raw))
}

fn type_error(file: ConfigFile, path: &str, err: &serde_json::Error) -> FileError {
    let (line, column) = (err.line(), err.column());
    let mut reason = err.to_string();
    let position = format!(" at line {line} column {column}");
    if let Some(stripped) = reason.strip_suffix(&position) {
        reason = stripped.to_string();
    }
    let field = (!path.is_empty() && path != ".").then(|| path.to_string());
    if field.as_deref().is_some_and(is_secret_path) {
        reason = redact_quoted(&reason);
    }
    FileError {
        file: file.file_name().to_string(),
        line: (line > 0).then_some(line),
        column: (line > 0).then_some(column),
        field,
        reason,
    }
}

/// Paths under which a value is an upstream secret: never echo it in an error.
fn is_secret_path(path: &str) -> bool {
    path.contains("apiKeys") || path.contains("oauthTokens")
}

/// Replace every `"…"` span of an error message (serde quotes the offending value).
fn redact_quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        out.push(c);
        if c == '"' {
            let mut escaped = false;
            for inner in chars.by_ref() {
                if escaped {
                    escaped = false;
                } else if inner == '\\' {
                    escaped = true;
                } else if inner == '"' {
                    break;
                }
            }
            out.push_str("(hidden)\"");
        }
    }
    out
}

/// The JSON field names `T` knows (its `Default` serialised: every field is written).
pub(crate) fn known_keys<T: Default + Serialize>() -> BTreeSet<String> {
    match serde_json::to_value(T::default()) {
        Ok(Value::Object(map)) => map.into_iter().map(|(key, _)| key).collect(),
        _ => BTreeSet::new(),
    }
}

/// The members of `object` not in `known`, minus `reserved` (names relaybox uses itself and that
/// would collide when the record is stored).
pub(crate) fn extras(
    object: Option<&Value>,
    known: &BTreeSet<String>,
    reserved: &[&str],
) -> Map<String, Value> {
    let Some(Value::Object(map)) = object else {
        return Map::new();
    };
    map.iter()
        .filter(|(key, _)| !known.contains(key.as_str()) && !reserved.contains(&key.as_str()))
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_errors_carry_position_and_path_and_hide_secrets() {
        let text = "{\n  \"upstream\": [\n    {\"name\": \"a\", \"priority\": \"high\"}\n  ]\n}";
        let err = parse::<SrcConfig>(ConfigFile::Config, text.as_bytes()).unwrap_err();
        assert_eq!(err.line, Some(3));
        assert_eq!(err.field.as_deref(), Some("upstream[0].priority"));
        assert!(
            err.reason.starts_with("invalid type: string \"high\""),
            "{}",
            err.reason
        );
        assert!(!err.reason.contains(" at line "), "{}", err.reason);

        let secret = r#"{"upstream": [{"name": "a", "apiKeys": "sk-ant-very-secret"}]}"#;
        let err = parse::<SrcConfig>(ConfigFile::Config, secret.as_bytes()).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("upstream[0].apiKeys"));
        assert!(!err.to_string().contains("sk-ant-very-secret"), "{err}");
    }

    #[test]
    fn nulls_mean_defaults_and_unknown_fields_are_kept() {
        let text = r#"{"upstream": null, "chatUpstream": [{"name": "c", "apiKeys": null,
            "modelMapping": null, "contentFilter": {"enabled": true}, "pool": "x"}]}"#;
        let (config, raw) = parse::<SrcConfig>(ConfigFile::Config, text.as_bytes()).unwrap();
        assert!(config.upstream.is_empty());
        assert!(config.chat_upstream[0].api_keys.is_empty());
        let known = known_keys::<SrcChannel>();
        assert!(known.contains("apiKeys") && known.contains("compositeMappings"));
        let extra = extras(raw.pointer("/chatUpstream/0"), &known, &["pool"]);
        assert_eq!(extra.keys().collect::<Vec<_>>(), ["contentFilter"]);
    }

    #[test]
    fn syntax_errors_have_line_and_column() {
        let err = parse::<SrcConfig>(ConfigFile::Config, b"{\n  \"upstream\": [,]\n}").unwrap_err();
        assert_eq!((err.line, err.column), (Some(2), Some(16)));
        let err = parse::<SrcConfig>(ConfigFile::Config, b"[]").unwrap_err();
        assert!(
            err.reason.contains("expected struct") || err.reason.contains("object"),
            "{err}"
        );
    }
}
