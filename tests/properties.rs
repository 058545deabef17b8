//! Property tests over the public parsers: the request-body reader the relay routes by, the
//! response-body summaries, the cc-bridge JSON importer and the claude-relay-service mapping.
//! Each one takes generated and damaged input and must answer (facts, a plan, or an error that
//! names the file) without panicking. Cases per property: see `config`; `PROPTEST_CASES`
//! overrides it.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use proptest::test_runner::Config;
use relaybox::crypto::{Cipher, MasterSecret};
use relaybox::importers::cc_bridge::{
    ChannelOrigin, ConfigFile, plan_aliases, plan_config, plan_pricing, plan_quota_usage,
};
use relaybox::importers::crs;
use relaybox::providers::anthropic::session_from_user_id;
use relaybox::providers::{Protocol, request_facts, summarize_body};
use relaybox::store::ConfigState;
use serde_json::{Map, Value, json};

/// `cases` unless `PROPTEST_CASES` is set; failures are not persisted (a real one becomes a
/// named unit test next to the parser).
fn config(cases: u32) -> Config {
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

const PROTOCOLS: [Protocol; 4] = [
    Protocol::Anthropic,
    Protocol::OpenAiChat,
    Protocol::OpenAiResponses,
    Protocol::Gemini,
];

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-zA-Z0-9 ._-]{0,12}",
        1 => "[ \t\n]{0,2}[a-z0-9-]{1,8}[ \t\n]{0,2}",
        1 => ".{0,10}",
        1 => Just("user_abc_account_1_session_s-1".to_string()),
        1 => Just(r#"{"device_id":"d","session_id":"s-2"}"#.to_string()),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        (-1e9..1e9f64).prop_map(Value::from),
        text().prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{1,10}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A field routing reads: usually of the expected type, sometimes not, sometimes absent.
fn maybe(expected: BoxedStrategy<Value>) -> impl Strategy<Value = Option<Value>> {
    prop_oneof![2 => expected.prop_map(Some), 1 => json_value().prop_map(Some), 1 => Just(None)]
}

fn request_body() -> impl Strategy<Value = Map<String, Value>> {
    let string = || text().prop_map(Value::from).boxed();
    (
        prop::collection::btree_map("[a-z_]{1,10}", json_value(), 0..5),
        maybe(string()),
        maybe(any::<bool>().prop_map(Value::from).boxed()),
        maybe(
            maybe(string())
                .prop_map(|u| json!({ "user_id": u }))
                .boxed(),
        ),
        maybe(
            maybe(any::<bool>().prop_map(Value::from).boxed())
                .prop_map(|i| json!({ "include_usage": i }))
                .boxed(),
        ),
        maybe(string()),
        maybe(string()),
    )
        .prop_map(
            |(other, model, stream, metadata, options, cache_key, user)| {
                let mut body: Map<String, Value> = other.into_iter().collect();
                for (key, value) in [
                    ("model", model),
                    ("stream", stream),
                    ("metadata", metadata),
                    ("stream_options", options),
                    ("prompt_cache_key", cache_key),
                    ("user", user),
                ] {
                    match value {
                        Some(value) => body.insert(key.to_owned(), value),
                        None => body.remove(key),
                    };
                }
                body
            },
        )
}

/// What routing must read, from serde_json's parse.
fn text_of(body: &Value, pointer: &str) -> Option<String> {
    body.pointer(pointer)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

fn flag_of(body: &Value, pointer: &str) -> bool {
    body.pointer(pointer).and_then(Value::as_bool) == Some(true)
}

fn fixture(file: ConfigFile) -> Vec<u8> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cc-bridge/.config");
    std::fs::read(dir.join(file.file_name())).unwrap()
}

/// Plans one cc-bridge file as hot reload does; `Err` carries the file the error names.
fn plan(file: ConfigFile, bytes: &[u8]) -> Result<(), relaybox::importers::cc_bridge::FileError> {
    let state = ConfigState::default();
    match file {
        ConfigFile::Config => {
            let master = MasterSecret::from_text(&MasterSecret::generate_text().unwrap());
            let cipher = Cipher::create(&master).unwrap().0;
            plan_config(bytes, &state, &cipher, ChannelOrigin::ConfigFile).map(drop)
        }
        ConfigFile::Pricing => plan_pricing(bytes, &state).map(drop),
        ConfigFile::Aliases => plan_aliases(bytes, &state).map(drop),
        ConfigFile::QuotaUsage => plan_quota_usage(bytes, &fixture(ConfigFile::Config)).map(drop),
    }
}

fn config_file() -> impl Strategy<Value = ConfigFile> {
    prop::sample::select(ConfigFile::ALL.to_vec())
}

/// Byte edits: replace, delete a run, insert a run.
#[derive(Debug, Clone)]
enum Edit {
    Replace(f64, u8),
    Delete(f64, usize),
    Insert(f64, Vec<u8>),
}

fn edit() -> impl Strategy<Value = Edit> {
    let byte = prop_oneof![any::<u8>(), prop::sample::select(b"{}[]\":,\\ 0-".to_vec())];
    prop_oneof![
        (0.0..1.0f64, byte.clone()).prop_map(|(at, b)| Edit::Replace(at, b)),
        (0.0..1.0f64, 1usize..40).prop_map(|(at, n)| Edit::Delete(at, n)),
        (0.0..1.0f64, prop::collection::vec(byte, 1..8)).prop_map(|(at, b)| Edit::Insert(at, b)),
    ]
}

fn apply(mut bytes: Vec<u8>, edits: &[Edit]) -> Vec<u8> {
    for edit in edits {
        let at = |f: f64, len: usize| ((len as f64) * f) as usize;
        match edit {
            Edit::Replace(f, b) if !bytes.is_empty() => {
                let i = at(*f, bytes.len()).min(bytes.len() - 1);
                bytes[i] = *b;
            }
            Edit::Delete(f, n) => {
                let i = at(*f, bytes.len());
                let end = (i + n).min(bytes.len());
                bytes.drain(i..end);
            }
            Edit::Insert(f, new) => {
                let i = at(*f, bytes.len());
                bytes.splice(i..i, new.iter().copied());
            }
            Edit::Replace(..) => {}
        }
    }
    bytes
}

/// Replaces the value found by walking `choices` (each picks a member or element) with `new`.
fn replace_somewhere(value: &mut Value, choices: &[usize], new: Value) {
    let Some((&choice, rest)) = choices.split_first() else {
        *value = new;
        return;
    };
    match value {
        Value::Object(map) if !map.is_empty() => {
            let key = map.keys().nth(choice % map.len()).cloned().unwrap();
            replace_somewhere(map.get_mut(&key).unwrap(), rest, new);
        }
        Value::Array(items) if !items.is_empty() => {
            let len = items.len();
            replace_somewhere(&mut items[choice % len], rest, new);
        }
        _ => *value = new,
    }
}

/// Values as cc-bridge and claude-relay-service files hold them, and ones they should not.
fn odd_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        json_value(),
        prop::sample::select(vec![
            json!(-1),
            json!(0),
            json!(1e308),
            json!(-1e308),
            json!(u64::MAX),
            json!(i64::MIN),
            json!(""),
            json!("   "),
            json!("http://"),
            json!("https://x.invalid/v1"),
            json!("9999-12-31T23:59:59Z"),
            json!("9999-12-31T23:59:59-23:59"),
            json!("0000-01-01T00:00:00Z"),
            json!("2026-02-30T00:00:00Z"),
            json!("500,5xx,4xx-9xx"),
            json!([]),
            json!({}),
        ]),
    ]
}

