//! The Messages event stream ⇄ [`Event`]s.
//!
//! Wire: `message_start` (the message with empty content and the input-side usage), then per
//! content block `content_block_start`, `content_block_delta`s (`text_delta`,
//! `thinking_delta`, `signature_delta`, `input_json_delta`), `content_block_stop`; then
//! `message_delta` (stop reason, cumulative usage) and `message_stop`. `ping`s may come at any
//! time; `error` reports a failure after the 200. Framing: `event: NAME\ndata: JSON\n\n`.
//!
//! [`Decoder`] decisions:
//! - The answer is complete at `message_stop` (not at `message_delta`): only then is
//!   [`Event::Finish`] sent, with the stop reason and the usage merged from `message_start`
//!   and every `message_delta`. A stream that ends before it is an error.
//! - `ping`, unknown event names and unknown delta types are ignored; blocks of unknown types
//!   (server tools, web search results) are skipped whole and the IR's indices stay 0, 1, 2….
//! - A known event whose data is not JSON is an error: its content would be lost silently.
//! - Missing `message_start` (a broken proxy) is tolerated: a `Start` with no id or model is
//!   made up before the first content.
//!
//! [`Encoder`]: what the anthropic SDKs' accumulators expect, in the API's order and byte
//! framing; `message_delta` carries the whole final usage (input, cache and output figures)
//! so the accumulated message has them all. Nothing closes the stream after `message_stop`.

use serde::{Deserialize, Serialize};

use super::response::{OutBlock, OutMessage, WireBlock, WireError, WireMessage, empty_input};
use super::{
    OutUsage, WireUsage, error_kind, message_id, stop_from_wire, stop_to_wire, tool_use_id,
};
use crate::convert::ir::{Block, Delta, Event, StopReason, Usage};
use crate::convert::{StreamDecoder, StreamEncoder, StreamOptions};
use crate::providers::{ErrorKind, stream_error_event};

const INCOMPLETE: &str = "the upstream ended the stream before the answer was complete";

/// Every event the decoder acts on; anything else is ignored without being parsed.
fn is_known(name: &str) -> bool {
    matches!(
        name,
        "message_start"
            | "content_block_start"
            | "content_block_delta"
            | "content_block_stop"
            | "message_delta"
            | "message_stop"
            | "error"
    )
}

/// One stream event's data, whatever its type.
#[derive(Debug, Deserialize)]
struct WireEvent {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    message: Option<WireMessage>,
    #[serde(default)]
    index: Option<u64>,
    #[serde(default)]
    content_block: Option<WireBlock>,
    #[serde(default)]
    delta: Option<WireDelta>,
    #[serde(default)]
    usage: Option<WireUsage>,
    #[serde(default)]
    error: Option<WireError>,
}

/// A `content_block_delta`'s or a `message_delta`'s `delta`.
#[derive(Debug, Deserialize)]
struct WireDelta {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    thinking: Option<String>,
    #[serde(default)]
    signature: Option<String>,
    #[serde(default)]
    partial_json: Option<String>,
    #[serde(default)]
    stop_reason: Option<String>,
    #[serde(default)]
    stop_sequence: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BlockKind {
    Text,
    Thinking,
    RedactedThinking,
    ToolCall,
}

/// The block being streamed.
#[derive(Debug, Clone, Copy)]
struct OpenBlock {
    /// The upstream's `index` (absent in a broken stream: then any index matches).
    upstream: Option<u64>,
    /// The IR's index.
    index: usize,
    kind: BlockKind,
}

impl OpenBlock {
    fn is(&self, upstream: Option<u64>) -> bool {
        self.upstream.is_none() || upstream.is_none() || self.upstream == upstream
    }
}

/// Decodes an Anthropic upstream's stream (see the module docs).
#[derive(Debug, Default)]
pub struct Decoder {
    started: bool,
    /// `Finish` or `Error` went out: nothing more is decoded.
    done: bool,
    open: Option<OpenBlock>,
    next_index: usize,
    usage: Usage,
    stop: Option<StopReason>,
    saw_tool_call: bool,
}

impl Decoder {
    fn ensure_started(&mut self, out: &mut Vec<Event>) {
        if !self.started {
            self.started = true;
            out.push(Event::Start {
                id: String::new(),
                model: String::new(),
                usage: self.usage,
            });
        }
    }

