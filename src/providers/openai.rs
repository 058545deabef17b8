//! OpenAI Chat Completions: usage in responses and streams, `include_usage`, request facts.
//!
//! Stream: `data: {chat.completion.chunk}` events, then `data: [DONE]`. Usage only comes when
//! the request set `stream_options.include_usage`: then every chunk carries `"usage":null` and
//! one extra chunk before `[DONE]` has `"choices":[]` and the usage of the whole request.
//! `prompt_tokens` includes the cached tokens (`prompt_tokens_details.cached_tokens`).

use serde::Deserialize;
use serde_json::{Map, Value};

use super::errors;
use super::json::{self, Count, count};
use super::request::{RequestFacts, RequestHead};
use super::stream_state::TapState;
use super::usage::{BodySummary, Usage, top_level_summary};

/// `usage` of a chat completion (or chunk).
#[derive(Debug, Default, Deserialize)]
struct WireUsage {
    prompt_tokens: Option<Count>,
    completion_tokens: Option<Count>,
    #[serde(default)]
    prompt_tokens_details: Option<PromptDetails>,
    /// DeepSeek reports cache hits here instead.
    prompt_cache_hit_tokens: Option<Count>,
}

#[derive(Debug, Default, Deserialize)]
struct PromptDetails {
    cached_tokens: Option<Count>,
}

impl WireUsage {
    fn to_usage(&self) -> Usage {
        let prompt = count(self.prompt_tokens);
        let cached = self
            .prompt_tokens_details
            .as_ref()
            .and_then(|d| d.cached_tokens)
            .or(self.prompt_cache_hit_tokens);
        let cached = count(cached).min(prompt);
        Usage {
            input: prompt - cached,
            output: count(self.completion_tokens),
            cache_creation: 0,
            cache_read: cached,
        }
    }
}

/// A stream chunk that carries usage: only what the tap reads.
#[derive(Deserialize)]
struct Completion {
    #[serde(default)]
    choices: Option<Vec<serde::de::IgnoredAny>>,
    #[serde(default)]
    usage: Option<WireUsage>,
}

pub(crate) fn summarize_body(body: &[u8]) -> BodySummary {
    top_level_summary(body, |raw| {
        serde_json::from_slice::<WireUsage>(raw)
            .ok()
            .map(|wire| wire.to_usage())
    })
}

/// Delta fields whose non-empty string value is a generated token.
const TOKEN_FIELDS: [&[u8]; 4] = [
    b"\"content\"",
    b"\"reasoning_content\"",
    b"\"reasoning\"",
    b"\"refusal\"",
];

/// One stream event; returns true when it is the usage-only chunk and must be hidden.
///
/// Most chunks are not parsed at all: the model, first token and `[DONE]` are read off the
/// bytes; only a chunk with a non-null `"usage"` or an `"error"` is parsed.
pub(crate) fn on_stream_event(state: &mut TapState, data: &[u8]) -> bool {
    let data = json::trim(data);
    if data == b"[DONE]" {
        state.completed = true;
        return false;
    }
    if data.first() != Some(&b'{') {
        return false;
    }
    if state.model.is_none()
        && let Some(model) = json::find_value(data, b"\"model\"").and_then(plain_string)
    {
        state.set_model(model);
    }
    if !state.first_token && has_token(data) {
        state.first_token = true;
    }
    if json::has_non_null(data, b"\"error\"") {
        state.parsed += 1;
        let error = errors::parse_upstream_error(data).unwrap_or_default();
        state.set_error(
            error.message.as_deref(),
            error.code.as_deref().or(error.error_type.as_deref()),
        );
        return false;
    }
    if !json::has_non_null(data, b"\"usage\"") {
        return false;
    }
    state.parsed += 1;
    let Ok(chunk) = serde_json::from_slice::<Completion>(data) else {
        return false;
    };
    let Some(usage) = &chunk.usage else {
        return false;
    };
    state.set_usage(usage.to_usage());
    let usage_only = chunk.choices.as_ref().is_none_or(Vec::is_empty);
    state.hide_usage_chunk && usage_only
}

