//! A whole Messages answer (`{"type":"message", …}`) ⇄ [`Response`].
//!
//! Decoding keeps text, thinking (with its signature), redacted thinking and tool calls (their
//! `input` kept as the exact JSON text the model produced); server-tool blocks cannot occur in
//! an answer to a converted request and are skipped. Encoding writes the fields in the order
//! the API sends them; a tool call whose arguments are not a JSON object (an upstream cut off
//! mid-call) gets `input: {}`, the only shape the SDKs accept.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::{OutUsage, WireUsage, message_id, stop_from_wire, stop_to_wire, tool_use_id};
use crate::convert::ConvertError;
use crate::convert::ir::{Part, Response, Thinking, ToolCall};

/// A Messages answer (also the `message` of `message_start`).
#[derive(Debug, Default, Deserialize)]
pub(super) struct WireMessage {
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub content: Vec<WireBlock>,
    #[serde(default)]
    pub stop_reason: Option<String>,
    #[serde(default)]
    pub stop_sequence: Option<String>,
    #[serde(default)]
    pub usage: Option<WireUsage>,
    #[serde(default)]
    pub error: Option<WireError>,
}

/// One content block, whatever its type (the fields of every type the IR knows).
#[derive(Debug, Deserialize)]
pub(super) struct WireBlock {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub thinking: Option<String>,
    #[serde(default)]
    pub signature: Option<String>,
    #[serde(default)]
    pub data: Option<String>,
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub input: Option<Box<RawValue>>,
}

/// `{"type": …, "message": …}` of an error.
#[derive(Debug, Default, Deserialize)]
pub(super) struct WireError {
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
}

pub fn decode_response(body: &[u8]) -> Result<Response, ConvertError> {
    let message: WireMessage = serde_json::from_slice(body).map_err(|e| {
        ConvertError::invalid(format!(
            "the upstream's answer is not a Messages answer: {e}"
        ))
    })?;
    match message.kind.as_deref() {
        Some("message") | None => {}
        Some("error") => {
            let error = message.error.unwrap_or_default();
            return Err(ConvertError::invalid(format!(
                "the upstream answered with an error: {}: {}",
                error.kind.unwrap_or_default(),
                error.message.unwrap_or_default()
            )));
        }
        Some(other) => {
            return Err(ConvertError::invalid(format!(
                "the upstream's answer has type \"{other}\", not \"message\""
            )));
        }
    }
    let parts = message
        .content
        .into_iter()
        .filter_map(decode_block)
        .collect();
    Ok(Response {
        id: message.id.unwrap_or_default(),
        model: message.model.unwrap_or_default(),
        parts,
        stop: stop_from_wire(message.stop_reason.as_deref(), message.stop_sequence),
        usage: message
            .usage
            .as_ref()
            .map(WireUsage::to_usage)
            .unwrap_or_default(),
    })
}

fn decode_block(block: WireBlock) -> Option<Part> {
    match block.kind.as_str() {
        "text" => Some(Part::Text(block.text.unwrap_or_default())),
        "thinking" => Some(Part::Thinking(Thinking {
            text: block.thinking.unwrap_or_default(),
            signature: block.signature.filter(|s| !s.is_empty()),
            redacted: false,
        })),
        "redacted_thinking" => Some(Part::Thinking(Thinking {
            text: String::new(),
            signature: block.data,
            redacted: true,
        })),
        "tool_use" => Some(Part::ToolCall(ToolCall {
            id: block.id.unwrap_or_default(),
            name: block.name.unwrap_or_default(),
            arguments: block
                .input
                .map_or_else(|| "{}".to_owned(), |input| input.get().to_owned()),
        })),
        _ => None,
    }
}

/// An answer as the API writes it (`message_start` uses it too, with no content).
#[derive(Debug, Serialize)]
pub(super) struct OutMessage<'a> {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub role: &'static str,
    pub model: &'a str,
    pub content: Vec<OutBlock<'a>>,
    pub stop_reason: Option<&'static str>,
    pub stop_sequence: Option<&'a str>,
    pub usage: OutUsage,
}

/// A content block as the API writes it (in `content`, and in `content_block_start` with
/// empty text).
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(super) enum OutBlock<'a> {
    Text {
        text: &'a str,
    },
    Thinking {
        thinking: &'a str,
        signature: &'a str,
    },
    RedactedThinking {
        data: &'a str,
    },
    ToolUse {
        id: Cow<'a, str>,
        name: &'a str,
        input: Box<RawValue>,
    },
}

/// `{}`, the `input` of a tool call that has no arguments (yet).
pub(super) fn empty_input() -> Box<RawValue> {
    // `{}` is valid JSON: the default (`null`) is never used.
    RawValue::from_string("{}".to_owned()).unwrap_or_default()
}

/// A tool call's arguments as `input`: the JSON object text itself, else `{}`.
fn tool_input(arguments: &str) -> Box<RawValue> {
    let arguments = arguments.trim();
    if arguments.starts_with('{')
        && let Ok(raw) = RawValue::from_string(arguments.to_owned())
    {
        return raw;
    }
    empty_input()
}

#[must_use]
pub fn encode_response(response: &Response) -> Vec<u8> {
    let content = response
        .parts
        .iter()
        .filter_map(|part| match part {
            Part::Text(text) => Some(OutBlock::Text { text }),
            Part::Thinking(Thinking {
                signature,
                redacted: true,
                ..
            }) => Some(OutBlock::RedactedThinking {
                data: signature.as_deref().unwrap_or_default(),
            }),
            Part::Thinking(Thinking {
                text, signature, ..
            }) => Some(OutBlock::Thinking {
                thinking: text,
                signature: signature.as_deref().unwrap_or_default(),
            }),
            Part::ToolCall(call) => Some(OutBlock::ToolUse {
                id: tool_use_id(&call.id),
                name: &call.name,
                input: tool_input(&call.arguments),
            }),
            Part::Image(_) | Part::Document(_) | Part::ToolResult(_) => None,
        })
        .collect();
    let (stop_reason, stop_sequence) = stop_to_wire(&response.stop);
    let message = OutMessage {
        id: message_id(&response.id),
        kind: "message",
        role: "assistant",
        model: &response.model,
        content,
        stop_reason: Some(stop_reason),
        stop_sequence,
        usage: OutUsage::from(&response.usage),
    };
    serde_json::to_vec(&message).unwrap_or_default()
}
