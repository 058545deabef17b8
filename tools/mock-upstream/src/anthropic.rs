//! Anthropic Messages: `POST /v1/messages`, `POST /v1/messages/count_tokens`,
//! `GET /v1/models` (when asked with Anthropic headers).

use serde_json::{Value, json};

use crate::Reply;
use crate::error::ApiError;
use crate::reply::{
    Content, Generation, Media, MediaKind, Prompt, ToolSpec, Usage, bad_schema_type,
    estimate_input_tokens, result_text,
};
use crate::scenario::Scenario;
use crate::sse::named_event;

pub(crate) const SSE_CONTENT_TYPE: &str = "text/event-stream; charset=utf-8";

/// The smallest `thinking.budget_tokens` Anthropic accepts.
const MIN_THINKING_BUDGET: u64 = 1024;

pub(crate) fn messages(body: &Value, scenario: &Scenario, seq: u64) -> Result<Reply, ApiError> {
    let model = validate(body)?;
    let messages = body
        .get("messages")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice);
    check_tool_pairs(messages)?;
    check_tools(body)?;
    let prompt = prompt(body, messages)?;
    let generation = Generation::new(model, &prompt, body, scenario, seq);
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

/// `thinking: {type: enabled, budget_tokens}` (or `adaptive`) asks for a thinking block; the
/// budget follows Anthropic's rules (at least 1024, below `max_tokens`).
fn thinking(body: &Value) -> Result<bool, ApiError> {
    match body.pointer("/thinking/type").and_then(Value::as_str) {
        Some("enabled") => {
            let budget = body
                .pointer("/thinking/budget_tokens")
                .and_then(Value::as_u64)
                .ok_or_else(|| {
                    ApiError::invalid("thinking.enabled.budget_tokens: Field required")
                })?;
            if budget < MIN_THINKING_BUDGET {
                return Err(ApiError::invalid(format!(
                    "thinking.enabled.budget_tokens: Input should be greater than or equal to \
                     {MIN_THINKING_BUDGET}"
                )));
            }
            if body
                .get("max_tokens")
                .and_then(Value::as_u64)
                .is_some_and(|max| max <= budget)
            {
                return Err(ApiError::invalid(
                    "`max_tokens` must be greater than `thinking.budget_tokens`. Please consult \
                     our documentation at https://docs.claude.com/en/docs/build-with-claude/\
                     extended-thinking#max-tokens-and-context-window-size",
                ));
            }
            Ok(true)
        }
        Some("adaptive") => Ok(true),
        _ => Ok(false),
    }
}

/// A custom tool's `input_schema` is a JSON schema of an object (types in JSON Schema's names).
fn check_tools(body: &Value) -> Result<(), ApiError> {
    let tools = body
        .get("tools")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice);
    for (i, tool) in tools.iter().enumerate() {
        // Server tools (web search, …) have a versioned type and no schema.
        if tool.get("type").is_some_and(|t| t != "custom") {
            continue;
        }
        let schema = tool.get("input_schema").unwrap_or(&Value::Null);
        if schema.get("type").and_then(Value::as_str) != Some("object") {
            return Err(ApiError::invalid(format!(
                "tools.{i}.custom.input_schema.type: Input should be 'object'"
            )));
        }
        if bad_schema_type(schema).is_some() {
            return Err(ApiError::invalid(format!(
                "tools.{i}.custom.input_schema: JSON schema is invalid. It must match JSON Schema \
                 draft 2020-12 (https://json-schema.org/draft/2020-12). Learn more about tool use \
                 at https://docs.claude.com/en/docs/tool-use."
            )));
        }
    }
    Ok(())
}

fn blocks(message: &Value) -> &[Value] {
    message
        .get("content")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice)
}

fn ids_of<'a>(message: &'a Value, kind: &str, field: &str) -> Vec<&'a str> {
    blocks(message)
        .iter()
        .filter(|b| b.get("type").and_then(Value::as_str) == Some(kind))
        .filter_map(|b| b.get(field).and_then(Value::as_str))
        .collect()
}

