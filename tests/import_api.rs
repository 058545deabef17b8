//! The admin API the web UI adds: each channel view says how the channel is doing (up,
//! disabled, suspended by its config or by a failover rule, circuit open, quota used up), and
//! imports started from the browser run in the background against the running server, with
//! progress and the CLI's report, a dry run that writes nothing, bad input refused up front and
//! one import at a time.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use common::in_process::InProcessApp;
use common::relay_env::hello;
use relaybox::crypto::hash_client_key;
use relaybox::store::{ConfigOp, Expect};
use relaybox_mock_upstream::{MockOptions, MockUpstream};
use serde_json::{Value, json};

/// A client key of the generated cc-bridge database (cc-bridge: `sk-` + 48 alphanumerics).
const CC_BRIDGE_KEY: &str = "sk-BrowserImportFIXTUREkey000000000000000000000001";
/// The fixture deployment's `ENCRYPTION_KEY` (`tests/import_crs.rs`).
const CRS_ENCRYPTION_KEY: &str = "CRS-fixture-encryption-key-32chr";

fn crs_dump() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/fixtures/claude-relay-service/redis-dump.json")
        .canonicalize()
        .unwrap()
}

async fn channel_health(t: &InProcessApp, id: &str) -> Value {
    let (status, view) = t.admin("GET", &format!("/channels/{id}"), None).await;
    assert_eq!(status, StatusCode::OK, "{view}");
    view["health"].clone()
}

fn state_of(health: &Value) -> &str {
    health["state"].as_str().unwrap()
}

