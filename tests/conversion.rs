//! Protocol conversion through the real binary and the mock upstream: which channels may serve
//! a pool, what the upstream receives, what the client gets back (answers, streams, errors,
//! counts), composite channels, the Gemini aliases and the log row. The official-SDK stories of
//! all twelve pairs are in tests/sdk/test_conversion.py; the event-by-event golden comparisons
//! in tests/conversion_golden.rs.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

mod common;

use common::relay_env::{Setup, hello, setup};
use common::{request, request_raw};
use serde_json::{Value, json};

fn post(s: &Setup, path: &str, body: &Value) -> (u16, Value) {
    request(
        "POST",
        &format!("{}{path}", s.server.url),
        &[("authorization", &format!("Bearer {}", s.key))],
        Some(body),
    )
    .unwrap()
}

fn post_raw(s: &Setup, path: &str, body: &Value) -> (u16, String) {
    request_raw(
        "POST",
        &format!("{}{path}", s.server.url),
        &[("authorization", &format!("Bearer {}", s.key))],
        Some(&body.to_string()),
    )
    .unwrap()
}

fn last_upstream_request(s: &Setup) -> relaybox_mock_upstream::RecordedRequest {
    s.mock.requests().pop().expect("the upstream got a request")
}

#[test]
fn a_channel_that_cannot_serve_its_pool_is_refused_when_created() {
    let s = setup(json!({}));
    for (pool, service_type, names) in [
        ("chat", "openai-oauth", "responses pool"),
        ("gemini", "composite", "messages pool"),
        ("messages", "cohere", "cohere"),
    ] {
        let (status, body) = s.server.admin(
            "POST",
            "/channels",
            Some(&json!({"pool": pool, "name": "x", "serviceType": service_type, "baseUrl": s.mock.base_url(), "apiKeys": ["k"]})),
        );
        assert_eq!(status, 400, "{pool}/{service_type}: {body}");
        let text = body.to_string();
        assert!(
            text.contains("serviceType") && text.contains(names),
            "{text}"
        );
    }
    let (_, channels) = s.server.admin("GET", "/channels", None);
    assert_eq!(
        channels["channels"].as_array().map(Vec::len),
        Some(0),
        "{channels}"
    );
}

#[test]
fn an_anthropic_client_is_answered_by_an_openai_chat_upstream() {
    let s = setup(json!({}));
    s.channel(
        "messages",
        "chat-upstream",
        "openai",
        Some("input_tokens=21,output_tokens=7"),
        1,
    );
    let (status, body) = s.messages(&hello());
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["type"], "message", "{body}");
    assert_eq!(body["role"], "assistant");
    assert!(
        body["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("mock upstream"),
        "{body}"
    );
    assert_eq!(body["usage"]["input_tokens"], 21, "{body}");
    assert_eq!(body["usage"]["output_tokens"], 7, "{body}");
    let seen = last_upstream_request(&s);
    assert!(seen.path.ends_with("/v1/chat/completions"), "{}", seen.path);
    assert_eq!(seen.body["messages"][0]["role"], "user", "{}", seen.body);
    assert_eq!(seen.body["model"], "claude-sonnet-4-5");
    assert!(
        seen.header("anthropic-version").is_none(),
        "Anthropic headers stay home"
    );
    let row = &s.rows(1)[0];
    assert_eq!(row["status"], "success", "{row}");
    assert_eq!(
        (row["input_tokens"].as_i64(), row["output_tokens"].as_i64()),
        (Some(21), Some(7))
    );
    let expected = 21.0 * 3.0 / 1e6 + 7.0 * 15.0 / 1e6;
    assert!(
        (row["price"].as_str().unwrap().parse::<f64>().unwrap() - expected).abs() < 1e-9,
        "{row}"
    );
    assert!(
        row["failover_info"]
            .as_str()
            .unwrap_or("")
            .contains("anthropic→openai_chat"),
        "the row names the conversion: {row}"
    );
}

#[test]
fn a_streamed_answer_of_a_gemini_upstream_reaches_an_anthropic_client_as_its_events() {
    let s = setup(json!({}));
    s.channel(
        "messages",
        "gemini-upstream",
        "gemini",
        Some("chunks=4,input_tokens=30,output_tokens=9"),
        1,
    );
    let mut body = hello();
    body["stream"] = json!(true);
    let (status, text) = post_raw(&s, "/v1/messages", &body);
    assert_eq!(status, 200, "{text}");
    let names: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("event: "))
        .collect();
    assert_eq!(names.first(), Some(&"message_start"), "{text}");
    assert_eq!(names.last(), Some(&"message_stop"), "{text}");
    assert!(names.contains(&"content_block_delta"), "{text}");
    let seen = last_upstream_request(&s);
    assert!(
        seen.path
            .contains("/v1beta/models/claude-sonnet-4-5:streamGenerateContent")
            && seen.path.ends_with("alt=sse"),
        "{}",
        seen.path
    );
    assert!(seen.body["contents"].is_array(), "{}", seen.body);
    let row = &s.rows(1)[0];
    assert_eq!(row["status"], "success", "{row}");
    assert_eq!(
        (row["input_tokens"].as_i64(), row["output_tokens"].as_i64()),
        (Some(30), Some(9)),
        "{row}"
    );
}

