//! Budgets, quotas and rate limits shared by the instances of a cluster, against a real
//! PostgreSQL (tests/services.sh): each "instance" is a Limiter with its own PgStore and
//! BudgetSync on one database, as `relaybox serve` runs them.

#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(
    clippy::disallowed_methods,
    reason = "the load generators are tasks of the test"
)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use relaybox::cluster::budgets::BudgetSync;
use relaybox::domain::key::{KeyLimits, WindowLimit};
use relaybox::domain::{Channel, ClientKey};
use relaybox::limits::{Limiter, ManualClock, SystemClock};
use relaybox::store::postgres::counters::{CounterRow, FINE_SECONDS, Scope};
use relaybox::store::postgres::{PgStore, Target};
use serde_json::json;
use time::OffsetDateTime;
use time::macros::datetime;
use tokio_util::sync::CancellationToken;

use common::postgres::TestDb;
use common::tcp_proxy::TcpProxy;
use common::wait::wait_until_async;

fn key(id: &str, limits: KeyLimits) -> Arc<ClientKey> {
    let mut key: ClientKey = serde_json::from_value(json!({
        "id": id, "name": id, "hash": format!("hash-{id}"), "displayPrefix": "rb_",
        "createdAt": "2026-01-01T00:00:00Z", "updatedAt": "2026-01-01T00:00:00Z",
    }))
    .unwrap();
    key.limits = limits;
    Arc::new(key)
}

fn channel(fields: serde_json::Value) -> Channel {
    let mut value = json!({"id": "c1", "pool": "messages", "name": "c", "serviceType": "claude", "baseUrl": "https://x"});
    value
        .as_object_mut()
        .unwrap()
        .extend(fields.as_object().unwrap().clone());
    serde_json::from_value(value).unwrap()
}

/// One instance: its limiter, its own connection pool and its sync loop (not started).
async fn instance(
    target: &Target,
    id: &str,
    limiter: Arc<Limiter>,
    interval: Duration,
) -> BudgetSync {
    let store = Arc::new(PgStore::connect(target).await.unwrap());
    BudgetSync::new(limiter, store, id, interval)
}

fn system_limiter() -> Arc<Limiter> {
    Limiter::new(Arc::new(SystemClock))
}

async fn sum(db: &TestDb, sql: &str) -> i64 {
    db.raw().await.query_one(sql, &[]).await.unwrap().get(0)
}

/// What one instance's load generator saw.
#[derive(Default)]
struct Admitted {
    /// When each admitted request started.
    at: Vec<Instant>,
}

/// The load on each instance: `workers` clients, each trying a request, holding it `hold` (in
/// flight; its cost is recorded when it ends), then pausing `pause`, for `duration`.
#[derive(Clone, Copy)]
struct Load {
    workers: usize,
    hold: Duration,
    pause: Duration,
    cost: f64,
    duration: Duration,
}

fn load(
    limiter: &Arc<Limiter>,
    key: &Arc<ClientKey>,
    load: Load,
    until: Instant,
) -> Vec<tokio::task::JoinHandle<Admitted>> {
    let Load {
        workers,
        hold,
        pause,
        cost,
        ..
    } = load;
    (0..workers)
        .map(|_| {
            let (limiter, key) = (Arc::clone(limiter), Arc::clone(key));
            tokio::spawn(async move {
                let mut admitted = Admitted::default();
                while Instant::now() < until {
                    if let Ok(permit) = limiter.admit_key(&key) {
                        admitted.at.push(Instant::now());
                        let started = limiter.now();
                        if !hold.is_zero() {
                            tokio::time::sleep(hold).await;
                        }
                        limiter.record_key_usage(&key, started, 10, cost);
                        drop(permit);
                    }
                    tokio::time::sleep(pause).await;
                }
                admitted
            })
        })
        .collect()
}

