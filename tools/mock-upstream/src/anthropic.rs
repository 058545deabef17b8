//! Anthropic Messages: `POST /v1/messages`, `POST /v1/messages/count_tokens`,
//! `GET /v1/models` (when asked with Anthropic headers).

use serde_json::{Value, json};

use crate::Reply;
use crate::error::ApiError;
use crate::reply::{Content, Generation, ToolSpec, Usage, estimate_input_tokens};
use crate::scenario::Scenario;
use crate::sse::named_event;

pub(crate) const SSE_CONTENT_TYPE: &str = "text/event-stream; charset=utf-8";

pub(crate) fn messages(body: &Value, scenario: &Scenario, seq: u64) -> Result<Reply, ApiError> {
    let model = validate(body)?;
    let generation = Generation::new(model, pick_tool(body), body, scenario, seq);
    if body.get("stream").and_then(Value::as_bool) == Some(true) {
        Ok(Reply::Stream {
            content_type: SSE_CONTENT_TYPE,
            events: stream_events(&generation),
        })
    } else {
        Ok(Reply::Json(message(&generation)))
    }
}

pub(crate) fn count_tokens(body: &Value, scenario: &Scenario) -> Result<Reply, ApiError> {
    validate(body)?;
    let input = scenario
        .input_tokens
        .unwrap_or_else(|| estimate_input_tokens(body));
    Ok(Reply::Json(json!({ "input_tokens": input })))
}

pub(crate) fn models() -> Reply {
    let data: Vec<Value> = [
        ("claude-opus-4-1", "Claude Opus 4.1", "2025-08-05T00:00:00Z"),
        ("claude-sonnet-4-5", "Claude Sonnet 4.5", "2025-09-29T00:00:00Z"),
        ("claude-haiku-4-5", "Claude Haiku 4.5", "2025-10-15T00:00:00Z"),
    ]
    .iter()
    .map(|(id, name, created)| {
        json!({"type": "model", "id": id, "display_name": name, "created_at": created})
    })
    .collect();
    Reply::Json(json!({
        "data": data,
        "has_more": false,
        "first_id": "claude-opus-4-1",
        "last_id": "claude-haiku-4-5",
    }))
}

/// `{"type":"error","error":{"type":…,"message":…},"request_id":…}`; an
/// `error_code=` replaces the error type.
pub(crate) fn error_body(error: &ApiError, request_id: &str) -> Value {
    let kind = error
        .code
        .clone()
        .unwrap_or_else(|| error_type(error.status).to_owned());
    json!({
        "type": "error",
        "error": { "type": kind, "message": error.message },
        "request_id": request_id,
    })
}

fn error_type(status: u16) -> &'static str {
    match status {
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        529 => "overloaded_error",
        500..=599 => "api_error",
        _ => "invalid_request_error",
    }
}

fn validate(body: &Value) -> Result<&str, ApiError> {
    let model = body
        .get("model")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::invalid("model: Field required"))?;
    if !body.get("messages").is_some_and(Value::is_array) {
        return Err(ApiError::invalid("messages: Field required"));
    }
    Ok(model)
}

/// The first tool, unless `tool_choice` is none or the last message already
/// carries a tool result (then the conversation gets a text answer).
fn pick_tool(body: &Value) -> Option<ToolSpec<'_>> {
    if body.pointer("/tool_choice/type").and_then(Value::as_str) == Some("none") {
        return None;
    }
    let answered = body
        .get("messages")
        .and_then(Value::as_array)
        .and_then(|m| m.last())
        .and_then(|m| m.get("content"))
        .and_then(Value::as_array)
        .is_some_and(|blocks| {
            blocks
                .iter()
                .any(|b| b.get("type").and_then(Value::as_str) == Some("tool_result"))
        });
    if answered {
        return None;
    }
    let tool = body.get("tools")?.as_array()?.first()?;
    Some(ToolSpec {
        name: tool.get("name")?.as_str()?,
        schema: tool.get("input_schema"),
    })
}

fn usage(usage: &Usage, output: u64) -> Value {
    json!({
        "input_tokens": usage.input,
        "cache_creation_input_tokens": usage.cache_creation,
        "cache_read_input_tokens": usage.cache_read,
        "output_tokens": output,
    })
}

fn stop_reason(generation: &Generation) -> &'static str {
    match generation.content {
        Content::Text { .. } => "end_turn",
        Content::Tool { .. } => "tool_use",
    }
}

fn message(generation: &Generation) -> Value {
    let block = match &generation.content {
        Content::Text { text, .. } => json!({"type": "text", "text": text}),
        Content::Tool { name, input, .. } => json!({
            "type": "tool_use",
            "id": generation.id("toolu_"),
            "name": name,
            "input": input,
        }),
    };
    json!({
        "id": generation.id("msg_"),
        "type": "message",
        "role": "assistant",
        "model": generation.model,
        "content": [block],
        "stop_reason": stop_reason(generation),
        "stop_sequence": null,
        "usage": usage(&generation.usage, generation.usage.output),
    })
}

fn stream_events(generation: &Generation) -> Vec<bytes::Bytes> {
    let (start_block, deltas): (Value, Vec<Value>) = match &generation.content {
        Content::Text { pieces, .. } => (
            json!({"type": "text", "text": ""}),
            pieces
                .iter()
                .map(|p| json!({"type": "text_delta", "text": p}))
                .collect(),
        ),
        Content::Tool { name, pieces, .. } => (
            json!({"type": "tool_use", "id": generation.id("toolu_"), "name": name, "input": {}}),
            pieces
                .iter()
                .map(|p| json!({"type": "input_json_delta", "partial_json": p}))
                .collect(),
        ),
    };
    let mut events = Vec::with_capacity(deltas.len() + 6);
    events.push(named_event(
        "message_start",
        &json!({
            "type": "message_start",
            "message": {
                "id": generation.id("msg_"),
                "type": "message",
                "role": "assistant",
                "model": generation.model,
                "content": [],
                "stop_reason": null,
                "stop_sequence": null,
                "usage": usage(&generation.usage, 1),
            },
        }),
    ));
    events.push(named_event(
        "content_block_start",
        &json!({"type": "content_block_start", "index": 0, "content_block": start_block}),
    ));
    events.push(named_event("ping", &json!({"type": "ping"})));
    for delta in deltas {
        events.push(named_event(
            "content_block_delta",
            &json!({"type": "content_block_delta", "index": 0, "delta": delta}),
        ));
    }
    events.push(named_event(
        "content_block_stop",
        &json!({"type": "content_block_stop", "index": 0}),
    ));
    events.push(named_event(
        "message_delta",
        &json!({
            "type": "message_delta",
            "delta": {"stop_reason": stop_reason(generation), "stop_sequence": null},
            "usage": {"output_tokens": generation.usage.output},
        }),
    ));
    events.push(named_event(
        "message_stop",
        &json!({"type": "message_stop"}),
    ));
    events
}
