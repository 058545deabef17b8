//! OpenAI Responses: usage in responses and streams, request facts.
//!
//! Stream: typed events (`event: response.created`, `response.output_text.delta`, …, each
//! `data` with the same `type` and a `sequence_number`), ending with `response.completed`,
//! `response.incomplete` or `response.failed`, whose `response` carries `model` and `usage`
//! (`input_tokens` includes `input_tokens_details.cached_tokens`). A failure can also come as an
//! `error` event. There is no `[DONE]`.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::Value;

use super::json::{self, Count, count};
use super::request::{RequestFacts, RequestHead};
use super::stream_state::TapState;
use super::usage::{BodySummary, Usage, top_level_summary};
use super::{errors, openai};

#[derive(Debug, Default, Deserialize)]
struct WireUsage {
    input_tokens: Option<Count>,
    output_tokens: Option<Count>,
    #[serde(default)]
    input_tokens_details: Option<InputDetails>,
}

#[derive(Debug, Default, Deserialize)]
struct InputDetails {
    cached_tokens: Option<Count>,
}

impl WireUsage {
    fn to_usage(&self) -> Usage {
        let input = count(self.input_tokens);
        let cached = count(
            self.input_tokens_details
                .as_ref()
                .and_then(|d| d.cached_tokens),
        );
        let cached = cached.min(input);
        Usage {
            input: input - cached,
            output: count(self.output_tokens),
            cache_creation: 0,
            cache_read: cached,
        }
    }
}

/// A Response object: only what is read here.
#[derive(Deserialize)]
struct Response<'a> {
    #[serde(borrow, default)]
    model: Option<Cow<'a, str>>,
    #[serde(default)]
    usage: Option<WireUsage>,
    #[serde(default)]
    error: Option<Value>,
}

/// An event that carries a Response object.
#[derive(Deserialize)]
struct WithResponse<'a> {
    #[serde(borrow)]
    response: Response<'a>,
}

pub(crate) fn summarize_body(body: &[u8]) -> BodySummary {
    top_level_summary(body, |raw| {
        serde_json::from_slice::<WireUsage>(raw)
            .ok()
            .map(|wire| wire.to_usage())
    })
}

/// One stream event. `*.delta` events are recognised by name; only `response.created` /
/// `.in_progress` (once, for the model), the terminal events and `error` are parsed.
pub(crate) fn on_stream_event(state: &mut TapState, name: Option<&[u8]>, data: &[u8]) {
    let kind = match name {
        Some(name) if name.starts_with(b"response.") || name == b"error" => Cow::Borrowed(name),
        _ => match json::event_type(data) {
            Some(kind) => kind,
            None => return,
        },
    };
    if kind.ends_with(b".delta") {
        state.first_token = true;
        return;
    }
    match &*kind {
        b"response.created" | b"response.in_progress" if state.model.is_none() => {
            state.parsed += 1;
            if let Ok(event) = serde_json::from_slice::<WithResponse<'_>>(data)
                && let Some(model) = &event.response.model
            {
                state.set_model(model);
            }
        }
        b"response.completed" | b"response.incomplete" | b"response.failed" => {
            state.completed = true;
            state.parsed += 1;
            let Ok(event) = serde_json::from_slice::<WithResponse<'_>>(data) else {
                return;
            };
            let response = event.response;
            if let Some(model) = &response.model {
                state.set_model(model);
            }
            if let Some(usage) = &response.usage {
                state.set_usage(usage.to_usage());
            }
            if &*kind == b"response.failed" {
                let error = response.error.unwrap_or(Value::Null);
                let text = |key: &str| error.get(key).and_then(Value::as_str);
                state.set_error(text("message"), text("code"));
            }
        }
        b"error" => {
            state.parsed += 1;
            let error = errors::parse_upstream_error(data).unwrap_or_default();
            state.set_error(
                error.message.as_deref(),
                error.code.as_deref().or(error.error_type.as_deref()),
            );
        }
        _ => {}
    }
}

