//! Cluster mode while PostgreSQL is gone: a private PostgreSQL server stopped hard
//! (`pg_ctl stop -m immediate`) under real instances, then started again.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

mod common;

use std::time::Duration;

use common::cluster::{CLUSTER_KEY, mock_channel, mock_upstream, within};
use common::pg_server::PgServer;
use common::{TestServer, request};
use relaybox_mock_upstream::MockUpstream;
use serde_json::{Value, json};

struct Outage {
    // Field order: the instances stop before the mock's runtime goes away.
    a: TestServer,
    b: TestServer,
    pg: PgServer,
    key: String,
    _mock: MockUpstream,
    _runtime: tokio::runtime::Runtime,
    tmp: tempfile::TempDir,
}

/// Two instances on a private PostgreSQL, a channel to the mock and a key that works on both.
fn setup() -> Option<Outage> {
    let pg = PgServer::start()?;
    let (runtime, mock) = mock_upstream();
    let tmp = tempfile::tempdir().unwrap();
    let url = pg.url();
    let env = [
        ("RELAYBOX_POSTGRES_URL", url.as_str()),
        ("RELAYBOX_ENCRYPTION_KEY", CLUSTER_KEY),
    ];
    let a = TestServer::start(&tmp.path().join("a"), &env);
    let b = TestServer::start(&tmp.path().join("b"), &env);
    assert_eq!(
        a.admin("POST", "/channels", Some(&mock_channel(&mock))).0,
        201
    );
    let (status, created) = a.admin("POST", "/keys", Some(&json!({"name": "client"})));
    assert_eq!(status, 201, "{created}");
    let key = created["plaintext"].as_str().unwrap().to_string();
    let outage = Outage {
        a,
        b,
        pg,
        key,
        _mock: mock,
        _runtime: runtime,
        tmp,
    };
    assert!(
        within(Duration::from_secs(6), || outage.relay(&outage.b).0 == 200).is_some(),
        "B never relayed with the new key"
    );
    Some(outage)
}

impl Outage {
    fn relay(&self, server: &TestServer) -> (u16, Value) {
        let body = json!({"model": "claude-sonnet-4", "max_tokens": 16,
            "messages": [{"role": "user", "content": "Hello through the outage"}]});
        request(
            "POST",
            &format!("{}/v1/messages", server.url),
            &[
                ("x-api-key", &self.key),
                ("anthropic-version", "2023-06-01"),
            ],
            Some(&body),
        )
        .unwrap()
    }
}

/// PostgreSQL's request_log: (rows, distinct ids).
fn shipped(url: &str) -> (u64, u64) {
    let line = common::cluster::psql(url, "SELECT count(*), count(DISTINCT id) FROM request_log");
    let (rows, distinct) = line.split_once('|').unwrap();
    (rows.parse().unwrap(), distinct.parse().unwrap())
}

/// This instance's shipping cursor in logs.sqlite.
fn cursor(data_dir: &std::path::Path) -> i64 {
    let conn = rusqlite::Connection::open(data_dir.join("logs.sqlite")).unwrap();
    conn.query_row("SELECT coalesce(max(seq), 0) FROM ship_cursor", [], |row| {
        row.get(0)
    })
    .unwrap()
}

fn health(server: &TestServer) -> Value {
    common::get(&format!("{}/health", server.url)).unwrap().1
}

#[test]
fn with_postgres_stopped_hard_instances_keep_relaying_refuse_admin_changes_and_recover() {
    let Some(mut outage) = setup() else {
        return;
    };
    // Logs ship while PostgreSQL is stopped hard in the middle of a burst; the cursor is
    // sampled throughout and must only move forward.
    let dir_a = outage.tmp.path().join("a");
    let mut cursors = vec![cursor(&dir_a)];
    for _ in 0..20 {
        assert_eq!(outage.relay(&outage.a).0, 200);
    }
    cursors.push(cursor(&dir_a));
    outage.pg.stop_immediate();

    // Relaying goes on, on both instances.
    for server in [&outage.a, &outage.b] {
        for _ in 0..10 {
            let (status, body) = outage.relay(server);
            assert_eq!(status, 200, "{body}");
        }
    }
    cursors.push(cursor(&dir_a));
    // Admin changes are refused (never queued), in plain words; reads still answer.
    let (status, body) =
        outage
            .a
            .admin("POST", "/keys", Some(&json!({"name": "during-the-outage"})));
    assert_eq!(status, 503, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("read-only while PostgreSQL is unreachable"),
        "{message}"
    );
    assert_eq!(outage.b.admin("GET", "/keys", None).0, 200);
    // /health says degraded, with how stale the configuration is.
    let degraded = within(Duration::from_secs(8), || {
        let report = health(&outage.b);
        report["status"] == "degraded" && report["problems"].to_string().contains("last confirmed")
    });
    assert!(degraded.is_some(), "{}", health(&outage.b));
    let report = health(&outage.b);
    let problems = report["problems"].to_string();
    assert!(
        problems.contains("PostgreSQL is unreachable")
            && problems.contains("admin changes are refused"),
        "{report}"
    );
    assert!(
        problems.contains("request logs are not shipping"),
        "{report}"
    );
    assert!(
        report["cluster"]["unreachableSince"].is_string(),
        "{report}"
    );

    // PostgreSQL comes back: health recovers and changes go through again, everywhere.
    outage.pg.start_again();
    for server in [&outage.a, &outage.b] {
        let ok = within(Duration::from_secs(12), || health(server)["status"] == "ok");
        assert!(ok.is_some(), "{}", health(server));
    }
    let (status, created) =
        outage
            .a
            .admin("POST", "/keys", Some(&json!({"name": "after-the-outage"})));
    assert_eq!(status, 201, "{created}");
    let id = created["key"]["id"].as_str().unwrap().to_string();
    let seen = within(Duration::from_secs(6), || {
        outage.b.admin("GET", &format!("/keys/{id}"), None).0 == 200
    });
    assert!(seen.is_some());
    // Nothing was queued during the outage.
    let (_, keys) = outage.b.admin("GET", "/keys", None);
    assert!(!keys.to_string().contains("during-the-outage"), "{keys}");

    // Every local row reaches PostgreSQL exactly once, and the cursor only moved forward.
    let local = || {
        common::disk_faults::logged_rows(&dir_a)
            + common::disk_faults::logged_rows(&outage.tmp.path().join("b"))
    };
    let url = outage.pg.url();
    let drained = within(Duration::from_secs(15), || {
        cursors.push(cursor(&dir_a));
        shipped(&url).0 == local()
    });
    assert!(
        drained.is_some(),
        "shipped {:?}, local {}",
        shipped(&url),
        local()
    );
    let (rows, distinct) = shipped(&url);
    assert_eq!(rows, distinct, "duplicates in PostgreSQL");
    assert!(rows >= 41, "{rows}");
    assert!(
        cursors.windows(2).all(|w| w[0] <= w[1]),
        "the cursor went back: {cursors:?}"
    );
    let (_, cluster) = outage.a.admin("GET", "/cluster", None);
    assert_eq!(cluster["logShipping"]["backlogRows"], 0, "{cluster}");
}

