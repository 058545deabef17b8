//! Cluster mode's instances, leases and singleton jobs against a real PostgreSQL
//! (tests/services.sh). Several heartbeats, lease holders and job runners in this one process
//! stand in for several instances: each has an id and a connection pool of its own.

#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(
    clippy::disallowed_methods,
    reason = "the instances this process stands in for run as plain tasks each test awaits or aborts"
)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use relaybox::cluster::heartbeat::{
    ClusterView, Heartbeat, HeartbeatOptions, Identity, InstanceReport,
};
use relaybox::cluster::jobs::{GoneInstances, JobOptions, JobRunner, JobsView, TombstoneGc};
use relaybox::domain::{ClientKey, ModelPrice};
use relaybox::limits::Clock;
use relaybox::metrics::Metrics;
use relaybox::store::postgres::instances::Beat;
use relaybox::store::postgres::leases::{FencedError, Grant};
use relaybox::store::postgres::{Base, PgStore, ResyncReason, Target};
use relaybox::store::sqlite::writer::WriterStats;
use relaybox::store::{ConfigOp, ConfigState, Expect, RecordWrite};
use serde_json::json;
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

use common::postgres::{TestDb, eventually};
use common::wait::wait_until_async;

const LONG: Duration = Duration::from_secs(30);

async fn store(db: &TestDb) -> Arc<PgStore> {
    Arc::new(PgStore::connect(&db.target).await.unwrap())
}

/// A table the fenced writes of the lease tests go to.
async fn marks_table(db: &TestDb) -> tokio_postgres::Client {
    let raw = db.raw().await;
    raw.batch_execute("CREATE TABLE marks (holder text NOT NULL, epoch bigint NOT NULL)")
        .await
        .unwrap();
    raw
}

/// Write a mark under `grant`, fenced.
async fn mark(store: &PgStore, grant: &Grant) -> Result<(), FencedError> {
    let holder = grant.holder.clone();
    let epoch = i64::try_from(grant.epoch).unwrap();
    store
        .fenced(grant, move |tx| {
            Box::pin(async move {
                tx.execute(
                    "INSERT INTO marks (holder, epoch) VALUES ($1, $2)",
                    &[&holder, &epoch],
                )
                .await?;
                Ok(())
            })
        })
        .await
}

async fn marks(raw: &tokio_postgres::Client) -> Vec<(String, i64)> {
    raw.query(
        "SELECT holder, epoch FROM marks ORDER BY epoch, holder",
        &[],
    )
    .await
    .unwrap()
    .iter()
    .map(|row| (row.get(0), row.get(1)))
    .collect()
}

