//! `relaybox import claude-relay-service` against the real data written by claude-relay-service
//! 1.1.314 (`../shared/fixtures/claude-relay-service/`): a real Redis loaded from its RDB file
//! (started here, one per test), its JSON dump, the real binary, the relay end to end with the
//! mock upstream.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

mod common;

use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{TestServer, all_bytes, contains, request, run_cli};
use relaybox::app::{DataDir, DataDirOptions};
use relaybox::config::aad::{api_key_aad, legacy_salt_aad, oauth_aad};
use relaybox::importers::crs;
use relaybox::store::ConfigState;
use relaybox::store::sqlite::UsageDay;
use relaybox_mock_upstream::{MockOptions, MockUpstream};
use serde_json::{Value, json};

const ENCRYPTION_KEY: &str = "CRS-fixture-encryption-key-32chr";

/// The fixture's API keys (its README): label, key id, plaintext.
const KEYS: &[(&str, &str, &str)] = &[
    (
        "unlimited",
        "111c4b27-098b-4b5c-bd5a-da6420edff2e",
        "cr_adffca9af592479225566e0add1eaa15b5560fb01537af7022ae702427809126",
    ),
    (
        "limited-console",
        "15008268-b79c-4446-bcc6-eb7c6e893864",
        "cr_fd17c3f12e4a50a9f1ac977ad29e92bae7994ed4cee0b4d6d56b71f937135dcf",
    ),
    (
        "oauth-bound",
        "cda5d800-f8a2-4d88-b845-7c5f47d83538",
        "cr_f0162a1c9ebf52ddf7630a1062cabd97c3189e80f68a97e03a6037cf16cb967b",
    ),
    (
        "group-bound",
        "9af10e12-546b-4ea8-adb1-0d4fbcc9a5b6",
        "cr_0d730126a89c4a1c5ff769c073b37d23947fe9bcfef2b79e9748abd25540afad",
    ),
    (
        "openai",
        "bb5652cd-df48-4e5b-816e-0278d735a9fa",
        "cr_ce37cd9ea1ab232c8d7cf8a4ff794273a5902f2bb1c291885a5ed33f89de9e9e",
    ),
    (
        "gemini",
        "7d9a73ff-d8f6-46eb-8292-0a0008263a9a",
        "cr_0a85453fa76f8cdfbe52a197a0999ed2e10559f40719c3365a3f9b02808dbe78",
    ),
    (
        "multi",
        "1e760c88-00d8-4461-9308-378533e896b6",
        "cr_c01334f6c2fa556d100ddac2f4767346d7cfc17cdc677d62390b311b7c70ddc9",
    ),
    (
        "activation",
        "3df3a0ba-5c8d-49a8-b30e-c4754e55d22c",
        "cr_49d48e7598fe1ff45f1f7927d948c987a95fe08f27a8ee14575ab56c6cad4521",
    ),
    (
        "activation-unused",
        "a327af01-0926-4136-9aef-f80591eb0aa9",
        "cr_29e01b9865fb7493231f8b3c38165224a2444ca2de0bdc26dd390e6d017736b6",
    ),
    (
        "client-restricted",
        "fac9a3ec-efd8-48c6-ad01-172bccabe0a1",
        "cr_efd84c6749e3b1e576497cc418d98ceba6395f58399b8a122d5d688474ce10e4",
    ),
    (
        "disabled",
        "45fb37ae-20f0-41c5-841a-ec343de3b22d",
        "cr_d0fae178d960f41bf88e67b2d0bab9c0698aee125162310b4d9eee5ee442e43f",
    ),
    (
        "expired",
        "d4b1f8a4-66ef-42e7-8700-c2cdf8be5658",
        "cr_17f3b2218da98e5a41323bee837847bd0a9a624f21be8fc40cb9e26ea90b0d0d",
    ),
    (
        "deleted",
        "16669293-11ee-42c6-b4ed-6c6f644e9af3",
        "cr_6dc07355aed8375b8b92080abb4878a9a11bb3d065c4caa6076d26945f55c366",
    ),
];

fn fixture_key(label: &str) -> (&'static str, &'static str) {
    let (_, id, plaintext) = KEYS.iter().find(|(l, _, _)| *l == label).unwrap();
    (id, plaintext)
}

// Account ids of the fixture.
const CLAUDE_OAUTH: &str = "8b1ffc02-c4cd-4783-895a-1629872fa610";
const CLAUDE_LEGACY: &str = "845d33a8-c1de-472a-b66a-8045c3a9ea24";
const CONSOLE: &str = "b73e00be-848b-435b-ab97-3f096907424a";
const CCR: &str = "68910f1b-53fa-4621-bcde-3731674c68e6";
const RESPONSES: &str = "b58b927f-943a-4b14-aaac-3a80def0fc6c";
const OPENAI_OAUTH: &str = "412c3297-2509-4567-823a-9126aceb273b";
const AZURE: &str = "c1391f75-3598-45db-abc1-405bf3c65588";
const GEMINI_OAUTH: &str = "a963a073-7116-4cd5-9f4d-9c338dbbf243";
const GEMINI_API: &str = "08ad4185-239e-4c63-ac11-376d92c56b43";
const BEDROCK: &str = "2f6adbf8-0bad-49f6-8766-94c2424066cb";
const DROID: &str = "9c558932-615f-405e-a9e8-980ca1b4b1e3";