#[test]
fn a_relay_killed_between_the_postgres_commit_and_the_cursor_update_ships_no_duplicate() {
    let Some(db) = common::cluster::ClusterDb::create() else {
        return;
    };
    let (_runtime, mock) = mock_upstream();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("a");
    let a = db.start(&dir, &[]);
    assert_eq!(
        a.admin("POST", "/channels", Some(&mock_channel(&mock))).0,
        201
    );
    let (_, created) = a.admin("POST", "/keys", Some(&json!({"name": "client"})));
    let key = created["plaintext"].as_str().unwrap().to_string();
    a.stop();

    // This start aborts right after its first PostgreSQL commit of log rows.
    let mut crashing = db.start(&dir, &[("RELAYBOX_TEST_SHIP_CRASH_AFTER_COMMIT", "1")]);
    let body = json!({"model": "claude-sonnet-4", "max_tokens": 16,
        "messages": [{"role": "user", "content": "before the crash"}]});
    let _ = request(
        "POST",
        &format!("{}/v1/messages", crashing.url),
        &[("x-api-key", &key), ("anthropic-version", "2023-06-01")],
        Some(&body),
    );
    let exited = within(Duration::from_secs(10), || {
        crashing.child.try_wait().unwrap().is_some()
    });
    assert!(exited.is_some(), "the crash hook did not fire");
    let (rows_before, _) = shipped(&db.url);
    assert!(rows_before >= 1, "nothing was committed before the crash");
    assert_eq!(
        cursor(&dir),
        0,
        "the cursor moved although the process died before"
    );

    // The next start ships the same rows again; PostgreSQL keeps one of each.
    let a = db.start(&dir, &[]);
    let local = common::disk_faults::logged_rows(&dir);
    let drained = within(Duration::from_secs(10), || shipped(&db.url).0 == local);
    assert!(
        drained.is_some(),
        "shipped {:?}, local {local}",
        shipped(&db.url)
    );
    let (rows, distinct) = shipped(&db.url);
    assert_eq!(rows, distinct);
    assert!(within(Duration::from_secs(5), || cursor(&dir) > 0).is_some());
    drop(a);
}

#[test]
fn max_config_staleness_makes_an_instance_fail_closed_while_postgres_is_away() {
    let Some(mut outage) = setup() else {
        return;
    };
    let (status, body) = outage.a.admin(
        "PUT",
        "/settings",
        Some(&json!({"maxConfigStalenessSeconds": 2})),
    );
    assert_eq!(status, 200, "{body}");
    assert!(
        within(Duration::from_secs(6), || {
            outage.b.admin("GET", "/settings", None).1["maxConfigStalenessSeconds"] == 2
        })
        .is_some()
    );
    assert_eq!(outage.relay(&outage.b).0, 200);

    outage.pg.stop_immediate();
    // The next poll fails (≤ 5 s) and 2 s later the instances refuse relay traffic.
    for server in [&outage.a, &outage.b] {
        let refused = within(Duration::from_secs(12), || outage.relay(server).0 == 503);
        assert!(
            refused.is_some(),
            "still relaying with a stale configuration"
        );
        let (_, body) = outage.relay(server);
        assert_eq!(body["type"], "error", "{body}");
        assert_eq!(body["error"]["type"], "overloaded_error", "{body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("maxConfigStalenessSeconds"),
            "{body}"
        );
    }
    outage.pg.start_again();
    for server in [&outage.a, &outage.b] {
        let back = within(Duration::from_secs(12), || outage.relay(server).0 == 200);
        assert!(
            back.is_some(),
            "did not serve again after PostgreSQL came back"
        );
    }
}
