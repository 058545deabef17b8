//! The Anthropic Messages wire format ⇄ the intermediate representation.
//!
//! - [`decode_request`] / [`encode_request`]: a `/v1/messages` body ([`request`]).
//! - [`decode_response`] / [`encode_response`]: a whole `message` answer ([`response`]).
//! - [`Decoder`] / [`Encoder`]: the `message_start` … `message_stop` event stream ([`stream`]).
//!
//! Usage: Anthropic's `input_tokens` already excludes the cache figures (the IR's meaning);
//! `cache_creation_input_tokens` is the IR's `cache_write`; `output_tokens` includes thinking,
//! and `output_tokens_details.thinking_tokens`, when sent, is the IR's `reasoning`.

mod request;
mod response;
mod stream;
#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]
mod tests;

use crate::providers::Protocol;

pub use request::{decode_request, encode_request};
pub use response::{decode_response, encode_response};
pub use stream::{Decoder, Encoder};

const PROTOCOL: Protocol = Protocol::Anthropic;
