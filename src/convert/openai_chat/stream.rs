//! Streamed Chat Completions: `data: {chat.completion.chunk}` events ⇄ [`Event`]s.
//!
//! The wire: a first chunk with `delta: {role: "assistant", content: ""}`, then `content`,
//! `reasoning_content` (compatible servers) and `tool_calls` pieces (the first piece of a
//! call has `index`, `id`, `type` and `function.name`; later ones `index` and
//! `function.arguments` only), a chunk with `finish_reason`, then — with
//! `stream_options.include_usage` — a chunk with `choices: []` and the usage (every earlier
//! chunk then has `"usage": null`), then `data: [DONE]`. An error inside the stream is
//! `data: {"error": {…}}`.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{
    PROTOCOL, UsageOut, WireUsage, completion_id, error_kind, error_message, finish_reason,
    stop_reason, unix_now,
};
use crate::convert::ir::{Block, Delta, Event, Usage};
use crate::convert::{StreamDecoder, StreamEncoder, StreamOptions};
use crate::providers::{ErrorKind, stream_error_event};

// ---------------------------------------------------------------------------------------------
// Decoding

#[derive(Deserialize)]
struct Chunk<'a> {
    #[serde(default, borrow)]
    id: Option<std::borrow::Cow<'a, str>>,
    #[serde(default, borrow)]
    model: Option<std::borrow::Cow<'a, str>>,
    #[serde(default, borrow)]
    choices: Option<Vec<ChunkChoice<'a>>>,
    #[serde(default)]
    usage: Option<WireUsage>,
    #[serde(default)]
    error: Option<Value>,
}

#[derive(Deserialize)]
struct ChunkChoice<'a> {
    #[serde(default)]
    index: u64,
    #[serde(default, borrow)]
    delta: Option<ChunkDelta<'a>>,
    #[serde(default, borrow)]
    finish_reason: Option<std::borrow::Cow<'a, str>>,
}

#[derive(Deserialize)]
struct ChunkDelta<'a> {
    #[serde(default, borrow)]
    content: Option<std::borrow::Cow<'a, str>>,
    #[serde(default, borrow)]
    reasoning_content: Option<std::borrow::Cow<'a, str>>,
    /// The newer name some servers (vLLM, OpenRouter) use; a string there.
    #[serde(default)]
    reasoning: Option<Value>,
    #[serde(default, borrow)]
    refusal: Option<std::borrow::Cow<'a, str>>,
    #[serde(default, borrow)]
    tool_calls: Option<Vec<ChunkToolCall<'a>>>,
}

#[derive(Deserialize)]
struct ChunkToolCall<'a> {
    #[serde(default)]
    index: Option<usize>,
    #[serde(default, borrow)]
    id: Option<std::borrow::Cow<'a, str>>,
    #[serde(default, borrow)]
    function: Option<ChunkFunction<'a>>,
}

#[derive(Deserialize)]
struct ChunkFunction<'a> {
    #[serde(default, borrow)]
    name: Option<std::borrow::Cow<'a, str>>,
    #[serde(default, borrow)]
    arguments: Option<std::borrow::Cow<'a, str>>,
}

/// What the open block is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Open {
    Text,
    Thinking,
    /// A tool call, by its position in [`Decoder::tools`].
    Tool(usize),
}

/// One streamed tool call, by its wire `index`.
#[derive(Debug)]
struct ToolState {
    wire_index: usize,
    id: String,
    name: String,
    /// Arguments not sent on yet (while the call waits in the queue).
    pending: String,
    /// Its block was opened.
    started: bool,
    /// Its arguments form a complete JSON value: nothing more can belong to it.
    end: JsonEnd,
}

/// Something that arrived while an earlier tool call was still incomplete: held back so the
/// blocks stay whole (see [`Decoder`]).
#[derive(Debug)]
enum Held {
    Text(String),
    Thinking(String),
    /// A tool call, by its position in [`Decoder::tools`].
    Tool(usize),
}

