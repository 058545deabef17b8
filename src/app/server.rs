//! The running server: an [`Instance`] plus everything that only exists while serving — the
//! relay's state (with the log writer), the config-file poller, supervised tasks and the local
//! control token.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::reload::Reloader;
use super::{DataDir, Instance, StartupError};
use crate::config::Configuration;
use crate::relay::Relay;
use crate::store::sqlite::writer::{LogWriter, WriterConfig};
use crate::tasks::Tasks;

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
    /// Whether config-file edits also wake the poller through file-system events.
    pub file_events: bool,
    pub writer: WriterConfig,
    /// How long a client may take to send a request body (408 after).
    pub body_read_timeout: Duration,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            poll_interval: Duration::from_secs(2),
            file_events: true,
            writer: WriterConfig::default(),
            body_read_timeout: crate::relay::state::DEFAULT_BODY_READ_TIMEOUT,
        }
    }
}

/// Everything the HTTP layer serves: the admin API and `/health` read it; the relay routes get
/// only [`App::relay`].
pub struct App {
    pub data: DataDir,
    pub config: Arc<Configuration>,
    /// Cluster mode only.
    pub cluster: Option<Arc<crate::cluster::Cluster>>,
    pub relay: Arc<Relay>,
    pub reloader: Arc<Reloader>,
    pub tasks: Tasks,
    pub control_token: String,
    pub started_at: time::OffsetDateTime,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("data", &self.data)
            .finish_non_exhaustive()
    }
}

impl App {
    /// Start the log writer and import the config files; background work starts in
    /// [`App::start_background`].
    pub fn new(instance: Instance, options: &ServerOptions) -> Result<Arc<App>, StartupError> {
        let Instance {
            data,
            config,
            cluster,
        } = instance;
        let writer =
            LogWriter::start(data.stores.logs.clone(), options.writer).map_err(|source| {
                StartupError::Io {
                    what: "cannot start the log writer in",
                    path: data.path.clone(),
                    source,
                }
            })?;
        let reloader = Reloader::new(
            Arc::clone(&config),
            data.stores.logs.clone(),
            data.path.clone(),
            options.poll_interval,
            options.file_events,
            cluster.clone(),
        );
        reloader.initial_sync();
        let token = crate::crypto::generate_client_key("ctl_").map_err(StartupError::Crypto)?;
        let limits = crate::limits::Limiter::new(Arc::new(crate::limits::SystemClock));
        let seeded = crate::limits::seed::seed_changed(
            &limits,
            &config.snapshot().state,
            &data.stores.logs,
        )?;
        tracing::debug!(seeded, "limit counters rebuilt from logs.sqlite");
        let upstream = crate::relay::client::UpstreamClient::new().map_err(|e| {
            StartupError::FileSystem(format!("cannot set up the upstream TLS client: {e}"))
        })?;
        let tasks = Tasks::new();
        let relay = Arc::new(Relay {
            config: Arc::clone(&config),
            limits,
            health: crate::relay::routing::Health::default(),
            upstream,
            logs: writer,
            metrics: crate::metrics::Metrics::default(),
            tasks: tasks.clone(),
            body_read_timeout: options.body_read_timeout,
            drain_over: tokio_util::sync::CancellationToken::new(),
        });
        Ok(Arc::new(App {
            data,
            config,
            cluster,
            relay,
            reloader,
            tasks,
            control_token: token.to_string(),
            started_at: crate::domain::now(),
        }))
    }

    fn control_path(&self) -> PathBuf {
        self.data.path.join(CONTROL_FILE)
    }

    /// Start the supervised workers and publish the control file for `addr`.
    pub fn start_background(self: &Arc<Self>, addr: SocketAddr) -> Result<(), StartupError> {
        let shutdown = self.tasks.shutdown_token();
        self.tasks.spawn(
            "config-file-poller",
            Arc::clone(&self.reloader).run(shutdown.clone()),
        );
        if let Err(err) = self.data.lock().set_listen(&addr.to_string()) {
            tracing::warn!(error = %err, "could not record the listen address in the instance lock");
        }
        self.tasks.spawn(
            "instance-lock-heartbeat",
            heartbeat(Arc::clone(self), shutdown.clone()),
        );
        self.tasks.spawn(
            "limits-sync",
            limits_sync(Arc::clone(self), shutdown.clone()),
        );
        if let Some(cluster) = &self.cluster {
            cluster.start(
                &self.tasks,
                &self.relay.limits,
                &self.data.stores.logs,
                &self.relay.metrics,
                &addr.to_string(),
            );
        }
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
        let writer = &self.relay.logs;
        tracing::info!(queued = writer.stats().queued, "flushing request logs");
        writer.close();
        let _ = std::fs::remove_file(self.control_path());
        tracing::info!(written = writer.stats().written, "stopped cleanly");
    }
}

/// Refresh the instance lock every few seconds; a lock taken over by another process (the same
/// files reached through another path, where file locks do not see each other) stops this one.
async fn heartbeat(
    app: Arc<App>,
    shutdown: tokio_util::sync::CancellationToken,
) -> anyhow::Result<()> {
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            () = tokio::time::sleep(crate::fsguard::HEARTBEAT_INTERVAL) => {}
        }
        let app = Arc::clone(&app);
        crate::store::blocking(move || app.data.lock().heartbeat())
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
    app: Arc<App>,
    shutdown: tokio_util::sync::CancellationToken,
) -> anyhow::Result<()> {
    let mut seen = app.config.snapshot().revision;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            () = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
        let snapshot = app.config.snapshot();
        if snapshot.revision == seen {
            continue;
        }
        seen = snapshot.revision;
        let app = Arc::clone(&app);
        let result = crate::store::blocking(move || {
            app.relay.logs.flush();
            crate::limits::seed::seed_changed(
                &app.relay.limits,
                &snapshot.state,
                &app.data.stores.logs,
            )
        })
        .await;
        if let Err(err) = result {
            tracing::warn!(error = %err, "could not re-seed limit counters; they keep their in-memory values");
        }
    }
}
