//! The relay end to end through the real binary and the in-process mock upstream: failover,
//! retries, suspension, circuit-breaker recovery, client disconnects, bad input and graceful
//! stop. (The official-SDK tests are in tests/sdk.)

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

mod common;

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use common::relay_env::{Setup, UPSTREAM_KEY, hello, setup};
use common::wait::wait_until;
use common::{eventually, request, request_raw};
use serde_json::{Value, json};

fn fast_failover_rules() -> Value {
    json!({"enabled": true, "rules": [
        {"errorCodes": "429:QUOTA_EXHAUSTED", "actionChain": [{"action": "suspend"}]},
        {"errorCodes": "500,502,503,504", "actionChain": [{"action": "retry", "waitSeconds": 1, "maxAttempts": 1}, {"action": "failover"}]},
        {"errorCodes": "401,403,429", "actionChain": [{"action": "failover"}]}
    ]})
}

#[test]
fn a_request_is_relayed_logged_and_costed() {
    let s = setup(json!({}));
    s.channel("messages", "main", "claude", None, 1);
    let (status, body) = s.messages(&hello());
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["type"], "message");
    let input = body["usage"]["input_tokens"].as_i64().unwrap();
    let output = body["usage"]["output_tokens"].as_i64().unwrap();
    let rows = s.rows(1);
    let row = &rows[0];
    assert_eq!(row["status"], "success");
    assert_eq!(row["http_status"], 200);
    assert_eq!(row["client_id"], s.key_id.as_str());
    assert_eq!(row["channel_name"], "main");
    assert_eq!(row["endpoint"], "/v1/messages");
    assert_eq!(
        (
            row["input_tokens"].as_i64().unwrap(),
            row["output_tokens"].as_i64().unwrap()
        ),
        (input, output)
    );
    let expected = input as f64 * 3.0 / 1e6 + output as f64 * 15.0 / 1e6;
    assert!(
        (row["price"].as_str().unwrap().parse::<f64>().unwrap() - expected).abs() < 1e-9,
        "{row}"
    );
    // The upstream saw the channel's key, never the client's.
    let seen = s.mock.requests();
    let last = seen.last().unwrap();
    assert_eq!(last.header("x-api-key"), Some(UPSTREAM_KEY));
    assert!(
        seen.iter()
            .all(|r| r.headers.iter().all(|(_, v)| !v.contains(&s.key)))
    );
}

