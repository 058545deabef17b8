//! Limits through the real binary and the mock upstream: the concurrency cap under 50 parallel
//! streams (also with client disconnects), refusals in the client's protocol, a cost budget that
//! survives a restart and a kill -9, a channel over quota that fails over and comes back after a
//! reset, and sticky sessions.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

mod common;

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::Duration;

use common::relay_env::{Setup, hello, setup};
use common::wait::wait_until;
use common::{TestServer, eventually, request};
use serde_json::{Value, json};

fn create_key(s: &Setup, body: Value) -> (String, String) {
    let (status, created) = s.server.admin("POST", "/keys", Some(&body));
    assert_eq!(status, 201, "{created}");
    (
        created["plaintext"].as_str().unwrap().to_string(),
        created["key"]["id"].as_str().unwrap().to_string(),
    )
}

fn messages_with(url: &str, key: &str, body: &Value) -> (u16, Value) {
    request(
        "POST",
        &format!("{url}/v1/messages"),
        &[("x-api-key", key)],
        Some(body),
    )
    .unwrap()
}

/// Start a stream, read until the first delta, and hang up.
fn stream_and_hang_up(url: &str, key: &str) {
    let rest = url.strip_prefix("http://").unwrap();
    let mut stream = TcpStream::connect(rest).unwrap();
    let mut body = hello();
    body["stream"] = json!(true);
    let payload = body.to_string();
    write!(stream, "POST /v1/messages HTTP/1.1\r\nhost: {rest}\r\nx-api-key: {key}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{payload}", payload.len()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        let n = stream.read(&mut buf).unwrap_or(0);
        seen.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&seen);
        if n == 0
            || text.contains("content_block_delta")
            || !text.starts_with("HTTP/1.1 200") && text.contains("\r\n\r\n")
        {
            return;
        }
    }
}

#[test]
fn concurrency_cap_holds_under_50_parallel_streams_and_slots_are_released() {
    let s = setup(json!({}));
    s.channel(
        "messages",
        "slow",
        "claude",
        Some("chunks=10,chunk_delay=40"),
        1,
    );
    let (key, key_id) = create_key(
        &s,
        json!({"name": "five", "limits": {"concurrentRequests": 5}}),
    );
    let url = s.server.url.clone();
    let workers: Vec<_> = (0..50)
        .map(|i| {
            let (url, key) = (url.clone(), key.clone());
            std::thread::spawn(move || {
                if i % 10 == 0 {
                    stream_and_hang_up(&url, &key);
                    return 0;
                }
                let mut body = hello();
                body["stream"] = json!(true);
                // Refused while 5 are in flight: wait a little and try again, as a client would.
                let mut refusals = 0u32;
                loop {
                    let (status, text) = common::request_raw(
                        "POST",
                        &format!("{url}/v1/messages"),
                        &[("x-api-key", &key)],
                        Some(&body.to_string()),
                    )
                    .unwrap();
                    if status != 429 {
                        assert_eq!(status, 200, "{text}");
                        assert!(text.contains("message_stop"));
                        return refusals;
                    }
                    let error: Value = serde_json::from_str(&text).unwrap();
                    assert_eq!(error["error"]["type"], "rate_limit_error", "{error}");
                    assert!(
                        error["error"]["message"]
                            .as_str()
                            .unwrap()
                            .contains("5 requests in flight")
                    );
                    refusals += 1;
                    assert!(refusals < 500, "never got a slot");
                    // A client's pause before it retries, not a wait for an event: the 429 is
                    // the signal, and without a pause 45 clients would spin on the relay.
                    std::thread::sleep(Duration::from_millis(20));
                }
            })
        })
        .collect();
    let refusals: Vec<u32> = workers.into_iter().map(|w| w.join().unwrap()).collect();
    let stats = s.mock.stats();
    assert!(
        stats.max_in_flight <= 5,
        "never more than 5 upstream at once: {stats:?}"
    );
    assert!(
        stats.max_in_flight >= 2,
        "the test must actually overlap requests: {stats:?}"
    );
    assert!(
        refusals.iter().sum::<u32>() > 0,
        "some requests had to wait for a slot"
    );
    assert_eq!(
        stats.streams_completed, 45,
        "every client that stayed got its full stream: {stats:?}"
    );
    // Every slot is free again, including those of the clients that hung up.
    assert!(
        eventually(Duration::from_secs(5), || s
            .server
            .admin("GET", &format!("/keys/{key_id}/usage"), None)
            .1["inFlight"]
            == 0),
        "{}",
        s.server
            .admin("GET", &format!("/keys/{key_id}/usage"), None)
            .1
    );
    let (status, _) = messages_with(&url, &key, &hello());
    assert_eq!(status, 200, "the key works again");
    let metrics = common::request_raw("GET", &format!("{url}/metrics"), &[], None)
        .unwrap()
        .1;
    assert!(
        metrics.contains("relaybox_limit_refusals_total{limit=\"concurrent_requests\"}"),
        "refusals are counted"
    );
}

