//! Reasoning, images and documents, tool round trips and parallel calls, in every protocol,
//! plain and streamed.

use serde_json::{Value, json};

use crate::common::*;

/// A 1×1 PNG: 70 bytes.
const PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==";
/// "%PDF-1.4\n": 9 bytes.
const PDF: &str = "JVBERi0xLjQK";
const SIGNATURE: &str = "bW9jay1zaWduYXR1cmUtMDAwMDAwMDAwMDAwMDAwMDAwMDE="; // mock-signature-…01
const REASONING_1: &str =
    "Let me think about this step by step. Reply number 1 needs a friendly answer.";

fn url(mock: &relaybox_mock_upstream::MockUpstream, directives: &str, path: &str) -> String {
    if directives.is_empty() {
        format!("{}{path}", mock.base_url())
    } else {
        format!("{}{path}", mock.scenario_url(directives))
    }
}

fn gemini_path(method: &str) -> String {
    format!("/v1beta/models/gemini-2.5-flash:{method}")
}

/// The text of every `data:` event of one kind of SSE stream, concatenated.
fn joined(events: &[Event], name: &str, field: &str) -> String {
    events
        .iter()
        .filter(|e| e.event.as_deref() == Some(name))
        .map(|e| e.json()[field].as_str().unwrap().to_owned())
        .collect()
}

// ---- thinking / reasoning -------------------------------------------------------------------

#[tokio::test]
async fn anthropic_thinking_block_then_text_and_counted_in_output() {
    let mock = mock().await;
    let body = json!({
        "model": "claude-sonnet-4-5", "max_tokens": 4096,
        "thinking": {"type": "enabled", "budget_tokens": 2048},
        "messages": [{"role": "user", "content": "Hi"}]
    });
    let reply = post(
        &url(&mock, "reasoning_tokens=30", "/v1/messages"),
        ANTHROPIC,
        &body,
    )
    .await;
    assert_eq!(reply.status, 200);
    let message = reply.json();
    assert_eq!(
        message["content"][0],
        json!({"type": "thinking", "thinking": REASONING_1, "signature": SIGNATURE})
    );
    assert_eq!(message["content"][1]["type"], "text");
    assert_eq!(message["usage"]["output_tokens"], 40); // 10 words + 30 reasoning

    let mut streamed = body.clone();
    streamed["stream"] = json!(true);
    let events = post(&url(&mock, "", "/v1/messages"), ANTHROPIC, &streamed)
        .await
        .events();
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
            "content_block_delta",
            "content_block_stop",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    assert_eq!(
        events[1].json()["content_block"],
        json!({"type": "thinking", "thinking": "", "signature": ""})
    );
    let thinking: String = events[3..6]
        .iter()
        .map(|e| {
            let delta = e.json()["delta"].clone();
            assert_eq!(delta["type"], "thinking_delta");
            delta["thinking"].as_str().unwrap().to_owned()
        })
        .collect();
    assert!(thinking.starts_with("Let me think about this step by step. Reply number "));
    let signature = events[6].json();
    assert_eq!(signature["index"], 0);
    assert_eq!(signature["delta"]["type"], "signature_delta");
    assert!(signature["delta"]["signature"].as_str().unwrap().len() > 10);
    assert_eq!(events[8].json()["index"], 1);
    assert_eq!(events[8].json()["content_block"]["type"], "text");
    // 10 words of text + 15 words of reasoning.
    assert_eq!(events[13].json()["usage"]["output_tokens"], 25);
}

#[tokio::test]
async fn anthropic_thinking_budget_rules() {
    let mock = mock().await;
    let mut body = json!({
        "model": "claude-sonnet-4-5", "max_tokens": 1024,
        "thinking": {"type": "enabled", "budget_tokens": 1024},
        "messages": [{"role": "user", "content": "Hi"}]
    });
    let reply = post(&url(&mock, "", "/v1/messages"), ANTHROPIC, &body).await;
    assert_eq!(reply.status, 400);
    let error = reply.json()["error"].clone();
    assert_eq!(error["type"], "invalid_request_error");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .starts_with("`max_tokens` must be greater than `thinking.budget_tokens`")
    );
    body["thinking"]["budget_tokens"] = json!(500);
    body["max_tokens"] = json!(4096);
    let reply = post(&url(&mock, "", "/v1/messages"), ANTHROPIC, &body).await;
    assert_eq!(reply.status, 400);
    body["thinking"] = json!({"type": "disabled"});
    let reply = post(&url(&mock, "", "/v1/messages"), ANTHROPIC, &body).await;
    assert_eq!(reply.json()["content"][0]["type"], "text");
}

