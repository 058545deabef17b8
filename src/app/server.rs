//! The running server: the core plus everything that only exists while serving — the log
//! writer, the config-file poller, supervised tasks and the local control token.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::reload::Reloader;
use super::tasks::Tasks;
use super::{Core, StartupError};
use crate::store::sqlite::writer::{LogWriter, WriterConfig};

/// Written to `data/control.json` (0600) while the server runs, so CLI commands on the same
/// machine find it and authenticate without the admin key. Whoever can read it can already
/// read the whole data dir.
pub const CONTROL_FILE: &str = "control.json";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ControlFile {
    pub url: String,
    pub token: String,
    pub pid: u32,
}

#[derive(Debug, Clone)]
pub struct ServerOptions {
    pub poll_interval: Duration,
    pub writer: WriterConfig,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            poll_interval: Duration::from_secs(2),
            writer: WriterConfig::default(),
        }
    }
}

pub struct Server {
    pub core: Arc<Core>,
    pub upstream: crate::relay::client::UpstreamClient,
    pub health: crate::relay::routing::Health,
    pub limits: Arc<crate::limits::Limiter>,
    pub metrics: crate::metrics::Metrics,
    pub writer: LogWriter,
    pub reloader: Arc<Reloader>,
    pub tasks: Tasks,
    pub control_token: String,
    pub started_at: time::OffsetDateTime,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("core", &self.core)
            .finish_non_exhaustive()
    }
}

impl Server {
    /// Start the log writer and import the config files; background work starts in
    /// [`Server::start_background`].
    pub fn new(core: Core, options: &ServerOptions) -> Result<Arc<Server>, StartupError> {
        let core = Arc::new(core);
        let writer =
            LogWriter::start(core.stores().logs.clone(), options.writer).map_err(|source| {
                StartupError::Io {
                    what: "cannot start the log writer in",
                    path: core.data.path.clone(),
                    source,
                }
            })?;
        let reloader = Reloader::new(Arc::clone(&core), options.poll_interval);
        reloader.initial_sync();
        let token = crate::crypto::generate_client_key("ctl_").map_err(StartupError::Crypto)?;
        let limits = crate::limits::Limiter::new(Arc::new(crate::limits::SystemClock));
        let seeded =
            crate::limits::seed::seed_changed(&limits, &core.live().state, &core.stores().logs)?;
        tracing::debug!(seeded, "limit counters rebuilt from logs.sqlite");
        let upstream = crate::relay::client::UpstreamClient::new().map_err(|e| {
            StartupError::FileSystem(format!("cannot set up the upstream TLS client: {e}"))
        })?;
        Ok(Arc::new(Server {
            core,
            upstream,
            health: crate::relay::routing::Health::default(),
            limits,
            metrics: crate::metrics::Metrics::default(),
            writer,
            reloader,
            tasks: Tasks::new(),
            control_token: token.to_string(),
            started_at: crate::domain::now(),
        }))
    }

    fn control_path(&self) -> PathBuf {
        self.core.data.path.join(CONTROL_FILE)
    }

    /// Start the supervised workers and publish the control file for `addr`.
    pub fn start_background(self: &Arc<Self>, addr: SocketAddr) -> Result<(), StartupError> {
        let shutdown = self.tasks.shutdown_token();
        self.tasks.spawn(
            "config-file-poller",
            Arc::clone(&self.reloader).run(shutdown.clone()),
        );
        if let Err(err) = self.core.data.lock().set_listen(&addr.to_string()) {
            tracing::warn!(error = %err, "could not record the listen address in the instance lock");
        }
        self.tasks.spawn(
            "instance-lock-heartbeat",
            heartbeat(Arc::clone(&self.core), shutdown.clone()),
        );
        self.tasks.spawn(
            "limits-sync",
            limits_sync(Arc::clone(self), shutdown.clone()),
        );
        let host = if addr.ip().is_unspecified() {
            "127.0.0.1".to_string()
        } else {
            addr.ip().to_string()
        };
        let host = if host.contains(':') {
            format!("[{host}]")
        } else {
            host
        };
        let control = ControlFile {
            url: format!("http://{host}:{}", addr.port()),
            token: self.control_token.clone(),
            pid: std::process::id(),
        };
        let body = serde_json::to_vec_pretty(&control).unwrap_or_default();
        let path = self.control_path();
        super::write_private_file(&path, &body).map_err(|source| StartupError::Io {
            what: "cannot write",
            path,
            source,
        })?;
        Ok(())
    }

    /// The shutdown sequence after the HTTP server has drained its in-flight requests:
    /// 1. stop background workers,
    /// 2. commit every queued log row,
    /// 3. remove the control file.
    ///
    /// The stores close when the last reference to the core drops.
    pub async fn finish(&self) {
        self.tasks.begin_shutdown();
        self.tasks.wait().await;
        let stats = self.writer.stats();
        tracing::info!(queued = stats.queued, "flushing request logs");
        self.writer.close();
        let _ = std::fs::remove_file(self.control_path());
        tracing::info!(written = self.writer.stats().written, "stopped cleanly");
    }
}

/// Refresh the instance lock every few seconds; a lock taken over by another process (the same
/// files reached through another path, where file locks do not see each other) stops this one.
async fn heartbeat(
    core: Arc<Core>,
    shutdown: tokio_util::sync::CancellationToken,
) -> anyhow::Result<()> {
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            () = tokio::time::sleep(crate::fsguard::HEARTBEAT_INTERVAL) => {}
        }
        let core = Arc::clone(&core);
        crate::store::blocking(move || core.data.lock().heartbeat())
            .await
            .map_err(|err| {
                anyhow::anyhow!(
                    "{err}; stopping so two relaybox processes never write one data dir"
                )
            })?;
    }
}

/// After a configuration change, re-seed the counters of keys and channels whose limits changed
/// (the log rows are flushed first, so the seed sees every finished request).
async fn limits_sync(
    server: Arc<Server>,
    shutdown: tokio_util::sync::CancellationToken,
) -> anyhow::Result<()> {
    let mut seen = server.core.live().revision;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            () = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
        let live = server.core.live();
        if live.revision == seen {
            continue;
        }
        seen = live.revision;
        let server = Arc::clone(&server);
        let result = crate::store::blocking(move || {
            server.writer.flush();
            crate::limits::seed::seed_changed(
                &server.limits,
                &live.state,
                &server.core.stores().logs,
            )
        })
        .await;
        if let Err(err) = result {
            tracing::warn!(error = %err, "could not re-seed limit counters; they keep their in-memory values");
        }
    }
}