fn lost(result: Result<(), FencedError>) -> u64 {
    match result {
        Err(FencedError::Lost { epoch, .. }) => epoch,
        other => panic!("expected the fenced write to be refused, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_holders_racing_for_a_lease_exactly_one_gets_it_and_renewals_keep_its_epoch() {
    let Some(db) = TestDb::create().await else {
        return;
    };
    let (a, b) = (store(&db).await, store(&db).await);
    for round in 0..20 {
        let name = format!("job-{round}");
        let (from_a, from_b) = tokio::join!(
            a.acquire_or_renew(&name, "a", LONG),
            b.acquire_or_renew(&name, "b", LONG)
        );
        let (from_a, from_b) = (from_a.unwrap(), from_b.unwrap());
        let (winner, store, loser, loser_store) = match (&from_a, &from_b) {
            (Some(grant), None) => (grant, &a, "b", &b),
            (None, Some(grant)) => (grant, &b, "a", &a),
            other => panic!("round {round}: exactly one holder expected, got {other:?}"),
        };
        assert_eq!(winner.epoch, 1, "the first holder of a lease is at epoch 1");
        // The holder renews at the same epoch; the other still cannot take it.
        let renewed = store
            .acquire_or_renew(&name, &winner.holder, LONG)
            .await
            .unwrap();
        assert_eq!(renewed.as_ref(), Some(winner));
        assert_eq!(
            loser_store
                .acquire_or_renew(&name, loser, LONG)
                .await
                .unwrap(),
            None
        );
    }
    let leases = a.leases().await.unwrap();
    assert_eq!(leases.len(), 20);
    assert!(
        leases
            .iter()
            .all(|l| l.epoch == 1 && l.expires_in_ms > 20_000)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_holder_that_stops_renewing_is_taken_over_after_expiry_and_its_fenced_write_is_refused() {
    let Some(db) = TestDb::create().await else {
        return;
    };
    let raw = marks_table(&db).await;
    let (a, b) = (store(&db).await, store(&db).await);
    let ttl = Duration::from_millis(800);
    let taken = Instant::now();
    let first = a.acquire_or_renew("job", "a", ttl).await.unwrap().unwrap();
    assert_eq!(first.epoch, 1);
    mark(&a, &first).await.unwrap();
    assert_eq!(b.acquire_or_renew("job", "b", ttl).await.unwrap(), None);

    // A pauses (no renewals); B keeps trying and gets the lease once it expired.
    let second = eventually(Duration::from_secs(10), "B to take the lease over", || {
        let b = Arc::clone(&b);
        async move { b.acquire_or_renew("job", "b", ttl).await.unwrap() }
    })
    .await;
    assert!(
        taken.elapsed() >= ttl,
        "taken over after {:?}, before the lease expired",
        taken.elapsed()
    );
    assert_eq!(second.epoch, 2, "a new holder gets the next epoch");

    // A wakes up and writes as if it still held the lease: refused, nothing written.
    assert_eq!(lost(mark(&a, &first).await), 1);
    mark(&b, &second).await.unwrap();
    assert_eq!(marks(&raw).await, vec![("a".into(), 1), ("b".into(), 2)]);
    // A can neither renew nor release B's lease.
    assert_eq!(a.acquire_or_renew("job", "a", ttl).await.unwrap(), None);
    assert!(!a.release(&first).await.unwrap());
    mark(&b, &second).await.unwrap();

    // A released lease is free at once, and its next holder gets a higher epoch.
    assert!(b.release(&second).await.unwrap());
    assert_eq!(lost(mark(&b, &second).await), 2);
    let third = a.acquire_or_renew("job", "a", ttl).await.unwrap().unwrap();
    assert_eq!(third.epoch, 3);

    // An expired lease nobody took over is not held either: its holder's writes are refused
    // until it acquires the lease again (at a new epoch).
    eventually(Duration::from_secs(10), "the lease to expire", || async {
        let row = raw
            .query_one(
                "SELECT expires_at <= now() FROM leases WHERE name = 'job'",
                &[],
            )
            .await
            .unwrap();
        row.get::<_, bool>(0).then_some(())
    })
    .await;
    assert_eq!(lost(mark(&a, &third).await), 3);
    let fourth = a.acquire_or_renew("job", "a", ttl).await.unwrap().unwrap();
    assert_eq!(fourth.epoch, 4);
    mark(&a, &fourth).await.unwrap();
    assert_eq!(
        marks(&raw).await,
        vec![
            ("a".into(), 1),
            ("b".into(), 2),
            ("b".into(), 2),
            ("a".into(), 4)
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_holder_paused_inside_its_fenced_transaction_never_commits_after_a_takeover() {
    let Some(db) = TestDb::create().await else {
        return;
    };
    let raw = marks_table(&db).await;
    let (a, b) = (store(&db).await, store(&db).await);
    let ttl = Duration::from_millis(800);
    let first = a.acquire_or_renew("job", "a", ttl).await.unwrap().unwrap();
    let (entered, inside) = tokio::sync::oneshot::channel::<()>();
    let (resume, paused) = tokio::sync::oneshot::channel::<()>();
    let paused_holder = tokio::spawn({
        let a = Arc::clone(&a);
        async move {
            a.fenced(&first, move |tx| {
                Box::pin(async move {
                    tx.execute("INSERT INTO marks VALUES ('a', 1)", &[]).await?;
                    entered.send(()).unwrap();
                    // Paused here, holding the lease row, until the test says go on.
                    paused.await.unwrap();
                    tx.execute("INSERT INTO marks VALUES ('a', 1)", &[]).await?;
                    Ok(())
                })
            })
            .await
        }
    });
    inside.await.unwrap();
    // B gets the lease once PostgreSQL ended A's idle transaction past the lease's lifetime.
    let second = eventually(Duration::from_secs(20), "B to take the lease over", || {
        let b = Arc::clone(&b);
        async move { b.acquire_or_renew("job", "b", ttl).await.unwrap() }
    })
    .await;
    assert_eq!(second.epoch, 2);
    resume.send(()).unwrap();
    let outcome = paused_holder.await.unwrap();
    assert!(
        matches!(outcome, Err(FencedError::Store(_))),
        "A's transaction must fail: {outcome:?}"
    );
    mark(&b, &second).await.unwrap();
    assert_eq!(
        marks(&raw).await,
        vec![("b".into(), 2)],
        "nothing A wrote inside its transaction was committed"
    );
}

/// One instance's heartbeat, running until its token is cancelled (a clean stop) or its task
/// is aborted (a crash).
struct Instance {
    view: ClusterView,
    report: Arc<InstanceReport>,
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Instance {
    async fn start(db: &TestDb, id: &str, options: HeartbeatOptions) -> Instance {
        let report = Arc::new(InstanceReport::default());
        let heartbeat = Heartbeat::new(
            store(db).await,
            Identity::new(id.into(), format!("host-{id}"), format!("10.0.0.1:{id}")),
            Arc::clone(&report),
            options,
        );
        let view = heartbeat.view();
        let cancel = CancellationToken::new();
        let task = tokio::spawn(heartbeat.run(cancel.clone()));
        Instance {
            view,
            report,
            cancel,
            task,
        }
    }

    async fn stop(self) {
        self.cancel.cancel();
        self.task.await.unwrap().unwrap();
    }
}

fn fast(live_within: Duration) -> HeartbeatOptions {
    HeartbeatOptions {
        interval: Duration::from_millis(100),
        live_within,
        timeout: Duration::from_secs(5),
        backoff_cap: Duration::from_millis(400),
        ..HeartbeatOptions::default()
    }
}

fn parse(text: &str) -> OffsetDateTime {
    OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeat_rows_appear_and_the_live_count_follows_instances_starting_and_stopping() {
    let Some(db) = TestDb::create().await else {
        return;
    };
    let live_within = Duration::from_secs(3);
    let metrics = Metrics::default();
    let first = Instance::start(
        &db,
        "i1",
        HeartbeatOptions {
            gauges: metrics.cluster_nodes.clone(),
            ..fast(live_within)
        },
    )
    .await;
    assert_eq!(first.view.live_instances(), 1, "itself, before any beat");
    let second = Instance::start(&db, "i2", fast(live_within)).await;
    let third = Instance::start(&db, "i3", fast(live_within)).await;
    for instance in [&first, &second, &third] {
        wait_until_async(LONG, "every instance to see three live", || {
            instance.view.live_instances() == 3
        })
        .await;
    }
    assert!(
        metrics
            .render(WriterStats::default())
            .contains("relaybox_cluster_live_instances 3\n")
    );

    // What the instance reports reaches its row.
    first.report.set_applied_rev(42);
    first.report.set_log_backlog(17, Duration::from_secs(3));
    let stale_since = Instant::now().checked_sub(Duration::from_secs(60)).unwrap();
    first.report.set_config_stale_since(Some(stale_since));
    let row = eventually(LONG, "i1's report in its row", || {
        let status = second.view.status();
        async move {
            status.instances.into_iter().find(|i| {
                i.instance_id == "i1"
                    && i.applied_rev == 42
                    && i.log_backlog_rows == 17
                    && i.config_stale_since.is_some()
            })
        }
    })
    .await;
    assert_eq!(
        (
            row.hostname.as_str(),
            row.listen.as_str(),
            row.version.as_str()
        ),
        ("host-i1", "10.0.0.1:i1", env!("CARGO_PKG_VERSION"))
    );
    assert_eq!((row.log_backlog_rows, row.log_backlog_age_seconds), (17, 3));
    let stale_for = parse(&row.last_seen) - parse(row.config_stale_since.as_deref().unwrap());
    assert!(
        (59.0..62.0).contains(&stale_for.as_seconds_f64()),
        "stale for {stale_for}"
    );
    assert!(row.live && !row.stopped);
    assert!(parse(&row.started_at) <= parse(&row.last_seen));

    // A clean stop is seen at once (well within the live window).
    let stopped = Instant::now();
    third.stop().await;
    wait_until_async(LONG, "two live after a clean stop", || {
        first.view.live_instances() == 2 && second.view.live_instances() == 2
    })
    .await;
    assert!(
        stopped.elapsed() < live_within,
        "a clean stop took {:?} to be seen",
        stopped.elapsed()
    );
    let status = first.view.status();
    let gone = status
        .instances
        .iter()
        .find(|i| i.instance_id == "i3")
        .unwrap();
    assert!(gone.stopped && !gone.live);

    // A crash (no goodbye) is seen once its last beat is older than the live window.
    let before = parse(
        &status
            .instances
            .iter()
            .find(|i| i.instance_id == "i2")
            .unwrap()
            .started_at,
    );
    let crashed = Instant::now();
    second.task.abort();
    wait_until_async(LONG, "one live after a crash", || {
        first.view.live_instances() == 1
    })
    .await;
    assert!(
        crashed.elapsed() >= live_within - Duration::from_millis(500),
        "a crashed instance stopped counting after {:?}, inside the live window",
        crashed.elapsed()
    );
    let store = store(&db).await;
    assert_eq!(store.live_instances(live_within).await.unwrap(), 1);
    assert_eq!(store.list_instances(live_within).await.unwrap().len(), 3);

    // An instance starting again counts again, with a new start time.
    let again = Instance::start(&db, "i2", fast(live_within)).await;
    wait_until_async(LONG, "two live after a restart", || {
        first.view.live_instances() == 2 && again.view.live_instances() == 2
    })
    .await;
    let restarted = store
        .list_instances(live_within)
        .await
        .unwrap()
        .into_iter()
        .find(|i| i.instance_id == "i2")
        .unwrap();
    assert!(parse(&restarted.started_at) > before);
    first.stop().await;
    again.stop().await;
}

/// The system clock shifted by a fixed offset: an instance whose clock is wrong.
struct Shifted(time::Duration);

impl Clock for Shifted {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc() + self.0
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clock_skew_against_postgres_is_measured_stored_and_alarmed() {
    let Some(db) = TestDb::create().await else {
        return;
    };
    let ahead = Instance::start(
        &db,
        "ahead",
        HeartbeatOptions {
            clock: Arc::new(Shifted(time::Duration::seconds(10))),
            ..fast(Duration::from_secs(3))
        },
    )
    .await;
    let in_line = Instance::start(&db, "in-line", fast(Duration::from_secs(3))).await;
    // The skew is stored by the beat after the one that measured it.
    let rows = eventually(LONG, "both skews stored", || {
        let status = in_line.view.status();
        async move {
            (status.instances.len() == 2
                && status.instances.iter().all(|i| i.clock_skew_ms.is_some()))
            .then_some(status.instances)
        }
    })
    .await;
    let skew = |id: &str| {
        rows.iter()
            .find(|i| i.instance_id == id)
            .unwrap()
            .clock_skew_ms
            .unwrap()
    };
    assert!(
        (9_500..10_500).contains(&skew("ahead")),
        "{}",
        skew("ahead")
    );
    assert!(skew("in-line").abs() < 500, "{}", skew("in-line"));
    let (ahead_status, in_line_status) = (ahead.view.status(), in_line.view.status());
    assert!(ahead_status.clock_skew_alarm);
    assert!((9_500..10_500).contains(&ahead_status.clock_skew_ms.unwrap()));
    assert!(!in_line_status.clock_skew_alarm);

    // Measured directly: an instance behind.
    let store = store(&db).await;
    let beat = Beat {
        instance_id: "behind".into(),
        hostname: "h".into(),
        version: "v".into(),
        listen: String::new(),
        first: true,
        applied_rev: 0,
        log_backlog_rows: 0,
        log_backlog_age: Duration::ZERO,
        clock_skew_ms: None,
        config_stale_for: None,
    };
    let measured = store
        .heartbeat(&beat, &Shifted(time::Duration::seconds(-5)))
        .await
        .unwrap();
    assert!((-5_500..-4_500).contains(&measured.millis), "{measured:?}");
    ahead.stop().await;
    in_line.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_unreachable_keeps_the_last_view_marked_stale_and_the_heartbeat_recovers() {
    let Some(db) = TestDb::create().await else {
        return;
    };
    let one = Instance::start(&db, "one", fast(Duration::from_secs(60))).await;
    let two = Instance::start(&db, "two", fast(Duration::from_secs(60))).await;
    wait_until_async(LONG, "two live", || {
        one.view.live_instances() == 2 && !one.view.status().stale
    })
    .await;
    let name = db.target.config.get_dbname().unwrap().to_string();
    // On the server's own database: a database cannot shut its own sessions out.
    let server = Target::parse(&common::postgres::server_url().unwrap()).unwrap();
    let admin = common::postgres::connect(&server).await;
    // The database refuses connections and every open one is cut: PostgreSQL is gone.
    admin
        .batch_execute(&format!(
            "ALTER DATABASE {name} ALLOW_CONNECTIONS false;
             SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE datname = '{name}' AND pid <> pg_backend_pid();"
        ))
        .await
        .unwrap();
    wait_until_async(LONG, "the view to turn stale", || {
        let status = one.view.status();
        status.stale && status.last_error.is_some()
    })
    .await;
    let status = one.view.status();
    assert_eq!(status.live_instances, 2, "the last known count is kept");
    assert_eq!(
        status.instances.len(),
        2,
        "the last known instances are kept"
    );
    assert!(!one.task.is_finished(), "the heartbeat goes on");

    admin
        .batch_execute(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true"))
        .await
        .unwrap();
    wait_until_async(LONG, "the view to be fresh again", || {
        let status = one.view.status();
        !status.stale && status.last_error.is_none() && status.live_instances == 2
    })
    .await;
    one.stop().await;
    two.stop().await;
}

fn key(id: &str, hash: &str) -> ClientKey {
    serde_json::from_value(json!({
        "id": id, "name": format!("key {id}"), "hash": hash, "displayPrefix": "rb_1a2b",
        "createdAt": "2026-01-02T03:04:05Z", "updatedAt": "2026-01-02T03:04:05Z",
    }))
    .unwrap()
}

/// Plan `ops` on `state` and commit them as one revision against that copy's versions.
async fn change(store: &PgStore, state: &mut ConfigState, ops: Vec<ConfigOp>) -> u64 {
    let mut next = state.clone();
    let writes = next.apply_ops(&ops).unwrap();
    let revision = store
        .commit_records(Base::Records(state), &writes)
        .await
        .unwrap();
    next.revision = revision;
    *state = next;
    revision
}

async fn tombstones(raw: &tokio_postgres::Client) -> Vec<(String, i64)> {
    raw.query(
        "SELECT id, rev FROM cfg_record WHERE deleted ORDER BY rev",
        &[],
    )
    .await
    .unwrap()
    .iter()
    .map(|row| (row.get(0), row.get(1)))
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tombstone_gc_removes_only_old_tombstones_raises_min_rev_and_old_copies_resync() {
    let Some(db) = TestDb::create().await else {
        return;
    };
    let store = store(&db).await;
    let raw = db.raw().await;
    let mut state = ConfigState::default();
    let created = change(
        &store,
        &mut state,
        (1..=4)
            .map(|i| ConfigOp::PutKey(key(&format!("k{i}"), &format!("h{i}")), Expect::Absent))
            .collect(),
    )
    .await;
    let old_copy = created;
    let mut deleted = Vec::new();
    for id in ["k1", "k2", "k3"] {
        deleted.push(
            change(
                &store,
                &mut state,
                vec![ConfigOp::DeleteKey(id.into(), Expect::Exists)],
            )
            .await,
        );
    }
    // k1's and k2's tombstones are 8 days old; so is the live k4 (a record, never collected).
    raw.batch_execute(
        "UPDATE cfg_record SET updated_at = now() - interval '8 days'
         WHERE id IN ('k1', 'k2', 'k4')",
    )
    .await
    .unwrap();
    let grant = store
        .acquire_or_renew("tombstone-gc", "gc", LONG)
        .await
        .unwrap()
        .unwrap();
    // A holder whose epoch is gone collects nothing.
    let stale = Grant {
        epoch: grant.epoch + 1,
        ..grant.clone()
    };
    assert!(matches!(
        store
            .collect_tombstones(&stale, TombstoneGc::DEFAULT_RETENTION)
            .await,
        Err(FencedError::Lost { .. })
    ));
    assert_eq!(tombstones(&raw).await.len(), 3);

    let collected = store
        .collect_tombstones(&grant, TombstoneGc::DEFAULT_RETENTION)
        .await
        .unwrap();
    assert_eq!(collected.removed, 2);
    assert_eq!(collected.min_rev, deleted[1] + 1);
    assert_eq!(
        tombstones(&raw).await,
        vec![("k3".into(), i64::try_from(deleted[2]).unwrap())]
    );
    let head = store.head().await.unwrap();
    assert_eq!(head.min_rev, collected.min_rev);
    let live: i64 = raw
        .query_one("SELECT count(*) FROM cfg_record WHERE NOT deleted", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(live, 1, "k4 stays");
    // Nothing more is old enough: nothing moves.
    let again = store
        .collect_tombstones(&grant, TombstoneGc::DEFAULT_RETENTION)
        .await
        .unwrap();
    assert_eq!((again.removed, again.min_rev), (0, collected.min_rev));

    // One more change, then the copies pull.
    let price = ModelPrice {
        input_price: 1.0,
        ..ModelPrice::default()
    };
    let latest = change(
        &store,
        &mut state,
        vec![ConfigOp::PutPrice("m1".into(), price, Expect::Absent)],
    )
    .await;
    let head = store.head().await.unwrap();
    // The copy from before the deletes may have missed k1's and k2's: it resyncs.
    assert_eq!(
        head.resync_reason(&head.cluster_id, old_copy),
        Some(ResyncReason::TooOld {
            applied: old_copy,
            min_rev: collected.min_rev
        })
    );
    let (_, resynced) = store.snapshot().await.unwrap();
    assert_eq!(
        resynced
            .keys
            .iter()
            .map(|(id, _)| id.clone())
            .collect::<Vec<_>>(),
        vec!["k4".to_string()]
    );
    // A copy that applied past the removed tombstones pulls page by page as before.
    let newer_copy = collected.min_rev;
    assert_eq!(head.resync_reason(&head.cluster_id, newer_copy), None);
    let page = store.changes_since(newer_copy, 100).await.unwrap();
    assert_eq!(page.through, latest);
    let pulled: Vec<(u64, bool)> = page
        .records
        .iter()
        .map(|r| (r.rev, matches!(r.write, RecordWrite::Price(..))))
        .collect();
    assert_eq!(pulled, vec![(latest, true)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tombstone_gc_racing_config_writes_never_loses_a_deletes_tombstone() {
    let Some(db) = TestDb::create().await else {
        return;
    };
    let (writer_store, gc_store) = (store(&db).await, store(&db).await);
    let done = CancellationToken::new();
    // Three writers: a writer waiting for the head row began its transaction (and stamped
    // its tombstone's updated_at) long before it commits.
    let writers = tokio::spawn({
        let store = Arc::clone(&writer_store);
        let done = done.clone();
        async move {
            let write = |writer: usize| {
                let store = Arc::clone(&store);
                async move {
                    let mut state = ConfigState::default();
                    let mut deletes = Vec::new();
                    for i in 0..40 {
                        let id = format!("w{writer}-k{i}");
                        let hash = format!("h-{id}");
                        let put = ConfigOp::PutKey(key(&id, &hash), Expect::Absent);
                        change(&store, &mut state, vec![put]).await;
                        let delete = ConfigOp::DeleteKey(id.clone(), Expect::Exists);
                        deletes.push((id, change(&store, &mut state, vec![delete]).await));
                    }
                    deletes
                }
            };
            let (a, b, c) = tokio::join!(write(0), write(1), write(2));
            done.cancel();
            [a, b, c].concat()
        }
    });
    // A copy pulling all along, as an instance does: it must end with every key deleted.
    let puller = tokio::spawn({
        let store = store(&db).await;
        let done = done.clone();
        async move {
            let mut copy = std::collections::BTreeSet::new();
            let (mut applied, mut resyncs) = (0, 0);
            loop {
                let finished = done.is_cancelled();
                let page = store.changes_since(applied, 1000).await.unwrap();
                let more = page.has_more();
                if page
                    .head
                    .resync_reason(&page.head.cluster_id, applied)
                    .is_some()
                {
                    let (head, state) = store.snapshot().await.unwrap();
                    copy = state.keys.iter().map(|(id, _)| id.clone()).collect();
                    (applied, resyncs) = (head.rev, resyncs + 1);
                } else {
                    for record in page.records {
                        match record.write {
                            RecordWrite::Key(id, Some(_)) => copy.insert(id),
                            RecordWrite::Key(id, None) => copy.remove(&id),
                            other => panic!("unexpected {other:?}"),
                        };
                    }
                    applied = page.through;
                }
                if finished && !more {
                    return (copy, resyncs);
                }
            }
        }
    });
    // Retention 0: every tombstone committed before a collection starts may go.
    let grant = gc_store
        .acquire_or_renew("tombstone-gc", "gc", LONG)
        .await
        .unwrap()
        .unwrap();
    let mut removed = 0;
    while !done.is_cancelled() {
        removed += gc_store
            .collect_tombstones(&grant, Duration::ZERO)
            .await
            .unwrap()
            .removed;
    }
    let deletes = writers.await.unwrap();
    assert!(removed > 0, "the collector ran during the writes");
    let (copy, resyncs) = puller.await.unwrap();
    assert!(
        copy.is_empty(),
        "the pulling copy still has deleted keys {copy:?} ({resyncs} resyncs)"
    );
    let head = gc_store.head().await.unwrap();
    assert!(head.min_rev > 0);
    // Every delete reaches a copy that applied the revision before it: in a pull, or by a
    // resync when its tombstone was collected.
    for (id, rev) in deletes {
        let copy = rev - 1;
        if let Some(reason) = head.resync_reason(&head.cluster_id, copy) {
            assert!(matches!(reason, ResyncReason::TooOld { .. }), "{reason}");
            continue;
        }
        let page = gc_store.changes_since(copy, 10_000).await.unwrap();
        assert!(
            page.records
                .iter()
                .any(|r| r.rev == rev
                    && matches!(&r.write, RecordWrite::Key(key, None) if *key == id)),
            "a copy at revision {copy} pulls normally but never learns that {id} was deleted at {rev} (min_rev {})",
            head.min_rev
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_gone_for_a_day_are_removed_under_the_lease() {
    let Some(db) = TestDb::create().await else {
        return;
    };
    let store = store(&db).await;
    let raw = db.raw().await;
    for id in ["gone", "here"] {
        let beat = Beat {
            instance_id: id.into(),
            hostname: "h".into(),
            version: "v".into(),
            listen: String::new(),
            first: true,
            applied_rev: 0,
            log_backlog_rows: 0,
            log_backlog_age: Duration::ZERO,
            clock_skew_ms: None,
            config_stale_for: None,
        };
        store
            .heartbeat(&beat, &relaybox::limits::SystemClock)
            .await
            .unwrap();
    }
    raw.batch_execute(
        "UPDATE instances SET last_seen = now() - interval '25 hours' WHERE instance_id = 'gone'",
    )
    .await
    .unwrap();
    let grant = store
        .acquire_or_renew("gone-instances", "me", LONG)
        .await
        .unwrap()
        .unwrap();
    let day = Duration::from_secs(24 * 3600);
    let stale = Grant {
        holder: "someone-else".into(),
        ..grant.clone()
    };
    assert!(matches!(
        store.remove_gone_instances(&stale, day).await,
        Err(FencedError::Lost { .. })
    ));
    assert_eq!(store.remove_gone_instances(&grant, day).await.unwrap(), 1);
    let left: Vec<String> = store
        .list_instances(Duration::from_secs(15))
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.instance_id)
        .collect();
    assert_eq!(left, vec!["here".to_string()]);
}

fn held(view: &JobsView, job: &str) -> Option<u64> {
    view.status()
        .into_iter()
        .find(|j| j.name == job)
        .and_then(|j| j.epoch)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_instance_runs_the_singleton_jobs_and_a_clean_stop_hands_them_over_at_once() {
    let Some(db) = TestDb::create().await else {
        return;
    };
    let raw = db.raw().await;
    // An old tombstone and an instance gone for two days wait for the jobs.
    let setup = store(&db).await;
    let mut state = ConfigState::default();
    change(
        &setup,
        &mut state,
        vec![ConfigOp::PutKey(key("k1", "h1"), Expect::Absent)],
    )
    .await;
    change(
        &setup,
        &mut state,
        vec![ConfigOp::DeleteKey("k1".into(), Expect::Exists)],
    )
    .await;
    raw.batch_execute(
        "UPDATE cfg_record SET updated_at = now() - interval '8 days';
         INSERT INTO instances (instance_id, hostname, version, last_seen)
         VALUES ('gone', 'h', 'v', now() - interval '2 days');",
    )
    .await
    .unwrap();

    let ttl = Duration::from_secs(5);
    let start = |id: &'static str, metrics: &Metrics| {
        let options = JobOptions {
            tick: Duration::from_millis(100),
            ttl,
            timeout: Duration::from_secs(5),
            backoff_cap: Duration::from_millis(400),
            gauges: metrics.cluster_nodes.clone(),
        };
        let db = &db;
        async move {
            let runner = JobRunner::new(store(db).await, id.into(), options)
                .with_job(TombstoneGc {
                    every: Duration::from_millis(200),
                    ..TombstoneGc::default()
                })
                .with_job(GoneInstances {
                    every: Duration::from_millis(200),
                    ..GoneInstances::default()
                });
            let view = runner.view();
            let cancel = CancellationToken::new();
            let task = tokio::spawn(runner.run(cancel.clone()));
            (view, cancel, task)
        }
    };
    let (metrics_a, metrics_b) = (Metrics::default(), Metrics::default());
    let (view_a, cancel_a, task_a) = start("a", &metrics_a).await;
    let (view_b, cancel_b, task_b) = start("b", &metrics_b).await;

    let jobs = ["tombstone-gc", "gone-instances"];
    eventually(LONG, "the jobs to have run", || async {
        for job in jobs {
            assert!(
                held(&view_a, job).is_none() || held(&view_b, job).is_none(),
                "both instances hold {job}"
            );
        }
        let left: i64 = raw
            .query_one(
                "SELECT (SELECT count(*) FROM cfg_record) + (SELECT count(*) FROM instances)",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        let all_held = jobs
            .iter()
            .all(|job| held(&view_a, job).is_some() || held(&view_b, job).is_some());
        (left == 0 && all_held).then_some(())
    })
    .await;
    assert_eq!(setup.head().await.unwrap().min_rev, 3);

    // Whoever holds the tombstone job: stop it cleanly; the other takes over at once.
    let job = "tombstone-gc";
    let (holder_view, holder_metrics, holder_cancel, holder_task, other_view, other_metrics) =
        if held(&view_a, job).is_some() {
            (view_a, &metrics_a, cancel_a, task_a, view_b, &metrics_b)
        } else {
            (view_b, &metrics_b, cancel_b, task_b, view_a, &metrics_a)
        };
    let epoch = held(&holder_view, job).unwrap();
    let rendered = holder_metrics.render(WriterStats::default());
    assert!(
        rendered.contains("relaybox_cluster_lease_held{job=\"tombstone-gc\"} 1\n"),
        "{rendered}"
    );
    assert!(
        other_metrics
            .render(WriterStats::default())
            .contains("relaybox_cluster_lease_held{job=\"tombstone-gc\"} 0\n")
    );
    let stopped = Instant::now();
    holder_cancel.cancel();
    holder_task.await.unwrap().unwrap();
    wait_until_async(LONG, "the other instance to take the job over", || {
        held(&other_view, job).is_some()
    })
    .await;
    assert!(
        stopped.elapsed() < ttl - Duration::from_secs(1),
        "took {:?}: the lease was not released",
        stopped.elapsed()
    );
    assert!(held(&other_view, job).unwrap() > epoch);
    assert!(
        other_metrics
            .render(WriterStats::default())
            .contains("relaybox_cluster_lease_held{job=\"tombstone-gc\"} 1\n")
    );
    let status = other_view.status();
    assert!(status.iter().all(|j| j.last_error.is_none()), "{status:?}");
}