    fn close_open(&mut self, out: &mut Vec<Event>) {
        if let Some(open) = self.open.take() {
            out.push(Event::BlockStop { index: open.index });
        }
    }

    fn fail(&mut self, kind: ErrorKind, message: String, out: &mut Vec<Event>) {
        self.done = true;
        out.push(Event::Error { kind, message });
    }

    fn message_start(&mut self, event: WireEvent, out: &mut Vec<Event>) {
        if self.started {
            return;
        }
        let message = event.message.unwrap_or_default();
        if let Some(usage) = &message.usage {
            self.usage = usage.to_usage();
        }
        self.started = true;
        out.push(Event::Start {
            id: message.id.unwrap_or_default(),
            model: message.model.unwrap_or_default(),
            usage: self.usage,
        });
    }

    fn block_start(&mut self, event: WireEvent, out: &mut Vec<Event>) {
        self.ensure_started(out);
        self.close_open(out);
        let Some(block) = event.content_block else {
            return;
        };
        let (kind, ir_block) = match block.kind.as_str() {
            "text" => (BlockKind::Text, Block::Text),
            "thinking" => (BlockKind::Thinking, Block::Thinking),
            "redacted_thinking" => (
                BlockKind::RedactedThinking,
                Block::RedactedThinking {
                    data: block.data.clone().unwrap_or_default(),
                },
            ),
            "tool_use" => (
                BlockKind::ToolCall,
                Block::ToolCall {
                    id: block.id.clone().unwrap_or_default(),
                    name: block.name.clone().unwrap_or_default(),
                },
            ),
            // Server-tool blocks and future types: skipped whole.
            _ => return,
        };
        let index = self.next_index;
        self.next_index += 1;
        self.saw_tool_call |= kind == BlockKind::ToolCall;
        self.open = Some(OpenBlock {
            upstream: event.index,
            index,
            kind,
        });
        out.push(Event::BlockStart {
            index,
            block: ir_block,
        });
        // Content the start event already carries (the API sends it empty).
        let initial = match kind {
            BlockKind::Text => block.text.filter(|t| !t.is_empty()).map(Delta::Text),
            BlockKind::Thinking => {
                if let Some(thinking) = block.thinking.filter(|t| !t.is_empty()) {
                    out.push(Event::Delta {
                        index,
                        delta: Delta::Thinking(thinking),
                    });
                }
                block
                    .signature
                    .filter(|s| !s.is_empty())
                    .map(Delta::Signature)
            }
            BlockKind::ToolCall => block
                .input
                .map(|input| input.get().to_owned())
                .filter(|input| !is_empty_object(input))
                .map(Delta::ToolArguments),
            BlockKind::RedactedThinking => None,
        };
        if let Some(delta) = initial {
            out.push(Event::Delta { index, delta });
        }
    }

    fn block_delta(&mut self, event: WireEvent, out: &mut Vec<Event>) {
        let Some(open) = self.open.filter(|open| open.is(event.index)) else {
            return;
        };
        let Some(delta) = event.delta else {
            return;
        };
        let delta = match (delta.kind.as_deref(), open.kind) {
            (Some("text_delta"), BlockKind::Text) => delta.text.map(Delta::Text),
            (Some("thinking_delta"), BlockKind::Thinking) => delta.thinking.map(Delta::Thinking),
            (Some("signature_delta"), BlockKind::Thinking) => delta.signature.map(Delta::Signature),
            (Some("input_json_delta"), BlockKind::ToolCall) => {
                Some(Delta::ToolArguments(delta.partial_json.unwrap_or_default()))
            }
            // citations_delta and future delta types; deltas that do not fit the block.
            _ => None,
        };
        if let Some(delta) = delta {
            out.push(Event::Delta {
                index: open.index,
                delta,
            });
        }
    }

    fn block_stop(&mut self, event: &WireEvent, out: &mut Vec<Event>) {
        if self.open.is_some_and(|open| open.is(event.index)) {
            self.close_open(out);
        }
    }