#[test]
fn rpm_refusal_names_the_limit_in_each_protocol() {
    let s = setup(json!({}));
    s.channel("messages", "main", "claude", None, 1);
    s.channel("chat", "chat", "openai", None, 1);
    let (key, _) = create_key(
        &s,
        json!({"name": "two-a-minute", "limits": {"requestsPerMinute": 2}}),
    );
    let url = &s.server.url;
    assert_eq!(messages_with(url, &key, &hello()).0, 200);
    assert_eq!(messages_with(url, &key, &hello()).0, 200);
    let (status, body) = messages_with(url, &key, &hello());
    assert_eq!(status, 429);
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "rate_limit_error");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("2 requests per minute")
    );
    let chat = json!({"model": "gpt-5", "messages": [{"role": "user", "content": "hi"}]});
    let (status, body) = request(
        "POST",
        &format!("{url}/v1/chat/completions"),
        &[("authorization", &format!("Bearer {key}"))],
        Some(&chat),
    )
    .unwrap();
    assert_eq!(status, 429);
    assert_eq!(body["error"]["code"], "requests_per_minute", "{body}");
    let (code, head) = common::request_raw(
        "POST",
        &format!("{url}/v1/messages"),
        &[("x-api-key", &key)],
        Some(&hello().to_string()),
    )
    .unwrap();
    assert_eq!(code, 429);
    let _ = head;
    let rows = s.rows(5);
    assert!(
        rows.iter().filter(|r| r["http_status"] == 429).count() >= 3,
        "refusals are logged"
    );
}

fn cost_of_one_request(s: &Setup) -> f64 {
    let row = &s.rows(1)[0];
    row["price"].as_str().unwrap().parse::<f64>().unwrap()
}

#[test]
fn a_cost_budget_survives_restart_and_kill_9() {
    let s = setup(json!({}));
    s.channel("messages", "main", "claude", None, 1);
    let url = s.server.url.clone();
    // Measure what one request costs, then give a key room for exactly three.
    let (probe, _) = create_key(&s, json!({"name": "probe"}));
    assert_eq!(messages_with(&url, &probe, &hello()).0, 200);
    let one = cost_of_one_request(&s);
    assert!(one > 0.0);
    let (key, key_id) = create_key(
        &s,
        json!({"name": "budget", "limits": {"costTotal": one * 3.0 - one / 2.0}}),
    );
    for _ in 0..3 {
        assert_eq!(messages_with(&url, &key, &hello()).0, 200);
    }
    let (status, body) = messages_with(&url, &key, &hello());
    assert_eq!(status, 429, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("total budget")
    );

    // Graceful restart: still refused.
    let data = s.server.data_dir.clone();
    let Setup {
        server,
        mock,
        runtime,
        tmp,
        ..
    } = s;
    assert!(server.stop().success());
    let server = TestServer::start(&data, &[]);
    let (status, _) = messages_with(&server.url, &key, &hello());
    assert_eq!(status, 429, "the budget survived a restart");
    let usage = server
        .admin("GET", &format!("/keys/{key_id}/usage"), None)
        .1;
    assert!(
        (usage["costTotal"].as_str().unwrap().parse::<f64>().unwrap() - one * 3.0).abs() < 1e-12,
        "{usage}"
    );

    // kill -9 after the group commit: the spend is still there.
    let (fresh, fresh_id) = {
        let (_, created) = server.admin(
            "POST",
            "/keys",
            Some(&json!({"name": "kill", "limits": {"costTotal": 1000.0}})),
        );
        (
            created["plaintext"].as_str().unwrap().to_string(),
            created["key"]["id"].as_str().unwrap().to_string(),
        )
    };
    for _ in 0..4 {
        assert_eq!(messages_with(&server.url, &fresh, &hello()).0, 200);
    }
    // The writer has committed the four rows once the log listing (read from logs.sqlite)
    // shows them.
    wait_until(
        Duration::from_secs(10),
        "the four requests' log rows to be committed",
        || {
            server
                .admin("GET", &format!("/logs?key={fresh_id}&limit=10"), None)
                .1["logs"]
                .as_array()
                .map_or(0, Vec::len)
                == 4
        },
    );
    server.kill9();
    let server = TestServer::start(&data, &[]);
    let usage = server
        .admin("GET", &format!("/keys/{fresh_id}/usage"), None)
        .1;
    assert!(
        (usage["costTotal"].as_str().unwrap().parse::<f64>().unwrap() - one * 4.0).abs() < 1e-12,
        "nothing acknowledged was lost: {usage}"
    );
    drop(server);
    drop((mock, runtime, tmp));
}

