//! The client-facing API (SPEC §2). Route table only; read `pipeline.rs` for the request path.

mod attempt;
mod auth;
pub mod client;
mod conversion;
mod error;
mod handler;
pub mod models;
pub mod pipeline;
pub mod record;
mod request;
mod respond;
pub mod routing;
pub mod state;
mod stream;
#[cfg(test)]
pub(crate) mod test_support;
pub mod upstream;

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::response::{IntoResponse as _, Response};
use axum::routing::{get, post};

use crate::domain::Pool;
use crate::providers::Protocol;
pub use state::Relay;

/// The relay's POST endpoints with a fixed path. Both the route table and the connections' fast
/// path ([`fixed_post`]) come from this list.
const FIXED_POSTS: [(&str, Endpoint); 4] = [
    ("/v1/messages", Endpoint::Messages),
    ("/v1/messages/count_tokens", Endpoint::CountTokens),
    ("/v1/chat/completions", Endpoint::ChatCompletions),
    ("/v1/responses", Endpoint::Responses),
];

/// The endpoint of a fixed-path relay POST, for the connections' fast path: such requests go
/// straight to the pipeline instead of through the router's layers (measured: 6 fewer
/// allocations per request, and about 4 % more requests/s in an alternating A/B).
#[must_use]
pub fn fixed_post(method: &axum::http::Method, path: &str) -> Option<Endpoint> {
    if method != axum::http::Method::POST {
        return None;
    }
    FIXED_POSTS
        .iter()
        .find(|(fixed, _)| *fixed == path)
        .map(|(_, endpoint)| *endpoint)
}

/// Relay one request of a fixed-path endpoint (the route table's handler and the fast path).
pub async fn relay_fixed(relay: Arc<Relay>, endpoint: Endpoint, request: Request) -> Response {
    handler::run(relay, endpoint, request, None).await
}

pub fn routes() -> Router<Arc<Relay>> {
    let mut router = Router::new();
    for (path, endpoint) in FIXED_POSTS {
        router = router.route(
            path,
            post(move |State(relay): State<Arc<Relay>>, request: Request| {
                relay_fixed(relay, endpoint, request)
            }),
        );
    }
    router
        .route("/v1/models", get(handler::models))
        .route("/v1beta/models", get(handler::gemini_models))
        .route("/v1beta/models/{*target}", post(handler::gemini))
        // cc-bridge's paths for the Gemini pool.
        .route("/v1/gemini/models", get(handler::gemini_models))
        .route("/v1/gemini/models/{*target}", post(handler::gemini))
        .route("/metrics", get(handler::metrics))
        // The relay enforces its own (configurable) limit with a protocol-shaped 413.
        .layer(DefaultBodyLimit::disable())
}

/// The protocol a caller of `path` speaks, judged by its prefix: Anthropic under
/// `/v1/messages`, Gemini under `/v1beta/`, OpenAI under the rest of `/v1/`; `None` for paths
/// that are not the relay's.
#[must_use]
pub fn protocol_of_path(path: &str) -> Option<Protocol> {
    if path == "/v1/messages" || path.starts_with("/v1/messages/") {
        Some(Protocol::Anthropic)
    } else if path == "/v1beta"
        || path.starts_with("/v1beta/")
        || path == "/v1/gemini"
        || path.starts_with("/v1/gemini/")
    {
        Some(Protocol::Gemini)
    } else if path == "/v1" || path.starts_with("/v1/") {
        Some(Protocol::OpenAiChat)
    } else {
        None
    }
}

/// No route for this path: 404, in the caller's protocol under the relay's prefixes.
pub async fn unknown_path(uri: axum::http::Uri) -> Response {
    let path = uri.path();
    let Some(protocol) = protocol_of_path(path) else {
        return axum::http::StatusCode::NOT_FOUND.into_response();
    };
    let message = format!(
        "no such endpoint: {path} (relaybox serves /v1/messages, /v1/messages/count_tokens, /v1/chat/completions, /v1/responses, /v1/models and /v1beta/models/<model>:generateContent, :streamGenerateContent or :countTokens, also under /v1/gemini/models/)"
    );
    error::RelayError::new(crate::providers::ErrorKind::NotFound, "not_found", message)
        .into_response_for(protocol)
}

