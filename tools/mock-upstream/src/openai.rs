//! OpenAI Chat Completions (`POST /v1/chat/completions`), the model list
//! (`GET /v1/models`) and the OpenAI error shape shared with the Responses API.

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use serde_json::{Value, json};

use crate::Reply;
use crate::error::ApiError;
use crate::reply::{Content, Generation, ToolSpec, Usage};
use crate::scenario::Scenario;
use crate::sse::data_event;

pub(crate) const SSE_CONTENT_TYPE: &str = "text/event-stream; charset=utf-8";

pub(crate) fn chat_completions(
    body: &Value,
    scenario: &Scenario,
    seq: u64,
) -> Result<Reply, ApiError> {
    let model = body
        .get("model")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::invalid("you must provide a model parameter"))?;
    if !body.get("messages").is_some_and(Value::is_array) {
        return Err(ApiError::invalid("Missing required parameter: 'messages'."));
    }
    let generation = Generation::new(model, pick_tool(body), body, scenario, seq);
    if body.get("stream").and_then(Value::as_bool) == Some(true) {
        let include_usage = body
            .pointer("/stream_options/include_usage")
            .and_then(Value::as_bool)
            == Some(true);
        Ok(Reply::Stream {
            content_type: SSE_CONTENT_TYPE,
            events: stream_events(&generation, include_usage),
        })
    } else {
        Ok(Reply::Json(completion(&generation)))
    }
}

pub(crate) fn models() -> Reply {
    let data: Vec<Value> = [
        ("gpt-4o", 1_715_367_049),
        ("gpt-4o-mini", 1_721_172_741),
        ("gpt-4.1", 1_744_316_542),
        ("o3-mini", 1_737_146_383),
    ]
    .iter()
    .map(|(id, created)| json!({"id": id, "object": "model", "created": created, "owned_by": "mock-upstream"}))
    .collect();
    Reply::Json(json!({"object": "list", "data": data}))
}

/// `{"error":{"message","type","param":null,"code"}}`. `error_code=X` sets
/// `code` (and, for 429s, `type` too, as with `insufficient_quota`).
pub(crate) fn error_body(error: &ApiError) -> Value {
    let (default_type, default_code) = match error.status {
        401 => ("invalid_request_error", Some("invalid_api_key")),
        403 => ("request_forbidden", None),
        404 => ("invalid_request_error", Some("model_not_found")),
        429 => ("rate_limit_exceeded", Some("rate_limit_exceeded")),
        500..=599 => ("server_error", None),
        _ => ("invalid_request_error", None),
    };
    let code = error.code.as_deref().or(default_code);
    let kind = match (error.status, error.code.as_deref()) {
        (429, Some(code)) => code,
        _ => default_type,
    };
    json!({"error": {"message": error.message, "type": kind, "param": null, "code": code}})
}

pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The first function tool, unless `tool_choice` is "none" or the last
/// message is a tool result.
fn pick_tool(body: &Value) -> Option<ToolSpec<'_>> {
    if body.get("tool_choice").and_then(Value::as_str) == Some("none") {
        return None;
    }
    let last_role = body
        .get("messages")
        .and_then(Value::as_array)
        .and_then(|m| m.last())
        .and_then(|m| m.get("role"))
        .and_then(Value::as_str);
    if last_role == Some("tool") {
        return None;
    }
    body.get("tools")?.as_array()?.iter().find_map(|tool| {
        let function = tool.get("function")?;
        Some(ToolSpec {
            name: function.get("name")?.as_str()?,
            schema: function.get("parameters"),
        })
    })
}

fn usage(usage: &Usage) -> Value {
    let prompt = usage.prompt_total();
    json!({
        "prompt_tokens": prompt,
        "completion_tokens": usage.output,
        "total_tokens": prompt + usage.output,
        "prompt_tokens_details": {"cached_tokens": usage.cache_read, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    })
}

fn finish_reason(generation: &Generation) -> &'static str {
    match generation.content {
        Content::Text { .. } => "stop",
        Content::Tool { .. } => "tool_calls",
    }
}

fn completion(generation: &Generation) -> Value {
    let message = match &generation.content {
        Content::Text { text, .. } => json!({
            "role": "assistant",
            "content": text,
            "refusal": null,
            "annotations": [],
        }),
        Content::Tool {
            name, arguments, ..
        } => json!({
            "role": "assistant",
            "content": null,
            "refusal": null,
            "annotations": [],
            "tool_calls": [{
                "id": generation.id("call_"),
                "type": "function",
                "function": {"name": name, "arguments": arguments},
            }],
        }),
    };
    json!({
        "id": generation.id("chatcmpl-"),
        "object": "chat.completion",
        "created": unix_now(),
        "model": generation.model,
        "choices": [{
            "index": 0,
            "message": message,
            "logprobs": null,
            "finish_reason": finish_reason(generation),
        }],
        "usage": usage(&generation.usage),
        "service_tier": "default",
        "system_fingerprint": "fp_mock",
    })
}

fn stream_events(generation: &Generation, include_usage: bool) -> Vec<Bytes> {
    let id = generation.id("chatcmpl-");
    let created = unix_now();
    let chunk = |choices: Value| {
        let mut chunk = json!({
            "id": id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": generation.model,
            "system_fingerprint": "fp_mock",
            "choices": choices,
        });
        if include_usage {
            chunk["usage"] = Value::Null;
        }
        chunk
    };
    let choice = |delta: Value, finish: Option<&str>| json!([{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]);

    let (first, deltas): (Value, Vec<Value>) = match &generation.content {
        Content::Text { pieces, .. } => (
            json!({"role": "assistant", "content": "", "refusal": null}),
            pieces.iter().map(|p| json!({"content": p})).collect(),
        ),
        Content::Tool { name, pieces, .. } => (
            json!({
                "role": "assistant",
                "content": null,
                "refusal": null,
                "tool_calls": [{
                    "index": 0,
                    "id": generation.id("call_"),
                    "type": "function",
                    "function": {"name": name, "arguments": ""},
                }],
            }),
            pieces
                .iter()
                .map(|p| json!({"tool_calls": [{"index": 0, "function": {"arguments": p}}]}))
                .collect(),
        ),
    };

    let mut events = Vec::with_capacity(deltas.len() + 4);
    events.push(data_event(&chunk(choice(first, None))));
    for delta in deltas {
        events.push(data_event(&chunk(choice(delta, None))));
    }
    events.push(data_event(&chunk(choice(
        json!({}),
        Some(finish_reason(generation)),
    ))));
    if include_usage {
        let mut last = chunk(json!([]));
        last["usage"] = usage(&generation.usage);
        events.push(data_event(&last));
    }
    events.push(Bytes::from_static(b"data: [DONE]\n\n"));
    events
}
