//! Streams: `streamGenerateContent` chunks ⇄ IR events.
//!
//! Each chunk is a whole `GenerateContentResponse` holding the next parts of the answer;
//! `usageMetadata` is cumulative (the last one counts) and the last chunk has a
//! `finishReason`. With `alt=sse` chunks are `data: {…}\r\n\r\n` events; without it, one JSON
//! array sent element by element.

use serde_json::Value;

use super::super::ir::{Block, Delta, Event, StopReason, Usage};
use super::super::{StreamDecoder, StreamEncoder, StreamOptions};
use super::answer::{finish_reason, stop_reason};
use super::parts::{self, CallIds};
use super::wire::{
    self, Answer, OutAnswer, OutCandidate, OutContent, OutFunctionCall, OutPart, OutUsage,
};
use crate::providers::{ErrorKind, Protocol, error_body};

const CUT_SHORT: &str = "the upstream ended the stream before the answer was complete";

/// The block the decoder has open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Open {
    Text,
    /// `signed`: its signature came (the run is over).
    Thinking {
        signed: bool,
    },
}

/// Gemini chunks → IR events.
///
/// Text parts are text deltas, thought parts thinking deltas (their signature the block's
/// last delta); a signature on any other part is a thinking block of its own with just that
/// signature, right before the part (see `parts`); a function call comes whole: its block
/// opens, gets all its arguments in one delta and closes. Data that is not JSON is ignored:
/// Gemini sends nothing else, so it can only be a cut event (the answer then ends without its
/// `finishReason` and `end` reports the cut) or a proxy's keep-alive.
#[derive(Debug, Default)]
pub struct Decoder {
    started: bool,
    /// `Finish` or `Error` went out.
    over: bool,
    open: Option<(usize, Open)>,
    next_index: usize,
    called: bool,
    usage: Usage,
    ids: Option<CallIds>,
}

impl StreamDecoder for Decoder {
    fn event(&mut self, _name: Option<&str>, data: &str, out: &mut Vec<Event>) {
        if self.over {
            return;
        }
        let data = data.trim();
        if data.starts_with('[') {
            // A whole JSON array (a stream without alt=sse, read at once).
            if let Ok(chunks) = serde_json::from_str::<Vec<&serde_json::value::RawValue>>(data) {
                for chunk in chunks {
                    self.chunk(chunk.get(), out);
                }
            }
            return;
        }
        self.chunk(data, out);
    }

    fn end(&mut self, out: &mut Vec<Event>) {
        if !self.over {
            self.over = true;
            out.push(Event::Error {
                kind: ErrorKind::Upstream,
                message: CUT_SHORT.to_owned(),
            });
        }
    }
}

