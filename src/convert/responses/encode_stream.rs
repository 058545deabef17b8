//! [`Event`]s → a Responses event stream, as the API sends it and the official SDKs'
//! accumulators expect it: `event: <type>\ndata: <json>\n\n`, every event with its `type` and a
//! `sequence_number` counting from 0.
//!
//! `response.created`, `response.in_progress`; per IR block one output item
//! (`response.output_item.added` … `response.output_item.done`, with the content-part,
//! summary-part, text and argument events of its kind); then `response.completed` (or
//! `response.incomplete` for a stop on the token limit or a content filter) carrying the whole
//! Response: its output items and usage. The done events repeat the item's whole text, so each
//! item's text is kept until its item is done, and the finished items until the end.
//! An error is an `error` event. Nothing closes the stream after the last event.

use serde::Serialize;
use serde_json::Value;

use super::super::ir::{Block, Delta, Event, StopReason, Usage};
use super::super::{StreamEncoder, StreamOptions};
use super::PROTOCOL;
use super::answer::{
    function_call_item, item_id, message_item, output_text, reasoning_item, response_id,
    response_object, status_of, unix_now, usage_json,
};
use crate::providers::errors::stream_error_event_numbered;

#[derive(Debug)]
pub struct Encoder {
    /// The next event's `sequence_number`.
    sequence: u64,
    id: String,
    model: String,
    created_at: u64,
    started: bool,
    /// `Finish` or `Error` went out.
    finished: bool,
    /// The output items finished so far (for `response.completed`).
    output: Vec<Value>,
    item: Option<Item>,
}

/// The output item being streamed.
#[derive(Debug)]
struct Item {
    kind: ItemKind,
    output_index: usize,
    id: String,
    /// The text, summary or arguments so far.
    text: String,
}

#[derive(Debug)]
enum ItemKind {
    Message,
    Reasoning {
        /// Its summary part was announced.
        part_open: bool,
        signature: String,
    },
    /// Encrypted reasoning with no summary: comes whole.
    EncryptedReasoning {
        data: String,
    },
    FunctionCall {
        call_id: String,
        name: String,
    },
}

impl Encoder {
    #[must_use]
    pub fn new(_options: StreamOptions) -> Self {
        Self {
            sequence: 0,
            id: String::new(),
            model: String::new(),
            created_at: 0,
            started: false,
            finished: false,
            output: Vec::new(),
            item: None,
        }
    }

