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

use crate::app::server::Server;

pub fn router(server: Arc<Server>) -> Router {
    Router::new()
        .merge(health::routes())
        .merge(crate::relay::routes())
        .nest("/admin/api", admin::routes(Arc::clone(&server)))
        .with_state(server)
}

/// What every connection serves: fixed-path relay POSTs go straight to the pipeline, the rest
/// through the router.
#[derive(Clone)]
struct Frontend {
    router: TowerToHyperService<Router>,
    server: Arc<Server>,
}

impl hyper::service::Service<hyper::Request<hyper::body::Incoming>> for Frontend {
    type Response = axum::response::Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn call(&self, request: hyper::Request<hyper::body::Incoming>) -> Self::Future {
        if let Some(endpoint) = crate::relay::fixed_post(request.method(), request.uri().path()) {
            let server = Arc::clone(&self.server);
            let request = request.map(axum::body::Body::new);
            return Box::pin(async move {
                Ok(crate::relay::relay_fixed(server, endpoint, request).await)
            });
        }
        Box::pin(self.router.call(request))
    }
}

/// Serve until `shutdown` resolves or a supervised task fails; then drain in-flight requests
/// and run the shutdown sequence ([`Server::finish`]).
pub async fn serve(
    server: Arc<Server>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let addr = listener.local_addr()?;
    server
        .start_background(addr)
        .map_err(std::io::Error::other)?;
    let token = server.tasks.shutdown_token();
    let stop = async move {
        tokio::select! {
            () = shutdown => {}
            () = token.cancelled() => {}
        }
        tracing::info!("shutting down: finishing in-flight requests");
    };
    let frontend = Frontend {
        router: TowerToHyperService::new(router(Arc::clone(&server))),
        server: Arc::clone(&server),
    };
    connections::serve_connections(listener, frontend, stop).await;
    server.finish().await;
    Ok(())
}