#[tokio::test]
async fn chat_reasoning_content_and_reasoning_tokens() {
    let mock = mock().await;
    let body = json!({
        "model": "deepseek-reasoner", "reasoning_effort": "low",
        "messages": [{"role": "user", "content": "Hi"}]
    });
    let path = "/v1/chat/completions";
    let reply = post(&url(&mock, "reasoning_tokens=30", path), OPENAI, &body)
        .await
        .json();
    let message = &reply["choices"][0]["message"];
    assert_eq!(message["reasoning_content"], REASONING_1);
    assert!(is_default_reply(message["content"].as_str().unwrap()));
    assert_eq!(reply["usage"]["completion_tokens"], 40);
    assert_eq!(reply["usage"]["total_tokens"], 41);
    assert_eq!(
        reply["usage"]["completion_tokens_details"]["reasoning_tokens"],
        30
    );

    let mut streamed = body.clone();
    streamed["stream"] = json!(true);
    streamed["stream_options"] = json!({"include_usage": true});
    let chunks = post(&url(&mock, "", path), OPENAI, &streamed).await.data();
    let deltas: Vec<&Value> = chunks
        .iter()
        .filter_map(|c| c["choices"].get(0).map(|c| &c["delta"]))
        .collect();
    assert_eq!(
        deltas[0],
        &json!({"role": "assistant", "content": null, "refusal": null, "reasoning_content": ""})
    );
    let reasoning: String = deltas
        .iter()
        .filter_map(|d| d["reasoning_content"].as_str())
        .collect();
    assert!(reasoning.starts_with("Let me think about this"));
    let content: String = deltas
        .iter()
        .filter_map(|d| d["content"].as_str())
        .collect();
    assert!(is_default_reply(&content), "{content}");
    // Reasoning strictly before the answer.
    let first_content = deltas
        .iter()
        .position(|d| d["content"].is_string())
        .unwrap();
    assert!(
        deltas[first_content..]
            .iter()
            .all(|d| d.get("reasoning_content").is_none())
    );
    let usage = &chunks.last().unwrap()["usage"];
    assert_eq!(usage["completion_tokens"], 25);
    assert_eq!(usage["completion_tokens_details"]["reasoning_tokens"], 15);

    // "none" asks for no reasoning.
    let mut none = body.clone();
    none["reasoning_effort"] = json!("none");
    let reply = post(&url(&mock, "", path), OPENAI, &none).await.json();
    assert!(
        reply["choices"][0]["message"]
            .get("reasoning_content")
            .is_none()
    );
}