/// Three instances, parallel load on one key, the loops running: when each instance admitted
/// its requests.
async fn three_under_load(
    db: &TestDb,
    key: &Arc<ClientKey>,
    interval: Duration,
    per_instance: Load,
) -> Vec<Vec<Instant>> {
    let cancel = CancellationToken::new();
    let mut limiters = Vec::new();
    let mut loops = Vec::new();
    let mut handles = Vec::new();
    for name in ["a", "b", "c"] {
        let limiter = system_limiter();
        let sync = instance(&db.target, name, Arc::clone(&limiter), interval).await;
        handles.push(sync.handle());
        loops.push(tokio::spawn(sync.run(cancel.clone())));
        limiters.push(limiter);
    }
    // Every loop has synced once (all empty) before the load starts.
    wait_until_async(
        Duration::from_secs(10),
        "a first sync of each instance",
        || handles.iter().all(|h| h.status().in_sync()),
    )
    .await;
    let until = Instant::now() + per_instance.duration;
    let generators: Vec<_> = limiters
        .iter()
        .map(|limiter| load(limiter, key, per_instance, until))
        .collect();
    let mut admitted = Vec::new();
    for workers in generators {
        let mut at = Vec::new();
        for worker in workers {
            at.extend(worker.await.unwrap().at);
        }
        admitted.push(at);
    }
    // Stopping publishes each instance's last figures.
    cancel.cancel();
    for handle in loops {
        handle.await.unwrap().unwrap();
    }
    for handle in &handles {
        assert_eq!(handle.status().errors_total, 0, "{:?}", handle.status());
    }
    admitted
}

/// The instant the cluster's `budget`-th request was admitted.
fn reached(admitted: &[Vec<Instant>], budget: usize) -> Instant {
    let mut all: Vec<Instant> = admitted.iter().flatten().copied().collect();
    all.sort();
    all[budget - 1]
}

/// Instances sync every T = 200 ms. Once the cluster has admitted B requests, each instance
/// learns it within 2T (the spender publishes within T, the others read within T) plus the
/// time a sync itself takes: after that nobody admits, and the overshoot is at most what the
/// cluster admits in that time (N instances × r requests/s × (2T + sync time)).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_requests_budget_shared_by_three_instances_overshoots_at_most_two_intervals_of_traffic() {
    let Some(db) = TestDb::create().await else {
        return;
    };
    const BUDGET: usize = 600;
    const N: usize = 3;
    let interval = Duration::from_millis(200);
    let pause = Duration::from_millis(5); // at most 200 requests/s per instance
    let rate = 1.0 / pause.as_secs_f64();
    // Two intervals, plus half a second for the syncs themselves on a busy 2-core machine.
    let staleness = interval * 2 + Duration::from_millis(500);
    let key = key(
        "k-requests",
        KeyLimits {
            requests_per_window: Some(WindowLimit {
                limit: BUDGET as f64,
                window_seconds: 3600,
            }),
            ..KeyLimits::default()
        },
    );
    let admitted = three_under_load(
        &db,
        &key,
        interval,
        Load {
            workers: 1,
            hold: Duration::ZERO,
            pause,
            cost: 0.0,
            duration: Duration::from_millis(3500),
        },
    )
    .await;
    let total: usize = admitted.iter().map(Vec::len).sum();
    let overshoot = total.saturating_sub(BUDGET);
    let bound = (N as f64 * rate * staleness.as_secs_f64()).ceil() as usize;
    eprintln!(
        "requests budget {BUDGET}, 3 instances, T = {interval:?}: admitted {total} (per instance {:?}), overshoot {overshoot}, bound {bound}",
        admitted.iter().map(Vec::len).collect::<Vec<_>>()
    );
    assert!(total >= BUDGET, "the budget was under-used: {total}");
    assert!(overshoot <= bound, "overshoot {overshoot} > bound {bound}");
    // Nobody admitted anything later than the stated staleness after the budget was reached.
    let at = reached(&admitted, BUDGET);
    let last = admitted.iter().flatten().max().unwrap();
    assert!(
        last.duration_since(at) <= staleness,
        "an instance admitted {:?} after the budget was reached",
        last.duration_since(at)
    );
    // PostgreSQL holds every instance's absolute count: their sum is what was admitted.
    assert_eq!(
        sum(
            &db,
            "SELECT sum(requests)::int8 FROM usage_counter WHERE scope = 'key_minute'"
        )
        .await,
        total as i64
    );
    assert_eq!(
        sum(&db, "SELECT count(DISTINCT instance_id) FROM usage_counter").await,
        3
    );
}

