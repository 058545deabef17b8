//! The one HTTP entrance: every response, whichever route served it (the relay's fast path,
//! the router, an unknown path, the admin API), carries a request id; a usable client id is
//! kept.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

mod common;

use std::io::{Read as _, Write as _};
use std::net::TcpStream;

use common::relay_env::{hello, setup};
use serde_json::json;

/// One request; the response head, lower-cased.
fn head(url: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> String {
    let host = url.strip_prefix("http://").unwrap();
    let mut stream = TcpStream::connect(host).unwrap();
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nhost: {host}\r\nconnection: close\r\ncontent-length: {}\r\ncontent-type: application/json\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes()).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).to_lowercase();
    text.split_once("\r\n\r\n").unwrap().0.to_string()
}

fn request_id(head: &str) -> Option<String> {
    head.lines()
        .find_map(|line| line.strip_prefix("x-request-id: "))
        .map(str::to_string)
}

#[test]
fn every_route_answers_through_the_same_entrance() {
    let env = setup(json!({}));
    env.channel("messages", "mock", "claude", None, 0);
    let url = &env.server.url;
    let key = env.key.clone();
    let body = hello().to_string();
    let admin = format!("Bearer {}", common::ADMIN_KEY);
    let cases = [
        (
            "POST",
            "/v1/messages",
            vec![("x-api-key", key.as_str())],
            body.as_str(),
            "200",
        ),
        ("POST", "/v1/messages", vec![], body.as_str(), "401"),
        ("GET", "/health", vec![], "", "200"),
        (
            "GET",
            "/admin/api/keys",
            vec![("authorization", admin.as_str())],
            "",
            "200",
        ),
        ("GET", "/no/such/path", vec![], "", "404"),
    ];
    let mut ids = Vec::new();
    for (method, path, headers, body, status) in cases {
        let head = head(url, method, path, &headers, body);
        assert!(
            head.starts_with(&format!("http/1.1 {status}")),
            "{path}: {head}"
        );
        let id = request_id(&head).unwrap_or_else(|| panic!("{path}: no request id in {head}"));
        ids.push(id);
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 5, "request ids are unique: {ids:?}");

    // A usable id from the client is kept; an unusable one is replaced.
    let kept = head(url, "GET", "/health", &[("x-request-id", "trace-42")], "");
    assert_eq!(request_id(&kept).as_deref(), Some("trace-42"));
    let replaced = head(url, "GET", "/health", &[("x-request-id", "has space")], "");
    let id = request_id(&replaced).unwrap();
    assert!(!id.contains(' ') && !id.is_empty(), "{id}");
}