#[test]
fn failover_moves_to_the_next_channel_after_retrying() {
    let s = setup(json!({"failover": fast_failover_rules()}));
    s.channel("messages", "broken", "claude", Some("status=500"), 1);
    s.channel("messages", "healthy", "claude", None, 2);
    let started = Instant::now();
    let (status, body) = s.messages(&hello());
    assert_eq!(status, 200, "{body}");
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "the retry waited"
    );
    assert_eq!(
        s.path_count("status=500"),
        2,
        "one attempt + one retry on the broken channel"
    );
    let row = &s.rows(1)[0];
    assert_eq!(row["channel_name"], "healthy");
    let info: Vec<Value> = serde_json::from_str(row["failover_info"].as_str().unwrap()).unwrap();
    let actions: Vec<&str> = info.iter().map(|n| n["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["retry", "failover", "success"], "{info:?}");
    assert_eq!(info[0]["channel"], "broken");
}

#[test]
fn retry_with_wait_succeeds_on_the_same_channel() {
    let s = setup(json!({"failover": fast_failover_rules()}));
    s.channel(
        "messages",
        "flaky",
        "claude",
        Some("status=503,fail_times=1"),
        1,
    );
    let started = Instant::now();
    let (status, _) = s.messages(&hello());
    assert_eq!(status, 200);
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert_eq!(s.path_count("fail_times=1"), 2);
    let row = &s.rows(1)[0];
    assert_eq!(row["channel_name"], "flaky");
    assert!(row["failover_info"].as_str().unwrap().contains("\"retry\""));
}

#[test]
fn quota_exhausted_suspends_the_channel() {
    let s = setup(json!({"failover": fast_failover_rules()}));
    s.channel(
        "messages",
        "exhausted",
        "claude",
        Some("status=429,error_code=QUOTA_EXHAUSTED"),
        1,
    );
    s.channel("messages", "backup", "claude", None, 2);
    for _ in 0..3 {
        let (status, _) = s.messages(&hello());
        assert_eq!(status, 200);
    }
    assert_eq!(
        s.path_count("QUOTA_EXHAUSTED"),
        1,
        "a suspended channel is not contacted again"
    );
    let rows = s.rows(3);
    assert!(rows.iter().all(|r| r["channel_name"] == "backup"));
    assert!(
        rows.iter()
            .any(|r| r["failover_info"].as_str().unwrap().contains("suspend"))
    );
}

#[test]
fn the_circuit_breaker_opens_and_recovers_by_itself() {
    let rules = json!({"enabled": true, "rules": [{"errorCodes": "500", "actionChain": [{"action": "failover"}]}]});
    let s = setup(
        json!({"failover": rules, "circuitBreakerThreshold": 2, "circuitBreakerCooldownSeconds": 1}),
    );
    s.channel(
        "messages",
        "wobbly",
        "claude",
        Some("status=500,fail_times=2"),
        1,
    );
    s.channel("messages", "steady", "claude", None, 2);
    assert_eq!(s.messages(&hello()).0, 200);
    // The second failure, during this request, opens the circuit.
    let before_opening = Instant::now();
    for _ in 0..2 {
        assert_eq!(s.messages(&hello()).0, 200);
    }
    assert_eq!(
        s.path_count("fail_times=2"),
        2,
        "after 2 failures the circuit is open: the third request skips it"
    );
    // Keep sending requests (served by the other channel meanwhile) until one tries the
    // channel again: the circuit closes by itself once its cooldown is over.
    let mut requests = 3;
    wait_until(
        Duration::from_secs(10),
        "a request to try the channel again after its cooldown",
        || {
            assert_eq!(s.messages(&hello()).0, 200);
            requests += 1;
            s.path_count("fail_times=2") == 3
        },
    );
    assert!(
        before_opening.elapsed() >= Duration::from_secs(1),
        "not before the 1 s cooldown: {:?}",
        before_opening.elapsed()
    );
    let rows = s.rows(requests);
    assert_eq!(
        rows[0]["channel_name"], "wobbly",
        "and it serves again once healthy"
    );
}

/// Read an HTTP response head plus a little body, then hang up.
fn start_stream_and_hang_up(url: &str, key: &str, body: &Value) -> String {
    let rest = url.strip_prefix("http://").unwrap();
    let mut stream = TcpStream::connect(rest).unwrap();
    let payload = body.to_string();
    write!(stream, "POST /v1/messages HTTP/1.1\r\nhost: {rest}\r\nx-api-key: {key}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{payload}", payload.len()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 512];
    while !String::from_utf8_lossy(&seen).contains("content_block_delta") {
        let n = stream.read(&mut buf).unwrap();
        assert!(n > 0, "stream ended early");
        seen.extend_from_slice(&buf[..n]);
    }
    drop(stream);
    String::from_utf8_lossy(&seen).to_string()
}

#[test]
fn a_client_disconnect_cancels_the_upstream_and_is_logged() {
    let s = setup(json!({}));
    s.channel(
        "messages",
        "slow-stream",
        "claude",
        Some("chunks=50,chunk_delay=100"),
        1,
    );
    let mut body = hello();
    body["stream"] = json!(true);
    let seen = start_stream_and_hang_up(&s.server.url, &s.key, &body);
    assert!(seen.contains("message_start"));
    assert!(
        eventually(Duration::from_secs(5), || s.mock.stats().streams_cancelled
            == 1),
        "upstream stream was not cancelled: {:?}",
        s.mock.stats()
    );
    let row = &s.rows(1)[0];
    assert_eq!(row["status"], "client_disconnect");
    assert_eq!(row["stream"], true);
    assert!(
        row["input_tokens"].as_i64().unwrap() > 0,
        "usage seen before the disconnect is kept"
    );
    assert_eq!(s.mock.stats().streams_completed, 0);
}

#[test]
fn bad_input_gets_clear_protocol_shaped_errors() {
    let s = setup(json!({"maxBodyBytes": 4096}));
    s.channel("messages", "main", "claude", None, 1);
    let url = &s.server.url;
    let anthropic = |status: u16, body: &Value, kind: &str| {
        assert_eq!(body["type"], "error", "{body}");
        assert_eq!(body["error"]["type"], kind, "{status} {body}");
        assert!(!body.to_string().contains(UPSTREAM_KEY));
    };

    // malformed JSON
    let (status, text) = request_raw(
        "POST",
        &format!("{url}/v1/messages"),
        &[("x-api-key", &s.key)],
        Some("{not json"),
    )
    .unwrap();
    assert_eq!(status, 400);
    anthropic(
        status,
        &serde_json::from_str(&text).unwrap(),
        "invalid_request_error",
    );
    // JSON, but not an object
    let (status, text) = request_raw(
        "POST",
        &format!("{url}/v1/messages"),
        &[("x-api-key", &s.key)],
        Some(r#"[{"model":"claude-sonnet-4-5"}]"#),
    )
    .unwrap();
    assert_eq!(status, 400);
    let body: Value = serde_json::from_str(&text).unwrap();
    anthropic(status, &body, "invalid_request_error");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("must be a JSON object"),
        "{body}"
    );
    // no model
    let (status, body) = s.messages(&json!({"messages": []}));
    assert_eq!(status, 400);
    assert!(body["error"]["message"].as_str().unwrap().contains("model"));
    // too large
    let big = json!({"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": "x".repeat(10_000)}]});
    let (status, body) = s.messages(&big);
    assert_eq!(status, 413);
    anthropic(status, &body, "request_too_large");
    // no key / bad key (Anthropic and OpenAI shapes)
    let (status, body) =
        request("POST", &format!("{url}/v1/messages"), &[], Some(&hello())).unwrap();
    assert_eq!(status, 401);
    anthropic(status, &body, "authentication_error");
    let (status, body) = request(
        "POST",
        &format!("{url}/v1/chat/completions"),
        &[("authorization", "Bearer cr_wrong")],
        Some(&json!({"model": "gpt-5", "messages": []})),
    )
    .unwrap();
    assert_eq!(status, 401);
    assert_eq!(body["error"]["code"], "invalid_api_key", "{body}");
    // no channel in the pool
    let (status, body) = request(
        "POST",
        &format!("{url}/v1/chat/completions"),
        &[("authorization", &format!("Bearer {}", s.key))],
        Some(&json!({"model": "gpt-5", "messages": [{"role": "user", "content": "hi"}]})),
    )
    .unwrap();
    assert_eq!(status, 503, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no channel"),
        "{body}"
    );
    // unknown Gemini method
    let (status, body) = request(
        "POST",
        &format!("{url}/v1beta/models/gemini-2.5-pro:explode"),
        &[("x-goog-api-key", &s.key)],
        Some(&json!({})),
    )
    .unwrap();
    assert_eq!(status, 404);
    assert_eq!(body["error"]["status"], "NOT_FOUND", "{body}");
    // The fast path takes only exact POSTs; the rest still meets the router's answers.
    let (status, _) = request_raw("GET", &format!("{url}/v1/messages"), &[], None).unwrap();
    assert_eq!(status, 405, "GET on a POST endpoint");
    let (status, _) = request_raw("POST", &format!("{url}/v1/messages/"), &[], Some("{}")).unwrap();
    assert_eq!(status, 404, "a path that is not a route");
    // a model the key may not use, a disabled key
    let (_, limited) = s.server.admin(
        "POST",
        "/keys",
        Some(&json!({"name": "haiku-only", "allow": {"models": ["claude-haiku-*"]}})),
    );
    let limited_key = limited["plaintext"].as_str().unwrap();
    let (status, body) = request(
        "POST",
        &format!("{url}/v1/messages"),
        &[("x-api-key", limited_key)],
        Some(&hello()),
    )
    .unwrap();
    assert_eq!(status, 403);
    anthropic(status, &body, "permission_error");
    s.server.admin(
        "PATCH",
        &format!("/keys/{}", limited["key"]["id"].as_str().unwrap()),
        Some(&json!({"status": "disabled"})),
    );
    let (status, body) = request(
        "POST",
        &format!("{url}/v1/messages"),
        &[("x-api-key", limited_key)],
        Some(&hello()),
    )
    .unwrap();
    assert_eq!(status, 403);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("disabled")
    );
    // an upstream 400 is given back as it is
    s.server.admin(
        "DELETE",
        &format!(
            "/channels/{}",
            s.server.admin("GET", "/channels", None).1["channels"][0]["id"]
                .as_str()
                .unwrap()
        ),
        None,
    );
    s.channel("messages", "picky", "claude", Some("status=400"), 1);
    let (status, body) = s.messages(&hello());
    assert_eq!(status, 400);
    anthropic(status, &body, "invalid_request_error");

    // None of this changed the configuration, and every authenticated request has a row.
    assert_eq!(
        s.server.admin("GET", "/channels", None).1["channels"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let rows = s.rows(7);
    assert!(
        rows.iter()
            .all(|r| r["http_status"].as_i64().unwrap() >= 400)
    );
}

#[test]
fn graceful_stop_under_load_loses_no_row() {
    let s = setup(json!({}));
    s.channel("messages", "main", "claude", Some("latency=30"), 1);
    let url = s.server.url.clone();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let answered_so_far = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let clients: Vec<_> = (0..8)
        .map(|i| {
            let (url, key, stop) = (url.clone(), s.key.clone(), std::sync::Arc::clone(&stop));
            let answered_so_far = std::sync::Arc::clone(&answered_so_far);
            std::thread::spawn(move || {
                let mut responses = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let mut body = hello();
                    body["stream"] = json!(i % 2 == 0);
                    match request(
                        "POST",
                        &format!("{url}/v1/messages"),
                        &[("x-api-key", &key)],
                        Some(&body),
                    ) {
                        Ok((status, _)) if status > 0 => {
                            responses += 1;
                            answered_so_far.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                        _ => break, // the listener is closed
                    }
                }
                responses
            })
        })
        .collect();
    // Stop under real load: 40 answers so far, and eight clients still sending.
    wait_until(
        Duration::from_secs(20),
        "the clients to get 40 answers",
        || answered_so_far.load(std::sync::atomic::Ordering::Relaxed) >= 40,
    );
    let data_dir = s.server.data_dir.clone();
    let Setup {
        server,
        mock,
        runtime: _runtime,
        ..
    } = s;
    let status = server.stop();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let answered: u64 = clients.into_iter().map(|c| c.join().unwrap()).sum();
    assert!(status.success(), "{status}");
    assert!(
        answered >= 40,
        "too little load to mean anything: {answered}"
    );
    let rows = count_rows(&data_dir);
    assert_eq!(rows, answered, "one row per answered request");
    drop(mock);
}

fn count_rows(data_dir: &Path) -> u64 {
    let conn = rusqlite::Connection::open(data_dir.join("logs.sqlite")).unwrap();
    conn.query_row("SELECT COUNT(*) FROM request_log", [], |r| {
        r.get::<_, i64>(0)
    })
    .unwrap() as u64
}

#[test]
fn upstream_keys_rotate_with_key_load_balance() {
    let s = setup(json!({}));
    s.add_channel(json!({"name": "two-keys", "baseUrl": s.mock.base_url(),
        "apiKeys": ["sk-rotate-key-one-0000000", "sk-rotate-key-two-0000000"], "keyLoadBalance": "round-robin"}));
    for _ in 0..4 {
        assert_eq!(s.messages(&hello()).0, 200);
    }
    let used: Vec<String> = s
        .mock
        .requests()
        .iter()
        .map(|r| r.header("x-api-key").unwrap().to_string())
        .collect();
    assert_eq!(used.len(), 4);
    assert!(
        used.windows(2).all(|w| w[0] != w[1]),
        "round-robin alternates: {used:?}"
    );
}

/// A TLS acceptor with a throwaway self-signed certificate for `localhost` (made by openssl),
/// offering `alpn`.
fn self_signed_acceptor(dir: &Path, alpn: &[&[u8]]) -> tokio_rustls::TlsAcceptor {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let made = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
        ])
        .args([
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
            "-keyout",
        ])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let key = PrivateKeyDer::from_pem_file(&key).unwrap();
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config))
}