/// Every secret plaintext of the fixture README that is long enough to search for in bytes.
const SECRET_PLAINTEXTS: &[&str] = &[
    ENCRYPTION_KEY,
    "sk-ant-oat01-FIXTURE-claude-oauth-access-token-0001",
    "sk-ant-ort01-FIXTURE-claude-oauth-refresh-token-0001",
    "claude-oauth-fixture@example.com",
    "fixture-claude-login-password",
    "sk-ant-ort01-FIXTURE-claude-legacy-refresh-0002",
    "sk-ant-api03-FIXTURE-console-key-0003",
    "sk-FIXTURE-ccr-key-0004",
    "sk-FIXTURE-openai-responses-key-0005",
    "eyJFIXTURE.id-token.0006",
    "eyJFIXTURE.openai-access-token.0006",
    "rt_FIXTURE-openai-refresh-token-0006",
    "codex-fixture@example.com",
    "FIXTURE-azure-openai-key-0007",
    "ya29.FIXTURE-gemini-access-token-0008",
    "1//FIXTURE-gemini-refresh-token-0008",
    "AIzaFIXTURE-gemini-api-key-0009",
    "AKIAFIXTURE0010",
    "FIXTUREsecretAccessKey0010",
    "FIXTUREsessionToken0010",
    "fk-FIXTURE-droid-key-0011a",
    "fk-FIXTURE-droid-key-0011b",
];

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/claude-relay-service")
}

fn dump_path() -> PathBuf {
    fixtures().join("redis-dump.json")
}

fn dump() -> Value {
    serde_json::from_slice(&std::fs::read(dump_path()).unwrap()).unwrap()
}

// ---- a real Redis, loaded from the fixture's RDB file ----------------------------------------

