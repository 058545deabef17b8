use std::time::{Duration, Instant};

use relaybox_mock_upstream::{MockOptions, MockUpstream};
use serde_json::{Value, json};

use crate::common::*;

fn messages(stream: bool) -> Value {
    json!({"model": "claude-haiku-4-5", "max_tokens": 64, "stream": stream, "messages": [{"role": "user", "content": "Hi"}]})
}

#[tokio::test]
async fn fail_times_fails_then_recovers_per_directive_string() {
    let mock = mock().await;
    let flaky = format!(
        "{}/v1/messages",
        mock.scenario_url("status=503,fail_times=2")
    );
    let other = format!(
        "{}/v1/messages",
        mock.scenario_url("status=503,fail_times=1")
    );
    let statuses = |replies: Vec<Collected>| {
        replies
            .iter()
            .map(|r| r.status.as_u16())
            .collect::<Vec<_>>()
    };

    let mut replies = Vec::new();
    for _ in 0..4 {
        replies.push(post(&flaky, ANTHROPIC, &messages(false)).await);
    }
    assert_eq!(statuses(replies), [503, 503, 200, 200]);
    // Another directive string has its own counter.
    let replies = vec![
        post(&other, ANTHROPIC, &messages(false)).await,
        post(&other, ANTHROPIC, &messages(false)).await,
    ];
    assert_eq!(statuses(replies), [503, 200]);

    let recorded: Vec<u16> = mock.requests().iter().map(|r| r.status).collect();
    assert_eq!(recorded, [503, 503, 200, 200, 503, 200]);

    // Reset starts the counters again.
    mock.reset();
    assert_eq!(post(&flaky, ANTHROPIC, &messages(false)).await.status, 503);

    // Over the control endpoint too.
    let reset = collect(
        send(
            "POST",
            &format!("{}/_mock/reset", mock.base_url()),
            &[],
            None,
        )
        .await,
    )
    .await;
    assert_eq!(reset.status, 200);
    assert_eq!(post(&flaky, ANTHROPIC, &messages(false)).await.status, 503);
}

#[tokio::test]
async fn status_with_retry_after() {
    let mock = mock().await;
    let reply = post(
        &format!(
            "{}/v1/messages",
            mock.scenario_url("status=429,retry_after=2")
        ),
        ANTHROPIC,
        &messages(false),
    )
    .await;
    assert_eq!(reply.status, 429);
    assert_eq!(reply.header("retry-after"), Some("2"));
    assert_eq!(reply.json()["error"]["type"], "rate_limit_error");

    let reply = post(
        &format!("{}/v1/messages", mock.scenario_url("status=429")),
        ANTHROPIC,
        &messages(false),
    )
    .await;
    assert_eq!(reply.header("retry-after"), None);
}

#[tokio::test]
async fn cut_after_aborts_the_stream_mid_way() {
    let mock = mock().await;
    let reply = post(
        &format!("{}/v1/messages", mock.scenario_url("cut_after=2")),
        ANTHROPIC,
        &messages(true),
    )
    .await;
    assert_eq!(reply.status, 200);
    assert!(reply.error.is_some(), "the body must break off");
    let events = parse_sse(&reply.text());
    let names: Vec<&str> = events.iter().map(|e| e.event.as_deref().unwrap()).collect();
    assert_eq!(names, ["message_start", "content_block_start"]);
    let stats = wait_for_stats(&mock, |s| s.streams_aborted == 1 && s.in_flight == 0).await;
    assert_eq!(stats.streams_completed, 0);
    assert_eq!(stats.streams_cancelled, 0);

    // With a delay between events, on the OpenAI stream.
    let reply = post(
        &format!(
            "{}/v1/chat/completions",
            mock.scenario_url("cut_after=3,chunk_delay=20")
        ),
        OPENAI,
        &json!({"model": "gpt-4o", "stream": true, "messages": [{"role": "user", "content": "x"}]}),
    )
    .await;
    assert!(reply.error.is_some());
    assert_eq!(parse_sse(&reply.text()).len(), 3);
    assert!(!reply.text().contains("[DONE]"));

    // A non-streamed reply is cut half-way through its JSON.
    let reply = post(
        &format!("{}/v1/messages", mock.scenario_url("cut_after=1")),
        ANTHROPIC,
        &messages(false),
    )
    .await;
    assert!(reply.error.is_some());
    assert!(serde_json::from_slice::<Value>(&reply.frames.concat()).is_err());
}

