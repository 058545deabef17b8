//! `relaybox import cc-bridge`: a realistic cc-bridge `.config` folder (tests/fixtures/cc-bridge)
//! plus a SQLite database built here with cc-bridge's schema, imported into a real redb config
//! store and a real `logs.sqlite`.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test helpers")]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use relaybox::config::Configuration;
use relaybox::crypto::{Cipher, MasterSecret, hash_client_key};
use relaybox::domain::key::KeyStatus;
use relaybox::domain::{Channel, ChannelStatus, Pool, PricingTable};
use relaybox::importers::cc_bridge::{
    self, ChannelOrigin, ConfigFile, ImportError, ImportOptions, ImportReport, derived_channel_id,
    plan_aliases, plan_config, plan_pricing, plan_quota_usage, read_sqlite,
};
use relaybox::importers::{api_key_aad, oauth_aad};
use relaybox::store::redb_store::RedbStore;
use relaybox::store::sqlite::{LogDb, OpenOptions, RequestLog};
use relaybox::store::{ConfigState, ConfigStore};
use rusqlite::params;
use serde_json::Value;
use sha2::{Digest, Sha256};
use tempfile::TempDir;

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/cc-bridge/.config"
);

/// Client keys whose plaintexts the test knows (cc-bridge: `sk-` + 48 alphanumerics).
const KEY_ALICE: &str = "sk-AliceLaptopFIXTUREkey0000000000000000000000000001";
const KEY_OPS: &str = "sk-OpsAdminFIXTUREkey00000000000000000000000000000002";
const KEY_CI: &str = "sk-OldCiFIXTUREkey000000000000000000000000000000003";
/// Request-log rows in the generated database (three batches of 1000 and a bit).
const LOG_ROWS: u64 = 2_345;

struct Env {
    tmp: TempDir,
    source: PathBuf,
    store: Arc<RedbStore>,
    /// The one write path, over `store` (reads in the tests go to `store` itself).
    config: Configuration,
    logs: LogDb,
    cipher: Arc<Cipher>,
}

impl Env {
    /// A temp dir with a copy of the fixture `.config` (plus a generated `request_logs.db`) and
    /// an empty relaybox data dir.
    fn new() -> Env {
        let tmp = tempfile::tempdir().unwrap();
        let source = tmp.path().join("cc-bridge").join(".config");
        std::fs::create_dir_all(&source).unwrap();
        for file in ConfigFile::ALL {
            std::fs::copy(
                Path::new(FIXTURE).join(file.file_name()),
                source.join(file.file_name()),
            )
            .unwrap();
        }
        build_cc_bridge_db(&source.join("request_logs.db"), Schema::Current);
        let data = tmp.path().join("data");
        std::fs::create_dir_all(&data).unwrap();
        let store = RedbStore::open(&data.join("relaybox.redb")).unwrap();
        let logs = LogDb::open(&data.join("logs.sqlite"), OpenOptions::default()).unwrap();
        let master = MasterSecret::from_text(&MasterSecret::generate_text().unwrap());
        let (cipher, record) = Cipher::create(&master).unwrap();
        store.init_keyring(&record).unwrap();
        let store = Arc::new(store);
        let cipher = Arc::new(cipher);
        let config = Configuration::local(
            Arc::clone(&store) as Arc<dyn relaybox::store::ConfigStore>,
            Arc::clone(&cipher),
        )
        .unwrap();
        Env {
            tmp,
            source,
            store,
            config,
            logs,
            cipher,
        }
    }

    fn data_dir(&self) -> PathBuf {
        self.tmp.path().join("data")
    }

    fn import(&self, options: &ImportOptions) -> Result<ImportReport, ImportError> {
        cc_bridge::import_dir(
            &self.source,
            &self.config,
            &self.logs,
            &self.cipher,
            options,
        )
    }

    fn import_ok(&self) -> ImportReport {
        self.import(&ImportOptions::default()).unwrap()
    }

    fn state(&self) -> ConfigState {
        self.store.load().unwrap()
    }
}

fn fixture_json(file: ConfigFile) -> Value {
    serde_json::from_slice(&std::fs::read(Path::new(FIXTURE).join(file.file_name())).unwrap())
        .unwrap()
}

/// Go's `time.Time.String()`, the form cc-bridge's SQLite driver writes.
fn go_time(day: u32, second: u32) -> String {
    format!(
        "2026-07-{:02} 10:{:02}:{:02}.123456789 +0000 UTC",
        day % 28 + 1,
        second / 60 % 60,
        second % 60
    )
}

#[derive(Clone, Copy, PartialEq)]
enum Schema {
    /// cc-bridge today (JSON mode `request_logs.db`, with every later column).
    Current,
    /// An early cc-bridge: no api_keys table, request_logs without later columns.
    Early,
}

