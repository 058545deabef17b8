//! A small HTTP client and SSE helpers for the tests.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{HeaderMap, Request, Response, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use relaybox_mock_upstream::{MockOptions, MockUpstream, StatsSnapshot};
use serde_json::Value;

pub const ANTHROPIC: &[(&str, &str)] = &[
    ("x-api-key", "sk-ant-test"),
    ("anthropic-version", "2023-06-01"),
];
pub const OPENAI: &[(&str, &str)] = &[("authorization", "Bearer sk-openai-test")];
pub const GEMINI: &[(&str, &str)] = &[("x-goog-api-key", "gemini-test")];

pub async fn mock() -> MockUpstream {
    MockUpstream::start(MockOptions::default()).await.unwrap()
}

pub fn client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build_http()
}

/// Sends a request and returns the response with its body unread.
pub async fn send(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<&Value>,
) -> Response<Incoming> {
    let mut builder = Request::builder().method(method).uri(url);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let body = body.map_or_else(Bytes::new, |b| Bytes::from(b.to_string()));
    if !body.is_empty() {
        builder = builder.header("content-type", "application/json");
    }
    client()
        .request(builder.body(Full::new(body)).unwrap())
        .await
        .unwrap()
}

pub async fn post(url: &str, headers: &[(&str, &str)], body: &Value) -> Collected {
    collect(send("POST", url, headers, Some(body)).await).await
}

pub async fn get(url: &str, headers: &[(&str, &str)]) -> Collected {
    collect(send("GET", url, headers, None).await).await
}

/// A whole response; `error` is set when the body broke off.
#[derive(Debug)]
pub struct Collected {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub frames: Vec<Bytes>,
    pub error: Option<String>,
}

pub async fn collect(response: Response<Incoming>) -> Collected {
    let status = response.status();
    let headers = response.headers().clone();
    let mut body = response.into_body();
    let mut frames = Vec::new();
    let mut error = None;
    loop {
        match body.frame().await {
            None => break,
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    frames.push(data);
                }
            }
            Some(Err(e)) => {
                error = Some(e.to_string());
                break;
            }
        }
    }
    Collected {
        status,
        headers,
        frames,
        error,
    }
}

impl Collected {
    pub fn text(&self) -> String {
        String::from_utf8(self.frames.concat()).unwrap()
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text()).unwrap_or_else(|e| panic!("{e}: {}", self.text()))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }

    /// The SSE events (CRLF framing is normalised first).
    pub fn events(&self) -> Vec<Event> {
        parse_sse(&self.text())
    }

    /// The `data:` payloads parsed as JSON, `[DONE]` excluded.
    pub fn data(&self) -> Vec<Value> {
        self.events()
            .into_iter()
            .filter(|e| e.data != "[DONE]")
            .map(|e| serde_json::from_str(&e.data).unwrap())
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub event: Option<String>,
    pub data: String,
}

impl Event {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.data).unwrap()
    }
}

pub fn parse_sse(text: &str) -> Vec<Event> {
    text.replace("\r\n", "\n")
        .split("\n\n")
        .filter(|block| !block.trim().is_empty())
        .map(|block| {
            let mut event = None;
            let mut data = String::new();
            for line in block.lines() {
                if let Some(name) = line.strip_prefix("event: ") {
                    event = Some(name.to_owned());
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data.push_str(d);
                } else {
                    panic!("unexpected SSE line {line:?}");
                }
            }
            Event { event, data }
        })
        .collect()
}

/// Polls the stats until `done` holds (or panics after 5 s).
pub async fn wait_for_stats(
    mock: &MockUpstream,
    done: impl Fn(&StatsSnapshot) -> bool,
) -> StatsSnapshot {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let stats = mock.stats();
        if done(&stats) {
            return stats;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "stats never settled: {stats:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// "Hello from the mock upstream. This is reply number K." for any K.
pub fn is_default_reply(text: &str) -> bool {
    text.starts_with("Hello from the mock upstream. This is reply number ") && text.ends_with('.')
}
