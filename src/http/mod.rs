//! HTTP: the router, the per-connection service and the serve loop. Route tables live in
//! `admin.rs` (and `relay` for the client-facing API); the accept loop is in `connections.rs`.

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

/// What every connection serves: fixed-path relay POSTs go straight to the pipeline, the rest
/// through the router.
#[derive(Clone)]
struct Frontend {
    router: TowerToHyperService<Router>,
    relay: Arc<Relay>,
}

impl hyper::service::Service<hyper::Request<hyper::body::Incoming>> for Frontend {
    type Response = axum::response::Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn call(&self, request: hyper::Request<hyper::body::Incoming>) -> Self::Future {
        if let Some(endpoint) = crate::relay::fixed_post(request.method(), request.uri().path()) {
            let relay = Arc::clone(&self.relay);
            let request = request.map(axum::body::Body::new);
            return Box::pin(async move {
                Ok(crate::relay::relay_fixed(relay, endpoint, request).await)
            });
        }
        Box::pin(self.router.call(request))
    }
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
    let frontend = Frontend {
        router: TowerToHyperService::new(router(Arc::clone(&app))),
        relay: Arc::clone(&app.relay),
    };
    connections::serve_connections(listener, frontend, stop).await;
    app.finish().await;
    Ok(())
}