/// cc-bridge's SQLite database, with the schema from the format notes / its migrations.
fn build_cc_bridge_db(path: &Path, schema: Schema) {
    let mut conn = rusqlite::Connection::open(path).unwrap();
    if schema == Schema::Early {
        conn.execute_batch(
            "CREATE TABLE request_logs (
                id TEXT PRIMARY KEY, status TEXT DEFAULT 'completed', initial_time DATETIME NOT NULL,
                complete_time DATETIME, duration_ms INTEGER DEFAULT 0, provider TEXT NOT NULL,
                model TEXT NOT NULL, input_tokens INTEGER DEFAULT 0, output_tokens INTEGER DEFAULT 0,
                cache_creation_input_tokens INTEGER DEFAULT 0, cache_read_input_tokens INTEGER DEFAULT 0,
                total_tokens INTEGER DEFAULT 0, price REAL DEFAULT 0, http_status INTEGER DEFAULT 0,
                stream BOOLEAN NOT NULL, channel_id INTEGER, channel_name TEXT, endpoint TEXT,
                user_id TEXT, error TEXT, created_at DATETIME DEFAULT CURRENT_TIMESTAMP);
             INSERT INTO request_logs (id, initial_time, complete_time, duration_ms, provider, model,
                input_tokens, output_tokens, total_tokens, price, http_status, stream, channel_id,
                channel_name, endpoint, user_id)
             VALUES ('early-1', '2025-11-02 08:00:00', '2025-11-02 08:00:03', 3000, 'claude',
                'claude-3-5-sonnet', 100, 20, 120, 0.0006, 200, 1, 0, 'Anthropic-Main', '/v1/messages', 'u1');",
        )
        .unwrap();
        return;
    }
    conn.execute_batch(
        "CREATE TABLE user_aliases (
            user_id TEXT PRIMARY KEY, alias TEXT NOT NULL UNIQUE,
            created_at DATETIME DEFAULT CURRENT_TIMESTAMP, updated_at DATETIME DEFAULT CURRENT_TIMESTAMP);
         CREATE TABLE api_keys (
            id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, key_hash TEXT NOT NULL UNIQUE,
            key_prefix TEXT NOT NULL, description TEXT, status TEXT NOT NULL DEFAULT 'active',
            is_admin BOOLEAN NOT NULL DEFAULT 0, rate_limit_rpm INTEGER NOT NULL DEFAULT 0,
            allowed_endpoints TEXT, allowed_channels_msg TEXT, allowed_channels_resp TEXT,
            allowed_models TEXT, created_at DATETIME DEFAULT CURRENT_TIMESTAMP,
            updated_at DATETIME DEFAULT CURRENT_TIMESTAMP, last_used_at DATETIME,
            allowed_channels_gemini TEXT, allowed_channels_chat TEXT);
         CREATE TABLE request_logs (
            id TEXT PRIMARY KEY, status TEXT DEFAULT 'completed', initial_time DATETIME NOT NULL,
            complete_time DATETIME, duration_ms INTEGER DEFAULT 0, provider TEXT NOT NULL,
            provider_name TEXT, model TEXT NOT NULL, response_model TEXT, input_tokens INTEGER DEFAULT 0,
            output_tokens INTEGER DEFAULT 0, cache_creation_input_tokens INTEGER DEFAULT 0,
            cache_read_input_tokens INTEGER DEFAULT 0, total_tokens INTEGER DEFAULT 0, price REAL DEFAULT 0,
            input_cost REAL DEFAULT 0, output_cost REAL DEFAULT 0, cache_creation_cost REAL DEFAULT 0,
            cache_read_cost REAL DEFAULT 0, http_status INTEGER DEFAULT 0, stream BOOLEAN NOT NULL,
            channel_id INTEGER, channel_name TEXT, endpoint TEXT, client_id TEXT, session_id TEXT,
            reasoning_effort TEXT, error TEXT, upstream_error TEXT, failover_info TEXT, api_key_id INTEGER,
            created_at DATETIME DEFAULT CURRENT_TIMESTAMP, channel_uid TEXT, first_token_time DATETIME,
            first_token_duration_ms INTEGER DEFAULT 0, service_tier TEXT, original_x_initiator TEXT,
            effective_x_initiator TEXT, transport TEXT, domain TEXT);
         CREATE TABLE request_debug_logs (
            request_id TEXT PRIMARY KEY, request_method TEXT NOT NULL, request_path TEXT NOT NULL,
            request_headers BLOB, request_body BLOB, request_body_size INTEGER DEFAULT 0,
            response_status INTEGER DEFAULT 0, response_headers BLOB, response_body BLOB,
            response_body_size INTEGER DEFAULT 0, created_at DATETIME DEFAULT CURRENT_TIMESTAMP);
         CREATE TABLE channel_quota (channel_id INTEGER PRIMARY KEY, channel_name TEXT NOT NULL, plan_type TEXT);",
    )
    .unwrap();

    let key = |conn: &rusqlite::Connection,
               values: (&str, &str, &str, &str, &str, bool, i64),
               lists: [Option<&str>; 6],
               last_used: Option<String>| {
        let (name, hash, prefix, description, status, is_admin, rpm) = values;
        conn.execute(
            "INSERT INTO api_keys (name, key_hash, key_prefix, description, status, is_admin, rate_limit_rpm,
                allowed_endpoints, allowed_channels_msg, allowed_channels_resp, allowed_channels_gemini,
                allowed_channels_chat, allowed_models, created_at, updated_at, last_used_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
            params![
                name, hash, prefix, description, status, is_admin, rpm, lists[0], lists[1], lists[2], lists[3],
                lists[4], lists[5], go_time(1, 0), go_time(2, 30), last_used
            ],
        )
        .unwrap();
    };
    key(
        &conn,
        (
            "alice-laptop",
            &hash_client_key(KEY_ALICE),
            "sk-Alice...",
            "Alice's Claude Code",
            "active",
            false,
            30,
        ),
        [
            Some(r#"["messages","responses"]"#),
            Some(r#"["a1b2c3d4"]"#),
            Some("[]"),
            None,
            None,
            Some(r#"["claude-sonnet-*"]"#),
        ],
        Some(go_time(20, 5)),
    );
    key(
        &conn,
        (
            "ops-admin",
            &hash_client_key(KEY_OPS).to_uppercase(),
            "sk-OpsAd...",
            "",
            "active",
            true,
            0,
        ),
        [None, None, None, None, None, None],
        None,
    );
    // An older cc-bridge stored channel allowlists as pool indexes (JSON numbers).
    key(
        &conn,
        (
            "old-ci",
            &hash_client_key(KEY_CI),
            "sk-OldCi...",
            "retired CI runner",
            "revoked",
            false,
            120,
        ),
        [
            Some(r#"["gemini","chat"]"#),
            None,
            None,
            Some("[0]"),
            Some(r#"["1c2d3e4f"]"#),
            None,
        ],
        None,
    );
    key(
        &conn,
        (
            "broken",
            "not-a-sha256",
            "sk-broke...",
            "",
            "active",
            false,
            0,
        ),
        [None; 6],
        None,
    );

    conn.execute(
        "INSERT INTO user_aliases (user_id, alias, created_at, updated_at) VALUES
           ('user_9f8e7d6c5b4a', 'alice', '2026-06-01 09:00:00', '2026-06-01 09:00:00'),
           ('user_0a1b2c3d4e5f', 'build-bot', '2026-06-02 09:00:00', '2026-06-03 10:00:00')",
        [],
    )
    .unwrap();

    let tx = conn.transaction().unwrap();
    {
        let mut insert = tx
            .prepare(
                "INSERT INTO request_logs (id, status, initial_time, complete_time, duration_ms, provider,
                    provider_name, model, response_model, input_tokens, output_tokens,
                    cache_creation_input_tokens, cache_read_input_tokens, total_tokens, price, input_cost,
                    output_cost, cache_creation_cost, cache_read_cost, http_status, stream, channel_id,
                    channel_name, endpoint, client_id, session_id, reasoning_effort, error, upstream_error,
                    failover_info, api_key_id, channel_uid, first_token_time, first_token_duration_ms,
                    transport)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19,
                    ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28, ?29, ?30, ?31, ?32, ?33, ?34, ?35)",
            )
            .unwrap();
        for n in 0..LOG_ROWS {
            let i = u32::try_from(n).unwrap();
            let (endpoint, channel_index, channel_name, channel_uid, provider, model) = match n % 4
            {
                0 => (
                    "/v1/messages",
                    0,
                    "anthropic-main",
                    Some("a1b2c3d4"),
                    "claude",
                    "claude-sonnet-4-5-20250929",
                ),
                1 => (
                    "/v1/responses",
                    0,
                    "codex-oauth",
                    Some("0f0e0d0c"),
                    "responses",
                    "gpt-5.1-codex",
                ),
                // Rows from before cc-bridge recorded channel_uid: only the (index, name).
                2 => (
                    "/v1/chat/completions",
                    0,
                    "OpenRouter",
                    None,
                    "openai",
                    "deepseek/deepseek-chat",
                ),
                _ => (
                    "/v1/messages",
                    1,
                    "openai-compatible-backup",
                    Some(""),
                    "openai_chat",
                    "deepseek-chat",
                ),
            };
            let failed = n % 50 == 7;
            let (input, output, cache_write, cache_read) = (
                i64::from(i % 900 + 100),
                i64::from(i % 300 + 10),
                i64::from(i % 7 * 100),
                i64::from(i % 5 * 1000),
            );
            let api_key_id: Option<i64> = match n % 5 {
                0 | 1 => Some(1),
                2 => Some(2),
                3 => Some(0),
                _ => None,
            };
            insert
                .execute(params![
                    format!("req_{n:06}"),
                    if failed { "error" } else { "completed" },
                    go_time(i / 100, i),
                    go_time(i / 100, i + 3),
                    3000 + i64::from(i % 1000),
                    provider,
                    channel_name,
                    model,
                    model,
                    input,
                    output,
                    cache_write,
                    cache_read,
                    input + output,
                    0.0125 + f64::from(i) / 1e5,
                    0.01,
                    0.002,
                    0.0005,
                    f64::from(i) / 1e5,
                    if failed { 529 } else { 200 },
                    n % 3 != 0,
                    channel_index,
                    channel_name,
                    endpoint,
                    "user_9f8e7d6c5b4a",
                    format!("session-{}", n / 10),
                    "high",
                    if failed { "upstream overloaded" } else { "" },
                    if failed {
                        r#"{"type":"error","error":{"type":"overloaded_error"}}"#
                    } else {
                        ""
                    },
                    if failed {
                        "529 > failover > Failover to channel 1"
                    } else {
                        ""
                    },
                    api_key_id,
                    channel_uid,
                    go_time(i / 100, i + 1),
                    850,
                    "sse",
                ])
                .unwrap();
        }
    }
    tx.commit().unwrap();
}

// ---- helpers ---------------------------------------------------------------------------------

/// JSON equality where numbers compare by value (`100` == `100.0`) and a `null` or empty value in
/// the source may be absent in the target.
fn same(source: &Value, target: Option<&Value>) -> bool {
    match (source, target) {
        (Value::Null, None | Some(Value::Null)) => true,
        (Value::Array(a), None) if a.is_empty() => true,
        (Value::Object(o), None) if o.is_empty() => true,
        (Value::Number(a), Some(Value::Number(b))) => a.as_f64() == b.as_f64(),
        (Value::Array(a), Some(Value::Array(b))) => {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same(x, Some(y)))
        }
        (Value::Object(a), Some(Value::Object(b))) => {
            a.iter().all(|(k, v)| same(v, b.get(k))) && b.keys().all(|k| a.contains_key(k))
        }
        (a, Some(b)) => a == b,
        (_, None) => false,
    }
}

fn channel_by_name<'a>(state: &'a ConfigState, pool: Pool, name: &str) -> &'a Channel {
    state
        .channels
        .values()
        .find(|c| c.pool == pool && c.name == name)
        .unwrap()
}

