//! Stage 5b and 6 for a channel whose upstream speaks another protocol than the client: the
//! request rewritten for the upstream (body, path, query), and the answer or error rewritten
//! for the client. The rewriting itself is `crate::convert`; this file decides what to call
//! for which endpoint.
//!
//! The client's body is decoded once per request, on the first candidate that needs it, and
//! encoded once per candidate (channels of different protocols can follow each other).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use bytes::Bytes;
use serde_json::{Value, json};

use super::Endpoint;
use super::error::RelayError;
use super::request::ClientRequest;
use crate::convert::{self, ConvertError, StreamOptions, ir};
use crate::providers::{self, ErrorKind, Protocol};

/// What goes to an upstream of another protocol.
pub(super) struct UpstreamRequest {
    pub(super) body: Bytes,
    /// The upstream's endpoint path (the model in it for Gemini).
    pub(super) path: String,
    /// Only what the conversion needs (`alt=sse` for a Gemini stream); the client's own query
    /// belongs to its protocol.
    pub(super) query: Option<&'static str>,
}

/// What a converted request needs of the client's request, decoded once.
#[derive(Default)]
pub(super) struct Decoded(Option<ir::Request>);

/// The request log's and `failover_info`'s name for a conversion (`anthropic→openai_chat`).
#[must_use]
pub(super) fn label(client: Protocol, upstream: Protocol) -> String {
    format!("{client}→{upstream}")
}

/// 5b: the client's request in the upstream's protocol, for `model` (the mapped name).
/// `Ok(None)`: a count request the upstream cannot answer — [`estimate_count`] answers it.
pub(super) fn upstream_request(
    incoming: &ClientRequest,
    decoded: &mut Decoded,
    upstream: Protocol,
    model: &str,
    stream: bool,
) -> Result<Option<UpstreamRequest>, RelayError> {
    let request = match &mut decoded.0 {
        Some(request) => request,
        empty @ None => empty.insert(decode_client(incoming).map_err(|e| refused(e, upstream))?),
    };
    model.clone_into(&mut request.model);
    request.stream = stream;
    let counting = is_count(incoming.endpoint);
    let body = convert::encode_request(upstream, request).map_err(|e| refused(e, upstream))?;
    let (path, query) = match (upstream, counting) {
        (Protocol::Anthropic, false) => ("/v1/messages".to_string(), None),
        (Protocol::OpenAiChat, false) => ("/v1/chat/completions".to_string(), None),
        (Protocol::OpenAiResponses, false) => ("/v1/responses".to_string(), None),
        (Protocol::Gemini, false) if stream => (
            format!("/v1beta/models/{model}:streamGenerateContent"),
            Some("alt=sse"),
        ),
        (Protocol::Gemini, false) => (format!("/v1beta/models/{model}:generateContent"), None),
        (Protocol::Anthropic, true) => ("/v1/messages/count_tokens".to_string(), None),
        (Protocol::OpenAiResponses, true) => ("/v1/responses/input_tokens".to_string(), None),
        (Protocol::Gemini, true) => (format!("/v1beta/models/{model}:countTokens"), None),
        (Protocol::OpenAiChat, true) => return Ok(None),
    };
    let body = if counting {
        count_body(upstream, model, &body)
    } else {
        body
    };
    Ok(Some(UpstreamRequest {
        body: Bytes::from(body),
        path,
        query,
    }))
}

fn is_count(endpoint: Endpoint) -> bool {
    matches!(
        endpoint,
        Endpoint::CountTokens | Endpoint::GeminiCountTokens
    )
}

/// The client's body as the IR. Gemini's model is in the path; its count request may wrap a
/// whole generate request (`generateContentRequest`).
fn decode_client(incoming: &ClientRequest) -> Result<ir::Request, ConvertError> {
    let client = incoming.endpoint.client_protocol();
    let mut request = if incoming.endpoint == Endpoint::GeminiCountTokens {
        let body: Value = serde_json::from_slice(&incoming.body)
            .map_err(|e| ConvertError::invalid(format!("the body is not JSON: {e}")))?;
        match body.get("generateContentRequest") {
            Some(inner) => convert::decode_request(client, inner.to_string().as_bytes())?,
            None => convert::decode_request(client, &incoming.body)?,
        }
    } else {
        convert::decode_request(client, &incoming.body)?
    };
    if let Some(model) = &incoming.path_model {
        model.clone_into(&mut request.model);
    }
    Ok(request)
}

/// A count request's body from the generate body the codec made: Anthropic's count endpoint
/// takes only the fields that make up the prompt; Gemini's wraps the generate request;
/// Responses' takes the same body without `stream`.
fn count_body(upstream: Protocol, model: &str, generate: &[u8]) -> Vec<u8> {
    let Ok(Value::Object(mut body)) = serde_json::from_slice::<Value>(generate) else {
        return generate.to_vec();
    };
    let body = match upstream {
        Protocol::Anthropic => {
            body.retain(|field, _| {
                matches!(
                    field.as_str(),
                    "model" | "messages" | "system" | "tools" | "tool_choice" | "thinking"
                )
            });
            Value::Object(body)
        }
        Protocol::Gemini => {
            body.insert("model".into(), json!(format!("models/{model}")));
            json!({ "generateContentRequest": body })
        }
        Protocol::OpenAiResponses | Protocol::OpenAiChat => {
            for field in ["stream", "store", "include", "max_output_tokens"] {
                body.remove(field);
            }
            Value::Object(body)
        }
    };
    serde_json::to_vec(&body).unwrap_or_else(|_| generate.to_vec())
}

