//! Whole answers (the Response object), and what the stream encoder and decoder share with
//! them: output items, usage, status and ids.

use serde_json::{Value, json};

use super::super::ConvertError;
use super::super::ir::{Part, Response, StopReason, Thinking, ToolCall, Usage};

/// A whole Response object → IR. A `failed` response is an error of the upstream (its message
/// is kept), not an answer.
pub fn decode_response(body: &[u8]) -> Result<Response, ConvertError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ConvertError::invalid(format!("the Responses answer is not JSON: {e}")))?;
    if !value.is_object() {
        return Err(ConvertError::invalid(
            "the Responses answer is not a JSON object",
        ));
    }
    let status = value.get("status").and_then(Value::as_str);
    if status == Some("failed") {
        let message = value
            .pointer("/error/message")
            .and_then(Value::as_str)
            .unwrap_or("no message");
        return Err(ConvertError::invalid(format!(
            "the upstream's response failed: {message}"
        )));
    }
    let output = decode_output(value.get("output"))?;
    Ok(Response {
        id: text(&value, "id").to_owned(),
        model: text(&value, "model").to_owned(),
        stop: stop_reason(
            status,
            value
                .pointer("/incomplete_details/reason")
                .and_then(Value::as_str),
            output.tool_call,
            output.refused,
        ),
        usage: value.get("usage").map(usage_from).unwrap_or_default(),
        parts: output.parts,
    })
}

/// The IR answer as a Response object.
#[must_use]
pub fn encode_response(response: &Response) -> Vec<u8> {
    let id = response_id(&response.id);
    let mut output = Vec::with_capacity(response.parts.len());
    for part in &response.parts {
        let item_id = |prefix: &str| item_id(prefix, &id, output.len());
        let item = match part {
            Part::Text(text) => message_item(&item_id("msg"), "completed", Some(text)),
            Part::Thinking(thinking) => {
                if thinking.text.is_empty() && thinking.signature.is_none() {
                    continue;
                }
                reasoning_item(
                    &item_id("rs"),
                    &thinking.text,
                    thinking.signature.as_deref(),
                )
            }
            Part::ToolCall(call) => function_call_item(
                &item_id("fc"),
                "completed",
                &call.id,
                &call.name,
                &call.arguments,
            ),
            // Not part of an answer.
            Part::Image(_) | Part::Document(_) | Part::ToolResult(_) => continue,
        };
        output.push(item);
    }
    let (status, incomplete) = status_of(&response.stop);
    let body = response_object(
        &id,
        &response.model,
        unix_now(),
        status,
        incomplete,
        output,
        usage_json(&response.usage),
    );
    body.to_string().into_bytes()
}

/// What an `output` array holds.
#[derive(Debug, Default)]
pub(super) struct Output {
    pub parts: Vec<Part>,
    /// A `function_call` item was among them.
    pub tool_call: bool,
    /// A message part was a `refusal`.
    pub refused: bool,
}

/// The output items the IR can hold: messages (text and refusals), reasoning and function
/// calls. Other items (built-in tool calls, which the request side never asks for) are skipped.
pub(super) fn decode_output(output: Option<&Value>) -> Result<Output, ConvertError> {
    let mut decoded = Output::default();
    let Some(items) = output.and_then(Value::as_array) else {
        return Ok(decoded);
    };
    for (i, item) in items.iter().enumerate() {
        match item.get("type").and_then(Value::as_str) {
            Some("message") => {
                for part in item
                    .get("content")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    let (piece, refusal) = message_text(part);
                    decoded.refused |= refusal;
                    if !piece.is_empty() {
                        decoded.parts.push(Part::Text(piece.to_owned()));
                    }
                }
            }
            Some("function_call") => {
                decoded.tool_call = true;
                decoded
                    .parts
                    .push(Part::ToolCall(function_call(item).ok_or_else(|| {
                        ConvertError::invalid(format!(
                            "output[{i}] is a function_call without call_id or name"
                        ))
                    })?));
            }
            Some("reasoning") => {
                if let Some(thinking) = reasoning(item) {
                    decoded.parts.push(Part::Thinking(thinking));
                }
            }
            _ => {}
        }
    }
    Ok(decoded)
}