/// A chunk carries a generated token: a non-empty content (or reasoning, refusal) string, or
/// tool calls.
fn has_token(data: &[u8]) -> bool {
    let non_empty_string = |v: &[u8]| v.len() > 2 && v[0] == b'"';
    TOKEN_FIELDS
        .iter()
        .any(|key| json::find_value(data, key).is_some_and(non_empty_string))
        || json::find_value(data, b"\"tool_calls\"").is_some_and(json::non_empty_array)
        || json::find_value(data, b"\"function_call\"").is_some_and(|v| v.first() == Some(&b'{'))
}

/// A raw JSON string without escapes, as `&str`.
pub(crate) fn plain_string(raw: &[u8]) -> Option<&str> {
    let inner = raw.strip_prefix(b"\"")?.strip_suffix(b"\"")?;
    if inner.contains(&b'\\') {
        return None;
    }
    std::str::from_utf8(inner).ok()
}

pub(crate) fn request_facts(head: &RequestHead<'_>) -> RequestFacts {
    RequestFacts {
        model: head.model().to_owned(),
        stream: head.stream(),
        session_id: session_id(head),
        wants_usage_chunk: head.include_usage(),
    }
}

/// OpenAI-style session: `prompt_cache_key` (Codex sends its conversation id there), else
/// `user`.
pub(crate) fn session_id(head: &RequestHead<'_>) -> Option<String> {
    head.prompt_cache_key()
        .or_else(|| head.user())
        .map(str::to_owned)
}

