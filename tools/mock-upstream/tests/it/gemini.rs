use serde_json::{Value, json};

use crate::common::*;

fn request() -> Value {
    // "Hello world!" is 12 bytes -> 3 tokens.
    json!({"contents": [{"role": "user", "parts": [{"text": "Hello world!"}]}]})
}

fn url(base: &str, method: &str) -> String {
    format!("{base}/v1beta/models/gemini-2.5-flash:{method}")
}

#[tokio::test]
async fn generate_content_shape_and_usage() {
    let mock = mock().await;
    let reply = post(
        &url(&mock.base_url(), "generateContent"),
        GEMINI,
        &request(),
    )
    .await;
    assert_eq!(reply.status, 200);
    let body = reply.json();
    let candidate = &body["candidates"][0];
    assert_eq!(candidate["content"]["role"], "model");
    assert!(is_default_reply(
        candidate["content"]["parts"][0]["text"].as_str().unwrap()
    ));
    assert_eq!(candidate["finishReason"], "STOP");
    assert_eq!(candidate["index"], 0);
    assert_eq!(body["modelVersion"], "gemini-2.5-flash");
    assert_eq!(
        body["usageMetadata"],
        json!({"promptTokenCount": 3, "candidatesTokenCount": 10, "totalTokenCount": 13})
    );

    let cached = post(
        &url(&mock.scenario_url("cache_read=4"), "generateContent"),
        GEMINI,
        &request(),
    )
    .await
    .json();
    assert_eq!(
        cached["usageMetadata"],
        json!({"promptTokenCount": 7, "candidatesTokenCount": 10, "totalTokenCount": 17, "cachedContentTokenCount": 4})
    );
}

#[tokio::test]
async fn sse_stream_is_crlf_framed_with_usage_in_every_chunk() {
    let mock = mock().await;
    let reply = post(
        &format!("{}?alt=sse", url(&mock.base_url(), "streamGenerateContent")),
        GEMINI,
        &request(),
    )
    .await;
    assert_eq!(reply.status, 200);
    assert!(
        reply
            .header("content-type")
            .unwrap()
            .starts_with("text/event-stream")
    );
    let raw = reply.text();
    assert!(raw.ends_with("\r\n\r\n"));
    let blocks: Vec<&str> = raw.split("\r\n\r\n").filter(|b| !b.is_empty()).collect();
    assert_eq!(blocks.len(), 3);
    assert!(
        blocks
            .iter()
            .all(|b| b.starts_with("data: ") && !b.contains('\n'))
    );

    let chunks = reply.data();
    let mut text = String::new();
    for (i, chunk) in chunks.iter().enumerate() {
        let last = i == chunks.len() - 1;
        let candidate = &chunk["candidates"][0];
        text.push_str(candidate["content"]["parts"][0]["text"].as_str().unwrap());
        assert_eq!(chunk["usageMetadata"]["promptTokenCount"], 3);
        assert_eq!(candidate.get("finishReason").is_some(), last);
        assert_eq!(
            chunk["usageMetadata"].get("candidatesTokenCount").is_some(),
            last
        );
    }
    assert!(is_default_reply(&text));
    assert_eq!(chunks[2]["candidates"][0]["finishReason"], "STOP");
    assert_eq!(
        chunks[2]["usageMetadata"],
        json!({"promptTokenCount": 3, "candidatesTokenCount": 10, "totalTokenCount": 13})
    );
}

#[tokio::test]
async fn stream_without_alt_sse_is_a_json_array() {
    let mock = mock().await;
    let reply = post(
        &url(&mock.scenario_url("chunks=4"), "streamGenerateContent"),
        GEMINI,
        &request(),
    )
    .await;
    assert!(
        reply
            .header("content-type")
            .unwrap()
            .starts_with("application/json")
    );
    assert_eq!(reply.frames.len(), 4, "one element per write");
    let chunks = reply.json();
    let chunks = chunks.as_array().unwrap();
    assert_eq!(chunks.len(), 4);
    assert_eq!(chunks[3]["candidates"][0]["finishReason"], "STOP");
    assert_eq!(chunks[3]["usageMetadata"]["totalTokenCount"], 13);
    assert_eq!(mock.stats().streams_completed, 1);
}