#[tokio::test]
async fn responses_reasoning_item_with_summary_and_encrypted_content() {
    let mock = mock().await;
    let body = json!({
        "model": "gpt-5-mini", "input": "Hi",
        "reasoning": {"effort": "low", "summary": "auto"},
        "include": ["reasoning.encrypted_content"]
    });
    let reply = post(
        &url(&mock, "reasoning_tokens=30", "/v1/responses"),
        OPENAI,
        &body,
    )
    .await
    .json();
    assert_eq!(
        reply["output"][0],
        json!({
            "id": "rs_mock00000000000000000001", "type": "reasoning",
            "summary": [{"type": "summary_text", "text": REASONING_1}],
            "encrypted_content": SIGNATURE
        })
    );
    assert_eq!(reply["output"][1]["type"], "message");
    assert_eq!(
        reply["reasoning"],
        json!({"effort": "low", "summary": "auto"})
    );
    assert_eq!(reply["usage"]["output_tokens"], 40);
    assert_eq!(
        reply["usage"]["output_tokens_details"]["reasoning_tokens"],
        30
    );

    let mut streamed = body.clone();
    streamed["stream"] = json!(true);
    streamed["include"] = json!([]);
    let events = post(&url(&mock, "", "/v1/responses"), OPENAI, &streamed)
        .await
        .events();
    let names: Vec<&str> = events.iter().map(|e| e.event.as_deref().unwrap()).collect();
    assert_eq!(
        names,
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.reasoning_summary_part.added",
            "response.reasoning_summary_text.delta",
            "response.reasoning_summary_text.delta",
            "response.reasoning_summary_text.delta",
            "response.reasoning_summary_text.done",
            "response.reasoning_summary_part.done",
            "response.output_item.done",
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
    for (i, event) in events.iter().enumerate() {
        assert_eq!(event.json()["sequence_number"], i);
    }
    let summary = joined(&events, "response.reasoning_summary_text.delta", "delta");
    assert_eq!(events[7].json()["text"], summary);
    assert_eq!(events[4].json()["summary_index"], 0);
    assert_eq!(events[4].json()["output_index"], 0);
    assert_eq!(events[12].json()["output_index"], 1);
    // Without include, no encrypted_content.
    let done_item = &events[9].json()["item"];
    assert!(done_item.get("encrypted_content").is_none());
    assert_eq!(done_item["summary"][0]["text"], summary);
    let completed = events.last().unwrap().json();
    assert_eq!(completed["response"]["output"][0]["type"], "reasoning");
    assert_eq!(completed["response"]["usage"]["output_tokens"], 25);
}

#[tokio::test]
async fn gemini_thought_parts_signature_and_thoughts_token_count() {
    let mock = mock().await;
    let body = json!({
        "contents": [{"role": "user", "parts": [{"text": "Hello world!"}]}],
        "generationConfig": {"thinkingConfig": {"includeThoughts": true, "thinkingBudget": 1024}}
    });
    let reply = post(
        &url(
            &mock,
            "reasoning_tokens=30",
            &gemini_path("generateContent"),
        ),
        GEMINI,
        &body,
    )
    .await
    .json();
    let parts = &reply["candidates"][0]["content"]["parts"];
    assert_eq!(parts[0], json!({"text": REASONING_1, "thought": true}));
    assert_eq!(parts[1]["thoughtSignature"], SIGNATURE);
    assert!(is_default_reply(parts[1]["text"].as_str().unwrap()));
    assert_eq!(
        reply["usageMetadata"],
        json!({"promptTokenCount": 3, "candidatesTokenCount": 10, "thoughtsTokenCount": 30, "totalTokenCount": 43})
    );

    let chunks = post(
        &format!(
            "{}?alt=sse",
            url(&mock, "", &gemini_path("streamGenerateContent"))
        ),
        GEMINI,
        &body,
    )
    .await
    .data();
    assert_eq!(chunks.len(), 6);
    let parts: Vec<&Value> = chunks
        .iter()
        .map(|c| &c["candidates"][0]["content"]["parts"][0])
        .collect();
    assert!(parts[..3].iter().all(|p| p["thought"] == true));
    assert!(parts[3]["thoughtSignature"].is_string());
    assert!(
        parts[4..]
            .iter()
            .all(|p| p.get("thoughtSignature").is_none())
    );
    let usage = &chunks[5]["usageMetadata"];
    assert_eq!(usage["thoughtsTokenCount"], 15);
    assert_eq!(usage["totalTokenCount"], 3 + 10 + 15);

    // A budget without includeThoughts thinks (and counts) but shows no thought parts.
    let hidden = json!({
        "contents": body["contents"],
        "generationConfig": {"thinkingConfig": {"thinkingBudget": 512}}
    });
    let reply = post(
        &url(&mock, "", &gemini_path("generateContent")),
        GEMINI,
        &hidden,
    )
    .await
    .json();
    let parts = reply["candidates"][0]["content"]["parts"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(parts.len(), 1);
    assert!(parts[0]["thoughtSignature"].is_string());
    assert_eq!(reply["usageMetadata"]["thoughtsTokenCount"], 15);
    // A budget of 0 turns thinking off.
    let off = json!({
        "contents": body["contents"],
        "generationConfig": {"thinkingConfig": {"thinkingBudget": 0}}
    });
    let reply = post(
        &url(&mock, "", &gemini_path("generateContent")),
        GEMINI,
        &off,
    )
    .await
    .json();
    assert!(reply["usageMetadata"].get("thoughtsTokenCount").is_none());
}

// ---- images and documents --------------------------------------------------------------------

const SEEN: &str = "I see 2 images (image/png, 70 bytes; https://example.com/cat.png) and 1 document \
                    (application/pdf, 9 bytes).";

#[tokio::test]
async fn every_protocol_names_the_images_and_documents_it_got() {
    let mock = mock().await;
    let anthropic = json!({
        "model": "claude-sonnet-4-5", "max_tokens": 64,
        "messages": [{"role": "user", "content": [
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
            {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.png"}},
            {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": PDF}},
            {"type": "text", "text": "What is this?"}
        ]}]
    });
    let reply = post(&url(&mock, "", "/v1/messages"), ANTHROPIC, &anthropic)
        .await
        .json();
    assert_eq!(reply["content"][0]["text"], SEEN);
    assert_eq!(
        reply["usage"]["output_tokens"],
        SEEN.split_whitespace().count()
    );

    let chat = json!({
        "model": "gpt-4o",
        "messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": format!("data:image/png;base64,{PNG}")}},
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.png", "detail": "low"}},
            {"type": "file", "file": {"filename": "a.pdf", "file_data": format!("data:application/pdf;base64,{PDF}")}},
            {"type": "text", "text": "What is this?"}
        ]}]
    });
    let reply = post(&url(&mock, "", "/v1/chat/completions"), OPENAI, &chat)
        .await
        .json();
    assert_eq!(reply["choices"][0]["message"]["content"], SEEN);

    let responses = json!({
        "model": "gpt-5-mini",
        "input": [{"role": "user", "content": [
            {"type": "input_image", "image_url": format!("data:image/png;base64,{PNG}")},
            {"type": "input_image", "image_url": "https://example.com/cat.png"},
            {"type": "input_file", "filename": "a.pdf", "file_data": format!("data:application/pdf;base64,{PDF}")},
            {"type": "input_text", "text": "What is this?"}
        ]}]
    });
    let reply = post(&url(&mock, "", "/v1/responses"), OPENAI, &responses)
        .await
        .json();
    assert_eq!(reply["output"][0]["content"][0]["text"], SEEN);

    let gemini = json!({
        "contents": [{"role": "user", "parts": [
            {"inlineData": {"mimeType": "image/png", "data": PNG}},
            {"fileData": {"mimeType": "image/png", "fileUri": "https://example.com/cat.png"}},
            {"inline_data": {"mime_type": "application/pdf", "data": PDF}},
            {"text": "What is this?"}
        ]}]
    });
    let reply = post(
        &url(&mock, "", &gemini_path("generateContent")),
        GEMINI,
        &gemini,
    )
    .await
    .json();
    assert_eq!(reply["candidates"][0]["content"]["parts"][0]["text"], SEEN);

    // Streamed, the same sentence arrives in pieces.
    let mut streamed = anthropic.clone();
    streamed["stream"] = json!(true);
    let events = post(&url(&mock, "", "/v1/messages"), ANTHROPIC, &streamed)
        .await
        .events();
    let text: String = events
        .iter()
        .filter(|e| e.event.as_deref() == Some("content_block_delta"))
        .map(|e| e.json()["delta"]["text"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(text, SEEN);
}

#[tokio::test]
async fn broken_base64_is_a_400_in_the_protocol_shape() {
    let mock = mock().await;
    let anthropic = json!({
        "model": "claude-sonnet-4-5", "max_tokens": 64,
        "messages": [{"role": "user", "content": [
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "@@@"}}
        ]}]
    });
    let reply = post(&url(&mock, "", "/v1/messages"), ANTHROPIC, &anthropic).await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.json()["error"]["type"], "invalid_request_error");
    let chat = json!({"model": "gpt-4o", "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,@@@"}}
    ]}]});
    let reply = post(&url(&mock, "", "/v1/chat/completions"), OPENAI, &chat).await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.json()["error"]["type"], "invalid_request_error");
    let gemini = json!({"contents": [{"role": "user", "parts": [
        {"inlineData": {"mimeType": "image/png", "data": "@@@"}}
    ]}]});
    let reply = post(
        &url(&mock, "", &gemini_path("generateContent")),
        GEMINI,
        &gemini,
    )
    .await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.json()["error"]["status"], "INVALID_ARGUMENT");
}

