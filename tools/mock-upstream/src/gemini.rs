//! Gemini: `POST /v1beta/models/{model}:generateContent`,
//! `:streamGenerateContent` (`?alt=sse` for SSE, else a streamed JSON array),
//! `:countTokens`, and `GET /v1beta/models` (`/v1/...` works too).

use bytes::Bytes;
use serde_json::{Value, json};

use crate::Reply;
use crate::error::ApiError;
use crate::reply::{
    Content, Generation, Media, MediaKind, Prompt, Reasoning, ToolSpec, Usage,
    estimate_input_tokens,
};
use crate::scenario::Scenario;
use crate::sse::data_event_crlf;

pub(crate) const SSE_CONTENT_TYPE: &str = "text/event-stream";
pub(crate) const JSON_CONTENT_TYPE: &str = "application/json; charset=UTF-8";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    Generate,
    Stream,
    CountTokens,
}

/// How a generation is delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Delivery {
    Whole,
    Sse,
    JsonArray,
}

/// `models/{model}:{action}` (the part after `/v1beta/`) into model and action.
pub(crate) fn parse_model_action(rest: &str) -> Option<(&str, Action)> {
    let (model, action) = rest.strip_prefix("models/")?.rsplit_once(':')?;
    let action = match action {
        "generateContent" => Action::Generate,
        "streamGenerateContent" => Action::Stream,
        "countTokens" => Action::CountTokens,
        _ => return None,
    };
    (!model.is_empty()).then_some((model, action))
}

pub(crate) fn generate(
    model: &str,
    delivery: Delivery,
    body: &Value,
    scenario: &Scenario,
    seq: u64,
) -> Result<Reply, ApiError> {
    let contents = validate(body)?;
    check_function_turns(contents)?;
    let prompt = prompt(body, contents)?;
    let generation = Generation::new(model, &prompt, body, scenario, seq);
    let shown = Shown {
        thoughts: include_thoughts(body),
    };
    let chunks = shown.chunks(&generation);
    Ok(match delivery {
        Delivery::Whole => Reply::Json(chunk(&generation, json!(shown.parts(&generation)), true)),
        Delivery::Sse => Reply::Stream {
            content_type: SSE_CONTENT_TYPE,
            events: chunks.iter().map(data_event_crlf).collect(),
        },
        Delivery::JsonArray => Reply::Stream {
            content_type: JSON_CONTENT_TYPE,
            events: json_array(&chunks),
        },
    })
}

pub(crate) fn count_tokens(body: &Value, scenario: &Scenario) -> Result<Reply, ApiError> {
    let total = scenario
        .input_tokens
        .unwrap_or_else(|| estimate_input_tokens(body));
    Ok(Reply::Json(json!({ "totalTokens": total })))
}

pub(crate) fn models() -> Reply {
    let models: Vec<Value> = [
        ("gemini-2.5-pro", "Gemini 2.5 Pro"),
        ("gemini-2.5-flash", "Gemini 2.5 Flash"),
        ("gemini-2.0-flash", "Gemini 2.0 Flash"),
    ]
    .iter()
    .map(|(id, name)| {
        json!({
            "name": format!("models/{id}"),
            "displayName": name,
            "supportedGenerationMethods": ["generateContent", "streamGenerateContent", "countTokens"],
        })
    })
    .collect();
    Reply::Json(json!({ "models": models }))
}

/// `{"error":{"code":N,"message":…,"status":…}}`; `error_code=X` sets `status`.
pub(crate) fn error_body(error: &ApiError) -> Value {
    let status = error
        .code
        .clone()
        .unwrap_or_else(|| status_name(error.status).to_owned());
    json!({"error": {"code": error.status, "message": error.message, "status": status}})
}

fn status_name(status: u16) -> &'static str {
    match status {
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        409 => "ABORTED",
        429 => "RESOURCE_EXHAUSTED",
        499 => "CANCELLED",
        501 => "UNIMPLEMENTED",
        502 | 503 | 529 => "UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        500..=599 => "INTERNAL",
        _ => "INVALID_ARGUMENT",
    }
}

fn validate(body: &Value) -> Result<&[Value], ApiError> {
    body.get("contents")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .ok_or_else(|| {
            ApiError::invalid("* GenerateContentRequest.contents: contents is not specified")
        })
}

/// A field by its REST (camelCase) or proto (snake_case) name.
fn field<'a>(value: &'a Value, camel: &str, snake: &str) -> Option<&'a Value> {
    value.get(camel).or_else(|| value.get(snake))
}

fn parts(content: &Value) -> &[Value] {
    content
        .get("parts")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice)
}

fn count_parts(content: &Value, camel: &str, snake: &str) -> usize {
    parts(content)
        .iter()
        .filter(|p| field(p, camel, snake).is_some())
        .count()
}

