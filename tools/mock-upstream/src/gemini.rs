//! Gemini: `POST /v1beta/models/{model}:generateContent`,
//! `:streamGenerateContent` (`?alt=sse` for SSE, else a streamed JSON array),
//! `:countTokens`, and `GET /v1beta/models` (`/v1/...` works too).

use bytes::Bytes;
use serde_json::{Value, json};

use crate::Reply;
use crate::error::ApiError;
use crate::reply::{Content, Generation, ToolSpec, Usage, estimate_input_tokens};
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
    validate(body)?;
    let generation = Generation::new(model, pick_tool(body), body, scenario, seq);
    let chunks = match &generation.content {
        Content::Text { pieces, .. } => {
            let last = pieces.len().saturating_sub(1);
            pieces
                .iter()
                .enumerate()
                .map(|(i, piece)| chunk(&generation, json!([{"text": piece}]), i == last))
                .collect()
        }
        Content::Tool { .. } => vec![chunk(&generation, parts(&generation), true)],
    };
    Ok(match delivery {
        Delivery::Whole => Reply::Json(chunk(&generation, parts(&generation), true)),
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

fn validate(body: &Value) -> Result<(), ApiError> {
    if body.get("contents").is_some_and(Value::is_array) {
        Ok(())
    } else {
        Err(ApiError::invalid(
            "* GenerateContentRequest.contents: contents is not specified",
        ))
    }
}

/// The first function declaration, unless function calling is off or the
/// last turn already answers a function call.
fn pick_tool(body: &Value) -> Option<ToolSpec<'_>> {
    let mode = body
        .pointer("/toolConfig/functionCallingConfig/mode")
        .and_then(Value::as_str);
    if mode.is_some_and(|m| m.eq_ignore_ascii_case("none")) {
        return None;
    }
    let answered = body
        .get("contents")
        .and_then(Value::as_array)
        .and_then(|c| c.last())
        .and_then(|c| c.get("parts"))
        .and_then(Value::as_array)
        .is_some_and(|parts| {
            parts.iter().any(|p| {
                p.get("functionResponse").is_some() || p.get("function_response").is_some()
            })
        });
    if answered {
        return None;
    }
    body.get("tools")?.as_array()?.iter().find_map(|tool| {
        let declaration = tool
            .get("functionDeclarations")
            .or_else(|| tool.get("function_declarations"))?
            .as_array()?
            .first()?;
        Some(ToolSpec {
            name: declaration.get("name")?.as_str()?,
            schema: declaration
                .get("parameters")
                .or_else(|| declaration.get("parametersJsonSchema")),
        })
    })
}

fn parts(generation: &Generation) -> Value {
    match &generation.content {
        Content::Text { text, .. } => json!([{ "text": text }]),
        Content::Tool { name, input, .. } => {
            json!([{ "functionCall": { "name": name, "args": input } }])
        }
    }
}

/// Final usage; `cachedContentTokenCount` only when there are cached tokens.
fn usage(usage: &Usage) -> Value {
    let prompt = usage.prompt_total();
    let mut metadata = json!({
        "promptTokenCount": prompt,
        "candidatesTokenCount": usage.output,
        "totalTokenCount": prompt + usage.output,
    });
    if usage.cache_read > 0 {
        metadata["cachedContentTokenCount"] = json!(usage.cache_read);
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
