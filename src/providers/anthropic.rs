//! Anthropic Messages: usage in responses and streams, and request facts.
//!
//! Stream: `message_start` carries the model and the input-side usage (`input_tokens`,
//! `cache_creation_input_tokens`, `cache_read_input_tokens`, a first `output_tokens`);
//! `content_block_delta`s carry the content; `message_delta` carries the final cumulative
//! `output_tokens` (and, from newer API versions, the other cumulative figures too);
//! `message_stop` ends the stream; `error` reports a failure after the 200.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::Value;

use super::errors;
use super::json::{self, Count, count};
use super::request::{RequestFacts, RequestHead};
use super::stream_state::TapState;
use super::usage::{BodySummary, Usage, top_level_summary};

/// `usage` as Anthropic reports it (all figures optional: `message_delta` may carry only
/// `output_tokens`).
#[derive(Debug, Default, Deserialize)]
struct WireUsage {
    input_tokens: Option<Count>,
    output_tokens: Option<Count>,
    cache_creation_input_tokens: Option<Count>,
    cache_read_input_tokens: Option<Count>,
}

impl WireUsage {
    fn to_usage(&self) -> Usage {
        Usage {
            input: count(self.input_tokens),
            output: count(self.output_tokens),
            cache_creation: count(self.cache_creation_input_tokens),
            cache_read: count(self.cache_read_input_tokens),
        }
    }
}

/// A Messages response body (also the `message` of `message_start`).
#[derive(Deserialize)]
struct Message<'a> {
    #[serde(borrow, default)]
    model: Option<Cow<'a, str>>,
    #[serde(default)]
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
struct MessageStart<'a> {
    #[serde(borrow)]
    message: Message<'a>,
}

#[derive(Deserialize)]
struct MessageDelta {
    #[serde(default)]
    usage: Option<WireUsage>,
}

pub(crate) fn summarize_body(body: &[u8]) -> BodySummary {
    top_level_summary(body, usage_of)
}

/// A raw `usage` object, read by walking its members: its four figures are plain numbers, so
/// this skips serde's per-field machinery (each figure is read as tolerantly as [`Count`]).
fn usage_of(raw: &[u8]) -> Option<Usage> {
    if raw.first() != Some(&b'{') {
        return None;
    }
    let mut usage = Usage::default();
    for (key, value) in json::members(raw) {
        let figure = match key {
            b"input_tokens" => &mut usage.input,
            b"output_tokens" => &mut usage.output,
            b"cache_creation_input_tokens" => &mut usage.cache_creation,
            b"cache_read_input_tokens" => &mut usage.cache_read,
            _ => continue,
        };
        *figure = json::count_of(value);
    }
    Some(usage)
}

/// One stream event. Only `message_start`, `message_delta` and `error` are parsed; the content
/// deltas are recognised by their event name alone.
pub(crate) fn on_stream_event(state: &mut TapState, name: Option<&[u8]>, data: &[u8]) {
    let kind = match name {
        Some(name) if !name.is_empty() => Cow::Borrowed(name),
        _ => match json::event_type(data) {
            Some(kind) => kind,
            None => return,
        },
    };
    match &*kind {
        b"content_block_delta" => state.first_token = true,
        b"message_start" => {
            state.parsed += 1;
            if let Ok(start) = serde_json::from_slice::<MessageStart<'_>>(data) {
                if let Some(model) = &start.message.model {
                    state.set_model(model);
                }
                if let Some(usage) = &start.message.usage {
                    state.set_usage(usage.to_usage());
                }
            }
        }
        b"message_delta" => {
            state.parsed += 1;
            if let Ok(MessageDelta { usage: Some(delta) }) = serde_json::from_slice(data) {
                let mut usage = state.usage;
                if let Some(output) = delta.output_tokens {
                    usage.output = output.0;
                }
                // Cumulative input-side figures override message_start's, but a 0 from a
                // proxy that fills absent fields with 0 must not erase a real figure.
                let merge = |field: Option<Count>, current: &mut u64| {
                    if let Some(Count(n)) = field
                        && (n > 0 || *current == 0)
                    {
                        *current = n;
                    }
                };
                merge(delta.input_tokens, &mut usage.input);
                merge(delta.cache_creation_input_tokens, &mut usage.cache_creation);
                merge(delta.cache_read_input_tokens, &mut usage.cache_read);
                state.set_usage(usage);
            }
        }
        b"message_stop" => state.completed = true,
        b"error" => {
            state.parsed += 1;
            match errors::parse_upstream_error(data) {
                Some(error) => state.set_error(
                    error.message.as_deref(),
                    error.error_type.as_deref().or(error.code.as_deref()),
                ),
                None => state.set_error(None, None),
            }
        }
        _ => {}
    }
}

pub(crate) fn request_facts(head: &RequestHead<'_>) -> RequestFacts {
    RequestFacts {
        model: head.model().to_owned(),
        stream: head.stream(),
        session_id: head.metadata_user_id().and_then(session_from_user_id),
        wants_usage_chunk: false,
    }
}