// ---- tool round trips --------------------------------------------------------------------------

const RESULT: &str = "18 C and sunny in Paris";

#[tokio::test]
async fn every_protocol_quotes_the_tool_results_of_the_last_turn() {
    let mock = mock().await;
    let said = format!("The tool said: {RESULT}");
    let anthropic = json!({
        "model": "claude-sonnet-4-5", "max_tokens": 64,
        "tools": [{"name": "get_weather", "input_schema": {"type": "object"}}],
        "messages": [
            {"role": "user", "content": "Weather?"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": [{"type": "text", "text": RESULT}]}]}
        ]
    });
    let reply = post(&url(&mock, "", "/v1/messages"), ANTHROPIC, &anthropic)
        .await
        .json();
    assert_eq!(reply["content"][0]["text"], said);
    assert_eq!(reply["stop_reason"], "end_turn");

    let chat = json!({
        "model": "gpt-4o",
        "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}],
        "messages": [
            {"role": "user", "content": "Weather?"},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}},
                {"id": "call_2", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
            ]},
            {"role": "tool", "tool_call_id": "call_1", "content": RESULT},
            {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "windy"}]}
        ]
    });
    let reply = post(&url(&mock, "", "/v1/chat/completions"), OPENAI, &chat)
        .await
        .json();
    assert_eq!(
        reply["choices"][0]["message"]["content"],
        format!("{said}; windy")
    );

    let responses = json!({
        "model": "gpt-5-mini",
        "tools": [{"type": "function", "name": "get_weather", "parameters": {"type": "object"}}],
        "input": [
            {"role": "user", "content": "Weather?"},
            {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "call_1", "output": RESULT}
        ]
    });
    let mut streamed = responses.clone();
    streamed["stream"] = json!(true);
    let events = post(&url(&mock, "", "/v1/responses"), OPENAI, &streamed)
        .await
        .events();
    assert_eq!(joined(&events, "response.output_text.delta", "delta"), said);

    let gemini = json!({
        "tools": [{"functionDeclarations": [{"name": "get_weather", "parameters": {"type": "object"}}]}],
        "contents": [
            {"role": "user", "parts": [{"text": "Weather?"}]},
            {"role": "model", "parts": [{"functionCall": {"name": "get_weather", "args": {}}}]},
            {"role": "user", "parts": [{"functionResponse": {"name": "get_weather", "response": {"result": RESULT}}}]}
        ]
    });
    let reply = post(
        &url(&mock, "", &gemini_path("generateContent")),
        GEMINI,
        &gemini,
    )
    .await
    .json();
    assert_eq!(reply["candidates"][0]["content"]["parts"][0]["text"], said);
    let mut structured = gemini.clone();
    structured["contents"][2]["parts"][0]["functionResponse"]["response"] =
        json!({"temp": 18, "sky": "sunny"});
    let reply = post(
        &url(&mock, "", &gemini_path("generateContent")),
        GEMINI,
        &structured,
    )
    .await
    .json();
    assert_eq!(
        reply["candidates"][0]["content"]["parts"][0]["text"],
        r#"The tool said: {"sky":"sunny","temp":18}"#
    );
}