/// A TLS front for the mock (HTTP/1.1 only): bytes copied to the mock's plain HTTP port.
/// Returns its port.
fn tls_front(s: &Setup, dir: &Path) -> u16 {
    let acceptor = self_signed_acceptor(dir, &[b"http/1.1"]);
    let mock_addr = s.mock.addr;
    let listener = s
        .runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    let runtime = s.runtime.handle().clone();
    s.runtime.spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            runtime.spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let Ok(mut plain) = tokio::net::TcpStream::connect(mock_addr).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
            });
        }
    });
    port
}

#[test]
fn https_upstreams_are_verified_unless_insecure_skip_verify() {
    // A refused certificate is a 502: fail over at once instead of retrying it.
    let s = setup(
        json!({"failover": {"enabled": true, "rules": [{"errorCodes": "502", "actionChain": [{"action": "failover"}]}]}}),
    );
    let port = tls_front(&s, s.tmp.path());
    s.add_channel(
        json!({"name": "self-signed", "baseUrl": format!("https://localhost:{port}"),
        "insecureSkipVerify": true}),
    );
    let (status, body) = s.messages(&hello());
    assert_eq!(status, 200, "TLS with insecureSkipVerify: {body}");
    assert_eq!(body["type"], "message");
    assert_eq!(
        s.mock.requests().last().unwrap().header("x-api-key"),
        Some(UPSTREAM_KEY)
    );

    // The same upstream with verification on: the unknown issuer is refused.
    let (status, _) = s.server.admin(
        "PATCH",
        &format!(
            "/channels/{}",
            s.server.admin("GET", "/channels", None).1["channels"][0]["id"]
                .as_str()
                .unwrap()
        ),
        Some(&json!({"insecureSkipVerify": false})),
    );
    assert_eq!(status, 200);
    let before = s.mock.stats().total_requests;
    let (status, body) = s.messages(&hello());
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["error"]["type"], "api_error", "{body}");
    assert_eq!(
        s.mock.stats().total_requests,
        before,
        "nothing reached the upstream"
    );
    let row = &s.rows(2)[0];
    assert!(
        row["upstream_error"]
            .as_str()
            .unwrap()
            .contains("connection failed"),
        "{row}"
    );
}

