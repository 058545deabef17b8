//! `tools/redis_dump_json.py`, which the README and `import claude-relay-service --help` point
//! at, is in the repository and works: run against a Redis loaded with the claude-relay-service
//! fixture it writes what the fixture's own dump holds (the dump the importer's tests read).
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

mod common;

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use common::redis_fixture::{FixtureRedis, fixtures};

fn tool() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tools/redis_dump_json.py")
}

#[test]
fn the_dump_tool_writes_what_the_fixture_redis_holds() {
    let redis = FixtureRedis::start();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("dump.json");
    let run = Command::new("python3")
        .arg(tool())
        .args(["--port", &redis.port.to_string(), "--out"])
        .arg(&out)
        .output()
        .expect("python3 runs");
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let dumped: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    let expected: Value =
        serde_json::from_slice(&std::fs::read(fixtures().join("redis-dump.json")).unwrap())
            .unwrap();
    let dumped_keys = dumped["keys"].as_object().unwrap();
    let expected_keys = expected["keys"].as_object().unwrap();
    assert_eq!(
        dumped["meta"]["keyCount"].as_u64().unwrap() as usize,
        dumped_keys.len()
    );
    // Keys with an expiry may have expired since the fixture was made; the rest are all there.
    for (key, entry) in expected_keys {
        if entry["ttl"] == -1 {
            assert!(dumped_keys.contains_key(key), "{key} is missing");
        }
    }
    for (key, entry) in dumped_keys {
        let want = expected_keys
            .get(key)
            .unwrap_or_else(|| panic!("{key} is not in the fixture"));
        assert_eq!(entry["type"], want["type"], "{key}");
        assert_eq!(entry["value"], want["value"], "{key}");
        assert_eq!(entry["ttl"] == -1, want["ttl"] == -1, "{key}");
    }
    let types: std::collections::BTreeSet<&str> = dumped_keys
        .values()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert!(
        types.len() >= 5,
        "hash, string, set, zset, list…: {types:?}"
    );
}

#[test]
fn the_dump_tool_says_what_is_wrong_when_redis_is_not_there() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let run = Command::new("python3")
        .arg(tool())
        .args(["--port", &port.to_string()])
        .output()
        .expect("python3 runs");
    assert!(!run.status.success());
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(stderr.contains("cannot reach Redis"), "{stderr}");
}