/// Decodes an upstream's Chat Completions stream.
///
/// - `Start` comes with the first chunk; `Finish` at `[DONE]` (after the usage chunk that
///   follows the `finish_reason` chunk; `[DONE]` is the upstream saying the answer is whole,
///   even without a `finish_reason`), or at the end of the stream when a `finish_reason` was
///   seen. The stream ending before either is an error.
/// - Tool calls stream one after the other by `index`. A call's block stays open while its
///   arguments are incomplete JSON; whatever arrives meanwhile (another call, text) is held
///   back and sent on once the open call's arguments are complete (or at the end). So pieces
///   of an earlier call arriving after a later one started still land in the right block, and
///   the usual in-order stream is passed on as it comes. Arguments arriving for a call whose
///   JSON is already complete cannot belong to it and are dropped.
/// - Events whose data is not JSON (keep-alive comments, garbage) are ignored: they carry no
///   part of the answer. A cut chunk shows up as a missing `finish_reason`, which is an error.
#[derive(Debug, Default)]
pub struct Decoder {
    started: bool,
    done: bool,
    id: String,
    open: Option<Open>,
    next_index: usize,
    tools: Vec<ToolState>,
    held: VecDeque<Held>,
    finish_reason: Option<String>,
    called_tools: bool,
    refused: bool,
    usage: Option<Usage>,
}

impl StreamDecoder for Decoder {
    fn event(&mut self, _name: Option<&str>, data: &str, out: &mut Vec<Event>) {
        if self.done {
            return;
        }
        let data = data.trim();
        if data == "[DONE]" {
            if self.started {
                self.finish(out);
            } else {
                self.end(out);
            }
            return;
        }
        if !data.starts_with('{') {
            return;
        }
        let Ok(chunk) = serde_json::from_str::<Chunk<'_>>(data) else {
            return;
        };
        if let Some(error) = chunk.error.as_ref().filter(|e| !e.is_null()) {
            self.done = true;
            out.push(Event::Error {
                kind: error_kind(error),
                message: error_message(error),
            });
            return;
        }
        if !self.started {
            self.started = true;
            self.id = chunk.id.as_deref().unwrap_or_default().to_owned();
            out.push(Event::Start {
                id: self.id.clone(),
                model: chunk.model.as_deref().unwrap_or_default().to_owned(),
                usage: Usage::default(),
            });
        }
        for choice in chunk.choices.into_iter().flatten() {
            if choice.index != 0 {
                continue;
            }
            if let Some(delta) = choice.delta {
                self.delta(delta, out);
            }
            if let Some(reason) = choice.finish_reason {
                self.finish_reason = Some(reason.into_owned());
            }
        }
        if let Some(usage) = chunk.usage {
            self.usage = Some(usage.to_ir());
        }
    }

    fn end(&mut self, out: &mut Vec<Event>) {
        if self.done {
            return;
        }
        if self.started && self.finish_reason.is_some() {
            self.finish(out);
            return;
        }
        self.done = true;
        out.push(Event::Error {
            kind: ErrorKind::Upstream,
            message: "the upstream ended the stream before the answer was complete".to_owned(),
        });
    }
}

impl Decoder {
    fn delta(&mut self, delta: ChunkDelta<'_>, out: &mut Vec<Event>) {
        let reasoning = delta
            .reasoning_content
            .as_deref()
            .or_else(|| delta.reasoning.as_ref().and_then(Value::as_str));
        if let Some(text) = reasoning.filter(|t| !t.is_empty()) {
            self.text(Open::Thinking, text, out);
        }
        if let Some(text) = delta.content.as_deref().filter(|t| !t.is_empty()) {
            self.text(Open::Text, text, out);
        }
        if let Some(text) = delta.refusal.as_deref().filter(|t| !t.is_empty()) {
            self.refused = true;
            self.text(Open::Text, text, out);
        }
        for (position, call) in delta.tool_calls.into_iter().flatten().enumerate() {
            self.tool_piece(call, position, out);
        }
        self.release(out);
    }

    /// True while something must wait: the open tool call's arguments are incomplete, or
    /// earlier things wait already.
    fn holding(&self) -> bool {
        !self.held.is_empty() || self.open_tool_incomplete()
    }

    fn open_tool_incomplete(&self) -> bool {
        matches!(self.open, Some(Open::Tool(t)) if !self.tools[t].end.complete())
    }

    fn text(&mut self, kind: Open, text: &str, out: &mut Vec<Event>) {
        if self.holding() {
            match (kind, self.held.back_mut()) {
                (Open::Text, Some(Held::Text(held)))
                | (Open::Thinking, Some(Held::Thinking(held))) => {
                    held.push_str(text);
                }
                (Open::Thinking, _) => self.held.push_back(Held::Thinking(text.to_owned())),
                _ => self.held.push_back(Held::Text(text.to_owned())),
            }
            return;
        }
        self.emit_text(kind, text.to_owned(), out);
    }

