//! kill -9 the server at random moments while admin writes are in flight: every acknowledged
//! change is there afterwards and the stores open cleanly.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{ADMIN_KEY, TestServer, request, run_cli};
use serde_json::{Value, json};

/// A tiny xorshift so the kill moments differ between runs without a rand dependency.
fn next_random(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

#[test]
fn acknowledged_changes_survive_kill_9() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mut seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    let mut acknowledged_total = 0;

    for round in 0..6 {
        let server = TestServer::start(&data, &[]);
        let url = server.url.clone();
        let acknowledged: Arc<Mutex<Vec<(String, u64)>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let writers: Vec<_> = (0..3)
            .map(|writer| {
                let (url, acknowledged, stop) =
                    (url.clone(), Arc::clone(&acknowledged), Arc::clone(&stop));
                std::thread::spawn(move || {
                    let auth = format!("Bearer {ADMIN_KEY}");
                    let mut n = 0;
                    while !stop.load(Ordering::Relaxed) {
                        n += 1;
                        let body = json!({"name": format!("r{round}-w{writer}-{n}")});
                        let Ok((201, created)) = request(
                            "POST",
                            &format!("{url}/admin/api/keys"),
                            &[("authorization", &auth)],
                            Some(&body),
                        ) else {
                            break;
                        };
                        let id = created["key"]["id"].as_str().unwrap().to_string();
                        acknowledged.lock().unwrap().push((id.clone(), 1));
                        // An update too: its acknowledged version must survive as well.
                        let patch = json!({"description": format!("edited {n}")});
                        if let Ok((200, patched)) = request(
                            "PATCH",
                            &format!("{url}/admin/api/keys/{id}"),
                            &[("authorization", &auth)],
                            Some(&patch),
                        ) {
                            let mut list = acknowledged.lock().unwrap();
                            if let Some(entry) = list.iter_mut().find(|(k, _)| *k == id) {
                                entry.1 = patched["version"].as_u64().unwrap();
                            }
                        }
                    }
                })
            })
            .collect();
        let wait = 80 + next_random(&mut seed) % 400;
        std::thread::sleep(Duration::from_millis(wait));
        server.kill9();
        stop.store(true, Ordering::Relaxed);
        for writer in writers {
            writer.join().unwrap();
        }

        // Reopen offline (integrity check at open) and compare.
        let output = run_cli(&data, &["keys", "list", "--json"]);
        assert!(
            output.status.success(),
            "round {round}: stores must open after kill -9: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let keys: Vec<Value> = serde_json::from_slice(&output.stdout).unwrap();
        let acknowledged = acknowledged.lock().unwrap();
        assert!(
            !acknowledged.is_empty(),
            "round {round}: no write was acknowledged in {wait} ms"
        );
        for (id, version) in acknowledged.iter() {
            let key = keys.iter().find(|k| k["id"] == id.as_str());
            let key = key.unwrap_or_else(|| panic!("round {round}: acknowledged key {id} is lost"));
            assert!(
                key["version"].as_u64().unwrap() >= *version,
                "round {round}: acknowledged update of {id} is lost"
            );
        }
        acknowledged_total += acknowledged.len();
    }
    assert!(
        acknowledged_total > 12,
        "the test wrote too little to mean anything ({acknowledged_total})"
    );
}
