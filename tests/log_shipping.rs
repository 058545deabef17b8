//! Request-log shipping to PostgreSQL: the local outbox (cursor, backlog, cap), the partitioned
//! `request_log` in PostgreSQL, and the shipper loop, against a real PostgreSQL and real
//! logs.sqlite files. Also the private PostgreSQL harness the "stopped hard" stories use.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use relaybox::cluster::shipper::{LogShipper, ShipOptions, ShipState};
use relaybox::metrics::Metrics;
use relaybox::store::StoreError;
use relaybox::store::postgres::PgStore;
use relaybox::store::sqlite::outbox::{LogCap, POSTGRES_SINK};
use relaybox::store::sqlite::writer::{LogWriter, WriterConfig, WriterStats};
use relaybox::store::sqlite::{LogDb, OpenOptions, RequestLog};
use relaybox::tasks::Tasks;
use tokio_util::sync::CancellationToken;

use common::pg_server::PgServer;
use common::postgres::{TestDb, connect, eventually};

const INSTANCE: &str = "instance-a";

/// A realistic row: a UUIDv7 id, the relay's time format, every column filled.
fn row(n: usize, initial_time: &str) -> RequestLog {
    RequestLog {
        id: uuid::Uuid::now_v7().to_string(),
        status: "success".into(),
        initial_time: initial_time.to_string(),
        first_token_time: Some(initial_time.to_string()),
        complete_time: Some(initial_time.to_string()),
        duration_ms: 840,
        provider: "claude".into(),
        provider_name: "api.anthropic.com".into(),
        model: "claude-sonnet-4-5".into(),
        response_model: "claude-sonnet-4-5-20250929".into(),
        input_tokens: 1200 + n as i64,
        output_tokens: 350,
        cache_creation_input_tokens: 0,
        cache_read_input_tokens: 800,
        total_tokens: 2350 + n as i64,
        price: 0.0091,
        input_cost: 0.0036,
        output_cost: 0.0053,
        cache_creation_cost: 0.0,
        cache_read_cost: 0.0002,
        http_status: 200,
        stream: n.is_multiple_of(2),
        channel_id: "c0ffee01".into(),
        channel_name: "main".into(),
        endpoint: "messages".into(),
        client_id: format!("key-{}", n % 7),
        session_id: format!("session-{}", n % 13),
        error: String::new(),
        upstream_error: String::new(),
        failover_info: "[]".into(),
        unpriced: false,
    }
}

fn now_text() -> String {
    relaybox::domain::format_time(relaybox::domain::now())
}

fn rows_now(count: usize) -> Vec<RequestLog> {
    (0..count).map(|n| row(n, &now_text())).collect()
}

fn open_logs(dir: &Path) -> LogDb {
    LogDb::open(&dir.join("logs.sqlite"), OpenOptions::default()).unwrap()
}

/// Every local row's id.
fn local_ids(logs: &LogDb) -> Vec<String> {
    logs.reader()
        .rows_after(0, usize::MAX)
        .unwrap()
        .into_iter()
        .map(|row| row.log.id)
        .collect()
}

fn last_seq(logs: &LogDb) -> i64 {
    logs.reader().backlog(POSTGRES_SINK).unwrap().last_seq
}

/// (rows, distinct ids, the ids) of PostgreSQL's request_log.
async fn pg_ids(client: &tokio_postgres::Client) -> (i64, i64, BTreeSet<String>) {
    let counts = client
        .query_one("SELECT count(*), count(DISTINCT id) FROM request_log", &[])
        .await
        .unwrap();
    let ids = client
        .query("SELECT id FROM request_log", &[])
        .await
        .unwrap()
        .into_iter()
        .map(|row| row.get(0))
        .collect();
    (counts.get(0), counts.get(1), ids)
}

fn quick_options() -> ShipOptions {
    ShipOptions {
        batch_rows: 1_000,
        idle_interval: Duration::from_millis(20),
        min_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(400),
        step_timeout: Duration::from_secs(10),
        ..ShipOptions::default()
    }
}