#[tokio::test]
async fn require_key_checks_the_credential() {
    let mock = mock().await;
    let url = format!("{}/v1/messages", mock.scenario_url("require_key=sk-good"));
    let reply = post(&url, &[("x-api-key", "sk-bad")], &messages(false)).await;
    assert_eq!(reply.status, 401);
    assert_eq!(reply.json()["error"]["type"], "authentication_error");
    let reply = post(&url, &[("x-api-key", "sk-good")], &messages(false)).await;
    assert_eq!(reply.status, 200);
    let reply = post(
        &url,
        &[("authorization", "Bearer sk-good")],
        &messages(false),
    )
    .await;
    assert_eq!(reply.status, 200);

    let url = format!(
        "{}/v1/chat/completions",
        mock.scenario_url("require_key=sk-good")
    );
    let body = json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "x"}]});
    let reply = post(&url, &[("authorization", "Bearer sk-bad")], &body).await;
    assert_eq!(reply.status, 401);
    assert_eq!(reply.json()["error"]["code"], "invalid_api_key");
}

#[tokio::test]
async fn latency_and_chunk_delay() {
    let mock = mock().await;
    let started = Instant::now();
    let reply = post(
        &format!("{}/v1/messages", mock.scenario_url("latency=150")),
        ANTHROPIC,
        &messages(false),
    )
    .await;
    assert_eq!(reply.status, 200);
    assert!(started.elapsed() >= Duration::from_millis(150));

    let started = Instant::now();
    let reply = post(
        &format!(
            "{}/v1/messages",
            mock.scenario_url("chunk_delay=30,chunks=4")
        ),
        ANTHROPIC,
        &messages(true),
    )
    .await;
    // 4 deltas + 6 other events = 10 events, 9 gaps.
    assert_eq!(reply.events().len(), 10);
    assert!(started.elapsed() >= Duration::from_millis(9 * 30));
    // Events arrive one by one, not in one lump.
    assert_eq!(reply.frames.len(), 10);

    let slow = MockUpstream::start(MockOptions {
        latency_ms: 120,
        ..MockOptions::default()
    })
    .await
    .unwrap();
    let started = Instant::now();
    let reply = post(
        &format!("{}/v1/messages", slow.base_url()),
        ANTHROPIC,
        &messages(false),
    )
    .await;
    assert_eq!(reply.status, 200);
    assert!(started.elapsed() >= Duration::from_millis(120));
}

#[tokio::test]
async fn chunks_and_usage_overrides() {
    let mock = mock().await;
    let reply = post(
        &format!("{}/v1/messages", mock.scenario_url("chunks=12")),
        ANTHROPIC,
        &messages(true),
    )
    .await;
    let events = reply.events();
    let deltas = events
        .iter()
        .filter(|e| e.event.as_deref() == Some("content_block_delta"))
        .count();
    assert_eq!(deltas, 12);
    let delta = events
        .iter()
        .find(|e| e.event.as_deref() == Some("message_delta"))
        .unwrap();
    assert_eq!(delta.json()["usage"]["output_tokens"], 12);

    let url = format!(
        "{}/v1/messages",
        mock.scenario_url("input_tokens=100,output_tokens=7,cache_read=20,cache_creation=30")
    );
    let usage = post(&url, ANTHROPIC, &messages(false)).await.json()["usage"].clone();
    assert_eq!(
        usage,
        json!({"input_tokens": 100, "output_tokens": 7, "cache_read_input_tokens": 20, "cache_creation_input_tokens": 30})
    );
    let events = post(&url, ANTHROPIC, &messages(true)).await.events();
    assert_eq!(
        events[0].json()["message"]["usage"]["cache_read_input_tokens"],
        20
    );
    assert_eq!(events[0].json()["message"]["usage"]["input_tokens"], 100);
    assert_eq!(events[7].json()["usage"]["output_tokens"], 7);
}

#[tokio::test]
async fn bad_directives_and_unknown_paths_are_reported() {
    let mock = mock().await;
    let reply = post(
        &format!("{}/v1/messages", mock.scenario_url("statuz=500")),
        ANTHROPIC,
        &messages(false),
    )
    .await;
    assert_eq!(reply.status, 400);
    assert!(
        reply.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("unknown directive `statuz`")
    );

    let reply = post(
        &format!("{}/v2/nothing", mock.base_url()),
        OPENAI,
        &json!({}),
    )
    .await;
    assert_eq!(reply.status, 404);
    assert!(reply.json()["error"]["message"].is_string());
    let last = mock.requests().pop().unwrap();
    assert_eq!(last.path, "/v2/nothing");
    assert_eq!(last.status, 404);
}
