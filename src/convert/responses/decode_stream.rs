//! An upstream's Responses event stream → [`Event`]s.
//!
//! One IR block per output item: a `message` is a text block (its content parts, refusals
//! too, run together), a `reasoning` item a thinking block (its summary parts joined by blank
//! lines, `encrypted_content` from `response.output_item.done` as the signature; with no text
//! at all, a redacted-thinking block carrying the encrypted content), a `function_call` a tool
//! call block. Text and reasoning blocks open at their first text, so items without any make
//! no block; a function call opens at `response.output_item.added` (its id and name are there).
//! A `*.done` event or the finished item supplies the text when no delta did (upstreams that
//! send whole items), and a `response.completed` whose output never streamed is decoded whole.
//!
//! Events are recognised by the `type` in their data (the `event:` name when it has none).
//! Data that is not JSON (a `[DONE]` some compatible upstreams add, keep-alives) is ignored:
//! it cannot carry part of the answer, and an answer it breaks stays unfinished, which
//! [`StreamDecoder::end`] reports. Unknown event types are ignored.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::Value;

use super::super::StreamDecoder;
use super::super::ir::{Block, Delta, Event, Part, Usage};
use super::answer::{
    SUMMARY_SEPARATOR, arguments, decode_output, function_call, joined_texts, message_text,
    stop_reason, text, usage_from,
};
use crate::providers::ErrorKind;

#[derive(Debug, Default)]
pub struct Decoder {
    started: bool,
    /// A `Finish` or `Error` went out: nothing more is decoded.
    done: bool,
    /// The IR index of the next block.
    next_index: usize,
    open: Option<Open>,
    /// A function call block was opened (the stop reason of a completed answer).
    tool_call: bool,
    /// A message part was a refusal.
    refused: bool,
}

/// The block being streamed.
#[derive(Debug)]
struct Open {
    index: usize,
    /// The output item it belongs to.
    output_index: u64,
    kind: Kind,
    /// The block holds some text already (a reasoning summary's next part starts with a
    /// separator).
    has_text: bool,
    /// The content / summary part being streamed (`content_index`, `summary_index`).
    part: u64,
    /// That part has text in the block.
    part_started: bool,
    /// That part had a delta (its `*.done` text is then not new).
    part_delta: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Thinking,
    ToolCall,
}

/// One event's data: the members any event type uses, read without building a JSON tree for
/// the (most common) delta events; items and Response objects are kept as JSON.
#[derive(Deserialize)]
struct Wire<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<Cow<'a, str>>,
    #[serde(default)]
    output_index: Option<u64>,
    #[serde(default)]
    content_index: Option<u64>,
    #[serde(default)]
    summary_index: Option<u64>,
    #[serde(borrow, default)]
    delta: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    text: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    refusal: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    arguments: Option<Cow<'a, str>>,
    #[serde(default)]
    item: Option<Value>,
    #[serde(default)]
    response: Option<Value>,
    /// `error` events: documented flat (`code`, `message`); the live API nests them in `error`.
    #[serde(default)]
    error: Option<Value>,
    #[serde(borrow, default)]
    code: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    message: Option<Cow<'a, str>>,
}