/// The harness itself: a committed row survives `stop_immediate`, the server refuses
/// connections while stopped, and `start_again` brings it back on the same port.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_server_keeps_committed_rows_across_a_hard_stop() {
    let Some(mut server) = PgServer::start() else {
        return;
    };
    let client = connect(&server.target()).await;
    client
        .batch_execute("CREATE TABLE t (n int); INSERT INTO t VALUES (1), (2)")
        .await
        .unwrap();
    let port = server.port();
    server.stop_immediate();
    assert!(
        client.simple_query("SELECT 1").await.is_err(),
        "the connection survived the stop"
    );
    assert!(
        server
            .target()
            .config
            .connect(tokio_postgres::NoTls)
            .await
            .is_err(),
        "a stopped server accepted a connection"
    );
    server.start_again();
    assert_eq!(server.port(), port);
    let client = connect(&server.target()).await;
    let count: i64 = client
        .query_one("SELECT count(*) FROM t", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, 2);
}

/// N rows written through the real log writer reach PostgreSQL exactly once, every column
/// typed, the cursor ends on the last seq, and the figures say so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shipped_rows_arrive_once_with_every_column() {
    let Some(db) = TestDb::create().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let logs = open_logs(dir.path());
    let writer = LogWriter::start(logs.clone(), WriterConfig::default()).unwrap();
    let written = rows_now(2_345);
    for row in &written {
        assert!(writer.submit(row.clone()));
    }
    writer.flush();
    let pg = Arc::new(PgStore::connect(&db.target).await.unwrap());
    let metrics = Metrics::default();
    let mut shipper = LogShipper::new(logs.clone(), Arc::clone(&pg), INSTANCE, quick_options())
        .with_metrics(metrics.log_ship());
    let status = shipper.status();
    // Three steps: two full batches and the rest; a fourth finds nothing.
    assert_eq!(shipper.ship_once().await.unwrap(), 1_000);
    assert_eq!(shipper.ship_once().await.unwrap(), 1_000);
    assert_eq!(shipper.ship_once().await.unwrap(), 345);
    assert_eq!(shipper.ship_once().await.unwrap(), 0);

    let client = db.raw().await;
    let (rows, distinct, ids) = pg_ids(&client).await;
    assert_eq!((rows, distinct), (2_345, 2_345));
    assert_eq!(ids, local_ids(&logs).into_iter().collect::<BTreeSet<_>>());
    let cursor = logs.reader().ship_cursor(POSTGRES_SINK).unwrap();
    assert_eq!(cursor, last_seq(&logs));
    assert_eq!(cursor, 2_345);

    // One row, column by column, as PostgreSQL types it.
    let sample = &written[7];
    let stored = client
        .query_one(
            "SELECT instance_id, instance_seq, status, to_char(initial_time AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'),
                    duration_ms, model, input_tokens, total_tokens, price, http_status, stream,
                    client_id, failover_info, unpriced, first_token_time = initial_time
             FROM request_log WHERE id = $1",
            &[&sample.id],
        )
        .await
        .unwrap();
    assert_eq!(stored.get::<_, String>(0), INSTANCE);
    assert_eq!(stored.get::<_, i64>(1), 8, "the row's local seq");
    assert_eq!(stored.get::<_, String>(2), "success");
    assert_eq!(stored.get::<_, String>(3), sample.initial_time);
    assert_eq!(stored.get::<_, i64>(4), sample.duration_ms);
    assert_eq!(stored.get::<_, String>(5), sample.model);
    assert_eq!(stored.get::<_, i64>(6), sample.input_tokens);
    assert_eq!(stored.get::<_, i64>(7), sample.total_tokens);
    assert_eq!(stored.get::<_, f64>(8), sample.price);
    assert_eq!(stored.get::<_, i32>(9), 200);
    assert_eq!(stored.get::<_, bool>(10), sample.stream);
    assert_eq!(stored.get::<_, String>(11), sample.client_id);
    assert_eq!(stored.get::<_, String>(12), "[]");
    assert!(!stored.get::<_, bool>(13));
    assert!(stored.get::<_, bool>(14));

    let snapshot = status.snapshot();
    assert_eq!(snapshot.state, ShipState::CaughtUp);
    assert_eq!(snapshot.backlog_rows, 0);
    assert_eq!(snapshot.shipped_rows, 2_345);
    assert_eq!(snapshot.cursor, 2_345);
    assert!(snapshot.last_shipped_at.is_some() && snapshot.last_error.is_none());
    // Metrics are shown once a shipper runs.
    shipper.run(cancelled()).await.unwrap();
    let text = metrics.render(WriterStats::default());
    assert!(
        text.contains("\nrelaybox_log_shipped_rows_total 2345\n"),
        "{text}"
    );
    assert!(
        text.contains("\nrelaybox_log_ship_backlog_rows 0\n"),
        "{text}"
    );
    assert!(
        text.contains("\nrelaybox_log_ship_backlog_age_seconds 0\n"),
        "{text}"
    );
    assert!(
        text.contains("\nrelaybox_log_ship_errors_total 0\n"),
        "{text}"
    );
    writer.close();
}

