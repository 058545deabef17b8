//! What the relay depends on, and nothing more: the configuration (snapshot to read, writer for
//! a key's first use), limits, channel health, the upstream client, the log sink, metrics and a
//! place to run its few background writes. `app` builds one and hands it to HTTP.

use std::sync::Arc;

use crate::config::Configuration;
use crate::limits::Limiter;
use crate::metrics::Metrics;
use crate::store::sqlite::writer::LogWriter;
use crate::tasks::Tasks;

use super::client::UpstreamClient;
use super::routing::Health;

pub struct Relay {
    pub config: Arc<Configuration>,
    pub limits: Arc<Limiter>,
    pub health: Health,
    pub upstream: UpstreamClient,
    /// Where every authenticated request's row goes (batched; never awaited).
    pub logs: LogWriter,
    pub metrics: Metrics,
    /// Supervised background work started by requests (a key's first-use stamp).
    pub tasks: Tasks,
    /// The whole request body must arrive within this time (else 408).
    pub body_read_timeout: std::time::Duration,
    /// Cancelled when a shutdown's drain time is over: requests and streams still running end
    /// with an error in their client's protocol, and their rows say so.
    pub drain_over: tokio_util::sync::CancellationToken,
}

/// Default for [`Relay::body_read_timeout`].
pub const DEFAULT_BODY_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}
