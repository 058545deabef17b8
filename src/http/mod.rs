//! HTTP: the router, the one entrance every request passes, and the serve loop. Route tables
//! live in `admin/` (and `relay` for the client-facing API); the accept loop is in
//! `connections.rs`.

pub mod admin;
pub mod connections;
pub mod error;
pub mod health;
pub mod ui;

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use axum::Router;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;

use crate::app::server::App;
use crate::relay::Relay;

pub fn router(app: Arc<App>) -> Router {
    router_with_sessions(app, ui::SessionPolicy::default())
}

/// [`router`] with browser sessions that live as long as `policy` says (tests shorten it).
/// The sessions belong to the router: one per server, in memory.
pub fn router_with_sessions(app: Arc<App>, policy: ui::SessionPolicy) -> Router {
    let gate = admin::AdminGate {
        app: Arc::clone(&app),
        throttle: Arc::default(),
        sessions: Arc::new(ui::Sessions::new(policy)),
    };
    Router::new()
        .merge(crate::relay::routes().with_state(Arc::clone(&app.relay)))
        .merge(health::routes())
        .merge(ui::routes(gate.clone()))
        .nest("/admin/api", admin::routes(gate))
        // Unknown relay paths and wrong methods answer in the caller's protocol.
        .fallback(crate::relay::unknown_path)
        .method_not_allowed_fallback(crate::relay::wrong_method)
        .with_state(app)
}

/// The one entrance every request passes, whatever route serves it: a request id (the
/// client's `x-request-id` when it sent a usable one), a tracing span, and a panic caught as a
/// 500 instead of a dropped connection. A layer added here applies to all traffic; the
/// dispatch inside it sends fixed-path relay POSTs straight to the pipeline (measured: fewer
/// allocations than the router's extractors) and the rest through the router.
#[derive(Clone)]
struct Entrance {
    router: TowerToHyperService<Router>,
    relay: Arc<Relay>,
}

const REQUEST_ID: axum::http::HeaderName = axum::http::HeaderName::from_static("x-request-id");

impl Entrance {
    fn dispatch(&self, request: hyper::Request<hyper::body::Incoming>) -> Dispatched {
        if let Some(endpoint) = crate::relay::fixed_post(request.method(), request.uri().path()) {
            let relay = Arc::clone(&self.relay);
            let request = request.map(axum::body::Body::new);
            return Box::pin(async move {
                Ok(crate::relay::relay_fixed(relay, endpoint, request).await)
            });
        }
        Box::pin(hyper::service::Service::call(&self.router, request))
    }
}

type Dispatched =
    Pin<Box<dyn Future<Output = Result<axum::response::Response, Infallible>> + Send>>;

impl hyper::service::Service<hyper::Request<hyper::body::Incoming>> for Entrance {
    type Response = axum::response::Response;
    type Error = Infallible;
    type Future = Dispatched;

    fn call(&self, request: hyper::Request<hyper::body::Incoming>) -> Self::Future {
        use futures_util::FutureExt as _;
        use tracing::Instrument as _;
        let id = request_id(request.headers());
        let span = tracing::debug_span!(
            "request",
            id = %id.to_str().unwrap_or(""),
            method = %request.method(),
            path = request.uri().path(),
        );
        let inner = self.dispatch(request);
        Box::pin(
            async move {
                let mut response = match std::panic::AssertUnwindSafe(inner).catch_unwind().await {
                    Ok(Ok(response)) => response,
                    Err(_) => {
                        tracing::error!("a request handler panicked; answered 500");
                        error::internal_error_response()
                    }
                };
                response.headers_mut().insert(REQUEST_ID, id);
                Ok(response)
            }
            .instrument(span),
        )
    }
}

/// The client's `x-request-id` when it is short visible ASCII, else a new one: a per-process
/// random prefix and a counter in hex (unique, cheap, and in order within a process). Written
/// into a stack buffer: every response carries one, so it is kept off the formatting machinery.
fn request_id(headers: &axum::http::HeaderMap) -> axum::http::HeaderValue {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    static PREFIX: std::sync::OnceLock<[u8; 8]> = std::sync::OnceLock::new();
    if let Some(given) = headers.get(&REQUEST_ID)
        && (1..=128).contains(&given.len())
        && given.as_bytes().iter().all(|b| b.is_ascii_graphic())
    {
        return given.clone();
    }
    let prefix = PREFIX.get_or_init(|| {
        let id = crate::domain::new_id();
        let mut prefix = [b'0'; 8];
        prefix.copy_from_slice(&id.as_bytes()[id.len() - 8..]);
        prefix
    });
    let mut text = [0u8; 8 + 1 + 16];
    text[..8].copy_from_slice(prefix);
    text[8] = b'-';
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let digits = (64 - n.leading_zeros()).div_ceil(4).max(1) as usize;
    for (i, slot) in text[9..9 + digits].iter_mut().enumerate() {
        let nibble = (n >> (4 * (digits - 1 - i))) & 0xf;
        *slot = b"0123456789abcdef"[nibble as usize];
    }
    axum::http::HeaderValue::from_bytes(&text[..9 + digits])
        .unwrap_or_else(|_| axum::http::HeaderValue::from_static("-"))
}

/// Serve until `shutdown` resolves or a supervised task fails; then drain in-flight requests
/// and run the shutdown sequence ([`App::finish`]).
pub async fn serve(
    app: Arc<App>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
    limits: connections::ConnectionLimits,
) -> std::io::Result<()> {
    let addr = listener.local_addr()?;
    app.start_background(addr).map_err(std::io::Error::other)?;
    let token = app.tasks.shutdown_token();
    let stop = async move {
        tokio::select! {
            () = shutdown => {}
            () = token.cancelled() => {}
        }
        tracing::info!("shutting down: finishing in-flight requests");
    };
    let entrance = Entrance {
        router: TowerToHyperService::new(router(Arc::clone(&app))),
        relay: Arc::clone(&app.relay),
    };
    connections::serve_connections(listener, entrance, stop, limits, &app.relay.drain_over).await;
    app.finish().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail loudly")]

    use super::{REQUEST_ID, request_id};

    #[test]
    fn request_ids_are_prefix_dash_counter_in_hex_or_the_clients_own() {
        let none = axum::http::HeaderMap::new();
        let first = request_id(&none);
        let second = request_id(&none);
        let (prefix, n) = first.to_str().unwrap().split_once('-').unwrap();
        let (prefix2, m) = second.to_str().unwrap().split_once('-').unwrap();
        assert_eq!(prefix, prefix2);
        assert_eq!(prefix.len(), 8);
        let (n, m) = (
            u64::from_str_radix(n, 16).unwrap(),
            u64::from_str_radix(m, 16).unwrap(),
        );
        assert!(m > n, "{n} then {m}");
        let mut given = axum::http::HeaderMap::new();
        given.insert(REQUEST_ID, "trace-7".parse().unwrap());
        assert_eq!(request_id(&given), "trace-7");
        given.insert(REQUEST_ID, "two words".parse().unwrap());
        assert_ne!(request_id(&given), "two words");
    }
}