pub(crate) fn request_facts(head: &RequestHead<'_>) -> RequestFacts {
    RequestFacts {
        model: head.model().to_owned(),
        stream: head.stream(),
        session_id: openai::session_id(head),
        wants_usage_chunk: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::dispatch::facts_of;
    use crate::providers::tap::test_support::{crlf, run_every_split};
    use crate::providers::{Protocol, StreamTap, summarize_body as summarize};
    use serde_json::json;

    const STREAM: &str = include_str!("fixtures/responses_stream.sse");
    const EXPECTED: Usage = Usage {
        input: 313,
        output: 42,
        cache_creation: 0,
        cache_read: 1024,
    };

    #[test]
    fn stream_usage_with_cached_tokens() {
        let outcome = run_every_split(Protocol::OpenAiResponses, false, STREAM.as_bytes());
        assert_eq!(outcome.forwarded, STREAM.as_bytes());
        assert_eq!(outcome.usage, EXPECTED);
        assert!(outcome.usage_known && outcome.first_token && outcome.completed);
        assert_eq!(outcome.model.as_deref(), Some("gpt-4.1-2025-04-14"));
        assert_eq!(outcome.error, None);

        let input = crlf(STREAM);
        let outcome = run_every_split(Protocol::OpenAiResponses, true, input.as_bytes());
        assert_eq!(outcome.forwarded, input.as_bytes());
        assert_eq!(outcome.usage, EXPECTED);
    }

    #[test]
    fn few_events_are_parsed() {
        let mut tap = StreamTap::new(Protocol::OpenAiResponses, false);
        tap.feed(bytes::Bytes::from_static(STREAM.as_bytes()));
        // response.created (model) and response.completed.
        assert_eq!(tap.parsed_events(), 2);
        assert_eq!(tap.events_seen(), 10);
    }

    #[test]
    fn first_token_on_any_delta() {
        let before_delta = STREAM.find("event: response.output_text.delta").unwrap();
        let mut tap = StreamTap::new(Protocol::OpenAiResponses, false);
        tap.feed(bytes::Bytes::copy_from_slice(
            &STREAM.as_bytes()[..before_delta],
        ));
        assert!(!tap.saw_first_token());
        assert!(!tap.completed());
        assert_eq!(tap.response_model(), Some("gpt-4.1-2025-04-14"));

        let tool = "event: response.function_call_arguments.delta\ndata: {\"type\":\"response.function_call_arguments.delta\",\"sequence_number\":4,\"item_id\":\"fc_1\",\"output_index\":0,\"delta\":\"{\\\"loc\"}\n\n";
        let mut tap = StreamTap::new(Protocol::OpenAiResponses, false);
        tap.feed(bytes::Bytes::from_static(tool.as_bytes()));
        assert!(tap.saw_first_token());
    }

    #[test]
    fn events_without_event_lines() {
        // Some compatible upstreams send only data lines, with `type` not first.
        let input = "data: {\"sequence_number\":0,\"type\":\"response.created\",\"response\":{\"model\":\"qwen3-max\",\"status\":\"in_progress\"}}\n\n\
                     data: {\"sequence_number\":1,\"type\":\"response.output_text.delta\",\"delta\":\"Hi\"}\n\n\
                     data: {\"sequence_number\":2,\"type\":\"response.completed\",\"response\":{\"model\":\"qwen3-max\",\"status\":\"completed\",\"usage\":{\"input_tokens\":20,\"output_tokens\":3,\"total_tokens\":23}}}\n\n\
                     data: [DONE]\n\n";
        let outcome = run_every_split(Protocol::OpenAiResponses, false, input.as_bytes());
        assert_eq!(
            outcome.usage,
            Usage {
                input: 20,
                output: 3,
                ..Usage::default()
            }
        );
        assert!(outcome.first_token && outcome.completed);
        assert_eq!(outcome.model.as_deref(), Some("qwen3-max"));
    }

    #[test]
    fn failed_and_incomplete_responses() {
        let failed = "event: response.created\ndata: {\"type\":\"response.created\",\"sequence_number\":0,\"response\":{\"model\":\"gpt-5\",\"status\":\"in_progress\",\"usage\":null}}\n\n\
                      event: response.failed\ndata: {\"type\":\"response.failed\",\"sequence_number\":1,\"response\":{\"model\":\"gpt-5\",\"status\":\"failed\",\"error\":{\"code\":\"server_error\",\"message\":\"The model failed to generate a response.\"},\"usage\":{\"input_tokens\":50,\"output_tokens\":0,\"input_tokens_details\":{\"cached_tokens\":0}}}}\n\n";
        let outcome = run_every_split(Protocol::OpenAiResponses, false, failed.as_bytes());
        assert!(outcome.completed);
        assert_eq!(
            outcome.error.as_deref(),
            Some("The model failed to generate a response.")
        );
        assert_eq!(outcome.error_code.as_deref(), Some("server_error"));
        assert_eq!(outcome.usage.input, 50);

        let incomplete = "event: response.incomplete\ndata: {\"type\":\"response.incomplete\",\"sequence_number\":7,\"response\":{\"model\":\"gpt-5\",\"status\":\"incomplete\",\"incomplete_details\":{\"reason\":\"max_output_tokens\"},\"error\":null,\"usage\":{\"input_tokens\":10,\"output_tokens\":64,\"input_tokens_details\":{\"cached_tokens\":4},\"output_tokens_details\":{\"reasoning_tokens\":64}}}}\n\n";
        let outcome = run_every_split(Protocol::OpenAiResponses, false, incomplete.as_bytes());
        assert!(outcome.completed);
        assert_eq!(outcome.error, None);
        assert_eq!(
            outcome.usage,
            Usage {
                input: 6,
                output: 64,
                cache_creation: 0,
                cache_read: 4
            }
        );
    }

    #[test]
    fn error_events_flat_and_nested() {
        let flat = "event: error\ndata: {\"type\":\"error\",\"code\":\"ERR_SOMETHING\",\"message\":\"Something went wrong\",\"param\":null,\"sequence_number\":1}\n\n";
        let outcome = run_every_split(Protocol::OpenAiResponses, false, flat.as_bytes());
        assert_eq!(outcome.error.as_deref(), Some("Something went wrong"));
        assert_eq!(outcome.error_code.as_deref(), Some("ERR_SOMETHING"));
        assert!(!outcome.completed);

        let nested = "event: error\ndata: {\"type\":\"error\",\"sequence_number\":2,\"error\":{\"type\":\"too_many_requests\",\"code\":\"too_many_requests\",\"message\":\"Too Many Requests\",\"param\":null}}\n\n";
        let outcome = run_every_split(Protocol::OpenAiResponses, false, nested.as_bytes());
        assert_eq!(outcome.error.as_deref(), Some("Too Many Requests"));
        assert_eq!(outcome.error_code.as_deref(), Some("too_many_requests"));
    }

    #[test]
    fn body_usage_and_model() {
        let body = br#"{"id":"resp_67ccd2bed1ec8190b14f964abc0542670bb6a6b452d3795b","object":"response","created_at":1741476542,"status":"completed","error":null,
            "model":"gpt-4.1-2025-04-14","output":[{"type":"message","id":"msg_1","status":"completed","role":"assistant","content":[{"type":"output_text","text":"In a peaceful grove...","annotations":[]}]}],
            "usage":{"input_tokens":36,"input_tokens_details":{"cached_tokens":0},"output_tokens":87,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":123}}"#;
        let summary = summarize(Protocol::OpenAiResponses, body);
        assert_eq!(
            summary.usage,
            Some(Usage {
                input: 36,
                output: 87,
                ..Usage::default()
            })
        );
        assert_eq!(
            summary.response_model.as_deref(),
            Some("gpt-4.1-2025-04-14")
        );
        let cached = br#"{"model":"gpt-5-codex","usage":{"input_tokens":25000,"input_tokens_details":{"cached_tokens":24576},"output_tokens":300}}"#;
        assert_eq!(
            summarize(Protocol::OpenAiResponses, cached).usage,
            Some(Usage {
                input: 424,
                output: 300,
                cache_creation: 0,
                cache_read: 24576
            })
        );
    }

    #[test]
    fn request_facts_and_sessions() {
        let body = json!({
            "model": "gpt-5-codex",
            "instructions": "You are Codex.",
            "input": [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}],
            "stream": true,
            "prompt_cache_key": "0199a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
        });
        assert_eq!(
            facts_of(Protocol::OpenAiResponses, &body),
            RequestFacts {
                model: "gpt-5-codex".into(),
                stream: true,
                session_id: Some("0199a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b".into()),
                wants_usage_chunk: false,
            }
        );
        let facts = facts_of(
            Protocol::OpenAiResponses,
            &json!({"model": "o3", "user": "bob"}),
        );
        assert_eq!(facts.session_id.as_deref(), Some("bob"));
        assert!(!facts.stream);
    }
}
