use serde_json::{Value, json};

use crate::common::*;

fn request(stream: bool) -> Value {
    // "Be brief." (9) + "Hello world!" (12) = 21 bytes -> 6 tokens.
    json!({
        "model": "gpt-4.1",
        "stream": stream,
        "instructions": "Be brief.",
        "input": [{"role": "user", "content": [{"type": "input_text", "text": "Hello world!"}]}]
    })
}

#[tokio::test]
async fn response_shape_and_usage() {
    let mock = mock().await;
    let url = format!("{}/s/cache_read=4/v1/responses", mock.base_url());
    let body = post(&url, OPENAI, &request(false)).await.json();
    assert!(body["id"].as_str().unwrap().starts_with("resp_"));
    assert_eq!(body["object"], "response");
    assert_eq!(body["status"], "completed");
    assert_eq!(body["model"], "gpt-4.1");
    assert_eq!(body["instructions"], "Be brief.");
    let item = &body["output"][0];
    assert_eq!(item["type"], "message");
    assert_eq!(item["role"], "assistant");
    assert_eq!(item["status"], "completed");
    assert_eq!(item["content"][0]["type"], "output_text");
    assert_eq!(item["content"][0]["annotations"], json!([]));
    assert!(is_default_reply(
        item["content"][0]["text"].as_str().unwrap()
    ));
    assert_eq!(
        body["usage"],
        json!({
            "input_tokens": 10,
            "input_tokens_details": {"cached_tokens": 4},
            "output_tokens": 10,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": 20
        })
    );
}

#[tokio::test]
async fn stream_events_are_numbered_in_order() {
    let mock = mock().await;
    let reply = post(
        &format!("{}/v1/responses", mock.base_url()),
        OPENAI,
        &request(true),
    )
    .await;
    assert!(
        reply
            .header("content-type")
            .unwrap()
            .starts_with("text/event-stream")
    );
    let events = reply.events();
    let names: Vec<&str> = events.iter().map(|e| e.event.as_deref().unwrap()).collect();
    assert_eq!(
        names,
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.completed"
        ]
    );
    for (n, event) in events.iter().enumerate() {
        let data = event.json();
        assert_eq!(data["type"], event.event.as_deref().unwrap());
        assert_eq!(data["sequence_number"], n);
    }
    assert_eq!(events[0].json()["response"]["status"], "in_progress");
    assert_eq!(events[0].json()["response"]["usage"], Value::Null);
    let deltas: String = events[4..7]
        .iter()
        .map(|e| e.json()["delta"].as_str().unwrap().to_owned())
        .collect();
    let done = events[7].json();
    assert_eq!(done["text"].as_str().unwrap(), deltas);
    assert!(is_default_reply(&deltas));
    let item_id = events[2].json()["item"]["id"].clone();
    assert_eq!(events[4].json()["item_id"], item_id);
    let completed = events[10].json()["response"].clone();
    assert_eq!(completed["status"], "completed");
    assert_eq!(
        completed["output"][0]["content"][0]["text"]
            .as_str()
            .unwrap(),
        deltas
    );
    assert_eq!(completed["usage"]["input_tokens"], 6);
    assert_eq!(completed["usage"]["output_tokens"], 10);
    assert_eq!(completed["usage"]["total_tokens"], 16);
}

#[tokio::test]
async fn function_tools_give_function_calls() {
    let mock = mock().await;
    let url = format!("{}/v1/responses", mock.base_url());
    let mut body = request(false);
    body["tools"] = json!([
        {"type": "web_search_preview"},
        {"type": "function", "name": "lookup", "parameters": {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}}
    ]);
    let reply = post(&url, OPENAI, &body).await.json();
    let item = &reply["output"][0];
    assert_eq!(item["type"], "function_call");
    assert_eq!(item["name"], "lookup");
    assert!(item["call_id"].as_str().unwrap().starts_with("call_"));
    assert_eq!(
        serde_json::from_str::<Value>(item["arguments"].as_str().unwrap()).unwrap(),
        json!({"q": "mock"})
    );

    body["stream"] = json!(true);
    let events = post(&url, OPENAI, &body).await.events();
    let arguments: String = events
        .iter()
        .filter(|e| e.event.as_deref() == Some("response.function_call_arguments.delta"))
        .map(|e| e.json()["delta"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        serde_json::from_str::<Value>(&arguments).unwrap(),
        json!({"q": "mock"})
    );
    let done = events
        .iter()
        .find(|e| e.event.as_deref() == Some("response.function_call_arguments.done"))
        .unwrap();
    assert_eq!(done.json()["arguments"].as_str().unwrap(), arguments);
    assert_eq!(
        events.last().unwrap().json()["response"]["output"][0]["type"],
        "function_call"
    );
}

#[tokio::test]
async fn errors_use_the_openai_shape() {
    let mock = mock().await;
    let reply = post(
        &format!("{}/v1/responses", mock.scenario_url("status=503")),
        OPENAI,
        &request(true),
    )
    .await;
    assert_eq!(reply.status, 503);
    assert_eq!(reply.json()["error"]["type"], "server_error");
    assert_eq!(mock.stats().streams_started, 0);
}
