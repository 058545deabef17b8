use serde_json::{Value, json};

use crate::common::*;

fn request(stream: bool) -> Value {
    // "You are terse." (14) + "Hello world!" (12) = 26 bytes -> 7 tokens.
    json!({
        "model": "gpt-4o-mini",
        "stream": stream,
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "Hello world!"}
        ]
    })
}

fn tools() -> Value {
    json!([{"type": "function", "function": {
        "name": "lookup",
        "parameters": {"type": "object", "properties": {"q": {"type": "string"}, "n": {"type": "number"}}}
    }}])
}

#[tokio::test]
async fn completion_shape_and_usage() {
    let mock = mock().await;
    let reply = post(
        &format!("{}/v1/chat/completions", mock.base_url()),
        OPENAI,
        &request(false),
    )
    .await;
    assert_eq!(reply.status, 200);
    assert!(reply.header("x-request-id").is_some());
    let body = reply.json();
    assert!(body["id"].as_str().unwrap().starts_with("chatcmpl-"));
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["model"], "gpt-4o-mini");
    assert!(body["created"].as_u64().unwrap() > 1_600_000_000);
    let choice = &body["choices"][0];
    assert_eq!(choice["index"], 0);
    assert_eq!(choice["finish_reason"], "stop");
    assert_eq!(choice["message"]["role"], "assistant");
    assert!(is_default_reply(
        choice["message"]["content"].as_str().unwrap()
    ));
    let usage = &body["usage"];
    assert_eq!(usage["prompt_tokens"], 7);
    assert_eq!(usage["completion_tokens"], 10);
    assert_eq!(usage["total_tokens"], 17);
    assert_eq!(usage["prompt_tokens_details"]["cached_tokens"], 0);

    // prompt_tokens includes the cached tokens.
    let url = format!(
        "{}/v1/chat/completions",
        mock.scenario_url("input_tokens=7,cache_read=5,output_tokens=2")
    );
    let usage = post(&url, OPENAI, &request(false)).await.json()["usage"].clone();
    assert_eq!(usage["prompt_tokens"], 12);
    assert_eq!(usage["prompt_tokens_details"]["cached_tokens"], 5);
    assert_eq!(usage["completion_tokens"], 2);
    assert_eq!(usage["total_tokens"], 14);
}

