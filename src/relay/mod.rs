//! The client-facing API (SPEC §2). Route table only; read `pipeline.rs` for the request path.

mod auth;
mod error;
mod failover;
mod handler;
pub mod pipeline;
pub mod record;
pub mod routing;
mod stream;
pub mod upstream;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};

use crate::app::server::Server;
use crate::domain::Pool;
use crate::providers::Protocol;

pub fn routes() -> Router<Arc<Server>> {
    Router::new()
        .route("/v1/messages", post(handler::messages))
        .route("/v1/messages/count_tokens", post(handler::count_tokens))
        .route("/v1/chat/completions", post(handler::chat_completions))
        .route("/v1/responses", post(handler::responses))
        .route("/v1/models", get(handler::models))
        .route("/v1beta/models/{*target}", post(handler::gemini))
        .route("/metrics", get(handler::metrics))
        // The relay enforces its own (configurable) limit with a protocol-shaped 413.
        .layer(DefaultBodyLimit::disable())
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
    Models,
}

impl Endpoint {
    #[must_use]
    pub fn pool(self) -> Option<Pool> {
        match self {
            Endpoint::Messages | Endpoint::CountTokens => Some(Pool::Messages),
            Endpoint::ChatCompletions => Some(Pool::Chat),
            Endpoint::Responses => Some(Pool::Responses),
            Endpoint::GeminiGenerate | Endpoint::GeminiStream => Some(Pool::Gemini),
            Endpoint::Models => None,
        }
    }

    #[must_use]
    pub fn protocol(self) -> Protocol {
        match self {
            Endpoint::Messages | Endpoint::CountTokens => Protocol::Anthropic,
            Endpoint::ChatCompletions | Endpoint::Models => Protocol::OpenAiChat,
            Endpoint::Responses => Protocol::OpenAiResponses,
            Endpoint::GeminiGenerate | Endpoint::GeminiStream => Protocol::Gemini,
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
            Endpoint::Models => "/v1/models",
        }
    }

    /// The upstream path (Gemini carries the mapped model in it).
    #[must_use]
    pub fn upstream_path(self, model: &str) -> String {
        match self {
            Endpoint::GeminiGenerate => format!("/v1beta/models/{model}:generateContent"),
            Endpoint::GeminiStream => format!("/v1beta/models/{model}:streamGenerateContent"),
            other => other.log_name().to_string(),
        }
    }
}