    fn emit_text(&mut self, kind: Open, text: String, out: &mut Vec<Event>) {
        if self.open != Some(kind) {
            self.close(out);
            out.push(Event::BlockStart {
                index: self.next_index,
                block: if kind == Open::Thinking {
                    Block::Thinking
                } else {
                    Block::Text
                },
            });
            self.open = Some(kind);
        }
        out.push(Event::Delta {
            index: self.next_index,
            delta: if kind == Open::Thinking {
                Delta::Thinking(text)
            } else {
                Delta::Text(text)
            },
        });
    }

    fn tool_piece(&mut self, call: ChunkToolCall<'_>, position: usize, out: &mut Vec<Event>) {
        self.called_tools = true;
        let wire_index = call.index.unwrap_or(position);
        let (name, arguments) = match call.function {
            Some(f) => (f.name, f.arguments),
            None => (None, None),
        };
        let arguments = arguments.as_deref().unwrap_or_default();
        let id = call.id.filter(|id| !id.is_empty());
        // Ollama-style servers reuse index 0 for every call of a parallel batch: another id at
        // a known index is another call once the known one's arguments are complete (other
        // servers repeat a fresh id on every piece of one call).
        let known = self
            .tools
            .iter()
            .rposition(|t| t.wire_index == wire_index)
            .filter(|&t| {
                let tool = &self.tools[t];
                let other_id = id
                    .as_deref()
                    .is_some_and(|id| !tool.id.is_empty() && tool.id != id);
                !(other_id && tool.end.complete())
            });
        let t = known.unwrap_or_else(|| {
            self.tools.push(ToolState {
                wire_index,
                id: String::new(),
                name: String::new(),
                pending: String::new(),
                started: false,
                end: JsonEnd::default(),
            });
            self.held.push_back(Held::Tool(self.tools.len() - 1));
            self.tools.len() - 1
        });
        let tool = &mut self.tools[t];
        if !tool.started {
            if let Some(id) = id
                && tool.id.is_empty()
            {
                tool.id = id.into_owned();
            }
            if let Some(name) = name.filter(|n| !n.is_empty())
                && tool.name.is_empty()
            {
                tool.name = name.into_owned();
            }
        }
        // Nothing can extend a complete JSON object: whatever comes after it is dropped.
        if tool.end.complete() || arguments.is_empty() {
            return;
        }
        tool.end.feed(arguments);
        if self.open == Some(Open::Tool(t)) {
            out.push(Event::Delta {
                index: self.next_index,
                delta: Delta::ToolArguments(arguments.to_owned()),
            });
        } else {
            tool.pending.push_str(arguments);
        }
    }

    /// Sends on what was held back, as far as nothing blocks it: an incomplete open tool call,
    /// or a held tool call whose name is not known yet.
    fn release(&mut self, out: &mut Vec<Event>) {
        while !self.open_tool_incomplete() {
            let Some(item) = self.held.pop_front() else {
                return;
            };
            match item {
                Held::Text(text) => self.emit_text(Open::Text, text, out),
                Held::Thinking(text) => self.emit_text(Open::Thinking, text, out),
                Held::Tool(t) if self.tools[t].name.is_empty() => {
                    self.held.push_front(Held::Tool(t));
                    return;
                }
                Held::Tool(t) => self.start_tool(t, out),
            }
        }
    }

    /// Opens a tool call's block and sends its arguments so far.
    fn start_tool(&mut self, t: usize, out: &mut Vec<Event>) {
        self.close(out);
        let tool = &mut self.tools[t];
        tool.started = true;
        if tool.id.is_empty() {
            tool.id = format!(
                "call_{}_{}",
                self.id.trim_start_matches("chatcmpl-"),
                tool.wire_index
            );
        }
        out.push(Event::BlockStart {
            index: self.next_index,
            block: Block::ToolCall {
                id: tool.id.clone(),
                name: tool.name.clone(),
            },
        });
        self.open = Some(Open::Tool(t));
        let arguments = std::mem::take(&mut tool.pending);
        if !arguments.is_empty() {
            out.push(Event::Delta {
                index: self.next_index,
                delta: Delta::ToolArguments(arguments),
            });
        }
    }

    fn close(&mut self, out: &mut Vec<Event>) {
        if self.open.take().is_some() {
            out.push(Event::BlockStop {
                index: self.next_index,
            });
            self.next_index += 1;
        }
    }

