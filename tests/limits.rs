//! Every limit at its boundary (exactly N allowed, N+1 refused) and after its reset, with a
//! hand-moved clock instead of sleeps; and the counters rebuilt from a real logs.sqlite.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

mod common;

use std::sync::Arc;

use common::wait::wait_until_async;
use relaybox::domain::key::{KeyLimits, WindowLimit};
use relaybox::domain::{Channel, ClientKey};
use relaybox::limits::{Clock as _, Limiter, ManualClock};
use relaybox::store::sqlite::{LogDb, OpenOptions, RequestLog};
use serde_json::json;
use time::Duration;
use time::macros::datetime;

fn key(limits: KeyLimits) -> ClientKey {
    serde_json::from_value(json!({
        "id": "k1", "name": "k", "hash": "00", "displayPrefix": "cr_…",
        "createdAt": "2026-01-01T00:00:00Z", "updatedAt": "2026-01-01T00:00:00Z",
        "limits": serde_json::to_value(limits).unwrap()
    }))
    .unwrap()
}

fn channel(extra: serde_json::Value) -> Channel {
    let mut value = json!({"id": "c1", "pool": "messages", "name": "c", "serviceType": "claude", "baseUrl": "https://x"});
    value
        .as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    serde_json::from_value(value).unwrap()
}

fn limiter() -> (Arc<Limiter>, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(datetime!(2026-11-21 10:00:00 UTC)));
    (Limiter::new(clock.clone()), clock)
}

#[test]
fn requests_per_minute() {
    let (limiter, clock) = limiter();
    let key = key(KeyLimits {
        requests_per_minute: Some(3),
        ..KeyLimits::default()
    });
    for _ in 0..3 {
        drop(limiter.admit_key(&key).expect("within the limit"));
    }
    let refusal = limiter.admit_key(&key).unwrap_err();
    assert_eq!(refusal.limit, "requests_per_minute");
    assert!(refusal.message.contains("3 requests per minute"));
    let wait = refusal.retry_after.unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    clock.advance(Duration::seconds(59));
    assert!(limiter.admit_key(&key).is_err(), "still inside the minute");
    clock.advance(Duration::seconds(1));
    assert!(
        limiter.admit_key(&key).is_ok(),
        "a minute later it is allowed again"
    );
}

#[test]
fn concurrent_requests_are_released_by_dropping_the_permit() {
    let (limiter, _) = limiter();
    let key = key(KeyLimits {
        concurrent_requests: Some(2),
        ..KeyLimits::default()
    });
    let first = limiter.admit_key(&key).unwrap();
    let _second = limiter.admit_key(&key).unwrap();
    let refusal = limiter.admit_key(&key).unwrap_err();
    assert_eq!(
        (refusal.limit, refusal.retry_after),
        ("concurrent_requests", Some(1))
    );
    assert_eq!(limiter.key_usage(&key).in_flight, 2);
    drop(first);
    assert!(limiter.admit_key(&key).is_ok());
}

#[test]
fn token_and_request_windows() {
    let (limiter, clock) = limiter();
    let key = key(KeyLimits {
        tokens_per_window: Some(WindowLimit {
            limit: 100.0,
            window_seconds: 3600,
        }),
        requests_per_window: Some(WindowLimit {
            limit: 3.0,
            window_seconds: 600,
        }),
        ..KeyLimits::default()
    });
    let start = clock.now();
    drop(limiter.admit_key(&key).unwrap());
    limiter.record_key_usage(&key, start, 60, 0.0);
    drop(limiter.admit_key(&key).unwrap());
    limiter.record_key_usage(&key, start, 39, 0.0);
    drop(
        limiter
            .admit_key(&key)
            .expect("99 of 100 tokens used: allowed"),
    );
    limiter.record_key_usage(&key, start, 1, 0.0);
    let refusal = limiter.admit_key(&key).unwrap_err();
    assert_eq!(refusal.limit, "tokens_per_window");

    // Requests: 3 per 10 minutes, and the token window still holds its 100 tokens.
    clock.advance(Duration::minutes(12));
    assert_eq!(
        limiter.admit_key(&key).unwrap_err().limit,
        "tokens_per_window"
    );
    clock.advance(Duration::minutes(49)); // 61 minutes after: the token window is free
    for _ in 0..3 {
        drop(limiter.admit_key(&key).unwrap());
    }
    let refusal = limiter.admit_key(&key).unwrap_err();
    assert_eq!(refusal.limit, "requests_per_window");
    assert!(refusal.retry_after.unwrap() <= 660);
    clock.advance(Duration::minutes(11));
    assert!(limiter.admit_key(&key).is_ok());
}

