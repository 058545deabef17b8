//! `GET /health`: liveness, storage state, config source and the last reload (error).

use std::sync::Arc;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::app::server::App;

pub fn routes() -> Router<Arc<App>> {
    Router::new().route("/health", get(health))
}

async fn health(State(app): State<Arc<App>>) -> Json<Value> {
    let live = app.config.snapshot();
    let reload = app.reloader.status();
    let writer = app.relay.logs.stats();
    let status = if reload.last_error.is_some() {
        "degraded"
    } else {
        "ok"
    };
    Json(json!({
        "status": status,
        "version": env!("CARGO_PKG_VERSION"),
        "startedAt": app.started_at.to_string(),
        "storage": {
            "config": { "engine": "redb", "file": crate::app::CONFIG_DB_FILE, "revision": live.revision },
            "logs": {
                "engine": "sqlite",
                "file": crate::app::LOG_DB_FILE,
                "exclusiveLocking": app.data.exclusive_locking,
                "writer": writer,
            },
        },
        "configSource": "local",
        "counts": {
            "keys": live.state.keys.len(),
            "channels": live.state.channels.len(),
            "pricing": live.state.pricing.len(),
        },
        "reload": reload,
    }))
}