/// A cost budget: a request's cost is known when it ends, so the requests in flight when the
/// budget is reached add to the two intervals of traffic (C = 2 per instance here).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cost_budget_shared_by_three_instances_overshoots_at_most_two_intervals_plus_in_flight() {
    let Some(db) = TestDb::create().await else {
        return;
    };
    const BUDGET: f64 = 100.0;
    const COST: f64 = 0.25; // 400 requests' worth
    const N: f64 = 3.0;
    const WORKERS: usize = 2;
    let interval = Duration::from_millis(200);
    let hold = Duration::from_millis(20);
    // Each worker sends at most one request per `hold`.
    let rate = WORKERS as f64 / hold.as_secs_f64();
    let staleness = interval * 2 + Duration::from_millis(500);
    let key = key(
        "k-cost",
        KeyLimits {
            cost_total: Some(BUDGET),
            ..KeyLimits::default()
        },
    );
    let admitted = three_under_load(
        &db,
        &key,
        interval,
        Load {
            workers: WORKERS,
            hold,
            pause: Duration::from_millis(1),
            cost: COST,
            duration: Duration::from_secs(3),
        },
    )
    .await;
    let total = admitted.iter().map(Vec::len).sum::<usize>() as f64 * COST;
    let bound = COST * (N * rate * staleness.as_secs_f64() + N * WORKERS as f64);
    eprintln!(
        "cost budget ${BUDGET}, 3 instances, T = {interval:?}: spent ${total}, overshoot ${}, bound ${bound}",
        total - BUDGET
    );
    assert!(total >= BUDGET, "the budget was under-used: {total}");
    assert!(
        total - BUDGET <= bound,
        "overshoot {} > {bound}",
        total - BUDGET
    );
    assert_eq!(
        sum(
            &db,
            "SELECT sum(cost_micros)::int8 FROM usage_counter WHERE scope = 'key_total'"
        )
        .await,
        (total * 1e6).round() as i64
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_spending_on_one_instance_is_refused_on_another_after_one_sync() {
    let Some(db) = TestDb::create().await else {
        return;
    };
    let (a_limits, b_limits) = (system_limiter(), system_limiter());
    let mut a = instance(
        &db.target,
        "a",
        Arc::clone(&a_limits),
        Duration::from_secs(2),
    )
    .await;
    let mut b = instance(
        &db.target,
        "b",
        Arc::clone(&b_limits),
        Duration::from_secs(2),
    )
    .await;
    let requests = key(
        "k-window",
        KeyLimits {
            requests_per_window: Some(WindowLimit {
                limit: 5.0,
                window_seconds: 3600,
            }),
            ..KeyLimits::default()
        },
    );
    let daily = key(
        "k-daily",
        KeyLimits {
            cost_per_day: Some(1.0),
            ..KeyLimits::default()
        },
    );
    for _ in 0..5 {
        drop(a_limits.admit_key(&requests).unwrap());
    }
    let permit = a_limits.admit_key(&daily).unwrap();
    a_limits.record_key_usage(&daily, a_limits.now(), 1000, 1.0);
    drop(permit);
    assert_eq!(
        a_limits.admit_key(&requests).unwrap_err().limit,
        "requests_per_window"
    );
    assert_eq!(
        a_limits.admit_key(&daily).unwrap_err().limit,
        "cost_per_day"
    );
    // B has not heard of it yet.
    drop(b_limits.admit_key(&requests).unwrap());
    // One sync each: A publishes, B reads.
    a.sync_once().await.unwrap();
    b.sync_once().await.unwrap();
    let refusal = b_limits.admit_key(&requests).unwrap_err();
    assert_eq!(refusal.limit, "requests_per_window");
    assert_eq!(
        b_limits.admit_key(&daily).unwrap_err().limit,
        "cost_per_day"
    );
    let usage = b_limits.key_usage(&requests);
    assert!((usage.windows[0].used - 6.0).abs() < 1e-9, "{usage:?}");
    assert!((b_limits.key_usage(&daily).cost_today - 1.0).abs() < 1e-9);
    // And B's one request reaches A the same way.
    b.sync_once().await.unwrap();
    a.sync_once().await.unwrap();
    assert!((a_limits.key_usage(&requests).windows[0].used - 6.0).abs() < 1e-9);
    assert!(
        b.handle().status().remote_rows > 0,
        "{:?}",
        b.handle().status()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_and_concurrency_limits_are_divided_by_the_live_instances() {
    let Some(db) = TestDb::create().await else {
        return;
    };
    let clock = Arc::new(ManualClock::new(datetime!(2026-11-21 10:00:00 UTC)));
    let limiter = Limiter::new(clock.clone());
    let live = Arc::new(AtomicUsize::new(1));
    let seen = Arc::clone(&live);
    let mut sync = instance(
        &db.target,
        "a",
        Arc::clone(&limiter),
        Duration::from_secs(2),
    )
    .await
    .with_live_instances(move || seen.load(Ordering::Relaxed));
    let key = key(
        "k-rate",
        KeyLimits {
            requests_per_minute: Some(6),
            concurrent_requests: Some(3),
            ..KeyLimits::default()
        },
    );
    let rated = channel(json!({"rateLimitRpm": 6}));
    // (live instances, requests per minute here, concurrent requests here)
    for (instances, rpm_share, concurrency_share) in [(1, 6, 3), (2, 3, 2), (3, 2, 1), (1, 6, 3)] {
        live.store(instances, Ordering::Relaxed);
        sync.sync_once().await.unwrap();
        assert_eq!(limiter.live_instances(), instances);
        assert_eq!(sync.handle().status().live_instances, instances);
        let permits: Vec<_> = (0..concurrency_share)
            .map(|_| limiter.admit_key(&key).unwrap())
            .collect();
        let refusal = limiter.admit_key(&key).unwrap_err();
        assert_eq!(
            refusal.limit, "concurrent_requests",
            "{instances} instances"
        );
        drop(permits);
        for _ in concurrency_share..rpm_share {
            drop(limiter.admit_key(&key).unwrap());
        }
        let refusal = limiter.admit_key(&key).unwrap_err();
        assert_eq!(
            refusal.limit, "requests_per_minute",
            "{instances} instances"
        );
        if instances > 1 {
            assert!(
                refusal.message.contains(&format!(
                    "across {instances} instances ({rpm_share} on this one)"
                )),
                "{}",
                refusal.message
            );
        }
        // The channel's rateLimitRpm the same way.
        for _ in 0..rpm_share {
            limiter.acquire_channel_slot(&rated, 0).await.unwrap();
        }
        let refused = limiter.acquire_channel_slot(&rated, 0).await.unwrap_err();
        assert!(
            refused.contains("rate limit of 6 requests per minute"),
            "{refused}"
        );
        clock.advance(time::Duration::minutes(1));
    }
}

/// The instance whose PostgreSQL goes away (its port closes) keeps the others' last figures,
/// keeps its own unpublished usage, backs off, and catches up when PostgreSQL is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_unreachable_keeps_the_last_sums_and_catches_up_afterwards() {
    let Some(db) = TestDb::create().await else {
        return;
    };
    let server = {
        let host = match &db.target.config.get_hosts()[0] {
            tokio_postgres::config::Host::Tcp(host) => host.clone(),
            other => panic!("the test server is reached over TCP, not {other:?}"),
        };
        let port = db
            .target
            .config
            .get_ports()
            .first()
            .copied()
            .unwrap_or(5432);
        tokio::net::lookup_host((host.as_str(), port))
            .await
            .unwrap()
            .next()
            .unwrap()
    };
    let proxy = TcpProxy::start(server).await;
    let through_proxy = Target::parse(&format!(
        "postgres://{}@{}/{}",
        db.target.config.get_user().unwrap(),
        proxy.addr,
        db.target.config.get_dbname().unwrap()
    ))
    .unwrap();
    let (a_limits, b_limits) = (system_limiter(), system_limiter());
    let mut a = instance(
        &db.target,
        "a",
        Arc::clone(&a_limits),
        Duration::from_secs(2),
    )
    .await;
    let errors = Arc::new(AtomicU64::new(0));
    let mut b = instance(
        &through_proxy,
        "b",
        Arc::clone(&b_limits),
        Duration::from_millis(100),
    )
    .await
    .with_error_counter(Arc::clone(&errors));
    let key = key(
        "k-outage",
        KeyLimits {
            requests_per_window: Some(WindowLimit {
                limit: 10.0,
                window_seconds: 3600,
            }),
            ..KeyLimits::default()
        },
    );
    for _ in 0..6 {
        drop(a_limits.admit_key(&key).unwrap());
    }
    a.sync_once().await.unwrap();
    b.sync_once().await.unwrap();

    proxy.cut().await;
    let failed = b.sync_once().await.unwrap_err();
    eprintln!("with its port closed: {failed}");
    let status = b.handle().status();
    assert_eq!(status.consecutive_failures, 1);
    assert!(status.last_error.is_some() && status.last_error_at.is_some());
    assert_eq!(errors.load(Ordering::Relaxed), 1);
    // A's 6 still count on B: 4 more, then refused.
    for _ in 0..4 {
        drop(b_limits.admit_key(&key).unwrap());
    }
    assert_eq!(
        b_limits.admit_key(&key).unwrap_err().limit,
        "requests_per_window"
    );
    // The loop keeps trying (backing off) and never gives up.
    let cancel = CancellationToken::new();
    let handle = b.handle();
    let running = tokio::spawn(b.run(cancel.clone()));
    wait_until_async(Duration::from_secs(10), "two more failed syncs", || {
        handle.status().consecutive_failures >= 3
    })
    .await;
    assert!(handle.status().unpublished_rows > 0, "B's own usage waits");
    assert!(!running.is_finished());
    assert!(errors.load(Ordering::Relaxed) >= 3);

    proxy.restore().await;
    wait_until_async(Duration::from_secs(10), "B in sync again", || {
        handle.status().in_sync()
    })
    .await;
    assert_eq!(handle.status().unpublished_rows, 0);
    // What B admitted during the outage reaches A.
    a.sync_once().await.unwrap();
    assert!((a_limits.key_usage(&key).windows[0].used - 10.0).abs() < 1e-9);
    assert!(a_limits.admit_key(&key).is_err());
    cancel.cancel();
    running.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channel_quotas_are_shared_the_same_way() {
    let Some(db) = TestDb::create().await else {
        return;
    };
    let (a_limits, b_limits) = (system_limiter(), system_limiter());
    let mut a = instance(
        &db.target,
        "a",
        Arc::clone(&a_limits),
        Duration::from_secs(2),
    )
    .await;
    let mut b = instance(
        &db.target,
        "b",
        Arc::clone(&b_limits),
        Duration::from_secs(2),
    )
    .await;
    let now = a_limits.now();
    let fixed = channel(json!({
        "id": "fixed", "quotaType": "requests", "quotaLimit": 5.0,
        "quotaResetAt": "2026-01-01T00:00:00Z", "quotaResetInterval": 1, "quotaResetUnit": "days"
    }));
    let rolling = channel(json!({
        "id": "rolling", "quotaType": "credit", "quotaLimit": 1.0,
        "quotaResetInterval": 5, "quotaResetUnit": "hours", "quotaResetMode": "rolling"
    }));
    for limits in [&a_limits, &b_limits] {
        limits.seed_channel(&fixed, 0.0, None, &[]);
        limits.seed_channel(&rolling, 0.0, None, &[]);
    }
    for _ in 0..3 {
        a_limits.record_channel_usage(&fixed, "claude-x", now, 0.0);
    }
    for _ in 0..2 {
        b_limits.record_channel_usage(&fixed, "claude-x", now, 0.0);
    }
    a_limits.record_channel_usage(&rolling, "claude-x", now, 0.5);
    b_limits.record_channel_usage(&rolling, "claude-x", now, 0.5);
    // Each alone is under its quotas.
    for limits in [&a_limits, &b_limits] {
        assert!(limits.channel_quota_check(&fixed).is_ok());
        assert!(limits.channel_quota_check(&rolling).is_ok());
    }
    a.sync_once().await.unwrap();
    b.sync_once().await.unwrap();
    a.sync_once().await.unwrap();
    for limits in [&a_limits, &b_limits] {
        let fixed_refusal = limits.channel_quota_check(&fixed).unwrap_err();
        assert!(fixed_refusal.contains("5 of 5"), "{fixed_refusal}");
        let rolling_refusal = limits.channel_quota_check(&rolling).unwrap_err();
        assert!(rolling_refusal.contains("1 of 1"), "{rolling_refusal}");
        let usage = limits.channel_usage(&fixed).quota.unwrap();
        assert!((usage.used - 5.0).abs() < 1e-9);
    }
}

fn row(
    scope: Scope,
    subject: &str,
    bucket: i64,
    requests: i64,
    ends_at: Option<i64>,
) -> CounterRow {
    CounterRow {
        scope,
        subject: subject.into(),
        bucket,
        requests,
        tokens: 0,
        cost_micros: requests * 1000,
        ends_at,
    }
}

/// The store on its own: absolute upserts, others' sums, old minutes folded into hours, pruning.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_are_absolute_per_instance_summed_over_the_others_and_pruned() {
    let Some(db) = TestDb::create().await else {
        return;
    };
    let store = PgStore::connect(&db.target).await.unwrap();
    let counters = store.counters();
    let now = OffsetDateTime::now_utc();
    let minute = now.unix_timestamp().div_euclid(60);
    let mine = [
        row(Scope::KeyMinute, "k", minute, 3, Some((minute + 1) * 60)),
        row(Scope::KeyTotal, "k", 0, 3, None),
    ];
    counters.publish("a", &mine).await.unwrap();
    // Publishing the same absolute figures again changes nothing; new figures replace them.
    counters.publish("a", &mine).await.unwrap();
    counters
        .publish(
            "b",
            &[row(
                Scope::KeyMinute,
                "k",
                minute,
                4,
                Some((minute + 1) * 60),
            )],
        )
        .await
        .unwrap();
    counters
        .publish(
            "c",
            &[row(
                Scope::KeyMinute,
                "k",
                minute,
                5,
                Some((minute + 1) * 60),
            )],
        )
        .await
        .unwrap();
    counters
        .publish(
            "c",
            &[row(
                Scope::KeyMinute,
                "k",
                minute,
                6,
                Some((minute + 1) * 60),
            )],
        )
        .await
        .unwrap();
    let since = now - time::Duration::hours(1);
    let seen_by_a = counters.others("a", since, now).await.unwrap();
    assert_eq!(
        seen_by_a,
        vec![row(
            Scope::KeyMinute,
            "k",
            minute,
            10,
            Some((minute + 1) * 60)
        )]
    );
    let seen_by_b = counters.others("b", since, now).await.unwrap();
    assert_eq!(seen_by_b.len(), 2);
    assert_eq!(
        seen_by_b[0],
        row(Scope::KeyMinute, "k", minute, 9, Some((minute + 1) * 60))
    );
    assert_eq!(seen_by_b[1], row(Scope::KeyTotal, "k", 0, 3, None));
    assert_eq!(sum(&db, "SELECT count(*) FROM usage_counter").await, 4);

    // Minutes older than FINE_SECONDS come back one row per hour (as its last minute).
    let old_hour = (now.unix_timestamp() - FINE_SECONDS - 7200).div_euclid(3600);
    let old: Vec<CounterRow> = (0..60)
        .map(|m| {
            let bucket = old_hour * 60 + m;
            row(Scope::KeyMinute, "old", bucket, 1, Some((bucket + 1) * 60))
        })
        .collect();
    counters.publish("b", &old).await.unwrap();
    let seen = counters
        .others("a", now - time::Duration::days(1), now)
        .await
        .unwrap();
    let folded: Vec<_> = seen.iter().filter(|r| r.subject == "old").collect();
    assert_eq!(
        folded,
        vec![&row(
            Scope::KeyMinute,
            "old",
            old_hour * 60 + 59,
            60,
            Some((old_hour + 1) * 3600)
        )]
    );
    // Buckets that ended before `since` are not read at all.
    let recent = counters
        .others("a", now - time::Duration::minutes(30), now)
        .await
        .unwrap();
    assert!(recent.iter().all(|r| r.subject != "old"));

    // Pruning removes what ended, never totals.
    let pruned = counters
        .prune_before(now - time::Duration::minutes(30))
        .await
        .unwrap();
    assert_eq!(pruned, 60);
    let pruned = counters
        .prune_before(now + time::Duration::minutes(5))
        .await
        .unwrap();
    assert_eq!(pruned, 3);
    assert_eq!(
        sum(
            &db,
            "SELECT count(*) FROM usage_counter WHERE scope = 'key_total'"
        )
        .await,
        1
    );
    assert_eq!(sum(&db, "SELECT count(*) FROM usage_counter").await, 1);
}
