//! The request as it moves along the stages: what the handlers hand over, and what stages
//! 2–4 prepared for the attempts.

use axum::http::HeaderMap;
use bytes::Bytes;

use super::Endpoint;
use crate::providers::RequestFacts;

/// The client's request as the handlers hand it over (body read, head split off).
#[derive(Debug)]
pub struct ClientRequest {
    pub endpoint: Endpoint,
    pub headers: HeaderMap,
    pub query: Option<String>,
    /// Gemini: the model from the path.
    pub path_model: Option<String>,
    pub body: Bytes,
}

/// What stage 2–4 prepared for the attempts.
pub(super) struct Prepared {
    pub(super) facts: RequestFacts,
    pub(super) hide_usage_chunk: bool,
    /// (`key id/session id`, TTL seconds) when sticky sessions apply
    pub(super) sticky: Option<(String, u64)>,
}