fn cancelled() -> CancellationToken {
    let token = CancellationToken::new();
    token.cancel();
    token
}

/// Rows of two past months land in two partitions made for them, and the months ahead of
/// today exist before any of their rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_of_two_months_land_in_two_partitions() {
    let Some(db) = TestDb::create().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let logs = open_logs(dir.path());
    let mut rows: Vec<RequestLog> = (0..30)
        .map(|n| row(n, &format!("2024-01-31T23:59:{:02}.500Z", n)))
        .collect();
    rows.extend((0..20).map(|n| row(n, &format!("2024-02-01T00:00:{:02}.000Z", n))));
    logs.insert_logs(&rows).unwrap();
    let pg = Arc::new(PgStore::connect(&db.target).await.unwrap());
    let mut shipper = LogShipper::new(logs.clone(), pg, INSTANCE, quick_options());
    assert_eq!(shipper.ship_once().await.unwrap(), 50);

    let client = db.raw().await;
    let by_partition: Vec<(String, i64)> = client
        .query(
            "SELECT tableoid::regclass::text, count(*) FROM request_log GROUP BY 1 ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .into_iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    assert_eq!(
        by_partition,
        [
            ("request_log_y2024m01".to_string(), 30),
            ("request_log_y2024m02".to_string(), 20)
        ]
    );
    // This month and the two after it were created ahead.
    let mut month = relaybox::store::postgres::logs::Month::of(relaybox::domain::now());
    for _ in 0..3 {
        let exists: bool = client
            .query_one(
                "SELECT to_regclass($1) IS NOT NULL",
                &[&month.partition_name()],
            )
            .await
            .unwrap()
            .get(0);
        assert!(exists, "{} was not created ahead", month.partition_name());
        month = month.next();
    }
    // There is no default partition: a month must exist to take rows.
    let default: i64 = client
        .query_one(
            "SELECT count(*) FROM pg_partitioned_table p JOIN pg_class c ON c.oid = p.partrelid
             WHERE c.relname = 'request_log' AND p.partdefid <> 0",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(default, 0);
}

/// A month's partition dropped behind the shipper's back (its cache says it exists) is created
/// again for the next rows of that month.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_partition_is_created_again() {
    let Some(db) = TestDb::create().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let logs = open_logs(dir.path());
    logs.insert_logs(&rows_now(10)).unwrap();
    let pg = Arc::new(PgStore::connect(&db.target).await.unwrap());
    let mut shipper = LogShipper::new(logs.clone(), pg, INSTANCE, quick_options());
    assert_eq!(shipper.ship_once().await.unwrap(), 10);
    let client = db.raw().await;
    let partition: String = client
        .query_one(
            "SELECT tableoid::regclass::text FROM request_log LIMIT 1",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    client
        .batch_execute(&format!("DROP TABLE {partition}"))
        .await
        .unwrap();
    let later = rows_now(10);
    logs.insert_logs(&later).unwrap();
    assert_eq!(shipper.ship_once().await.unwrap(), 10);
    let (rows, distinct, ids) = pg_ids(&client).await;
    assert_eq!((rows, distinct), (10, 10));
    assert_eq!(
        ids,
        later.into_iter().map(|r| r.id).collect::<BTreeSet<_>>()
    );
}