/// Anthropic's pairing rules: every `tool_use` is answered by a `tool_result` in the very next
/// message, and every `tool_result` answers a `tool_use` of the message before it.
fn check_tool_pairs(messages: &[Value]) -> Result<(), ApiError> {
    for (i, message) in messages.iter().enumerate() {
        let role = message.get("role").and_then(Value::as_str);
        if role == Some("assistant") {
            let calls = ids_of(message, "tool_use", "id");
            let Some(next) = messages.get(i + 1) else {
                continue;
            };
            let answered = ids_of(next, "tool_result", "tool_use_id");
            let missing: Vec<&str> = calls
                .into_iter()
                .filter(|id| !answered.contains(id))
                .collect();
            if !missing.is_empty() {
                return Err(ApiError::invalid(format!(
                    "messages.{}: `tool_use` ids were found without `tool_result` blocks \
                     immediately after: {}. Each `tool_use` block must have a corresponding \
                     `tool_result` block in the next message.",
                    i + 1,
                    missing.join(", ")
                )));
            }
        } else {
            let calls = i
                .checked_sub(1)
                .map(|p| ids_of(&messages[p], "tool_use", "id"))
                .unwrap_or_default();
            for (j, block) in blocks(message).iter().enumerate() {
                if block.get("type").and_then(Value::as_str) != Some("tool_result") {
                    continue;
                }
                let id = block
                    .get("tool_use_id")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                if !calls.contains(&id) {
                    return Err(ApiError::invalid(format!(
                        "messages.{i}.content.{j}: unexpected `tool_use_id` found in \
                         `tool_result` blocks: {id}. Each `tool_result` block must have a \
                         corresponding `tool_use` block in the previous message."
                    )));
                }
            }
        }
    }
    Ok(())
}