    fn message_delta(&mut self, event: WireEvent, out: &mut Vec<Event>) {
        self.ensure_started(out);
        if let Some(delta) = event.delta
            && delta.stop_reason.is_some()
        {
            self.stop = Some(stop_from_wire(
                delta.stop_reason.as_deref(),
                delta.stop_sequence,
            ));
        }
        if let Some(usage) = &event.usage {
            usage.merge_into(&mut self.usage);
        }
    }

    fn message_stop(&mut self, out: &mut Vec<Event>) {
        self.ensure_started(out);
        self.close_open(out);
        let stop = self.stop.take().unwrap_or(if self.saw_tool_call {
            StopReason::ToolUse
        } else {
            StopReason::EndTurn
        });
        self.done = true;
        out.push(Event::Finish {
            stop,
            usage: self.usage,
        });
    }
}

fn is_empty_object(json: &str) -> bool {
    let mut chars = json.chars().filter(|c| !c.is_whitespace());
    chars.next() == Some('{') && chars.next() == Some('}') && chars.next().is_none()
}

impl StreamDecoder for Decoder {
    fn event(&mut self, name: Option<&str>, data: &str, out: &mut Vec<Event>) {
        if self.done {
            return;
        }
        let name = name.filter(|n| !n.is_empty());
        if name.is_some_and(|n| !is_known(n)) {
            return;
        }
        let event = match serde_json::from_str::<WireEvent>(data) {
            Ok(event) => event,
            Err(_) => {
                // Nameless data that is not JSON (a comment, a keep-alive) says nothing.
                if let Some(name) = name {
                    self.fail(
                        ErrorKind::Upstream,
                        format!("the upstream sent a `{name}` event that is not valid JSON"),
                        out,
                    );
                }
                return;
            }
        };
        let kind = match name {
            Some(name) => name.to_owned(),
            None => match &event.kind {
                Some(kind) if is_known(kind) => kind.clone(),
                _ => return,
            },
        };
        match kind.as_str() {
            "message_start" => self.message_start(event, out),
            "content_block_start" => self.block_start(event, out),
            "content_block_delta" => self.block_delta(event, out),
            "content_block_stop" => self.block_stop(&event, out),
            "message_delta" => self.message_delta(event, out),
            "message_stop" => self.message_stop(out),
            _ => {
                let error = event.error.unwrap_or_default();
                let kind = error_kind(error.kind.as_deref().unwrap_or_default());
                let message = error
                    .message
                    .filter(|m| !m.is_empty())
                    .unwrap_or_else(|| "the upstream reported an error".to_owned());
                self.fail(kind, message, out);
            }
        }
    }

    fn end(&mut self, out: &mut Vec<Event>) {
        if !self.done {
            self.fail(ErrorKind::Upstream, INCOMPLETE.to_owned(), out);
        }
    }
}

/// Encodes [`Event`]s as an Anthropic stream (see the module docs).
#[derive(Debug, Default)]
pub struct Encoder {
    started: bool,
    /// The IR index of the block being streamed.
    open: Option<usize>,
    /// `message_stop` or `error` went out.
    done: bool,
}

impl Encoder {
    #[must_use]
    pub fn new(_options: StreamOptions) -> Self {
        Self::default()
    }

    fn start(&mut self, id: &str, model: &str, usage: &Usage, out: &mut Vec<u8>) {
        self.started = true;
        let message = OutMessage {
            id: message_id(id),
            kind: "message",
            role: "assistant",
            model,
            content: Vec::new(),
            stop_reason: None,
            stop_sequence: None,
            usage: OutUsage::from(usage),
        };
        write_event(
            out,
            "message_start",
            &MessageStart {
                kind: "message_start",
                message,
            },
        );
    }

    fn ensure_started(&mut self, out: &mut Vec<u8>) {
        if !self.started {
            self.start("", "", &Usage::default(), out);
        }
    }