/// The path exists but not with this method: 405 (the router adds `allow`), in the caller's
/// protocol under the relay's prefixes.
pub async fn wrong_method(method: axum::http::Method, uri: axum::http::Uri) -> Response {
    let path = uri.path();
    let Some(protocol) = protocol_of_path(path) else {
        return axum::http::StatusCode::METHOD_NOT_ALLOWED.into_response();
    };
    let message = format!("{method} is not allowed on {path}; see the allow header");
    error::RelayError::new(
        crate::providers::ErrorKind::InvalidRequest,
        "method_not_allowed",
        message,
    )
    .with_status(axum::http::StatusCode::METHOD_NOT_ALLOWED)
    .into_response_for(protocol)
}

/// What the client called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Messages,
    CountTokens,
    ChatCompletions,
    Responses,
    GeminiGenerate,
    GeminiStream,
    GeminiCountTokens,
    Models,
}

impl Endpoint {
    #[must_use]
    pub fn pool(self) -> Option<Pool> {
        match self {
            Endpoint::Messages | Endpoint::CountTokens => Some(Pool::Messages),
            Endpoint::ChatCompletions => Some(Pool::Chat),
            Endpoint::Responses => Some(Pool::Responses),
            Endpoint::GeminiGenerate | Endpoint::GeminiStream | Endpoint::GeminiCountTokens => {
                Some(Pool::Gemini)
            }
            Endpoint::Models => None,
        }
    }

    /// The protocol the client speaks (what it sent, what it gets back, errors included). The
    /// upstream's is the channel's (`config::UpstreamKind::protocol`).
    #[must_use]
    pub fn client_protocol(self) -> Protocol {
        match self {
            Endpoint::Messages | Endpoint::CountTokens => Protocol::Anthropic,
            Endpoint::ChatCompletions | Endpoint::Models => Protocol::OpenAiChat,
            Endpoint::Responses => Protocol::OpenAiResponses,
            Endpoint::GeminiGenerate | Endpoint::GeminiStream | Endpoint::GeminiCountTokens => {
                Protocol::Gemini
            }
        }
    }

    /// The `endpoint` column of the request log.
    #[must_use]
    pub fn log_name(self) -> &'static str {
        match self {
            Endpoint::Messages => "/v1/messages",
            Endpoint::CountTokens => "/v1/messages/count_tokens",
            Endpoint::ChatCompletions => "/v1/chat/completions",
            Endpoint::Responses => "/v1/responses",
            Endpoint::GeminiGenerate => "/v1beta/models:generateContent",
            Endpoint::GeminiStream => "/v1beta/models:streamGenerateContent",
            Endpoint::GeminiCountTokens => "/v1beta/models:countTokens",
            Endpoint::Models => "/v1/models",
        }
    }

    /// The upstream path (Gemini carries the mapped model in it).
    #[must_use]
    pub fn upstream_path(self, model: &str) -> std::borrow::Cow<'static, str> {
        match self {
            Endpoint::GeminiGenerate => format!("/v1beta/models/{model}:generateContent").into(),
            Endpoint::GeminiStream => {
                format!("/v1beta/models/{model}:streamGenerateContent").into()
            }
            Endpoint::GeminiCountTokens => format!("/v1beta/models/{model}:countTokens").into(),
            other => other.log_name().into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Method;

    #[test]
    fn only_exact_fixed_posts_take_the_fast_path() {
        for (path, endpoint) in [
            ("/v1/messages", Endpoint::Messages),
            ("/v1/messages/count_tokens", Endpoint::CountTokens),
            ("/v1/chat/completions", Endpoint::ChatCompletions),
            ("/v1/responses", Endpoint::Responses),
        ] {
            assert_eq!(fixed_post(&Method::POST, path), Some(endpoint), "{path}");
        }
        // Everything else is the router's: other methods (405), other paths (404, Gemini).
        assert_eq!(fixed_post(&Method::GET, "/v1/messages"), None);
        assert_eq!(fixed_post(&Method::POST, "/v1/messages/"), None);
        assert_eq!(fixed_post(&Method::POST, "/v1/models"), None);
        assert_eq!(
            fixed_post(&Method::POST, "/v1beta/models/g:generateContent"),
            None
        );
    }
}