impl Decoder {
    fn chunk(&mut self, data: &str, out: &mut Vec<Event>) {
        if self.over {
            return;
        }
        let Ok(chunk) = serde_json::from_str::<Answer<'_>>(data) else {
            return;
        };
        if let Some(error) = &chunk.error {
            self.over = true;
            out.push(Event::Error {
                kind: error_kind(error.code.as_ref(), error.status.as_deref()),
                message: error
                    .message
                    .as_deref()
                    .unwrap_or("the upstream reported an error")
                    .to_owned(),
            });
            return;
        }
        if let Some(usage) = &chunk.usage_metadata {
            self.usage = usage.to_ir();
        }
        let response_id = chunk.response_id.as_deref().unwrap_or_default();
        if !self.started {
            self.started = true;
            self.ids = Some(CallIds::for_answer(response_id));
            out.push(Event::Start {
                id: response_id.to_owned(),
                model: chunk
                    .model_version
                    .as_deref()
                    .unwrap_or_default()
                    .to_owned(),
                // The prompt side: what is known before the answer.
                usage: Usage {
                    input: self.usage.input,
                    cache_read: self.usage.cache_read,
                    cache_write: self.usage.cache_write,
                    ..Usage::default()
                },
            });
        }
        let Some(candidate) = chunk.candidates.first() else {
            if chunk
                .prompt_feedback
                .as_ref()
                .is_some_and(|f| f.block_reason.is_some())
            {
                self.finish(StopReason::ContentFilter, out);
            }
            return;
        };
        if let Some(content) = &candidate.content {
            for part in &content.parts {
                self.part(part, out);
            }
        }
        if let Some(finish) = candidate.finish_reason.as_deref() {
            let stop = stop_reason(finish, self.called);
            self.finish(stop, out);
        }
    }

    fn part(&mut self, part: &wire::Part<'_>, out: &mut Vec<Event>) {
        let sig = parts::signature(part);
        if part.thought == Some(true) && part.function_call.is_none() {
            let text = part.text.as_deref().unwrap_or_default();
            if text.is_empty() && sig.is_none() {
                return;
            }
            let index = match self.open {
                Some((index, Open::Thinking { signed: false })) => index,
                _ => self.open_block(Block::Thinking, Open::Thinking { signed: false }, out),
            };
            if !text.is_empty() {
                out.push(Event::Delta {
                    index,
                    delta: Delta::Thinking(text.to_owned()),
                });
            }
            if let Some(sig) = sig {
                out.push(Event::Delta {
                    index,
                    delta: Delta::Signature(sig.to_owned()),
                });
                self.open = Some((index, Open::Thinking { signed: true }));
            }
            return;
        }
        // A text part signed right after an unsigned run of thoughts: the signature closes that
        // run (so clients that keep one signature per thinking block get it). A function
        // call's signature keeps a block of its own, to go back onto the call.
        if let Some(sig) = sig
            && part.function_call.is_none()
            && let Some((index, Open::Thinking { signed: false })) = self.open
        {
            out.push(Event::Delta {
                index,
                delta: Delta::Signature(sig.to_owned()),
            });
            self.close(out);
        } else if let Some(sig) = sig {
            let index = self.open_block(Block::Thinking, Open::Thinking { signed: true }, out);
            out.push(Event::Delta {
                index,
                delta: Delta::Signature(sig.to_owned()),
            });
            self.close(out);
        }
        if let Some(text) = part.text.as_deref() {
            if text.is_empty() {
                return;
            }
            let index = match self.open {
                Some((index, Open::Text)) => index,
                _ => self.open_block(Block::Text, Open::Text, out),
            };
            out.push(Event::Delta {
                index,
                delta: Delta::Text(text.to_owned()),
            });
        } else if let Some(call) = &part.function_call {
            let name = call.name.as_deref().unwrap_or_default();
            let id = match call.id.as_deref() {
                Some(id) if !id.is_empty() => id.to_owned(),
                _ => self
                    .ids
                    .get_or_insert_with(|| CallIds::for_answer(""))
                    .next(name),
            };
            let arguments =
                parts::arguments(call.args, &String::new).unwrap_or_else(|_| "{}".to_owned());
            self.called = true;
            self.close(out);
            let index = self.next_index;
            self.next_index += 1;
            out.push(Event::BlockStart {
                index,
                block: Block::ToolCall {
                    id,
                    name: name.to_owned(),
                },
            });
            out.push(Event::Delta {
                index,
                delta: Delta::ToolArguments(arguments),
            });
            out.push(Event::BlockStop { index });
        }
        // Inline data (generated images) has no block in the IR: left out.
    }

    /// Closes the open block and opens a new one; its index.
    fn open_block(&mut self, block: Block, open: Open, out: &mut Vec<Event>) -> usize {
        self.close(out);
        let index = self.next_index;
        self.next_index += 1;
        out.push(Event::BlockStart { index, block });
        self.open = Some((index, open));
        index
    }

    fn close(&mut self, out: &mut Vec<Event>) {
        if let Some((index, _)) = self.open.take() {
            out.push(Event::BlockStop { index });
        }
    }

    fn finish(&mut self, stop: StopReason, out: &mut Vec<Event>) {
        self.close(out);
        self.over = true;
        out.push(Event::Finish {
            stop,
            usage: self.usage,
        });
    }
}

