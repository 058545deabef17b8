//! Schema upgrades: an older `logs.sqlite` is migrated forward with its data; a data dir
//! written by a newer relaybox is refused with a message instead of being damaged.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

mod common;

use relaybox::store::redb_store::{RedbStore, SCHEMA_VERSION};
use relaybox::store::sqlite::{LogDb, OpenOptions, RequestLog, migrate};
use relaybox::store::{ConfigStore, StoreError};

#[test]
fn older_log_schema_is_upgraded_in_place() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("logs.sqlite");
    {
        let mut conn = rusqlite::Connection::open(&path).unwrap();
        migrate::run_to(&mut conn, 1).unwrap();
        assert_eq!(migrate::user_version(&conn).unwrap(), 1);
        conn.execute("INSERT INTO request_log (id, status, initial_time) VALUES ('old-row', 'success', '2026-01-01T00:00:00.000Z')", []).unwrap();
        let has_usage: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE name = 'usage_daily'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(has_usage, 0, "version 1 has no usage tables");
    }
    let db = LogDb::open(&path, OpenOptions::default()).unwrap();
    assert_eq!(
        migrate::user_version(&db.lock()).unwrap(),
        migrate::latest()
    );
    assert_eq!(
        db.count_logs().unwrap(),
        1,
        "the old row survives the upgrade"
    );
    let indexes: Vec<String> = {
        let conn = db.lock();
        let mut stmt = conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'request_log' AND sql IS NOT NULL ORDER BY name")
            .unwrap();
        stmt.query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    assert_eq!(
        indexes,
        ["request_log_time_id"],
        "version 3 dropped the (client_id, initial_time) index; version 6 widened the time index"
    );
    let page_size = |conn: &rusqlite::Connection| -> i64 {
        conn.query_row("PRAGMA page_size", [], |r| r.get(0))
            .unwrap()
    };
    assert_eq!(
        page_size(&db.lock()),
        4096,
        "an existing file keeps its page size"
    );
    let fresh = LogDb::open(&tmp.path().join("fresh.sqlite"), OpenOptions::default()).unwrap();
    assert_eq!(
        page_size(&fresh.lock()),
        relaybox::store::sqlite::NEW_FILE_PAGE_SIZE
    );
    // The upgraded schema works: a new row lands in the usage roll-up.
    let row = RequestLog {
        id: "new-row".into(),
        status: "success".into(),
        initial_time: "2026-02-03T04:05:06.000Z".into(),
        client_id: "k1".into(),
        model: "m".into(),
        input_tokens: 7,
        price: 0.5,
        ..RequestLog::default()
    };
    assert_eq!(
        db.insert_logs(&[row.clone(), row]).unwrap(),
        1,
        "ids are unique"
    );
    let (requests, tokens): (i64, i64) = db.lock().query_row("SELECT requests, input_tokens FROM usage_daily WHERE key_id = 'k1' AND day = '2026-02-03'", [], |r| Ok((r.get(0)?, r.get(1)?))).unwrap();
    assert_eq!((requests, tokens), (1, 7));
}

#[test]
fn newer_schemas_are_refused_with_a_message() {
    let tmp = tempfile::tempdir().unwrap();
    // logs.sqlite from the future
    let path = tmp.path().join("logs.sqlite");
    drop(LogDb::open(&path, OpenOptions::default()).unwrap());
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
    }
    match LogDb::open(&path, OpenOptions::default()) {
        Err(StoreError::SchemaTooNew { found: 99, .. }) => {}
        other => panic!("expected SchemaTooNew, got {other:?}"),
    }

    // relaybox.redb from the future, through the real binary
    let data = tmp.path().join("data");
    common::TestServer::start(&data, &[]).stop();
    {
        let store = RedbStore::open(&data.join("relaybox.redb")).unwrap();
        assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
        assert!(store.load().is_ok());
        store.force_schema_version(SCHEMA_VERSION + 1).unwrap();
    }
    let err = common::TestServer::try_start(&data, &[])
        .err()
        .expect("a newer data dir must be refused");
    assert!(err.contains("newer relaybox"), "{err}");
    let output = common::run_cli(&data, &["keys", "list"]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("newer relaybox"));
}