fn opened_keys(cipher: &Cipher, channel: &Channel) -> Vec<String> {
    channel
        .credentials
        .api_keys
        .iter()
        .map(|s| {
            cipher
                .open(&api_key_aad(&channel.id), s)
                .unwrap()
                .to_string()
        })
        .collect()
}

/// Every upstream secret in the fixture (apiKeys, OAuth tokens).
fn fixture_secrets() -> Vec<String> {
    let config = fixture_json(ConfigFile::Config);
    let mut secrets = Vec::new();
    for pool in [
        "upstream",
        "responsesUpstream",
        "geminiUpstream",
        "chatUpstream",
    ] {
        for channel in config[pool].as_array().unwrap() {
            for key in channel["apiKeys"].as_array().unwrap() {
                secrets.push(key.as_str().unwrap().to_string());
            }
            if let Some(tokens) = channel.get("oauthTokens") {
                for field in ["access_token", "id_token", "refresh_token"] {
                    secrets.push(tokens[field].as_str().unwrap().to_string());
                }
            }
        }
    }
    assert!(secrets.len() >= 10, "the fixture has secrets to look for");
    secrets
}

/// (file name, size, sha256) of every file under `dir`.
fn snapshot(dir: &Path) -> BTreeMap<String, (u64, String)> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let bytes = std::fs::read(entry.path()).unwrap();
        out.insert(
            entry.file_name().to_string_lossy().into_owned(),
            (bytes.len() as u64, hex::encode(Sha256::digest(&bytes))),
        );
    }
    out
}

fn log_by_id(logs: &LogDb, id: &str) -> RequestLog {
    logs.recent_logs(u32::MAX, None)
        .unwrap()
        .into_iter()
        .find(|r| r.id == id)
        .unwrap()
}

// ---- tests -----------------------------------------------------------------------------------