#[test]
fn upstream_connections_are_kept_alive_and_reused() {
    let s = setup(json!({}));
    s.channel("messages", "main", "claude", None, 1);
    s.mock.reset();
    let mut streamed = hello();
    streamed["stream"] = json!(true);
    for round in 0..3 {
        let (status, body) = s.messages(&hello());
        assert_eq!(status, 200, "round {round}: {body}");
        let (status, body) = s.messages(&streamed);
        assert_eq!(status, 200, "round {round}: {body}");
        assert!(body.as_str().unwrap().contains("message_stop"), "{body}");
    }
    let stats = s.mock.stats();
    assert_eq!(stats.total_requests, 6);
    assert_eq!(
        stats.connections_accepted, 1,
        "one keep-alive connection serves requests one after another: {stats:?}"
    );

    // Requests at the same time need connections of their own (the idle one is one of them);
    // afterwards all of them are reused.
    s.mock.reset();
    s.channel("messages", "slow", "claude", Some("latency=300"), 0);
    let parallel = |n: usize| {
        std::thread::scope(|scope| {
            let workers: Vec<_> = (0..n)
                .map(|_| scope.spawn(|| s.messages(&hello()).0))
                .collect();
            workers
                .into_iter()
                .map(|w| w.join().unwrap())
                .collect::<Vec<u16>>()
        })
    };
    assert_eq!(parallel(3), [200, 200, 200]);
    assert_eq!(parallel(3), [200, 200, 200]);
    let stats = s.mock.stats();
    assert_eq!(stats.total_requests, 6);
    assert_eq!(stats.max_in_flight, 3, "{stats:?}");
    assert_eq!(stats.connections_accepted, 2, "{stats:?}");
}