/// A Gemini (Google RPC) error's kind: by its HTTP `code`, else its `status`.
fn error_kind(code: Option<&Value>, status: Option<&str>) -> ErrorKind {
    if let Some(code) = code
        .and_then(Value::as_u64)
        .and_then(|c| u16::try_from(c).ok())
        .filter(|c| (400..600).contains(c))
    {
        return ErrorKind::from_status(code);
    }
    match status.unwrap_or_default() {
        "INVALID_ARGUMENT" | "FAILED_PRECONDITION" | "OUT_OF_RANGE" => ErrorKind::InvalidRequest,
        "UNAUTHENTICATED" => ErrorKind::Authentication,
        "PERMISSION_DENIED" => ErrorKind::PermissionDenied,
        "NOT_FOUND" => ErrorKind::NotFound,
        "RESOURCE_EXHAUSTED" => ErrorKind::RateLimited,
        "UNAVAILABLE" => ErrorKind::Overloaded,
        "DEADLINE_EXCEEDED" => ErrorKind::Timeout,
        "INTERNAL" => ErrorKind::Internal,
        _ => ErrorKind::Upstream,
    }
}

/// What the encoder's open block is.
#[derive(Debug)]
enum Building {
    Text,
    Thinking {
        had_text: bool,
    },
    ToolCall {
        id: String,
        name: String,
        args: String,
    },
    /// Redacted thinking: nothing of it goes out.
    Nothing,
}

/// IR events → Gemini chunks, as `google-genai` reads them: one chunk per text or thinking
/// delta, one per function call (its arguments gathered until the block stops, then sent
/// whole), and a last chunk with the `finishReason` and the whole `usageMetadata`. Every chunk
/// carries `modelVersion` and `responseId`, and the prompt's usage once known. A signature
/// with no thinking text waits for the part after it (see `parts`).
#[derive(Debug)]
pub struct Encoder {
    sse: bool,
    /// JSON-array framing: the opening `[` went out.
    opened: bool,
    id: String,
    model: String,
    prompt: Usage,
    building: Option<Building>,
    pending_signature: Option<String>,
    over: bool,
}

impl Encoder {
    #[must_use]
    pub fn new(options: StreamOptions) -> Self {
        Self {
            sse: options.gemini_sse,
            opened: false,
            id: String::new(),
            model: String::new(),
            prompt: Usage::default(),
            building: None,
            pending_signature: None,
            over: false,
        }
    }

    fn frame(&mut self, json: &[u8], out: &mut Vec<u8>) {
        if self.sse {
            out.extend_from_slice(b"data: ");
            out.extend_from_slice(json);
            out.extend_from_slice(b"\r\n\r\n");
        } else {
            out.extend_from_slice(if self.opened { b",\r\n" } else { b"[" });
            self.opened = true;
            out.extend_from_slice(json);
        }
    }

    /// A chunk with these parts (and, when `finish` is given, the end of the answer).
    fn chunk(
        &mut self,
        parts: Vec<OutPart<'_>>,
        finish: Option<(&StopReason, &Usage)>,
        out: &mut Vec<u8>,
    ) {
        let answer = OutAnswer {
            candidates: [OutCandidate {
                content: (!parts.is_empty()).then_some(OutContent {
                    parts,
                    role: "model",
                }),
                finish_reason: finish.map(|(stop, _)| finish_reason(stop)),
                index: 0,
            }],
            usage_metadata: match finish {
                Some((_, usage)) => Some(OutUsage::of(usage)),
                None => OutUsage::prompt_side(&self.prompt),
            },
            model_version: &self.model,
            response_id: &self.id,
        };
        let json = wire::to_json(&answer);
        self.frame(&json, out);
    }