/// Field values as a claude-relay-service hash holds them (all strings), odd ones included.
fn crs_field_value() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(vec![
            "", "true", "false", "0", "-1", "1.5", "1e308", "-1e308", "NaN", "inf",
            "99999999999999999999", "9223372036854775807", "-9223372036854775808",
            "[]", "[\"claude\"]", "[1,{}]", "{\"a\":1}", "{}", "null", "all", "claude, openai",
            "2026-11-21T05:28:09.920Z", "9999-12-31T23:59:59Z", "9999-12-31T23:59:59-23:59", "0000-01-01T00:00:00Z",
            "-9999-01-01T00:00:00Z", "not-a-date", "00:11", "zz:zz", "abcd:", ":", "shared",
            "dedicated", "days", "hours", "activation", "fixed", "api", "bedrock",
        ]).prop_map(str::to_owned),
        1 => "[0-9a-f]{0,34}:[0-9a-f]{0,40}",
        1 => "-?[0-9]{1,25}(\\.[0-9]{1,5})?",
        1 => ".{0,16}",
    ]
}

/// Field names the mapping reads, plus some it does not.
fn crs_field_name() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(vec![
            "accountId", "accountType", "activatedAt", "activationDays", "activationUnit",
            "allowedClients", "apiKeys", "apiUrl", "apiKey", "awsCredentials", "claudeAiOauth",
            "createdAt", "dailyCostLimit", "dailyQuota", "description", "droidAccountId",
            "enableClientRestriction", "enableModelRestriction", "endpointType", "errorMessage",
            "expirationMode", "expiresAt", "isActivated", "isActive", "isDeleted", "name",
            "permissions", "priority", "proxy", "quotaResetTime", "rateLimitCost",
            "rateLimitRequests", "rateLimitWindow", "region", "restrictedModels", "schedulable",
            "scopes", "serviceRates", "status", "subscriptionExpiresAt", "supportedModels",
            "tokenLimit", "totalCostLimit", "weeklyOpusCostLimit", "apiKey", "hashedKey",
            "claudeAccountId", "claudeConsoleAccountId", "geminiAccountId", "openaiAccountId",
            "bedrockAccountId", "azureOpenaiAccountId", "ccrAccountId", "modelMapping",
            "baseApi", "deploymentName", "accessToken", "refreshToken", "geminiOauth",
            "openaiOauth", "userAgent", "dailyUsage", "lastResetDate", "tags", "icon",
        ]).prop_map(str::to_owned),
        1 => "[a-zA-Z]{1,12}",
    ]
}

