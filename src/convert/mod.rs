//! Protocol conversion: a request in the client's protocol becomes a request in the upstream's,
//! and the upstream's answer (whole, streamed, or an error) becomes one in the client's.
//!
//! Everything goes through one intermediate representation ([`ir`]): each protocol file
//! decodes its own wire format into it and encodes it back (requests, answers, stream events),
//! so the twelve (client, upstream) pairs are the four decoders times the four encoders, not
//! twelve translations. [`stream::StreamConverter`] runs a stream event by event: each
//! upstream event is decoded, encoded and sent on before the next one is read.
//!
//! Pure code, no IO. What cannot be expressed in the target protocol is refused before
//! anything is sent ([`ConvertError::Unsupported`], a 400 naming the feature); hints the target
//! has no field for (penalties, seeds, verbosity) are dropped.

pub mod anthropic;
pub mod gemini;
pub mod ir;
pub mod openai_chat;
pub mod responses;
pub mod stream;

use crate::providers::Protocol;

pub use stream::StreamConverter;

/// An optional field of a JSON object read as `T`, for the request decoders: absent or `null` is
/// `None`; a value `read` cannot take is `Err(what)` (what was expected: "a number", …), which
/// each decoder words as its protocol's errors are worded.
pub(crate) fn optional_field<'a, T>(
    object: &'a serde_json::Map<String, serde_json::Value>,
    key: &str,
    read: impl FnOnce(&'a serde_json::Value) -> Option<T>,
    what: &'static str,
) -> Result<Option<T>, &'static str> {
    match object.get(key) {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(value) => read(value).map(Some).ok_or(what),
    }
}

/// Why a body could not be converted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConvertError {
    /// The body is not what its protocol allows (a 400 for a request; for an upstream answer,
    /// a 502).
    #[error("{0}")]
    Invalid(String),
    /// The request uses something the target protocol cannot carry.
    #[error("{feature} cannot be converted to the {target} protocol of this channel's upstream")]
    Unsupported { feature: String, target: Protocol },
}

impl ConvertError {
    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Self::Invalid(message.into())
    }

    pub(crate) fn unsupported(feature: impl Into<String>, target: Protocol) -> Self {
        Self::Unsupported {
            feature: feature.into(),
            target,
        }
    }
}

/// How a client wants its stream shaped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StreamOptions {
    /// OpenAI Chat: `stream_options.include_usage` was asked for (a last chunk with usage and
    /// no choices).
    pub include_usage: bool,
    /// Gemini: `alt=sse` was asked for; otherwise the stream is one JSON array sent in pieces.
    pub gemini_sse: bool,
}

/// Decodes one upstream stream into [`ir::Event`]s.
pub trait StreamDecoder: Send {
    /// One event as framed by SSE: its `event:` name, if any, and its `data`.
    fn event(&mut self, name: Option<&str>, data: &str, out: &mut Vec<ir::Event>);
    /// The upstream ended its stream. A complete answer adds nothing; a cut one adds an
    /// [`ir::Event::Error`].
    fn end(&mut self, out: &mut Vec<ir::Event>);
}

/// Encodes [`ir::Event`]s as the client's protocol's stream bytes.
pub trait StreamEncoder: Send {
    /// The bytes for one event (possibly none, possibly several wire events).
    fn event(&mut self, event: &ir::Event, out: &mut Vec<u8>);
    /// After the last event: what closes the stream (OpenAI `data: [DONE]`, the end of a Gemini
    /// JSON array); nothing for the others.
    fn close(&mut self, out: &mut Vec<u8>);
}

pub fn decode_request(protocol: Protocol, body: &[u8]) -> Result<ir::Request, ConvertError> {
    match protocol {
        Protocol::Anthropic => anthropic::decode_request(body),
        Protocol::OpenAiChat => openai_chat::decode_request(body),
        Protocol::OpenAiResponses => responses::decode_request(body),
        Protocol::Gemini => gemini::decode_request(body),
    }
}

/// The request body for an upstream of `protocol`. Gemini's model goes in the URL, not here.
pub fn encode_request(protocol: Protocol, request: &ir::Request) -> Result<Vec<u8>, ConvertError> {
    match protocol {
        Protocol::Anthropic => anthropic::encode_request(request),
        Protocol::OpenAiChat => openai_chat::encode_request(request),
        Protocol::OpenAiResponses => responses::encode_request(request),
        Protocol::Gemini => gemini::encode_request(request),
    }
}

pub fn decode_response(protocol: Protocol, body: &[u8]) -> Result<ir::Response, ConvertError> {
    match protocol {
        Protocol::Anthropic => anthropic::decode_response(body),
        Protocol::OpenAiChat => openai_chat::decode_response(body),
        Protocol::OpenAiResponses => responses::decode_response(body),
        Protocol::Gemini => gemini::decode_response(body),
    }
}

#[must_use]
pub fn encode_response(protocol: Protocol, response: &ir::Response) -> Vec<u8> {
    match protocol {
        Protocol::Anthropic => anthropic::encode_response(response),
        Protocol::OpenAiChat => openai_chat::encode_response(response),
        Protocol::OpenAiResponses => responses::encode_response(response),
        Protocol::Gemini => gemini::encode_response(response),
    }
}

#[must_use]
pub fn stream_decoder(protocol: Protocol) -> Box<dyn StreamDecoder> {
    match protocol {
        Protocol::Anthropic => Box::new(anthropic::Decoder::default()),
        Protocol::OpenAiChat => Box::new(openai_chat::Decoder::default()),
        Protocol::OpenAiResponses => Box::new(responses::Decoder::default()),
        Protocol::Gemini => Box::new(gemini::Decoder::default()),
    }
}

#[must_use]
pub fn stream_encoder(protocol: Protocol, options: StreamOptions) -> Box<dyn StreamEncoder> {
    match protocol {
        Protocol::Anthropic => Box::new(anthropic::Encoder::new(options)),
        Protocol::OpenAiChat => Box::new(openai_chat::Encoder::new(options)),
        Protocol::OpenAiResponses => Box::new(responses::Encoder::new(options)),
        Protocol::Gemini => Box::new(gemini::Encoder::new(options)),
    }
}