#[test]
fn an_upstream_error_is_retold_in_the_clients_protocol_with_its_status() {
    let s = setup(json!({}));
    s.channel("chat", "claude-upstream", "claude", Some("status=400"), 1);
    let (status, body) = post(
        &s,
        "/v1/chat/completions",
        &json!({"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": "hi"}]}),
    );
    assert_eq!(status, 400, "{body}");
    // OpenAI's shape, not Anthropic's.
    assert!(body["error"]["message"].is_string(), "{body}");
    assert!(body.get("type").is_none(), "{body}");
    assert_eq!(body["error"]["type"], "invalid_request_error", "{body}");
}

#[test]
fn a_feature_the_upstream_cannot_express_is_refused_before_anything_is_sent() {
    let s = setup(json!({}));
    s.channel("chat", "claude-upstream", "claude", None, 1);
    let (status, body) = post(
        &s,
        "/v1/chat/completions",
        &json!({"model": "claude-sonnet-4-5", "n": 2, "messages": [{"role": "user", "content": "hi"}]}),
    );
    assert_eq!(status, 400, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with('n')
            && message.contains("cannot be used")
            && message.contains("anthropic"),
        "names the field and the upstream's protocol: {message}"
    );
    assert!(s.mock.requests().is_empty(), "nothing was sent upstream");
    let row = &s.rows(1)[0];
    assert_eq!(row["http_status"], 400, "{row}");
}

#[test]
fn token_counts_come_from_the_upstream_or_are_marked_as_estimates() {
    let s = setup(json!({}));
    s.channel("messages", "gemini-upstream", "gemini", None, 1);
    let count_body = json!({"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": "How many tokens is this sentence?"}]});
    let (status, body) = post(&s, "/v1/messages/count_tokens", &count_body);
    assert_eq!(status, 200, "{body}");
    let seen = last_upstream_request(&s);
    assert!(seen.path.ends_with(":countTokens"), "{}", seen.path);
    assert!(body["input_tokens"].as_u64().unwrap() > 0, "{body}");

    let s = setup(json!({}));
    s.channel("messages", "chat-upstream", "openai", None, 1);
    let (status, text) = request_raw(
        "POST",
        &format!("{}/v1/messages/count_tokens", s.server.url),
        &[("x-api-key", &s.key)],
        Some(&count_body.to_string()),
    )
    .unwrap();
    assert_eq!(status, 200, "{text}");
    let body: Value = serde_json::from_str(&text).unwrap();
    // 33 bytes of text → ⌈33 / 4⌉ = 9.
    assert_eq!(body["input_tokens"], 9, "{body}");
    assert!(
        s.mock.requests().is_empty(),
        "OpenAI Chat has no count endpoint: nothing sent"
    );
}

#[test]
fn gemini_count_tokens_and_cc_bridge_paths_work() {
    let s = setup(json!({}));
    s.channel(
        "gemini",
        "gemini-upstream",
        "gemini",
        Some("output_tokens=5"),
        1,
    );
    let generate = json!({"contents": [{"role": "user", "parts": [{"text": "Hello"}]}]});
    let (status, body) = post(
        &s,
        "/v1/gemini/models/gemini-2.5-flash:generateContent",
        &generate,
    );
    assert_eq!(status, 200, "{body}");
    assert!(
        body["candidates"][0]["content"]["parts"][0]["text"].is_string(),
        "{body}"
    );
    let (status, body) = post(&s, "/v1beta/models/gemini-2.5-flash:countTokens", &generate);
    assert_eq!(status, 200, "{body}");
    assert!(body["totalTokens"].as_u64().is_some(), "{body}");
    assert!(
        last_upstream_request(&s)
            .path
            .ends_with("gemini-2.5-flash:countTokens")
    );
    // A count on an Anthropic upstream for a Gemini client.
    let s = setup(json!({}));
    s.channel("gemini", "claude-upstream", "claude", None, 1);
    let (status, body) = post(
        &s,
        "/v1beta/models/claude-sonnet-4-5:countTokens",
        &generate,
    );
    assert_eq!(status, 200, "{body}");
    assert!(body["totalTokens"].as_u64().unwrap() > 0, "{body}");
    let seen = last_upstream_request(&s);
    assert!(
        seen.path.ends_with("/v1/messages/count_tokens"),
        "{}",
        seen.path
    );
    assert!(seen.body.get("max_tokens").is_none(), "{}", seen.body);
}

#[test]
fn a_composite_channel_sends_each_model_family_to_its_target() {
    let s = setup(json!({}));
    let cheap = s.channel("messages", "cheap-chat", "openai", None, 5);
    let s_id = s.add_channel(json!({
        "name": "mix", "serviceType": "composite", "baseUrl": "",
        "compositeMappings": [{"pattern": "haiku", "targetChannelId": cheap, "targetModel": "gpt-4o-mini"}]
    }));
    assert!(!s_id.is_empty());
    let mut body = hello();
    body["model"] = json!("claude-haiku-4-5");
    let (status, answer) = s.messages(&body);
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["type"], "message");
    let seen = last_upstream_request(&s);
    assert!(seen.path.ends_with("/v1/chat/completions"), "{}", seen.path);
    assert_eq!(seen.body["model"], "gpt-4o-mini");
    // A model no mapping covers: the composite has nothing to offer, the direct channel serves.
    let mut body = hello();
    body["model"] = json!("claude-opus-4-1");
    let (status, answer) = s.messages(&body);
    assert_eq!(status, 200, "{answer}");
    assert_eq!(last_upstream_request(&s).body["model"], "claude-opus-4-1");
}