fn crs_dump() -> crs::Snapshot {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/claude-relay-service");
    crs::read_source(&crs::Source::Dump(path.join("redis-dump.json")), &|_| {}).unwrap()
}

const CRS_ENCRYPTION_KEY: &str = "CRS-fixture-encryption-key-32chr";

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn request_facts_agree_with_serde_json(body in request_body(), pretty in any::<bool>()) {
        let value = Value::Object(body);
        let text = if pretty {
            serde_json::to_string_pretty(&value).unwrap()
        } else {
            serde_json::to_string(&value).unwrap()
        };
        for protocol in PROTOCOLS {
            let facts = request_facts(protocol, text.as_bytes()).unwrap();
            if protocol == Protocol::Gemini {
                prop_assert_eq!((facts.model.as_str(), facts.stream), ("", false));
                continue;
            }
            prop_assert_eq!(facts.model, text_of(&value, "/model").unwrap_or_default());
            prop_assert_eq!(facts.stream, flag_of(&value, "/stream"));
            let session = match protocol {
                Protocol::Anthropic => text_of(&value, "/metadata/user_id")
                    .and_then(|u| session_from_user_id(&u)),
                _ => text_of(&value, "/prompt_cache_key").or_else(|| text_of(&value, "/user")),
            };
            prop_assert_eq!(facts.session_id, session);
            prop_assert_eq!(
                facts.wants_usage_chunk,
                protocol == Protocol::OpenAiChat && flag_of(&value, "/stream_options/include_usage")
            );
        }
    }

    #[test]
    fn request_and_response_bodies_of_any_bytes_never_panic(
        bytes in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..300),
            (request_body(), prop::collection::vec(edit(), 1..4)).prop_map(|(body, edits)| {
                apply(serde_json::to_vec(&Value::Object(body)).unwrap(), &edits)
            }),
        ],
    ) {
        let parsed = serde_json::from_slice::<Value>(&bytes);
        for protocol in PROTOCOLS {
            if let Ok(facts) = request_facts(protocol, &bytes) {
                // Accepted only what serde_json reads as an object (serde_json steps over the
                // strings the head does not read without checking their UTF-8).
                if std::str::from_utf8(&bytes).is_ok() {
                    prop_assert!(parsed.as_ref().is_ok_and(Value::is_object));
                }
                if protocol != Protocol::Gemini && let Ok(value) = parsed.as_ref() {
                    prop_assert_eq!(facts.model, text_of(value, "/model").unwrap_or_default());
                    prop_assert_eq!(facts.stream, flag_of(value, "/stream"));
                }
            }
            let _ = summarize_body(protocol, &bytes);
        }
    }

    #[test]
    fn response_usage_agrees_with_serde_json(
        other in prop::collection::btree_map("[a-z_]{1,10}", json_value(), 0..5),
        figures in [0u64..1_000_000, 0u64..1_000_000, 0u64..1_000_000, 0u64..1_000_000],
        model in "[a-z][a-z0-9.-]{0,20}",
        pretty in any::<bool>(),
    ) {
        let [a, b, c, d] = figures;
        let bodies = [
            (Protocol::Anthropic, json!({"usage": {"input_tokens": a, "output_tokens": b,
                "cache_creation_input_tokens": c, "cache_read_input_tokens": d}}), (a, b, c, d)),
            (Protocol::OpenAiChat, json!({"usage": {"prompt_tokens": a + d, "completion_tokens": b,
                "prompt_tokens_details": {"cached_tokens": d}}}), (a, b, 0, d)),
            (Protocol::OpenAiResponses, json!({"usage": {"input_tokens": a + d, "output_tokens": b,
                "input_tokens_details": {"cached_tokens": d}}}), (a, b, 0, d)),
            (Protocol::Gemini, json!({"usageMetadata": {"promptTokenCount": a + d,
                "candidatesTokenCount": b, "cachedContentTokenCount": d}, "modelVersion": model}),
                (a, b, 0, d)),
        ];
        for (protocol, fields, (input, output, creation, read)) in bodies {
            let mut body: Map<String, Value> = other.clone().into_iter()
                .filter(|(k, _)| !matches!(k.as_str(), "usage" | "model")).collect();
            body.extend(fields.as_object().unwrap().clone());
            if protocol != Protocol::Gemini {
                body.insert("model".into(), json!(model));
            }
            let body = Value::Object(body);
            let text = if pretty { serde_json::to_vec_pretty(&body) } else { serde_json::to_vec(&body) }.unwrap();
            let summary = summarize_body(protocol, &text);
            let usage = summary.usage.unwrap();
            prop_assert_eq!(
                (usage.input, usage.output, usage.cache_creation, usage.cache_read),
                (input, output, creation, read),
                "{}", protocol
            );
            prop_assert_eq!(summary.response_model.as_deref(), Some(model.as_str()));
        }
    }
}

