use serde_json::{Value, json};

use crate::common::*;

fn request(stream: bool) -> Value {
    // "Hello world!" is 12 bytes -> 3 input tokens.
    json!({
        "model": "claude-sonnet-4-5",
        "max_tokens": 100,
        "stream": stream,
        "messages": [{"role": "user", "content": "Hello world!"}]
    })
}

fn weather_tools() -> Value {
    json!([{
        "name": "get_weather",
        "description": "Weather for a city",
        "input_schema": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
            "required": ["city"]
        }
    }])
}

#[tokio::test]
async fn message_shape_and_usage() {
    let mock = mock().await;
    let reply = post(
        &format!("{}/v1/messages", mock.base_url()),
        ANTHROPIC,
        &request(false),
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert!(reply.header("request-id").unwrap().starts_with("req_"));
    let body = reply.json();
    assert!(body["id"].as_str().unwrap().starts_with("msg_"));
    assert_eq!(body["type"], "message");
    assert_eq!(body["role"], "assistant");
    assert_eq!(body["model"], "claude-sonnet-4-5");
    assert_eq!(body["content"][0]["type"], "text");
    assert!(is_default_reply(
        body["content"][0]["text"].as_str().unwrap()
    ));
    assert_eq!(body["stop_reason"], "end_turn");
    assert_eq!(body["stop_sequence"], Value::Null);
    assert_eq!(
        body["usage"],
        json!({"input_tokens": 3, "output_tokens": 10, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0})
    );
}

#[tokio::test]
async fn stream_follows_the_real_event_order() {
    let mock = mock().await;
    let reply = post(
        &format!("{}/v1/messages", mock.base_url()),
        ANTHROPIC,
        &request(true),
    )
    .await;
    assert_eq!(reply.status, 200);
    assert!(
        reply
            .header("content-type")
            .unwrap()
            .starts_with("text/event-stream")
    );
    assert!(reply.error.is_none());
    let events = reply.events();
    let names: Vec<&str> = events.iter().map(|e| e.event.as_deref().unwrap()).collect();
    assert_eq!(
        names,
        [
            "message_start",
            "content_block_start",
            "ping",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    for event in &events {
        assert_eq!(event.json()["type"], event.event.as_deref().unwrap());
    }
    let start = events[0].json();
    assert_eq!(start["message"]["model"], "claude-sonnet-4-5");
    assert_eq!(start["message"]["content"], json!([]));
    assert_eq!(
        start["message"]["usage"],
        json!({"input_tokens": 3, "output_tokens": 1, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0})
    );
    assert_eq!(
        events[1].json()["content_block"],
        json!({"type": "text", "text": ""})
    );
    let text: String = events[3..6]
        .iter()
        .map(|e| {
            let delta = e.json()["delta"].clone();
            assert_eq!(delta["type"], "text_delta");
            delta["text"].as_str().unwrap().to_owned()
        })
        .collect();
    assert!(is_default_reply(&text), "{text}");
    assert_eq!(
        events[7].json(),
        json!({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null}, "usage": {"output_tokens": 10}})
    );
    let stats = wait_for_stats(&mock, |s| s.streams_completed == 1).await;
    assert_eq!(stats.streams_cancelled, 0);
}

#[tokio::test]
async fn tools_give_a_tool_use_block() {
    let mock = mock().await;
    let url = format!("{}/v1/messages", mock.base_url());
    let mut body = request(false);
    body["tools"] = weather_tools();
    let reply = post(&url, ANTHROPIC, &body).await.json();
    assert_eq!(reply["stop_reason"], "tool_use");
    let block = &reply["content"][0];
    assert_eq!(block["type"], "tool_use");
    assert!(block["id"].as_str().unwrap().starts_with("toolu_"));
    assert_eq!(block["name"], "get_weather");
    assert_eq!(block["input"], json!({"city": "mock"}));

    body["stream"] = json!(true);
    let events = post(&url, ANTHROPIC, &body).await.events();
    let start = events[1].json();
    assert_eq!(start["content_block"]["type"], "tool_use");
    assert_eq!(start["content_block"]["name"], "get_weather");
    assert_eq!(start["content_block"]["input"], json!({}));
    let partial: String = events
        .iter()
        .filter(|e| e.event.as_deref() == Some("content_block_delta"))
        .map(|e| {
            let delta = e.json()["delta"].clone();
            assert_eq!(delta["type"], "input_json_delta");
            delta["partial_json"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(
        serde_json::from_str::<Value>(&partial).unwrap(),
        json!({"city": "mock"})
    );
    let delta = events
        .iter()
        .find(|e| e.event.as_deref() == Some("message_delta"))
        .unwrap();
    assert_eq!(delta.json()["delta"]["stop_reason"], "tool_use");

    // Once the tool result is in, the reply is text again.
    body["stream"] = json!(false);
    body["messages"] = json!([
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "x"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny"}]}
    ]);
    let reply = post(&url, ANTHROPIC, &body).await.json();
    assert_eq!(reply["stop_reason"], "end_turn");
    assert_eq!(reply["content"][0]["type"], "text");
}

#[tokio::test]
async fn count_tokens_uses_the_same_estimate() {
    let mock = mock().await;
    let body = request(false);
    let reply = post(
        &format!("{}/v1/messages/count_tokens", mock.base_url()),
        ANTHROPIC,
        &body,
    )
    .await;
    assert_eq!(reply.json(), json!({"input_tokens": 3}));
    assert_eq!(relaybox_mock_upstream::estimate_input_tokens(&body), 3);
    let reply = post(
        &format!(
            "{}/v1/messages/count_tokens",
            mock.scenario_url("input_tokens=42")
        ),
        ANTHROPIC,
        &body,
    )
    .await;
    assert_eq!(reply.json(), json!({"input_tokens": 42}));
}

#[tokio::test]
async fn errors_are_anthropic_shaped() {
    let mock = mock().await;
    let body = request(false);

    let reply = post(
        &format!("{}/v1/messages", mock.scenario_url("status=529")),
        ANTHROPIC,
        &body,
    )
    .await;
    assert_eq!(reply.status.as_u16(), 529);
    let error = reply.json();
    assert_eq!(error["type"], "error");
    assert_eq!(error["error"]["type"], "overloaded_error");
    assert!(error["error"]["message"].is_string());
    assert!(error["request_id"].as_str().unwrap().starts_with("req_"));

    for (status, kind) in [
        (400, "invalid_request_error"),
        (401, "authentication_error"),
        (403, "permission_error"),
        (404, "not_found_error"),
        (429, "rate_limit_error"),
        (500, "api_error"),
        (502, "api_error"),
        (503, "api_error"),
    ] {
        let reply = post(
            &format!(
                "{}/v1/messages",
                mock.scenario_url(&format!("status={status}"))
            ),
            ANTHROPIC,
            &body,
        )
        .await;
        assert_eq!(reply.status.as_u16(), status);
        assert_eq!(reply.json()["error"]["type"], kind, "status {status}");
    }

    let reply = post(
        &format!(
            "{}/v1/messages",
            mock.scenario_url("status=403,error_code=CREDIT_EXHAUSTED")
        ),
        ANTHROPIC,
        &body,
    )
    .await;
    let error = reply.json();
    assert_eq!(error["error"]["type"], "CREDIT_EXHAUSTED");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("CREDIT_EXHAUSTED")
    );

    // No credential at all; a bearer token counts as one.
    let reply = post(&format!("{}/v1/messages", mock.base_url()), &[], &body).await;
    assert_eq!(reply.status, 401);
    assert_eq!(reply.json()["error"]["type"], "authentication_error");
    let reply = post(
        &format!("{}/v1/messages", mock.base_url()),
        &[("authorization", "Bearer t")],
        &body,
    )
    .await;
    assert_eq!(reply.status, 200);

    // Missing required fields.
    let reply = post(
        &format!("{}/v1/messages", mock.base_url()),
        ANTHROPIC,
        &json!({"model": "m"}),
    )
    .await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.json()["error"]["type"], "invalid_request_error");
}
