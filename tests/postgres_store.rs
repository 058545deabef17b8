//! The PostgreSQL config store against a real PostgreSQL (tests/services.sh): its schema, the
//! replicated commit (head-row lock, record versions, NOTIFY) and pulls by revision.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt as _;
use relaybox::domain::{Channel, ClientKey, ModelPrice, Settings};
use relaybox::store::memory::MemoryStore;
use relaybox::store::postgres::{Base, PgStore, PulledRecord, migrate};
use relaybox::store::{
    Commit, ConfigOp, ConfigState, ConfigStore, Expect, RecordWrite, StoreError,
};
use serde_json::json;

use common::postgres::{TestDb, eventually};

fn key(id: &str, hash: &str) -> ClientKey {
    serde_json::from_value(json!({
        "id": id, "name": format!("key {id}"), "hash": hash, "displayPrefix": "rb_1a2b",
        "createdAt": "2026-01-02T03:04:05Z", "updatedAt": "2026-01-02T03:04:05Z",
    }))
    .unwrap()
}

fn channel(id: &str, name: &str) -> Channel {
    serde_json::from_value(json!({
        "id": id, "pool": "messages", "name": name,
        "serviceType": "claude", "baseUrl": "https://upstream.example",
    }))
    .unwrap()
}

fn price(input: f64) -> ModelPrice {
    ModelPrice {
        input_price: input,
        output_price: input * 5.0,
        ..ModelPrice::default()
    }
}

/// Plan `ops` on `state` as the config writer does and commit them against that copy's record
/// versions; on success `state` is the new state at the returned revision.
async fn change(
    store: &PgStore,
    state: &mut ConfigState,
    ops: Vec<ConfigOp>,
) -> Result<u64, StoreError> {
    let mut next = state.clone();
    let writes = next.apply_ops(&ops)?;
    let revision = store.commit_records(Base::Records(state), &writes).await?;
    next.revision = revision;
    *state = next;
    Ok(revision)
}