#[test]
fn every_channel_field_survives_and_secrets_open_to_the_file_plaintexts() {
    let env = Env::new();
    let report = env.import_ok();
    let state = env.state();
    let config = fixture_json(ConfigFile::Config);

    assert_eq!(report.channels.found, 7);
    assert_eq!(report.channels.imported, 7);
    assert_eq!(state.channels.len(), 7);
    for (pool, key) in [
        (Pool::Messages, "upstream"),
        (Pool::Responses, "responsesUpstream"),
        (Pool::Gemini, "geminiUpstream"),
        (Pool::Chat, "chatUpstream"),
    ] {
        for (index, source) in config[key].as_array().unwrap().iter().enumerate() {
            let name = source["name"].as_str().unwrap();
            let channel = channel_by_name(&state, pool, name);
            let expected_id = source
                .get("id")
                .and_then(Value::as_str)
                .map_or_else(|| derived_channel_id(pool, name), str::to_string);
            assert_eq!(channel.id, expected_id, "{key}[{index}] id");
            assert_eq!(channel.position as usize, index, "{key}[{index}] position");
            assert_eq!(channel.origin, ChannelOrigin::Import);

            let stored = serde_json::to_value(channel).unwrap();
            for (field, value) in source.as_object().unwrap() {
                match field.as_str() {
                    "id" => {}
                    "apiKeys" => {
                        let want: Vec<String> = value
                            .as_array()
                            .unwrap()
                            .iter()
                            .map(|k| k.as_str().unwrap().to_string())
                            .collect();
                        assert_eq!(
                            opened_keys(&env.cipher, channel),
                            want,
                            "{key}[{index}].apiKeys"
                        );
                        for sealed in &channel.credentials.api_keys {
                            assert!(sealed.as_str().starts_with("enc:v1:"));
                        }
                    }
                    "oauthTokens" => {
                        let sealed = channel.credentials.oauth_tokens.as_ref().unwrap();
                        let opened = env.cipher.open(&oauth_aad(&channel.id), sealed).unwrap();
                        let opened: Value = serde_json::from_str(&opened).unwrap();
                        assert_eq!(&opened, value, "{key}[{index}].oauthTokens");
                        // Bound to this channel: the ciphertext does not open as an API key.
                        assert!(env.cipher.open(&api_key_aad(&channel.id), sealed).is_err());
                    }
                    _ => assert!(
                        same(value, stored.get(field)),
                        "{key}[{index}].{field}: file {value} vs stored {:?}",
                        stored.get(field)
                    ),
                }
            }
        }
    }

    // Typed spot checks of what the relay acts on.
    let main = &state.channels["a1b2c3d4"];
    assert_eq!(main.pool, Pool::Messages);
    assert_eq!(main.service_type, "claude");
    assert_eq!(main.status, ChannelStatus::Active);
    assert_eq!(main.quota_limit, Some(100.0));
    assert_eq!(main.quota_reset_unit, "months");
    assert_eq!(
        main.price_multipliers["claude-opus"].output_multiplier,
        Some(0.8)
    );
    assert_eq!(
        main.price_multipliers["_default"].input_multiplier,
        Some(1.0)
    );
    assert_eq!(main.extra["contentFilter"]["rules"][1]["statusCode"], 402);
    assert_eq!(state.channels["5e6f7a8b"].status, ChannelStatus::Suspended);
    assert!(state.channels["5e6f7a8b"].insecure_skip_verify);
    let composite = &state.channels["c0ffee01"];
    assert_eq!(composite.composite_mappings.len(), 3);
    assert_eq!(
        composite.composite_mappings[0]["targetChannelId"],
        "5e6f7a8b"
    );
    let derived = channel_by_name(&state, Pool::Responses, "openai-responses");
    assert_eq!(derived.status, ChannelStatus::Disabled);
    assert_eq!(derived.extra["responsesEncryptedReasoningMode"], "auto");
    assert_eq!(
        state.channels["0f0e0d0c"].extra["codexServiceTierOverride"],
        "force_priority"
    );
    assert_eq!(
        opened_keys(&env.cipher, &state.channels["1c2d3e4f"]).len(),
        3
    );
}

#[test]
fn settings_keep_failover_rules_legacy_fields_and_relaybox_knobs() {
    let env = Env::new();
    env.import_ok();
    let settings = env.state().settings;
    let config = fixture_json(ConfigFile::Config);

    assert_eq!(settings.load_balance, "failover");
    assert_eq!(settings.responses_load_balance, "round-robin");
    assert_eq!(settings.gemini_load_balance, "");
    assert_eq!(settings.chat_load_balance, "random");
    assert_eq!(settings.load_balance_for(Pool::Gemini), "failover");
    assert!(settings.failover.enabled);
    assert_eq!(settings.failover.rules.len(), 7);
    assert_eq!(
        settings.failover.rules[0].error_codes,
        "429:QUOTA_EXHAUSTED"
    );
    assert_eq!(
        settings.failover.rules[3].action_chain[0].wait_seconds,
        Some(5)
    );
    assert_eq!(
        settings.failover.rules[3].action_chain[0].max_attempts,
        Some(3)
    );
    assert_eq!(
        settings.failover.rules[2].action_chain[0].wait_seconds,
        Some(0)
    );
    assert_eq!(
        settings.failover.rules[5].extra["action"], "retry_wait",
        "legacy rule fields are kept"
    );
    assert_eq!(settings.failover.generic_resource_wait_seconds, Some(20));
    assert_eq!(settings.failover.model_cooldown_max_wait_seconds, Some(60));
    assert_eq!(settings.debug_log.as_ref(), Some(&config["debugLog"]));
    assert_eq!(settings.user_agent.as_ref(), Some(&config["userAgent"]));
    assert_eq!(
        settings.outbound_header_policy.as_ref(),
        Some(&config["outboundHeaderPolicy"])
    );
    for legacy in [
        "currentUpstream",
        "currentResponsesUpstream",
        "responsesWebSocket",
    ] {
        assert_eq!(settings.extra.get(legacy), config.get(legacy), "{legacy}");
    }
    // relaybox's own fields are untouched; the currency comes from pricing.json.
    assert_eq!(
        settings.key_prefix,
        relaybox::domain::settings::DEFAULT_KEY_PREFIX
    );
    assert_eq!(
        settings.max_body_bytes,
        relaybox::domain::settings::DEFAULT_MAX_BODY_BYTES
    );
    assert_eq!(settings.pricing_currency, "USD");
}