proptest! {
    #![proptest_config(config(64))]

    #[test]
    fn cc_bridge_files_with_damaged_bytes_plan_or_name_the_file(
        file in config_file(),
        edits in prop::collection::vec(edit(), 1..5),
    ) {
        let bytes = apply(fixture(file), &edits);
        if let Err(error) = plan(file, &bytes) {
            prop_assert_eq!(&error.file, file.file_name());
            prop_assert!(error.to_string().starts_with(file.file_name()));
        }
    }

    #[test]
    fn cc_bridge_files_with_odd_values_plan_or_name_the_field(
        file in config_file(),
        changes in prop::collection::vec(
            (prop::collection::vec(any::<usize>(), 0..6), odd_value()),
            1..4,
        ),
    ) {
        let mut value: Value = serde_json::from_slice(&fixture(file)).unwrap();
        for (path, new) in changes {
            replace_somewhere(&mut value, &path, new);
        }
        let bytes = serde_json::to_vec_pretty(&value).unwrap();
        if let Err(error) = plan(file, &bytes) {
            prop_assert_eq!(&error.file, file.file_name());
            // A file that is still an object is refused for one of its fields.
            if value.is_object() {
                prop_assert!(error.field.is_some(), "{}", error);
            }
        }
    }
}

proptest! {
    #![proptest_config(config(24))]

    #[test]
    fn crs_records_with_odd_fields_map_or_fail_cleanly(
        changes in prop::collection::vec(
            (any::<usize>(), crs_field_name(), prop::option::of(crs_field_value())),
            1..12,
        ),
    ) {
        let mut snapshot = crs_dump();
        let names: Vec<String> = snapshot.keys.keys().cloned().collect();
        for (pick, field, value) in changes {
            let name = &names[pick % names.len()];
            match snapshot.keys.get_mut(name) {
                Some(crs::Value::Hash(fields)) => match value {
                    Some(value) => {
                        fields.insert(field, value);
                    }
                    None => {
                        fields.remove(&field);
                    }
                },
                Some(crs::Value::String(text)) => {
                    // Bedrock documents and plain strings: set a field of the JSON, or garble it.
                    match (serde_json::from_str::<Value>(text), value) {
                        (Ok(Value::Object(mut map)), Some(value)) => {
                            map.insert(field, Value::from(value));
                            *text = Value::Object(map).to_string();
                        }
                        (_, value) => *text = value.unwrap_or_default(),
                    }
                }
                _ => {}
            }
        }
        let options = crs::CrsOptions::new(CRS_ENCRYPTION_KEY);
        let _ = crs::prepare_snapshot("properties", &snapshot, &options);
    }

    #[test]
    fn crs_records_made_up_of_any_fields_map_or_fail_cleanly(
        records in prop::collection::vec(
            (
                prop::sample::select(vec![
                    "apikey:", "claude:account:", "claude_console_account:", "ccr_account:",
                    "gemini_account:", "gemini_api_account:", "openai:account:",
                    "openai_responses_account:", "azure_openai:account:", "droid:account:",
                    "bedrock_account:", "account_group:",
                ]),
                "[a-z0-9-]{1,12}",
                prop::collection::btree_map(crs_field_name(), crs_field_value(), 0..16),
            ),
            1..6,
        ),
    ) {
        let mut snapshot = crs::Snapshot::default();
        for (prefix, id, fields) in records {
            snapshot.keys.insert(format!("{prefix}{id}"), crs::Value::Hash(fields));
        }
        let options = crs::CrsOptions::new(CRS_ENCRYPTION_KEY);
        let _ = crs::prepare_snapshot("properties", &snapshot, &options);
    }
}