/// Gemini's rule: a turn of function responses comes right after the model's function-call
/// turn and answers each of its calls.
fn check_function_turns(contents: &[Value]) -> Result<(), ApiError> {
    for (i, content) in contents.iter().enumerate() {
        let responses = count_parts(content, "functionResponse", "function_response");
        if responses == 0 {
            continue;
        }
        let calls = i.checked_sub(1).map_or(0, |p| {
            count_parts(&contents[p], "functionCall", "function_call")
        });
        if calls == 0 {
            return Err(ApiError::invalid(
                "Please ensure that function response turn comes immediately after a function \
                 call turn.",
            ));
        }
        if calls != responses {
            return Err(ApiError::invalid(
                "Please ensure that the number of function response parts is equal to the \
                 number of function call parts of the function call turn.",
            ));
        }
    }
    Ok(())
}

fn thinking_config(body: &Value) -> Option<&Value> {
    field(body, "generationConfig", "generation_config")
        .and_then(|c| field(c, "thinkingConfig", "thinking_config"))
}

/// `thinkingConfig.includeThoughts`: the thought parts are sent, not only counted.
fn include_thoughts(body: &Value) -> bool {
    thinking_config(body)
        .and_then(|t| field(t, "includeThoughts", "include_thoughts"))
        .and_then(Value::as_bool)
        == Some(true)
}

/// Thinking is on with `includeThoughts` or a `thinkingBudget` above 0 (or -1, dynamic).
fn thinking(body: &Value) -> bool {
    let budget = thinking_config(body)
        .and_then(|t| field(t, "thinkingBudget", "thinking_budget"))
        .and_then(Value::as_i64);
    include_thoughts(body) || budget.is_some_and(|b| b > 0 || b == -1)
}

/// A `functionResponse.response` as text: the value of its only member when that is a string
/// (`{"result": "18 C"}` gives `18 C`), else its JSON.
fn response_text(response: Option<&Value>) -> String {
    match response {
        Some(Value::Object(map)) if map.len() == 1 => match map.values().next() {
            Some(Value::String(text)) => text.clone(),
            _ => Value::Object(map.clone()).to_string(),
        },
        Some(Value::String(text)) => text.clone(),
        Some(other) => other.to_string(),
        None => String::new(),
    }
}

fn media_kind(mime: &str) -> MediaKind {
    if mime.starts_with("image/") {
        MediaKind::Image
    } else {
        MediaKind::Document
    }
}