#[tokio::test]
async fn credentials_header_query_and_require_key() {
    let mock = mock().await;
    let base = mock.base_url();
    let reply = post(&url(&base, "generateContent"), &[], &request()).await;
    assert_eq!(reply.status, 401);
    assert_eq!(reply.json()["error"]["status"], "UNAUTHENTICATED");
    assert_eq!(reply.json()["error"]["code"], 401);

    let reply = post(
        &format!("{}?key=from-query", url(&base, "generateContent")),
        &[],
        &request(),
    )
    .await;
    assert_eq!(reply.status, 200);

    let guarded = mock.scenario_url("require_key=right");
    let reply = post(
        &format!("{}?key=wrong", url(&guarded, "generateContent")),
        &[],
        &request(),
    )
    .await;
    assert_eq!(reply.status, 401);
    let reply = post(
        &url(&guarded, "generateContent"),
        &[("x-goog-api-key", "right")],
        &request(),
    )
    .await;
    assert_eq!(reply.status, 200);
    let requests = mock.requests();
    assert_eq!(
        requests.last().unwrap().header("x-goog-api-key"),
        Some("right")
    );
}

#[tokio::test]
async fn errors_are_gemini_shaped() {
    let mock = mock().await;
    let reply = post(
        &url(&mock.scenario_url("status=429"), "generateContent"),
        GEMINI,
        &request(),
    )
    .await;
    assert_eq!(reply.status, 429);
    let error = reply.json()["error"].clone();
    assert_eq!(error["code"], 429);
    assert_eq!(error["status"], "RESOURCE_EXHAUSTED");
    assert!(error["message"].is_string());

    let reply = post(
        &format!(
            "{}?alt=sse",
            url(
                &mock.scenario_url("status=429,error_code=QUOTA_EXHAUSTED"),
                "streamGenerateContent"
            )
        ),
        GEMINI,
        &request(),
    )
    .await;
    let error = reply.json()["error"].clone();
    assert_eq!(error["status"], "QUOTA_EXHAUSTED");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("QUOTA_EXHAUSTED")
    );

    let reply = post(
        &url(&mock.scenario_url("status=503"), "generateContent"),
        GEMINI,
        &request(),
    )
    .await;
    assert_eq!(reply.json()["error"]["status"], "UNAVAILABLE");

    let reply = post(
        &url(&mock.base_url(), "generateContent"),
        GEMINI,
        &json!({}),
    )
    .await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.json()["error"]["status"], "INVALID_ARGUMENT");
}

#[tokio::test]
async fn function_declarations_give_a_function_call() {
    let mock = mock().await;
    let mut body = request();
    body["tools"] = json!([{"functionDeclarations": [{
        "name": "lookup",
        "parameters": {"type": "OBJECT", "properties": {"q": {"type": "STRING"}}, "required": ["q"]}
    }]}]);
    let reply = post(&url(&mock.base_url(), "generateContent"), GEMINI, &body)
        .await
        .json();
    assert_eq!(
        reply["candidates"][0]["content"]["parts"][0]["functionCall"],
        json!({"name": "lookup", "args": {"q": "mock"}})
    );
    let chunks = post(
        &format!("{}?alt=sse", url(&mock.base_url(), "streamGenerateContent")),
        GEMINI,
        &body,
    )
    .await
    .data();
    assert_eq!(chunks.len(), 1);
    assert_eq!(
        chunks[0]["candidates"][0]["content"]["parts"][0]["functionCall"]["name"],
        "lookup"
    );
    assert_eq!(chunks[0]["candidates"][0]["finishReason"], "STOP");
}

#[tokio::test]
async fn count_tokens_and_v1_paths() {
    let mock = mock().await;
    let reply = post(&url(&mock.base_url(), "countTokens"), GEMINI, &request()).await;
    assert_eq!(reply.json(), json!({"totalTokens": 3}));
    let reply = post(
        &format!(
            "{}/v1/models/gemini-2.0-flash:generateContent",
            mock.base_url()
        ),
        GEMINI,
        &request(),
    )
    .await;
    assert_eq!(reply.json()["modelVersion"], "gemini-2.0-flash");
}