/// The text of a message content part (`output_text`, or a `refusal`: true).
pub(super) fn message_text(part: &Value) -> (&str, bool) {
    match part.get("type").and_then(Value::as_str) {
        Some("refusal") => (text(part, "refusal"), true),
        _ => (text(part, "text"), false),
    }
}

/// A `function_call` item: `call_id` (or, from lax upstreams, `id`), `name`, `arguments`.
pub(super) fn function_call(item: &Value) -> Option<ToolCall> {
    let id = item
        .get("call_id")
        .and_then(Value::as_str)
        .or_else(|| item.get("id").and_then(Value::as_str))?;
    let name = item.get("name").and_then(Value::as_str)?;
    Some(ToolCall {
        id: id.to_owned(),
        name: name.to_owned(),
        arguments: arguments(item),
    })
}

/// `arguments` as JSON text (an object some upstreams send as JSON rather than a string).
pub(super) fn arguments(item: &Value) -> String {
    match item.get("arguments") {
        Some(Value::String(s)) => s.clone(),
        None | Some(Value::Null) => String::new(),
        Some(other) => other.to_string(),
    }
}

/// A reasoning item: the summary parts (or, without them, the reasoning text parts) joined by
/// blank lines, and `encrypted_content` as the signature. `None` when it holds neither.
pub(super) fn reasoning(item: &Value) -> Option<Thinking> {
    thinking_of(
        item.get("summary"),
        item.get("content"),
        item.get("encrypted_content"),
    )
}

/// A reasoning item's parts: `summary`, `content`, `encrypted_content`.
pub(super) fn thinking_of(
    summary: Option<&Value>,
    content: Option<&Value>,
    encrypted: Option<&Value>,
) -> Option<Thinking> {
    let mut text = joined_texts(summary);
    if text.is_empty() {
        text = joined_texts(content);
    }
    let signature = encrypted
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned);
    if text.is_empty() && signature.is_none() {
        return None;
    }
    Some(Thinking {
        redacted: text.is_empty(),
        text,
        signature,
    })
}

/// The `text`s of an array of parts, joined by blank lines.
pub(super) fn joined_texts(parts: Option<&Value>) -> String {
    let mut joined = String::new();
    for part in parts.and_then(Value::as_array).into_iter().flatten() {
        let piece = text(part, "text");
        if piece.is_empty() {
            continue;
        }
        if !joined.is_empty() {
            joined.push_str(SUMMARY_SEPARATOR);
        }
        joined.push_str(piece);
    }
    joined
}

/// Between two summary parts of one reasoning item, which the IR holds as one thinking text.
pub(super) const SUMMARY_SEPARATOR: &str = "\n\n";

/// Why the answer stopped, from the Response's `status` and `incomplete_details.reason`.
pub(super) fn stop_reason(
    status: Option<&str>,
    incomplete_reason: Option<&str>,
    tool_call: bool,
    refused: bool,
) -> StopReason {
    if status == Some("incomplete") {
        return match incomplete_reason {
            Some("content_filter") => StopReason::ContentFilter,
            _ => StopReason::MaxTokens,
        };
    }
    if refused {
        StopReason::ContentFilter
    } else if tool_call {
        StopReason::ToolUse
    } else {
        StopReason::EndTurn
    }
}

/// `status` and `incomplete_details` for a stop reason. Responses has no stop sequences: a
/// stop on one is a completed response.
pub(super) fn status_of(stop: &StopReason) -> (&'static str, Value) {
    match stop {
        StopReason::MaxTokens => ("incomplete", json!({"reason": "max_output_tokens"})),
        StopReason::ContentFilter => ("incomplete", json!({"reason": "content_filter"})),
        StopReason::EndTurn | StopReason::ToolUse | StopReason::StopSequence(_) => {
            ("completed", Value::Null)
        }
    }
}

/// Responses `usage` → IR: `input_tokens` includes cache reads (`cached_tokens`) and cache
/// writes (`cache_write_tokens`), which the IR counts apart; `output_tokens` includes
/// `reasoning_tokens`, as in the IR.
pub(super) fn usage_from(usage: &Value) -> Usage {
    let count = |path: &str| {
        usage.pointer(path).map_or(0, |v| {
            v.as_u64()
                .or_else(|| v.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64))
                .unwrap_or(0)
        })
    };
    let prompt = count("/input_tokens");
    let cache_read = count("/input_tokens_details/cached_tokens").min(prompt);
    let cache_write = count("/input_tokens_details/cache_write_tokens").min(prompt - cache_read);
    let output = count("/output_tokens");
    Usage {
        input: prompt - cache_read - cache_write,
        output,
        cache_write,
        cache_read,
        reasoning: count("/output_tokens_details/reasoning_tokens").min(output),
    }
}

