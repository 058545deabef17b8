//! Errors of the admin API and their one mapping to HTTP. Relay endpoints shape their errors
//! in the protocol the client speaks (see `relay`).

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::config::services::ServiceError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("missing or invalid admin key: send `Authorization: Bearer <admin key>`")]
    Unauthorized,
    #[error(
        "not an active admin key: log in with an admin key (the control token is for the local CLI)"
    )]
    LoginRefused,
    #[error("no live session: log in again (POST /admin/session with an admin key)")]
    SessionEnded,
    #[error(
        "missing or wrong X-CSRF-Token header: a change made with the session cookie must carry the csrf_token of its session"
    )]
    Csrf,
    #[error("too many failed admin authentications from this address; retry in {retry_after} s")]
    Throttled { retry_after: u64 },
    #[error("{0}")]
    BadRequest(String),
    #[error(transparent)]
    Service(#[from] ServiceError),
}

impl AdminError {
    #[must_use]
    pub fn status(&self) -> StatusCode {
        match self {
            AdminError::Unauthorized | AdminError::LoginRefused | AdminError::SessionEnded => {
                StatusCode::UNAUTHORIZED
            }
            AdminError::Csrf => StatusCode::FORBIDDEN,
            AdminError::Throttled { .. } => StatusCode::TOO_MANY_REQUESTS,
            AdminError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AdminError::Service(err) => match err {
                ServiceError::NotFound { .. } => StatusCode::NOT_FOUND,
                ServiceError::Conflict(_) => StatusCode::CONFLICT,
                ServiceError::Invalid(_) | ServiceError::Field(_) => StatusCode::BAD_REQUEST,
                ServiceError::Store(StoreError::DiskFull(_)) => StatusCode::INSUFFICIENT_STORAGE,
                ServiceError::Store(
                    StoreError::Locked(_)
                    | StoreError::Io(_)
                    | StoreError::Unreachable(_)
                    | StoreError::ReadOnly(_),
                ) => StatusCode::SERVICE_UNAVAILABLE,
                ServiceError::Store(_) | ServiceError::Crypto(_) => {
                    StatusCode::INTERNAL_SERVER_ERROR
                }
            },
        }
    }

    fn code(&self) -> &'static str {
        match self.status() {
            StatusCode::UNAUTHORIZED => "unauthorized",
            StatusCode::FORBIDDEN => "csrf",
            StatusCode::NOT_FOUND => "not_found",
            StatusCode::CONFLICT => "conflict",
            StatusCode::BAD_REQUEST => "invalid_request",
            StatusCode::TOO_MANY_REQUESTS => "rate_limited",
            StatusCode::SERVICE_UNAVAILABLE => "unavailable",
            StatusCode::INSUFFICIENT_STORAGE => "disk_full",
            _ => "internal_error",
        }
    }
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = if let AdminError::Service(ServiceError::Store(err)) = &self
            && err.is_io()
        {
            // A storage fault the operator can act on: say what it is (the detail, with the
            // engine's wording, stays in the server log).
            tracing::warn!(error = %self, "admin change not written");
            match err {
                StoreError::DiskFull(_) => "the disk holding the data dir is full; the change was not written. Free some space and retry (no restart needed)".to_string(),
                _ => "the data dir cannot be written right now (I/O error); the change was not written. Retry shortly; see the server log".to_string(),
            }
        } else if let AdminError::Service(ServiceError::Store(StoreError::ReadOnly(detail))) = &self
        {
            tracing::warn!(error = %detail, "admin change refused: PostgreSQL is unreachable");
            "the configuration is read-only while PostgreSQL is unreachable; the change was not written (nothing is queued). Retry when PostgreSQL is back".to_string()
        } else if status.is_server_error() {
            // Internals (paths, engine messages) stay in the server log.
            tracing::error!(error = %self, "admin request failed");
            "internal error; see the server log".to_string()
        } else {
            self.to_string()
        };
        let mut error = json!({ "code": self.code(), "message": message });
        if let AdminError::Service(ServiceError::Field(invalid)) = &self {
            error["field"] = json!(invalid.field);
        }
        let mut response = (status, Json(json!({ "error": error }))).into_response();
        if let AdminError::Throttled { retry_after } = self {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, retry_after.into());
        } else if status == StatusCode::SERVICE_UNAVAILABLE
            || status == StatusCode::INSUFFICIENT_STORAGE
        {
            // A full disk or an I/O fault passes: ask the caller to come back.
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static("5"),
            );
        }
        response
    }
}

/// What the entrance answers when a handler panicked: a plain JSON 500 (the panic itself is in
/// the server log; the caller's protocol is not known at that point).
#[must_use]
pub fn internal_error_response() -> Response {
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        Json(json!({
            "error": { "code": "internal_error", "message": "internal error; see the server log" }
        })),
    )
        .into_response()
}