#[tokio::test]
async fn unpaired_tool_turns_are_refused_as_the_providers_do() {
    let mock = mock().await;
    let orphan_result = json!({
        "model": "claude-sonnet-4-5", "max_tokens": 64,
        "messages": [
            {"role": "user", "content": "Weather?"},
            {"role": "assistant", "content": "Let me look."},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_9", "content": "x"}]}
        ]
    });
    let reply = post(&url(&mock, "", "/v1/messages"), ANTHROPIC, &orphan_result).await;
    assert_eq!(reply.status, 400);
    assert!(reply.json()["error"]["message"].as_str().unwrap().starts_with(
        "messages.2.content.0: unexpected `tool_use_id` found in `tool_result` blocks: toolu_9."
    ));
    let unanswered = json!({
        "model": "claude-sonnet-4-5", "max_tokens": 64,
        "messages": [
            {"role": "user", "content": "Weather?"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "w", "input": {}}]},
            {"role": "user", "content": "never mind"}
        ]
    });
    let reply = post(&url(&mock, "", "/v1/messages"), ANTHROPIC, &unanswered).await;
    assert_eq!(reply.status, 400);
    assert!(reply.json()["error"]["message"].as_str().unwrap().contains(
        "`tool_use` ids were found without `tool_result` blocks immediately after: toolu_1."
    ));

    let chat = json!({"model": "gpt-4o", "messages": [
        {"role": "user", "content": "Weather?"},
        {"role": "tool", "tool_call_id": "call_1", "content": "x"}
    ]});
    let reply = post(&url(&mock, "", "/v1/chat/completions"), OPENAI, &chat).await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.json()["error"]["param"], "messages.[1].role");
    let chat = json!({"model": "gpt-4o", "messages": [
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "w", "arguments": "{}"}}]},
        {"role": "user", "content": "hm"}
    ]});
    let reply = post(&url(&mock, "", "/v1/chat/completions"), OPENAI, &chat).await;
    assert_eq!(reply.status, 400);
    assert!(
        reply.json()["error"]["message"]
            .as_str()
            .unwrap()
            .ends_with("The following tool_call_ids did not have response messages: call_1")
    );

    let responses = json!({"model": "gpt-5-mini", "input": [
        {"role": "user", "content": "Weather?"},
        {"type": "function_call_output", "call_id": "call_7", "output": "x"}
    ]});
    let reply = post(&url(&mock, "", "/v1/responses"), OPENAI, &responses).await;
    assert_eq!(reply.status, 400);
    assert_eq!(
        reply.json()["error"]["message"],
        "No tool call found for function call output with call_id call_7."
    );
    // With previous_response_id the calls live upstream: nothing to check.
    let mut chained = responses.clone();
    chained["previous_response_id"] = json!("resp_1");
    let reply = post(&url(&mock, "", "/v1/responses"), OPENAI, &chained).await;
    assert_eq!(reply.status, 200);

    let gemini = json!({"contents": [
        {"role": "user", "parts": [{"text": "Weather?"}]},
        {"role": "model", "parts": [{"functionCall": {"name": "w", "args": {}}}, {"functionCall": {"name": "w", "args": {}}}]},
        {"role": "user", "parts": [{"functionResponse": {"name": "w", "response": {"result": "x"}}}]}
    ]});
    let reply = post(
        &url(&mock, "", &gemini_path("generateContent")),
        GEMINI,
        &gemini,
    )
    .await;
    assert_eq!(reply.status, 400);
    assert!(
        reply.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("number of function response parts")
    );
}

