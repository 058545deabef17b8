//! `relaybox keys` and `relaybox channels` against a stopped and a running server: the same
//! commands work both ways, never hang, and fail with clear messages.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

mod common;

use std::time::{Duration, Instant};

use common::{TestServer, run_cli};
use serde_json::{Value, json};

fn cli_json(data: &std::path::Path, args: &[&str]) -> Value {
    let started = Instant::now();
    let output = run_cli(data, args);
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{args:?} took too long"
    );
    assert!(
        output.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{args:?}: {e}: {}", String::from_utf8_lossy(&output.stdout)))
}

fn exercise_keys(data: &std::path::Path, name: &str) -> String {
    let created = cli_json(data, &["keys", "create", "--name", name, "--json"]);
    let plaintext = created["plaintext"].as_str().unwrap();
    assert!(plaintext.starts_with("cr_"));
    let id = created["key"]["id"].as_str().unwrap().to_string();
    let list = cli_json(data, &["keys", "list", "--json"]);
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .any(|k| k["id"] == id.as_str())
    );
    let shown = cli_json(data, &["keys", "show", name, "--json"]);
    assert_eq!(shown["id"], id.as_str());
    assert!(
        shown.get("plaintext").is_none(),
        "show never reveals the key"
    );
    let disabled = cli_json(data, &["keys", "disable", &id, "--json"]);
    assert_eq!(disabled["status"], "disabled");
    let enabled = cli_json(data, &["keys", "enable", name, "--json"]);
    assert_eq!(enabled["status"], "active");
    id
}

#[test]
fn keys_and_channels_commands_work_with_and_without_a_server() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");

    // Stopped: the CLI opens the data dir itself (one `serve` created it).
    TestServer::start(&data, &[]).stop();
    let offline_id = exercise_keys(&data, "offline-user");

    // Running: the same commands go through the server's admin API.
    let server = TestServer::start(&data, &[]);
    let online_id = exercise_keys(&data, "online-user");
    let (status, key) = server.admin("GET", &format!("/keys/{online_id}"), None);
    assert_eq!(
        status, 200,
        "the running server sees the key at once: {key}"
    );
    let (status, _) = server.admin("POST", "/channels", Some(&json!({"pool": "chat", "name": "local-llm", "serviceType": "openai", "baseUrl": "http://127.0.0.1:11434/v1", "apiKeys": ["sk-local-0123456789abcdef"]})));
    assert_eq!(status, 201);
    let channels = cli_json(&data, &["channels", "list", "--json"]);
    assert_eq!(channels.as_array().unwrap().len(), 1);
    let shown = cli_json(&data, &["channels", "show", "local-llm", "--json"]);
    assert!(
        !shown.to_string().contains("sk-local-0123456789abcdef"),
        "keys are masked"
    );
    let deleted = run_cli(&data, &["keys", "delete", &offline_id]);
    assert!(deleted.status.success());
    assert_eq!(
        server.admin("GET", &format!("/keys/{offline_id}"), None).0,
        404
    );

    let missing = run_cli(&data, &["keys", "show", "nobody"]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("does not exist"));
    server.stop();

    // Stopped again: what the server wrote is there.
    let list = cli_json(&data, &["channels", "list", "--json"]);
    assert_eq!(list[0]["name"], "local-llm");
    let list = run_cli(&data, &["channels", "list", "--pool", "messages"]);
    assert!(list.status.success());
    assert!(String::from_utf8_lossy(&list.stdout).contains("no channels"));
    let bad_pool = run_cli(&data, &["channels", "list", "--pool", "nowhere"]);
    assert!(!bad_pool.status.success());
    assert!(String::from_utf8_lossy(&bad_pool.stderr).contains("unknown pool"));
    let keys = cli_json(&data, &["keys", "list", "--json"]);
    assert!(
        keys.as_array()
            .unwrap()
            .iter()
            .any(|k| k["id"] == online_id.as_str())
    );
    assert!(
        !keys
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["id"] == offline_id.as_str())
    );
}

#[test]
fn help_texts_and_unknown_env_warning() {
    let tmp = tempfile::tempdir().unwrap();
    let help = run_cli(tmp.path(), &["--help"]);
    let text = String::from_utf8_lossy(&help.stdout);
    for word in ["serve", "keys", "channels", "import", "healthcheck"] {
        assert!(text.contains(word), "--help lists {word}");
    }
    let serve_help =
        String::from_utf8_lossy(&run_cli(tmp.path(), &["serve", "--help"]).stdout).to_string();
    assert!(serve_help.contains("RELAYBOX_LISTEN") && serve_help.contains("RELAYBOX_DATA_DIR"));
    let output = common::relaybox(&tmp.path().join("d"))
        .env("RELAYBOX_LISTN", "x")
        .args(["keygen"])
        .output()
        .unwrap();
    assert!(output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("RELAYBOX_LISTN"),
        "typos in RELAYBOX_* are warned about"
    );
}
