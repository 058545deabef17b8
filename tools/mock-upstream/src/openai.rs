//! OpenAI Chat Completions (`POST /v1/chat/completions`), the model list
//! (`GET /v1/models`) and the OpenAI error shape shared with the Responses API.

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use serde_json::{Value, json};

use crate::Reply;
use crate::error::ApiError;
use crate::reply::{
    Content, Generation, Media, MediaKind, Prompt, ToolSpec, Usage, bad_schema_type, result_text,
};
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
    let messages = body
        .get("messages")
        .and_then(Value::as_array)
        .ok_or_else(|| ApiError::invalid("Missing required parameter: 'messages'."))?;
    check_tool_pairs(messages)?;
    check_tools(body, "tools[{i}].function.parameters", "/function")?;
    let prompt = prompt(body, messages)?;
    let generation = Generation::new(model, &prompt, body, scenario, seq);
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

/// `{"error":{"message","type","param","code"}}` (`param` null unless a field is at fault). `error_code=X` sets
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
    json!({"error": {"message": error.message, "type": kind, "param": error.param, "code": code}})
}

pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Function parameters are JSON schemas: a `type` that is not a JSON Schema type name (such as
/// Gemini's `OBJECT`) is refused as OpenAI refuses it. `param` names the field (`{i}` is the
/// tool's index); `function` points from a tool to its name and parameters.
pub(crate) fn check_tools(body: &Value, param: &str, function: &str) -> Result<(), ApiError> {
    let tools = body
        .get("tools")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice);
    for (i, tool) in tools.iter().enumerate() {
        // "" points at the tool itself (Responses' flat function tools).
        let Some(function) = tool.pointer(function) else {
            continue;
        };
        let Some(parameters) = function.get("parameters") else {
            continue;
        };
        if let Some(bad) = bad_schema_type(parameters) {
            let name = function
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default();
            return Err(ApiError::invalid_param(
                format!(
                    "Invalid schema for function '{name}': '{bad}' is not valid under any of the \
                     given schemas."
                ),
                param.replace("{i}", &i.to_string()),
            ));
        }
    }
    Ok(())
}

fn role(message: &Value) -> Option<&str> {
    message.get("role").and_then(Value::as_str)
}

fn call_ids(message: &Value) -> Vec<&str> {
    message
        .get("tool_calls")
        .and_then(Value::as_array)
        .map(|calls| {
            calls
                .iter()
                .filter_map(|c| c.get("id").and_then(Value::as_str))
                .collect()
        })
        .unwrap_or_default()
}

/// OpenAI's pairing rules: an assistant message with `tool_calls` is followed by one `tool`
/// message per call id, and a `tool` message answers a call of the assistant message before
/// the run of tool messages it belongs to.
fn check_tool_pairs(messages: &[Value]) -> Result<(), ApiError> {
    let mut open: Vec<&str> = Vec::new();
    let mut pending: Option<(usize, Vec<&str>)> = None;
    for (i, message) in messages.iter().enumerate() {
        if role(message) == Some("tool") {
            let id = message
                .get("tool_call_id")
                .and_then(Value::as_str)
                .unwrap_or_default();
            if !open.contains(&id) {
                return Err(ApiError::invalid_param(
                    "Invalid parameter: messages with role 'tool' must be a response to a \
                     preceeding message with 'tool_calls'.",
                    format!("messages.[{i}].role"),
                ));
            }
            if let Some((_, ids)) = pending.as_mut() {
                ids.retain(|pending| *pending != id);
            }
            continue;
        }
        if let Some((at, ids)) = pending.take()
            && !ids.is_empty()
        {
            return Err(unanswered(at, &ids));
        }
        open = call_ids(message);
        if !open.is_empty() {
            pending = Some((i, open.clone()));
        }
    }
    match pending {
        Some((at, ids)) if !ids.is_empty() => Err(unanswered(at, &ids)),
        _ => Ok(()),
    }
}

fn unanswered(at: usize, ids: &[&str]) -> ApiError {
    ApiError::invalid_param(
        format!(
            "An assistant message with 'tool_calls' must be followed by tool messages \
             responding to each 'tool_call_id'. The following tool_call_ids did not have \
             response messages: {}",
            ids.join(", ")
        ),
        format!("messages.[{at}].role"),
    )
}