#[tokio::test]
async fn stream_with_usage_chunk() {
    let mock = mock().await;
    let mut body = request(true);
    body["stream_options"] = json!({"include_usage": true});
    let reply = post(
        &format!("{}/v1/chat/completions", mock.base_url()),
        OPENAI,
        &body,
    )
    .await;
    assert!(
        reply
            .header("content-type")
            .unwrap()
            .starts_with("text/event-stream")
    );
    let events = reply.events();
    assert!(events.iter().all(|e| e.event.is_none()));
    assert_eq!(events.last().unwrap().data, "[DONE]");
    let chunks = reply.data();
    assert_eq!(chunks.len(), 6, "role + 3 deltas + finish + usage");
    let ids: Vec<&Value> = chunks.iter().map(|c| &c["id"]).collect();
    assert!(ids.iter().all(|id| *id == ids[0]));
    for chunk in &chunks {
        assert_eq!(chunk["object"], "chat.completion.chunk");
        assert_eq!(chunk["model"], "gpt-4o-mini");
    }
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let text: String = chunks[1..4]
        .iter()
        .map(|c| {
            c["choices"][0]["delta"]["content"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert!(is_default_reply(&text), "{text}");
    for chunk in &chunks[..5] {
        assert_eq!(chunk["usage"], Value::Null);
        assert!(chunk.get("usage").is_some());
    }
    assert_eq!(chunks[4]["choices"][0]["finish_reason"], "stop");
    assert_eq!(chunks[4]["choices"][0]["delta"], json!({}));
    assert_eq!(chunks[5]["choices"], json!([]));
    assert_eq!(chunks[5]["usage"]["prompt_tokens"], 7);
    assert_eq!(chunks[5]["usage"]["completion_tokens"], 10);
    assert_eq!(chunks[5]["usage"]["total_tokens"], 17);
    assert_eq!(
        chunks[5]["usage"]["prompt_tokens_details"]["cached_tokens"],
        0
    );
}

#[tokio::test]
async fn stream_without_usage_chunk() {
    let mock = mock().await;
    let reply = post(
        &format!("{}/s/chunks=4/v1/chat/completions", mock.base_url()),
        OPENAI,
        &request(true),
    )
    .await;
    assert_eq!(reply.events().last().unwrap().data, "[DONE]");
    let chunks = reply.data();
    assert_eq!(chunks.len(), 6, "role + 4 deltas + finish");
    assert!(chunks.iter().all(|c| c.get("usage").is_none()));
    assert_eq!(chunks[5]["choices"][0]["finish_reason"], "stop");
}

#[tokio::test]
async fn tools_give_tool_calls() {
    let mock = mock().await;
    let url = format!("{}/v1/chat/completions", mock.base_url());
    let mut body = request(false);
    body["tools"] = tools();
    let reply = post(&url, OPENAI, &body).await.json();
    let choice = &reply["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    assert_eq!(choice["message"]["content"], Value::Null);
    let call = &choice["message"]["tool_calls"][0];
    assert!(call["id"].as_str().unwrap().starts_with("call_"));
    assert_eq!(call["type"], "function");
    assert_eq!(call["function"]["name"], "lookup");
    let args: Value =
        serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(args, json!({"q": "mock", "n": 1}));

    body["stream"] = json!(true);
    let chunks = post(&url, OPENAI, &body).await.data();
    let first = &chunks[0]["choices"][0]["delta"]["tool_calls"][0];
    assert_eq!(first["function"]["name"], "lookup");
    let arguments: String = chunks
        .iter()
        .filter_map(|c| {
            c["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"]
                .as_str()
                .map(str::to_owned)
        })
        .collect();
    assert_eq!(
        serde_json::from_str::<Value>(&arguments).unwrap(),
        json!({"q": "mock", "n": 1})
    );
    assert_eq!(
        chunks.last().unwrap()["choices"][0]["finish_reason"],
        "tool_calls"
    );

    body["stream"] = json!(false);
    body["messages"] = json!([
        {"role": "user", "content": "q?"},
        {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "42"}
    ]);
    let reply = post(&url, OPENAI, &body).await.json();
    assert_eq!(reply["choices"][0]["finish_reason"], "stop");
}

#[tokio::test]
async fn errors_are_openai_shaped() {
    let mock = mock().await;
    let path = "/v1/chat/completions";
    let body = request(false);

    let reply = post(&format!("{}{path}", mock.base_url()), &[], &body).await;
    assert_eq!(reply.status, 401);
    let error = reply.json()["error"].clone();
    assert_eq!(error["code"], "invalid_api_key");
    assert_eq!(error["param"], Value::Null);
    assert!(error["message"].is_string());
    // Anthropic's header is not an OpenAI credential.
    let reply = post(
        &format!("{}{path}", mock.base_url()),
        &[("x-api-key", "k")],
        &body,
    )
    .await;
    assert_eq!(reply.status, 401);

    let reply = post(
        &format!("{}{path}", mock.scenario_url("status=429")),
        OPENAI,
        &body,
    )
    .await;
    assert_eq!(reply.status, 429);
    assert_eq!(reply.json()["error"]["type"], "rate_limit_exceeded");
    assert_eq!(reply.json()["error"]["code"], "rate_limit_exceeded");

    let reply = post(
        &format!(
            "{}{path}",
            mock.scenario_url("status=429,error_code=insufficient_quota")
        ),
        OPENAI,
        &body,
    )
    .await;
    assert_eq!(reply.json()["error"]["type"], "insufficient_quota");
    assert_eq!(reply.json()["error"]["code"], "insufficient_quota");

    let reply = post(
        &format!("{}{path}", mock.scenario_url("status=500")),
        OPENAI,
        &body,
    )
    .await;
    assert_eq!(reply.status, 500);
    assert_eq!(reply.json()["error"]["type"], "server_error");

    let reply = post(
        &format!(
            "{}{path}",
            mock.scenario_url("status=400,error_code=context_length_exceeded")
        ),
        OPENAI,
        &body,
    )
    .await;
    assert_eq!(reply.json()["error"]["type"], "invalid_request_error");
    assert_eq!(reply.json()["error"]["code"], "context_length_exceeded");
}

#[tokio::test]
async fn model_lists() {
    let mock = mock().await;
    let url = format!("{}/v1/models", mock.base_url());
    let list = get(&url, OPENAI).await.json();
    assert_eq!(list["object"], "list");
    assert!(list["data"].as_array().unwrap().len() >= 3);
    assert_eq!(list["data"][0]["object"], "model");

    let list = get(&url, ANTHROPIC).await.json();
    assert_eq!(list["has_more"], false);
    assert_eq!(list["data"][0]["type"], "model");

    let list = get(&format!("{}/v1beta/models", mock.base_url()), GEMINI)
        .await
        .json();
    assert!(
        list["models"][0]["name"]
            .as_str()
            .unwrap()
            .starts_with("models/")
    );

    assert_eq!(get(&url, &[]).await.status, 401);
}
