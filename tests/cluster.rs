//! Cluster mode end to end: real `relaybox serve` processes sharing a real PostgreSQL.
//! (Without a test PostgreSQL these fail in CI and skip elsewhere; see tests/common/postgres.rs.)
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

mod common;

use std::time::Duration;

use common::cluster::{ClusterDb, everything, within};
use common::{ADMIN_KEY, TestServer, request};
use serde_json::{Value, json};

fn admin_with(
    server: &TestServer,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&Value>,
) -> (u16, Value) {
    let auth = format!("Bearer {ADMIN_KEY}");
    let mut all = vec![("authorization", auth.as_str())];
    all.extend_from_slice(headers);
    request(
        method,
        &format!("{}/admin/api{path}", server.url),
        &all,
        body,
    )
    .unwrap()
}

fn create_key(server: &TestServer, name: &str) -> (String, String) {
    let (status, body) = server.admin("POST", "/keys", Some(&json!({ "name": name })));
    assert_eq!(status, 201, "{body}");
    (
        body["plaintext"].as_str().unwrap().to_string(),
        body["key"]["id"].as_str().unwrap().to_string(),
    )
}

/// The relay's answer to `key` (no channel is configured: an accepted key gets 503, a refused
/// one 401).
fn relay_status(server: &TestServer, key: &str) -> u16 {
    let body = json!({"model": "claude-x", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]});
    request(
        "POST",
        &format!("{}/v1/messages", server.url),
        &[("x-api-key", key), ("anthropic-version", "2023-06-01")],
        Some(&body),
    )
    .unwrap()
    .0
}

fn revoke(server: &TestServer, id: &str) {
    let (status, body) = server.admin(
        "PATCH",
        &format!("/keys/{id}"),
        Some(&json!({"status": "revoked"})),
    );
    assert_eq!(status, 200, "{body}");
}

#[test]
fn instances_converge_on_every_entity_and_a_revoke_is_refused_elsewhere_within_a_second() {
    let Some(db) = ClusterDb::create() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let a = db.start(&tmp.path().join("a"), &[]);
    let b = db.start(&tmp.path().join("b"), &[]);

    // Every kind of record, written on A.
    let (plain, id) = create_key(&a, "laptop");
    let channel = json!({"pool": "messages", "name": "primary", "serviceType": "claude",
        "baseUrl": "http://127.0.0.1:9", "apiKeys": ["sk-upstream-1"]});
    assert_eq!(a.admin("POST", "/channels", Some(&channel)).0, 201);
    let price = json!({"model": "claude-x", "inputPrice": 3, "outputPrice": 15});
    assert_eq!(a.admin("POST", "/pricing", Some(&price)).0, 201);
    let alias = json!({"pool": "messages", "value": "opus"});
    assert_eq!(a.admin("POST", "/aliases", Some(&alias)).0, 201);
    let settings = json!({"suspendSeconds": 77});
    assert_eq!(a.admin("PUT", "/settings", Some(&settings)).0, 200);

    let wanted = everything(&a);
    let converged = within(Duration::from_secs(3), || everything(&b) == wanted);
    assert!(
        converged.is_some(),
        "B did not converge:\nA {wanted}\nB {}",
        everything(&b)
    );
    // A third instance started now pulls everything before it serves.
    let c = db.start(&tmp.path().join("c"), &[]);
    assert_eq!(everything(&c), wanted);

    // The key works on every instance (no channel answers: 503, not 401)…
    for server in [&a, &b, &c] {
        assert_ne!(relay_status(server, &plain), 401);
    }
    // …and a revoke on A is refused on B and C within a second (NOTIFY).
    revoke(&a, &id);
    for server in [&b, &c] {
        let took = within(Duration::from_secs(1), || {
            relay_status(server, &plain) == 401
        });
        assert!(took.is_some(), "the revoked key still works after 1 s");
    }

    // With B's LISTEN connection killed, the 5 s poll still brings the next revoke.
    let (plain2, id2) = create_key(&a, "desktop");
    assert!(within(Duration::from_secs(2), || relay_status(&b, &plain2) != 401).is_some());
    let killed = db.sql(&format!(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
         WHERE datname = '{}' AND query LIKE 'LISTEN%'",
        db.name
    ));
    assert_ne!(killed, "0", "no LISTEN connection was found to kill");
    revoke(&a, &id2);
    let took = within(Duration::from_secs(6), || relay_status(&b, &plain2) == 401);
    assert!(
        took.is_some(),
        "the revoke did not reach B within one poll interval"
    );

    // Every instance reports the same revision.
    let revision =
        |s: &TestServer| s.admin("GET", "/cluster", None).1["config"]["appliedRevision"].clone();
    assert!(
        within(Duration::from_secs(6), || revision(&b) == revision(&a)
            && revision(&c) == revision(&a))
        .is_some()
    );
    assert_eq!(a.admin("GET", "/cluster", None).1["mode"], "cluster");
}