    fn delta(&mut self, delta: &Delta, out: &mut Vec<u8>) {
        match delta {
            Delta::Text(text) => {
                if !text.is_empty() {
                    self.text_part(text, false, out);
                }
            }
            Delta::Thinking(text) => {
                let Some(Building::Thinking { had_text }) = &mut self.building else {
                    return;
                };
                if text.is_empty() {
                    return;
                }
                *had_text = true;
                // A signature waiting from an earlier block keeps its own part: on a thought
                // part it would read back as this run's signature.
                if let Some(sig) = self.pending_signature.take() {
                    self.chunk(vec![parts::signature_only(&sig)], None, out);
                }
                self.text_part(text, true, out);
            }
            Delta::Signature(sig) => {
                if matches!(self.building, Some(Building::Thinking { had_text: true })) {
                    // The end of a run of thought parts: its signature on a thought part.
                    let part = OutPart {
                        text: Some(""),
                        thought: Some(true),
                        thought_signature: Some(sig),
                        ..OutPart::default()
                    };
                    self.chunk(vec![part], None, out);
                } else if let Some(waiting) = self.pending_signature.replace(sig.clone()) {
                    self.chunk(vec![parts::signature_only(&waiting)], None, out);
                }
            }
            Delta::ToolArguments(piece) => {
                if let Some(Building::ToolCall { args, .. }) = &mut self.building {
                    args.push_str(piece);
                }
            }
        }
    }

    fn text_part(&mut self, text: &str, thought: bool, out: &mut Vec<u8>) {
        let signature = self.pending_signature.take();
        let part = OutPart {
            text: Some(text),
            thought: thought.then_some(true),
            thought_signature: signature.as_deref(),
            ..OutPart::default()
        };
        self.chunk(vec![part], None, out);
    }
}

impl StreamEncoder for Encoder {
    fn event(&mut self, event: &Event, out: &mut Vec<u8>) {
        if self.over {
            return;
        }
        match event {
            Event::Start { id, model, usage } => {
                self.id.clone_from(id);
                self.model.clone_from(model);
                self.prompt = *usage;
            }
            Event::BlockStart { block, .. } => {
                self.building = Some(match block {
                    Block::Text => Building::Text,
                    Block::Thinking => Building::Thinking { had_text: false },
                    Block::RedactedThinking { .. } => Building::Nothing,
                    Block::ToolCall { id, name } => Building::ToolCall {
                        id: id.clone(),
                        name: name.clone(),
                        args: String::new(),
                    },
                });
            }
            Event::Delta { delta, .. } => self.delta(delta, out),
            Event::BlockStop { .. } => {
                if let Some(Building::ToolCall { id, name, args }) = self.building.take() {
                    let args = match wire::raw(&args) {
                        Some(raw) if raw.get().starts_with('{') => raw,
                        _ => wire::empty_object(),
                    };
                    let signature = self.pending_signature.take();
                    let part = OutPart {
                        function_call: Some(OutFunctionCall {
                            id: Some(id.as_str()).filter(|id| !id.is_empty()),
                            name: &name,
                            args,
                        }),
                        thought_signature: signature.as_deref(),
                        ..OutPart::default()
                    };
                    self.chunk(vec![part], None, out);
                }
            }
            Event::Finish { stop, usage } => {
                self.over = true;
                let signature = self.pending_signature.take();
                let parts = signature
                    .as_deref()
                    .map(parts::signature_only)
                    .into_iter()
                    .collect();
                self.chunk(parts, Some((stop, usage)), out);
            }
            Event::Error { kind, message } => {
                self.over = true;
                let body = error_body(Protocol::Gemini, *kind, "", message);
                let json = wire::to_json(&body);
                self.frame(&json, out);
            }
        }
    }

    fn close(&mut self, out: &mut Vec<u8>) {
        if !self.sse {
            if !self.opened {
                out.push(b'[');
                self.opened = true;
            }
            out.push(b']');
        }
    }
}