/// The session part of an Anthropic `metadata.user_id`:
/// - Claude Code's `user_<hash>_account_<uuid>_session_<uuid>` → the part after `session_`;
/// - its newer JSON form `{"device_id":…,"account_uuid":…,"session_id":…}` → `session_id`;
/// - anything else → the whole value.
#[must_use]
pub fn session_from_user_id(user_id: &str) -> Option<String> {
    let user_id = user_id.trim();
    if user_id.is_empty() {
        return None;
    }
    if user_id.starts_with('{')
        && let Ok(value) = serde_json::from_str::<Value>(user_id)
        && let Some(session) = str_field(&value, "session_id")
    {
        return Some(session.to_owned());
    }
    // One searcher for every request: building it is most of the cost of a search.
    static SESSION_MARK: std::sync::LazyLock<memchr::memmem::FinderRev<'static>> =
        std::sync::LazyLock::new(|| memchr::memmem::FinderRev::new(b"session_"));
    if let Some(at) = SESSION_MARK.rfind(user_id.as_bytes())
        && let session = &user_id[at + b"session_".len()..]
        && !session.is_empty()
    {
        return Some(session.to_owned());
    }
    Some(user_id.to_owned())
}

/// A non-empty string field of a JSON object.
fn str_field<'a>(body: &'a serde_json::Value, key: &str) -> Option<&'a str> {
    body.get(key)
        .and_then(serde_json::Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::dispatch::facts_of;
    use crate::providers::tap::test_support::{crlf, run_every_split};
    use crate::providers::{Protocol, summarize_body as summarize};
    use serde_json::json;

    const STREAM: &str = include_str!("fixtures/anthropic_stream.sse");

    #[test]
    fn stream_usage_with_cache_tokens() {
        let outcome = run_every_split(Protocol::Anthropic, false, STREAM.as_bytes());
        assert_eq!(outcome.forwarded, STREAM.as_bytes());
        assert_eq!(
            outcome.usage,
            Usage {
                input: 12,
                output: 15,
                cache_creation: 1024,
                cache_read: 20480
            }
        );
        assert!(outcome.usage_known);
        assert!(outcome.first_token);
        assert!(outcome.completed);
        assert_eq!(outcome.model.as_deref(), Some("claude-sonnet-4-5-20250929"));
        assert_eq!(outcome.error, None);
    }

    #[test]
    fn stream_with_crlf_line_ends() {
        let input = crlf(STREAM);
        let outcome = run_every_split(Protocol::Anthropic, false, input.as_bytes());
        assert_eq!(outcome.forwarded, input.as_bytes());
        assert_eq!(outcome.usage.total(), 12 + 15 + 1024 + 20480);
        assert!(outcome.completed && outcome.first_token);
    }

    #[test]
    fn only_three_events_are_parsed() {
        let mut tap = crate::providers::StreamTap::new(Protocol::Anthropic, false);
        tap.feed(bytes::Bytes::from_static(STREAM.as_bytes()));
        // message_start, message_delta; content deltas, pings and stops are recognised by name.
        assert_eq!(tap.parsed_events(), 2);
    }

    #[test]
    fn first_token_and_completion_come_in_order() {
        let mut tap = crate::providers::StreamTap::new(Protocol::Anthropic, false);
        let first_delta = STREAM.find("event: content_block_delta").unwrap();
        tap.feed(bytes::Bytes::copy_from_slice(
            &STREAM.as_bytes()[..first_delta],
        ));
        assert!(!tap.saw_first_token());
        assert_eq!(tap.usage().input, 12);
        assert_eq!(tap.usage().output, 1);
        let stop = STREAM.find("event: message_stop").unwrap();
        tap.feed(bytes::Bytes::copy_from_slice(
            &STREAM.as_bytes()[first_delta..stop],
        ));
        assert!(tap.saw_first_token());
        assert!(!tap.completed());
        assert_eq!(tap.usage().output, 15);
        tap.feed(bytes::Bytes::copy_from_slice(&STREAM.as_bytes()[stop..]));
        assert!(tap.completed());
    }

    #[test]
    fn message_delta_cumulative_figures_override() {
        let input = "event: message_start\n\
            data: {\"type\":\"message_start\",\"message\":{\"model\":\"claude-opus-4-1\",\"usage\":{\"input_tokens\":100,\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":0,\"output_tokens\":1}}}\n\n\
            event: content_block_delta\n\
            data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"thinking_delta\",\"thinking\":\"Hmm\"}}\n\n\
            event: message_delta\n\
            data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\"},\"usage\":{\"input_tokens\":104,\"cache_creation_input_tokens\":2000,\"cache_read_input_tokens\":0,\"output_tokens\":87,\"server_tool_use\":{\"web_search_requests\":1}}}\n\n\
            event: message_stop\n\
            data: {\"type\":\"message_stop\"}\n\n";
        let outcome = run_every_split(Protocol::Anthropic, false, input.as_bytes());
        assert_eq!(
            outcome.usage,
            Usage {
                input: 104,
                output: 87,
                cache_creation: 2000,
                cache_read: 0
            }
        );
        // A zero in message_delta does not erase message_start's figure.
        let zeroed = input.replace("\"input_tokens\":104", "\"input_tokens\":0");
        let outcome = run_every_split(Protocol::Anthropic, false, zeroed.as_bytes());
        assert_eq!(outcome.usage.input, 100);
    }

    #[test]
    fn events_without_event_lines_are_recognised_by_type() {
        let input = STREAM
            .lines()
            .filter(|line| !line.starts_with("event:"))
            .collect::<Vec<_>>()
            .join("\n");
        let outcome = run_every_split(Protocol::Anthropic, false, input.as_bytes());
        assert_eq!(outcome.usage.output, 15);
        assert!(outcome.first_token && outcome.completed);
    }

    #[test]
    fn stream_error_event() {
        let cut = STREAM.find("event: content_block_stop").unwrap();
        let input = format!(
            "{}event: error\ndata: {{\"type\":\"error\",\"error\":{{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}},\"request_id\":\"req_011CSHoEeqs5C35K2UUqR7Fy\"}}\n\n",
            &STREAM[..cut]
        );
        let outcome = run_every_split(Protocol::Anthropic, false, input.as_bytes());
        assert_eq!(outcome.error.as_deref(), Some("Overloaded"));
        assert_eq!(outcome.error_code.as_deref(), Some("overloaded_error"));
        assert!(!outcome.completed);
        assert!(outcome.first_token);
        assert_eq!(outcome.usage.output, 1);
    }

    #[test]
    fn body_usage_and_model() {
        let body = br#"{"id":"msg_01XFDUDYJgAACzvnptvVoYEL","type":"message","role":"assistant","model":"claude-haiku-4-5-20251001",
            "content":[{"type":"text","text":"Hello!"}],"stop_reason":"end_turn","stop_sequence":null,
            "usage":{"input_tokens":2095,"cache_creation_input_tokens":2051,"cache_read_input_tokens":0,
                     "cache_creation":{"ephemeral_5m_input_tokens":2051,"ephemeral_1h_input_tokens":0},
                     "output_tokens":503,"service_tier":"standard"}}"#;
        let summary = summarize(Protocol::Anthropic, body);
        assert_eq!(
            summary.usage,
            Some(Usage {
                input: 2095,
                output: 503,
                cache_creation: 2051,
                cache_read: 0
            })
        );
        assert_eq!(
            summary.response_model.as_deref(),
            Some("claude-haiku-4-5-20251001")
        );
        // An error body and a count_tokens answer carry no usage.
        let error = br#"{"type":"error","error":{"type":"not_found_error","message":"model: x"}}"#;
        assert_eq!(
            summarize(Protocol::Anthropic, error),
            BodySummary::default()
        );
        assert_eq!(
            summarize(Protocol::Anthropic, br#"{"input_tokens":2095}"#).usage,
            None
        );
    }

    #[test]
    fn request_facts_and_sessions() {
        let body = json!({
            "model": "claude-sonnet-4-5",
            "stream": true,
            "max_tokens": 1024,
            "metadata": {"user_id": "user_6c3a1f0b2e4d5c6a7b8c9d0e1f2a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c_account_3f2b9c1e-5d4a-4b8e-9c7d-1a2b3c4d5e6f_session_8d7c6b5a-4e3f-4a2b-9c1d-0e1f2a3b4c5d"},
            "messages": [{"role": "user", "content": "Hello"}],
        });
        let facts = facts_of(Protocol::Anthropic, &body);
        assert_eq!(
            facts,
            RequestFacts {
                model: "claude-sonnet-4-5".into(),
                stream: true,
                session_id: Some("8d7c6b5a-4e3f-4a2b-9c1d-0e1f2a3b4c5d".into()),
                wants_usage_chunk: false,
            }
        );
        let json_form = r#"{"device_id":"d1","account_uuid":"a1","session_id":"s-123"}"#;
        assert_eq!(session_from_user_id(json_form).as_deref(), Some("s-123"));
        assert_eq!(
            session_from_user_id("alice@example.com").as_deref(),
            Some("alice@example.com")
        );
        assert_eq!(
            session_from_user_id("user_x_session_").as_deref(),
            Some("user_x_session_")
        );
        assert_eq!(session_from_user_id("  "), None);
        let facts = facts_of(Protocol::Anthropic, &json!({"model": "m"}));
        assert_eq!((facts.stream, facts.session_id), (false, None));
        assert!(matches!(
            crate::providers::request_facts(Protocol::Anthropic, b"[]"),
            Err(crate::providers::BodyError::NotAnObject)
        ));
    }
}