#[test]
fn cost_per_day_window_and_total() {
    let (limiter, clock) = limiter();
    let daily = key(KeyLimits {
        cost_per_day: Some(1.0),
        ..KeyLimits::default()
    });
    limiter.record_key_usage(&daily, clock.now(), 10, 0.6);
    drop(limiter.admit_key(&daily).expect("$0.60 of $1"));
    limiter.record_key_usage(&daily, clock.now(), 10, 0.4);
    let refusal = limiter.admit_key(&daily).unwrap_err();
    assert_eq!(refusal.limit, "cost_per_day");
    assert_eq!(refusal.retry_after, Some(14 * 3600), "until midnight UTC");
    clock.set(datetime!(2026-11-22 00:00:00 UTC));
    assert!(limiter.admit_key(&daily).is_ok(), "a new day");

    let (limiter, clock) = self::limiter();
    let windowed = key(KeyLimits {
        cost_per_window: Some(WindowLimit {
            limit: 2.0,
            window_seconds: 7200,
        }),
        ..KeyLimits::default()
    });
    limiter.record_key_usage(&windowed, clock.now(), 1, 2.0);
    assert_eq!(
        limiter.admit_key(&windowed).unwrap_err().limit,
        "cost_per_window"
    );
    clock.advance(Duration::minutes(121));
    assert!(limiter.admit_key(&windowed).is_ok());

    let (limiter, clock) = self::limiter();
    let total = key(KeyLimits {
        cost_total: Some(5.0),
        ..KeyLimits::default()
    });
    limiter.record_key_usage(&total, clock.now(), 1, 4.99);
    assert!(limiter.admit_key(&total).is_ok());
    limiter.record_key_usage(&total, clock.now(), 1, 0.01);
    let refusal = limiter.admit_key(&total).unwrap_err();
    assert_eq!(
        (refusal.limit, refusal.retry_after),
        ("cost_total", None),
        "waiting does not help"
    );
    clock.advance(Duration::days(400));
    assert!(limiter.admit_key(&total).is_err());
}

#[test]
fn channel_quotas_fixed_rolling_and_model_filter() {
    let (limiter, clock) = limiter();
    let fixed = channel(
        json!({"quotaType": "requests", "quotaLimit": 2, "quotaResetAt": "2026-11-01T00:00:00Z", "quotaResetInterval": 1, "quotaResetUnit": "days", "quotaModels": ["sonnet"]}),
    );
    let at = clock.now();
    limiter.record_channel_usage(&fixed, "claude-sonnet-4-5", at, 0.0);
    limiter.record_channel_usage(&fixed, "claude-haiku-4-5", at, 0.0);
    assert!(
        limiter.channel_quota_check(&fixed).is_ok(),
        "haiku is not counted"
    );
    limiter.record_channel_usage(&fixed, "claude-sonnet-4-5", at, 0.0);
    let reason = limiter.channel_quota_check(&fixed).unwrap_err();
    assert!(reason.contains("2026-11-22T00:00:00"), "{reason}");
    clock.set(datetime!(2026-11-22 00:00:00 UTC));
    assert!(
        limiter.channel_quota_check(&fixed).is_ok(),
        "the next period starts empty"
    );

    let (limiter, clock) = self::limiter();
    let credit = channel(
        json!({"quotaType": "credit", "quotaLimit": 1.5, "quotaResetMode": "rolling", "quotaResetInterval": 2, "quotaResetUnit": "hours"}),
    );
    limiter.record_channel_usage(&credit, "m", clock.now(), 1.0);
    assert!(limiter.channel_quota_check(&credit).is_ok());
    clock.advance(Duration::minutes(30));
    limiter.record_channel_usage(&credit, "m", clock.now(), 0.5);
    assert!(limiter.channel_quota_check(&credit).is_err());
    clock.advance(Duration::minutes(91)); // the first dollar left the 2-hour window
    assert!(limiter.channel_quota_check(&credit).is_ok());
    let usage = limiter.channel_usage(&credit).quota.unwrap();
    assert!((usage.used - 0.5).abs() < 1e-9);
}

#[tokio::test]
async fn channel_rate_limit_queues_and_refuses() {
    let (limiter, clock) = limiter();
    let refusing = channel(json!({"rateLimitRpm": 1}));
    limiter.acquire_channel_slot(&refusing, 10).await.unwrap();
    assert!(
        limiter
            .acquire_channel_slot(&refusing, 10)
            .await
            .unwrap_err()
            .contains("rate limit")
    );

    let queueing =
        channel(json!({"id": "c2", "rateLimitRpm": 1, "queueEnabled": true, "queueTimeout": 30}));
    limiter.acquire_channel_slot(&queueing, 10).await.unwrap();
    let waiter = limiter.acquire_channel_slot(&queueing, 10);
    let meanwhile = async {
        wait_until_async(
            std::time::Duration::from_secs(5),
            "the second request to wait in the channel's queue",
            || limiter.channel_usage(&queueing).queued == 1,
        )
        .await;
        // A full queue refuses at once.
        assert!(
            limiter
                .acquire_channel_slot(&queueing, 1)
                .await
                .unwrap_err()
                .contains("queue is full")
        );
        clock.advance(Duration::seconds(61));
    };
    let (result, ()) = tokio::join!(waiter, meanwhile);
    result.expect("a slot freed up");
    assert_eq!(limiter.channel_usage(&queueing).queued, 0);
}