impl StreamDecoder for Decoder {
    fn event(&mut self, name: Option<&str>, data: &str, out: &mut Vec<Event>) {
        if self.done {
            return;
        }
        let Ok(wire) = serde_json::from_str::<Wire<'_>>(data) else {
            return;
        };
        let Some(kind) = wire.kind.as_deref().or(name) else {
            return;
        };
        let output_index = wire.output_index.unwrap_or(0);
        let content = (output_index, wire.content_index.unwrap_or(0));
        let summary = (output_index, wire.summary_index.unwrap_or(0));
        let delta = wire.delta.as_deref().unwrap_or("");
        let whole = wire.text.as_deref().unwrap_or("");
        match kind {
            "response.created" | "response.queued" | "response.in_progress" => {
                self.start(wire.response.as_ref(), out);
            }
            "response.output_item.added" => {
                self.start(None, out);
                self.item_added(output_index, wire.item.as_ref(), out);
            }
            "response.output_text.delta" => self.text_delta(content, Kind::Text, delta, true, out),
            "response.refusal.delta" => {
                self.refused = true;
                self.text_delta(content, Kind::Text, delta, true, out);
            }
            "response.output_text.done" => self.text_done(content, Kind::Text, whole, out),
            "response.refusal.done" => {
                self.refused = true;
                let refusal = wire.refusal.as_deref().unwrap_or("");
                self.text_done(content, Kind::Text, refusal, out);
            }
            "response.reasoning_summary_text.delta" => {
                self.text_delta(summary, Kind::Thinking, delta, true, out);
            }
            "response.reasoning_text.delta" => {
                self.text_delta(content, Kind::Thinking, delta, true, out);
            }
            "response.reasoning_summary_text.done" => {
                self.text_done(summary, Kind::Thinking, whole, out);
            }
            "response.reasoning_text.done" => self.text_done(content, Kind::Thinking, whole, out),
            "response.function_call_arguments.delta" => {
                if let Some(open) = self.open_for(output_index, Some(Kind::ToolCall)) {
                    open.part_delta = true;
                    self.push_text(Kind::ToolCall, delta, out);
                }
            }
            "response.function_call_arguments.done" => {
                if let Some(open) = self.open_for(output_index, Some(Kind::ToolCall))
                    && !open.part_delta
                {
                    open.part_delta = true;
                    let arguments = wire.arguments.as_deref().unwrap_or("");
                    self.push_text(Kind::ToolCall, arguments, out);
                }
            }
            "response.output_item.done" => {
                self.start(None, out);
                if let Some(item) = &wire.item {
                    self.item_done(output_index, item, out);
                }
            }
            "response.completed" | "response.incomplete" => {
                self.finish(kind, wire.response.as_ref(), out);
            }
            "response.failed" => {
                let error = wire.response.as_ref().and_then(|r| r.get("error"));
                let code = error.and_then(|e| str_member(e, "code").or(str_member(e, "type")));
                let message = error.and_then(|e| str_member(e, "message"));
                self.error(code, message.unwrap_or(""), out);
            }
            "error" => match wire.error.as_ref().filter(|e| e.is_object()) {
                Some(error) => {
                    let code = str_member(error, "code")
                        .or(str_member(error, "type"))
                        .filter(|t| *t != "error");
                    let message = str_member(error, "message").unwrap_or("");
                    self.error(code, message, out);
                }
                None => {
                    let message = wire.message.as_deref().unwrap_or("");
                    self.error(wire.code.as_deref(), message, out);
                }
            },
            _ => {}
        }
    }

    fn end(&mut self, out: &mut Vec<Event>) {
        if !self.done {
            self.done = true;
            out.push(Event::Error {
                kind: ErrorKind::Upstream,
                message: "the upstream ended the stream before the answer was complete".into(),
            });
        }
    }
}

impl Decoder {
    /// `Start` once, before anything else (from the Response object when there is one).
    fn start(&mut self, response: Option<&Value>, out: &mut Vec<Event>) {
        if self.started {
            return;
        }
        self.started = true;
        let response = response.unwrap_or(&Value::Null);
        out.push(Event::Start {
            id: text(response, "id").to_owned(),
            model: text(response, "model").to_owned(),
            usage: response.get("usage").map(usage_from).unwrap_or_default(),
        });
    }

    /// The open block when it is the one of this output item (and of this kind).
    fn open_for(&mut self, output_index: u64, kind: Option<Kind>) -> Option<&mut Open> {
        self.open
            .as_mut()
            .filter(|o| o.output_index == output_index && kind.is_none_or(|k| o.kind == k))
    }

    fn open_block(&mut self, output_index: u64, kind: Kind, block: Block, out: &mut Vec<Event>) {
        self.close(out);
        let index = self.next_index;
        self.next_index += 1;
        self.tool_call |= kind == Kind::ToolCall;
        out.push(Event::BlockStart { index, block });
        self.open = Some(Open {
            index,
            output_index,
            kind,
            has_text: false,
            part: 0,
            part_started: false,
            part_delta: false,
        });
    }

    fn close(&mut self, out: &mut Vec<Event>) {
        if let Some(open) = self.open.take() {
            out.push(Event::BlockStop { index: open.index });
        }
    }

    fn item_added(&mut self, output_index: u64, item: Option<&Value>, out: &mut Vec<Event>) {
        if self
            .open
            .as_ref()
            .is_some_and(|o| o.output_index != output_index)
        {
            self.close(out);
        }
        let Some(item) = item else { return };
        if item.get("type").and_then(Value::as_str) != Some("function_call") {
            // Messages and reasoning open at their first text.
            return;
        }
        let Some(call) = function_call(item) else {
            return;
        };
        self.open_block(
            output_index,
            Kind::ToolCall,
            Block::ToolCall {
                id: call.id,
                name: call.name,
            },
            out,
        );
        if !call.arguments.is_empty() {
            self.push_text(Kind::ToolCall, &call.arguments, out);
            if let Some(open) = self.open.as_mut() {
                open.part_delta = true;
            }
        }
    }