fn prompt<'a>(body: &'a Value, contents: &'a [Value]) -> Result<Prompt<'a>, ApiError> {
    let mut prompt = Prompt {
        thinking: thinking(body),
        ..Prompt::default()
    };
    if let Some(last) = contents.last() {
        prompt.tool_results = parts(last)
            .iter()
            .filter_map(|p| field(p, "functionResponse", "function_response"))
            .map(|r| response_text(r.get("response")))
            .collect();
    }
    for (i, content) in contents.iter().enumerate() {
        for (j, part) in parts(content).iter().enumerate() {
            if let Some(inline) = field(part, "inlineData", "inline_data") {
                let mime = field(inline, "mimeType", "mime_type")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let data = inline
                    .get("data")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let medium = Media::base64(media_kind(mime), mime, data).map_err(|e| {
                    ApiError::invalid(format!(
                        "Invalid value at 'contents[{i}].parts[{j}].inline_data.data' \
                         (TYPE_BYTES), Base64 decoding failed: {e}"
                    ))
                })?;
                prompt.media.push(medium);
            } else if let Some(file) = field(part, "fileData", "file_data") {
                let mime = field(file, "mimeType", "mime_type")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let uri = field(file, "fileUri", "file_uri")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                prompt.media.push(Media::url(media_kind(mime), uri));
            }
        }
    }
    let mode = body
        .pointer("/toolConfig/functionCallingConfig/mode")
        .or_else(|| body.pointer("/tool_config/function_calling_config/mode"))
        .and_then(Value::as_str);
    if !mode.is_some_and(|m| m.eq_ignore_ascii_case("none")) {
        prompt.tools = body
            .get("tools")
            .and_then(Value::as_array)
            .map(|tools| {
                tools
                    .iter()
                    .filter_map(|tool| {
                        field(tool, "functionDeclarations", "function_declarations")?.as_array()
                    })
                    .flatten()
                    .filter_map(|declaration| {
                        Some(ToolSpec {
                            name: declaration.get("name")?.as_str()?,
                            schema: declaration
                                .get("parameters")
                                .or_else(|| declaration.get("parametersJsonSchema")),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
    }
    Ok(prompt)
}

/// What a reply shows: thought parts only with `includeThoughts` (the tokens are counted
/// either way); the first answer part carries the `thoughtSignature` whenever thinking is on.
struct Shown {
    thoughts: bool,
}

impl Shown {
    fn thought_parts<'a>(&self, generation: &'a Generation) -> Option<&'a Reasoning> {
        generation.reasoning.as_ref().filter(|_| self.thoughts)
    }

    /// The answer's parts (texts are given, calls come whole); the first gets the signature.
    fn answer_parts(generation: &Generation, texts: &[String]) -> Vec<Value> {
        let mut parts: Vec<Value> = match &generation.content {
            Content::Text { .. } => texts.iter().map(|t| json!({ "text": t })).collect(),
            Content::Tools(calls) => calls
                .iter()
                .map(|call| json!({ "functionCall": { "name": call.name, "args": call.input } }))
                .collect(),
        };
        if let (Some(reasoning), Some(first)) = (&generation.reasoning, parts.first_mut()) {
            first["thoughtSignature"] = json!(reasoning.signature);
        }
        parts
    }

    /// The parts of a whole reply.
    fn parts(&self, generation: &Generation) -> Vec<Value> {
        let text = match &generation.content {
            Content::Text { text, .. } => vec![text.clone()],
            Content::Tools(_) => Vec::new(),
        };
        self.thought_parts(generation)
            .map(|r| json!({"text": r.text, "thought": true}))
            .into_iter()
            .chain(Self::answer_parts(generation, &text))
            .collect()
    }

    /// The chunks of a streamed reply: one per thought piece, then one per text piece (the
    /// first carrying the signature), or one with every function call whole.
    fn chunks(&self, generation: &Generation) -> Vec<Value> {
        let mut chunks: Vec<Value> = self
            .thought_parts(generation)
            .map(|r| {
                r.pieces
                    .iter()
                    .map(|p| json!([{"text": p, "thought": true}]))
                    .collect()
            })
            .unwrap_or_default();
        match &generation.content {
            Content::Text { pieces, .. } => chunks.extend(
                Self::answer_parts(generation, pieces)
                    .into_iter()
                    .map(|part| json!([part])),
            ),
            Content::Tools(_) => chunks.push(json!(Self::answer_parts(generation, &[]))),
        }
        let last = chunks.len().saturating_sub(1);
        chunks
            .into_iter()
            .enumerate()
            .map(|(i, parts)| chunk(generation, parts, i == last))
            .collect()
    }
}

/// Final usage; `cachedContentTokenCount` and `thoughtsTokenCount` only when not 0.
fn usage(usage: &Usage) -> Value {
    let prompt = usage.prompt_total();
    let mut metadata = json!({
        "promptTokenCount": prompt,
        "candidatesTokenCount": usage.output,
        "totalTokenCount": prompt + usage.output + usage.reasoning,
    });
    if usage.cache_read > 0 {
        metadata["cachedContentTokenCount"] = json!(usage.cache_read);
    }
    if usage.reasoning > 0 {
        metadata["thoughtsTokenCount"] = json!(usage.reasoning);
    }
    metadata
}

/// One `GenerateContentResponse`. Intermediate stream chunks carry only the
/// prompt figures; the final one has the finish reason and complete usage.
fn chunk(generation: &Generation, parts: Value, last: bool) -> Value {
    let mut candidate = json!({"content": {"parts": parts, "role": "model"}, "index": 0});
    let usage_metadata = if last {
        candidate["finishReason"] = json!("STOP");
        usage(&generation.usage)
    } else {
        let prompt = generation.usage.prompt_total();
        json!({"promptTokenCount": prompt, "totalTokenCount": prompt})
    };
    json!({
        "candidates": [candidate],
        "usageMetadata": usage_metadata,
        "modelVersion": generation.model,
        "responseId": generation.id(""),
    })
}

/// A JSON array streamed element by element: `[a`, `,\r\nb`, …, `]`.
fn json_array(chunks: &[Value]) -> Vec<Bytes> {
    let last = chunks.len().saturating_sub(1);
    chunks
        .iter()
        .enumerate()
        .map(|(i, chunk)| {
            let open = if i == 0 { "[" } else { ",\r\n" };
            let close = if i == last { "]" } else { "" };
            Bytes::from(format!("{open}{chunk}{close}"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_model_and_action() {
        assert_eq!(
            parse_model_action("models/gemini-2.5-flash:generateContent"),
            Some(("gemini-2.5-flash", Action::Generate))
        );
        assert_eq!(
            parse_model_action("models/gemini-2.5-pro:streamGenerateContent"),
            Some(("gemini-2.5-pro", Action::Stream))
        );
        assert_eq!(
            parse_model_action("models/x:countTokens"),
            Some(("x", Action::CountTokens))
        );
        assert_eq!(parse_model_action("models/x:embedContent"), None);
        assert_eq!(parse_model_action("models/:generateContent"), None);
        assert_eq!(parse_model_action("models/x"), None);
    }
}