/// IR usage → Responses `usage`.
pub(super) fn usage_json(usage: &Usage) -> Value {
    let input = usage.prompt_total();
    json!({
        "input_tokens": input,
        "input_tokens_details": {
            "cached_tokens": usage.cache_read,
            "cache_write_tokens": usage.cache_write,
        },
        "output_tokens": usage.output,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning},
        "total_tokens": input.saturating_add(usage.output),
    })
}

/// The Response object around `output`, with the fields the API reference shows (the request
/// settings it echoes are not known here: their defaults).
pub(super) fn response_object(
    id: &str,
    model: &str,
    created_at: u64,
    status: &str,
    incomplete_details: Value,
    output: Vec<Value>,
    usage: Value,
) -> Value {
    json!({
        "id": id,
        "object": "response",
        "created_at": created_at,
        "status": status,
        "background": false,
        "error": null,
        "incomplete_details": incomplete_details,
        "instructions": null,
        "max_output_tokens": null,
        "max_tool_calls": null,
        "model": model,
        "output": output,
        "parallel_tool_calls": true,
        "previous_response_id": null,
        "reasoning": {"effort": null, "summary": null},
        "service_tier": "default",
        "store": false,
        "temperature": 1.0,
        "text": {"format": {"type": "text"}},
        "tool_choice": "auto",
        "tools": [],
        "top_p": 1.0,
        "truncation": "disabled",
        "usage": usage,
        "user": null,
        "metadata": {},
    })
}

/// A `message` output item; `text: None` for the empty one a stream announces.
pub(super) fn message_item(id: &str, status: &str, text: Option<&str>) -> Value {
    let content: Vec<Value> = text.map(output_text).into_iter().collect();
    json!({
        "id": id,
        "type": "message",
        "status": status,
        "content": content,
        "role": "assistant",
    })
}

/// An `output_text` content part.
pub(super) fn output_text(text: &str) -> Value {
    json!({"type": "output_text", "annotations": [], "logprobs": [], "text": text})
}

/// A `reasoning` output item: one summary part (none for an empty text) and the signature as
/// `encrypted_content`.
pub(super) fn reasoning_item(id: &str, text: &str, encrypted: Option<&str>) -> Value {
    let summary: Vec<Value> = if text.is_empty() {
        Vec::new()
    } else {
        vec![json!({"type": "summary_text", "text": text})]
    };
    let mut item = json!({"id": id, "type": "reasoning", "summary": summary});
    if let Some(encrypted) = encrypted {
        item["encrypted_content"] = Value::from(encrypted);
    }
    item
}

/// A `function_call` output item.
pub(super) fn function_call_item(
    id: &str,
    status: &str,
    call_id: &str,
    name: &str,
    arguments: &str,
) -> Value {
    json!({
        "id": id,
        "type": "function_call",
        "status": status,
        "arguments": arguments,
        "call_id": call_id,
        "name": name,
    })
}

/// The IR's answer id as a Response id: kept when it is one (`resp_…`), else `resp_` and its
/// letters and digits (a new id when it has none).
pub(super) fn response_id(id: &str) -> String {
    if id.len() > 5 && id.starts_with("resp_") {
        return id.to_owned();
    }
    let clean: String = id.chars().filter(char::is_ascii_alphanumeric).collect();
    if clean.is_empty() {
        format!("resp_{}", uuid::Uuid::now_v7().simple())
    } else {
        format!("resp_{clean}")
    }
}

/// The id of output item `index` of response `response_id`: `msg_…`, `rs_…` or `fc_…`.
pub(super) fn item_id(prefix: &str, response_id: &str, index: usize) -> String {
    let base = response_id.strip_prefix("resp_").unwrap_or(response_id);
    format!("{prefix}_{base}_{index}")
}

/// Seconds since the Unix epoch (`created_at`).
pub(super) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A string field, or "".
pub(super) fn text<'a>(value: &'a Value, key: &str) -> &'a str {
    value.get(key).and_then(Value::as_str).unwrap_or("")
}
