//! Gemini (`generateContent` / `streamGenerateContent`): usage in responses and streams, the
//! model and action from the path, request facts.
//!
//! Every response chunk is a whole `GenerateContentResponse` whose `usageMetadata` is
//! cumulative: `promptTokenCount` (includes `cachedContentTokenCount`), `candidatesTokenCount`,
//! `thoughtsTokenCount` (billed as output, not included in the candidates), and
//! `toolUsePromptTokenCount` (billed as input). The last chunk has a `finishReason`.
//! With `alt=sse` chunks come as `data:` events (CRLF-framed); without it, as one streamed JSON
//! array. Gemini reports no cache writes.

use std::borrow::Cow;

use serde::Deserialize;

use super::json::{self, Count, count};
use super::request::RequestFacts;
use super::stream_state::TapState;
use super::usage::{BodySummary, Usage};
use super::{errors, openai};

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireUsage {
    prompt_token_count: Option<Count>,
    candidates_token_count: Option<Count>,
    cached_content_token_count: Option<Count>,
    thoughts_token_count: Option<Count>,
    tool_use_prompt_token_count: Option<Count>,
}

impl WireUsage {
    fn to_usage(&self) -> Usage {
        let prompt =
            count(self.prompt_token_count).saturating_add(count(self.tool_use_prompt_token_count));
        let cached = count(self.cached_content_token_count).min(prompt);
        Usage {
            input: prompt - cached,
            output: count(self.candidates_token_count)
                .saturating_add(count(self.thoughts_token_count)),
            cache_creation: 0,
            cache_read: cached,
        }
    }
}

/// A `GenerateContentResponse`: only what is read here.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GenerateResponse<'a> {
    #[serde(borrow, default)]
    model_version: Option<Cow<'a, str>>,
    #[serde(default)]
    usage_metadata: Option<WireUsage>,
}

pub(crate) fn summarize_body(body: &[u8]) -> BodySummary {
    let responses: Vec<GenerateResponse<'_>> = if json::trim(body).first() == Some(&b'[') {
        match serde_json::from_slice(body) {
            Ok(list) => list,
            Err(_) => return BodySummary::default(),
        }
    } else {
        match serde_json::from_slice(body) {
            Ok(one) => vec![one],
            Err(_) => return BodySummary::default(),
        }
    };
    BodySummary {
        usage: responses
            .iter()
            .rev()
            .find_map(|r| r.usage_metadata.as_ref())
            .map(WireUsage::to_usage),
        response_model: responses
            .iter()
            .find_map(|r| r.model_version.as_deref())
            .filter(|m| !m.is_empty())
            .map(str::to_owned),
    }
}

/// One response chunk (an SSE `data` or a JSON-array element). Nothing is parsed but the small
/// `usageMetadata` object (and an `error`): the rest is located by byte search.
pub(crate) fn on_stream_event(state: &mut TapState, data: &[u8]) {
    let data = json::trim(data);
    if data.first() != Some(&b'{') {
        return;
    }
    // `usageMetadata` and `modelVersion` follow the candidates, whose function-call arguments
    // may use any key: they are searched from the end.
    if state.model.is_none()
        && let Some(model) =
            json::find_last_value(data, b"\"modelVersion\"").and_then(openai::plain_string)
    {
        state.set_model(model);
    }
    if !state.first_token && json::find_value(data, b"\"parts\"").is_some_and(json::non_empty_array)
    {
        state.first_token = true;
    }
    if let Some(raw) = json::find_last_value(data, b"\"usageMetadata\"") {
        state.parsed += 1;
        if let Ok(usage) = serde_json::from_slice::<WireUsage>(raw) {
            state.set_usage(usage.to_usage());
        }
    }
    // The first candidate's finishReason follows its content; a prompt's blockReason (in
    // promptFeedback) follows all candidates.
    let past_content = json::after_value(data, b"\"content\"");
    let is_string = |v: &[u8]| v.first() == Some(&b'"');
    if json::find_value(past_content, b"\"finishReason\"").is_some_and(is_string)
        || json::find_value(past_content, b"\"blockReason\"").is_some_and(is_string)
    {
        state.completed = true;
    }
    // An error chunk is `{"error": {…}}`; an "error" key elsewhere may be a function argument.
    if json::first_key(data) == Some(b"error") {
        state.parsed += 1;
        let error = errors::parse_upstream_error(data).unwrap_or_default();
        state.set_error(
            error.message.as_deref(),
            error.status.as_deref().or(error.code.as_deref()),
        );
    }
}

/// The action of a Gemini model call (`…/models/{model}:{action}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    GenerateContent,
    StreamGenerateContent,
    CountTokens,
}

