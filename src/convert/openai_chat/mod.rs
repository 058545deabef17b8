//! OpenAI Chat Completions (`POST /v1/chat/completions`) ⇄ the intermediate representation.
//!
//! - [`decode_request`] / [`encode_request`]: `request.rs`. System and developer messages are
//!   the IR's system prompts; `tool` messages become `ToolResult`s in a user turn (consecutive
//!   ones folded together) and are split out again on the way back.
//! - [`decode_response`] / [`encode_response`]: `response.rs`, whole `chat.completion` bodies.
//! - [`Decoder`] / [`Encoder`]: `stream.rs`, `chat.completion.chunk` events.
//!
//! Thinking: OpenAI itself returns no reasoning text, only a count
//! (`completion_tokens_details.reasoning_tokens`). The `reasoning_content` field DeepSeek, vLLM
//! and other compatible servers use is read (and `reasoning`, its newer name on some of them),
//! and written in answers and streams; thinking signatures have no field and are dropped. In a
//! request the thinking turns of the history are dropped (OpenAI refuses unknown fields there).

mod request;
mod response;
mod stream;
#[cfg(test)]
mod tests;

use super::ConvertError;
use super::ir::{Request, Response};
use crate::providers::Protocol;

pub use stream::{Decoder, Encoder};

const PROTOCOL: Protocol = Protocol::OpenAiChat;

/// A Chat Completions request body → the IR.
pub fn decode_request(body: &[u8]) -> Result<Request, ConvertError> {
    request::decode(body)
}

/// The IR → a Chat Completions request body.
pub fn encode_request(request: &Request) -> Result<Vec<u8>, ConvertError> {
    request::encode(request)
}

/// A `chat.completion` body → the IR.
pub fn decode_response(body: &[u8]) -> Result<Response, ConvertError> {
    response::decode(body)
}

/// The IR → a `chat.completion` body.
#[must_use]
pub fn encode_response(response: &Response) -> Vec<u8> {
    response::encode(response)
}
