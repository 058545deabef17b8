//! `GET /health`: liveness, storage state, config source and the last reload (error).
//!
//! `status` is `degraded`, with `problems` saying why, while the config store is in an I/O
//! fault, request-log commits fail, rows were dropped in the last [`RECENT_DROP`], or the last
//! config-file reload failed. The HTTP status stays 200: a degraded server still relays, and a
//! container healthcheck must not restart it for a full disk that a restart cannot fix.

use std::sync::Arc;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::app::server::App;

pub fn routes() -> Router<Arc<App>> {
    Router::new().route("/health", get(health))
}

/// How long dropped request-log rows keep `/health` degraded.
const RECENT_DROP: std::time::Duration = std::time::Duration::from_secs(300);

async fn health(State(app): State<Arc<App>>) -> Json<Value> {
    let live = app.config.snapshot();
    let reload = app.reloader.status();
    let writer = app.relay.logs.stats();
    let writer_fault = app.relay.logs.fault();
    let mut problems = Vec::new();
    // A config store in an I/O fault is reopened here too, so it recovers once the disk does
    // even when no admin write comes.
    let config_store = Arc::clone(&app.data.stores.config);
    let config_fault = crate::store::blocking(move || {
        config_store.fault()?;
        config_store.recover().err().map(|err| err.to_string())
    })
    .await;
    if let Some(fault) = &config_fault {
        problems.push(format!(
            "config store ({}): {fault}; admin changes are refused until it can be written",
            crate::app::CONFIG_DB_FILE
        ));
    }
    if let Some(fault) = &writer_fault {
        problems.push(format!(
            "request logs ({}) cannot be written: {}; {} rows are held and retried",
            crate::app::LOG_DB_FILE,
            fault.error,
            writer.retrying
        ));
    }
    let since_drop_ms = now_ms().saturating_sub(writer.last_drop_ms);
    if writer.dropped > 0 && u128::from(since_drop_ms) < RECENT_DROP.as_millis() {
        problems.push(format!(
            "{} request-log rows were dropped since the start (the last {} s ago)",
            writer.dropped,
            since_drop_ms / 1000
        ));
    }
    if let Some(error) = &reload.last_error {
        problems.push(format!("the last config-file reload failed: {error}"));
    }
    if let Some(cluster) = &app.cluster {
        problems.extend(cluster.problems());
    }
    let status = if problems.is_empty() {
        "ok"
    } else {
        "degraded"
    };
    Json(json!({
        "status": status,
        "problems": problems,
        "version": env!("CARGO_PKG_VERSION"),
        "startedAt": app.started_at.to_string(),
        "storage": {
            "config": { "engine": "redb", "file": crate::app::CONFIG_DB_FILE, "revision": live.revision },
            "logs": {
                "engine": "sqlite",
                "file": crate::app::LOG_DB_FILE,
                "exclusiveLocking": app.data.exclusive_locking,
                "writer": writer,
                "writerFault": writer_fault,
            },
        },
        "configSource": if app.cluster.is_some() { "postgresql" } else { "local" },
        "cluster": app.cluster.as_ref().map(|cluster| cluster.replica.status()),
        "counts": {
            "keys": live.state.keys.len(),
            "channels": live.state.channels.len(),
            "pricing": live.state.pricing.len(),
        },
        "reload": reload,
        // Models whose requests used tokens but have no price (cost logged as 0), at most
        // 32 names (`_other` counts the rest); see relaybox_unpriced_requests_total.
        "unpricedModels": app.relay.metrics.unpriced_models(),
        "builtinPricesAsOf": crate::domain::pricing::builtin().as_of,
    }))
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
