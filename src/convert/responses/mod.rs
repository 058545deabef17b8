//! OpenAI Responses (`POST /v1/responses`) ⇄ the intermediate representation.
//!
//! - [`request`]: the request body (`instructions`, `input` items, function tools, `reasoning`,
//!   `text.format`, …). Server-side state (`previous_response_id`, `conversation`, item
//!   references, stored prompts, background mode) and built-in tools are refused: the other
//!   protocols cannot hold them.
//! - [`answer`]: the Response object (whole answers) and the pieces the stream encoder shares
//!   with it (output items, usage, status).
//! - [`decode_stream`] / [`encode_stream`]: the typed event stream (`response.created` …
//!   `response.completed`, each event with a `sequence_number` counting from 0; no `[DONE]`).
//!
//! Ids: a Response is `resp_…`, its output items `msg_…`, `rs_…` and `fc_…`; a function call's
//! `call_id` is the IR's [`ToolCall::id`](super::ir::ToolCall::id). A reasoning item's
//! `encrypted_content` is the IR's thinking signature.

mod answer;
mod decode_stream;
mod encode_stream;
mod request;
#[cfg(test)]
mod tests;

pub use answer::{decode_response, encode_response};
pub use decode_stream::Decoder;
pub use encode_stream::Encoder;
pub use request::{decode_request, encode_request};

use crate::providers::Protocol;

const PROTOCOL: Protocol = Protocol::OpenAiResponses;