    /// Text for a text or thinking block at (output item, part), opening the block when
    /// needed. `delta`: it came in a delta event (the part's `*.done` text is then not new).
    fn text_delta(
        &mut self,
        (output_index, part): (u64, u64),
        kind: Kind,
        piece: &str,
        delta: bool,
        out: &mut Vec<Event>,
    ) {
        if piece.is_empty() {
            return;
        }
        self.start(None, out);
        if self.open_for(output_index, Some(kind)).is_none() {
            let block = match kind {
                Kind::Thinking => Block::Thinking,
                Kind::Text | Kind::ToolCall => Block::Text,
            };
            self.open_block(output_index, kind, block, out);
        }
        let Some(open) = self.open.as_mut() else {
            return;
        };
        if open.part != part {
            open.part = part;
            open.part_started = false;
            open.part_delta = false;
        }
        // A reasoning item's summary parts are one thinking text, a blank line apart.
        let separate = kind == Kind::Thinking && open.has_text && !open.part_started;
        open.has_text = true;
        open.part_started = true;
        open.part_delta |= delta;
        if separate {
            self.push_text(kind, SUMMARY_SEPARATOR, out);
        }
        self.push_text(kind, piece, out);
    }

    /// The whole text of a content or summary part: new only when no delta brought it.
    fn text_done(&mut self, at: (u64, u64), kind: Kind, whole: &str, out: &mut Vec<Event>) {
        let streamed = self
            .open_for(at.0, Some(kind))
            .is_some_and(|o| o.part == at.1 && o.part_delta);
        if !streamed {
            self.text_delta(at, kind, whole, false, out);
        }
    }

    fn push_text(&mut self, kind: Kind, piece: &str, out: &mut Vec<Event>) {
        let Some(open) = self.open.as_ref().filter(|_| !piece.is_empty()) else {
            return;
        };
        let delta = match kind {
            Kind::Text => Delta::Text(piece.to_owned()),
            Kind::Thinking => Delta::Thinking(piece.to_owned()),
            Kind::ToolCall => Delta::ToolArguments(piece.to_owned()),
        };
        out.push(Event::Delta {
            index: open.index,
            delta,
        });
    }

