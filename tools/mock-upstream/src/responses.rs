//! OpenAI Responses: `POST /v1/responses` and `POST /v1/responses/input_tokens` (errors use the
//! OpenAI shape).

use bytes::Bytes;
use serde_json::{Value, json};

use crate::Reply;
use crate::error::ApiError;
use crate::openai::{SSE_CONTENT_TYPE, unix_now};
use crate::reply::{
    Content, Generation, Media, MediaKind, Prompt, ToolSpec, Usage, estimate_input_tokens,
    result_text,
};
use crate::scenario::Scenario;
use crate::sse::named_event;

pub(crate) fn responses(body: &Value, scenario: &Scenario, seq: u64) -> Result<Reply, ApiError> {
    let model = body
        .get("model")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::invalid("Missing required parameter: 'model'."))?;
    let items = body
        .get("input")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice);
    if body.get("previous_response_id").is_none_or(Value::is_null) {
        check_tool_pairs(items)?;
    }
    crate::openai::check_tools(body, "tools[{i}].parameters", "")?;
    let prompt = prompt(body, items)?;
    let generation = Generation::new(model, &prompt, body, scenario, seq);
    let shape = Shape {
        generation: &generation,
        body,
        created_at: unix_now(),
        encrypted: body
            .get("include")
            .and_then(Value::as_array)
            .is_some_and(|include| {
                include
                    .iter()
                    .any(|i| i.as_str() == Some("reasoning.encrypted_content"))
            }),
    };
    if body.get("stream").and_then(Value::as_bool) == Some(true) {
        Ok(Reply::Stream {
            content_type: SSE_CONTENT_TYPE,
            events: shape.stream_events(),
        })
    } else {
        Ok(Reply::Json(shape.response(
            "completed",
            json!(shape.items(true)),
            usage(&generation.usage),
        )))
    }
}

/// `POST /v1/responses/input_tokens`: `{"object": "response.input_tokens", "input_tokens": N}`.
pub(crate) fn input_tokens(body: &Value, scenario: &Scenario) -> Reply {
    let input = scenario
        .input_tokens
        .unwrap_or_else(|| estimate_input_tokens(body));
    Reply::Json(json!({"object": "response.input_tokens", "input_tokens": input}))
}

fn kind(item: &Value) -> Option<&str> {
    item.get("type").and_then(Value::as_str)
}