#[test]
fn concurrent_edits_of_one_record_on_two_instances_give_one_200_and_one_409() {
    let Some(db) = ClusterDb::create() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let a = db.start(&tmp.path().join("a"), &[]);
    let b = db.start(&tmp.path().join("b"), &[]);
    let (_, id) = create_key(&a, "shared");
    assert!(
        within(Duration::from_secs(3), || b
            .admin("GET", &format!("/keys/{id}"), None)
            .0
            == 200)
        .is_some()
    );
    let version_on = |server: &TestServer| {
        server.admin("GET", &format!("/keys/{id}"), None).1["version"]
            .as_u64()
            .unwrap()
    };
    for round in 0..5 {
        // Both instances have pulled the previous round's winner.
        assert!(within(Duration::from_secs(6), || version_on(&a) == version_on(&b)).is_some());
        let version = version_on(&a).to_string();
        let path = format!("/keys/{id}");
        let results: Vec<u16> = std::thread::scope(|scope| {
            let edits: Vec<_> = [(&a, "from A"), (&b, "from B")]
                .into_iter()
                .map(|(server, text)| {
                    let path = &path;
                    let version = &version;
                    scope.spawn(move || {
                        let body = json!({"description": format!("{text} {round}")});
                        admin_with(server, "PATCH", path, &[("if-match", version)], Some(&body)).0
                    })
                })
                .collect();
            edits.into_iter().map(|e| e.join().unwrap()).collect()
        });
        let mut sorted = results.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, vec![200, 409], "round {round}: {results:?}");
    }
}

#[test]
fn a_commit_held_open_is_never_skipped_by_a_later_one() {
    let Some(db) = ClusterDb::create() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let a = db.start(&tmp.path().join("a"), &[]);
    let b = db.start(&tmp.path().join("b"), &[]);
    // Writer 1: a transaction that takes the next revision and holds it for 3 s before
    // committing a price record (the same statements relaybox's commit runs).
    let url = db.url.clone();
    let slow = std::thread::spawn(move || {
        common::cluster::psql(
            &url,
            "BEGIN;
             SELECT rev FROM cfg_head WHERE singleton FOR UPDATE;
             UPDATE cfg_head SET rev = rev + 1 WHERE singleton;
             INSERT INTO cfg_record (kind, id, version, rev, deleted, body)
               SELECT 'price', 'slow-model', 1, rev, false,
                      '{\"inputPrice\": 1, \"outputPrice\": 2, \"version\": 1}'::jsonb
               FROM cfg_head;
             SELECT pg_sleep(3);
             COMMIT;",
        )
    });
    std::thread::sleep(Duration::from_millis(500));
    // Writer 2 (through A) commits while writer 1 is open: it waits for writer 1's revision.
    let (status, body) = a.admin(
        "POST",
        "/pricing",
        Some(&json!({"model": "fast-model", "inputPrice": 1, "outputPrice": 1})),
    );
    assert_eq!(status, 201, "{body}");
    slow.join().unwrap();
    for server in [&a, &b] {
        let both = within(Duration::from_secs(6), || {
            let (_, pricing) = server.admin("GET", "/pricing", None);
            let text = pricing.to_string();
            text.contains("slow-model") && text.contains("fast-model")
        });
        assert!(
            both.is_some(),
            "an instance skipped a change: {}",
            server.admin("GET", "/pricing", None).1
        );
    }
}

