//! Slow clients and stalled upstreams against the real binary (short timeouts through its
//! flags and settings): every one gets a clear answer in the caller's protocol, and the row
//! says what happened.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

mod common;

use std::io::Write as _;
use std::time::{Duration, Instant};

use common::faults::{Peer, connect, parse_response, read_until_closed, send_head, setup_with_env};
use common::relay_env::{Setup, hello};
use common::request;
use serde_json::{Value, json};

/// Generous against a slow machine, far below "never".
const WITHIN: Duration = Duration::from_secs(8);

fn fast_client_timeouts() -> [(&'static str, &'static str); 2] {
    [
        ("RELAYBOX_HEADER_READ_TIMEOUT_SECS", "1"),
        ("RELAYBOX_BODY_READ_TIMEOUT_SECS", "1"),
    ]
}

/// A whole request with `connection: close`, read until the server closes.
fn exchange(s: &Setup, path: &str, body: &Value) -> (u16, String, Duration) {
    let started = Instant::now();
    let mut stream = connect(&s.server.url);
    let text = body.to_string();
    let length = text.len().to_string();
    send_head(
        &mut stream,
        "POST",
        path,
        &[
            ("x-api-key", &s.key),
            ("authorization", &format!("Bearer {}", s.key)),
            ("content-type", "application/json"),
            ("content-length", &length),
            ("connection", "close"),
        ],
    );
    stream.write_all(text.as_bytes()).unwrap();
    match read_until_closed(&mut stream, Duration::from_secs(20)) {
        Peer::Closed(text) => {
            let (status, body) = parse_response(&text);
            (status, body, started.elapsed())
        }
        Peer::Open => panic!("no complete answer to {path} within 20 s"),
    }
}

#[test]
fn idle_half_sent_and_kept_alive_connections_are_closed_after_the_header_read_timeout() {
    let s = setup_with_env(json!({}), &fast_client_timeouts());
    let mut silent = connect(&s.server.url);
    let mut half = connect(&s.server.url);
    half.write_all(b"POST /v1/messages HTTP/1.1\r\nhost: relay\r\nx-api-")
        .unwrap();
    let mut kept = connect(&s.server.url);
    send_head(&mut kept, "GET", "/health", &[]);
    // One answer, then the connection waits for the next head.
    let mut first = [0u8; 12];
    std::io::Read::read_exact(&mut kept, &mut first).unwrap();
    assert_eq!(&first, b"HTTP/1.1 200");

    for (what, stream) in [
        ("a connection that sends nothing", &mut silent),
        ("a half-sent head", &mut half),
        ("an idle keep-alive connection", &mut kept),
    ] {
        assert!(
            matches!(read_until_closed(stream, WITHIN), Peer::Closed(_)),
            "{what} is still open after {WITHIN:?}"
        );
    }
    // The server still serves.
    let (status, _) = common::get(&format!("{}/health", s.server.url)).unwrap();
    assert_eq!(status, 200);
}

#[test]
fn a_body_slower_than_the_body_read_timeout_gets_408_in_the_callers_protocol() {
    let s = setup_with_env(json!({}), &fast_client_timeouts());
    let mut stream = connect(&s.server.url);
    send_head(
        &mut stream,
        "POST",
        "/v1/messages",
        &[
            ("x-api-key", &s.key),
            ("content-type", "application/json"),
            ("content-length", "100"),
        ],
    );
    stream.write_all(b"{\"model\":").unwrap();
    let Peer::Closed(text) = read_until_closed(&mut stream, WITHIN) else {
        panic!("no answer to a slow body within {WITHIN:?}");
    };
    let (status, body) = parse_response(&text);
    assert_eq!(status, 408, "{text}");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["type"], "error", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("did not arrive within 1 s"),
        "{body}"
    );
    let row = &s.rows(1)[0];
    assert_eq!(row["http_status"], 408, "{row}");
}

#[test]
fn an_unauthenticated_big_post_is_refused_before_its_body_is_read() {
    let s = setup_with_env(json!({}), &[]);
    let mut stream = connect(&s.server.url);
    send_head(
        &mut stream,
        "POST",
        "/v1/chat/completions",
        &[
            ("authorization", "Bearer not-a-relaybox-key"),
            ("content-type", "application/json"),
            ("content-length", &(31 * 1024 * 1024).to_string()),
        ],
    );
    // A first slice of the 31 MiB; the rest is never sent.
    stream.write_all(&vec![b' '; 64 * 1024]).unwrap();
    let Peer::Closed(text) = read_until_closed(&mut stream, WITHIN) else {
        panic!("the server waited for the body of an unauthenticated request");
    };
    let (status, body) = parse_response(&text);
    assert_eq!(status, 401, "{text}");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["error"]["code"], "invalid_api_key", "{body}");
}

