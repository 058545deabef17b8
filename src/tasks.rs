//! Supervised background tasks: every long-lived worker is registered here by name. When one
//! fails or panics, the failure is logged with its name and the whole server shuts down, so a
//! dead worker never goes unnoticed.

use std::future::Future;

use futures_util::FutureExt as _;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

#[derive(Debug, Clone, Default)]
pub struct Tasks {
    tracker: TaskTracker,
    shutdown: CancellationToken,
}

impl Tasks {
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The token every worker watches; cancelled when shutdown begins.
    #[must_use]
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    pub fn begin_shutdown(&self) {
        self.shutdown.cancel();
    }

    /// Run `work` under supervision.
    pub fn spawn<F>(&self, name: &'static str, work: F)
    where
        F: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let shutdown = self.shutdown.clone();
        self.tracker.spawn(async move {
            match std::panic::AssertUnwindSafe(work).catch_unwind().await {
                Ok(Ok(())) => tracing::debug!(task = name, "background task finished"),
                Ok(Err(err)) => {
                    tracing::error!(task = name, error = %format!("{err:#}"), "background task failed; shutting down");
                    shutdown.cancel();
                }
                Err(_) => {
                    tracing::error!(task = name, "background task panicked; shutting down");
                    shutdown.cancel();
                }
            }
        });
    }

    /// Wait for every task to finish (call after [`Tasks::begin_shutdown`]).
    pub async fn wait(&self) {
        self.tracker.close();
        self.tracker.wait().await;
    }
}