// ---- parallel tool calls ---------------------------------------------------------------------

fn two_tools_anthropic() -> Value {
    json!([
        {"name": "get_weather", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}},
        {"name": "get_time", "input_schema": {"type": "object", "properties": {"zone": {"type": "string"}}, "required": ["zone"]}}
    ])
}

#[tokio::test]
async fn parallel_tools_in_anthropic_messages() {
    let mock = mock().await;
    let body = json!({
        "model": "claude-sonnet-4-5", "max_tokens": 64, "tools": two_tools_anthropic(),
        "messages": [{"role": "user", "content": "Weather and time?"}]
    });
    let path = url(&mock, "parallel_tools=2", "/v1/messages");
    let reply = post(&path, ANTHROPIC, &body).await.json();
    assert_eq!(reply["stop_reason"], "tool_use");
    assert_eq!(
        reply["content"],
        json!([
            {"type": "tool_use", "id": "toolu_mock00000000000000000001", "name": "get_weather", "input": {"city": "mock"}},
            {"type": "tool_use", "id": "toolu_mock00000000000000000001_1", "name": "get_time", "input": {"zone": "mock"}}
        ])
    );
    // {"city":"mock"} is 15 bytes, {"zone":"mock"} 15: 4 tokens each.
    assert_eq!(reply["usage"]["output_tokens"], 8);

    let mut streamed = body.clone();
    streamed["stream"] = json!(true);
    let events = post(&path, ANTHROPIC, &streamed).await.events();
    let starts: Vec<Value> = events
        .iter()
        .filter(|e| e.event.as_deref() == Some("content_block_start"))
        .map(|e| e.json())
        .collect();
    assert_eq!(starts.len(), 2);
    assert_eq!(starts[1]["index"], 1);
    assert_eq!(starts[1]["content_block"]["name"], "get_time");
    for index in 0..2 {
        let arguments: String = events
            .iter()
            .filter(|e| e.event.as_deref() == Some("content_block_delta"))
            .map(|e| e.json())
            .filter(|e| e["index"] == index)
            .map(|e| e["delta"]["partial_json"].as_str().unwrap().to_owned())
            .collect();
        assert!(
            serde_json::from_str::<Value>(&arguments)
                .unwrap()
                .is_object()
        );
    }
}