#[test]
fn no_upstream_secret_is_stored_in_plaintext() {
    let env = Env::new();
    env.import_ok();
    drop(env.store);
    drop(env.logs);
    let secrets = fixture_secrets();
    let files: Vec<PathBuf> = std::fs::read_dir(env.tmp.path().join("data"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(files.iter().any(|f| f.ends_with("relaybox.redb")));
    assert!(files.iter().any(|f| f.ends_with("logs.sqlite")));
    for file in files {
        let bytes = std::fs::read(&file).unwrap();
        for secret in &secrets {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "{} contains the upstream secret {secret}",
                file.display()
            );
        }
        for client_key in [KEY_ALICE, KEY_OPS, KEY_CI] {
            assert!(
                !bytes
                    .windows(client_key.len())
                    .any(|w| w == client_key.as_bytes())
            );
        }
    }
}

#[test]
fn quota_usage_indexes_map_to_channel_ids() {
    let env = Env::new();
    let report = env.import_ok();
    assert_eq!(
        env.logs.channel_quota("a1b2c3d4").unwrap(),
        Some((12.34, "2026-07-01T00:00:00Z".into()))
    );
    assert_eq!(
        env.logs.channel_quota("5e6f7a8b").unwrap(),
        Some((1789.0, "2026-07-14T06:00:00Z".into()))
    );
    let responses = derived_channel_id(Pool::Responses, "openai-responses");
    assert_eq!(
        env.logs.channel_quota(&responses).unwrap(),
        Some((0.5, "2026-07-10T00:00:00Z".into()))
    );
    assert_eq!(
        env.logs.channel_quota("9a8b7c6d").unwrap(),
        Some((42.0, "2026-07-15T00:00:00Z".into()))
    );
    assert_eq!(report.quota.found, 5);
    assert_eq!(report.quota.imported, 4);
    assert_eq!(
        report.quota.skipped, 1,
        "messages index 7 points past the pool"
    );
    assert!(
        report.quota.skipped_items[0].starts_with("messages.7"),
        "{:?}",
        report.quota.skipped_items
    );
    assert_eq!(report.quota.target, 4);

    // The library function on its own gives the same mapping.
    let entries = plan_quota_usage(
        &std::fs::read(env.source.join("quota_usage.json")).unwrap(),
        &std::fs::read(env.source.join("config.json")).unwrap(),
    )
    .unwrap();
    let ids: Vec<&str> = entries.iter().map(|e| e.channel_id.as_str()).collect();
    assert_eq!(
        ids,
        ["a1b2c3d4", "5e6f7a8b", responses.as_str(), "9a8b7c6d"]
    );

    // Imported once: a second import leaves the counters the relay kept since.
    env.logs
        .put_channel_quota("a1b2c3d4", 50.0, "2026-07-01T00:00:00Z")
        .unwrap();
    let again = env.import_ok();
    assert_eq!(again.quota.imported, 0);
    assert_eq!(env.logs.channel_quota("a1b2c3d4").unwrap().unwrap().0, 50.0);
}

#[test]
fn pricing_longest_prefix_and_null_cache_prices() {
    let env = Env::new();
    let report = env.import_ok();
    assert_eq!(report.pricing.found, 6);
    let state = env.state();
    let table = PricingTable::new(state.pricing.iter());

    let (key, price) = table.lookup("claude-sonnet-4-5-20250929").unwrap();
    assert_eq!(key, "claude-sonnet-4-5");
    assert_eq!(price.cache_creation_price, None, "null stays None");
    assert!(
        (price.cache_creation() - 3.75).abs() < 1e-12,
        "None means input × 1.25"
    );
    assert_eq!(price.description.as_deref(), Some("Claude Sonnet 4.5"));
    assert_eq!(
        table.lookup("claude-sonnet-4-20250514").unwrap().0,
        "claude-sonnet"
    );
    assert_eq!(table.lookup("claude-haiku-4-5").unwrap().0, "claude");
    assert_eq!(
        table
            .lookup("claude-opus-4-1-20250805")
            .unwrap()
            .1
            .output_price,
        75.0
    );
    let codex = &state.pricing["gpt-5.1-codex"];
    assert_eq!(
        (codex.cache_creation_price, codex.cache_read_price),
        (None, None)
    );
    assert_eq!(codex.export_to_models, Some(false));
    let gemini = &state.pricing["gemini-2.5-pro"];
    assert_eq!(
        gemini.cache_creation_price,
        Some(0.0),
        "an explicit 0 is free, not None"
    );
    assert_eq!(gemini.extra["tier"], "standard");
}

#[test]
fn model_aliases_are_imported() {
    let env = Env::new();
    let report = env.import_ok();
    let aliases = env.state().aliases;
    assert_eq!(aliases.messages_models.len(), 3);
    assert_eq!(aliases.messages_models[0].value, "opus");
    assert_eq!(
        aliases.messages_models[0].description.as_deref(),
        Some("Claude Opus")
    );
    assert_eq!(aliases.responses_models.len(), 5);
    assert_eq!(aliases.responses_models[1].description, None);
    assert_eq!(aliases.gemini_models[0].value, "gemini-3-pro-preview");
    assert_eq!(
        (
            report.aliases.found,
            report.aliases.imported,
            report.aliases.target
        ),
        (9, 9, 9)
    );
}

#[test]
fn imported_client_keys_are_found_by_the_hash_of_their_plaintext() {
    let env = Env::new();
    let report = env.import_ok();
    let state = env.state();

    assert_eq!(
        state
            .key_hashes
            .get(&hash_client_key(KEY_ALICE))
            .map(String::as_str),
        Some("ccb-1")
    );
    assert_eq!(
        state
            .key_hashes
            .get(&hash_client_key(KEY_OPS))
            .map(String::as_str),
        Some("ccb-2")
    );
    assert_eq!(
        state
            .key_hashes
            .get(&hash_client_key(KEY_CI))
            .map(String::as_str),
        Some("ccb-3")
    );
    assert_eq!(
        state.key_hashes.get(&hash_client_key(
            "sk-AliceLaptopFIXTUREkey0000000000000000000000000009"
        )),
        None
    );
    assert_eq!(
        state
            .key_hashes
            .get(&hash_client_key(&KEY_ALICE.to_uppercase())),
        None
    );

    let alice = &state.keys["ccb-1"];
    assert_eq!(alice.name, "alice-laptop");
    assert_eq!(alice.description, "Alice's Claude Code");
    assert_eq!(alice.display_prefix, "sk-Alice...");
    assert_eq!(alice.status, KeyStatus::Active);
    assert!(!alice.is_admin);
    assert_eq!(alice.limits.requests_per_minute, Some(30));
    assert_eq!(alice.allow.endpoints, ["messages", "responses"]);
    assert_eq!(alice.allow.channels_messages, ["a1b2c3d4"]);
    assert!(alice.allow.channels_responses.is_empty());
    assert_eq!(alice.allow.models, ["claude-sonnet-*"]);
    assert_eq!(
        alice.created_at.to_string(),
        "2026-07-02 10:00:00.123456789 +00:00:00"
    );
    assert_eq!(alice.extra["lastUsedAt"], "2026-07-21T10:00:05.123Z");
    assert_eq!(alice.extra["ccBridgeId"], "1");

    let ops = &state.keys["ccb-2"];
    assert!(ops.is_admin);
    assert_eq!(
        ops.limits.requests_per_minute, None,
        "0 = use the global limit"
    );
    assert_eq!(
        ops.hash,
        hash_client_key(KEY_OPS),
        "hashes are stored lowercase"
    );

    let ci = &state.keys["ccb-3"];
    assert_eq!(ci.status, KeyStatus::Revoked);
    assert_eq!(
        ci.allow.channels_gemini,
        ["9a8b7c6d"],
        "a legacy index maps through config.json"
    );
    assert_eq!(ci.allow.channels_chat, ["1c2d3e4f"]);

    assert_eq!(
        (report.keys.found, report.keys.imported, report.keys.skipped),
        (4, 3, 1)
    );
    assert!(
        report.keys.skipped_items[0].contains("broken"),
        "{:?}",
        report.keys.skipped_items
    );
}

#[test]
fn request_logs_and_user_aliases_are_imported_with_progress() {
    let env = Env::new();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    let options = ImportOptions {
        progress: Some(Box::new(move |p| {
            sink.lock().unwrap().push((p.stage, p.done, p.total))
        })),
        ..ImportOptions::default()
    };
    let report = env.import(&options).unwrap();

    assert_eq!(report.request_logs.found, LOG_ROWS);
    assert_eq!(report.request_logs.imported, LOG_ROWS);
    assert_eq!(env.logs.count_logs().unwrap(), LOG_ROWS);
    assert_eq!(report.request_logs.target, LOG_ROWS);
    let progress = seen.lock().unwrap().clone();
    assert_eq!(
        progress,
        [
            ("request_logs", 0, LOG_ROWS),
            ("request_logs", 1000, LOG_ROWS),
            ("request_logs", 2000, LOG_ROWS),
            ("request_logs", LOG_ROWS, LOG_ROWS)
        ]
    );

    let first = log_by_id(&env.logs, "ccb-req_000000");
    assert_eq!(first.status, "success");
    assert_eq!(first.initial_time, "2026-07-01T10:00:00.123Z");
    assert_eq!(
        first.first_token_time.as_deref(),
        Some("2026-07-01T10:00:01.123Z")
    );
    assert_eq!(
        first.complete_time.as_deref(),
        Some("2026-07-01T10:00:03.123Z")
    );
    assert_eq!(first.channel_id, "a1b2c3d4");
    assert_eq!(first.channel_name, "anthropic-main");
    assert_eq!(first.provider, "claude");
    assert_eq!(first.provider_name, "anthropic-main");
    assert_eq!(first.model, "claude-sonnet-4-5-20250929");
    assert_eq!(first.response_model, "claude-sonnet-4-5-20250929");
    assert_eq!(
        (first.input_tokens, first.output_tokens, first.total_tokens),
        (100, 10, 110)
    );
    assert!((first.price - 0.0125).abs() < 1e-12);
    assert!((first.input_cost - 0.01).abs() < 1e-12);
    assert!(!first.stream);
    assert_eq!(first.http_status, 200);
    assert_eq!(first.client_id, "ccb-1", "client_id is the imported key");
    assert_eq!(first.session_id, "session-0");
    assert_eq!(first.endpoint, "/v1/messages");

    let chat = log_by_id(&env.logs, "ccb-req_000002");
    assert_eq!(
        chat.channel_id, "1c2d3e4f",
        "no channel_uid: resolved by name in the chat pool"
    );
    assert_eq!(chat.client_id, "ccb-2");
    let master = log_by_id(&env.logs, "ccb-req_000003");
    assert_eq!(master.client_id, "ccb-master");
    assert_eq!(
        master.channel_id, "5e6f7a8b",
        "empty channel_uid: resolved by name"
    );
    assert_eq!(log_by_id(&env.logs, "ccb-req_000004").client_id, "");
    let failed = log_by_id(&env.logs, "ccb-req_000007");
    assert_eq!((&*failed.status, failed.http_status), ("error", 529));
    assert_eq!(
        failed.failover_info,
        "529 > failover > Failover to channel 1"
    );
    assert!(failed.upstream_error.contains("overloaded_error"));

    assert_eq!(report.user_aliases.found, 2);
    assert_eq!(report.user_aliases.imported, 2);
    let alias: String = env
        .logs
        .lock()
        .query_row(
            "SELECT alias FROM user_aliases WHERE user_id = 'user_0a1b2c3d4e5f'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(alias, "build-bot");
}

#[test]
fn importing_twice_changes_nothing() {
    let env = Env::new();
    let first = env.import_ok();
    assert!(first.total_imported() > 0);
    let revision = env.store.revision().unwrap();
    let state = env.state();

    let second = env.import_ok();
    assert_eq!(second.total_imported(), 0, "{second}");
    for (name, entity) in second.entities() {
        assert_eq!(entity.imported, 0, "{name}");
        assert_eq!(entity.removed, 0, "{name}");
    }
    assert_eq!(second.channels.unchanged, 7);
    assert_eq!(second.keys.unchanged, 3);
    assert_eq!(second.request_logs.unchanged, LOG_ROWS);
    assert_eq!(
        env.store.revision().unwrap(),
        revision,
        "no config write at all"
    );
    let after = env.state();
    assert_eq!(
        after.channels, state.channels,
        "sealed secrets were not re-sealed"
    );
    assert_eq!(after.keys, state.keys);
    assert_eq!(env.logs.count_logs().unwrap(), LOG_ROWS);
    for (name, entity) in second.entities() {
        let before = first
            .entities()
            .into_iter()
            .find(|(n, _)| *n == name)
            .unwrap()
            .1;
        assert_eq!(entity.target, before.target, "{name}");
    }

    // The plan functions agree: nothing to do.
    let read = |file: ConfigFile| std::fs::read(env.source.join(file.file_name())).unwrap();
    assert!(
        plan_config(
            &read(ConfigFile::Config),
            &after,
            &env.cipher,
            ChannelOrigin::Import
        )
        .unwrap()
        .is_empty()
    );
    assert!(
        plan_config(
            &read(ConfigFile::Config),
            &after,
            &env.cipher,
            ChannelOrigin::ConfigFile
        )
        .unwrap()
        .iter()
        .all(|op| matches!(op, relaybox::store::ConfigOp::PutChannel(..))),
        "ConfigFile takes over imported channels (origin changes), nothing else"
    );
    assert!(
        plan_pricing(&read(ConfigFile::Pricing), &after)
            .unwrap()
            .is_empty()
    );
    assert!(
        plan_aliases(&read(ConfigFile::Aliases), &after)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn dry_run_reports_the_same_and_writes_nothing() {
    let env = Env::new();
    let revision = env.store.revision().unwrap();
    let dry = env
        .import(&ImportOptions {
            dry_run: true,
            ..ImportOptions::default()
        })
        .unwrap();
    assert!(dry.dry_run);
    assert!(dry.to_string().contains("dry run"));
    assert_eq!(env.store.revision().unwrap(), revision);
    let state = env.state();
    assert!(state.channels.is_empty() && state.keys.is_empty() && state.pricing.is_empty());
    assert_eq!(env.logs.count_logs().unwrap(), 0);
    assert_eq!(env.logs.channel_quota("a1b2c3d4").unwrap(), None);
    for file in ConfigFile::ALL {
        assert_eq!(
            env.logs
                .last_applied(cc_bridge::SOURCE, file.file_name())
                .unwrap(),
            None
        );
    }
    let aliases: i64 = env
        .logs
        .lock()
        .query_row("SELECT COUNT(*) FROM user_aliases", [], |r| r.get(0))
        .unwrap();
    assert_eq!(aliases, 0);

    let real = env.import_ok();
    for ((name, d), (_, r)) in dry.entities().into_iter().zip(real.entities()) {
        assert_eq!(
            (
                d.found,
                d.imported,
                d.unchanged,
                d.removed,
                d.skipped,
                d.target
            ),
            (
                r.found,
                r.imported,
                r.unchanged,
                r.removed,
                r.skipped,
                r.target
            ),
            "{name}: dry run and real import disagree"
        );
    }
    for file in ConfigFile::ALL {
        assert!(
            env.logs
                .last_applied(cc_bridge::SOURCE, file.file_name())
                .unwrap()
                .is_some(),
            "{file}"
        );
    }
    println!("{real}");
}

#[test]
fn the_source_folder_is_never_modified() {
    let env = Env::new();
    let before = snapshot(&env.source);
    env.import(&ImportOptions {
        dry_run: true,
        ..ImportOptions::default()
    })
    .unwrap();
    env.import_ok();
    env.import_ok();
    assert_eq!(
        snapshot(&env.source),
        before,
        "no file changed, none appeared (-wal, -shm, journal)"
    );
}

#[test]
fn a_live_database_with_pending_wal_is_read_from_a_private_copy() {
    let env = Env::new();
    let db_path = env.source.join("request_logs.db");
    // cc-bridge running: WAL mode, a connection open, rows only in the -wal file.
    let live = rusqlite::Connection::open(&db_path).unwrap();
    let mode: String = live
        .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    live.pragma_update(None, "wal_autocheckpoint", 0).unwrap();
    live.execute(
        "INSERT INTO request_logs (id, initial_time, provider, model, stream, channel_uid, endpoint)
         VALUES ('req_live', '2026-07-20 12:00:00.5 +0000 UTC', 'claude', 'claude-opus-4-1', 1, 'a1b2c3d4', '/v1/messages')",
        [],
    )
    .unwrap();
    assert!(
        std::fs::metadata(env.source.join("request_logs.db-wal"))
            .unwrap()
            .len()
            > 0
    );
    let before = snapshot(&env.source);

    let report = env.import_ok();
    assert_eq!(
        report.request_logs.imported,
        LOG_ROWS + 1,
        "the row still in the WAL is imported"
    );
    assert!(
        report.notes.iter().any(|n| n.contains("private copy")),
        "{:?}",
        report.notes
    );
    let row = log_by_id(&env.logs, "ccb-req_live");
    assert_eq!(row.initial_time, "2026-07-20T12:00:00.500Z");
    assert!(row.stream);
    assert_eq!(snapshot(&env.source), before);
    drop(live);
}

#[test]
fn cc_bridge_db_is_preferred_and_old_schemas_import_with_defaults() {
    let env = Env::new();
    // An early request_logs.db next to a current cc-bridge.db: the unified DB wins.
    std::fs::remove_file(env.source.join("request_logs.db")).unwrap();
    build_cc_bridge_db(&env.source.join("request_logs.db"), Schema::Early);
    build_cc_bridge_db(&env.source.join("cc-bridge.db"), Schema::Current);
    let report = env.import_ok();
    assert_eq!(
        report.database.as_deref(),
        Some(env.source.join("cc-bridge.db").as_path())
    );
    assert_eq!(report.request_logs.imported, LOG_ROWS);

    // The early database on its own: no api_keys table, few columns.
    let early = read_sqlite(&env.source.join("request_logs.db")).unwrap();
    assert!(early.keys.is_empty());
    assert!(early.notes.iter().any(|n| n.contains("no api_keys table")));
    let rows = early.request_logs().unwrap();
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert_eq!(row.id, "ccb-early-1");
    assert_eq!(row.status, "success");
    assert_eq!(row.initial_time, "2025-11-02T08:00:00.000Z");
    assert_eq!(
        (row.input_tokens, row.total_tokens, row.http_status),
        (100, 120, 200)
    );
    assert!(row.stream);
    assert_eq!(row.channel_name, "Anthropic-Main");
    assert_eq!(
        (
            row.provider_name.as_str(),
            row.channel_id.as_str(),
            row.client_id.as_str()
        ),
        ("", "", "")
    );
    assert_eq!(row.input_cost, 0.0, "cost split columns absent: 0");

    // Imported into a fresh data dir, its channel is resolved by name (case-insensitive).
    let fresh = Env::new();
    std::fs::remove_file(fresh.source.join("request_logs.db")).unwrap();
    build_cc_bridge_db(&fresh.source.join("request_logs.db"), Schema::Early);
    let report = fresh.import_ok();
    assert_eq!(report.keys.found, 0);
    assert_eq!(log_by_id(&fresh.logs, "ccb-early-1").channel_id, "a1b2c3d4");
}

#[test]
fn config_file_origin_removes_dropped_channels_but_never_admin_ones() {
    let env = Env::new();
    let options = ImportOptions {
        origin: ChannelOrigin::ConfigFile,
        ..ImportOptions::default()
    };
    env.import(&options).unwrap();
    assert!(
        env.state()
            .channels
            .values()
            .all(|c| c.origin == ChannelOrigin::ConfigFile)
    );

    // An admin-created channel appears; config.json then drops the gemini channel.
    let mut admin = env.state().channels["9a8b7c6d"].clone();
    admin.id = "0190f0f0admin".into();
    admin.name = "made-in-the-ui".into();
    admin.origin = ChannelOrigin::Admin;
    // Sealed secrets are bound to their channel id: a copy under a new id needs its own.
    admin.credentials.api_keys = vec![
        env.cipher
            .seal(&api_key_aad(&admin.id), "sk-admin")
            .unwrap(),
    ];
    admin.credentials.oauth_tokens = None;
    env.config
        .apply(&[relaybox::store::ConfigOp::PutChannel(
            admin,
            relaybox::store::Expect::Absent,
        )])
        .unwrap();
    let mut config = fixture_json(ConfigFile::Config);
    config["geminiUpstream"] = Value::Array(Vec::new());
    std::fs::write(
        env.source.join("config.json"),
        serde_json::to_vec_pretty(&config).unwrap(),
    )
    .unwrap();

    let report = env.import(&options).unwrap();
    assert_eq!(report.channels.removed, 1);
    let state = env.state();
    assert!(!state.channels.contains_key("9a8b7c6d"));
    assert!(
        state.channels.contains_key("0190f0f0admin"),
        "admin channels are never touched"
    );
    assert_eq!(state.channels.len(), 7);
}

#[test]
fn invalid_files_are_rejected_whole_with_a_precise_error() {
    let fixture = std::fs::read_to_string(Path::new(FIXTURE).join("config.json")).unwrap();
    let state = ConfigState::default();
    let master = MasterSecret::from_text(&MasterSecret::generate_text().unwrap());
    let cipher = Cipher::create(&master).unwrap().0;

    // JSON syntax: a missing comma, with line and column.
    let broken = fixture.replacen(
        "\"name\": \"anthropic-main\",",
        "\"name\": \"anthropic-main\"",
        1,
    );
    let line = broken
        .lines()
        .position(|l| l.contains("\"description\": \"Anthropic direct"))
        .unwrap()
        + 1;
    let err = plan_config(
        broken.as_bytes(),
        &state,
        &cipher,
        ChannelOrigin::ConfigFile,
    )
    .unwrap_err();
    assert_eq!(
        (err.file.as_str(), err.line),
        ("config.json", Some(line)),
        "{err}"
    );
    assert!(err.column.is_some());
    assert!(
        err.to_string()
            .starts_with(&format!("config.json line {line} column ")),
        "{err}"
    );

    // Wrong type: the field path and the position.
    let wrong = fixture.replacen("\"priority\": 2,", "\"priority\": \"2\",", 1);
    let err =
        plan_config(wrong.as_bytes(), &state, &cipher, ChannelOrigin::ConfigFile).unwrap_err();
    assert_eq!(err.field.as_deref(), Some("upstream[1].priority"), "{err}");
    assert!(
        err.line.is_some() && err.reason.contains("invalid type"),
        "{err}"
    );

    // Duplicate channel name in a pool (case-insensitive).
    let duplicate = fixture.replacen(
        "\"name\": \"smart-router\"",
        "\"name\": \"Anthropic-MAIN\"",
        1,
    );
    let err = plan_config(
        duplicate.as_bytes(),
        &state,
        &cipher,
        ChannelOrigin::ConfigFile,
    )
    .unwrap_err();
    assert_eq!(err.field.as_deref(), Some("upstream[2].name"), "{err}");
    assert!(err.reason.contains("unique"), "{err}");

    // Unknown serviceType for its pool.
    let unknown = fixture.replacen(
        "\"serviceType\": \"gemini\"",
        "\"serviceType\": \"bedrock\"",
        1,
    );
    let err = plan_config(
        unknown.as_bytes(),
        &state,
        &cipher,
        ChannelOrigin::ConfigFile,
    )
    .unwrap_err();
    assert_eq!(
        err.field.as_deref(),
        Some("geminiUpstream[0].serviceType"),
        "{err}"
    );
    let misplaced = fixture.replacen(
        "\"serviceType\": \"openai\",",
        "\"serviceType\": \"composite\",",
        1,
    );
    let err = plan_config(
        misplaced.as_bytes(),
        &state,
        &cipher,
        ChannelOrigin::ConfigFile,
    )
    .unwrap_err();
    assert_eq!(
        err.field.as_deref(),
        Some("chatUpstream[0].serviceType"),
        "composite is Messages-only: {err}"
    );

    // The other semantic checks, one each.
    for (from, to, field) in [
        (
            "\"baseUrl\": \"https://api.openai.com\"",
            "\"baseUrl\": \"api.openai.com\"",
            "responsesUpstream[1].baseUrl",
        ),
        (
            "\"status\": \"suspended\"",
            "\"status\": \"paused\"",
            "upstream[1].status",
        ),
        (
            "\"loadBalance\": \"failover\"",
            "\"loadBalance\": \"fastest\"",
            "loadBalance",
        ),
        (
            "\"keyLoadBalance\": \"random\"",
            "\"keyLoadBalance\": \"weighted\"",
            "chatUpstream[0].keyLoadBalance",
        ),
        (
            "\"quotaType\": \"credit\"",
            "\"quotaType\": \"tokens\"",
            "upstream[0].quotaType",
        ),
        (
            "\"quotaResetMode\": \"rolling\"",
            "\"quotaResetMode\": \"sliding\"",
            "upstream[1].quotaResetMode",
        ),
        (
            "\"quotaResetUnit\": \"months\"",
            "\"quotaResetUnit\": \"years\"",
            "upstream[0].quotaResetUnit",
        ),
        (
            "\"errorCodes\": \"401,403\"",
            "\"errorCodes\": \"401;403\"",
            "failover.rules[4].errorCodes",
        ),
        (
            "{ \"action\": \"none\" }",
            "{ \"action\": \"explode\" }",
            "failover.rules[6].actionChain[0].action",
        ),
        (
            "\"outputMultiplier\": 0.8",
            "\"outputMultiplier\": -0.8",
            "upstream[0].priceMultipliers.claude-opus.outputMultiplier",
        ),
        (
            "\"id\": \"9a8b7c6d\"",
            "\"id\": \"a1b2c3d4\"",
            "geminiUpstream[0].id",
        ),
    ] {
        let text = fixture.replacen(from, to, 1);
        assert_ne!(text, fixture, "{from}");
        let err =
            plan_config(text.as_bytes(), &state, &cipher, ChannelOrigin::ConfigFile).unwrap_err();
        assert_eq!(err.field.as_deref(), Some(field), "{err}");
    }

    // pricing.json: negative prices.
    let pricing = std::fs::read_to_string(Path::new(FIXTURE).join("pricing.json")).unwrap();
    let negative = pricing.replacen("\"outputPrice\": 75.0", "\"outputPrice\": -75.0", 1);
    let err = plan_pricing(negative.as_bytes(), &state).unwrap_err();
    assert_eq!(
        err.field.as_deref(),
        Some("models.claude-opus-4-1.outputPrice"),
        "{err}"
    );

    // Through import_dir: the import stops before writing anything.
    let env = Env::new();
    std::fs::write(env.source.join("config.json"), unknown).unwrap();
    let revision = env.store.revision().unwrap();
    match env.import(&ImportOptions::default()) {
        Err(ImportError::File(err)) => {
            assert_eq!(err.field.as_deref(), Some("geminiUpstream[0].serviceType"))
        }
        other => panic!("expected a file error, got {other:?}"),
    }
    assert_eq!(env.store.revision().unwrap(), revision);
    assert!(env.state().channels.is_empty());
    assert_eq!(env.logs.count_logs().unwrap(), 0);
    assert_eq!(
        env.logs
            .last_applied(cc_bridge::SOURCE, "config.json")
            .unwrap(),
        None
    );
    let rejected: String = env
        .logs
        .lock()
        .query_row(
            "SELECT outcome FROM import_history WHERE item = 'config.json'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(rejected, "rejected");
    assert!(env.data_dir().join("relaybox.redb").exists());

    // A bad file later in the folder also stops the import before anything is written.
    let env = Env::new();
    let quota = std::fs::read_to_string(env.source.join("quota_usage.json")).unwrap();
    let quota = quota.replacen("\"used\": 42", "\"used\": \"42\"", 1);
    std::fs::write(env.source.join("quota_usage.json"), quota).unwrap();
    match env.import(&ImportOptions::default()) {
        Err(ImportError::File(err)) => {
            assert_eq!(err.file, "quota_usage.json");
            assert_eq!(err.field.as_deref(), Some("gemini.0.used"), "{err}");
        }
        other => panic!("expected a file error, got {other:?}"),
    }
    assert!(env.state().channels.is_empty() && env.state().keys.is_empty());
    assert_eq!(env.logs.count_logs().unwrap(), 0);
}

#[test]
fn a_parent_folder_is_read_through_its_config_folder() {
    let env = Env::new();
    let parent = env.source.parent().unwrap().to_path_buf();
    let report = cc_bridge::import_dir(
        &parent,
        &env.config,
        &env.logs,
        &env.cipher,
        &ImportOptions::default(),
    )
    .unwrap();
    assert_eq!(report.source, env.source);
    assert_eq!(report.channels.imported, 7);
    let empty = tempfile::tempdir().unwrap();
    assert!(matches!(
        cc_bridge::import_dir(
            empty.path(),
            &env.config,
            &env.logs,
            &env.cipher,
            &ImportOptions::default()
        ),
        Err(ImportError::NothingToImport(_))
    ));
}
