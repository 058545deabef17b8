//! OpenAI Responses: `POST /v1/responses` (errors use the OpenAI shape).

use bytes::Bytes;
use serde_json::{Value, json};

use crate::Reply;
use crate::error::ApiError;
use crate::openai::{SSE_CONTENT_TYPE, unix_now};
use crate::reply::{Content, Generation, ToolSpec, Usage};
use crate::scenario::Scenario;
use crate::sse::named_event;

pub(crate) fn responses(body: &Value, scenario: &Scenario, seq: u64) -> Result<Reply, ApiError> {
    let model = body
        .get("model")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::invalid("Missing required parameter: 'model'."))?;
    let generation = Generation::new(model, pick_tool(body), body, scenario, seq);
    let shape = Shape {
        generation: &generation,
        body,
        created_at: unix_now(),
    };
    if body.get("stream").and_then(Value::as_bool) == Some(true) {
        Ok(Reply::Stream {
            content_type: SSE_CONTENT_TYPE,
            events: shape.stream_events(),
        })
    } else {
        Ok(Reply::Json(shape.response(
            "completed",
            json!([shape.item(true)]),
            usage(&generation.usage),
        )))
    }
}

/// The first function tool, unless `tool_choice` is "none" or the last input
/// item is a function call's output.
fn pick_tool(body: &Value) -> Option<ToolSpec<'_>> {
    if body.get("tool_choice").and_then(Value::as_str) == Some("none") {
        return None;
    }
    let last_type = body
        .get("input")
        .and_then(Value::as_array)
        .and_then(|items| items.last())
        .and_then(|item| item.get("type"))
        .and_then(Value::as_str);
    if last_type == Some("function_call_output") {
        return None;
    }
    body.get("tools")?.as_array()?.iter().find_map(|tool| {
        if tool.get("type").and_then(Value::as_str) != Some("function") {
            return None;
        }
        Some(ToolSpec {
            name: tool.get("name")?.as_str()?,
            schema: tool.get("parameters"),
        })
    })
}

fn usage(usage: &Usage) -> Value {
    let input = usage.prompt_total();
    json!({
        "input_tokens": input,
        "input_tokens_details": {"cached_tokens": usage.cache_read},
        "output_tokens": usage.output,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": input + usage.output,
    })
}

fn output_text(text: &str) -> Value {
    json!({"type": "output_text", "text": text, "annotations": [], "logprobs": []})
}

struct Shape<'a> {
    generation: &'a Generation,
    body: &'a Value,
    created_at: u64,
}

impl Shape<'_> {
    fn item_id(&self) -> String {
        match self.generation.content {
            Content::Text { .. } => self.generation.id("msg_"),
            Content::Tool { .. } => self.generation.id("fc_"),
        }
    }

    /// The single output item, finished or as first announced.
    fn item(&self, done: bool) -> Value {
        let status = if done { "completed" } else { "in_progress" };
        match &self.generation.content {
            Content::Text { text, .. } => json!({
                "id": self.item_id(),
                "type": "message",
                "status": status,
                "role": "assistant",
                "content": if done { json!([output_text(text)]) } else { json!([]) },
            }),
            Content::Tool {
                name, arguments, ..
            } => json!({
                "id": self.item_id(),
                "type": "function_call",
                "status": status,
                "call_id": self.generation.id("call_"),
                "name": name,
                "arguments": if done { arguments.as_str() } else { "" },
            }),
        }
    }

    fn response(&self, status: &str, output: Value, usage: Value) -> Value {
        let echo = |key: &str| self.body.get(key).cloned().unwrap_or(Value::Null);
        json!({
            "id": self.generation.id("resp_"),
            "object": "response",
            "created_at": self.created_at,
            "status": status,
            "background": false,
            "error": null,
            "incomplete_details": null,
            "instructions": echo("instructions"),
            "max_output_tokens": echo("max_output_tokens"),
            "model": self.generation.model,
            "output": output,
            "parallel_tool_calls": true,
            "previous_response_id": echo("previous_response_id"),
            "reasoning": {"effort": null, "summary": null},
            "store": true,
            "temperature": 1.0,
            "text": {"format": {"type": "text"}},
            "tool_choice": "auto",
            "tools": self.body.get("tools").cloned().unwrap_or_else(|| json!([])),
            "top_p": 1.0,
            "truncation": "disabled",
            "usage": usage,
            "user": null,
            "metadata": {},
        })
    }

    fn stream_events(&self) -> Vec<Bytes> {
        let mut out = Emitter::default();
        let pending = self.response("in_progress", json!([]), Value::Null);
        out.emit("response.created", json!({"response": pending}));
        out.emit("response.in_progress", json!({"response": pending}));
        out.emit(
            "response.output_item.added",
            json!({"output_index": 0, "item": self.item(false)}),
        );
        let item_id = self.item_id();
        match &self.generation.content {
            Content::Text { text, pieces } => {
                let at = json!({"item_id": item_id, "output_index": 0, "content_index": 0});
                out.emit(
                    "response.content_part.added",
                    with(&at, json!({"part": output_text("")})),
                );
                for piece in pieces {
                    out.emit(
                        "response.output_text.delta",
                        with(&at, json!({"delta": piece, "logprobs": []})),
                    );
                }
                out.emit(
                    "response.output_text.done",
                    with(&at, json!({"text": text, "logprobs": []})),
                );
                out.emit(
                    "response.content_part.done",
                    with(&at, json!({"part": output_text(text)})),
                );
            }
            Content::Tool {
                name,
                arguments,
                pieces,
                ..
            } => {
                let at = json!({"item_id": item_id, "output_index": 0});
                for piece in pieces {
                    out.emit(
                        "response.function_call_arguments.delta",
                        with(&at, json!({"delta": piece})),
                    );
                }
                out.emit(
                    "response.function_call_arguments.done",
                    with(&at, json!({"name": name, "arguments": arguments})),
                );
            }
        }
        out.emit(
            "response.output_item.done",
            json!({"output_index": 0, "item": self.item(true)}),
        );
        let done = self.response(
            "completed",
            json!([self.item(true)]),
            usage(&self.generation.usage),
        );
        out.emit("response.completed", json!({"response": done}));
        out.events
    }
}

/// Merges two JSON objects (the second wins).
fn with(base: &Value, extra: Value) -> Value {
    let mut merged = base.clone();
    if let (Some(target), Value::Object(extra)) = (merged.as_object_mut(), extra) {
        target.extend(extra);
    }
    merged
}

/// Numbers events with `sequence_number` from 0 and frames them.
#[derive(Default)]
struct Emitter {
    events: Vec<Bytes>,
    next: u64,
}

impl Emitter {
    fn emit(&mut self, kind: &str, mut data: Value) {
        if let Some(object) = data.as_object_mut() {
            object.insert("type".to_owned(), json!(kind));
            object.insert("sequence_number".to_owned(), json!(self.next));
        }
        self.next += 1;
        self.events.push(named_event(kind, &data));
    }
}