/// A batch committed to PostgreSQL without the cursor moving (a crash in between) is sent
/// again by the next shipper, which starts from the cursor on disk; PostgreSQL keeps one copy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_resent_after_a_crash_before_the_cursor_moved_is_absorbed() {
    let Some(db) = TestDb::create().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let pg = Arc::new(PgStore::connect(&db.target).await.unwrap());
    {
        let logs = open_logs(dir.path());
        logs.insert_logs(&rows_now(1_500)).unwrap();
        let mut shipper = LogShipper::new(logs.clone(), Arc::clone(&pg), INSTANCE, quick_options());
        // The steps of ship_once, stopped before the cursor moves.
        let batch = shipper.next_batch().await.unwrap();
        assert_eq!(batch.len(), 1_000);
        assert_eq!(shipper.send(&batch).await.unwrap(), 1_000);
        // Sent twice in a row: nothing new.
        assert_eq!(shipper.send(&batch).await.unwrap(), 0);
        assert_eq!(logs.reader().ship_cursor(POSTGRES_SINK).unwrap(), 0);
        // "Crash": the shipper and the database handle go away.
    }
    let logs = open_logs(dir.path());
    let mut shipper = LogShipper::new(logs.clone(), pg, INSTANCE, quick_options());
    assert_eq!(
        shipper.ship_once().await.unwrap(),
        1_000,
        "the batch is sent again"
    );
    assert_eq!(shipper.ship_once().await.unwrap(), 500);
    let (rows, distinct, ids) = pg_ids(&db.raw().await).await;
    assert_eq!((rows, distinct), (1_500, 1_500));
    assert_eq!(ids, local_ids(&logs).into_iter().collect::<BTreeSet<_>>());
    assert_eq!(logs.reader().ship_cursor(POSTGRES_SINK).unwrap(), 1_500);
}

/// The cursor moves only forward and never past the last row.
#[test]
fn the_cursor_refuses_to_move_back_or_past_the_last_row() {
    let dir = tempfile::tempdir().unwrap();
    let logs = open_logs(dir.path());
    logs.insert_logs(&rows_now(10)).unwrap();
    let sink = logs.sink();
    assert_eq!(logs.reader().ship_cursor(POSTGRES_SINK).unwrap(), 0);
    sink.advance_ship_cursor(POSTGRES_SINK, 6).unwrap();
    sink.advance_ship_cursor(POSTGRES_SINK, 6).unwrap();
    let back = sink.advance_ship_cursor(POSTGRES_SINK, 5).unwrap_err();
    assert!(
        matches!(&back, StoreError::Conflict(m) if m.contains("at 6")),
        "{back}"
    );
    let past = sink.advance_ship_cursor(POSTGRES_SINK, 11).unwrap_err();
    assert!(
        matches!(&past, StoreError::Conflict(m) if m.contains("last request-log row is 10")),
        "{past}"
    );
    assert_eq!(logs.reader().ship_cursor(POSTGRES_SINK).unwrap(), 6);
    let backlog = logs.reader().backlog(POSTGRES_SINK).unwrap();
    assert_eq!((backlog.cursor, backlog.last_seq, backlog.rows), (6, 10, 4));
    // The oldest unshipped row is seq 7.
    let seventh = logs.reader().rows_after(6, 1).unwrap();
    assert_eq!(seventh[0].seq, 7);
    assert_eq!(
        backlog.oldest_initial_time.as_deref(),
        Some(seventh[0].log.initial_time.as_str())
    );
}

/// Past the cap, shipped rows go, oldest first; unshipped rows (and the row at the cursor)
/// stay, and how far they are over the cap is reported.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cap_prunes_shipped_rows_only() {
    let dir = tempfile::tempdir().unwrap();
    let logs = open_logs(dir.path());
    logs.insert_logs(&rows_now(100)).unwrap();
    let all = logs.reader().rows_after(0, 1_000).unwrap();
    logs.sink().advance_ship_cursor(POSTGRES_SINK, 60).unwrap();
    let seqs = |logs: &LogDb| -> Vec<i64> {
        logs.reader()
            .rows_after(0, 1_000)
            .unwrap()
            .into_iter()
            .map(|row| row.seq)
            .collect()
    };
    let cap = |rows| LogCap {
        max_bytes: None,
        max_rows: Some(rows),
    };
    // 100 rows, cap 50: the 50 oldest go, all of them shipped.
    let report = logs.sink().enforce_cap(POSTGRES_SINK, &cap(50)).unwrap();
    assert_eq!((report.pruned, report.kept_over_cap), (50, 0));
    assert_eq!(seqs(&logs), (51..=100).collect::<Vec<_>>());
    // Cap 10: only 51..=59 are shipped and below the cursor; the other 41 stay, 31 over.
    let report = logs.sink().enforce_cap(POSTGRES_SINK, &cap(10)).unwrap();
    assert_eq!((report.pruned, report.kept_over_cap), (9, 31));
    assert_eq!(seqs(&logs), (60..=100).collect::<Vec<_>>());
    // Every unshipped row is intact.
    let left = logs.reader().rows_after(60, 1_000).unwrap();
    assert_eq!(left, all[60..].to_vec());
    // A new row still gets a seq above the cursor.
    logs.insert_logs(&rows_now(1)).unwrap();
    assert_eq!(last_seq(&logs), 101);

    // A byte cap: the file's pages over it turn into the oldest shipped rows.
    logs.sink().advance_ship_cursor(POSTGRES_SINK, 101).unwrap();
    let report = logs
        .sink()
        .enforce_cap(
            POSTGRES_SINK,
            &LogCap {
                max_bytes: Some(1),
                max_rows: None,
            },
        )
        .unwrap();
    assert_eq!(report.pruned, 41, "all but the row at the cursor");
    assert_eq!(report.kept_over_cap, 1, "the row at the cursor is kept");
    assert_eq!(seqs(&logs), [101]);
}