#[test]
fn sticky_sessions_expire() {
    let (limiter, clock) = limiter();
    limiter.stick("k1/s1", "c1", 60);
    assert_eq!(limiter.sticky_channel("k1/s1").as_deref(), Some("c1"));
    assert_eq!(limiter.sticky_channel("k1/other"), None);
    clock.advance(Duration::seconds(61));
    assert_eq!(limiter.sticky_channel("k1/s1"), None);
}

#[test]
fn counters_are_rebuilt_from_the_log() {
    let tmp = tempfile::tempdir().unwrap();
    let db = LogDb::open(&tmp.path().join("logs.sqlite"), OpenOptions::default()).unwrap();
    let (limiter, clock) = limiter();
    let now = clock.now();
    let log_row = |client: &str,
                   channel: &str,
                   id: &str,
                   at: time::OffsetDateTime,
                   tokens: i64,
                   price: f64| RequestLog {
        id: id.into(),
        status: "success".into(),
        initial_time: relaybox::domain::format_time(at),
        client_id: client.into(),
        channel_id: channel.into(),
        model: "m".into(),
        total_tokens: tokens,
        price,
        ..RequestLog::default()
    };
    let row = |id: &str, at: time::OffsetDateTime, tokens: i64, price: f64| {
        log_row("k1", "c1", id, at, tokens, price)
    };
    // Rows that went through another channel, so c1's quota count stays the rows above.
    let row_of = |client: &str, id: &str, at: time::OffsetDateTime, tokens: i64, price: f64| {
        log_row(client, "c2", id, at, tokens, price)
    };
    db.insert_logs(&[
        row("a", now - Duration::days(3), 500, 2.0),
        row("b", now - Duration::minutes(30), 40, 0.25),
        row("c", now - Duration::minutes(5), 20, 0.25),
        // k2 has a day-long window: its rows from 2 h ago count, k1's 1 h window does not see them.
        row_of("k2", "d", now - Duration::hours(2), 7, 0.0),
        row_of("k2", "e", now - Duration::days(2), 1000, 0.0),
        // Inside k2's window but not k1's: must not count for k1.
        row_of("k1", "g", now - Duration::hours(3), 300, 0.0),
        // A key that is not configured: read past, never seeded.
        row_of("gone", "f", now - Duration::minutes(1), 9999, 0.0),
    ])
    .unwrap();
    let key = key(KeyLimits {
        tokens_per_window: Some(WindowLimit {
            limit: 60.0,
            window_seconds: 3600,
        }),
        cost_total: Some(10.0),
        cost_per_day: Some(0.5),
        ..KeyLimits::default()
    });
    let quota = channel(
        json!({"quotaType": "requests", "quotaLimit": 3, "quotaResetAt": "2026-11-21T00:00:00Z", "quotaResetInterval": 1, "quotaResetUnit": "days"}),
    );
    let mut other = self::key(KeyLimits {
        tokens_per_window: Some(WindowLimit {
            limit: 100.0,
            window_seconds: 86_400,
        }),
        ..KeyLimits::default()
    });
    other.id = "k2".into();
    let mut state = relaybox::store::ConfigState::default();
    state.keys.insert(key.id.clone(), key.clone());
    state.keys.insert(other.id.clone(), other.clone());
    state.channels.insert(quota.id.clone(), quota.clone());
    assert_eq!(
        relaybox::limits::seed::seed_changed(&limiter, &state, &db).unwrap(),
        3
    );
    let other_usage = limiter.key_usage(&other);
    assert!(
        (other_usage.windows[0].used - 7.0).abs() < 1e-9,
        "{other_usage:?}"
    );
    let usage = limiter.key_usage(&key);
    assert!((usage.cost_total - 2.5).abs() < 1e-9, "{usage:?}");
    assert!((usage.cost_today - 0.5).abs() < 1e-9, "{usage:?}");
    assert!((usage.windows[0].used - 60.0).abs() < 1e-9, "{usage:?}");
    assert_eq!(limiter.admit_key(&key).unwrap_err().limit, "cost_per_day");
    assert!(
        (limiter.channel_usage(&quota).quota.unwrap().used - 2.0).abs() < 1e-9,
        "two rows today"
    );
    assert_eq!(
        relaybox::limits::seed::seed_changed(&limiter, &state, &db).unwrap(),
        0,
        "seeded once per limits"
    );
}
