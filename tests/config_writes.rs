//! The config-write path under concurrent admins, through the real binary: several clients
//! create, patch, revoke and delete keys and relay with them at the same time. Every answer
//! must reflect every change acknowledged before it was sent, a created key must work at once,
//! a revoked or deleted key must be refused at once, and after a restart the store must hold
//! exactly the acknowledged history.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

mod common;

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::relay_env::{hello, setup};
use common::{TestServer, request};
use serde_json::{Value, json};

/// The fields of the shared key, each written by one client only (its value carries the
/// writer's sequence number), so every reply can be checked against what was acknowledged.
const FIELDS: [&str; 5] = ["name", "description", "limits", "allow", "expiry"];

fn field_value(field: &str, seq: u64) -> Value {
    match field {
        "name" => json!(format!("shared-{seq}")),
        "description" => json!(format!("note-{seq}")),
        "limits" => json!({ "requestsPerMinute": 1000 + seq }),
        "allow" => json!({ "userAgents": [format!("agent-{seq}")] }),
        "expiry" => json!({ "mode": "afterFirstUse", "days": 1000 + seq }),
        _ => unreachable!(),
    }
}

/// The sequence number a key shows for `field` (0 = never written).
fn field_seq(key: &Value, field: &str) -> u64 {
    let number = |text: &str, prefix: &str| text.strip_prefix(prefix).and_then(|s| s.parse().ok());
    match field {
        "name" => key["name"].as_str().and_then(|t| number(t, "shared-")),
        "description" => key["description"].as_str().and_then(|t| number(t, "note-")),
        "limits" => key["limits"]["requestsPerMinute"]
            .as_u64()
            .map(|n| n - 1000),
        "allow" => key["allow"]["userAgents"][0]
            .as_str()
            .and_then(|t| number(t, "agent-")),
        "expiry" => key["expiry"]["days"].as_u64().map(|n| n - 1000),
        _ => unreachable!(),
    }
    .unwrap_or(0)
}

fn relay_status(url: &str, key: &str) -> u16 {
    request(
        "POST",
        &format!("{url}/v1/messages"),
        &[("x-api-key", key), ("anthropic-version", "2023-06-01")],
        Some(&hello()),
    )
    .unwrap()
    .0
}

fn admin(url: &str, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
    request(
        method,
        &format!("{url}/admin/api{path}"),
        &[("authorization", &format!("Bearer {}", common::ADMIN_KEY))],
        body,
    )
    .unwrap()
}

