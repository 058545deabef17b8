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

use serde::{Deserialize, Serialize};

use super::ConvertError;
use super::ir::{Request, Response, StopReason, Usage};
use crate::providers::json::Count;
use crate::providers::{ErrorKind, Protocol};

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

/// `usage` of a completion or chunk, as read.
#[derive(Debug, Default, Deserialize)]
struct WireUsage {
    #[serde(default)]
    prompt_tokens: Count,
    #[serde(default)]
    completion_tokens: Count,
    #[serde(default)]
    prompt_tokens_details: Option<PromptDetails>,
    #[serde(default)]
    completion_tokens_details: Option<CompletionDetails>,
    /// DeepSeek reports its cache hits here.
    #[serde(default)]
    prompt_cache_hit_tokens: Option<Count>,
}

#[derive(Debug, Default, Deserialize)]
struct PromptDetails {
    #[serde(default)]
    cached_tokens: Option<Count>,
}

#[derive(Debug, Default, Deserialize)]
struct CompletionDetails {
    #[serde(default)]
    reasoning_tokens: Count,
}

impl WireUsage {
    /// `prompt_tokens` includes the cached tokens; the IR's `input` does not.
    fn to_ir(&self) -> Usage {
        let prompt = self.prompt_tokens.0;
        let cached = self
            .prompt_tokens_details
            .as_ref()
            .and_then(|d| d.cached_tokens)
            .or(self.prompt_cache_hit_tokens)
            .map_or(0, |c| c.0)
            .min(prompt);
        let output = self.completion_tokens.0;
        let reasoning = self
            .completion_tokens_details
            .as_ref()
            .map_or(0, |d| d.reasoning_tokens.0)
            .min(output);
        Usage {
            input: prompt - cached,
            output,
            cache_write: 0,
            cache_read: cached,
            reasoning,
        }
    }
}

/// `usage` as written (the figures the official SDKs read).
#[derive(Debug, Serialize)]
struct UsageOut {
    prompt_tokens: u64,
    completion_tokens: u64,
    total_tokens: u64,
    prompt_tokens_details: CachedOut,
    completion_tokens_details: ReasoningOut,
}

#[derive(Debug, Serialize)]
struct CachedOut {
    cached_tokens: u64,
}

#[derive(Debug, Serialize)]
struct ReasoningOut {
    reasoning_tokens: u64,
}

impl UsageOut {
    /// Cache writes have no field of their own: they count as (uncached) prompt tokens.
    fn from_ir(usage: &Usage) -> Self {
        let prompt = usage.prompt_total();
        Self {
            prompt_tokens: prompt,
            completion_tokens: usage.output,
            total_tokens: prompt.saturating_add(usage.output),
            prompt_tokens_details: CachedOut {
                cached_tokens: usage.cache_read,
            },
            completion_tokens_details: ReasoningOut {
                reasoning_tokens: usage.reasoning,
            },
        }
    }
}

/// `finish_reason` → the IR. `tool_calls` also when the upstream said `stop` but called tools
/// (some compatible servers do), `content_filter` also for a refusal.
fn stop_reason(finish_reason: Option<&str>, called_tools: bool, refused: bool) -> StopReason {
    match finish_reason {
        Some("length") => StopReason::MaxTokens,
        Some("tool_calls" | "function_call") => StopReason::ToolUse,
        Some("content_filter") => StopReason::ContentFilter,
        _ if called_tools => StopReason::ToolUse,
        _ if refused => StopReason::ContentFilter,
        _ => StopReason::EndTurn,
    }
}

/// The IR → `finish_reason`.
fn finish_reason(stop: &StopReason) -> &'static str {
    match stop {
        StopReason::EndTurn | StopReason::StopSequence(_) => "stop",
        StopReason::MaxTokens => "length",
        StopReason::ToolUse => "tool_calls",
        StopReason::ContentFilter => "content_filter",
    }
}

/// A completion id in OpenAI's shape (`chatcmpl-…`): the IR's id, prefixed when it has
/// another shape, or a fresh one.
fn completion_id(id: &str) -> String {
    if id.starts_with("chatcmpl-") {
        id.to_owned()
    } else if id.is_empty() {
        format!("chatcmpl-{}", uuid::Uuid::now_v7().simple())
    } else {
        format!("chatcmpl-{id}")
    }
}

/// Seconds since the Unix epoch (`created`).
fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The kind of an OpenAI-shaped error object (`type`, else `code`; a numeric `code` is read
/// as an HTTP status, as some compatible servers send it).
fn error_kind(error: &serde_json::Value) -> ErrorKind {
    let by_name = |name: &str| match name {
        "invalid_request_error" | "invalid_request" | "context_length_exceeded" => {
            Some(ErrorKind::InvalidRequest)
        }
        "authentication_error" | "invalid_api_key" | "authentication_failed" => {
            Some(ErrorKind::Authentication)
        }
        "permission_error" | "permission_denied" => Some(ErrorKind::PermissionDenied),
        "not_found_error" | "not_found" | "model_not_found" => Some(ErrorKind::NotFound),
        "rate_limit_error" | "rate_limit_exceeded" | "insufficient_quota" | "tokens" => {
            Some(ErrorKind::RateLimited)
        }
        "server_error" | "internal_error" => Some(ErrorKind::Internal),
        "overloaded_error" | "overloaded" | "service_unavailable" => Some(ErrorKind::Overloaded),
        "timeout_error" | "timeout" => Some(ErrorKind::Timeout),
        "upstream_error" | "api_error" => Some(ErrorKind::Upstream),
        _ => None,
    };
    let text = |key: &str| error.get(key).and_then(serde_json::Value::as_str);
    text("type")
        .and_then(by_name)
        .or_else(|| text("code").and_then(by_name))
        .or_else(|| {
            let status = error.get("code").and_then(serde_json::Value::as_u64)?;
            u16::try_from(status).ok().map(ErrorKind::from_status)
        })
        .unwrap_or(ErrorKind::Upstream)
}

/// The message of an OpenAI-shaped error object (`{"error": "text"}` too).
fn error_message(error: &serde_json::Value) -> String {
    error
        .get("message")
        .and_then(serde_json::Value::as_str)
        .or_else(|| error.as_str())
        .filter(|m| !m.trim().is_empty())
        .unwrap_or("the upstream reported an error")
        .to_owned()
}
