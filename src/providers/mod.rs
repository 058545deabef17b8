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
//!
//! Token figures are normalised to one meaning ([`Usage`]): `input` excludes cached tokens, as
//! Anthropic reports it. OpenAI, Responses and Gemini report an all-inclusive prompt figure, so
//! their cached count is subtracted from it.

pub mod anthropic;
pub mod errors;
pub mod gemini;
pub(crate) mod json;
pub mod mapping;
pub mod openai;
mod request;
pub mod responses;
pub mod sse;
pub mod tap;

pub use errors::{
    ErrorKind, UpstreamError, error_body, parse_upstream_error, stream_error_event,
    upstream_error_text,
};
pub use mapping::{ModelMapper, map_model};
pub use openai::ensure_include_usage;
pub use request::BodyError;
pub(crate) use request::RequestHead;
pub use sse::{DEFAULT_MAX_EVENT_BYTES, SseEvent, SseParser};
pub use tap::StreamTap;

/// The wire protocol of a client request or of an upstream channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    Anthropic,
    OpenAiChat,
    OpenAiResponses,
    Gemini,
}

impl Protocol {
    /// A short stable name, for logs and metrics labels.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Anthropic => "anthropic",
            Self::OpenAiChat => "openai_chat",
            Self::OpenAiResponses => "openai_responses",
            Self::Gemini => "gemini",
        }
    }
}

impl std::fmt::Display for Protocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Token usage in relaybox's normalised form.
///
/// `input` EXCLUDES cached tokens (Anthropic's meaning): for OpenAI, Responses and Gemini the
/// cached count is subtracted from the prompt count they report. `cache_creation` is only ever
/// reported by Anthropic; the others leave it 0.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Usage {
    pub input: u64,
    pub output: u64,
    pub cache_creation: u64,
    pub cache_read: u64,
}

impl Usage {
    /// `input + output + cache_creation + cache_read` (saturating).
    #[must_use]
    pub fn total(&self) -> u64 {
        self.input
            .saturating_add(self.output)
            .saturating_add(self.cache_creation)
            .saturating_add(self.cache_read)
    }

    /// True when every figure is 0.
    #[must_use]
    pub fn is_zero(&self) -> bool {
        *self == Self::default()
    }
}

/// What a complete (non-streamed) response body says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BodySummary {
    /// `None` when the body carries no usage figures (an error body, a count_tokens answer, or
    /// something that is not JSON).
    pub usage: Option<Usage>,
    /// The model the upstream says answered (`model`, Gemini `modelVersion`).
    pub response_model: Option<String>,
}

/// `usage` and `model` of a whole response object, read from its top level, where Anthropic,
/// OpenAI Chat and Responses all put them. Only `usage` is parsed (by `usage_of`, from its raw
/// JSON); the content, usually most of the body, is stepped over.
fn top_level_summary(body: &[u8], usage_of: fn(&[u8]) -> Option<Usage>) -> BodySummary {
    let mut summary = BodySummary::default();
    for (key, value) in json::members(body) {
        match key {
            b"usage" => summary.usage = usage_of(value),
            b"model" => {
                summary.response_model = json::string_value(value)
                    .map(std::borrow::Cow::into_owned)
                    .filter(|m| !m.is_empty());
            }
            _ => {}
        }
    }
    summary
}

/// Read usage and the answering model out of a whole response body. Tolerant: a body that is not
/// the expected JSON gives `None` for both, never an error.
///
/// A Gemini body may also be the JSON array `:streamGenerateContent` sends without `alt=sse`;
/// its last usage figures and first model version are taken.
#[must_use]
pub fn summarize_body(protocol: Protocol, body: &[u8]) -> BodySummary {
    match protocol {
        Protocol::Anthropic => anthropic::summarize_body(body),
        Protocol::OpenAiChat => openai::summarize_body(body),
        Protocol::OpenAiResponses => responses::summarize_body(body),
        Protocol::Gemini => gemini::summarize_body(body),
    }
}

/// What routing needs out of a request body.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestFacts {
    /// The requested model; empty when the body names none (Gemini: see
    /// [`gemini::request_facts`], which takes the model from the path).
    pub model: String,
    /// `"stream": true` (Gemini: the `:streamGenerateContent` action).
    pub stream: bool,
    /// A client-side conversation id, for sticky routing and the log's `session_id`.
    pub session_id: Option<String>,
    /// OpenAI Chat: the client itself asked for `stream_options.include_usage`.
    pub wants_usage_chunk: bool,
}

/// Read what routing needs out of a request body (see [`RequestHead`] for how it is read).
///
/// - Anthropic: `model`, `stream`, session from `metadata.user_id` (Claude Code's
///   `user_<hash>_account_<uuid>_session_<uuid>` gives the part after `session_`; its JSON form
///   `{"session_id":…}` gives that field; any other value is taken whole).
/// - OpenAI Chat / Responses: `model`, `stream`, session from `prompt_cache_key`, else `user`.
/// - Gemini: the body names neither model nor stream; this returns an empty model and
///   `stream: false`. Use [`gemini::request_facts`] with the path's `{model}:{action}`.
///
/// # Errors
/// When the body is not JSON, or not a JSON object.
pub fn request_facts(protocol: Protocol, body: &[u8]) -> Result<RequestFacts, BodyError> {
    let head = RequestHead::parse(body)?;
    Ok(match protocol {
        Protocol::Anthropic => anthropic::request_facts(&head),
        Protocol::OpenAiChat => openai::request_facts(&head),
        Protocol::OpenAiResponses => responses::request_facts(&head),
        Protocol::Gemini => gemini::request_facts("", false),
    })
}

/// A non-empty string field of a JSON object.
pub(crate) fn str_field<'a>(body: &'a serde_json::Value, key: &str) -> Option<&'a str> {
    body.get(key)
        .and_then(serde_json::Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_total_adds_every_figure() {
        let usage = Usage {
            input: 1,
            output: 2,
            cache_creation: 3,
            cache_read: 4,
        };
        assert_eq!(usage.total(), 10);
        assert!(!usage.is_zero());
        assert!(Usage::default().is_zero());
        let huge = Usage {
            input: u64::MAX,
            output: 1,
            ..Usage::default()
        };
        assert_eq!(huge.total(), u64::MAX);
    }

    #[test]
    fn usage_serializes_with_its_field_names() {
        let usage = Usage {
            input: 1,
            output: 2,
            cache_creation: 3,
            cache_read: 4,
        };
        assert_eq!(
            serde_json::to_value(usage).unwrap(),
            serde_json::json!({"input": 1, "output": 2, "cache_creation": 3, "cache_read": 4})
        );
    }

    #[test]
    fn summarize_body_is_tolerant_of_garbage() {
        for protocol in [
            Protocol::Anthropic,
            Protocol::OpenAiChat,
            Protocol::OpenAiResponses,
            Protocol::Gemini,
        ] {
            for body in [
                &b""[..],
                b"not json",
                b"[1,2",
                b"null",
                b"42",
                b"{\"usage\":\"x\"}",
            ] {
                let summary = summarize_body(protocol, body);
                assert_eq!(summary.usage, None, "{protocol} {body:?}");
            }
        }
    }

    #[test]
    fn protocol_names() {
        assert_eq!(Protocol::OpenAiResponses.to_string(), "openai_responses");
        assert_eq!(Protocol::Gemini.as_str(), "gemini");
    }
}