/// The loop enforces the cap and reports what it cannot meet.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_loop_reports_unshipped_rows_over_the_cap() {
    let Some(db) = TestDb::create().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let logs = open_logs(dir.path());
    logs.insert_logs(&rows_now(40)).unwrap();
    let pg = Arc::new(PgStore::connect(&db.target).await.unwrap());
    let metrics = Metrics::default();
    let options = ShipOptions {
        cap: LogCap {
            max_bytes: None,
            max_rows: Some(15),
        },
        ..quick_options()
    };
    let shipper =
        LogShipper::new(logs.clone(), pg, INSTANCE, options).with_metrics(metrics.log_ship());
    let status = shipper.status();
    // The cap is checked before the first step: nothing is shipped, nothing may go.
    let cancel = CancellationToken::new();
    let tasks = Tasks::new();
    tasks.spawn("log shipper", shipper.run(cancel.clone()));
    eventually(Duration::from_secs(10), "the first step", || {
        let snapshot = status.snapshot();
        async move { (snapshot.state == ShipState::CaughtUp).then_some(()) }
    })
    .await;
    cancel.cancel();
    tasks.wait().await;
    let snapshot = status.snapshot();
    assert_eq!(snapshot.kept_over_cap, 25);
    let now = relaybox::domain::now();
    assert!(
        snapshot
            .problem(now)
            .unwrap()
            .contains("over its cap by 25 rows")
    );
    assert!(
        metrics
            .render(WriterStats::default())
            .contains("\nrelaybox_log_kept_over_cap_rows 25\n")
    );
    assert_eq!(
        logs.count_logs().unwrap(),
        40,
        "nothing unshipped was deleted"
    );
}

/// A text with NUL (which PostgreSQL text cannot hold) and an unreadable time still ship;
/// they are never a reason to hold the queue.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn odd_rows_ship_instead_of_blocking_the_queue() {
    let Some(db) = TestDb::create().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let logs = open_logs(dir.path());
    let mut nul = row(1, &now_text());
    nul.model = "evil\0model".into();
    let mut untimed = row(2, "yesterday-ish");
    untimed.complete_time = Some("later".into());
    logs.insert_logs(&[nul.clone(), untimed.clone()]).unwrap();
    let pg = Arc::new(PgStore::connect(&db.target).await.unwrap());
    let mut shipper = LogShipper::new(logs.clone(), pg, INSTANCE, quick_options());
    assert_eq!(shipper.ship_once().await.unwrap(), 2);
    let client = db.raw().await;
    let model: String = client
        .query_one("SELECT model FROM request_log WHERE id = $1", &[&nul.id])
        .await
        .unwrap()
        .get(0);
    assert_eq!(model, "evil\u{FFFD}model");
    let placed = client
        .query_one(
            "SELECT tableoid::regclass::text, complete_time IS NULL FROM request_log WHERE id = $1",
            &[&untimed.id],
        )
        .await
        .unwrap();
    assert_eq!(placed.get::<_, String>(0), "request_log_y1970m01");
    assert!(placed.get::<_, bool>(1));
}