    fn close_open(&mut self, out: &mut Vec<u8>) {
        if let Some(index) = self.open.take() {
            write_event(
                out,
                "content_block_stop",
                &BlockStop {
                    kind: "content_block_stop",
                    index,
                },
            );
        }
    }
}

impl StreamEncoder for Encoder {
    fn event(&mut self, event: &Event, out: &mut Vec<u8>) {
        if self.done {
            return;
        }
        match event {
            Event::Start { id, model, usage } => {
                if !self.started {
                    self.start(id, model, usage, out);
                }
            }
            Event::BlockStart { index, block } => {
                self.ensure_started(out);
                self.close_open(out);
                let content_block = match block {
                    Block::Text => OutBlock::Text { text: "" },
                    Block::Thinking => OutBlock::Thinking {
                        thinking: "",
                        signature: "",
                    },
                    Block::RedactedThinking { data } => OutBlock::RedactedThinking { data },
                    Block::ToolCall { id, name } => OutBlock::ToolUse {
                        id: tool_use_id(id),
                        name,
                        input: empty_input(),
                    },
                };
                self.open = Some(*index);
                write_event(
                    out,
                    "content_block_start",
                    &BlockStart {
                        kind: "content_block_start",
                        index: *index,
                        content_block,
                    },
                );
            }
            Event::Delta { index, delta } => {
                self.ensure_started(out);
                let delta = match delta {
                    Delta::Text(text) => OutDelta::Text { text },
                    Delta::Thinking(thinking) => OutDelta::Thinking { thinking },
                    Delta::Signature(signature) => OutDelta::Signature { signature },
                    Delta::ToolArguments(partial_json) => OutDelta::InputJson { partial_json },
                };
                write_event(
                    out,
                    "content_block_delta",
                    &BlockDelta {
                        kind: "content_block_delta",
                        index: *index,
                        delta,
                    },
                );
            }
            Event::BlockStop { index } => {
                if self.open == Some(*index) {
                    self.close_open(out);
                }
            }
            Event::Finish { stop, usage } => {
                self.ensure_started(out);
                self.close_open(out);
                let (stop_reason, stop_sequence) = stop_to_wire(stop);
                write_event(
                    out,
                    "message_delta",
                    &MessageDelta {
                        kind: "message_delta",
                        delta: StopDelta {
                            stop_reason,
                            stop_sequence,
                        },
                        usage: OutUsage::from(usage),
                    },
                );
                write_event(
                    out,
                    "message_stop",
                    &MessageStop {
                        kind: "message_stop",
                    },
                );
                self.done = true;
            }
            Event::Error { kind, message } => {
                out.extend_from_slice(&stream_error_event(super::PROTOCOL, *kind, message));
                self.done = true;
            }
        }
    }

    fn close(&mut self, _out: &mut Vec<u8>) {}
}

/// `event: NAME\ndata: JSON\n\n`, as the API frames every event.
fn write_event(out: &mut Vec<u8>, name: &str, data: &impl Serialize) {
    let mark = out.len();
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\ndata: ");
    if serde_json::to_writer(&mut *out, data).is_err() {
        // Not reachable with these types; never leave half an event behind.
        out.truncate(mark);
        return;
    }
    out.extend_from_slice(b"\n\n");
}

#[derive(Serialize)]
struct MessageStart<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    message: OutMessage<'a>,
}

#[derive(Serialize)]
struct BlockStart<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    index: usize,
    content_block: OutBlock<'a>,
}

#[derive(Serialize)]
struct BlockDelta<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    index: usize,
    delta: OutDelta<'a>,
}

/// A content block delta, named by its `type`.
#[derive(Serialize)]
#[serde(tag = "type")]
enum OutDelta<'a> {
    #[serde(rename = "text_delta")]
    Text { text: &'a str },
    #[serde(rename = "thinking_delta")]
    Thinking { thinking: &'a str },
    #[serde(rename = "signature_delta")]
    Signature { signature: &'a str },
    #[serde(rename = "input_json_delta")]
    InputJson { partial_json: &'a str },
}

#[derive(Serialize)]
struct BlockStop {
    #[serde(rename = "type")]
    kind: &'static str,
    index: usize,
}

#[derive(Serialize)]
struct MessageDelta<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    delta: StopDelta<'a>,
    usage: OutUsage,
}

#[derive(Serialize)]
struct StopDelta<'a> {
    stop_reason: &'static str,
    stop_sequence: Option<&'a str>,
}

#[derive(Serialize)]
struct MessageStop {
    #[serde(rename = "type")]
    kind: &'static str,
}