/// `{model}:{action}` (optionally prefixed `models/`) → model and action. `None` for a missing
/// model or an action relaybox does not relay.
#[must_use]
pub fn parse_model_action(segment: &str) -> Option<(&str, Action)> {
    let segment = segment.strip_prefix("models/").unwrap_or(segment);
    let (model, action) = segment.rsplit_once(':')?;
    let action = match action {
        "generateContent" => Action::GenerateContent,
        "streamGenerateContent" => Action::StreamGenerateContent,
        "countTokens" => Action::CountTokens,
        _ => return None,
    };
    let model = model.trim();
    (!model.is_empty()).then_some((model, action))
}

/// Request facts of a Gemini call: the model and streaming come from the path (see
/// [`parse_model_action`]), not the body; Gemini has no session id.
#[must_use]
pub fn request_facts(model: &str, stream: bool) -> RequestFacts {
    RequestFacts {
        model: model.trim().to_owned(),
        stream,
        session_id: None,
        wants_usage_chunk: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::tap::test_support::{crlf, run, run_every_split};
    use crate::providers::{Protocol, StreamTap, summarize_body as summarize};
    use serde_json::json;

    const STREAM: &str = include_str!("fixtures/gemini_stream.sse");
    const EXPECTED: Usage = Usage {
        input: 1024,
        output: 56,
        cache_creation: 0,
        cache_read: 4096,
    };

    #[test]
    fn sse_stream_usage_with_cached_and_thought_tokens() {
        // Gemini frames its events with CRLF.
        let input = crlf(STREAM);
        let outcome = run_every_split(Protocol::Gemini, false, input.as_bytes());
        assert_eq!(outcome.forwarded, input.as_bytes());
        assert_eq!(outcome.usage, EXPECTED);
        assert_eq!(outcome.usage.total(), 5176);
        assert!(outcome.usage_known && outcome.first_token && outcome.completed);
        assert_eq!(outcome.model.as_deref(), Some("gemini-2.5-flash"));
        assert_eq!(outcome.error, None);
    }

    /// The same chunks as a streamed JSON array (`:streamGenerateContent` without `alt=sse`).
    fn as_json_array(stream: &str) -> String {
        let chunks: Vec<&str> = stream
            .lines()
            .filter_map(|l| l.strip_prefix("data: "))
            .collect();
        format!("[{}]", chunks.join(",\r\n"))
    }

    #[test]
    fn json_array_stream() {
        let input = as_json_array(STREAM);
        let outcome = run_every_split(Protocol::Gemini, false, input.as_bytes());
        assert_eq!(outcome.forwarded, input.as_bytes());
        assert_eq!(outcome.usage, EXPECTED);
        assert!(outcome.usage_known && outcome.first_token && outcome.completed);
        assert_eq!(outcome.model.as_deref(), Some("gemini-2.5-flash"));
        // Leading whitespace before the array.
        let padded = format!("\r\n {input}");
        let outcome = run(Protocol::Gemini, false, padded.as_bytes(), &[1, 3]);
        assert_eq!(outcome.usage, EXPECTED);
    }

    #[test]
    fn progress_chunk_by_chunk() {
        let input = crlf(STREAM);
        let mut tap = StreamTap::new(Protocol::Gemini, false);
        let second = input
            .find("data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"The sky\"")
            .unwrap();
        tap.feed(bytes::Bytes::copy_from_slice(&input.as_bytes()[..second]));
        // Thoughts count as the first token; the prompt side is known from the first chunk.
        assert!(tap.saw_first_token());
        assert!(!tap.completed());
        assert_eq!(
            tap.usage(),
            Usage {
                input: 1024,
                output: 50,
                cache_creation: 0,
                cache_read: 4096
            }
        );
        tap.feed(bytes::Bytes::copy_from_slice(&input.as_bytes()[second..]));
        assert!(tap.completed());
        assert_eq!(tap.usage(), EXPECTED);
    }

    #[test]
    fn blocked_prompt_ends_the_stream() {
        let input = "data: {\"promptFeedback\": {\"blockReason\": \"SAFETY\"},\"usageMetadata\": {\"promptTokenCount\": 8,\"totalTokenCount\": 8},\"modelVersion\": \"gemini-2.5-pro\"}\r\n\r\n";
        let outcome = run_every_split(Protocol::Gemini, false, input.as_bytes());
        assert!(outcome.completed);
        assert!(!outcome.first_token);
        assert_eq!(
            outcome.usage,
            Usage {
                input: 8,
                ..Usage::default()
            }
        );
    }

    #[test]
    fn stream_error_chunk() {
        let first = crlf(STREAM.lines().next().unwrap()) + "\r\n\r\n";
        let input = format!(
            "{first}data: {{\"error\": {{\"code\": 503,\"message\": \"The model is overloaded. Please try again later.\",\"status\": \"UNAVAILABLE\"}}}}\r\n\r\n"
        );
        let outcome = run_every_split(Protocol::Gemini, false, input.as_bytes());
        assert_eq!(
            outcome.error.as_deref(),
            Some("The model is overloaded. Please try again later.")
        );
        assert_eq!(outcome.error_code.as_deref(), Some("UNAVAILABLE"));
        assert!(!outcome.completed);
        // In a JSON-array stream too.
        let array = format!(
            "[{},\r\n{{\"error\": {{\"code\": 500,\"message\": \"Internal error encountered.\",\"status\": \"INTERNAL\"}}}}]",
            STREAM
                .lines()
                .next()
                .unwrap()
                .strip_prefix("data: ")
                .unwrap()
        );
        let outcome = run_every_split(Protocol::Gemini, false, array.as_bytes());
        assert_eq!(
            outcome.error.as_deref(),
            Some("Internal error encountered.")
        );
    }

    #[test]
    fn function_call_arguments_do_not_confuse_the_tap() {
        let input = "data: {\"candidates\": [{\"content\": {\"parts\": [{\"functionCall\": {\"name\": \"report\",\"args\": {\"error\": \"disk full\",\"finishReason\": \"none\",\"usageMetadata\": {\"promptTokenCount\": 999},\"modelVersion\": \"fake\"}}}],\"role\": \"model\"},\"index\": 0}],\"usageMetadata\": {\"promptTokenCount\": 40,\"candidatesTokenCount\": 7,\"totalTokenCount\": 47},\"modelVersion\": \"gemini-2.5-pro\"}\r\n\r\n";
        let outcome = run_every_split(Protocol::Gemini, false, input.as_bytes());
        assert_eq!(outcome.error, None);
        assert_eq!(
            outcome.usage,
            Usage {
                input: 40,
                output: 7,
                ..Usage::default()
            }
        );
        assert_eq!(outcome.model.as_deref(), Some("gemini-2.5-pro"));
        assert!(outcome.first_token);
        assert!(!outcome.completed);
    }

    #[test]
    fn body_usage_and_model() {
        let body = br#"{"candidates":[{"content":{"parts":[{"text":"Hello there"}],"role":"model"},"finishReason":"STOP","index":0}],
            "usageMetadata":{"promptTokenCount":12,"candidatesTokenCount":3,"totalTokenCount":40,"thoughtsTokenCount":25,
                             "promptTokensDetails":[{"modality":"TEXT","tokenCount":12}]},
            "modelVersion":"gemini-2.5-pro","responseId":"abc"}"#;
        let summary = summarize(Protocol::Gemini, body);
        assert_eq!(
            summary.usage,
            Some(Usage {
                input: 12,
                output: 28,
                ..Usage::default()
            })
        );
        assert_eq!(summary.response_model.as_deref(), Some("gemini-2.5-pro"));

        let tools = br#"{"usageMetadata":{"promptTokenCount":100,"cachedContentTokenCount":60,"toolUsePromptTokenCount":20,"candidatesTokenCount":5}}"#;
        assert_eq!(
            summarize(Protocol::Gemini, tools).usage,
            Some(Usage {
                input: 60,
                output: 5,
                cache_creation: 0,
                cache_read: 60
            })
        );

        let array = as_json_array(STREAM);
        let summary = summarize(Protocol::Gemini, array.as_bytes());
        assert_eq!(summary.usage, Some(EXPECTED));
        assert_eq!(summary.response_model.as_deref(), Some("gemini-2.5-flash"));

        let error =
            br#"{"error":{"code":400,"message":"API key not valid.","status":"INVALID_ARGUMENT"}}"#;
        assert_eq!(summarize(Protocol::Gemini, error), BodySummary::default());
    }

    #[test]
    fn model_action_and_request_facts() {
        assert_eq!(
            parse_model_action("gemini-2.5-pro:streamGenerateContent"),
            Some(("gemini-2.5-pro", Action::StreamGenerateContent))
        );
        assert_eq!(
            parse_model_action("models/gemini-2.5-flash:generateContent"),
            Some(("gemini-2.5-flash", Action::GenerateContent))
        );
        assert_eq!(
            parse_model_action("x:countTokens"),
            Some(("x", Action::CountTokens))
        );
        assert_eq!(parse_model_action("x:embedContent"), None);
        assert_eq!(parse_model_action(":generateContent"), None);
        assert_eq!(parse_model_action("gemini-2.5-pro"), None);

        let body = json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]});
        let facts = request_facts("gemini-2.5-pro", true);
        assert_eq!(
            facts,
            RequestFacts {
                model: "gemini-2.5-pro".into(),
                stream: true,
                session_id: None,
                wants_usage_chunk: false,
            }
        );
        assert_eq!(
            crate::providers::request_facts(Protocol::Gemini, body.to_string().as_bytes())
                .expect("a JSON object"),
            RequestFacts::default()
        );
    }
}