fn call_id(item: &Value) -> &str {
    item.get("call_id")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// Without `previous_response_id` the whole conversation is in `input`: every
/// `function_call_output` answers an earlier `function_call`, and every `function_call` is
/// answered.
fn check_tool_pairs(items: &[Value]) -> Result<(), ApiError> {
    let calls: Vec<&str> = items
        .iter()
        .filter(|i| kind(i) == Some("function_call"))
        .map(call_id)
        .collect();
    let outputs: Vec<&str> = items
        .iter()
        .filter(|i| kind(i) == Some("function_call_output"))
        .map(call_id)
        .collect();
    for (i, item) in items.iter().enumerate() {
        if kind(item) == Some("function_call_output") {
            let id = call_id(item);
            let called = items[..i]
                .iter()
                .any(|earlier| kind(earlier) == Some("function_call") && call_id(earlier) == id);
            if !called {
                return Err(ApiError::invalid_param(
                    format!("No tool call found for function call output with call_id {id}."),
                    "input",
                ));
            }
        }
    }
    if let Some(id) = calls.iter().find(|id| !outputs.contains(id)) {
        return Err(ApiError::invalid_param(
            format!("No tool output found for function call {id}."),
            "input",
        ));
    }
    Ok(())
}

fn prompt<'a>(body: &'a Value, items: &'a [Value]) -> Result<Prompt<'a>, ApiError> {
    let mut prompt = Prompt {
        thinking: body
            .pointer("/reasoning/effort")
            .and_then(Value::as_str)
            .is_some_and(|effort| effort != "none"),
        ..Prompt::default()
    };
    let trailing = items
        .iter()
        .rev()
        .take_while(|i| kind(i) == Some("function_call_output"))
        .count();
    prompt.tool_results = items[items.len() - trailing..]
        .iter()
        .map(|i| result_text(i.get("output")))
        .collect();
    for (i, item) in items.iter().enumerate() {
        let Some(parts) = item.get("content").and_then(Value::as_array) else {
            continue;
        };
        for (j, part) in parts.iter().enumerate() {
            let invalid = |e: String| {
                ApiError::invalid_param(
                    format!("Invalid 'input[{i}].content[{j}]': {e}"),
                    format!("input[{i}].content[{j}]"),
                )
            };
            let field = |name: &str| part.get(name).and_then(Value::as_str);
            let medium = match kind(part) {
                Some("input_image") => match (field("image_url"), field("file_id")) {
                    (Some(url), _) => Media::data_url(MediaKind::Image, url).map_err(invalid)?,
                    (None, Some(id)) => Media::file(MediaKind::Image, id),
                    (None, None) => {
                        return Err(invalid("an input_image needs image_url or file_id".into()));
                    }
                },
                Some("input_file") => {
                    match (field("file_data"), field("file_url"), field("file_id")) {
                        (Some(data), _, _) => {
                            Media::data_url(MediaKind::Document, data).map_err(invalid)?
                        }
                        (None, Some(url), _) => Media::url(MediaKind::Document, url),
                        (None, None, Some(id)) => Media::file(MediaKind::Document, id),
                        (None, None, None) => {
                            return Err(invalid(
                                "an input_file needs file_data, file_url or file_id".into(),
                            ));
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
                    .filter(|tool| kind(tool) == Some("function"))
                    .filter_map(|tool| {
                        Some(ToolSpec {
                            name: tool.get("name")?.as_str()?,
                            schema: tool.get("parameters"),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
    }
    Ok(prompt)
}

fn usage(usage: &Usage) -> Value {
    let input = usage.prompt_total();
    let output = usage.output_total();
    json!({
        "input_tokens": input,
        "input_tokens_details": {"cached_tokens": usage.cache_read},
        "output_tokens": output,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning},
        "total_tokens": input + output,
    })
}

fn output_text(text: &str) -> Value {
    json!({"type": "output_text", "text": text, "annotations": [], "logprobs": []})
}

fn summary_text(text: &str) -> Value {
    json!({"type": "summary_text", "text": text})
}

struct Shape<'a> {
    generation: &'a Generation,
    body: &'a Value,
    created_at: u64,
    /// `include` asks for `reasoning.encrypted_content`.
    encrypted: bool,
}

impl Shape<'_> {
    fn reasoning_id(&self) -> String {
        self.generation.id("rs_")
    }

    fn message_id(&self) -> String {
        self.generation.id("msg_")
    }

    fn call_item_id(&self, index: usize) -> String {
        self.generation.call_id("fc_", index)
    }

    /// The reasoning item, finished or as first announced.
    fn reasoning_item(&self, done: bool) -> Option<Value> {
        let reasoning = self.generation.reasoning.as_ref()?;
        let mut item = json!({
            "id": self.reasoning_id(),
            "type": "reasoning",
            "summary": if done { json!([summary_text(&reasoning.text)]) } else { json!([]) },
        });
        if self.encrypted && done {
            item["encrypted_content"] = json!(reasoning.signature);
        }
        Some(item)
    }

    /// The answer's items (a message, or one function call per call), finished or as first
    /// announced.
    fn answer_items(&self, done: bool) -> Vec<Value> {
        let status = if done { "completed" } else { "in_progress" };
        match &self.generation.content {
            Content::Text { text, .. } => vec![json!({
                "id": self.message_id(),
                "type": "message",
                "status": status,
                "role": "assistant",
                "content": if done { json!([output_text(text)]) } else { json!([]) },
            })],
            Content::Tools(calls) => calls
                .iter()
                .enumerate()
                .map(|(i, call)| {
                    json!({
                        "id": self.call_item_id(i),
                        "type": "function_call",
                        "status": status,
                        "call_id": self.generation.call_id("call_", i),
                        "name": call.name,
                        "arguments": if done { call.arguments.as_str() } else { "" },
                    })
                })
                .collect(),
        }
    }

    fn items(&self, done: bool) -> Vec<Value> {
        self.reasoning_item(done)
            .into_iter()
            .chain(self.answer_items(done))
            .collect()
    }

    fn response(&self, status: &str, output: Value, usage: Value) -> Value {
        let echo = |key: &str| self.body.get(key).cloned().unwrap_or(Value::Null);
        let reasoning = |key: &str| {
            self.body
                .get("reasoning")
                .and_then(|r| r.get(key))
                .cloned()
                .unwrap_or(Value::Null)
        };
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
            "reasoning": {"effort": reasoning("effort"), "summary": reasoning("summary")},
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
        let mut output_index = 0;
        if let (Some(reasoning), Some(added), Some(done)) = (
            self.generation.reasoning.as_ref(),
            self.reasoning_item(false),
            self.reasoning_item(true),
        ) {
            out.emit(
                "response.output_item.added",
                json!({"output_index": output_index, "item": added}),
            );
            let at = json!({
                "item_id": self.reasoning_id(),
                "output_index": output_index,
                "summary_index": 0,
            });
            out.emit(
                "response.reasoning_summary_part.added",
                with(&at, json!({"part": summary_text("")})),
            );
            for piece in &reasoning.pieces {
                out.emit(
                    "response.reasoning_summary_text.delta",
                    with(&at, json!({"delta": piece})),
                );
            }
            out.emit(
                "response.reasoning_summary_text.done",
                with(&at, json!({"text": reasoning.text})),
            );
            out.emit(
                "response.reasoning_summary_part.done",
                with(&at, json!({"part": summary_text(&reasoning.text)})),
            );
            out.emit(
                "response.output_item.done",
                json!({"output_index": output_index, "item": done}),
            );
            output_index += 1;
        }
        let added = self.answer_items(false);
        let done = self.answer_items(true);
        match &self.generation.content {
            Content::Text { text, pieces } => {
                out.emit(
                    "response.output_item.added",
                    json!({"output_index": output_index, "item": added[0]}),
                );
                let at = json!({
                    "item_id": self.message_id(),
                    "output_index": output_index,
                    "content_index": 0,
                });
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
                out.emit(
                    "response.output_item.done",
                    json!({"output_index": output_index, "item": done[0]}),
                );
            }
            Content::Tools(calls) => {
                for (i, call) in calls.iter().enumerate() {
                    let index = output_index + i;
                    out.emit(
                        "response.output_item.added",
                        json!({"output_index": index, "item": added[i]}),
                    );
                    let at = json!({"item_id": self.call_item_id(i), "output_index": index});
                    for piece in &call.pieces {
                        out.emit(
                            "response.function_call_arguments.delta",
                            with(&at, json!({"delta": piece})),
                        );
                    }
                    out.emit(
                        "response.function_call_arguments.done",
                        with(&at, json!({"name": call.name, "arguments": call.arguments})),
                    );
                    out.emit(
                        "response.output_item.done",
                        json!({"output_index": index, "item": done[i]}),
                    );
                }
            }
        }
        let done = self.response(
            "completed",
            json!(self.items(true)),
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