/// Connections a [`closing_upstream`] accepted and closed so far.
#[derive(Default)]
struct ClosingUpstream {
    accepted: std::sync::atomic::AtomicU64,
    closed: std::sync::atomic::AtomicU64,
}

/// An upstream that answers one request per connection and then closes it without saying so
/// (as a server does when it drops idle keep-alive connections). Returns its port and its
/// counts of connections.
fn closing_upstream() -> (u16, std::sync::Arc<ClosingUpstream>) {
    use std::sync::atomic::Ordering;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let counts = std::sync::Arc::new(ClosingUpstream::default());
    let counter = std::sync::Arc::clone(&counts);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            counter.accepted.fetch_add(1, Ordering::SeqCst);
            let mut seen = Vec::new();
            let mut buf = [0u8; 4096];
            // Head, then as many body bytes as it announces.
            let complete = |seen: &[u8]| {
                let text = String::from_utf8_lossy(seen);
                let Some((head, body)) = text.split_once("\r\n\r\n") else {
                    return false;
                };
                let length = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse::<usize>().unwrap())
                    })
                    .unwrap_or(0);
                body.len() >= length
            };
            while !complete(&seen) {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => seen.extend_from_slice(&buf[..n]),
                }
            }
            let body = json!({"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
                "content": [{"type": "text", "text": "hi"}], "stop_reason": "end_turn",
                "usage": {"input_tokens": 5, "output_tokens": 1}})
            .to_string();
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            );
            drop(stream);
            counter.closed.fetch_add(1, Ordering::SeqCst);
        }
    });
    (port, counts)
}