    /// Everything held goes out, then the open block closes and the answer finishes.
    fn finish(&mut self, out: &mut Vec<Event>) {
        while let Some(item) = self.held.pop_front() {
            match item {
                Held::Text(text) => self.emit_text(Open::Text, text, out),
                Held::Thinking(text) => self.emit_text(Open::Thinking, text, out),
                Held::Tool(t) => self.start_tool(t, out),
            }
        }
        self.close(out);
        self.done = true;
        out.push(Event::Finish {
            stop: stop_reason(
                self.finish_reason.as_deref(),
                self.called_tools,
                self.refused,
            ),
            usage: self.usage.unwrap_or_default(),
        });
    }
}

/// Watches JSON text go by and says when its top-level object or array is complete.
#[derive(Debug, Default)]
struct JsonEnd {
    depth: u32,
    in_string: bool,
    escaped: bool,
    complete: bool,
}

impl JsonEnd {
    fn feed(&mut self, text: &str) {
        for byte in text.bytes() {
            if self.complete {
                return;
            }
            if self.in_string {
                if self.escaped {
                    self.escaped = false;
                } else if byte == b'\\' {
                    self.escaped = true;
                } else if byte == b'"' {
                    self.in_string = false;
                }
                continue;
            }
            match byte {
                b'"' => self.in_string = true,
                b'{' | b'[' => self.depth += 1,
                b'}' | b']' if self.depth > 0 => {
                    self.depth -= 1;
                    self.complete = self.depth == 0;
                }
                _ => {}
            }
        }
    }

    fn complete(&self) -> bool {
        self.complete
    }
}

// ---------------------------------------------------------------------------------------------
// Encoding

#[derive(Serialize)]
struct ChunkOut<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: &'a [ChoiceOut<'a>],
    /// Absent unless the client asked for usage; then `null` on every chunk but the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<Option<UsageOut>>,
}

#[derive(Serialize)]
struct ChoiceOut<'a> {
    index: u32,
    delta: DeltaOut<'a>,
    logprobs: Option<()>,
    finish_reason: Option<&'static str>,
}

#[derive(Default, Serialize)]
struct DeltaOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'static str>,
    /// `Some(None)`: `"content": null`.
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<Option<&'a str>>,
    /// Not OpenAI's own: the field DeepSeek and vLLM stream reasoning in.
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning_content: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_calls: Option<[ToolPieceOut<'a>; 1]>,
    /// `Some(None)`: `"refusal": null`, as OpenAI's first chunk has it.
    #[serde(skip_serializing_if = "Option::is_none")]
    refusal: Option<Option<&'a str>>,
}

/// The first piece of a call has its `id`, `type` and `name`; later pieces only `index` and
/// arguments (the SDKs concatenate every string field they get again).
#[derive(Serialize)]
struct ToolPieceOut<'a> {
    index: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    kind: Option<&'static str>,
    function: FunctionPieceOut<'a>,
}

#[derive(Serialize)]
struct FunctionPieceOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    arguments: &'a str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ended {
    Finish,
    Error,
}

/// Encodes [`Event`]s as a Chat Completions stream, as OpenAI sends it: every chunk with the
/// same `id`, `created` and `model`; the first one carries `role: "assistant"` together with
/// the start of the answer (`content: ""` before text, `content: null` with the first tool
/// call, `reasoning_content: ""` before reasoning), so an answer of tool calls only ends with
/// `content: null` in the SDKs' accumulators, as OpenAI's does. `[DONE]` follows a finished
/// answer, not an error (OpenAI sends none after an error either).
#[derive(Debug)]
pub struct Encoder {
    include_usage: bool,
    id: String,
    model: String,
    created: u64,
    started: bool,
    /// The first chunk (with the role) went out.
    announced: bool,
    /// Tool calls so far: the next call's `index`.
    tool_calls: usize,
    ended: Option<Ended>,
    buffer: Vec<u8>,
}

impl Encoder {
    #[must_use]
    pub fn new(options: StreamOptions) -> Self {
        Self {
            include_usage: options.include_usage,
            id: String::new(),
            model: String::new(),
            created: 0,
            started: false,
            announced: false,
            tool_calls: 0,
            ended: None,
            buffer: Vec::new(),
        }
    }

