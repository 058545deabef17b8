//! The browser entrance: the embedded UI files at `/` and `/assets/…`, and the login session
//! at `/admin/session` (a cookie plus a CSRF token; the admin API accepts the cookie in
//! `admin::require_admin`). Every answer here carries the security headers of the UI.

pub mod assets;
pub mod session;

use std::time::Instant;

use axum::Router;
use axum::extract::{FromRequest as _, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse as _, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::json;

use self::session::{COOKIE_NAME, SessionRefused, SessionView, cookie_value};
pub use self::session::{SessionPolicy, Sessions};
use super::admin::AdminGate;
use super::admin::body::AdminJson;
use super::error::AdminError;
use crate::config::services::ServiceError;
use crate::crypto::CryptoError;

const CSRF_HEADER: &str = "x-csrf-token";

/// What every UI and session answer carries: the UI runs only its own files, in no frame,
/// and leaks no URL.
const SECURITY_HEADERS: [(&str, &str); 4] = [
    (
        "content-security-policy",
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    ),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
    ("x-frame-options", "DENY"),
];

pub fn routes<S: Clone + Send + Sync + 'static>(gate: AdminGate) -> Router<S> {
    Router::new()
        .route("/", get(index))
        .route("/assets/{*path}", get(asset))
        .route(
            "/admin/session",
            get(current_session).post(login).delete(logout),
        )
        .layer(axum::middleware::map_response(add_security_headers))
        .with_state(gate)
}

async fn add_security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    for (name, value) in SECURITY_HEADERS {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

async fn index(headers: HeaderMap) -> Response {
    serve_asset("index.html", &headers)
}

async fn asset(Path(path): Path<String>, headers: HeaderMap) -> Response {
    serve_asset(&path, &headers)
}

fn serve_asset(path: &str, request_headers: &HeaderMap) -> Response {
    let Some(asset) = assets::find(path) else {
        return (StatusCode::NOT_FOUND, "no such file\n").into_response();
    };
    let etag = HeaderValue::from_str(&asset.etag).unwrap_or(HeaderValue::from_static("\"\""));
    let unchanged = request_headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| assets::none_match_hits(v, &asset.etag));
    let mut response = if unchanged {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static(asset.content_type),
            )],
            asset.bytes,
        )
            .into_response()
    };
    let headers = response.headers_mut();
    headers.insert(header::ETAG, etag);
    // Revalidate on every load: a new binary's files show at once, unchanged ones cost a 304.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Login {
    key: String,
}

/// `POST /admin/session`: an active admin key opens a session. The control token is refused
/// (it is for the local CLI); failures count toward the admin throttle.
async fn login(State(gate): State<AdminGate>, request: Request) -> Result<Response, AdminError> {
    let address = super::admin::client_address(&request);
    let now = Instant::now();
    let metrics = &gate.app.relay.metrics;
    if let Some(retry_after) = gate.throttle.blocked(address, now) {
        metrics.admin_auth_throttled();
        return Err(AdminError::Throttled { retry_after });
    }
    let secure = arrived_over_https(request.headers());
    let AdminJson(body) = AdminJson::from_request(request, &()).await?;
    let login: Login =
        serde_json::from_value(body).map_err(|e| AdminError::BadRequest(format!("login: {e}")))?;
    let snapshot = gate.app.config.snapshot();
    let Some(key) = snapshot
        .find_key(login.key.trim())
        .filter(|key| key.grants_admin(crate::domain::now()))
    else {
        metrics.admin_auth_failure();
        gate.throttle.fail(address, now);
        tracing::warn!(client = %address, "browser login refused");
        return Err(AdminError::LoginRefused);
    };
    let (cookie, view) = gate
        .sessions
        .create(&key.id, &key.name, now)
        .map_err(|e| ServiceError::Crypto(CryptoError::Random(e.to_string())))?;
    tracing::info!(key = %key.id, client = %address, "browser session started");
    let max_age = gate.sessions.policy().max.as_secs();
    let mut response = session_body(&view).into_response();
    set_cookie(
        &mut response,
        &format!("{cookie}; Max-Age={max_age}"),
        secure,
    );
    Ok(response)
}

/// `GET /admin/session`: the live session of the cookie (the UI reads its CSRF token here
/// after a reload: nothing is kept in the browser's storage).
async fn current_session(
    State(gate): State<AdminGate>,
    headers: HeaderMap,
) -> Result<Response, AdminError> {
    let cookie = cookie_value(&headers).ok_or(AdminError::SessionEnded)?;
    let view = gate
        .sessions
        .use_session(cookie, None, &gate.app.config.snapshot(), Instant::now())
        .map_err(refused)?;
    Ok(session_body(&view).into_response())
}

/// `DELETE /admin/session` (with the CSRF token): the session ends and the cookie is cleared.
async fn logout(State(gate): State<AdminGate>, headers: HeaderMap) -> Result<Response, AdminError> {
    let cookie = cookie_value(&headers).ok_or(AdminError::SessionEnded)?;
    let csrf = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok());
    gate.sessions
        .use_session(
            cookie,
            Some(csrf),
            &gate.app.config.snapshot(),
            Instant::now(),
        )
        .map_err(refused)?;
    gate.sessions.end(cookie);
    let mut response = StatusCode::NO_CONTENT.into_response();
    set_cookie(&mut response, "; Max-Age=0", arrived_over_https(&headers));
    Ok(response)
}

/// The CSRF token a change made with the session cookie must carry: `Some(token or None)`
/// for every method but GET and HEAD, `None` (no check) for those.
pub(crate) fn csrf_for(request: &Request) -> Option<Option<&str>> {
    let method = request.method();
    (method != axum::http::Method::GET && method != axum::http::Method::HEAD).then(|| {
        request
            .headers()
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
    })
}

pub(crate) fn refused(refusal: SessionRefused) -> AdminError {
    match refusal {
        SessionRefused::NotLive => AdminError::SessionEnded,
        SessionRefused::Csrf => AdminError::Csrf,
    }
}

fn session_body(view: &SessionView) -> axum::Json<serde_json::Value> {
    let remaining = time::Duration::try_from(view.remaining).unwrap_or(time::Duration::ZERO);
    let expires_at = (time::OffsetDateTime::now_utc() + remaining)
        .replace_nanosecond(0)
        .unwrap_or_else(|_| time::OffsetDateTime::now_utc());
    axum::Json(json!({
        "csrf_token": view.csrf_token,
        "expires_at": expires_at
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
        "key": { "id": view.key_id, "name": view.key_name },
    }))
}

/// `Set-Cookie` for the session; `rest` is the value and `Max-Age`. `Secure` when the request
/// came through an HTTPS proxy (plain-HTTP browsers would drop a `Secure` cookie).
fn set_cookie(response: &mut Response, rest: &str, secure: bool) {
    let secure = if secure { "; Secure" } else { "" };
    let value = format!("{COOKIE_NAME}={rest}; Path=/; HttpOnly; SameSite=Strict{secure}");
    if let Ok(value) = HeaderValue::from_str(&value) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
}

fn arrived_over_https(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .is_some_and(|proto| proto.trim().eq_ignore_ascii_case("https"))
}