fn prompt<'a>(body: &'a Value, messages: &'a [Value]) -> Result<Prompt<'a>, ApiError> {
    let mut prompt = Prompt {
        thinking: thinking(body)?,
        ..Prompt::default()
    };
    if let Some(last) = messages.last() {
        prompt.tool_results = blocks(last)
            .iter()
            .filter(|b| b.get("type").and_then(Value::as_str) == Some("tool_result"))
            .map(|b| result_text(b.get("content")))
            .collect();
    }
    for (i, message) in messages.iter().enumerate() {
        for (j, block) in blocks(message).iter().enumerate() {
            let at = format!("messages.{i}.content.{j}");
            media(block, &at, &mut prompt.media)?;
            if block.get("type").and_then(Value::as_str) == Some("tool_result")
                && let Some(inner) = block.get("content").and_then(Value::as_array)
            {
                for (k, block) in inner.iter().enumerate() {
                    media(block, &format!("{at}.content.{k}"), &mut prompt.media)?;
                }
            }
        }
    }
    if body.pointer("/tool_choice/type").and_then(Value::as_str) != Some("none") {
        prompt.tools = body
            .get("tools")
            .and_then(Value::as_array)
            .map(|tools| {
                tools
                    .iter()
                    .filter_map(|tool| {
                        Some(ToolSpec {
                            name: tool.get("name")?.as_str()?,
                            schema: tool.get("input_schema"),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
    }
    Ok(prompt)
}

/// An `image` or `document` block: base64, text, URL or file sources.
fn media(block: &Value, at: &str, out: &mut Vec<Media>) -> Result<(), ApiError> {
    let kind = match block.get("type").and_then(Value::as_str) {
        Some("image") => MediaKind::Image,
        Some("document") => MediaKind::Document,
        _ => return Ok(()),
    };
    let noun = if kind == MediaKind::Image {
        "image"
    } else {
        "document"
    };
    let source = block.get("source").unwrap_or(&Value::Null);
    let field = |name: &str| source.get(name).and_then(Value::as_str).unwrap_or_default();
    let medium = match source.get("type").and_then(Value::as_str) {
        Some("base64") => Media::base64(kind, field("media_type"), field("data"))
            .map_err(|e| ApiError::invalid(format!("{at}.{noun}.source.base64.data: {e}")))?,
        Some("text") => Media::inline(kind, field("media_type"), field("data").len()),
        Some("url") => Media::url(kind, field("url")),
        Some("file") => Media::file(kind, field("file_id")),
        Some("content") => Media::inline(kind, "content blocks", 0),
        _ => {
            return Err(ApiError::invalid(format!(
                "{at}.{noun}.source: Input tag does not match any of the expected tags: \
                 'base64', 'text', 'url', 'file', 'content'"
            )));
        }
    };
    out.push(medium);
    Ok(())
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
        Content::Tools(_) => "tool_use",
    }
}

fn message(generation: &Generation) -> Value {
    let mut content = Vec::new();
    if let Some(reasoning) = &generation.reasoning {
        content.push(json!({
            "type": "thinking",
            "thinking": reasoning.text,
            "signature": reasoning.signature,
        }));
    }
    match &generation.content {
        Content::Text { text, .. } => content.push(json!({"type": "text", "text": text})),
        Content::Tools(calls) => {
            for (i, call) in calls.iter().enumerate() {
                content.push(json!({
                    "type": "tool_use",
                    "id": generation.call_id("toolu_", i),
                    "name": call.name,
                    "input": call.input,
                }));
            }
        }
    }
    json!({
        "id": generation.id("msg_"),
        "type": "message",
        "role": "assistant",
        "model": generation.model,
        "content": content,
        "stop_reason": stop_reason(generation),
        "stop_sequence": null,
        "usage": usage(&generation.usage, generation.usage.output_total()),
    })
}

/// Content blocks in order: how each starts and the deltas that fill it.
fn stream_blocks(generation: &Generation) -> Vec<(Value, Vec<Value>)> {
    let mut blocks = Vec::new();
    if let Some(reasoning) = &generation.reasoning {
        let mut deltas: Vec<Value> = reasoning
            .pieces
            .iter()
            .map(|p| json!({"type": "thinking_delta", "thinking": p}))
            .collect();
        deltas.push(json!({"type": "signature_delta", "signature": reasoning.signature}));
        blocks.push((
            json!({"type": "thinking", "thinking": "", "signature": ""}),
            deltas,
        ));
    }
    match &generation.content {
        Content::Text { pieces, .. } => blocks.push((
            json!({"type": "text", "text": ""}),
            pieces
                .iter()
                .map(|p| json!({"type": "text_delta", "text": p}))
                .collect(),
        )),
        Content::Tools(calls) => {
            for (i, call) in calls.iter().enumerate() {
                blocks.push((
                    json!({
                        "type": "tool_use",
                        "id": generation.call_id("toolu_", i),
                        "name": call.name,
                        "input": {},
                    }),
                    call.pieces
                        .iter()
                        .map(|p| json!({"type": "input_json_delta", "partial_json": p}))
                        .collect(),
                ));
            }
        }
    }
    blocks
}

fn stream_events(generation: &Generation) -> Vec<bytes::Bytes> {
    let mut events = Vec::new();
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
    for (index, (start, deltas)) in stream_blocks(generation).into_iter().enumerate() {
        events.push(named_event(
            "content_block_start",
            &json!({"type": "content_block_start", "index": index, "content_block": start}),
        ));
        if index == 0 {
            events.push(named_event("ping", &json!({"type": "ping"})));
        }
        for delta in deltas {
            events.push(named_event(
                "content_block_delta",
                &json!({"type": "content_block_delta", "index": index, "delta": delta}),
            ));
        }
        events.push(named_event(
            "content_block_stop",
            &json!({"type": "content_block_stop", "index": index}),
        ));
    }
    events.push(named_event(
        "message_delta",
        &json!({
            "type": "message_delta",
            "delta": {"stop_reason": stop_reason(generation), "stop_sequence": null},
            "usage": {"output_tokens": generation.usage.output_total()},
        }),
    ));
    events.push(named_event(
        "message_stop",
        &json!({"type": "message_stop"}),
    ));
    events
}
