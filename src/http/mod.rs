//! HTTP: the router, the one entrance every request passes, and the serve loop. Route tables
//! live in `admin/` (and `relay` for the client-facing API); the accept loop is in
//! `connections.rs`.

pub mod admin;
pub mod connections;
pub mod error;
pub mod health;

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
    Router::new()
        .merge(crate::relay::routes().with_state(Arc::clone(&app.relay)))
        .merge(health::routes())
        .nest("/admin/api", admin::routes(Arc::clone(&app)))
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
/// random prefix and a counter (unique, cheap, and in order within a process).
fn request_id(headers: &axum::http::HeaderMap) -> axum::http::HeaderValue {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    static PREFIX: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    if let Some(given) = headers.get(&REQUEST_ID)
        && (1..=128).contains(&given.len())
        && given.as_bytes().iter().all(|b| b.is_ascii_graphic())
    {
        return given.clone();
    }
    let prefix = PREFIX.get_or_init(|| {
        let id = crate::domain::new_id();
        id[id.len() - 8..].to_string()
    });
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    axum::http::HeaderValue::from_str(&format!("{prefix}-{n:x}"))
        .unwrap_or_else(|_| axum::http::HeaderValue::from_static("-"))
}

/// Serve until `shutdown` resolves or a supervised task fails; then drain in-flight requests
/// and run the shutdown sequence ([`App::finish`]).
pub async fn serve(
    app: Arc<App>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
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
    connections::serve_connections(listener, entrance, stop).await;
    app.finish().await;
    Ok(())
}