    fn item_done(&mut self, output_index: u64, item: &Value, out: &mut Vec<Event>) {
        match item.get("type").and_then(Value::as_str) {
            Some("message") => {
                if self.open_for(output_index, Some(Kind::Text)).is_none() {
                    // Never streamed: the item's own text.
                    let mut whole = String::new();
                    for part in item
                        .get("content")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                    {
                        let (piece, refusal) = message_text(part);
                        self.refused |= refusal;
                        whole.push_str(piece);
                    }
                    self.text_delta((output_index, 0), Kind::Text, &whole, false, out);
                }
                self.close_item(output_index, out);
            }
            Some("function_call") => {
                if self.open_for(output_index, Some(Kind::ToolCall)).is_none() {
                    self.item_added(output_index, Some(item), out);
                } else if let Some(open) = self.open.as_mut()
                    && !open.part_delta
                {
                    open.part_delta = true;
                    let whole = arguments(item);
                    if !whole.is_empty() {
                        self.push_text(Kind::ToolCall, &whole, out);
                    }
                }
                self.close_item(output_index, out);
            }
            Some("reasoning") => {
                let encrypted = item
                    .get("encrypted_content")
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty());
                if self.open_for(output_index, Some(Kind::Thinking)).is_none() {
                    let mut whole = joined_texts(item.get("summary"));
                    if whole.is_empty() {
                        whole = joined_texts(item.get("content"));
                    }
                    if whole.is_empty() {
                        if let Some(data) = encrypted {
                            self.open_block(
                                output_index,
                                Kind::Thinking,
                                Block::RedactedThinking {
                                    data: data.to_owned(),
                                },
                                out,
                            );
                            self.close(out);
                        }
                        return;
                    }
                    self.text_delta((output_index, 0), Kind::Thinking, &whole, false, out);
                }
                if let Some(data) = encrypted
                    && let Some(open) = self.open_for(output_index, Some(Kind::Thinking))
                {
                    let index = open.index;
                    out.push(Event::Delta {
                        index,
                        delta: Delta::Signature(data.to_owned()),
                    });
                }
                self.close_item(output_index, out);
            }
            _ => {}
        }
    }

    fn close_item(&mut self, output_index: u64, out: &mut Vec<Event>) {
        if self.open_for(output_index, None).is_some() {
            self.close(out);
        }
    }

    /// `response.completed` / `response.incomplete`: the stop reason and the final usage.
    fn finish(&mut self, kind: &str, response: Option<&Value>, out: &mut Vec<Event>) {
        let response = response.unwrap_or(&Value::Null);
        self.start(Some(response), out);
        if self.next_index == 0 {
            // Nothing streamed: the answer is in the final Response object alone.
            self.replay_output(response.get("output"), out);
        }
        self.close(out);
        let status = response
            .get("status")
            .and_then(Value::as_str)
            .or(kind.strip_prefix("response."));
        let stop = stop_reason(
            status,
            response
                .pointer("/incomplete_details/reason")
                .and_then(Value::as_str),
            self.tool_call,
            self.refused,
        );
        let usage = response.get("usage").map_or(Usage::default(), usage_from);
        self.done = true;
        out.push(Event::Finish { stop, usage });
    }

    fn replay_output(&mut self, output: Option<&Value>, out: &mut Vec<Event>) {
        let Ok(decoded) = decode_output(output) else {
            return;
        };
        self.refused |= decoded.refused;
        for (i, part) in decoded.parts.into_iter().enumerate() {
            let i = i as u64;
            match part {
                Part::Text(whole) => self.text_delta((i, 0), Kind::Text, &whole, false, out),
                Part::Thinking(thinking) => {
                    if thinking.text.is_empty() {
                        if let Some(data) = thinking.signature {
                            let block = Block::RedactedThinking { data };
                            self.open_block(i, Kind::Thinking, block, out);
                        }
                    } else {
                        self.text_delta((i, 0), Kind::Thinking, &thinking.text, false, out);
                        if let Some(signature) = thinking.signature {
                            self.push_text_signature(signature, out);
                        }
                    }
                }
                Part::ToolCall(call) => {
                    let block = Block::ToolCall {
                        id: call.id,
                        name: call.name,
                    };
                    self.open_block(i, Kind::ToolCall, block, out);
                    if !call.arguments.is_empty() {
                        self.push_text(Kind::ToolCall, &call.arguments, out);
                    }
                }
                Part::Image(_) | Part::Document(_) | Part::ToolResult(_) => {}
            }
            self.close(out);
        }
    }

    fn push_text_signature(&mut self, signature: String, out: &mut Vec<Event>) {
        if let Some(open) = self.open.as_ref() {
            out.push(Event::Delta {
                index: open.index,
                delta: Delta::Signature(signature),
            });
        }
    }

    fn error(&mut self, code: Option<&str>, message: &str, out: &mut Vec<Event>) {
        self.done = true;
        let message = if message.is_empty() {
            "the upstream reported an error".to_owned()
        } else {
            message.to_owned()
        };
        out.push(Event::Error {
            kind: error_kind(code),
            message,
        });
    }
}

/// relaybox's kind for an error code of an in-stream error (OpenAI's codes, and the codes
/// relaybox's own error events carry).
fn error_kind(code: Option<&str>) -> ErrorKind {
    match code.unwrap_or("") {
        "rate_limit_exceeded" | "rate_limit_error" | "too_many_requests" | "insufficient_quota" => {
            ErrorKind::RateLimited
        }
        "server_is_overloaded" | "overloaded" | "overloaded_error" | "slow_down" => {
            ErrorKind::Overloaded
        }
        "invalid_request"
        | "invalid_request_error"
        | "context_length_exceeded"
        | "invalid_prompt" => ErrorKind::InvalidRequest,
        "authentication_failed" | "authentication_error" | "invalid_api_key" => {
            ErrorKind::Authentication
        }
        "permission_denied" | "permission_error" => ErrorKind::PermissionDenied,
        "not_found" | "not_found_error" => ErrorKind::NotFound,
        "request_too_large" => ErrorKind::RequestTooLarge,
        "timeout" | "timeout_error" => ErrorKind::Timeout,
        "internal_error" => ErrorKind::Internal,
        _ => ErrorKind::Upstream,
    }
}

fn str_member<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    value.get(key).and_then(Value::as_str)
}
