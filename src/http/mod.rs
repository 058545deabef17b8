//! HTTP: the router and the serve loop. Route tables live in `admin.rs` (and `relay` for the
//! client-facing API); this file only nests them and applies the shared layers.

pub mod admin;
pub mod connections;
pub mod error;
pub mod health;

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use tokio::net::TcpListener;

use crate::app::server::Server;

pub fn router(server: Arc<Server>) -> Router {
    Router::new()
        .merge(health::routes())
        .merge(crate::relay::routes())
        .nest("/admin/api", admin::routes(Arc::clone(&server)))
        .with_state(server)
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
    connections::serve_connections(listener, router(Arc::clone(&server)), stop).await;
    server.finish().await;
    Ok(())
}