#[test]
fn a_channel_over_quota_is_skipped_and_used_again_after_its_reset() {
    let s = setup(json!({}));
    let limited = s.channel("messages", "limited", "claude", Some("latency=1"), 1);
    s.channel("messages", "backup", "claude", None, 2);
    // One request before the channel has a quota: it counts once the quota is set.
    assert_eq!(s.messages(&hello()).0, 200);
    let (status, _) = s.server.admin(
        "PATCH",
        &format!("/channels/{limited}"),
        Some(&json!({"quotaType": "requests", "quotaLimit": 2, "quotaResetAt": "2026-01-01T00:00:00Z", "quotaResetInterval": 1, "quotaResetUnit": "days"})),
    );
    assert_eq!(status, 200);
    // The limits-sync task re-seeds the edited quota from the log: until then its counter
    // shows 0, afterwards today's request. (A request that finished while the seed ran could be
    // missed by it.)
    wait_until(
        Duration::from_secs(10),
        "the limits-sync task to seed the edited quota from the log",
        || {
            s.server
                .admin("GET", &format!("/channels/{limited}/usage"), None)
                .1["quota"]["used"]
                == 1.0
        },
    );
    for _ in 0..3 {
        assert_eq!(s.messages(&hello()).0, 200);
    }
    let rows = s.rows(4);
    let served: Vec<&str> = rows
        .iter()
        .rev()
        .map(|r| r["channel_name"].as_str().unwrap())
        .collect();
    assert_eq!(
        served,
        ["limited", "limited", "backup", "backup"],
        "over its quota the channel is skipped"
    );
    let usage = s
        .server
        .admin("GET", &format!("/channels/{limited}/usage"), None)
        .1;
    assert_eq!(usage["quota"]["used"], 2.0, "{usage}");
    assert!(
        usage["quota"]["resetsAt"]
            .as_str()
            .unwrap()
            .ends_with("T00:00:00.000Z")
    );

    let (status, reset) = s
        .server
        .admin("POST", &format!("/channels/{limited}/usage/reset"), None);
    assert_eq!(status, 200, "{reset}");
    assert_eq!(reset["quota"]["used"], 0.0);
    assert_eq!(s.messages(&hello()).0, 200);
    assert_eq!(
        s.rows(5)[0]["channel_name"],
        "limited",
        "after the reset it serves again"
    );
}

#[test]
fn sticky_sessions_stay_and_move_when_the_channel_is_suspended() {
    let s = setup(json!({"loadBalance": "round-robin"}));
    let a = s.channel("messages", "a", "claude", None, 1);
    let b = s.channel("messages", "b", "claude", None, 1);
    let session = |id: &str| {
        let mut body = hello();
        body["metadata"] = json!({"user_id": format!("user_abc_account__session_{id}")});
        body
    };
    // Without a session, round-robin alternates; with one, every request lands on one channel.
    for _ in 0..6 {
        assert_eq!(s.messages(&session("conv-1")).0, 200);
    }
    let rows = s.rows(6);
    let first = rows.last().unwrap()["channel_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        rows.iter().all(|r| r["channel_id"] == first.as_str()),
        "one conversation, one channel"
    );
    assert!(rows.iter().all(|r| r["session_id"] == "conv-1"));
    let other = if first == a { b.clone() } else { a.clone() };
    for _ in 0..2 {
        assert_eq!(s.messages(&hello()).0, 200);
    }
    let rows = s.rows(8);
    assert_ne!(
        rows[0]["channel_id"], rows[1]["channel_id"],
        "no session: round-robin"
    );

    // Suspend the bound channel: the conversation moves, and stays on its new channel.
    let (status, _) = s.server.admin(
        "PATCH",
        &format!("/channels/{first}"),
        Some(&json!({"status": "suspended"})),
    );
    assert_eq!(status, 200);
    for _ in 0..3 {
        assert_eq!(s.messages(&session("conv-1")).0, 200);
    }
    let rows = s.rows(11);
    assert!(
        rows[..3].iter().all(|r| r["channel_id"] == other.as_str()),
        "moved to the other channel"
    );
    let (status, _) = s.server.admin(
        "PATCH",
        &format!("/channels/{first}"),
        Some(&json!({"status": "active"})),
    );
    assert_eq!(status, 200);
    assert_eq!(s.messages(&session("conv-1")).0, 200);
    assert_eq!(
        s.rows(12)[0]["channel_id"],
        other.as_str(),
        "and stays there"
    );
}