#[tokio::test]
async fn channel_views_say_up_disabled_suspended_and_circuit_open() {
    let t = InProcessApp::start().await;
    let mock = MockUpstream::start(MockOptions::default()).await.unwrap();
    let mut settings = t.app.config.snapshot().settings.clone();
    settings.circuit_breaker_threshold = 2;
    settings.circuit_breaker_cooldown_seconds = 300;
    settings.suspend_seconds = 600;
    settings.failover = serde_json::from_value(json!({"enabled": true, "rules": [
        {"errorCodes": "429:QUOTA_EXHAUSTED", "actionChain": [{"action": "suspend"}]},
        {"errorCodes": "500", "actionChain": [{"action": "failover"}]}]}))
    .unwrap();
    t.app
        .config
        .apply(&[ConfigOp::PutSettings(settings, Expect::Any)])
        .unwrap();
    let broken = t
        .add_mock_channel(
            &mock.scenario_url("status=500"),
            json!({"name": "broken", "priority": 1}),
        )
        .await;
    let exhausted = t
        .add_mock_channel(
            &mock.scenario_url("status=429,error_code=QUOTA_EXHAUSTED"),
            json!({"name": "exhausted", "priority": 2}),
        )
        .await;
    let good = t
        .add_mock_channel(&mock.base_url(), json!({"name": "good", "priority": 3}))
        .await;
    let parked = t
        .add_mock_channel(
            &mock.base_url(),
            json!({"name": "parked", "priority": 4, "status": "suspended"}),
        )
        .await;
    let standby = t
        .add_mock_channel(
            &mock.base_url(),
            json!({"name": "standby", "priority": 5, "status": "disabled"}),
        )
        .await;
    for id in [&broken, &exhausted, &good] {
        let health = channel_health(&t, id).await;
        assert_eq!(health, json!({"state": "up", "detail": null}), "{id}");
    }

    let (_, key) = t.create_key(json!({"name": "client"})).await;
    for attempt in 0..2 {
        let (status, body) = t.relay_messages(&key, hello()).await;
        assert_eq!(status, StatusCode::OK, "request {attempt}: {body}");
    }

    let health = channel_health(&t, &broken).await;
    assert_eq!(state_of(&health), "circuit_open", "{health}");
    let detail = health["detail"].as_str().unwrap();
    assert!(
        detail.starts_with("circuit open after 2 failures, retried in "),
        "{detail}"
    );
    let health = channel_health(&t, &exhausted).await;
    assert_eq!(state_of(&health), "suspended", "{health}");
    assert!(
        health["detail"].as_str().unwrap().contains("failover rule"),
        "{health}"
    );
    assert_eq!(state_of(&channel_health(&t, &good).await), "up");
    let health = channel_health(&t, &parked).await;
    assert_eq!(state_of(&health), "suspended", "{health}");
    assert!(
        health["detail"].as_str().unwrap().contains("configuration"),
        "{health}"
    );
    assert_eq!(state_of(&channel_health(&t, &standby).await), "disabled");

    // The list carries the same health.
    let (_, list) = t.admin("GET", "/channels", None).await;
    let states: Vec<(&str, &str)> = list["channels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["name"].as_str().unwrap(), state_of(&c["health"])))
        .collect();
    assert_eq!(
        states,
        [
            ("broken", "circuit_open"),
            ("exhausted", "suspended"),
            ("good", "up"),
            ("parked", "suspended"),
            ("standby", "disabled")
        ]
    );

    // Suspending and resuming through PATCH answers with the new health.
    let (_, view) = t.admin("GET", &format!("/channels/{good}"), None).await;
    let version = view["version"].to_string();
    let (status, view) = t
        .admin_with(
            "PATCH",
            &format!("/channels/{good}"),
            &[("if-match", &version)],
            Some(json!({"status": "suspended"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{view}");
    assert_eq!(state_of(&view["health"]), "suspended");
    let version = view["version"].to_string();
    let (status, view) = t
        .admin_with(
            "PATCH",
            &format!("/channels/{good}"),
            &[("if-match", &version)],
            Some(json!({"status": "active"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{view}");
    assert_eq!(view["health"], json!({"state": "up", "detail": null}));

    // A view sent back as it was read is accepted: health is shown, never set.
    let version = view["version"].to_string();
    let mut edited = view.clone();
    edited["priority"] = json!(7);
    edited["health"] = json!({"state": "disabled", "detail": "not from a client"});
    let (status, view) = t
        .admin_with(
            "PATCH",
            &format!("/channels/{good}"),
            &[("if-match", &version)],
            Some(edited),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{view}");
    assert_eq!(view["priority"], 7);
    assert_eq!(view["health"], json!({"state": "up", "detail": null}));
    t.close().await;
}

#[tokio::test]
async fn a_channel_whose_quota_is_used_up_says_over_quota() {
    let t = InProcessApp::start().await;
    let mock = MockUpstream::start(MockOptions::default()).await.unwrap();
    let capped = t
        .add_mock_channel(
            &mock.base_url(),
            json!({"name": "capped", "quotaType": "requests", "quotaLimit": 1,
                "quotaResetAt": "2026-11-21T00:00:00Z", "quotaResetInterval": 1, "quotaResetUnit": "days"}),
        )
        .await;
    let (status, created) = t
        .admin(
            "POST",
            "/channels",
            Some(
                json!({"pool": "messages", "name": "spare", "serviceType": "claude",
                "baseUrl": mock.base_url(), "apiKeys": ["sk-spare"], "priority": 9}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(
        created["health"],
        json!({"state": "up", "detail": null}),
        "a new channel's view carries its health"
    );
    assert_eq!(state_of(&channel_health(&t, &capped).await), "up");
    let (_, key) = t.create_key(json!({"name": "client"})).await;
    let (status, body) = t.relay_messages(&key, hello()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let health = channel_health(&t, &capped).await;
    assert_eq!(state_of(&health), "over_quota", "{health}");
    let detail = health["detail"].as_str().unwrap();
    assert!(
        detail.starts_with("quota used up (1 of 1 requests)"),
        "{detail}"
    );
    t.close().await;
}

// ---- imports ----------------------------------------------------------------------------------

/// A cc-bridge `.config` folder: one channel to `base_url` and a database with one client key.
fn cc_bridge_folder(root: &Path, base_url: &str) -> PathBuf {
    let dir = root.join("cc-bridge").join(".config");
    std::fs::create_dir_all(&dir).unwrap();
    let config = json!({"upstream": [{
        "id": "c0ffee01", "name": "imported-mock", "baseUrl": base_url,
        "apiKeys": ["sk-imported-upstream-key-0001"], "serviceType": "claude",
        "priority": 1, "status": "active"
    }]});
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
    let conn = rusqlite::Connection::open(dir.join("cc-bridge.db")).unwrap();
    conn.execute_batch(
        "CREATE TABLE api_keys (
            id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, key_hash TEXT NOT NULL UNIQUE,
            key_prefix TEXT NOT NULL, description TEXT, status TEXT NOT NULL DEFAULT 'active',
            is_admin BOOLEAN NOT NULL DEFAULT 0, rate_limit_rpm INTEGER NOT NULL DEFAULT 0,
            allowed_endpoints TEXT, allowed_channels_msg TEXT, allowed_channels_resp TEXT,
            allowed_models TEXT, created_at DATETIME DEFAULT CURRENT_TIMESTAMP,
            updated_at DATETIME DEFAULT CURRENT_TIMESTAMP, last_used_at DATETIME,
            allowed_channels_gemini TEXT, allowed_channels_chat TEXT);",
    )
    .unwrap();
    conn.execute(
        "INSERT INTO api_keys (name, key_hash, key_prefix, status) VALUES (?1, ?2, ?3, 'active')",
        rusqlite::params![
            "browser-laptop",
            hash_client_key(CC_BRIDGE_KEY),
            "sk-Brow..."
        ],
    )
    .unwrap();
    dir
}

/// Poll `GET /import/{job}` until the job is no longer running.
async fn finished(t: &InProcessApp, job: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (status, body) = t.admin("GET", &format!("/import/{job}"), None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        if body["state"] != "running" {
            return body;
        }
        assert!(Instant::now() < deadline, "import still running: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn start_import(t: &InProcessApp, body: Value) -> String {
    let (status, answer) = t.admin("POST", "/import", Some(body)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    answer["job"].as_str().unwrap().to_string()
}

/// What an import must not change when it should write nothing.
async fn written_state(t: &InProcessApp) -> (u64, Value, Value) {
    let revision = t.app.config.snapshot().revision;
    let (_, keys) = t.admin("GET", "/keys", None).await;
    let (_, channels) = t.admin("GET", "/channels", None).await;
    (revision, keys, channels)
}

fn names(list: &Value, field: &str) -> Vec<String> {
    list[field]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["name"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn a_cc_bridge_folder_dry_runs_without_writing_then_imports_into_the_running_server() {
    let t = InProcessApp::start().await;
    let mock = MockUpstream::start(MockOptions::default()).await.unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let folder = cc_bridge_folder(tmp.path(), &mock.base_url());
    let before = written_state(&t).await;

    let job = start_import(
        &t,
        json!({"source": "cc-bridge", "path": folder, "dry_run": true}),
    )
    .await;
    let dry = finished(&t, &job).await;
    assert_eq!(dry["state"], "done", "{dry}");
    assert_eq!(dry["dry_run"], true);
    assert_eq!(dry["error"], Value::Null);
    assert!(
        dry["steps"]
            .as_array()
            .unwrap()
            .iter()
            .all(|step| step["state"] == "done"),
        "{dry}"
    );
    let report = &dry["report"];
    assert_eq!(report["dry_run"], true);
    assert_eq!(report["channels"]["imported"], 1, "{report}");
    assert_eq!(report["keys"]["imported"], 1, "{report}");
    assert_eq!(
        written_state(&t).await,
        before,
        "a dry run writes nothing: same revision, keys and channels"
    );
    let (status, _) = t.relay_messages(CC_BRIDGE_KEY, hello()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "the key is not there yet");

    let job = start_import(
        &t,
        json!({"source": "cc-bridge", "path": folder, "dry_run": false}),
    )
    .await;
    let done = finished(&t, &job).await;
    assert_eq!(done["state"], "done", "{done}");
    assert_eq!(done["dry_run"], false);
    assert_eq!(
        done["report"]["channels"], report["channels"],
        "the dry run reported what the import did"
    );
    assert_eq!(done["report"]["keys"], report["keys"]);
    let (revision, keys, channels) = written_state(&t).await;
    assert!(revision > before.0);
    assert!(names(&keys, "keys").contains(&"browser-laptop".to_string()));
    assert_eq!(names(&channels, "channels"), ["imported-mock"]);
    assert_eq!(
        channels["channels"][0]["health"]["state"], "up",
        "{channels}"
    );
    // The running server serves the imported key through the imported channel at once.
    let (status, body) = t.relay_messages(CC_BRIDGE_KEY, hello()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(mock.stats().total_requests, 1);

    // Both jobs stay readable.
    let (status, earlier) = t
        .admin(
            "GET",
            &format!("/import/{}", dry["job"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(earlier["dry_run"], true);
    t.close().await;
}

#[tokio::test]
async fn a_claude_relay_service_dump_imports_and_a_wrong_key_fails_the_job() {
    let t = InProcessApp::start().await;
    let before = written_state(&t).await;
    let wrong = start_import(
        &t,
        json!({"source": "claude-relay-service", "dump_path": crs_dump(),
            "encryption_key": "not-the-deployment-key-000000000", "dry_run": false}),
    )
    .await;
    let failed = finished(&t, &wrong).await;
    assert_eq!(failed["state"], "failed", "{failed}");
    assert_eq!(failed["report"], Value::Null);
    let message = failed["error"]["message"].as_str().unwrap();
    assert!(message.contains("ENCRYPTION_KEY"), "{message}");
    assert_eq!(failed["steps"][0]["state"], "failed", "{failed}");
    assert_eq!(failed["steps"][1]["state"], "pending", "{failed}");
    assert_eq!(written_state(&t).await, before);

    let dry = start_import(
        &t,
        json!({"source": "claude-relay-service", "dump_path": crs_dump(),
            "encryption_key": CRS_ENCRYPTION_KEY, "dry_run": true}),
    )
    .await;
    let dry = finished(&t, &dry).await;
    assert_eq!(dry["state"], "done", "{dry}");
    let planned_keys = dry["report"]["keys"]["new"].as_u64().unwrap();
    assert!(planned_keys > 0, "{}", dry["report"]);
    assert_eq!(written_state(&t).await, before, "a dry run writes nothing");

    let real = start_import(
        &t,
        json!({"source": "claude-relay-service", "dump_path": crs_dump(),
            "encryption_key": CRS_ENCRYPTION_KEY}),
    )
    .await;
    let real = finished(&t, &real).await;
    assert_eq!(real["state"], "done", "{real}");
    assert_eq!(real["report"]["keys"]["new"], planned_keys);
    let (_, keys) = t.admin("GET", "/keys", None).await;
    let imported = keys["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["id"].as_str().unwrap().starts_with("crs-"))
        .count();
    assert_eq!(imported as u64, planned_keys);
    t.close().await;
}

#[tokio::test]
async fn bad_import_requests_are_refused_naming_the_field_and_change_nothing() {
    let t = InProcessApp::start().await;
    let tmp = tempfile::tempdir().unwrap();
    let folder = tmp.path().display().to_string();
    let missing = tmp.path().join("nope").display().to_string();
    let dump = crs_dump().display().to_string();
    let before = written_state(&t).await;
    let cases = [
        (json!({"path": folder}), "source"),
        (json!({"source": "sub2api", "path": folder}), "source"),
        (json!({"source": "cc-bridge"}), "path"),
        (json!({"source": "cc-bridge", "path": missing}), "path"),
        (
            json!({"source": "cc-bridge", "path": "relative/dir"}),
            "path",
        ),
        (json!({"source": "cc-bridge", "path": dump}), "path"),
        (
            json!({"source": "cc-bridge", "path": folder, "force": true}),
            "force",
        ),
        (
            json!({"source": "cc-bridge", "path": folder, "dry_run": 1}),
            "dry_run",
        ),
        (
            json!({"source": "claude-relay-service", "encryption_key": "k"}),
            "redis_url",
        ),
        (
            json!({"source": "claude-relay-service", "encryption_key": "k", "redis_url": "redis://127.0.0.1:1", "dump_path": dump}),
            "dump_path",
        ),
        (
            json!({"source": "claude-relay-service", "encryption_key": "k", "dump_path": missing}),
            "dump_path",
        ),
        (
            json!({"source": "claude-relay-service", "encryption_key": "k", "redis_url": "127.0.0.1:6379"}),
            "redis_url",
        ),
        (
            json!({"source": "claude-relay-service", "dump_path": dump}),
            "encryption_key",
        ),
        (
            json!({"source": "claude-relay-service", "dump_path": dump, "encryption_key": ""}),
            "encryption_key",
        ),
        (
            json!({"source": "claude-relay-service", "dump_path": dump, "encryption_key": "k", "path": folder}),
            "path",
        ),
    ];
    for (body, field) in cases {
        let (status, answer) = t.admin("POST", "/import", Some(body.clone())).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {answer}");
        assert_eq!(answer["error"]["field"], field, "{body}: {answer}");
    }
    let (status, answer) = t.admin("POST", "/import", Some(json!(["cc-bridge"]))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    let (status, answer) = t.admin("GET", "/import/no-such-job", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");
    assert_eq!(written_state(&t).await, before);
    t.close().await;
}

#[tokio::test]
async fn a_second_import_while_one_runs_is_a_conflict() {
    let t = InProcessApp::start().await;
    // A "Redis" that accepts the connection and never answers holds the first import in its
    // first step until the test hangs up.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("redis://{}/0", listener.local_addr().unwrap());
    let (hang_up, hung_up) = std::sync::mpsc::channel::<()>();
    let (accepted_tx, accepted) = std::sync::mpsc::channel::<()>();
    let server = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        accepted_tx.send(()).unwrap();
        hung_up.recv().ok();
        drop(stream);
    });
    let first = start_import(
        &t,
        json!({"source": "claude-relay-service", "redis_url": url, "encryption_key": "k"}),
    )
    .await;
    tokio::task::spawn_blocking(move || accepted.recv_timeout(Duration::from_secs(30)).unwrap())
        .await
        .unwrap();
    let (status, running) = t.admin("GET", &format!("/import/{first}"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(running["state"], "running", "{running}");
    assert_eq!(running["steps"][0]["state"], "running", "{running}");

    let tmp = tempfile::tempdir().unwrap();
    let (status, answer) = t
        .admin(
            "POST",
            "/import",
            Some(json!({"source": "cc-bridge", "path": tmp.path(), "dry_run": true})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    assert_eq!(answer["error"]["code"], "conflict");

    hang_up.send(()).unwrap();
    server.join().unwrap();
    let failed = finished(&t, &first).await;
    assert_eq!(failed["state"], "failed", "{failed}");
    assert!(failed["error"]["message"].as_str().is_some(), "{failed}");
    // Once it is over, the next import is accepted (an empty folder: nothing to import).
    let next = start_import(
        &t,
        json!({"source": "cc-bridge", "path": tmp.path(), "dry_run": true}),
    )
    .await;
    let next = finished(&t, &next).await;
    assert_eq!(next["state"], "failed", "{next}");
    assert!(
        next["error"]["message"]
            .as_str()
            .unwrap()
            .contains("holds no cc-bridge files"),
        "{next}"
    );
    t.close().await;
}