/// A conversion refused: the client's body is not valid in its protocol, or it asks for
/// something the upstream's protocol cannot carry. 400 either way, before anything is sent.
fn refused(error: ConvertError, upstream: Protocol) -> RelayError {
    match error {
        ConvertError::Invalid(message) => RelayError::new(
            ErrorKind::InvalidRequest,
            "invalid_request",
            format!("the request body is not valid: {message}"),
        ),
        ConvertError::Unsupported { feature, .. } => RelayError::new(
            ErrorKind::InvalidRequest,
            "unsupported_by_upstream",
            format!(
                "{feature} cannot be used here: this channel's upstream speaks the {upstream} protocol, which has no equivalent"
            ),
        ),
    }
}

/// A count the upstream cannot make (OpenAI Chat has no count endpoint): about one token per
/// four bytes of the prompt's text, tool definitions included. The answer says it is an
/// estimate in the `x-relaybox-token-count: estimate` header.
pub(super) fn estimate_count(incoming: &ClientRequest, decoded: &Decoded) -> Response {
    let tokens = decoded.0.as_ref().map_or(0, estimate_tokens);
    let mut response = count_answer(incoming.endpoint.client_protocol(), tokens);
    response.headers_mut().insert(
        "x-relaybox-token-count",
        HeaderValue::from_static("estimate"),
    );
    response
}

fn estimate_tokens(request: &ir::Request) -> u64 {
    fn part_bytes(part: &ir::Part) -> usize {
        match part {
            ir::Part::Text(text) => text.len(),
            ir::Part::ToolCall(call) => call.name.len() + call.arguments.len(),
            ir::Part::ToolResult(result) => result.content.iter().map(part_bytes).sum(),
            ir::Part::Thinking(thinking) => thinking.text.len(),
            // Providers bill an image by its size in pixels; a fixed share is the honest guess.
            ir::Part::Image(_) | ir::Part::Document(_) => 1_000,
        }
    }
    let bytes: usize = request.system.iter().map(String::len).sum::<usize>()
        + request
            .messages
            .iter()
            .flat_map(|m| &m.parts)
            .map(part_bytes)
            .sum::<usize>()
        + request
            .tools
            .iter()
            .map(|t| {
                t.name.len()
                    + t.description.as_ref().map_or(0, String::len)
                    + t.parameters.to_string().len()
            })
            .sum::<usize>();
    (bytes as u64).div_ceil(4)
}

/// `{"input_tokens": N}` for Anthropic clients, `{"totalTokens": N}` for Gemini ones.
fn count_json(client: Protocol, tokens: u64) -> Value {
    match client {
        Protocol::Gemini => json!({ "totalTokens": tokens }),
        _ => json!({ "input_tokens": tokens }),
    }
}

fn count_answer(client: Protocol, tokens: u64) -> Response {
    let body = count_json(client, tokens);
    let mut response = Response::new(axum::body::Body::from(body.to_string()));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// 6, whole answers: the upstream's answer body in the client's protocol. A count answer
/// becomes the client's count shape.
pub(super) fn answer(
    endpoint: Endpoint,
    upstream: Protocol,
    body: &[u8],
) -> Result<(Bytes, &'static str), RelayError> {
    let client = endpoint.client_protocol();
    if is_count(endpoint) {
        let value: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let tokens = ["input_tokens", "totalTokens", "total_tokens"]
            .iter()
            .find_map(|field| value.get(*field).and_then(Value::as_u64))
            .ok_or_else(|| bad_answer("the upstream's token count answer has no count"))?;
        let body = count_json(client, tokens);
        return Ok((Bytes::from(body.to_string()), "application/json"));
    }
    let response = convert::decode_response(upstream, body).map_err(|e| {
        bad_answer(&format!(
            "the upstream's answer could not be converted: {e}"
        ))
    })?;
    Ok((
        Bytes::from(convert::encode_response(client, &response)),
        "application/json",
    ))
}

fn bad_answer(message: &str) -> RelayError {
    RelayError::new(ErrorKind::Upstream, "upstream_error", message)
}

/// 6, streams: the converter for this request's stream, and the content type the client
/// expects.
pub(super) fn stream_converter(
    incoming_query: Option<&str>,
    client: Protocol,
    upstream: Protocol,
    wants_usage_chunk: bool,
) -> (convert::StreamConverter, &'static str) {
    let gemini_sse = incoming_query.is_some_and(|q| q.split('&').any(|pair| pair == "alt=sse"));
    let options = StreamOptions {
        include_usage: wants_usage_chunk,
        gemini_sse,
    };
    let content_type = if client == Protocol::Gemini && !gemini_sse {
        "application/json"
    } else {
        "text/event-stream"
    };
    (
        convert::StreamConverter::new(upstream, client, options),
        content_type,
    )
}

/// An upstream's error answer, retold in the client's protocol with the same status: its
/// message kept, its shape the client's.
pub(super) fn error_answer(client: Protocol, status: u16, body: &str) -> Response {
    let parsed = providers::parse_upstream_error(body.as_bytes());
    let message = parsed
        .as_ref()
        .and_then(|e| e.message.clone())
        .unwrap_or_else(|| providers::upstream_error_text(body.as_bytes()));
    let kind = ErrorKind::from_status(status);
    let code = kind.default_code();
    let body = providers::error_body(client, kind, code, &message);
    let mut response = Response::new(axum::body::Body::from(body.to_string()));
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}