/// What one client's own keys ended as, by id: `Some(status)` or `None` (deleted).
type Outcomes = Vec<(String, Option<&'static str>)>;

#[test]
fn concurrent_admins_never_see_an_acknowledged_change_undone() {
    let seconds: u64 = std::env::var("RELAYBOX_CONCURRENCY_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let env = setup(json!({}));
    env.channel("messages", "mock", "claude", None, 0);
    let url = env.server.url.clone();
    let (status, shared) = admin(&url, "POST", "/keys", Some(&json!({"name": "shared-0"})));
    assert_eq!(status, 201, "{shared}");
    let shared_id = shared["key"]["id"].as_str().unwrap().to_string();

    let acknowledged: Vec<AtomicU64> = FIELDS.iter().map(|_| AtomicU64::new(0)).collect();
    let anomalies = Mutex::new(Vec::<String>::new());
    let outcomes = Mutex::new(Outcomes::new());
    let requests = AtomicU64::new(0);
    let deadline = Instant::now() + Duration::from_secs(seconds);

    std::thread::scope(|scope| {
        for (client, field) in FIELDS.iter().enumerate() {
            let (url, shared_id) = (&url, &shared_id);
            let (acknowledged, anomalies, outcomes, requests) =
                (&acknowledged, &anomalies, &outcomes, &requests);
            scope.spawn(move || {
                let anomaly = |what: String| anomalies.lock().unwrap().push(what);
                let mut seq = 0;
                let mut mine = Outcomes::new();
                let mut round = 0u64;
                while Instant::now() < deadline {
                    round += 1;
                    // A new key works at once and is found at once.
                    let (status, created) = admin(
                        url,
                        "POST",
                        "/keys",
                        Some(&json!({"name": format!("c{client}-{round}")})),
                    );
                    if status != 201 {
                        anomaly(format!("client {client}: create answered {status}: {created}"));
                        continue;
                    }
                    let id = created["key"]["id"].as_str().unwrap().to_string();
                    let plaintext = created["plaintext"].as_str().unwrap().to_string();
                    let (status, _) = admin(url, "GET", &format!("/keys/{id}"), None);
                    if status != 200 {
                        anomaly(format!("client {client}: created key {id} answered {status}"));
                    }
                    let status = relay_status(url, &plaintext);
                    if status != 200 {
                        anomaly(format!("client {client}: new key {id} relayed with {status}"));
                    }

                    // The shared key: this client's field moves on; every other field shows at
                    // least what was acknowledged before the request was sent.
                    seq += 1;
                    let floor: Vec<u64> =
                        acknowledged.iter().map(|a| a.load(Ordering::SeqCst)).collect();
                    let (status, key) = admin(
                        url,
                        "PATCH",
                        &format!("/keys/{shared_id}"),
                        Some(&json!({ *field: field_value(field, seq) })),
                    );
                    if status == 200 {
                        acknowledged[client].store(seq, Ordering::SeqCst);
                        for (other, name) in FIELDS.iter().enumerate() {
                            let shown = field_seq(&key, name);
                            let want = if other == client { seq } else { floor[other] };
                            if shown < want {
                                anomaly(format!(
                                    "client {client}: PATCH reply shows {name} at {shown}, {want} was acknowledged before"
                                ));
                            }
                        }
                    } else {
                        anomaly(format!("client {client}: PATCH answered {status}: {key}"));
                    }

                    // Revoke or delete: refused on the very next request.
                    if round.is_multiple_of(2) {
                        let (status, _) = admin(
                            url,
                            "PATCH",
                            &format!("/keys/{id}"),
                            Some(&json!({"status": "revoked"})),
                        );
                        if status == 200 {
                            mine.push((id.clone(), Some("revoked")));
                        } else {
                            anomaly(format!("client {client}: revoke answered {status}"));
                            mine.push((id.clone(), Some("active")));
                        }
                    } else {
                        let (status, _) = admin(url, "DELETE", &format!("/keys/{id}"), None);
                        if status == 204 {
                            mine.push((id.clone(), None));
                        } else {
                            anomaly(format!("client {client}: delete answered {status}"));
                            mine.push((id.clone(), Some("active")));
                        }
                    }
                    let status = relay_status(url, &plaintext);
                    if status != 401 {
                        anomaly(format!(
                            "client {client}: key {id} relayed with {status} after its revoke/delete was acknowledged"
                        ));
                    }
                    requests.fetch_add(6, Ordering::Relaxed);
                }
                outcomes.lock().unwrap().extend(mine);
            });
        }
    });

    let anomalies = anomalies.into_inner().unwrap();
    assert!(
        anomalies.is_empty(),
        "{} anomalies in {} requests:\n{}",
        anomalies.len(),
        requests.load(Ordering::Relaxed),
        anomalies.join("\n")
    );
    let outcomes = outcomes.into_inner().unwrap();
    assert!(
        outcomes.len() >= FIELDS.len() * 2,
        "too few rounds to mean anything: {}",
        outcomes.len()
    );

    // After a restart the store holds exactly the acknowledged history.
    let data_dir = env.server.data_dir.clone();
    let common::relay_env::Setup { server, .. } = env;
    assert!(server.stop().success());
    let server = TestServer::start(&data_dir, &[]);
    let (_, keys) = server.admin("GET", "/keys", None);
    let by_id = |id: &str| {
        keys["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["id"] == id)
            .cloned()
    };
    let shared = by_id(&shared_id).expect("the shared key survives");
    for (client, field) in FIELDS.iter().enumerate() {
        assert_eq!(
            field_seq(&shared, field),
            acknowledged[client].load(Ordering::SeqCst),
            "{field} after the restart: {shared}"
        );
    }
    for (id, status) in &outcomes {
        match (by_id(id), status) {
            (None, None) => {}
            (Some(key), Some(status)) => assert_eq!(key["status"], *status, "{key}"),
            (found, expected) => {
                panic!("key {id}: expected {expected:?} after the restart, found {found:?}")
            }
        }
    }
}
