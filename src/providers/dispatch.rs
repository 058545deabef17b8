//! Hands a whole request or response body to the file of its protocol. The one place above the
//! protocol files besides [`super::tap`], so they never depend back on it.

use super::protocol::Protocol;
use super::request::{BodyError, RequestFacts, RequestHead};
use super::usage::BodySummary;
use super::{anthropic, gemini, openai, responses};

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

/// What the relay reads from `body`, sent as JSON text to a `protocol` endpoint (for the
/// protocol files' tests).
#[cfg(test)]
pub(crate) fn facts_of(protocol: Protocol, body: &serde_json::Value) -> RequestFacts {
    request_facts(protocol, body.to_string().as_bytes()).expect("a JSON object")
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
