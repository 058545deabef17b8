//! cc-bridge JSON files in the data dir: imported at start, re-imported within two poll
//! intervals of a content change (also when the mtime moves backwards or the file is replaced by
//! rename), and a broken file leaves the running configuration in place with a visible error.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{TestServer, eventually};
use serde_json::{Value, json};

const POLL_MS: u64 = 200;

fn config(priority: i64, extra_channel: bool) -> String {
    let mut upstream = vec![json!({
        "id": "aaaa0001", "name": "one", "serviceType": "claude",
        "baseUrl": "https://api.anthropic.com", "apiKeys": ["sk-ant-reload-secret-1"], "priority": priority
    })];
    if extra_channel {
        upstream.push(json!({"id": "aaaa0002", "name": "two", "serviceType": "claude", "baseUrl": "https://b.example", "apiKeys": [], "priority": 9}));
    }
    serde_json::to_string_pretty(&json!({"upstream": upstream, "loadBalance": "failover"})).unwrap()
}

fn channels(server: &TestServer) -> Vec<Value> {
    server.admin("GET", "/channels", None).1["channels"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn priority_of_one(server: &TestServer) -> Option<i64> {
    channels(server)
        .iter()
        .find(|c| c["id"] == "aaaa0001")
        .and_then(|c| c["priority"].as_i64())
}

/// Two poll intervals plus scheduling slack.
fn within_two_polls() -> Duration {
    Duration::from_millis(2 * POLL_MS + 400)
}

/// Polling only: these tests are about what polling finds (events are tested below).
fn start(data: &Path) -> TestServer {
    TestServer::start(
        data,
        &[
            ("RELAYBOX_POLL_INTERVAL_MS", &POLL_MS.to_string()),
            ("RELAYBOX_FILE_EVENTS", "false"),
        ],
    )
}

#[test]
fn edits_apply_within_two_poll_intervals_and_bad_files_change_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let file = data.join("config.json");
    std::fs::write(&file, config(1, false)).unwrap();
    let server = start(&data);
    assert_eq!(priority_of_one(&server), Some(1), "imported at start");

    // A plain edit.
    std::fs::write(&file, config(2, true)).unwrap();
    let edited = Instant::now();
    assert!(
        eventually(within_two_polls(), || priority_of_one(&server) == Some(2)),
        "edit not applied in time"
    );
    assert_eq!(channels(&server).len(), 2);
    eprintln!("edit applied after {:?}", edited.elapsed());

    // Invalid JSON: rejected whole, the running config stays, the error is visible.
    std::fs::write(
        &file,
        "{ \"upstream\": [ { \"id\": \"aaaa0001\", \"priority\": 3, }",
    )
    .unwrap();
    let health_error =
        || common::get(&format!("{}/health", server.url)).unwrap().1["reload"]["lastError"].clone();
    assert!(
        eventually(within_two_polls(), || !health_error().is_null()),
        "the error must show in /health"
    );
    let error = health_error();
    assert_eq!(error["file"], "config.json");
    assert!(error["line"].as_u64().is_some(), "{error}");
    assert_eq!(
        common::get(&format!("{}/health", server.url)).unwrap().1["status"],
        "degraded"
    );
    assert_eq!(
        server.admin("GET", "/reload", None).1["lastError"]["file"],
        "config.json",
        "and in the admin API"
    );
    assert_eq!(priority_of_one(&server), Some(2));
    assert_eq!(channels(&server).len(), 2);
    assert!(server.log().contains("config.json"), "and in the log");

    // A half-written file (valid prefix, cut short) is never applied.
    let full = config(4, false);
    std::fs::write(&file, &full[..full.len() / 2]).unwrap();
    std::thread::sleep(within_two_polls());
    assert_eq!(priority_of_one(&server), Some(2));
    // …and once complete it is.
    std::fs::write(&file, &full).unwrap();
    assert!(eventually(within_two_polls(), || priority_of_one(&server) == Some(4)));
    assert_eq!(
        channels(&server).len(),
        1,
        "a channel removed from config.json is removed"
    );
    assert!(
        eventually(within_two_polls(), || health_error().is_null()),
        "a good file clears the error"
    );

    // Semantically invalid (duplicate name): rejected whole as well.
    let mut dup: Value = serde_json::from_str(&config(5, true)).unwrap();
    dup["upstream"][1]["name"] = json!("ONE");
    std::fs::write(&file, dup.to_string()).unwrap();
    assert!(eventually(within_two_polls(), || !health_error().is_null()));
    assert!(
        health_error()["reason"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("one"),
        "{}",
        health_error()
    );
    assert_eq!(priority_of_one(&server), Some(4));
}

#[test]
fn backwards_mtime_and_atomic_rename_are_detected() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let file = data.join("config.json");
    std::fs::write(&file, config(1, false)).unwrap();
    let server = start(&data);
    assert_eq!(priority_of_one(&server), Some(1));

    // Restore-from-backup style: new content, mtime an hour in the past.
    std::fs::write(&file, config(7, false)).unwrap();
    let touched = Command::new("touch")
        .args(["-d", "-1 hour"])
        .arg(&file)
        .status()
        .unwrap();
    assert!(touched.success());
    assert!(
        eventually(within_two_polls(), || priority_of_one(&server) == Some(7)),
        "mtime moved backwards was missed"
    );

    // Editor-style save: write a temp file, rename it over the original.
    let temp = data.join(".config.json.swp");
    std::fs::write(&temp, config(8, false)).unwrap();
    std::fs::rename(&temp, &file).unwrap();
    assert!(
        eventually(within_two_polls(), || priority_of_one(&server) == Some(8)),
        "atomic rename was missed"
    );

    // A restart does not re-apply an unchanged file over admin edits.
    let (status, _) = server.admin(
        "PATCH",
        "/channels/aaaa0001",
        Some(&json!({"priority": 42})),
    );
    assert_eq!(status, 200);
    server.stop();
    let server = start(&data);
    assert_eq!(
        priority_of_one(&server),
        Some(42),
        "unchanged file is not re-imported at start"
    );
}

#[test]
fn pricing_and_aliases_files_reload_too() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let server = start(&data);
    std::fs::write(data.join("pricing.json"), r#"{"currency":"USD","models":{"claude-sonnet":{"inputPrice":3,"outputPrice":15,"cacheCreationPrice":null,"cacheReadPrice":null}}}"#).unwrap();
    std::fs::write(data.join("model-aliases.json"), r#"{"messagesModels":[{"value":"opus","description":"Claude Opus"}],"responsesModels":[],"geminiModels":[]}"#).unwrap();
    assert!(eventually(within_two_polls(), || server
        .admin("GET", "/pricing", None)
        .1["models"]["claude-sonnet"]["inputPrice"]
        == 3.0));
    assert!(eventually(within_two_polls(), || server
        .admin("GET", "/aliases", None)
        .1["messagesModels"][0]["value"]
        == "opus"));
    // A bad pricing file keeps the old prices.
    std::fs::write(
        data.join("pricing.json"),
        r#"{"models":{"claude-sonnet":{"inputPrice":-1,"outputPrice":15}}}"#,
    )
    .unwrap();
    assert!(eventually(within_two_polls(), || !server
        .admin("GET", "/reload", None)
        .1["files"]["pricing.json"]["error"]
        .is_null()));
    assert_eq!(
        server.admin("GET", "/pricing", None).1["models"]["claude-sonnet"]["inputPrice"],
        3.0
    );
}

/// On a local disk an edit wakes the poller through a file-system event: it applies within
/// about 200 ms although the next poll is a minute away; a broken file is still refused.
#[test]
fn on_a_local_disk_an_edit_applies_at_once_through_file_events() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let file = data.join("config.json");
    std::fs::write(&file, config(1, false)).unwrap();
    let server = TestServer::start(&data, &[("RELAYBOX_POLL_INTERVAL_MS", "60000")]);
    assert_eq!(priority_of_one(&server), Some(1), "imported at start");

    std::fs::write(&file, config(2, true)).unwrap();
    let edited = Instant::now();
    assert!(
        eventually(Duration::from_secs(3), || priority_of_one(&server)
            == Some(2)),
        "edit not applied through file events"
    );
    let took = edited.elapsed();
    eprintln!("edit applied through file events after {took:?}");
    assert!(took < Duration::from_millis(1500), "{took:?}");

    std::fs::write(&file, "{ \"upstream\": [ {").unwrap();
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(
        priority_of_one(&server),
        Some(2),
        "a broken file changes nothing"
    );

    // With events off, the same edit waits for the (here: distant) poll.
    drop(server);
    std::fs::write(&file, config(3, true)).unwrap();
    let server = TestServer::start(
        &data,
        &[
            ("RELAYBOX_POLL_INTERVAL_MS", "60000"),
            ("RELAYBOX_FILE_EVENTS", "false"),
        ],
    );
    assert_eq!(priority_of_one(&server), Some(3), "imported at start");
    std::fs::write(&file, config(4, true)).unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        priority_of_one(&server),
        Some(3),
        "without events nothing happens before the next poll"
    );
}
