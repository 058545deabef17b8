//! Thin handlers: collect the request, hand it to the pipeline.

use std::sync::Arc;

use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::Endpoint;
use super::Relay;
use super::error::{RelayError, reject};
use super::pipeline;
use super::request::ClientRequest;
use crate::providers::{ErrorKind, Protocol};

/// Hand one relay request to the pipeline. The handlers take the whole `Request` (not the
/// `HeaderMap` extractor, which clones every header) and move its parts along.
///
/// The key is checked from the head before a byte of the body is read: a caller without a
/// valid key is answered at once and its body never buffered (hyper then closes the
/// connection instead of reading the rest). The body must arrive within
/// [`Relay::body_read_timeout`].
pub(super) async fn run(
    relay: Arc<Relay>,
    endpoint: Endpoint,
    request: Request,
    path_model: Option<String>,
) -> Response {
    let (parts, body) = request.into_parts();
    let query = parts.uri.query().map(str::to_string);
    let headers = parts.headers;
    let protocol = endpoint.client_protocol();
    // 1. authenticate (the rest of the pipeline runs on this snapshot)
    let (live, key, recorder) =
        match pipeline::authenticate(&relay, endpoint, &headers, query.as_deref()) {
            Ok(admitted) => admitted,
            Err(error) => return error.into_response_for(protocol),
        };
    let limit = usize::try_from(live.settings.max_body_bytes).unwrap_or(usize::MAX);
    let too_large = || {
        let message = format!("the request body is larger than this relay accepts ({limit} bytes)");
        RelayError::new(ErrorKind::RequestTooLarge, "request_too_large", message)
    };
    let announced = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|length| length > live.settings.max_body_bytes) {
        return reject(recorder, too_large(), protocol);
    }
    // Read inline: the wake-up this causes in the connection task is absorbed by
    // `http::connections::ElideSelfWakes`.
    let read = axum::body::to_bytes(body, limit.saturating_add(1));
    let body = match tokio::time::timeout(relay.body_read_timeout, read).await {
        Ok(Ok(bytes)) => bytes,
        // Over the limit (or the client broke off while sending): refuse in its protocol.
        Ok(Err(_)) => return reject(recorder, too_large(), protocol),
        Err(_) => {
            let message = format!(
                "the request body did not arrive within {} s; send it faster or in a smaller request",
                relay.body_read_timeout.as_secs()
            );
            let error = RelayError::new(ErrorKind::Timeout, "request_timeout", message)
                .with_status(StatusCode::REQUEST_TIMEOUT);
            return reject(recorder, error, protocol);
        }
    };
    let drain_over = relay.drain_over.clone();
    let relayed = pipeline::relay(
        relay,
        live,
        key,
        recorder,
        ClientRequest {
            endpoint,
            headers,
            query,
            path_model,
            body,
        },
    );
    tokio::select! {
        biased;
        response = relayed => response,
        // A shutdown's drain time ran out before the upstream answered: the dropped pipeline
        // writes its row (`server_shutdown`), the client gets the reason in its protocol.
        () = drain_over.cancelled() => {
            RelayError::new(ErrorKind::Overloaded, "server_shutdown", super::respond::SHUTDOWN)
                .into_response_for(protocol)
        }
    }
}

/// `/v1beta/models/{model}:generateContent`, `:streamGenerateContent` and `:countTokens` (also
/// under cc-bridge's `/v1/gemini/models/`).
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
        Some((model, "countTokens")) if !model.is_empty() => {
            Some((Endpoint::GeminiCountTokens, model))
        }
        _ => None,
    };
    let Some((endpoint, model)) = endpoint else {
        let message = format!(
            "unknown Gemini method '{target}': use models/<model>:generateContent, :streamGenerateContent or :countTokens"
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
    let protocol = super::models::protocol_of(&headers);
    super::models::list(&relay, &headers, query.as_deref(), protocol)
}

/// `GET /v1beta/models`: the Gemini-shaped list.
pub async fn gemini_models(
    State(relay): State<Arc<Relay>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    super::models::list(&relay, &headers, query.as_deref(), Protocol::Gemini)
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
