use std::time::Duration;

use http_body_util::BodyExt;
use relaybox_mock_upstream::{
    MockOptions, MockUpstream, RECORD_CAPACITY, RecordedRequest, StatsSnapshot,
};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

use crate::common::*;

fn messages(stream: bool) -> Value {
    json!({"model": "claude-haiku-4-5", "max_tokens": 64, "stream": stream, "messages": [{"role": "user", "content": "Hi"}]})
}

#[tokio::test]
async fn dropping_a_stream_counts_as_cancelled() {
    let mock = mock().await;
    let url = format!(
        "{}/v1/messages",
        mock.scenario_url("chunk_delay=100,chunks=20")
    );
    let response = send("POST", &url, ANTHROPIC, Some(&messages(true))).await;
    let mut body = response.into_body();
    let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert!(first.starts_with(b"event: message_start"));
    assert_eq!(mock.stats().in_flight, 1);
    drop(body);
    let stats = wait_for_stats(&mock, |s| s.streams_cancelled == 1 && s.in_flight == 0).await;
    assert_eq!(stats.streams_started, 1);
    assert_eq!(stats.streams_completed, 0);
    assert_eq!(stats.streams_aborted, 0);
}

#[tokio::test]
async fn disconnecting_during_latency_cancels_the_stream() {
    let mock = mock().await;
    let body = messages(true).to_string();
    let mut socket = tokio::net::TcpStream::connect(mock.addr).await.unwrap();
    let request = format!(
        "POST /s/latency=5000/v1/messages HTTP/1.1\r\nhost: mock\r\nx-api-key: k\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    socket.write_all(request.as_bytes()).await.unwrap();
    wait_for_stats(&mock, |s| s.in_flight == 1).await;
    drop(socket);
    let stats = wait_for_stats(&mock, |s| s.streams_cancelled == 1 && s.in_flight == 0).await;
    assert_eq!(stats.streams_completed, 0);
}

#[tokio::test]
async fn in_flight_high_water_mark() {
    let mock = mock().await;
    let url = format!("{}/v1/messages", mock.scenario_url("latency=300"));
    let body = messages(false);
    let requests = (0..5).map(|_| post(&url, ANTHROPIC, &body));
    let probe = async {
        let stats = wait_for_stats(&mock, |s| s.in_flight == 5).await;
        assert_eq!(stats.max_in_flight, 5);
    };
    let (replies, ()) = tokio::join!(futures_util::future::join_all(requests), probe);
    assert!(replies.iter().all(|r| r.status == 200));
    let stats = wait_for_stats(&mock, |s| s.in_flight == 0).await;
    assert_eq!(stats.max_in_flight, 5);
    assert_eq!(stats.total_requests, 5);
    mock.reset();
    assert_eq!(mock.stats(), StatsSnapshot::default());
}

#[tokio::test]
async fn completed_streams_and_per_path_counts() {
    let mock = mock().await;
    let base = mock.base_url();
    post(&format!("{base}/v1/messages"), ANTHROPIC, &messages(true)).await;
    post(&format!("{base}/v1/messages"), ANTHROPIC, &messages(false)).await;
    post(
        &format!("{base}/s/chunks=2/v1/messages"),
        ANTHROPIC,
        &messages(true),
    )
    .await;
    get(&format!("{base}/v1/models?limit=5"), OPENAI).await;
    let stats = wait_for_stats(&mock, |s| s.streams_completed == 2).await;
    assert_eq!(stats.total_requests, 4);
    assert_eq!(stats.streams_started, 2);
    assert_eq!(stats.per_path.get("/v1/messages"), Some(&2));
    assert_eq!(stats.per_path.get("/s/chunks=2/v1/messages"), Some(&1));
    assert_eq!(stats.per_path.get("/v1/models"), Some(&1));
    assert_eq!(stats.in_flight, 0);
}

#[tokio::test]
async fn requests_are_recorded_in_a_ring_buffer() {
    let mock = mock().await;
    let url = format!(
        "{}/s/chunks=2,require_key=k1/v1/messages?beta=true",
        mock.base_url()
    );
    let body = messages(false);
    post(
        &url,
        &[("x-api-key", "k1"), ("anthropic-beta", "tools-1")],
        &body,
    )
    .await;
    let recorded = mock.requests();
    assert_eq!(recorded.len(), 1);
    let request = &recorded[0];
    assert_eq!(request.method, "POST");
    assert_eq!(
        request.path,
        "/s/chunks=2,require_key=k1/v1/messages?beta=true"
    );
    assert_eq!(request.header("X-Api-Key"), Some("k1"));
    assert_eq!(request.header("anthropic-beta"), Some("tools-1"));
    assert_eq!(request.body, body);
    assert_eq!(request.scenario.chunks, 2);
    assert_eq!(request.scenario.require_key.as_deref(), Some("k1"));
    assert_eq!(request.scenario.directives, "chunks=2,require_key=k1");
    assert_eq!(request.status, 200);

    // Non-JSON bodies are kept as text.
    let raw = collect(
        client()
            .request(
                hyper::Request::post(format!("{}/v1/messages", mock.base_url()))
                    .header("x-api-key", "k")
                    .body(http_body_util::Full::new(bytes::Bytes::from_static(
                        b"not json",
                    )))
                    .unwrap(),
            )
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(raw.status, 400);
    assert_eq!(mock.requests().last().unwrap().body, json!("not json"));

    let total = RECORD_CAPACITY + 20;
    for i in 0..total {
        get(&format!("{}/v1/models?i={i}", mock.base_url()), OPENAI).await;
    }
    let recorded = mock.requests();
    assert_eq!(recorded.len(), RECORD_CAPACITY);
    assert_eq!(
        recorded.last().unwrap().path,
        format!("/v1/models?i={}", total - 1)
    );
    assert_eq!(
        recorded[0].path,
        format!("/v1/models?i={}", total - RECORD_CAPACITY)
    );
}

#[tokio::test]
async fn no_record_keeps_nothing() {
    let mock = MockUpstream::start(MockOptions {
        record: false,
        ..MockOptions::default()
    })
    .await
    .unwrap();
    let reply = post(
        &format!("{}/v1/messages", mock.base_url()),
        ANTHROPIC,
        &messages(false),
    )
    .await;
    assert_eq!(reply.status, 200);
    assert!(mock.requests().is_empty());
    assert_eq!(mock.stats().total_requests, 1);
}

#[tokio::test]
async fn control_endpoints() {
    let mock = mock().await;
    let base = mock.base_url();
    post(&format!("{base}/v1/messages"), ANTHROPIC, &messages(false)).await;

    let stats: StatsSnapshot =
        serde_json::from_value(get(&format!("{base}/_mock/stats"), &[]).await.json()).unwrap();
    assert_eq!(stats.total_requests, 1);
    let requests: Vec<RecordedRequest> =
        serde_json::from_value(get(&format!("{base}/_mock/requests"), &[]).await.json()).unwrap();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].path, "/v1/messages");

    let reset = collect(send("POST", &format!("{base}/_mock/reset"), &[], None).await).await;
    assert_eq!(reset.json(), json!({"ok": true}));
    assert!(mock.requests().is_empty());
    // Control calls themselves are not counted.
    assert_eq!(mock.stats().total_requests, 0);
}

#[tokio::test]
async fn shutdown_and_drop_stop_the_server() {
    let mock = mock().await;
    let addr = mock.addr;
    assert!(tokio::net::TcpStream::connect(addr).await.is_ok());
    mock.shutdown().await;
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());

    let mock = crate::common::mock().await;
    let addr = mock.addr;
    // A stream in progress is cut when the mock goes away.
    let url = format!(
        "{}/v1/messages",
        mock.scenario_url("chunk_delay=200,chunks=50")
    );
    let response = send("POST", &url, ANTHROPIC, Some(&messages(true))).await;
    drop(mock);
    let collected = tokio::time::timeout(Duration::from_secs(5), collect(response))
        .await
        .unwrap();
    assert!(collected.error.is_some());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while tokio::net::TcpStream::connect(addr).await.is_ok() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "still listening after drop"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