#[test]
fn an_error_whose_body_never_comes_fails_over_within_the_bound() {
    let s = setup_with_env(
        json!({"failover": {"enabled": true, "rules": [
            {"errorCodes": "529", "actionChain": [{"action": "failover"}]}
        ]}}),
        &[],
    );
    s.add_channel(json!({
        "name": "mute", "baseUrl": s.mock.scenario_url("status=529,stall_after=0"),
        "priority": 1, "streamIdleTimeoutSeconds": 1
    }));
    s.add_channel(json!({"name": "healthy", "baseUrl": s.mock.base_url(), "priority": 2}));
    let started = Instant::now();
    let (status, body) = s.messages(&hello());
    assert_eq!(status, 200, "{body}");
    assert!(started.elapsed() < WITHIN, "{:?}", started.elapsed());
    let row = &s.rows(1)[0];
    assert_eq!(row["channel_name"], "healthy");
    let info: Vec<Value> = serde_json::from_str(row["failover_info"].as_str().unwrap()).unwrap();
    assert_eq!(info[0]["channel"], "mute", "{info:?}");
    assert_eq!(info[0]["status"], 529, "{info:?}");
    assert_eq!(info[0]["action"], "failover", "{info:?}");
}

#[test]
fn an_upstream_that_never_sends_its_head_fails_over_after_the_channels_head_timeout() {
    // A missing head counts as a 504 from the channel; this rule fails over at once (the
    // default rules would first retry it twice, 5 s apart).
    let s = setup_with_env(
        json!({"failover": {"enabled": true, "rules": [
            {"errorCodes": "504", "actionChain": [{"action": "failover"}]}
        ]}}),
        &[],
    );
    s.add_channel(json!({
        "name": "silent", "baseUrl": s.mock.scenario_url("stall=head"),
        "priority": 1, "responseHeaderTimeout": 1
    }));
    s.add_channel(json!({"name": "healthy", "baseUrl": s.mock.base_url(), "priority": 2}));
    let started = Instant::now();
    let (status, body) = s.messages(&hello());
    assert_eq!(status, 200, "{body}");
    assert!(started.elapsed() < WITHIN, "{:?}", started.elapsed());
    let row = &s.rows(1)[0];
    assert_eq!(row["channel_name"], "healthy");
    let info: Vec<Value> = serde_json::from_str(row["failover_info"].as_str().unwrap()).unwrap();
    assert_eq!(info[0]["channel"], "silent", "{info:?}");
    assert_eq!(info[0]["status"], 504, "{info:?}");
    assert_eq!(info[0]["action"], "failover", "{info:?}");
}

fn stream_body() -> Value {
    let mut body = hello();
    body["stream"] = json!(true);
    body
}

#[test]
fn a_stream_that_stalls_ends_with_an_error_event_and_an_upstream_timeout_row() {
    let s = setup_with_env(json!({"streamIdleTimeoutSeconds": 1}), &[]);
    s.channel("messages", "stalls", "claude", Some("stall_after=2"), 1);
    let (status, body, took) = exchange(&s, "/v1/messages", &stream_body());
    assert_eq!(status, 200, "{body}");
    assert!(took < WITHIN, "{took:?}");
    assert!(body.contains("event: message_start"), "{body}");
    assert!(body.contains("event: error"), "{body}");
    assert!(body.contains("upstream_timeout"), "{body}");
    let row = &s.rows(1)[0];
    assert_eq!(row["status"], "error", "{row}");
    assert!(
        row["error"]
            .as_str()
            .unwrap()
            .starts_with("upstream_timeout"),
        "{row}"
    );

    // The same in OpenAI Chat's shape.
    s.channel("chat", "stalls-chat", "openai", Some("stall_after=1"), 1);
    let mut chat =
        json!({"model": "gpt-4o", "stream": true, "messages": [{"role": "user", "content": "hi"}]});
    chat["stream"] = json!(true);
    let (status, body, _) = exchange(&s, "/v1/chat/completions", &chat);
    assert_eq!(status, 200, "{body}");
    let last = body
        .lines()
        .rfind(|l| l.starts_with("data: {"))
        .expect("an error event");
    let event: Value = serde_json::from_str(last.trim_start_matches("data: ")).unwrap();
    assert!(
        event["error"]["message"]
            .as_str()
            .unwrap()
            .contains("upstream_timeout"),
        "{body}"
    );
}