    fn chunk(&mut self, mut delta: DeltaOut<'_>, finish: Option<&'static str>, out: &mut Vec<u8>) {
        if !self.announced {
            self.announced = true;
            delta.role = Some("assistant");
            if delta.tool_calls.is_some() || delta.reasoning_content.is_some() {
                delta.content.get_or_insert(None);
            } else {
                delta.content.get_or_insert(Some(""));
            }
            if delta.reasoning_content.is_none() {
                delta.refusal = Some(None);
            }
        }
        let choices = [ChoiceOut {
            index: 0,
            delta,
            logprobs: None,
            finish_reason: finish,
        }];
        let chunk = ChunkOut {
            id: &self.id,
            object: "chat.completion.chunk",
            created: self.created,
            model: &self.model,
            choices: &choices,
            usage: self.include_usage.then_some(None),
        };
        write_data(&chunk, &mut self.buffer, out);
    }

    fn start(&mut self, id: &str, model: &str) {
        self.started = true;
        self.id = completion_id(id);
        model.clone_into(&mut self.model);
        self.created = unix_now();
    }
}

impl StreamEncoder for Encoder {
    fn event(&mut self, event: &Event, out: &mut Vec<u8>) {
        if self.ended.is_some() {
            return;
        }
        if !self.started {
            let (id, model) = match event {
                Event::Start { id, model, .. } => (id.as_str(), model.as_str()),
                _ => ("", ""),
            };
            self.start(id, model);
        }
        match event {
            Event::Start { .. } | Event::BlockStop { .. } => {}
            Event::BlockStart {
                block: Block::ToolCall { id, name },
                ..
            } => {
                let index = self.tool_calls;
                self.tool_calls += 1;
                let piece = ToolPieceOut {
                    index,
                    id: Some(id),
                    kind: Some("function"),
                    function: FunctionPieceOut {
                        name: Some(name),
                        arguments: "",
                    },
                };
                let delta = DeltaOut {
                    tool_calls: Some([piece]),
                    ..DeltaOut::default()
                };
                self.chunk(delta, None, out);
            }
            // The first text or reasoning piece announces the answer (with an empty start).
            Event::BlockStart {
                block: Block::Text, ..
            } if !self.announced => self.chunk(DeltaOut::default(), None, out),
            Event::BlockStart {
                block: Block::Thinking,
                ..
            } if !self.announced => {
                let delta = DeltaOut {
                    reasoning_content: Some(""),
                    ..DeltaOut::default()
                };
                self.chunk(delta, None, out);
            }
            // Redacted thinking has no field in Chat.
            Event::BlockStart { .. } => {}
            Event::Delta { delta, .. } => {
                let delta = match delta {
                    Delta::Text(text) if !text.is_empty() => DeltaOut {
                        content: Some(Some(text)),
                        ..DeltaOut::default()
                    },
                    Delta::Thinking(text) if !text.is_empty() => DeltaOut {
                        reasoning_content: Some(text),
                        ..DeltaOut::default()
                    },
                    Delta::ToolArguments(arguments) if !arguments.is_empty() => DeltaOut {
                        tool_calls: Some([ToolPieceOut {
                            index: self.tool_calls.saturating_sub(1),
                            id: None,
                            kind: None,
                            function: FunctionPieceOut {
                                name: None,
                                arguments,
                            },
                        }]),
                        ..DeltaOut::default()
                    },
                    // Signatures have no field in Chat; empty pieces say nothing.
                    _ => return,
                };
                self.chunk(delta, None, out);
            }
            Event::Finish { stop, usage } => {
                self.ended = Some(Ended::Finish);
                if !self.announced {
                    self.chunk(DeltaOut::default(), None, out);
                }
                self.chunk(DeltaOut::default(), Some(finish_reason(stop)), out);
                if self.include_usage {
                    let chunk = ChunkOut {
                        id: &self.id,
                        object: "chat.completion.chunk",
                        created: self.created,
                        model: &self.model,
                        choices: &[],
                        usage: Some(Some(UsageOut::from_ir(usage))),
                    };
                    write_data(&chunk, &mut self.buffer, out);
                }
            }
            Event::Error { kind, message } => {
                self.ended = Some(Ended::Error);
                out.extend_from_slice(&stream_error_event(PROTOCOL, *kind, message));
            }
        }
    }

    fn close(&mut self, out: &mut Vec<u8>) {
        if self.ended == Some(Ended::Finish) {
            out.extend_from_slice(b"data: [DONE]\n\n");
        }
    }
}

/// `data: <json>\n\n`, the JSON written through a reused buffer.
fn write_data<T: Serialize>(value: &T, buffer: &mut Vec<u8>, out: &mut Vec<u8>) {
    buffer.clear();
    if serde_json::to_writer(&mut *buffer, value).is_ok() {
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(buffer);
        out.extend_from_slice(b"\n\n");
    }
}