#[test]
fn a_single_node_data_dir_seeds_an_empty_cluster_and_its_keys_keep_working_everywhere() {
    let Some(db) = ClusterDb::create() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let alone = tmp.path().join("alone");
    // A single node with a key and a channel (with a sealed upstream secret).
    let server = TestServer::start(
        &alone,
        &[("RELAYBOX_ENCRYPTION_KEY", common::cluster::CLUSTER_KEY)],
    );
    let (plain, _) = create_key(&server, "old-key");
    let channel = json!({"pool": "messages", "name": "up", "serviceType": "claude",
        "baseUrl": "http://127.0.0.1:9", "apiKeys": ["sk-sealed-secret"]});
    assert_eq!(server.admin("POST", "/channels", Some(&channel)).0, 201);
    let before = everything(&server);
    server.stop();

    let a = db.start(&alone, &[]);
    assert!(
        a.log()
            .contains("seeded it with this data dir's configuration"),
        "{}",
        a.log()
    );
    assert_eq!(everything(&a), before);
    let b = db.start(&tmp.path().join("b"), &[]);
    assert_eq!(everything(&b), before);
    assert_ne!(
        relay_status(&b, &plain),
        401,
        "the old key must work on the new instance"
    );
    assert_eq!(relay_status(&b, "cr_not-a-key-at-all-0000000000"), 401);

    // The data dir is now a copy: offline CLI changes are refused (they would diverge).
    b.stop();
    let out = common::relaybox(&tmp.path().join("b"))
        .env("RELAYBOX_ENCRYPTION_KEY", common::cluster::CLUSTER_KEY)
        .args(["keys", "create", "--name", "offline"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("copy of cluster"), "{stderr}");
}

#[test]
fn instances_refuse_to_join_with_another_cluster_copy_or_a_configuration_of_their_own() {
    let Some(db) = ClusterDb::create() else {
        return;
    };
    let Some(other) = ClusterDb::create() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let a = db.start(&tmp.path().join("a"), &[]);
    create_key(&a, "in-cluster-one");
    a.stop();
    let b = other.start(&tmp.path().join("b"), &[]);
    create_key(&b, "in-cluster-two");
    b.stop();
    // A's copy belongs to the first cluster; the second one is populated.
    let refused = other
        .try_start(&tmp.path().join("a"), &[])
        .err()
        .expect("refused");
    assert!(refused.contains("belongs to cluster"), "{refused}");

    // A single-node data dir with keys of its own, into a populated cluster.
    let alone = tmp.path().join("alone");
    let server = TestServer::start(
        &alone,
        &[("RELAYBOX_ENCRYPTION_KEY", common::cluster::CLUSTER_KEY)],
    );
    create_key(&server, "mine");
    server.stop();
    let refused = db.try_start(&alone, &[]).err().expect("refused");
    assert!(
        refused.contains("has a configuration of its own"),
        "{refused}"
    );

    // An instance with another encryption key cannot open the cluster's secrets.
    let refused = db
        .try_start(
            &tmp.path().join("wrong-key"),
            &[(
                "RELAYBOX_ENCRYPTION_KEY",
                "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
            )],
        )
        .err()
        .expect("refused");
    assert!(
        refused.contains("does not open the cluster's keyring"),
        "{refused}"
    );
}

#[test]
fn a_database_restored_from_an_older_dump_is_detected_and_every_instance_resyncs() {
    let Some(db) = ClusterDb::create() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let a = db.start(&tmp.path().join("a"), &[]);
    let b = db.start(&tmp.path().join("b"), &[]);
    let (kept, _) = create_key(&a, "in-the-backup");
    let dump = tmp.path().join("backup.sql");
    db.dump(&dump);
    let (lost, _) = create_key(&a, "after-the-backup");
    assert!(within(Duration::from_secs(3), || relay_status(&b, &lost) != 401).is_some());

    db.restore(&dump);
    for server in [&a, &b] {
        let resynced = within(Duration::from_secs(12), || {
            relay_status(server, &lost) == 401
        });
        assert!(
            resynced.is_some(),
            "an instance still serves a key the restored database lacks"
        );
        assert_ne!(relay_status(server, &kept), 401);
        let (_, cluster) = server.admin("GET", "/cluster", None);
        assert_eq!(cluster["config"]["resyncs"], 1, "{cluster}");
        assert!(
            cluster["config"]["lastResync"]
                .as_str()
                .unwrap()
                .contains("older backup"),
            "{cluster}"
        );
        assert!(
            server
                .log()
                .contains("replacing it with PostgreSQL's whole configuration")
        );
    }
    // Writes work again after the resync.
    create_key(&b, "after-the-restore");
}

#[test]
fn a_config_file_is_applied_once_in_the_cluster() {
    let Some(db) = ClusterDb::create() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let config = json!({"upstream": [{"name": "from-file", "serviceType": "claude",
        "baseUrl": "http://127.0.0.1:9", "apiKeys": ["sk-file-1"]}]});
    for dir in ["a", "b"] {
        std::fs::create_dir_all(tmp.path().join(dir)).unwrap();
        std::fs::write(tmp.path().join(dir).join("config.json"), config.to_string()).unwrap();
    }
    let a = db.start(&tmp.path().join("a"), &[]);
    let (_, channels) = a.admin("GET", "/channels", None);
    let channel = channels["channels"]
        .as_array()
        .or_else(|| channels.as_array())
        .and_then(|list| list.iter().find(|c| c["name"] == "from-file"))
        .cloned()
        .unwrap_or_else(|| panic!("the file's channel is missing: {channels}"));
    // An admin edits the imported channel afterwards.
    let id = channel["id"].as_str().unwrap();
    let (status, body) = a.admin(
        "PATCH",
        &format!("/channels/{id}"),
        Some(&json!({"description": "edited by an admin"})),
    );
    assert_eq!(status, 200, "{body}");
    // B sees the same file content: the cluster applied it already, so the edit stays.
    let b = db.start(&tmp.path().join("b"), &[]);
    assert!(
        b.log().contains("applied in the cluster already"),
        "{}",
        b.log()
    );
    let (_, edited) = b.admin("GET", &format!("/channels/{id}"), None);
    assert_eq!(edited["description"], "edited by an admin", "{edited}");
}

#[test]
fn two_first_instances_started_together_share_one_keyring() {
    let Some(db) = ClusterDb::create() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = std::thread::scope(|scope| {
        let a = scope.spawn(|| db.start(&tmp.path().join("a"), &[]));
        let b = scope.spawn(|| db.start(&tmp.path().join("b"), &[]));
        (a.join().unwrap(), b.join().unwrap())
    });
    // A sealed secret written on each instance opens on the other.
    for (writer, reader, name) in [(&a, &b, "from-a"), (&b, &a, "from-b")] {
        let channel = json!({"pool": "messages", "name": name, "serviceType": "claude",
            "baseUrl": "http://127.0.0.1:9", "apiKeys": [format!("sk-{name}")]});
        let (status, body) = writer.admin("POST", "/channels", Some(&channel));
        assert_eq!(status, 201, "{body}");
        let seen = within(Duration::from_secs(6), || {
            reader
                .admin("GET", "/channels", None)
                .1
                .to_string()
                .contains(name)
        });
        assert!(
            seen.is_some(),
            "{}",
            reader.admin("GET", "/cluster", None).1
        );
        let (_, cluster) = reader.admin("GET", "/cluster", None);
        assert!(cluster["config"]["lastError"].is_null(), "{cluster}");
    }
}