#[test]
fn a_channels_idle_timeout_wins_over_the_settings() {
    let s = setup_with_env(json!({"streamIdleTimeoutSeconds": 600}), &[]);
    s.add_channel(json!({
        "name": "own-timeout", "baseUrl": s.mock.scenario_url("stall_after=2"),
        "priority": 1, "streamIdleTimeoutSeconds": 1
    }));
    let (status, body, took) = exchange(&s, "/v1/messages", &stream_body());
    assert_eq!(status, 200, "{body}");
    assert!(took < WITHIN, "{took:?}");
    assert!(body.contains("the upstream sent nothing for 1 s"), "{body}");
}

#[test]
fn a_non_stream_body_that_stalls_ends_with_a_timeout_error() {
    let s = setup_with_env(json!({"streamIdleTimeoutSeconds": 1}), &[]);
    s.channel("messages", "half", "claude", Some("stall_after=1"), 1);
    let started = Instant::now();
    let (status, body) = s.messages(&hello());
    assert!(started.elapsed() < WITHIN, "{:?}", started.elapsed());
    assert_eq!(status, 504, "{body}");
    assert_eq!(body["type"], "error", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("upstream_timeout"),
        "{body}"
    );
    let row = &s.rows(1)[0];
    assert!(
        row["error"].as_str().unwrap().contains("upstream_timeout"),
        "{row}"
    );
}

#[test]
fn the_request_deadline_bounds_a_retry_loop() {
    let s = setup_with_env(
        json!({
            "requestDeadlineSeconds": 2,
            "failover": {"enabled": true, "rules": [
                {"errorCodes": "503", "actionChain": [{"action": "retry", "waitSeconds": 1, "maxAttempts": 99}]}
            ]}
        }),
        &[],
    );
    s.channel("messages", "down", "claude", Some("status=503"), 1);
    let started = Instant::now();
    let (status, body) = s.messages(&hello());
    let took = started.elapsed();
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["type"], "error", "{body}");
    let attempts = s.path_count("status=503");
    assert!((2..=3).contains(&attempts), "{attempts} attempts");
    let row = &s.rows(1)[0];
    assert!(
        row["upstream_error"]
            .as_str()
            .unwrap()
            .contains("request deadline of 2 s reached"),
        "{row}"
    );
}

#[test]
fn unknown_paths_and_wrong_methods_answer_in_the_callers_protocol() {
    let s = setup_with_env(json!({}), &[]);
    let url = &s.server.url;
    let call = |method: &str, path: &str| {
        common::request_raw(method, &format!("{url}{path}"), &[], Some("{}")).unwrap()
    };
    // Anthropic under /v1/messages…
    let (status, body) = call("POST", "/v1/messages/batches");
    assert_eq!(status, 404, "{body}");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "not_found_error", "{body}");
    let (status, body) = call("GET", "/v1/messages");
    assert_eq!(status, 405, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["type"],
        "error"
    );
    // OpenAI under the rest of /v1/…
    let (status, body) = call("POST", "/v1/embeddings");
    assert_eq!(status, 404, "{body}");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("/v1/embeddings")
    );
    assert!(body.get("type").is_none(), "{body}");
    let (status, body) = call("DELETE", "/v1/chat/completions");
    assert_eq!(status, 405, "{body}");
    assert!(serde_json::from_str::<Value>(&body).unwrap()["error"]["message"].is_string());
    // Gemini under /v1beta/…
    let (status, body) = call("POST", "/v1beta/tunedModels/x:generateContent");
    assert_eq!(status, 404, "{body}");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["error"]["code"], 404, "{body}");
    assert_eq!(body["error"]["status"], "NOT_FOUND", "{body}");
    // The allow header names what the path takes.
    let (head, _) = raw_head(url, "GET", "/v1/chat/completions");
    assert!(head.to_ascii_lowercase().contains("allow: post"), "{head}");
    let _ = request("GET", &format!("{url}/health"), &[], None).unwrap();
}

fn raw_head(url: &str, method: &str, path: &str) -> (String, String) {
    let mut stream = connect(url);
    send_head(&mut stream, method, path, &[("connection", "close")]);
    let Peer::Closed(text) = read_until_closed(&mut stream, WITHIN) else {
        panic!("no answer");
    };
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    (head.to_string(), body.to_string())
}
