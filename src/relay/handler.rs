//! Thin handlers: collect the request, hand it to the pipeline.

use std::sync::Arc;

use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};

use super::Endpoint;
use super::Relay;
use super::error::RelayError;
use super::pipeline;
use super::request::ClientRequest;
use crate::providers::{ErrorKind, Protocol};

/// Hand one relay request to the pipeline. The handlers take the whole `Request` (not the
/// `HeaderMap` extractor, which clones every header) and move its parts along.
pub(super) async fn run(
    relay: Arc<Relay>,
    endpoint: Endpoint,
    request: Request,
    path_model: Option<String>,
) -> Response {
    let (parts, body) = request.into_parts();
    let query = parts.uri.query().map(str::to_string);
    let headers = parts.headers;
    let limit =
        usize::try_from(relay.config.snapshot().settings.max_body_bytes).unwrap_or(usize::MAX);
    // Read inline: the wake-up this causes in the connection task is absorbed by
    // `http::connections::ElideSelfWakes`.
    let body = match axum::body::to_bytes(body, limit.saturating_add(1)).await {
        Ok(bytes) => bytes,
        Err(_) => {
            // Over the limit (or the client broke off while sending): refuse in its protocol.
            let message =
                format!("the request body is larger than this relay accepts ({limit} bytes)");
            return RelayError::new(ErrorKind::RequestTooLarge, "request_too_large", message)
                .into_response_for(endpoint.client_protocol());
        }
    };
    pipeline::relay(
        relay,
        ClientRequest {
            endpoint,
            headers,
            query,
            path_model,
            body,
        },
    )
    .await
}

/// `/v1beta/models/{model}:generateContent` and `:streamGenerateContent`.
pub async fn gemini(
    State(relay): State<Arc<Relay>>,
    Path(target): Path<String>,
    request: Request,
) -> Response {
    let endpoint = match target.rsplit_once(':') {
        Some((model, "generateContent")) if !model.is_empty() => {
            Some((Endpoint::GeminiGenerate, model))
        }
        Some((model, "streamGenerateContent")) if !model.is_empty() => {
            Some((Endpoint::GeminiStream, model))
        }
        _ => None,
    };
    let Some((endpoint, model)) = endpoint else {
        let message = format!(
            "unknown Gemini method '{target}': use models/<model>:generateContent or :streamGenerateContent"
        );
        return RelayError::new(ErrorKind::NotFound, "not_found", message)
            .into_response_for(Protocol::Gemini);
    };
    let model = model.to_string();
    run(relay, endpoint, request, Some(model)).await
}

pub async fn models(
    State(relay): State<Arc<Relay>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    pipeline::models(&relay, &headers, query.as_deref())
}

pub async fn metrics(State(relay): State<Arc<Relay>>) -> Response {
    let text = relay.metrics.render(relay.logs.stats());
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}