struct Redis {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Redis {
    fn start() -> Redis {
        let dir = tempfile::tempdir().unwrap();
        std::fs::copy(
            fixtures().join("redis-dump.rdb"),
            dir.path().join("redis-dump.rdb"),
        )
        .unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--dir"])
            .arg(dir.path())
            .args([
                "--dbfilename",
                "redis-dump.rdb",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (tests/run.sh installs it)");
        let redis = Redis {
            child,
            port,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while redis.ping().as_deref() != Some("+PONG") {
            assert!(
                Instant::now() < deadline,
                "redis-server did not answer PING"
            );
            std::thread::sleep(Duration::from_millis(25));
        }
        redis
    }

    /// `+PONG` once the data is loaded (`-LOADING …` before).
    fn ping(&self) -> Option<String> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        stream.write_all(b"PING\r\n").ok()?;
        let mut buf = [0u8; 64];
        let n = stream.read(&mut buf).ok()?;
        Some(String::from_utf8_lossy(&buf[..n]).trim().to_string())
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// `INFO commandstats`: which commands the importer sent.
    fn commands(&self) -> String {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        stream.write_all(b"INFO commandstats\r\n").unwrap();
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = stream.read(&mut buf) {
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        String::from_utf8_lossy(&out).to_string()
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---- running the import ----------------------------------------------------------------------

fn import_cli(data_dir: &Path, source: &[&str], extra: &[&str]) -> Output {
    let mut args = vec!["import", "claude-relay-service"];
    args.extend_from_slice(source);
    args.extend_from_slice(extra);
    run_cli(data_dir, &args)
}

/// Import through the binary and return its JSON report.
fn import_json(data_dir: &Path, source: &[&str], key: &str) -> Value {
    let output = import_cli(data_dir, source, &["--crs-encryption-key", key, "--json"]);
    assert!(
        output.status.success(),
        "import failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

fn dump_source() -> Vec<String> {
    vec!["--dump".into(), dump_path().display().to_string()]
}

fn refs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

fn open(data_dir: &Path) -> DataDir {
    DataDir::open(
        &DataDirOptions {
            cluster_keyring: None,
            path: data_dir.to_path_buf(),
            encryption_key: None,
            allow_network_fs: false,
        },
        "test",
    )
    .unwrap()
}

/// Import in-process (for tests that change the source between runs).
fn import_snapshot(data: &DataDir, snapshot: &crs::Snapshot, offset_hours: i32) -> crs::CrsReport {
    let mut options = crs::CrsOptions::new(ENCRYPTION_KEY);
    options.timezone_offset_minutes = offset_hours * 60;
    let prepared = crs::prepare_snapshot("test", snapshot, &options).unwrap();
    let config = relaybox::config::Configuration::local(
        std::sync::Arc::clone(&data.stores.config),
        std::sync::Arc::clone(&data.cipher),
    )
    .unwrap();
    crs::import(
        &prepared,
        &config,
        &data.stores.logs,
        &data.cipher,
        &options,
    )
    .unwrap()
}

fn read_dump_snapshot() -> crs::Snapshot {
    crs::read_source(&crs::Source::Dump(dump_path()), &|_| {}).unwrap()
}

/// The stored keys and channels with every sealed value opened (sealing is randomized) and
/// versions dropped: what two imports of the same data must agree on.
fn opened_state(data: &DataDir, state: &ConfigState) -> Value {
    let cipher = &data.cipher;
    let mut keys = serde_json::Map::new();
    for (id, key) in &state.keys {
        let mut value = serde_json::to_value(key).unwrap();
        if let Some(legacy) = &key.legacy_hash {
            value["legacyHash"]["salt"] = json!(
                cipher
                    .open(&legacy_salt_aad(id), &legacy.salt)
                    .unwrap()
                    .as_str()
            );
        }
        value.as_object_mut().unwrap().remove("version");
        keys.insert(id.clone(), value);
    }
    let mut channels = serde_json::Map::new();
    for (id, channel) in &state.channels {
        let mut value = serde_json::to_value(channel).unwrap();
        value["apiKeys"] = json!(
            channel
                .credentials
                .api_keys
                .iter()
                .map(|k| cipher.open(&api_key_aad(id), k).unwrap().to_string())
                .collect::<Vec<_>>()
        );
        if let Some(sealed) = &channel.credentials.oauth_tokens {
            let text = cipher.open(&oauth_aad(id), sealed).unwrap();
            value["oauthTokens"] = serde_json::from_str(&text).unwrap();
        }
        value["claudeRelayService"]["secrets"] = json!(extra_secrets(data, channel));
        value.as_object_mut().unwrap().remove("version");
        channels.insert(id.clone(), value);
    }
    json!({"keys": keys, "channels": channels})
}

/// `extra.claudeRelayService.secrets`, opened.
fn extra_secrets(data: &DataDir, channel: &relaybox::domain::Channel) -> BTreeMap<String, String> {
    let Some(secrets) = channel
        .extra
        .get(crs::EXTRA)
        .and_then(|c| c.get("secrets"))
        .and_then(Value::as_object)
    else {
        return BTreeMap::new();
    };
    secrets
        .iter()
        .map(|(name, sealed)| {
            let text = sealed.as_str().unwrap();
            assert!(text.starts_with("enc:v1:"), "{name} is not sealed");
            let sealed = serde_json::from_value(sealed.clone()).unwrap();
            let opened = data
                .cipher
                .open(&crs::secret_aad(&channel.id, name), &sealed)
                .unwrap();
            (name.clone(), opened.to_string())
        })
        .collect()
}

fn usage_rows(data: &DataDir) -> Vec<UsageDay> {
    data.stores.logs.usage_daily(None).unwrap()
}

// ---- the tests -------------------------------------------------------------------------------

#[test]
fn live_redis_and_the_json_dump_give_the_same_result() {
    let redis = Redis::start();
    let tmp = tempfile::tempdir().unwrap();
    let (live_dir, dump_dir) = (tmp.path().join("live"), tmp.path().join("dump"));
    let live = import_json(&live_dir, &["--redis-url", &redis.url()], ENCRYPTION_KEY);
    let from_dump = import_json(&dump_dir, &refs(&dump_source()), ENCRYPTION_KEY);

    // The same report, but for where it came from and how many keys the source had in all
    // (the RDB has lost the keys with short TTLs).
    for field in ["source", "scannedKeys"] {
        assert_ne!(live[field], Value::Null);
    }
    let strip = |mut v: Value| {
        let o = v.as_object_mut().unwrap();
        o.remove("source");
        o.remove("scannedKeys");
        v
    };
    assert_eq!(strip(live.clone()), strip(from_dump.clone()));
    assert_eq!(live["keys"]["new"], 13);
    assert_eq!(live["channels"]["new"], 11);

    // Only read commands reached Redis.
    let commands = redis.commands();
    for line in commands.lines().filter(|l| l.starts_with("cmdstat_")) {
        let name = line
            .trim_start_matches("cmdstat_")
            .split(':')
            .next()
            .unwrap();
        assert!(
            [
                "scan", "type", "hgetall", "get", "smembers", "ping", "info", "client", "hello",
                "select"
            ]
            .contains(&name),
            "the importer sent {name}: {commands}"
        );
    }

    let live_data = open(&live_dir);
    let dump_data = open(&dump_dir);
    let live_state = live_data.stores.config.load().unwrap();
    let dump_state = dump_data.stores.config.load().unwrap();
    assert_eq!(live_state.keys.len(), 13);
    assert_eq!(live_state.channels.len(), 11);
    assert_eq!(
        opened_state(&live_data, &live_state),
        opened_state(&dump_data, &dump_state)
    );
    let live_usage = usage_rows(&live_data);
    assert!(!live_usage.is_empty());
    assert_eq!(live_usage, usage_rows(&dump_data));
}

/// The relay with the imported data dir and the mock upstream: every channel points at the
/// mock, which answers only when the channel presents the credential it should.
struct Relay {
    // Field order: the server stops before the mock's runtime goes away.
    server: TestServer,
    mock: MockUpstream,
    _runtime: tokio::runtime::Runtime,
    _tmp: tempfile::TempDir,
}

impl Relay {
    fn post(&self, path: &str, headers: &[(&str, &str)], body: &Value) -> (u16, Value) {
        request(
            "POST",
            &format!("{}{path}", self.server.url),
            headers,
            Some(body),
        )
        .unwrap()
    }

    fn messages(&self, key: &str, user_agent: Option<&str>) -> (u16, Value) {
        let mut headers = vec![("x-api-key", key)];
        if let Some(agent) = user_agent {
            headers.push(("user-agent", agent));
        }
        self.post(
            "/v1/messages",
            &headers,
            &json!({"model": "claude-sonnet-4-20250514", "max_tokens": 16,
                    "messages": [{"role": "user", "content": "Hello fixture"}]}),
        )
    }

    fn responses(&self, key: &str) -> (u16, Value) {
        let bearer = format!("Bearer {key}");
        self.post(
            "/v1/responses",
            &[("authorization", &bearer)],
            &json!({"model": "gpt-5", "input": "Hello fixture"}),
        )
    }

    fn gemini(&self, key: &str) -> (u16, Value) {
        self.post(
            "/v1beta/models/gemini-2.5-flash:generateContent",
            &[("x-goog-api-key", key)],
            &json!({"contents": [{"role": "user", "parts": [{"text": "Hello fixture"}]}]}),
        )
    }

    /// Requests the mock answered, by the credential its scenario required.
    fn served_with(&self, credential: &str) -> usize {
        self.mock
            .requests()
            .iter()
            .filter(|r| r.status == 200 && r.path.contains(&format!("require_key={credential}")))
            .count()
    }
}

fn relay_with_imported_dump() -> Relay {
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().join("data");
    import_json(&data_dir, &refs(&dump_source()), ENCRYPTION_KEY);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mock = runtime
        .block_on(MockUpstream::start(MockOptions::default()))
        .unwrap();
    let server = TestServer::start(&data_dir, &[]);
    // Point the servable channels at the mock; each must present its own decrypted credential.
    // The Claude OAuth channel presents its imported access token (as a Bearer credential); the
    // refresh-only account has no access token, so it gets a stand-in API key.
    let legacy_credential = "test-credential-for-the-refresh-only-account";
    for (account, credential, oauth) in [
        (CONSOLE, "sk-ant-api03-FIXTURE-console-key-0003", false),
        (CCR, "sk-FIXTURE-ccr-key-0004", false),
        (RESPONSES, "sk-FIXTURE-openai-responses-key-0005", false),
        (OPENAI_OAUTH, "eyJFIXTURE.openai-access-token.0006", false),
        (GEMINI_API, "AIzaFIXTURE-gemini-api-key-0009", false),
        (
            CLAUDE_OAUTH,
            "sk-ant-oat01-FIXTURE-claude-oauth-access-token-0001",
            false,
        ),
        (CLAUDE_LEGACY, legacy_credential, true),
    ] {
        let mut patch = json!({
            "baseUrl": mock.scenario_url(&format!("require_key={credential}")),
            "status": "active",
        });
        if oauth {
            patch["apiKeys"] = json!([credential]);
        }
        let (status, body) = server.admin(
            "PATCH",
            &format!("/channels/{}", crs::channel_id(account)),
            Some(&patch),
        );
        assert_eq!(status, 200, "{body}");
    }
    Relay {
        server,
        mock,
        _runtime: runtime,
        _tmp: tmp,
    }
}

#[test]
fn every_active_key_works_end_to_end_and_the_others_are_refused() {
    let relay = relay_with_imported_dump();
    let ok = |(status, body): (u16, Value), who: &str| {
        assert_eq!(status, 200, "{who}: {body}");
    };

    // Claude keys through the shared Console account (x-api-key and Bearer).
    let (_, unlimited) = fixture_key("unlimited");
    ok(relay.messages(unlimited, None), "unlimited");
    let bearer = format!("Bearer {unlimited}");
    ok(
        relay.post(
            "/v1/messages",
            &[("authorization", &bearer)],
            &json!({"model": "claude-3-5-haiku-20241022", "max_tokens": 16,
                    "messages": [{"role": "user", "content": "hi"}]}),
        ),
        "unlimited (Bearer)",
    );
    ok(
        relay.messages(fixture_key("limited-console").1, None),
        "limited-console",
    );
    ok(
        relay.messages(fixture_key("activation").1, None),
        "activation",
    );
    ok(
        relay.messages(fixture_key("activation-unused").1, None),
        "activation-unused",
    );
    assert_eq!(
        relay.served_with("sk-ant-api03-FIXTURE-console-key-0003"),
        5
    );

    // Bound to the Claude OAuth account, and to a group of one refresh-only account.
    ok(
        relay.messages(fixture_key("oauth-bound").1, None),
        "oauth-bound",
    );
    assert_eq!(
        relay.served_with("sk-ant-oat01-FIXTURE-claude-oauth-access-token-0001"),
        1
    );
    ok(
        relay.messages(fixture_key("group-bound").1, None),
        "group-bound",
    );
    assert_eq!(
        relay.served_with("test-credential-for-the-refresh-only-account"),
        1
    );
    // The dedicated accounts serve nobody else.
    assert_eq!(relay.served_with("sk-FIXTURE-ccr-key-0004"), 0);

    // OpenAI Responses and Gemini API keys.
    ok(relay.responses(fixture_key("openai").1), "openai");
    assert_eq!(relay.served_with("sk-FIXTURE-openai-responses-key-0005"), 1);
    ok(relay.gemini(fixture_key("gemini").1), "gemini");
    ok(relay.gemini(fixture_key("multi").1), "multi (gemini)");
    assert_eq!(relay.served_with("AIzaFIXTURE-gemini-api-key-0009"), 2);
    // multi's Claude requests are bound to its Bedrock account, which relaybox cannot serve.
    let (status, body) = relay.messages(fixture_key("multi").1, None);
    assert_eq!(status, 503, "{body}");
    // The client is not told channel names; the log row names the Bedrock account.
    assert!(!body.to_string().contains("fixture-bedrock"), "{body}");
    let mut logged = false;
    common::eventually(std::time::Duration::from_secs(5), || {
        let logs = relay.server.admin("GET", "/logs?limit=1000", None).1;
        logged = logs["logs"].as_array().into_iter().flatten().any(|row| {
            row["http_status"] == 503
                && row["error"]
                    .as_str()
                    .is_some_and(|e| e.contains("fixture-bedrock"))
        });
        logged
    });
    assert!(logged, "no 503 row names fixture-bedrock");

    // Client restriction: Claude Code only.
    let (_, restricted) = fixture_key("client-restricted");
    ok(
        relay.messages(restricted, Some("claude-cli/2.0.14 (external, cli)")),
        "client-restricted as Claude Code",
    );
    let (status, body) = relay.messages(restricted, Some("curl/8.5.0"));
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["type"], "permission_error", "{body}");

    // Endpoint permissions: an OpenAI-only key may not use the Messages endpoint.
    let (status, body) = relay.messages(fixture_key("openai").1, None);
    assert_eq!(status, 403, "{body}");

    // Disabled, expired, deleted, unknown.
    for (label, status, kind) in [
        ("disabled", 403, "permission_error"),
        ("expired", 403, "permission_error"),
        ("deleted", 401, "authentication_error"),
    ] {
        let (got, body) = relay.messages(fixture_key(label).1, None);
        assert_eq!(got, status, "{label}: {body}");
        assert_eq!(body["error"]["type"], kind, "{label}: {body}");
    }
    let unknown = format!("cr_{}", "0".repeat(64));
    let (status, body) = relay.messages(&unknown, None);
    assert_eq!(status, 401, "{body}");
    // A key of this deployment with one character changed.
    let mut altered = fixture_key("unlimited").1.to_string();
    altered.replace_range(10..11, "0");
    assert_eq!(relay.messages(&altered, None).0, 401);

    // The unused activation key starts its period at its first use in relaybox.
    let id = crs::key_id(fixture_key("activation-unused").0);
    assert!(common::eventually(Duration::from_secs(5), || {
        relay.server.admin("GET", &format!("/keys/{id}"), None).1["firstUsedAt"].is_string()
    }));
}

#[test]
fn secrets_decrypt_to_the_fixture_plaintexts_and_are_sealed_at_rest() {
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().join("data");
    import_json(&data_dir, &refs(&dump_source()), ENCRYPTION_KEY);
    {
        let data = open(&data_dir);
        let state = data.stores.config.load().unwrap();
        let cipher = &data.cipher;
        let channel = |account: &str| state.channels[&crs::channel_id(account)].clone();
        let api_keys = |account: &str| -> Vec<String> {
            let channel = channel(account);
            channel
                .credentials
                .api_keys
                .iter()
                .map(|sealed| {
                    assert!(sealed.as_str().starts_with("enc:v1:"));
                    cipher
                        .open(&api_key_aad(&channel.id), sealed)
                        .unwrap()
                        .to_string()
                })
                .collect()
        };
        let oauth = |account: &str| -> Value {
            let channel = channel(account);
            let sealed = channel.credentials.oauth_tokens.as_ref().unwrap();
            assert!(sealed.as_str().starts_with("enc:v1:"));
            serde_json::from_str(&cipher.open(&oauth_aad(&channel.id), sealed).unwrap()).unwrap()
        };
        let secrets = |account: &str| extra_secrets(&data, &channel(account));

        // Claude OAuth: the token block, login e-mail and password, the proxy password.
        let tokens = oauth(CLAUDE_OAUTH);
        assert_eq!(
            tokens["access_token"],
            "sk-ant-oat01-FIXTURE-claude-oauth-access-token-0001"
        );
        assert_eq!(
            tokens["refresh_token"],
            "sk-ant-ort01-FIXTURE-claude-oauth-refresh-token-0001"
        );
        assert_eq!(tokens["expires_at"], 4_102_444_800_000_i64);
        assert_eq!(tokens["scopes"], json!(["user:inference"]));
        let claude = secrets(CLAUDE_OAUTH);
        assert_eq!(claude["email"], "claude-oauth-fixture@example.com");
        assert_eq!(claude["password"], "fixture-claude-login-password");
        assert_eq!(claude["proxyPassword"], "pp");
        let proxy = &channel(CLAUDE_OAUTH).extra[crs::EXTRA]["proxy"];
        assert_eq!(proxy["host"], "127.0.0.1");
        assert!(proxy.get("password").is_none());
        assert_eq!(
            oauth(CLAUDE_LEGACY)["refresh_token"],
            "sk-ant-ort01-FIXTURE-claude-legacy-refresh-0002"
        );

        assert_eq!(api_keys(CONSOLE), ["sk-ant-api03-FIXTURE-console-key-0003"]);
        assert_eq!(api_keys(CCR), ["sk-FIXTURE-ccr-key-0004"]);
        assert_eq!(
            api_keys(RESPONSES),
            ["sk-FIXTURE-openai-responses-key-0005"]
        );
        let codex = oauth(OPENAI_OAUTH);
        assert_eq!(codex["access_token"], "eyJFIXTURE.openai-access-token.0006");
        assert_eq!(
            codex["refresh_token"],
            "rt_FIXTURE-openai-refresh-token-0006"
        );
        assert_eq!(codex["id_token"], "eyJFIXTURE.id-token.0006");
        assert_eq!(codex["account_id"], "acct-fixture-0006");
        assert_eq!(secrets(OPENAI_OAUTH)["email"], "codex-fixture@example.com");
        assert_eq!(api_keys(AZURE), ["FIXTURE-azure-openai-key-0007"]);
        let gemini = oauth(GEMINI_OAUTH);
        assert_eq!(
            gemini["access_token"],
            "ya29.FIXTURE-gemini-access-token-0008"
        );
        assert_eq!(
            gemini["refresh_token"],
            "1//FIXTURE-gemini-refresh-token-0008"
        );
        assert_eq!(gemini["token_type"], "Bearer");
        assert_eq!(gemini["expiry_date"], 4_102_444_800_000_i64);
        assert_eq!(api_keys(GEMINI_API), ["AIzaFIXTURE-gemini-api-key-0009"]);
        let aws: Value = serde_json::from_str(&secrets(BEDROCK)["awsCredentials"]).unwrap();
        assert_eq!(
            aws,
            json!({"accessKeyId": "AKIAFIXTURE0010", "secretAccessKey": "FIXTUREsecretAccessKey0010", "sessionToken": "FIXTUREsessionToken0010"})
        );
        assert_eq!(
            api_keys(DROID),
            ["fk-FIXTURE-droid-key-0011a", "fk-FIXTURE-droid-key-0011b"]
        );

        // Where they went, and how they were switched.
        use relaybox::domain::{ChannelStatus, Pool};
        for (account, pool, service_type, status) in [
            (
                CLAUDE_OAUTH,
                Pool::Messages,
                "claude",
                ChannelStatus::Active,
            ),
            (
                CLAUDE_LEGACY,
                Pool::Messages,
                "claude",
                ChannelStatus::Disabled,
            ),
            (CONSOLE, Pool::Messages, "claude", ChannelStatus::Active),
            (CCR, Pool::Messages, "claude", ChannelStatus::Active),
            (
                RESPONSES,
                Pool::Responses,
                "responses",
                ChannelStatus::Active,
            ),
            (
                OPENAI_OAUTH,
                Pool::Responses,
                "openai-oauth",
                ChannelStatus::Active,
            ),
            (GEMINI_API, Pool::Gemini, "gemini", ChannelStatus::Active),
            (AZURE, Pool::Chat, "azure-openai", ChannelStatus::Disabled),
            (
                GEMINI_OAUTH,
                Pool::Gemini,
                "gemini-oauth",
                ChannelStatus::Disabled,
            ),
            (BEDROCK, Pool::Messages, "bedrock", ChannelStatus::Disabled),
            (DROID, Pool::Messages, "droid", ChannelStatus::Disabled),
        ] {
            let c = channel(account);
            assert_eq!(
                (c.pool, c.service_type.as_str(), c.status),
                (pool, service_type, status),
                "{}",
                c.name
            );
            if status == ChannelStatus::Disabled {
                assert!(
                    c.description
                        .contains("Imported from claude-relay-service as disabled"),
                    "{}",
                    c.description
                );
            }
        }
        assert_eq!(channel(CONSOLE).base_url, "http://127.0.0.1:18080");
        assert_eq!(channel(CLAUDE_OAUTH).priority, 10);
        assert_eq!(
            channel(CCR).model_mapping["claude-3-5-haiku-20241022"],
            "claude-sonnet-4-20250514"
        );

        // Every key: its legacy hash, the salt sealed, the placeholder hash.
        for (label, id, plaintext) in KEYS {
            let key = &state.keys[&crs::key_id(id)];
            let legacy = key.legacy_hash.as_ref().unwrap();
            assert!(legacy.salt.as_str().starts_with("enc:v1:"), "{label}");
            let salt = cipher
                .open(&legacy_salt_aad(&key.id), &legacy.salt)
                .unwrap();
            assert_eq!(salt.as_str(), ENCRYPTION_KEY);
            assert_eq!(
                relaybox::crypto::legacy_hash(plaintext, &salt),
                legacy.hash,
                "{label}"
            );
            assert_eq!(
                key.hash,
                format!("{}{}", crs::PLACEHOLDER_PREFIX, legacy.hash)
            );
        }
    }
    // No plaintext secret (nor a client key) in any byte of the data dir.
    let bytes = all_bytes(&data_dir);
    for secret in SECRET_PLAINTEXTS
        .iter()
        .chain(KEYS.iter().map(|(_, _, plaintext)| plaintext))
    {
        assert!(!contains(&bytes, secret), "{secret} is in the data dir");
    }
}

/// One key's usage in the dump: `[requests, input, output, cache write, cache read]` from
/// `usage:{id}`, rated cost from `usage:cost:total:{id}`, and requests per local date (the
/// per-model daily hashes).
type ExpectedUsage = ([i64; 5], f64, BTreeMap<String, i64>);

/// Per relaybox key id, computed from the dump independently of the importer.
fn expected_usage(dump: &Value) -> BTreeMap<String, ExpectedUsage> {
    let keys = dump["keys"].as_object().unwrap();
    let int = |v: &Value, f: &str| v[f].as_str().map_or(0, |s| s.parse::<i64>().unwrap());
    let mut out = BTreeMap::new();
    for (_, id, _) in KEYS {
        let Some(total) = keys.get(&format!("usage:{id}")) else {
            continue;
        };
        let total = &total["value"];
        let figures = [
            int(total, "totalRequests"),
            int(total, "totalInputTokens"),
            int(total, "totalOutputTokens"),
            int(total, "totalCacheCreateTokens"),
            int(total, "totalCacheReadTokens"),
        ];
        let cost: f64 = keys[&format!("usage:cost:total:{id}")]["value"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        let mut per_date: BTreeMap<String, i64> = BTreeMap::new();
        let prefix = format!("usage:{id}:model:daily:");
        for (name, entry) in keys.iter().filter(|(n, _)| n.starts_with(&prefix)) {
            let date = name.rsplit(':').next().unwrap().to_string();
            *per_date.entry(date).or_default() += int(&entry["value"], "requests");
        }
        out.insert(crs::key_id(id), (figures, cost, per_date));
    }
    out
}

#[test]
fn imported_usage_totals_per_key_equal_the_redis_sums() {
    let expected = expected_usage(&dump());
    assert_eq!(expected.len(), 5, "the fixture has usage for five keys");
    let snapshot = read_dump_snapshot();
    for offset in [8, 13] {
        let tmp = tempfile::tempdir().unwrap();
        let data = open(&tmp.path().join("data"));
        let report = import_snapshot(&data, &snapshot, offset);
        assert_eq!(report.usage_source.requests, 15);
        assert_eq!(report.usage_imported.requests, 15);
        assert_eq!(report.usage_imported.tokens, 13_814);
        let rows = usage_rows(&data);
        assert!(rows.iter().all(|r| expected.contains_key(&r.key_id)));
        for (key, (figures, cost, per_date)) in &expected {
            let mine: Vec<&UsageDay> = rows.iter().filter(|r| &r.key_id == key).collect();
            let sum = |f: fn(&UsageDay) -> i64| mine.iter().map(|r| f(r)).sum::<i64>();
            let got = [
                sum(|r| r.usage.requests),
                sum(|r| r.usage.input_tokens),
                sum(|r| r.usage.output_tokens),
                sum(|r| r.usage.cache_creation_tokens),
                sum(|r| r.usage.cache_read_tokens),
            ];
            assert_eq!(got, *figures, "{key} (offset {offset})");
            let got_cost: f64 = mine.iter().map(|r| r.usage.cost).sum();
            // claude-relay-service rounds each request's per-model cost to a micro-dollar.
            let tolerance = (0.5 * figures[0] as f64 + 1.0) * 1e-6;
            assert!(
                (got_cost - cost).abs() <= tolerance,
                "{key}: {got_cost} vs {cost}"
            );
            // A UTC+8 day is counted on its own date; a UTC+13 day on the date before.
            for (date, requests) in per_date {
                let mut parts = date.split('-').map(|p| p.parse::<i32>().unwrap());
                let (y, m, d) = (
                    parts.next().unwrap(),
                    parts.next().unwrap(),
                    parts.next().unwrap(),
                );
                let local = time::Date::from_calendar_date(
                    y,
                    time::Month::try_from(u8::try_from(m).unwrap()).unwrap(),
                    u8::try_from(d).unwrap(),
                )
                .unwrap();
                let day = crs::utc_day(local, offset * 60).to_string();
                let on_day: i64 = mine
                    .iter()
                    .filter(|r| r.day == day)
                    .map(|r| r.usage.requests)
                    .sum();
                assert_eq!(on_day, *requests, "{key} {date} → {day}");
            }
        }
        // No usage for keys that never made a request.
        assert!(
            !rows
                .iter()
                .any(|r| r.key_id == crs::key_id(fixture_key("multi").0))
        );
    }
}

#[test]
fn a_wrong_encryption_key_is_refused_before_anything_is_written() {
    let tmp = tempfile::tempdir().unwrap();

    // A fresh data dir is not even created.
    let fresh = tmp.path().join("fresh");
    let output = import_cli(
        &fresh,
        &refs(&dump_source()),
        &["--crs-encryption-key", "not-the-key"],
    );
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("not this deployment's ENCRYPTION_KEY"),
        "{stderr}"
    );
    assert!(stderr.contains("Nothing was written"), "{stderr}");
    assert!(!fresh.exists());

    // An existing one is left as it was.
    let existing = tmp.path().join("existing");
    drop(open(&existing));
    let before = all_bytes(&existing);
    let output = import_cli(
        &existing,
        &refs(&dump_source()),
        &["--crs-encryption-key", "not-the-key"],
    );
    assert!(!output.status.success());
    // A well-formed key of another deployment fails --check-key, even with the right secret key.
    let other = format!("cr_{}", "1".repeat(64));
    let output = import_cli(
        &existing,
        &refs(&dump_source()),
        &[
            "--crs-encryption-key",
            ENCRYPTION_KEY,
            "--check-key",
            &other,
        ],
    );
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("matches no API key"), "{stderr}");
    assert!(!stderr.contains(&other), "the key is not echoed: {stderr}");
    assert!(
        before == all_bytes(&existing),
        "the data dir was not touched"
    );
    {
        let data = open(&existing);
        let state = data.stores.config.load().unwrap();
        assert_eq!(state.revision, 0);
        assert!(state.keys.is_empty() && state.channels.is_empty());
        assert!(usage_rows(&data).is_empty());
        assert!(
            data.stores
                .logs
                .latest_imports(crs::SOURCE, "")
                .unwrap()
                .is_empty()
        );
    }

    // With the right key, --check-key with a real key passes.
    let (_, plaintext) = fixture_key("unlimited");
    let output = import_cli(
        &existing,
        &refs(&dump_source()),
        &[
            "--crs-encryption-key",
            ENCRYPTION_KEY,
            "--check-key",
            plaintext,
            "--dry-run",
        ],
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn a_second_run_reports_nothing_new_and_a_dry_run_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().join("data");
    let source = dump_source();

    let dry = import_cli(
        &data_dir,
        &refs(&source),
        &["--crs-encryption-key", ENCRYPTION_KEY, "--dry-run"],
    );
    assert!(dry.status.success());
    let text = String::from_utf8_lossy(&dry.stdout);
    assert!(text.contains("dry run: nothing was written"), "{text}");
    assert!(
        text.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>()
                == ["client", "keys", "13", "13", "0", "0", "0", "13"]),
        "{text}"
    );
    {
        let data = open(&data_dir);
        assert_eq!(data.stores.config.load().unwrap().revision, 0);
        assert!(usage_rows(&data).is_empty());
    }

    let first = import_json(&data_dir, &refs(&source), ENCRYPTION_KEY);
    for entity in ["keys", "channels", "usage"] {
        assert!(first[entity]["new"].as_u64().unwrap() > 0, "{entity}");
    }
    let (revision, rows, history) = {
        let data = open(&data_dir);
        (
            data.stores.config.load().unwrap().revision,
            usage_rows(&data),
            data.stores.logs.latest_imports(crs::SOURCE, "").unwrap(),
        )
    };
    assert_eq!(revision, 1, "keys and channels in one transaction");

    let second = import_json(&data_dir, &refs(&source), ENCRYPTION_KEY);
    for entity in ["keys", "channels", "usage"] {
        let e = &second[entity];
        assert_eq!(e["new"], 0, "{entity}: {e}");
        assert_eq!(e["changed"], 0, "{entity}: {e}");
        assert_eq!(e["unchanged"], e["found"], "{entity}: {e}");
        assert_eq!(e["target"], first[entity]["target"], "{entity}");
    }
    let data = open(&data_dir);
    assert_eq!(data.stores.config.load().unwrap().revision, revision);
    assert_eq!(usage_rows(&data), rows);
    assert_eq!(
        data.stores.logs.latest_imports(crs::SOURCE, "").unwrap(),
        history
    );
}

#[test]
fn an_interrupted_import_continues_and_relaybox_traffic_is_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let data = open(&tmp.path().join("data"));
    let snapshot = read_dump_snapshot();
    import_snapshot(&data, &snapshot, 8);
    let complete = usage_rows(&data);

    // Interrupted after the config transaction, before its history and half of the usage:
    // undo exactly what those steps wrote.
    {
        let conn = data.stores.logs.lock();
        conn.execute(
            "DELETE FROM import_history WHERE item LIKE 'key/%' OR item LIKE 'channel/%'",
            [],
        )
        .unwrap();
        let mut stmt = conn
            .prepare("SELECT id, detail FROM import_history WHERE item LIKE 'usage/%' ORDER BY id")
            .unwrap();
        let items: Vec<(i64, String)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        drop(stmt);
        assert!(items.len() >= 4);
        for (id, detail) in items.iter().skip(items.len() / 2) {
            let c: relaybox::store::sqlite::UsageContribution =
                serde_json::from_str(detail).unwrap();
            let u = c.usage;
            conn.execute(
                "UPDATE usage_daily SET requests = requests - ?1, input_tokens = input_tokens - ?2,
                   output_tokens = output_tokens - ?3, cache_creation_tokens = cache_creation_tokens - ?4,
                   cache_read_tokens = cache_read_tokens - ?5, cost = cost - ?6
                 WHERE key_id = ?7 AND model = ?8 AND day = ?9",
                rusqlite::params![
                    u.requests,
                    u.input_tokens,
                    u.output_tokens,
                    u.cache_creation_tokens,
                    u.cache_read_tokens,
                    u.cost,
                    c.key_id,
                    c.model,
                    c.day
                ],
            )
            .unwrap();
            conn.execute(
                "DELETE FROM usage_daily WHERE requests = 0 AND abs(cost) < 1e-12",
                [],
            )
            .unwrap();
            conn.execute("DELETE FROM import_history WHERE id = ?1", [id])
                .unwrap();
        }
    }
    let revision = data.stores.config.load().unwrap().revision;
    let report = import_snapshot(&data, &snapshot, 8);
    assert_eq!(report.keys.imported() + report.channels.imported(), 0);
    assert_eq!(report.keys.unchanged, 13);
    assert!(report.usage.new > 0);
    assert_eq!(data.stores.config.load().unwrap().revision, revision);
    assert_eq!(usage_rows(&data), complete);

    // relaybox served a request for an imported key on an imported day; then the source
    // changes (claude-relay-service kept running): the row holds both.
    let (id, _) = fixture_key("activation");
    let key = crs::key_id(id);
    data.stores
        .logs
        .insert_logs(&[relaybox::store::sqlite::RequestLog {
            id: "relaybox-request-1".into(),
            status: "success".into(),
            initial_time: "2026-11-21T10:00:00.000Z".into(),
            model: "claude-sonnet-4-20250514".into(),
            input_tokens: 7,
            client_id: key.clone(),
            ..Default::default()
        }])
        .unwrap();
    let mut changed = snapshot.clone();
    for name in [
        format!("usage:{id}:model:daily:claude-sonnet-4-20250514:2026-11-21"),
        format!("usage:{id}:model:monthly:claude-sonnet-4-20250514:2026-11"),
        format!("usage:{id}:model:alltime:claude-sonnet-4-20250514"),
    ] {
        let Some(crs::Value::Hash(fields)) = changed.keys.get_mut(&name) else {
            panic!("{name}")
        };
        fields.insert("requests".into(), "2".into());
        fields.insert("inputTokens".into(), "240".into());
    }
    let Some(crs::Value::Hash(total)) = changed.keys.get_mut(&format!("usage:{id}")) else {
        panic!()
    };
    total.insert("totalRequests".into(), "2".into());
    total.insert("totalInputTokens".into(), "240".into());
    let report = import_snapshot(&data, &changed, 8);
    assert_eq!(report.usage.changed, 1, "{:?}", report.usage);
    let row = usage_rows(&data)
        .into_iter()
        .find(|r| r.key_id == key && r.day == "2026-11-21")
        .unwrap();
    assert_eq!(
        (row.usage.requests, row.usage.input_tokens),
        (2 + 1, 240 + 7)
    );
}