#[test]
fn a_connection_the_upstream_closed_is_not_reused() {
    let s = setup(json!({}));
    let (port, upstream) = closing_upstream();
    s.add_channel(json!({"name": "closing", "baseUrl": format!("http://127.0.0.1:{port}")}));
    for round in 0..3 {
        let (status, body) = s.messages(&hello());
        assert_eq!(status, 200, "round {round}: {body}");
        assert_eq!(body["content"][0]["text"], "hi");
        // The next request must find the connection closed, not race the upstream closing it.
        wait_until(
            Duration::from_secs(5),
            "the upstream to close the connection",
            || upstream.closed.load(std::sync::atomic::Ordering::SeqCst) == round + 1,
        );
    }
    assert_eq!(
        upstream.accepted.load(std::sync::atomic::Ordering::SeqCst),
        3,
        "each request needed a new connection"
    );
}

#[test]
fn https_upstreams_that_offer_http2_get_it() {
    use hyper::body::Incoming;
    use std::sync::Mutex;
    let s = setup(json!({}));
    let acceptor = self_signed_acceptor(s.tmp.path(), &[b"h2", b"http/1.1"]);
    let listener = s
        .runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen: std::sync::Arc<Mutex<(u64, Vec<String>)>> = std::sync::Arc::default();
    let record = std::sync::Arc::clone(&seen);
    let runtime = s.runtime.handle().clone();
    s.runtime.spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            record.lock().unwrap().0 += 1;
            let acceptor = acceptor.clone();
            let record = std::sync::Arc::clone(&record);
            runtime.spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
                    let record = std::sync::Arc::clone(&record);
                    async move {
                        let key = request.headers().get("x-api-key").map(|v| v.to_str().unwrap().to_string());
                        record.lock().unwrap().1.push(format!("{:?} {} {key:?}", request.version(), request.uri().path()));
                        let body = json!({"id": "msg_2", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
                            "content": [{"type": "text", "text": "over h2"}], "stop_reason": "end_turn",
                            "usage": {"input_tokens": 7, "output_tokens": 2}});
                        let response = hyper::Response::builder()
                            .header("content-type", "application/json")
                            .body(http_body_util::Full::new(bytes::Bytes::from(body.to_string())))
                            .unwrap();
                        Ok::<_, std::convert::Infallible>(response)
                    }
                });
                let _ = hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new())
                    .http2_only()
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    s.add_channel(json!({"name": "h2", "baseUrl": format!("https://localhost:{port}"), "insecureSkipVerify": true}));
    for _ in 0..3 {
        let (status, body) = s.messages(&hello());
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["content"][0]["text"], "over h2");
    }
    let (connections, requests) = seen.lock().unwrap().clone();
    assert_eq!(
        requests,
        vec![format!("HTTP/2.0 /v1/messages Some({UPSTREAM_KEY:?})"); 3]
    );
    assert_eq!(
        connections, 1,
        "one HTTP/2 connection carries every request"
    );
    let row = &s.rows(3)[0];
    assert_eq!(
        (row["input_tokens"].as_i64(), row["output_tokens"].as_i64()),
        (Some(7), Some(2))
    );
}
