//! Small relay fixes: an unreachable upstream is left at once (no retries with waits), and
//! client-facing errors do not name channels (the log row does).
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

mod common;

use std::time::{Duration, Instant};

use serde_json::json;

use common::bare_env::start;

/// A local port nothing listens on: connecting to it is refused at once.
fn refused_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

#[test]
fn a_refused_connection_fails_over_at_once() {
    let env = start(&[]);
    env.channel(
        None,
        &json!({"name": "down", "baseUrl": refused_url(), "priority": 1}),
    );
    env.channel(None, &json!({"name": "up", "priority": 2}));
    let (key, _) = env.key(&json!({"name": "k"}));
    let started = Instant::now();
    let (status, body) = env.messages(&key, "claude-sonnet-4-5");
    let took = started.elapsed();
    assert_eq!(status, 200, "{body}");
    // The default rules retry a 502 twice, 5 s apart: an upstream that cannot be reached
    // must not wait for that.
    assert!(took < Duration::from_secs(3), "failover took {took:?}");
    let row = &env.rows(1)[0];
    assert_eq!(row["channel_name"], "up");
    let notes: serde_json::Value =
        serde_json::from_str(row["failover_info"].as_str().unwrap()).unwrap();
    assert_eq!(notes[0]["channel"], "down");
    assert_eq!(notes[0]["action"], "failover", "{notes}");
    assert_eq!(notes.as_array().unwrap().len(), 2, "no retries: {notes}");
}

#[test]
fn a_lone_unreachable_channel_answers_at_once() {
    let env = start(&[]);
    env.channel(None, &json!({"name": "down", "baseUrl": refused_url()}));
    let (key, _) = env.key(&json!({"name": "k"}));
    let started = Instant::now();
    let (status, body) = env.messages(&key, "claude-sonnet-4-5");
    assert_eq!(status, 502, "{body}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn error_bodies_do_not_name_channels_but_the_log_row_does() {
    let env = start(&[]);
    // Both reject the relay's credential: 401 fails over at once under the default rules.
    let alpha = env.channel(
        Some("status=401"),
        &json!({"name": "secret-alpha", "priority": 1}),
    );
    let beta = env.channel(
        Some("status=401"),
        &json!({"name": "secret-beta", "priority": 2}),
    );
    let (key, _) = env.key(&json!({"name": "k"}));
    let (status, body) = env.messages(&key, "claude-sonnet-4-5");
    assert!(status >= 500, "{status} {body}");
    let text = body.to_string();
    assert!(
        !text.contains("secret-alpha") && !text.contains("secret-beta"),
        "the client sees no channel names: {text}"
    );
    assert!(text.contains("2 channels tried"), "{text}");
    let row = &env.rows(1)[0];
    assert!(
        row["error"].as_str().unwrap().contains("secret-beta"),
        "{row}"
    );

    // No channel can be tried at all: the 503 says why, not which.
    for id in [alpha, beta] {
        let (status, body) = env.server.admin(
            "PATCH",
            &format!("/channels/{id}"),
            Some(&json!({"status": "disabled"})),
        );
        assert_eq!(status, 200, "{body}");
    }
    let (status, body) = env.messages(&key, "claude-sonnet-4-5");
    assert_eq!(status, 503, "{body}");
    let text = body.to_string();
    assert!(
        !text.contains("secret-alpha") && !text.contains("secret-beta"),
        "{text}"
    );
    assert!(text.contains("status is disabled"), "{text}");
    let rows = env.rows(2);
    let row = rows.iter().find(|r| r["http_status"] == 503).unwrap();
    let error = row["error"].as_str().unwrap();
    assert!(
        error.contains("secret-alpha") && error.contains("secret-beta"),
        "{row}"
    );
}