async fn count(client: &tokio_postgres::Client, sql: &str) -> i64 {
    client.query_one(sql, &[]).await.unwrap().get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schema_is_created_once_by_instances_starting_together_and_a_newer_one_is_refused() {
    let Some(db) = TestDb::create().await else {
        return;
    };
    // Three instances start at once on an empty database.
    let (a, b, c) = tokio::join!(
        PgStore::connect(&db.target),
        PgStore::connect(&db.target),
        PgStore::connect(&db.target)
    );
    let (a, _b, _c) = (a.unwrap(), b.unwrap(), c.unwrap());
    assert_eq!(a.schema_version().await.unwrap(), migrate::latest());
    let raw = db.raw().await;
    assert_eq!(count(&raw, "SELECT count(*) FROM relaybox_schema").await, 1);
    assert_eq!(count(&raw, "SELECT count(*) FROM cfg_head").await, 1);
    let head = a.head().await.unwrap();
    assert_eq!((head.rev, head.min_rev), (0, 0));
    assert_eq!(head.cluster_id.len(), 36, "a uuid: {}", head.cluster_id);
    // Connecting again migrates nothing and keeps the cluster id.
    let again = PgStore::connect(&db.target).await.unwrap();
    assert_eq!(again.head().await.unwrap(), head);

    // A newer relaybox moved the schema on: this one refuses, says why, and changes nothing.
    let newer = i64::try_from(migrate::latest() + 1).unwrap();
    raw.execute("UPDATE relaybox_schema SET version = $1", &[&newer])
        .await
        .unwrap();
    let err = PgStore::connect(&db.target).await.unwrap_err();
    assert!(
        matches!(err, StoreError::ClusterSchemaTooNew { found, supported }
            if found == migrate::latest() + 1 && supported == migrate::latest()),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(
        message.contains("newer relaybox") && message.contains("PostgreSQL"),
        "{message}"
    );
    assert_eq!(
        count(&raw, "SELECT version FROM relaybox_schema").await,
        newer
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_copy_gets_a_conflict_for_changed_records_but_may_write_others() {
    let Some(db) = TestDb::create().await else {
        return;
    };
    let store = PgStore::connect(&db.target).await.unwrap();
    let mut a = ConfigState::default();
    change(
        &store,
        &mut a,
        vec![
            ConfigOp::PutKey(key("k1", "h1"), Expect::Absent),
            ConfigOp::PutChannel(channel("c1", "main"), Expect::Absent),
        ],
    )
    .await
    .unwrap();
    // Instance B pulled revision 1; then A edits k1 and creates k2 and a channel.
    let mut b = a.clone();
    let mut k1 = key("k1", "h1");
    k1.name = "renamed by A".into();
    change(
        &store,
        &mut a,
        vec![
            ConfigOp::PutKey(k1, Expect::Version(1)),
            ConfigOp::PutKey(key("k2", "h2"), Expect::Absent),
            ConfigOp::PutChannel(channel("c2", "backup"), Expect::Absent),
        ],
    )
    .await
    .unwrap();
    let before = store.snapshot().await.unwrap();
    assert_eq!(before.0.rev, 2);

    // B edits k1 from its stale copy (version 1, PostgreSQL has 2): 409, nothing written.
    let mut stale_edit = key("k1", "h1");
    stale_edit.name = "renamed by B".into();
    let refused = [
        vec![ConfigOp::PutKey(stale_edit, Expect::Version(1))],
        vec![ConfigOp::DeleteKey("k1".into(), Expect::Version(1))],
        // k2 exists in PostgreSQL; B's copy does not know it.
        vec![ConfigOp::PutKey(key("k2", "h9"), Expect::Absent)],
        // Another key already has this hash (k2, unknown to B).
        vec![ConfigOp::PutKey(key("k3", "h2"), Expect::Absent)],
        // The messages pool already has a channel named "backup" (case is ignored).
        vec![ConfigOp::PutChannel(
            channel("c3", "BACKUP"),
            Expect::Absent,
        )],
        // Several ops: the first would do, the last is stale: none lands.
        vec![
            ConfigOp::PutPrice("m1".into(), price(1.0), Expect::Absent),
            ConfigOp::DeleteKey("k1".into(), Expect::Exists),
        ],
    ];
    for ops in refused {
        let err = change(&store, &mut b.clone(), ops.clone())
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Conflict(_)), "{ops:?}: {err:?}");
        let after = store.snapshot().await.unwrap();
        assert_eq!(after.0, before.0, "{ops:?} moved the head");
        assert_eq!(after.1, before.1, "{ops:?} wrote something");
    }
    let err = change(
        &store,
        &mut b.clone(),
        vec![ConfigOp::PutKey(key("k1", "h1"), Expect::Version(1))],
    )
    .await
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "key 'k1' was changed by someone else (version 2, you sent 1); reload and retry"
    );

    // A record nobody else changed is written from the stale copy, as the next revision.
    let revision = change(
        &store,
        &mut b,
        vec![ConfigOp::PutPrice("m1".into(), price(2.0), Expect::Absent)],
    )
    .await
    .unwrap();
    assert_eq!(revision, 3);
    let (head, state) = store.snapshot().await.unwrap();
    assert_eq!(head.rev, 3);
    assert_eq!(state.pricing["m1"].version, 1);
    assert_eq!(state.keys["k1"].name, "renamed by A");
    assert_eq!(state.keys.len(), 2);
    assert_eq!(state.key_hashes["h2"], "k2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(
    clippy::disallowed_methods,
    reason = "the listener's connection driver; it ends with the test"
)]
async fn every_commit_notifies_its_revision_and_a_refused_one_does_not() {
    let Some(db) = TestDb::create().await else {
        return;
    };
    let store = PgStore::connect(&db.target).await.unwrap();
    let (listener, mut connection) = db
        .target
        .config
        .connect(tokio_postgres::NoTls)
        .await
        .unwrap();
    let (sender, mut notes) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(Ok(message)) = messages.next().await {
            if let tokio_postgres::AsyncMessage::Notification(note) = message {
                _ = sender.send((note.channel().to_string(), note.payload().to_string()));
            }
        }
    });
    listener
        .batch_execute("LISTEN relaybox_config")
        .await
        .unwrap();

    let mut state = ConfigState::default();
    change(
        &store,
        &mut state,
        vec![ConfigOp::PutKey(key("k1", "h1"), Expect::Absent)],
    )
    .await
    .unwrap();
    let first = tokio::time::timeout(Duration::from_secs(5), notes.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first, ("relaybox_config".to_string(), "1".to_string()));

    // Refused (stale copy): no notification; the next commit's is the next one received.
    let err = change(
        &store,
        &mut ConfigState::default(),
        vec![ConfigOp::PutKey(key("k1", "h1"), Expect::Absent)],
    )
    .await
    .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    change(
        &store,
        &mut state,
        vec![ConfigOp::PutSettings(Settings::default(), Expect::Any)],
    )
    .await
    .unwrap();
    let second = tokio::time::timeout(Duration::from_secs(5), notes.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(second.1, "2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pulls_bring_a_copy_up_to_date_in_revision_order_with_tombstones_and_whole_revisions() {
    let Some(db) = TestDb::create().await else {
        return;
    };
    let store = PgStore::connect(&db.target).await.unwrap();
    let mut state = ConfigState::default();
    let ops: Vec<Vec<ConfigOp>> = vec![
        vec![
            ConfigOp::PutKey(key("a", "ha"), Expect::Absent),
            ConfigOp::PutKey(key("b", "hb"), Expect::Absent),
            ConfigOp::PutKey(key("c", "hc"), Expect::Absent),
        ],
        vec![
            ConfigOp::PutPrice("p1".into(), price(1.0), Expect::Absent),
            ConfigOp::PutPrice("p2".into(), price(2.0), Expect::Absent),
        ],
        vec![ConfigOp::DeleteKey("a".into(), Expect::Exists)],
        vec![ConfigOp::PutSettings(
            Settings {
                max_queue_length: 9,
                ..Settings::default()
            },
            Expect::Any,
        )],
    ];
    for ops in ops {
        change(&store, &mut state, ops).await.unwrap();
    }

    // Everything after 0: latest write of each record, in revision order; the delete is a
    // tombstone at revision 3.
    let page = store.changes_since(0, 1000).await.unwrap();
    let order: Vec<(u64, String)> = page.records.iter().map(describe).collect();
    assert_eq!(
        order,
        [
            (1, "key b".to_string()),
            (1, "key c".to_string()),
            (2, "price p1".to_string()),
            (2, "price p2".to_string()),
            (3, "tombstone of key a".to_string()),
            (4, "settings".to_string()),
        ]
    );
    assert_eq!(
        (page.through, page.head.rev, page.has_more()),
        (4, 4, false)
    );

    // Pages of at most 3 rows end on revision boundaries.
    let mut throughs = Vec::new();
    let mut since = 0;
    loop {
        let page = store.changes_since(since, 3).await.unwrap();
        throughs.push((page.through, page.records.len()));
        since = page.through;
        if !page.has_more() {
            break;
        }
    }
    assert_eq!(throughs, [(1, 2), (3, 3), (4, 1)]);
    // One revision larger than the limit comes whole.
    let page = store.changes_since(1, 1).await.unwrap();
    assert_eq!((page.through, page.records.len()), (2, 2));
    // Nothing new.
    let page = store.changes_since(4, 10).await.unwrap();
    assert_eq!((page.through, page.records.len()), (4, 0));

    // Applying the pages to an empty copy gives PostgreSQL's state.
    let copy = MemoryStore::default();
    let mut applied = 0;
    loop {
        let page = store.changes_since(applied, 2).await.unwrap();
        let writes: Vec<RecordWrite> = page.records.into_iter().map(|r| r.write).collect();
        copy.commit(Commit {
            base: applied,
            revision: page.through,
            writes: &writes,
            cluster: None,
        })
        .unwrap();
        applied = page.through;
        if applied == page.head.rev {
            break;
        }
    }
    let (_, truth) = store.snapshot().await.unwrap();
    let copied = copy.load().unwrap();
    assert_eq!(copied.revision, truth.revision);
    assert_eq!(copied.keys, truth.keys);
    assert_eq!(copied.pricing, truth.pricing);
    assert_eq!(copied.settings, truth.settings);
    assert_eq!(truth.settings.max_queue_length, 9);
}

fn describe(record: &PulledRecord) -> (u64, String) {
    let what = match &record.write {
        RecordWrite::Key(id, Some(_)) => format!("key {id}"),
        RecordWrite::Key(id, None) => format!("tombstone of key {id}"),
        RecordWrite::Price(id, Some(_)) => format!("price {id}"),
        RecordWrite::Settings(_) => "settings".to_string(),
        other => format!("{other:?}"),
    };
    (record.rev, what)
}

/// Writer 1 holds its transaction open (blocked inside it) while writer 2 tries to commit: the
/// head-row lock makes writer 2 wait, a puller meanwhile sees neither, and afterwards the
/// revisions follow the commit order — a puller that applied revision 1 never skips writer 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(
    clippy::disallowed_methods,
    reason = "two writers committing at once, each in a task"
)]
async fn a_commit_held_open_is_never_skipped_by_a_later_one() {
    let Some(db) = TestDb::create().await else {
        return;
    };
    let store = Arc::new(PgStore::connect(&db.target).await.unwrap());
    let mut state = ConfigState::default();
    change(
        &store,
        &mut state,
        vec![ConfigOp::PutKey(key("k1", "h1"), Expect::Absent)],
    )
    .await
    .unwrap();

    // Something else holds k1's row: writer 1 will stop inside its transaction, after taking
    // the head row, at its write of k1.
    let mut blocker = db.raw().await;
    let hold = blocker.transaction().await.unwrap();
    hold.execute(
        "SELECT 1 FROM cfg_record WHERE kind = 'key' AND id = 'k1' FOR UPDATE",
        &[],
    )
    .await
    .unwrap();

    let mut edited = key("k1", "h1");
    edited.name = "writer 1".into();
    let writer1 = {
        let store = Arc::clone(&store);
        let mut base = state.clone();
        tokio::spawn(async move {
            change(
                &store,
                &mut base,
                vec![ConfigOp::PutKey(edited, Expect::Version(1))],
            )
            .await
        })
    };
    let monitor = db.raw().await;
    let waiting = "SELECT count(*) FROM pg_stat_activity
                   WHERE datname = current_database() AND wait_event_type = 'Lock'";
    eventually(Duration::from_secs(10), "writer 1 to block", || async {
        (count(&monitor, waiting).await == 1).then_some(())
    })
    .await;
    let writer2 = {
        let store = Arc::clone(&store);
        let mut base = state.clone();
        tokio::spawn(async move {
            change(
                &store,
                &mut base,
                vec![ConfigOp::PutPrice("m1".into(), price(1.0), Expect::Absent)],
            )
            .await
        })
    };
    eventually(
        Duration::from_secs(10),
        "writer 2 to wait for the head row",
        || async { (count(&monitor, waiting).await == 2).then_some(()) },
    )
    .await;
    // A puller now sees neither writer.
    let page = store.changes_since(1, 100).await.unwrap();
    assert_eq!((page.through, page.records.len()), (1, 0));
    assert!(!writer2.is_finished(), "writer 2 committed past writer 1");

    hold.rollback().await.unwrap();
    let rev1 = writer1.await.unwrap().unwrap();
    let rev2 = writer2.await.unwrap().unwrap();
    assert_eq!((rev1, rev2), (2, 3), "revisions follow the commit order");
    let page = store.changes_since(1, 100).await.unwrap();
    let order: Vec<(u64, String)> = page.records.iter().map(describe).collect();
    assert_eq!(
        order,
        [(2, "key k1".to_string()), (3, "price m1".to_string())]
    );
    let (_, truth) = store.snapshot().await.unwrap();
    assert_eq!(truth.keys["k1"].name, "writer 1");
    assert!(truth.pricing.contains_key("m1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_is_used_when_the_url_asks_for_it_and_an_unreachable_server_says_so() {
    let Some(db) = TestDb::create().await else {
        return;
    };
    // The test server speaks no TLS: sslmode=require must not fall back to plain text.
    let mut url = relaybox::store::postgres::Target::parse(
        &common::postgres::server_url().unwrap_or_default(),
    )
    .unwrap();
    url.tls = relaybox::store::postgres::Tls::Encrypted;
    url.config
        .ssl_mode(tokio_postgres::config::SslMode::Require)
        .dbname(db.target.config.get_dbname().unwrap());
    let err = PgStore::connect(&url).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::Unreachable(m) if m.contains("TLS")),
        "{err:?}"
    );
    // Nothing listens on port 1.
    let closed =
        relaybox::store::postgres::Target::parse("postgres://relaybox@127.0.0.1:1/x").unwrap();
    let err = PgStore::connect(&closed).await.unwrap_err();
    assert!(matches!(err, StoreError::Unreachable(_)), "{err:?}");
    assert!(
        err.to_string().starts_with("PostgreSQL is unreachable"),
        "{err}"
    );
}

#[test]
fn a_bad_postgres_url_is_refused_without_echoing_its_password() {
    let dir = tempfile::tempdir().unwrap();
    let output = common::relaybox(dir.path())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env(
            "RELAYBOX_POSTGRES_URL",
            "postgres://relay:s3cret-pw@db.example/relay?sslmode=always",
        )
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("sslmode 'always'"), "{stderr}");
    assert!(!stderr.contains("s3cret-pw"), "{stderr}");
    assert!(
        !dir.path().join("relaybox.redb").exists(),
        "the data dir was touched"
    );
}