/// PostgreSQL stopped hard while the shipper runs and rows keep being written: the shipper
/// retries without crashing and without skipping; after the restart PostgreSQL holds every
/// local row exactly once, and the cursor on disk never moved back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_stopped_hard_loses_and_duplicates_nothing() {
    let Some(mut server) = PgServer::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let logs = open_logs(dir.path());
    let writer = Arc::new(LogWriter::start(logs.clone(), WriterConfig::default()).unwrap());
    let pg = Arc::new(PgStore::connect(&server.target()).await.unwrap());
    let metrics = Metrics::default();
    let shipper = LogShipper::new(logs.clone(), pg, INSTANCE, quick_options())
        .with_metrics(metrics.log_ship());
    let status = shipper.status();
    let cancel = CancellationToken::new();
    let tasks = Tasks::new();
    tasks.spawn("log shipper", shipper.run(cancel.clone()));

    // Rows keep coming: 25 every 5 ms, from a thread of their own.
    let writing = Arc::new(AtomicBool::new(true));
    let producer = {
        let writer = Arc::clone(&writer);
        let writing = Arc::clone(&writing);
        std::thread::spawn(move || {
            let mut n = 0;
            while writing.load(Ordering::Relaxed) {
                for _ in 0..25 {
                    assert!(writer.submit(row(n, &now_text())));
                    n += 1;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            n
        })
    };
    // The cursor on disk, sampled every 5 ms for the whole story.
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = {
        let reader = logs.reader();
        let sampling = Arc::clone(&sampling);
        std::thread::spawn(move || {
            let mut samples = Vec::new();
            while sampling.load(Ordering::Relaxed) {
                samples.push(reader.ship_cursor(POSTGRES_SINK).unwrap());
                std::thread::sleep(Duration::from_millis(5));
            }
            samples
        })
    };

    eventually(
        Duration::from_secs(20),
        "rows shipped before the stop",
        || {
            let shipped = status.snapshot().shipped_rows;
            async move { (shipped >= 500).then_some(()) }
        },
    )
    .await;
    tokio::task::block_in_place(|| server.stop_immediate());
    let cursor_at_stop = status.snapshot().cursor;
    eventually(Duration::from_secs(20), "the shipper to notice", || {
        let snapshot = status.snapshot();
        async move { (snapshot.state == ShipState::Retrying).then_some(snapshot) }
    })
    .await;
    // Rows pile up locally while PostgreSQL is away, and the figures show it.
    let piled = eventually(Duration::from_secs(20), "a backlog", || {
        let snapshot = status.snapshot();
        async move { (snapshot.backlog_rows >= 1_000).then_some(snapshot) }
    })
    .await;
    assert!(piled.last_error.is_some());
    assert!(
        piled.cursor <= cursor_at_stop + 1_000,
        "at most one batch was in flight at the stop"
    );
    let text = metrics.render(WriterStats::default());
    assert!(
        !text.contains("\nrelaybox_log_ship_errors_total 0\n"),
        "{text}"
    );
    assert!(
        !text.contains("\nrelaybox_log_ship_backlog_rows 0\n"),
        "{text}"
    );

    tokio::task::block_in_place(|| server.start_again());
    writing.store(false, Ordering::Relaxed);
    let produced = producer.join().unwrap();
    writer.flush();
    let last = last_seq(&logs);
    assert_eq!(last, produced as i64, "every row was written locally");
    eventually(Duration::from_secs(60), "the backlog to drain", || {
        let snapshot = status.snapshot();
        async move {
            (snapshot.cursor == last && snapshot.backlog_rows == 0 && snapshot.last_error.is_none())
                .then_some(())
        }
    })
    .await;
    cancel.cancel();
    tasks.wait().await;
    sampling.store(false, Ordering::Relaxed);
    let mut samples = sampler.join().unwrap();
    // The sampler may have slept through the last move.
    samples.push(logs.reader().ship_cursor(POSTGRES_SINK).unwrap());
    writer.close();

    let client = connect(&server.target()).await;
    let (rows, distinct, ids) = pg_ids(&client).await;
    assert_eq!(rows, produced as i64, "PostgreSQL holds every local row");
    assert_eq!(distinct, rows, "no row twice");
    assert_eq!(ids, local_ids(&logs).into_iter().collect::<BTreeSet<_>>());
    assert!(samples.len() > 50, "the cursor was sampled during the run");
    assert!(
        samples.windows(2).all(|w| w[0] <= w[1]),
        "the cursor moved back: {samples:?}"
    );
    assert_eq!(*samples.last().unwrap(), last);
}
