//! Slow and stalled peers: a relay started with extra flags, and raw TCP clients that send a
//! request head or body piece by piece and tell a closed connection from an open one.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use relaybox_mock_upstream::{MockOptions, MockUpstream};
use serde_json::{Value, json};

use super::TestServer;
use super::relay_env::Setup;

/// [`super::relay_env::setup`] with extra environment for `relaybox serve` (its timeout flags).
pub fn setup_with_env(settings_patch: Value, env: &[(&str, &str)]) -> Setup {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mock = runtime
        .block_on(MockUpstream::start(MockOptions::default()))
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let server = TestServer::start(&tmp.path().join("data"), env);
    let (_, mut settings) = server.admin("GET", "/settings", None);
    for (k, v) in settings_patch.as_object().unwrap() {
        settings[k] = v.clone();
    }
    let (status, body) = server.admin("PUT", "/settings", Some(&settings));
    assert_eq!(status, 200, "{body}");
    let (_, created) = server.admin("POST", "/keys", Some(&json!({"name": "tester"})));
    let key = created["plaintext"].as_str().unwrap().to_string();
    let key_id = created["key"]["id"].as_str().unwrap().to_string();
    Setup {
        server,
        mock,
        runtime,
        key,
        key_id,
        tmp,
    }
}

/// A TCP connection to the server behind `url` (`http://host:port`).
pub fn connect(url: &str) -> TcpStream {
    let host = url.strip_prefix("http://").expect("http url");
    let stream = TcpStream::connect(host).unwrap();
    stream.set_nodelay(true).unwrap();
    stream
}

/// What the peer did within `within`: closed the connection (after sending what it sent), or
/// left it open.
#[derive(Debug, PartialEq, Eq)]
pub enum Peer {
    Closed(String),
    Open,
}

/// Read until the server closes the connection or `within` passes.
pub fn read_until_closed(stream: &mut TcpStream, within: Duration) -> Peer {
    let deadline = Instant::now() + within;
    let mut received = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Peer::Open;
        }
        stream.set_read_timeout(Some(left)).unwrap();
        match stream.read(&mut buf) {
            Ok(0) => return Peer::Closed(String::from_utf8_lossy(&received).into_owned()),
            Ok(n) => received.extend_from_slice(&buf[..n]),
            Err(err)
                if matches!(
                    err.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Peer::Open;
            }
            // Reset: closed with data unread on its side.
            Err(_) => return Peer::Closed(String::from_utf8_lossy(&received).into_owned()),
        }
    }
}

/// The status and body of a response that starts `text` (`Content-Length` or chunked).
pub fn parse_response(text: &str) -> (u16, String) {
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, body.to_string())
}

/// Send a request head; the body (if any) is up to the caller.
pub fn send_head(stream: &mut TcpStream, method: &str, path: &str, headers: &[(&str, &str)]) {
    let mut head = format!("{method} {path} HTTP/1.1\r\nhost: relay\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
}
