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

use serde::{Deserialize, Serialize};

use super::ir::{StopReason, Usage};
use crate::providers::json::{Count, count};
use crate::providers::{ErrorKind, Protocol};

pub use request::{decode_request, encode_request};
pub use response::{decode_response, encode_response};
pub use stream::{Decoder, Encoder};

const PROTOCOL: Protocol = Protocol::Anthropic;

/// `usage` as Anthropic sends it (every figure optional: a `message_delta` may carry only
/// `output_tokens`, a proxy may send `null`s).
#[derive(Debug, Default, Deserialize)]
struct WireUsage {
    input_tokens: Option<Count>,
    output_tokens: Option<Count>,
    cache_creation_input_tokens: Option<Count>,
    cache_read_input_tokens: Option<Count>,
    output_tokens_details: Option<WireOutputDetails>,
}

#[derive(Debug, Default, Deserialize)]
struct WireOutputDetails {
    thinking_tokens: Option<Count>,
}

impl WireUsage {
    fn to_usage(&self) -> Usage {
        Usage {
            input: count(self.input_tokens),
            output: count(self.output_tokens),
            cache_write: count(self.cache_creation_input_tokens),
            cache_read: count(self.cache_read_input_tokens),
            reasoning: self.thinking_tokens(),
        }
    }

    fn thinking_tokens(&self) -> u64 {
        count(
            self.output_tokens_details
                .as_ref()
                .and_then(|d| d.thinking_tokens),
        )
    }

    /// A `message_delta`'s cumulative figures over what is known: `output_tokens` replaces;
    /// the input-side figures replace when present, but a 0 from a proxy that fills absent
    /// fields with 0 does not erase a real figure.
    fn merge_into(&self, usage: &mut Usage) {
        if let Some(Count(output)) = self.output_tokens {
            usage.output = output;
        }
        let merge = |field: Option<Count>, current: &mut u64| {
            if let Some(Count(n)) = field
                && (n > 0 || *current == 0)
            {
                *current = n;
            }
        };
        merge(self.input_tokens, &mut usage.input);
        merge(self.cache_creation_input_tokens, &mut usage.cache_write);
        merge(self.cache_read_input_tokens, &mut usage.cache_read);
        merge(
            self.output_tokens_details
                .as_ref()
                .and_then(|d| d.thinking_tokens),
            &mut usage.reasoning,
        );
    }
}

/// `usage` as relaybox sends it: all four figures, in the order the API sends them, plus the
/// thinking share of `output_tokens` when there is one.
#[derive(Debug, Serialize)]
struct OutUsage {
    input_tokens: u64,
    cache_creation_input_tokens: u64,
    cache_read_input_tokens: u64,
    output_tokens: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    output_tokens_details: Option<OutOutputDetails>,
}

#[derive(Debug, Serialize)]
struct OutOutputDetails {
    thinking_tokens: u64,
}

impl From<&Usage> for OutUsage {
    fn from(usage: &Usage) -> Self {
        Self {
            input_tokens: usage.input,
            cache_creation_input_tokens: usage.cache_write,
            cache_read_input_tokens: usage.cache_read,
            output_tokens: usage.output,
            output_tokens_details: (usage.reasoning > 0).then_some(OutOutputDetails {
                thinking_tokens: usage.reasoning,
            }),
        }
    }
}

/// `stop_reason` (+ `stop_sequence`) → the IR. `pause_turn` (a server tool's long turn, which
/// a converted request never has) and unknown reasons read as `end_turn`;
/// `model_context_window_exceeded` is a `max_tokens` stop.
fn stop_from_wire(reason: Option<&str>, sequence: Option<String>) -> StopReason {
    match reason {
        Some("max_tokens" | "model_context_window_exceeded") => StopReason::MaxTokens,
        Some("stop_sequence") => StopReason::StopSequence(sequence),
        Some("tool_use") => StopReason::ToolUse,
        Some("refusal") => StopReason::ContentFilter,
        _ => StopReason::EndTurn,
    }
}

/// The IR's stop → `stop_reason` and `stop_sequence`.
fn stop_to_wire(stop: &StopReason) -> (&'static str, Option<&str>) {
    match stop {
        StopReason::EndTurn => ("end_turn", None),
        StopReason::MaxTokens => ("max_tokens", None),
        StopReason::StopSequence(sequence) => ("stop_sequence", sequence.as_deref()),
        StopReason::ToolUse => ("tool_use", None),
        StopReason::ContentFilter => ("refusal", None),
    }
}

/// An Anthropic `error.type` → relaybox's kind (the inverse of
/// [`ErrorKind::anthropic_type`]; `billing_error` is a permission problem, unknown types an
/// upstream failure).
fn error_kind(error_type: &str) -> ErrorKind {
    match error_type {
        "invalid_request_error" => ErrorKind::InvalidRequest,
        "authentication_error" => ErrorKind::Authentication,
        "permission_error" | "billing_error" => ErrorKind::PermissionDenied,
        "not_found_error" => ErrorKind::NotFound,
        "request_too_large" => ErrorKind::RequestTooLarge,
        "rate_limit_error" => ErrorKind::RateLimited,
        "overloaded_error" => ErrorKind::Overloaded,
        "timeout_error" => ErrorKind::Timeout,
        _ => ErrorKind::Upstream,
    }
}

/// A message id in Anthropic's shape (`msg_…`): the upstream's id is kept (prefixed when it
/// has another shape, so it can still be traced); a missing one is made up.
fn message_id(id: &str) -> String {
    if id.starts_with("msg_") {
        id.to_owned()
    } else if id.is_empty() {
        format!("msg_{}", uuid::Uuid::now_v7().simple())
    } else {
        format!("msg_{id}")
    }
}

/// A `tool_use` id: the upstream's, or a made-up `toolu_…` when it gave none (Anthropic
/// requires one).
fn tool_use_id(id: &str) -> std::borrow::Cow<'_, str> {
    if id.is_empty() {
        format!("toolu_{}", uuid::Uuid::now_v7().simple()).into()
    } else {
        id.into()
    }
}