    /// Starts an event: `event: <kind>\ndata: {"type":"<kind>","sequence_number":N`; its other
    /// members follow with [`Fields::field`], and [`Fields::end`] closes it.
    fn frame<'a>(&mut self, out: &'a mut Vec<u8>, kind: &str) -> Fields<'a> {
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(kind.as_bytes());
        out.extend_from_slice(b"\ndata: {\"type\":\"");
        out.extend_from_slice(kind.as_bytes());
        out.extend_from_slice(b"\",\"sequence_number\":");
        out.extend_from_slice(self.sequence.to_string().as_bytes());
        self.sequence += 1;
        Fields { out }
    }

    fn start(&mut self, id: &str, model: &str, out: &mut Vec<u8>) {
        self.started = true;
        self.id = response_id(id);
        self.model = model.to_owned();
        self.created_at = unix_now();
        for kind in ["response.created", "response.in_progress"] {
            let response = self.response("in_progress", Value::Null, Vec::new(), Value::Null);
            self.frame(out, kind).field("response", &response).end();
        }
    }

    fn response(&self, status: &str, incomplete: Value, output: Vec<Value>, usage: Value) -> Value {
        response_object(
            &self.id,
            &self.model,
            self.created_at,
            status,
            incomplete,
            output,
            usage,
        )
    }

    fn block_start(&mut self, block: &Block, out: &mut Vec<u8>) {
        self.block_stop(out);
        let output_index = self.output.len();
        let (kind, prefix) = match block {
            Block::Text => (ItemKind::Message, "msg"),
            Block::Thinking => (
                ItemKind::Reasoning {
                    part_open: false,
                    signature: String::new(),
                },
                "rs",
            ),
            Block::RedactedThinking { data } => {
                (ItemKind::EncryptedReasoning { data: data.clone() }, "rs")
            }
            Block::ToolCall { id, name } => (
                ItemKind::FunctionCall {
                    call_id: id.clone(),
                    name: name.clone(),
                },
                "fc",
            ),
        };
        let item = Item {
            kind,
            output_index,
            id: item_id(prefix, &self.id, output_index),
            text: String::new(),
        };
        let added = match &item.kind {
            ItemKind::Message => message_item(&item.id, "in_progress", None),
            ItemKind::Reasoning { .. } => reasoning_item(&item.id, "", None),
            ItemKind::EncryptedReasoning { data } => reasoning_item(&item.id, "", Some(data)),
            ItemKind::FunctionCall { call_id, name } => {
                function_call_item(&item.id, "in_progress", call_id, name, "")
            }
        };
        self.frame(out, "response.output_item.added")
            .field("output_index", &output_index)
            .field("item", &added)
            .end();
        if matches!(item.kind, ItemKind::Message) {
            self.frame(out, "response.content_part.added")
                .field("item_id", &item.id)
                .field("output_index", &output_index)
                .field("content_index", &0)
                .field("part", &output_text(""))
                .end();
        }
        self.item = Some(item);
    }

    fn delta(&mut self, delta: &Delta, out: &mut Vec<u8>) {
        let Some(mut item) = self.item.take() else {
            return;
        };
        match (&mut item.kind, delta) {
            (ItemKind::Message, Delta::Text(piece)) => {
                item.text.push_str(piece);
                self.frame(out, "response.output_text.delta")
                    .field("item_id", &item.id)
                    .field("output_index", &item.output_index)
                    .field("content_index", &0)
                    .field("delta", piece)
                    .field("logprobs", &[(); 0])
                    .end();
            }
            (ItemKind::Reasoning { part_open, .. }, Delta::Thinking(piece))
                if !piece.is_empty() =>
            {
                if !*part_open {
                    *part_open = true;
                    self.frame(out, "response.reasoning_summary_part.added")
                        .field("item_id", &item.id)
                        .field("output_index", &item.output_index)
                        .field("summary_index", &0)
                        .field("part", &summary_text(""))
                        .end();
                }
                item.text.push_str(piece);
                self.frame(out, "response.reasoning_summary_text.delta")
                    .field("item_id", &item.id)
                    .field("output_index", &item.output_index)
                    .field("summary_index", &0)
                    .field("delta", piece)
                    .end();
            }
            (ItemKind::Reasoning { signature, .. }, Delta::Signature(piece)) => {
                signature.push_str(piece);
            }
            (ItemKind::FunctionCall { .. }, Delta::ToolArguments(piece)) => {
                item.text.push_str(piece);
                self.frame(out, "response.function_call_arguments.delta")
                    .field("item_id", &item.id)
                    .field("output_index", &item.output_index)
                    .field("delta", piece)
                    .end();
            }
            // A delta that does not fit the block: not in a well-formed sequence.
            _ => {}
        }
        self.item = Some(item);
    }

    fn block_stop(&mut self, out: &mut Vec<u8>) {
        let Some(item) = self.item.take() else {
            return;
        };
        let Item {
            kind,
            output_index,
            id,
            text,
        } = item;
        let done = match kind {
            ItemKind::Message => {
                self.frame(out, "response.output_text.done")
                    .field("item_id", &id)
                    .field("output_index", &output_index)
                    .field("content_index", &0)
                    .field("text", &text)
                    .field("logprobs", &[(); 0])
                    .end();
                self.frame(out, "response.content_part.done")
                    .field("item_id", &id)
                    .field("output_index", &output_index)
                    .field("content_index", &0)
                    .field("part", &output_text(&text))
                    .end();
                message_item(&id, "completed", Some(&text))
            }
            ItemKind::Reasoning {
                part_open,
                signature,
            } => {
                if part_open {
                    self.frame(out, "response.reasoning_summary_text.done")
                        .field("item_id", &id)
                        .field("output_index", &output_index)
                        .field("summary_index", &0)
                        .field("text", &text)
                        .end();
                    self.frame(out, "response.reasoning_summary_part.done")
                        .field("item_id", &id)
                        .field("output_index", &output_index)
                        .field("summary_index", &0)
                        .field("part", &summary_text(&text))
                        .end();
                }
                let signature = (!signature.is_empty()).then_some(signature.as_str());
                reasoning_item(&id, &text, signature)
            }
            ItemKind::EncryptedReasoning { data } => reasoning_item(&id, "", Some(&data)),
            ItemKind::FunctionCall { call_id, name } => {
                self.frame(out, "response.function_call_arguments.done")
                    .field("item_id", &id)
                    .field("output_index", &output_index)
                    .field("arguments", &text)
                    .end();
                function_call_item(&id, "completed", &call_id, &name, &text)
            }
        };
        self.frame(out, "response.output_item.done")
            .field("output_index", &output_index)
            .field("item", &done)
            .end();
        self.output.push(done);
    }

    fn finish(&mut self, stop: &StopReason, usage: &Usage, out: &mut Vec<u8>) {
        self.block_stop(out);
        let (status, incomplete) = status_of(stop);
        let output = std::mem::take(&mut self.output);
        let response = self.response(status, incomplete, output, usage_json(usage));
        let kind = if status == "completed" {
            "response.completed"
        } else {
            "response.incomplete"
        };
        self.frame(out, kind).field("response", &response).end();
    }
}

impl StreamEncoder for Encoder {
    fn event(&mut self, event: &Event, out: &mut Vec<u8>) {
        if self.finished {
            return;
        }
        if !self.started && !matches!(event, Event::Error { .. }) {
            match event {
                Event::Start { id, model, .. } => return self.start(id, model, out),
                _ => self.start("", "", out),
            }
        }
        match event {
            // A second start: not in a well-formed sequence.
            Event::Start { .. } => {}
            Event::BlockStart { block, .. } => self.block_start(block, out),
            Event::Delta { delta, .. } => self.delta(delta, out),
            Event::BlockStop { .. } => self.block_stop(out),
            Event::Finish { stop, usage } => {
                self.finished = true;
                self.finish(stop, usage, out);
            }
            Event::Error { kind, message } => {
                self.finished = true;
                out.extend_from_slice(&stream_error_event_numbered(
                    PROTOCOL,
                    *kind,
                    message,
                    self.sequence,
                ));
                self.sequence += 1;
            }
        }
    }

    fn close(&mut self, _out: &mut Vec<u8>) {}
}

fn summary_text(text: &str) -> Value {
    serde_json::json!({"type": "summary_text", "text": text})
}

/// The members of an event after `type` and `sequence_number`.
struct Fields<'a> {
    out: &'a mut Vec<u8>,
}

impl Fields<'_> {
    fn field(self, key: &str, value: &(impl Serialize + ?Sized)) -> Self {
        self.out.extend_from_slice(b",\"");
        self.out.extend_from_slice(key.as_bytes());
        self.out.extend_from_slice(b"\":");
        // Writing strings, numbers and JSON values into a Vec cannot fail.
        if serde_json::to_writer(&mut *self.out, value).is_err() {
            self.out.extend_from_slice(b"null");
        }
        self
    }

    fn end(self) {
        self.out.extend_from_slice(b"}\n\n");
    }
}
