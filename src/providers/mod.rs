//! The protocol layer: pure functions and small state machines over the four wire protocols
//! relaybox speaks (Anthropic Messages, OpenAI Chat Completions, OpenAI Responses, Gemini).
//!
//! Nothing here does IO. The relay pipeline calls it to
//! - read what routing needs out of a request body ([`request_facts`], [`ensure_include_usage`],
//!   [`map_model`]),
//! - read token usage and the answering model out of a whole response ([`summarize_body`]),
//! - watch a streamed response as it passes, without copying it ([`StreamTap`]),
//! - shape the errors relaybox itself produces in the client's protocol ([`error_body`],
//!   [`stream_error_event`]) and read the upstream's own error ([`upstream_error_text`]).
//!
//! One file per protocol; [`sse`] frames event streams, `json` holds the allocation-light JSON
//! helpers the protocol files share, and [`tap`] drives the per-protocol stream handlers.
//! The types the protocol files share sit in files of their own (`protocol`, `usage`,
//! `request`, `stream_state`, [`errors`]), and only [`tap`] and `dispatch` call into the
//! protocol files, so imports run one way: this file only declares and re-exports.
//!
//! Token figures are normalised to one meaning ([`Usage`]): `input` excludes cached tokens, as
//! Anthropic reports it. OpenAI, Responses and Gemini report an all-inclusive prompt figure, so
//! their cached count is subtracted from it.

pub mod anthropic;
mod dispatch;
pub mod errors;
pub mod gemini;
pub(crate) mod json;
pub mod mapping;
pub mod openai;
#[cfg(test)]
pub(crate) mod proptest_support;
mod protocol;
mod request;
pub mod responses;
pub mod sse;
mod stream_state;
pub mod tap;
mod usage;

pub use dispatch::{request_facts, summarize_body};
pub use errors::{
    ErrorKind, UpstreamError, error_body, parse_upstream_error, stream_error_event,
    upstream_error_text,
};
pub use mapping::{ModelMapper, map_model};
pub use openai::ensure_include_usage;
pub use protocol::Protocol;
pub use request::{BodyError, RequestFacts};
pub use sse::{DEFAULT_MAX_EVENT_BYTES, SseEvent, SseParser};
pub use tap::StreamTap;
pub use usage::{BodySummary, Usage};