#[tokio::test]
async fn parallel_tools_in_chat_responses_and_gemini() {
    let mock = mock().await;
    let chat = json!({
        "model": "gpt-4o", "stream": true,
        "tools": [
            {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}},
            {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object"}}}
        ],
        "messages": [{"role": "user", "content": "Weather and time?"}]
    });
    let chunks = post(
        &url(&mock, "parallel_tools=2", "/v1/chat/completions"),
        OPENAI,
        &chat,
    )
    .await
    .data();
    let mut arguments = [String::new(), String::new()];
    let mut names = Vec::new();
    for chunk in &chunks {
        for call in chunk["choices"][0]["delta"]["tool_calls"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let index = call["index"].as_u64().unwrap() as usize;
            if let Some(name) = call["function"]["name"].as_str() {
                names.push((
                    index,
                    name.to_owned(),
                    call["id"].as_str().unwrap().to_owned(),
                ));
            }
            arguments[index].push_str(call["function"]["arguments"].as_str().unwrap());
        }
    }
    assert_eq!(
        names,
        [
            (
                0,
                "get_weather".to_owned(),
                "call_mock00000000000000000001".to_owned()
            ),
            (
                1,
                "get_time".to_owned(),
                "call_mock00000000000000000001_1".to_owned()
            )
        ]
    );
    assert_eq!(
        arguments,
        [r#"{"city":"mock"}"#.to_owned(), "{}".to_owned()]
    );
    assert_eq!(
        chunks.last().unwrap()["choices"][0]["finish_reason"],
        "tool_calls"
    );

    let responses = json!({
        "model": "gpt-5-mini", "stream": true, "input": "Weather and time?",
        "tools": [
            {"type": "function", "name": "get_weather", "parameters": {"type": "object"}},
            {"type": "function", "name": "get_time", "parameters": {"type": "object"}}
        ]
    });
    let events = post(
        &url(&mock, "parallel_tools=2", "/v1/responses"),
        OPENAI,
        &responses,
    )
    .await
    .events();
    let added: Vec<Value> = events
        .iter()
        .filter(|e| e.event.as_deref() == Some("response.output_item.added"))
        .map(|e| e.json())
        .collect();
    assert_eq!(added.len(), 2);
    assert_eq!(
        (
            added[1]["output_index"].clone(),
            added[1]["item"]["name"].clone()
        ),
        (json!(1), json!("get_time"))
    );
    let output = &events.last().unwrap().json()["response"]["output"];
    assert_eq!(output.as_array().unwrap().len(), 2);
    assert_eq!(output[1]["call_id"], "call_mock00000000000000000002_1");

    let gemini = json!({
        "contents": [{"role": "user", "parts": [{"text": "Weather and time?"}]}],
        "tools": [{"functionDeclarations": [
            {"name": "get_weather", "parameters": {"type": "object"}},
            {"name": "get_time", "parameters": {"type": "object"}}
        ]}]
    });
    let chunks = post(
        &format!(
            "{}?alt=sse",
            url(
                &mock,
                "parallel_tools=2",
                &gemini_path("streamGenerateContent")
            )
        ),
        GEMINI,
        &gemini,
    )
    .await
    .data();
    assert_eq!(chunks.len(), 1);
    assert_eq!(
        chunks[0]["candidates"][0]["content"]["parts"],
        json!([
            {"functionCall": {"name": "get_weather", "args": {}}},
            {"functionCall": {"name": "get_time", "args": {}}}
        ])
    );
}

// ---- count endpoints --------------------------------------------------------------------------

#[tokio::test]
async fn responses_input_tokens_counts_as_openai_documents() {
    let mock = mock().await;
    // "Hello world!" is 12 bytes -> 3 tokens.
    let body = json!({"model": "gpt-5-mini", "input": "Hello world!"});
    let reply = post(&url(&mock, "", "/v1/responses/input_tokens"), OPENAI, &body).await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.json(),
        json!({"object": "response.input_tokens", "input_tokens": 3})
    );
    let reply = post(
        &url(&mock, "input_tokens=77", "/v1/responses/input_tokens"),
        OPENAI,
        &body,
    )
    .await;
    assert_eq!(reply.json()["input_tokens"], 77);
    let reply = post(&url(&mock, "", "/v1/responses/input_tokens"), &[], &body).await;
    assert_eq!(reply.status, 401);
}

