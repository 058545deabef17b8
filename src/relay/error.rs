//! Errors the relay itself produces, shaped in the protocol the client speaks.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::record::{Outcome, Recorder};
use crate::providers::{self, ErrorKind, Protocol};

#[derive(Debug, Clone)]
pub struct RelayError {
    pub kind: ErrorKind,
    /// A short machine-readable code (`invalid_api_key`, `model_not_allowed`, …).
    pub code: &'static str,
    /// What happened and what to do; never contains secrets or internal paths.
    pub message: String,
    pub retry_after: Option<u64>,
    /// A status other than the kind's own (408 for a client's slow body, which is a timeout
    /// but not the gateway's 504).
    pub status_override: Option<StatusCode>,
    /// What the log row's `error` says instead of `message`: details the client is not shown
    /// (channel names).
    pub log_detail: Option<String>,
}

impl RelayError {
    pub fn new(kind: ErrorKind, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            kind,
            code,
            message: message.into(),
            retry_after: None,
            status_override: None,
            log_detail: None,
        }
    }

    #[must_use]
    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.status_override = Some(status);
        self
    }

    #[must_use]
    pub fn with_log_detail(mut self, detail: String) -> Self {
        self.log_detail = Some(detail);
        self
    }

    /// The row's `error`.
    fn log_text(&self) -> &str {
        self.log_detail.as_deref().unwrap_or(&self.message)
    }

    #[must_use]
    pub fn with_retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    #[must_use]
    pub fn status(&self) -> StatusCode {
        if let Some(status) = self.status_override {
            return status;
        }
        StatusCode::from_u16(self.kind.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// The response in `protocol`'s error shape.
    #[must_use]
    pub fn into_response_for(self, protocol: Protocol) -> Response {
        let body = providers::error_body(protocol, self.kind, self.code, &self.message);
        let mut response = (self.status(), axum::Json(body)).into_response();
        if let Some(seconds) = self.retry_after
            && let Ok(value) = HeaderValue::from_str(&seconds.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        response
    }
}

impl std::fmt::Display for RelayError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// A refusal before any upstream was contacted.
pub(super) fn reject(recorder: Recorder, error: RelayError, protocol: Protocol) -> Response {
    recorder.finish(Outcome::Rejected, error.status().as_u16(), error.log_text());
    error.into_response_for(protocol)
}

/// A failure after routing began.
pub(super) fn fail(recorder: Recorder, error: RelayError, protocol: Protocol) -> Response {
    recorder.finish(Outcome::Error, error.status().as_u16(), error.log_text());
    error.into_response_for(protocol)
}
