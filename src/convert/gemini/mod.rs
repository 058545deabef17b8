//! The Gemini wire format (`generateContent`, `streamGenerateContent`) ⇄ the intermediate
//! representation.
//!
//! - [`request`]: `GenerateContentRequest` (the model is in the URL, not the body).
//! - [`answer`]: a whole `GenerateContentResponse`.
//! - [`stream`]: stream chunks (`data: {…}\r\n\r\n` with `alt=sse`, else one JSON array).
//! - `parts`: parts of a turn, shared by all three; how thought signatures travel.
//! - `wire`: the JSON shapes read and written.
//!
//! Function calls may come without an id: decoding gives them one (`call_<name>_<n>` in a
//! request, the same for the same history; `call_<responseId>_<n>` in an answer, unique across
//! turns), and a function response without an id answers the earliest unanswered call of its
//! name.

mod answer;
mod parts;
mod request;
mod stream;
mod wire;

#[cfg(test)]
mod tests;

use crate::providers::Protocol;

pub use answer::{decode_response, encode_response};
pub use request::{decode_request, encode_request};
pub use stream::{Decoder, Encoder};

const PROTOCOL: Protocol = Protocol::Gemini;