#[tokio::test]
async fn tool_schemas_in_gemini_spelling_are_refused_by_anthropic_and_openai() {
    let mock = mock().await;
    let schema = json!({"type": "OBJECT", "properties": {"city": {"type": "STRING"}}});
    let anthropic = json!({
        "model": "claude-sonnet-4-5", "max_tokens": 64,
        "tools": [{"name": "w", "input_schema": schema}],
        "messages": [{"role": "user", "content": "Weather?"}]
    });
    let reply = post(&url(&mock, "", "/v1/messages"), ANTHROPIC, &anthropic).await;
    assert_eq!(reply.status, 400);
    assert_eq!(
        reply.json()["error"]["message"],
        "tools.0.custom.input_schema.type: Input should be 'object'"
    );
    let chat = json!({
        "model": "gpt-4o",
        "tools": [{"type": "function", "function": {"name": "w", "parameters": {"type": "object", "properties": {"city": {"type": "STRING"}}}}}],
        "messages": [{"role": "user", "content": "Weather?"}]
    });
    let reply = post(&url(&mock, "", "/v1/chat/completions"), OPENAI, &chat).await;
    assert_eq!(reply.status, 400);
    let error = reply.json()["error"].clone();
    assert_eq!(
        error["message"],
        "Invalid schema for function 'w': 'STRING' is not valid under any of the given schemas."
    );
    assert_eq!(error["param"], "tools[0].function.parameters");
    let responses = json!({
        "model": "gpt-5-mini", "input": "Weather?",
        "tools": [{"type": "web_search_preview"}, {"type": "function", "name": "w", "parameters": schema}]
    });
    let reply = post(&url(&mock, "", "/v1/responses"), OPENAI, &responses).await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.json()["error"]["param"], "tools[1].parameters");
    // Gemini takes its own spelling.
    let gemini = json!({
        "contents": [{"role": "user", "parts": [{"text": "Weather?"}]}],
        "tools": [{"functionDeclarations": [{"name": "w", "parameters": schema}]}]
    });
    let reply = post(
        &url(&mock, "", &gemini_path("generateContent")),
        GEMINI,
        &gemini,
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.json()["candidates"][0]["content"]["parts"][0]["functionCall"]["name"],
        "w"
    );
}