fn prompt<'a>(body: &'a Value, messages: &'a [Value]) -> Result<Prompt<'a>, ApiError> {
    let mut prompt = Prompt {
        thinking: body
            .get("reasoning_effort")
            .and_then(Value::as_str)
            .is_some_and(|effort| effort != "none"),
        ..Prompt::default()
    };
    let trailing_results = messages
        .iter()
        .rev()
        .take_while(|m| role(m) == Some("tool"))
        .count();
    prompt.tool_results = messages[messages.len() - trailing_results..]
        .iter()
        .map(|m| result_text(m.get("content")))
        .collect();
    for (i, message) in messages.iter().enumerate() {
        let Some(parts) = message.get("content").and_then(Value::as_array) else {
            continue;
        };
        for (j, part) in parts.iter().enumerate() {
            let invalid =
                |e: String| ApiError::invalid(format!("Invalid 'messages[{i}].content[{j}]': {e}"));
            let medium = match part.get("type").and_then(Value::as_str) {
                Some("image_url") => {
                    let url = part
                        .pointer("/image_url/url")
                        .or_else(|| part.get("image_url"))
                        .and_then(Value::as_str)
                        .unwrap_or_default();
                    Media::data_url(MediaKind::Image, url).map_err(invalid)?
                }
                Some("file") => {
                    let file = part.get("file").unwrap_or(&Value::Null);
                    match (
                        file.get("file_data").and_then(Value::as_str),
                        file.get("file_id").and_then(Value::as_str),
                    ) {
                        (Some(data), _) => {
                            Media::data_url(MediaKind::Document, data).map_err(invalid)?
                        }
                        (None, Some(id)) => Media::file(MediaKind::Document, id),
                        (None, None) => {
                            return Err(invalid("a file part needs file_data or file_id".into()));
                        }
                    }
                }
                _ => continue,
            };
            prompt.media.push(medium);
        }
    }
    if body.get("tool_choice").and_then(Value::as_str) != Some("none") {
        prompt.tools = body
            .get("tools")
            .and_then(Value::as_array)
            .map(|tools| {
                tools
                    .iter()
                    .filter_map(|tool| {
                        let function = tool.get("function")?;
                        Some(ToolSpec {
                            name: function.get("name")?.as_str()?,
                            schema: function.get("parameters"),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
    }
    Ok(prompt)
}

fn usage(usage: &Usage) -> Value {
    let prompt = usage.prompt_total();
    let completion = usage.output_total();
    json!({
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": usage.cache_read, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": usage.reasoning,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    })
}

fn finish_reason(generation: &Generation) -> &'static str {
    match generation.content {
        Content::Text { .. } => "stop",
        Content::Tools(_) => "tool_calls",
    }
}

fn completion(generation: &Generation) -> Value {
    let mut message = json!({
        "role": "assistant",
        "content": null,
        "refusal": null,
        "annotations": [],
    });
    if let Some(reasoning) = &generation.reasoning {
        message["reasoning_content"] = json!(reasoning.text);
    }
    match &generation.content {
        Content::Text { text, .. } => message["content"] = json!(text),
        Content::Tools(calls) => {
            let calls: Vec<Value> = calls
                .iter()
                .enumerate()
                .map(|(i, call)| {
                    json!({
                        "id": generation.call_id("call_", i),
                        "type": "function",
                        "function": {"name": call.name, "arguments": call.arguments},
                    })
                })
                .collect();
            message["tool_calls"] = json!(calls);
        }
    }
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

/// The deltas of the one choice, in order. Reasoning comes first as DeepSeek/vLLM stream it
/// (`reasoning_content`, with `content: null`); each tool call starts with its id and name and
/// then streams its arguments in pieces.
fn deltas(generation: &Generation) -> Vec<Value> {
    let mut deltas = Vec::new();
    let mut first = json!({"role": "assistant", "content": "", "refusal": null});
    if let Some(reasoning) = &generation.reasoning {
        first["content"] = Value::Null;
        first["reasoning_content"] = json!("");
        deltas.push(first);
        for piece in &reasoning.pieces {
            deltas.push(json!({"content": null, "reasoning_content": piece}));
        }
        first = Value::Null;
    }
    match &generation.content {
        Content::Text { pieces, .. } => {
            if !first.is_null() {
                deltas.push(first);
            }
            deltas.extend(pieces.iter().map(|p| json!({"content": p})));
        }
        Content::Tools(calls) => {
            for (i, call) in calls.iter().enumerate() {
                let mut head = json!({
                    "tool_calls": [{
                        "index": i,
                        "id": generation.call_id("call_", i),
                        "type": "function",
                        "function": {"name": call.name, "arguments": ""},
                    }],
                });
                if let Some(first) = first.as_object_mut().filter(|_| i == 0) {
                    first.insert("content".into(), Value::Null);
                    first.insert("tool_calls".into(), head["tool_calls"].take());
                    head = Value::Object(std::mem::take(first));
                }
                deltas.push(head);
                deltas.extend(
                    call.pieces.iter().map(
                        |p| json!({"tool_calls": [{"index": i, "function": {"arguments": p}}]}),
                    ),
                );
            }
        }
    }
    deltas
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

    let deltas = deltas(generation);
    let mut events = Vec::with_capacity(deltas.len() + 3);
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
