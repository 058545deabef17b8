//! The admin JSON API under `/admin/api`, authenticated with an admin key
//! (`Authorization: Bearer`) or the local control token. Route table only; handlers are in
//! `handlers.rs`.

pub(crate) mod body;
mod handlers;
mod imports;
mod stats;
pub mod throttle;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::get;

use self::throttle::AuthThrottle;
use super::error::AdminError;
use super::ui::Sessions;
use crate::app::server::App;
use crate::crypto::digests_equal;

/// What admin authentication needs, shared by the admin API and the browser login: failed
/// attempts of both count toward one throttle.
#[derive(Debug, Clone)]
pub struct AdminGate {
    pub app: Arc<App>,
    pub throttle: Arc<AuthThrottle>,
    pub sessions: Arc<Sessions>,
}

pub fn routes(gate: AdminGate) -> Router<Arc<App>> {
    use handlers as h;
    let imports = imports::Imports::new(Arc::clone(&gate.app));
    Router::new()
        .route("/keys", get(h::list_keys).post(h::create_key))
        .route(
            "/keys/{id}",
            get(h::get_key).patch(h::update_key).delete(h::delete_key),
        )
        .route("/channels", get(h::list_channels).post(h::create_channel))
        .route(
            "/channels/{id}",
            get(h::get_channel)
                .patch(h::update_channel)
                .delete(h::delete_channel),
        )
        .route("/keys/{id}/usage", get(h::key_usage))
        .route("/channels/{id}/usage", get(h::channel_usage))
        .route("/channels/{id}/test", axum::routing::post(h::test_channel))
        .route(
            "/channels/{id}/usage/reset",
            axum::routing::post(h::reset_channel_quota),
        )
        .route("/pricing", get(h::list_pricing).post(h::create_price))
        .route(
            "/pricing/{model}",
            get(h::get_price)
                .patch(h::update_price)
                .delete(h::delete_price),
        )
        .route(
            "/aliases",
            get(h::get_aliases).put(h::put_aliases).post(h::add_alias),
        )
        .route(
            "/aliases/{pool}/{value}",
            axum::routing::delete(h::delete_alias),
        )
        .route("/settings", get(h::get_settings).put(h::put_settings))
        .route("/reload", get(h::reload_status).post(h::reload_now))
        .route("/logs", get(h::recent_logs))
        .route("/logs/{id}", get(h::get_log))
        .route("/cluster", get(h::cluster))
        .route("/usage", get(stats::usage))
        .route("/summary", get(stats::summary))
        .route(
            "/import",
            axum::routing::post(imports::start).with_state(imports.clone()),
        )
        .route("/import/{job}", get(imports::status).with_state(imports))
        .layer(middleware::from_fn_with_state(gate, require_admin))
}

/// Admin auth: an active, unexpired admin client key (the relay's rule,
/// [`ClientKey::grants_admin`](crate::domain::ClientKey::grants_admin)) or the control token
/// of `data/control.json` as `Authorization: Bearer`; without one, a live browser session
/// cookie (changes must carry its CSRF token). Failures are throttled per client address
/// ([`throttle`]); a dead session cookie is not counted (it is not a guess: browsers resend
/// it after a restart).
async fn require_admin(
    State(gate): State<AdminGate>,
    request: Request,
    next: Next,
) -> Result<Response, AdminError> {
    let AdminGate {
        app,
        throttle,
        sessions,
    } = &gate;
    let address = client_address(&request);
    let now = Instant::now();
    let metrics = &app.relay.metrics;
    if let Some(retry_after) = throttle.blocked(address, now) {
        metrics.admin_auth_throttled();
        return Err(AdminError::Throttled { retry_after });
    }
    let presented = request
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    if presented.is_none()
        && let Some(cookie) = crate::http::ui::session::cookie_value(request.headers())
    {
        let csrf = crate::http::ui::csrf_for(&request);
        sessions
            .use_session(cookie, csrf, &app.config.snapshot(), now)
            .map_err(crate::http::ui::refused)?;
        return Ok(next.run(request).await);
    }
    let granted = presented.is_some_and(|presented| {
        digests_equal(presented, &app.control_token)
            || app
                .config
                .snapshot()
                .find_key(presented)
                .is_some_and(|key| key.grants_admin(crate::domain::now()))
    });
    if !granted {
        metrics.admin_auth_failure();
        throttle.fail(address, now);
        tracing::warn!(client = %address, "admin authentication failed");
        return Err(AdminError::Unauthorized);
    }
    Ok(next.run(request).await)
}

/// The peer address of a request (unspecified when served without a socket, as in tests).
pub(crate) fn client_address(request: &Request) -> IpAddr {
    request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |peer| peer.0.ip())
}
