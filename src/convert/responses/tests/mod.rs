//! The Responses codec's tests: golden fixtures from the provider's published examples
//! (`tests/golden/responses/`), decoded field by field, encoded back and checked the way the
//! official SDK reads them.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

use serde_json::{Value, json};

use super::{decode_request, decode_response, encode_request, encode_response};
use crate::convert::ConvertError;
use crate::convert::ir::{
    Document, Effort, Media, Message, Part, Reasoning, Request, Response, ResponseFormat, Role,
    StopReason, Thinking, Tool, ToolCall, ToolChoice, ToolResult, Usage,
};
use crate::providers::Protocol;

const ANSWER_TEXT: &str = include_str!("../../../../tests/golden/responses/answer_text.json");
const ANSWER_TOOL_USE: &str =
    include_str!("../../../../tests/golden/responses/answer_tool_use.json");
const ANSWER_THINKING: &str =
    include_str!("../../../../tests/golden/responses/answer_thinking.json");
const REQUEST_FULL: &str = include_str!("../../../../tests/golden/responses/request_full.json");

// Helpers

fn usage(input: u64, output: u64, cache_read: u64, reasoning: u64) -> Usage {
    Usage {
        input,
        output,
        cache_write: 0,
        cache_read,
        reasoning,
    }
}

fn unsupported(feature: &str) -> ConvertError {
    ConvertError::Unsupported {
        feature: feature.into(),
        target: Protocol::OpenAiResponses,
    }
}

fn decode_json(value: &Value) -> Result<Request, ConvertError> {
    decode_request(value.to_string().as_bytes())
}

mod answers;
mod requests;
mod streams;