/// OpenAI Chat streaming: make sure the upstream reports usage by setting
/// `stream_options.include_usage = true`. Returns whether the client had asked for it itself
/// (when it had not, hide the usage chunk: [`StreamTap::new`](super::StreamTap::new) with
/// `hide_usage_chunk = true`). A body that is not an object is left alone (returns false).
pub fn ensure_include_usage(body: &mut Value) -> bool {
    let Some(object) = body.as_object_mut() else {
        return false;
    };
    let options = object
        .entry("stream_options")
        .or_insert_with(|| Value::Object(Map::new()));
    if !options.is_object() {
        *options = Value::Object(Map::new());
    }
    let Some(options) = options.as_object_mut() else {
        return false;
    };
    let had = options.get("include_usage").and_then(Value::as_bool) == Some(true);
    options.insert("include_usage".to_owned(), Value::Bool(true));
    had
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::dispatch::facts_of;
    use crate::providers::tap::test_support::{crlf, run, run_every_split};
    use crate::providers::{Protocol, StreamTap, summarize_body as summarize};
    use bytes::Bytes;
    use serde_json::json;

    const STREAM: &str = include_str!("fixtures/openai_chat_stream.sse");

    /// The fixture without its usage-only chunk.
    fn without_usage_chunk(stream: &str) -> String {
        let start = stream.find("data: {\"id\":\"chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG\",\"object\":\"chat.completion.chunk\",\"created\":1741570283,\"model\":\"gpt-4o-2024-08-06\",\"service_tier\":\"default\",\"system_fingerprint\":\"fp_eb9dce56a8\",\"choices\":[],").unwrap();
        let end = stream.find("data: [DONE]").unwrap();
        format!("{}{}", &stream[..start], &stream[end..])
    }

    const EXPECTED: Usage = Usage {
        input: 128,
        output: 12,
        cache_creation: 0,
        cache_read: 1920,
    };

    #[test]
    fn stream_usage_with_cached_tokens() {
        let outcome = run_every_split(Protocol::OpenAiChat, false, STREAM.as_bytes());
        assert_eq!(outcome.forwarded, STREAM.as_bytes());
        assert_eq!(outcome.usage, EXPECTED);
        assert!(outcome.usage_known && outcome.first_token && outcome.completed);
        assert_eq!(outcome.model.as_deref(), Some("gpt-4o-2024-08-06"));
    }

    #[test]
    fn hidden_usage_chunk_is_cut_out_exactly() {
        let expected = without_usage_chunk(STREAM);
        let usage_line = STREAM
            .lines()
            .find(|l| l.contains("\"choices\":[]"))
            .unwrap();
        assert_eq!(STREAM.len() - expected.len(), usage_line.len() + 2);
        let outcome = run_every_split(Protocol::OpenAiChat, true, STREAM.as_bytes());
        assert_eq!(String::from_utf8(outcome.forwarded).unwrap(), expected);
        assert_eq!(outcome.usage, EXPECTED);
        assert!(outcome.usage_known && outcome.first_token && outcome.completed);

        let input = crlf(STREAM);
        let outcome = run_every_split(Protocol::OpenAiChat, true, input.as_bytes());
        assert_eq!(
            String::from_utf8(outcome.forwarded).unwrap(),
            crlf(&expected)
        );
        assert_eq!(outcome.usage, EXPECTED);
    }

    #[test]
    fn hiding_reuses_the_chunk_when_it_can() {
        let mut tap = StreamTap::new(Protocol::OpenAiChat, true);
        let usage_at = STREAM.find("\"choices\":[],").unwrap();
        let usage_start = STREAM[..usage_at].rfind("data: ").unwrap();
        let done = STREAM.find("data: [DONE]").unwrap();
        // Everything before the usage chunk: forwarded as is.
        let head = Bytes::copy_from_slice(&STREAM.as_bytes()[..usage_start]);
        let out = tap.feed(head.clone());
        assert_eq!(out.as_ptr(), head.as_ptr());
        // The usage chunk and [DONE] together: a slice of the same buffer, no copy.
        let tail = Bytes::copy_from_slice(&STREAM.as_bytes()[usage_start..]);
        let out = tap.feed(tail.clone());
        assert_eq!(&out[..], &STREAM.as_bytes()[done..]);
        assert_eq!(out.as_ptr(), tail[done - usage_start..].as_ptr());
        assert_eq!(tap.hidden_events(), 1);
        assert!(tap.completed());
    }

    #[test]
    fn only_the_usage_chunk_is_parsed() {
        let mut tap = StreamTap::new(Protocol::OpenAiChat, false);
        let mut input = String::new();
        let chunk = STREAM.lines().nth(2).unwrap();
        for _ in 0..200 {
            input.push_str(chunk);
            input.push_str("\n\n");
        }
        input.push_str(STREAM);
        tap.feed(Bytes::from(input));
        assert_eq!(tap.parsed_events(), 1);
        assert_eq!(tap.usage(), EXPECTED);
        assert_eq!(tap.response_model(), Some("gpt-4o-2024-08-06"));
    }

    #[test]
    fn usage_in_a_chunk_with_choices_is_read_but_not_hidden() {
        let input = "data: {\"model\":\"deepseek-chat\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"},\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":100,\"completion_tokens\":2,\"prompt_cache_hit_tokens\":64,\"prompt_cache_miss_tokens\":36}}\n\ndata: [DONE]\n\n";
        let outcome = run_every_split(Protocol::OpenAiChat, true, input.as_bytes());
        assert_eq!(outcome.forwarded, input.as_bytes());
        assert_eq!(
            outcome.usage,
            Usage {
                input: 36,
                output: 2,
                cache_creation: 0,
                cache_read: 64
            }
        );
    }

    #[test]
    fn first_token_from_content_or_tool_calls_only() {
        let role_only = "data: {\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\",\"refusal\":null}}]}\n\n";
        let outcome = run(Protocol::OpenAiChat, false, role_only.as_bytes(), &[]);
        assert!(!outcome.first_token);
        let tool = "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"index\":0,\"id\":\"call_abc\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"arguments\":\"\"}}]}}]}\n\n";
        assert!(run(Protocol::OpenAiChat, false, tool.as_bytes(), &[]).first_token);
        let reasoning = "data: {\"choices\":[{\"index\":0,\"delta\":{\"reasoning_content\":\"Let me think\"}}]}\n\n";
        assert!(run(Protocol::OpenAiChat, false, reasoning.as_bytes(), &[]).first_token);
        let empty_tools = "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[]}}]}\n\n";
        assert!(!run(Protocol::OpenAiChat, false, empty_tools.as_bytes(), &[]).first_token);
    }

    #[test]
    fn stream_error_data() {
        let input = format!(
            "{}data: {{\"error\":{{\"message\":\"The server had an error while processing your request. Sorry about that!\",\"type\":\"server_error\",\"param\":null,\"code\":null}}}}\n\n",
            STREAM.lines().take(4).collect::<Vec<_>>().join("\n") + "\n"
        );
        let outcome = run_every_split(Protocol::OpenAiChat, true, input.as_bytes());
        assert_eq!(outcome.forwarded, input.as_bytes());
        assert_eq!(
            outcome.error.as_deref(),
            Some("The server had an error while processing your request. Sorry about that!")
        );
        assert_eq!(outcome.error_code.as_deref(), Some("server_error"));
        assert!(!outcome.completed && !outcome.usage_known);
    }

    #[test]
    fn body_usage_and_model() {
        let body = br#"{"id":"chatcmpl-123","object":"chat.completion","created":1741569952,"model":"gpt-4.1-2025-04-14",
            "choices":[{"index":0,"message":{"role":"assistant","content":"Hello! How can I assist you today?","refusal":null,"annotations":[]},"logprobs":null,"finish_reason":"stop"}],
            "usage":{"prompt_tokens":19,"completion_tokens":10,"total_tokens":29,
                     "prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},
                     "completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}},
            "service_tier":"default"}"#;
        let summary = summarize(Protocol::OpenAiChat, body);
        assert_eq!(
            summary.usage,
            Some(Usage {
                input: 19,
                output: 10,
                ..Usage::default()
            })
        );
        assert_eq!(
            summary.response_model.as_deref(),
            Some("gpt-4.1-2025-04-14")
        );
        let cached = br#"{"model":"gpt-4o","usage":{"prompt_tokens":3000,"completion_tokens":5,"prompt_tokens_details":{"cached_tokens":2944}}}"#;
        assert_eq!(
            summarize(Protocol::OpenAiChat, cached).usage,
            Some(Usage {
                input: 56,
                output: 5,
                cache_creation: 0,
                cache_read: 2944
            })
        );
        let error = br#"{"error":{"message":"bad","type":"invalid_request_error","param":null,"code":null}}"#;
        assert_eq!(
            summarize(Protocol::OpenAiChat, error),
            BodySummary::default()
        );
    }

    #[test]
    fn include_usage_is_ensured() {
        let mut body = json!({"model": "gpt-4o", "stream": true, "messages": []});
        assert!(!ensure_include_usage(&mut body));
        assert_eq!(body["stream_options"], json!({"include_usage": true}));
        assert!(ensure_include_usage(&mut body));

        let mut body = json!({"stream_options": {"include_usage": false, "other": 1}});
        assert!(!ensure_include_usage(&mut body));
        assert_eq!(
            body["stream_options"],
            json!({"include_usage": true, "other": 1})
        );

        let mut body = json!({"stream_options": null});
        assert!(!ensure_include_usage(&mut body));
        assert_eq!(body["stream_options"]["include_usage"], true);

        let mut body = json!("not an object");
        assert!(!ensure_include_usage(&mut body));
        assert_eq!(body, json!("not an object"));
    }

    #[test]
    fn request_facts_and_sessions() {
        let body = json!({
            "model": "gpt-4o",
            "stream": true,
            "stream_options": {"include_usage": true},
            "user": "user-42",
            "messages": [{"role": "user", "content": "hi"}],
        });
        assert_eq!(
            facts_of(Protocol::OpenAiChat, &body),
            RequestFacts {
                model: "gpt-4o".into(),
                stream: true,
                session_id: Some("user-42".into()),
                wants_usage_chunk: true,
            }
        );
        let body = json!({"model": "gpt-5", "prompt_cache_key": "conv-7", "user": "u"});
        let facts = facts_of(Protocol::OpenAiChat, &body);
        assert_eq!(facts.session_id.as_deref(), Some("conv-7"));
        assert!(!facts.stream && !facts.wants_usage_chunk);
        assert_eq!(
            facts_of(Protocol::OpenAiChat, &json!({"user": ""})).session_id,
            None
        );
    }
}
