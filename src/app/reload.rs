//! cc-bridge JSON files in the data dir: imported at start and again whenever their *content*
//! changes, found by polling — and sooner on a local disk, where a file-system event (inotify)
//! wakes the poller at once.
//!
//! Polling is the truth because file-system events do not arrive on Docker Desktop mounts,
//! network shares or Unraid's FUSE `/mnt/user`; an event only makes the next poll come early,
//! through the same checks. Each poll compares a cheap signature (length,
//! mtime, inode, ctime) and hashes the content when it differs (and every 30th poll anyway, in
//! case a copy kept every attribute). A new content is applied only once it has been identical
//! on two consecutive polls, so a half-written file is never imported. A file that does not
//! parse or validate is rejected whole; the running configuration stays.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt as _;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::config::Configuration;
use crate::domain::channel::ChannelOrigin;
use crate::importers::cc_bridge::{self, ConfigFile, FileError};
use crate::store::ConfigOp;
use crate::store::sqlite::LogDb;

/// The import-history namespace of the data dir's own files (the CLI import uses `cc-bridge`).
const IMPORT_SOURCE: &str = "data-dir";
const FULL_HASH_EVERY: u32 = 30;
/// After a file-system event: how long to wait for the writer to finish, and the distance of
/// the two identical reads that settle a new content.
const EVENT_SETTLE: Duration = Duration::from_millis(100);

/// What `/health` and the admin API show about the config files.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReloadStatus {
    pub poll_interval_ms: u64,
    /// Whether a file-system watch wakes the poller early (inotify; on FUSE and network mounts
    /// it may stay silent, and polling still applies every change).
    pub file_events: bool,
    pub files: BTreeMap<String, FileStatus>,
    pub last_reload_at: Option<String>,
    pub last_error: Option<FileError>,
}

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FileStatus {
    pub present: bool,
    pub applied_sha256: Option<String>,
    pub applied_at: Option<String>,
    pub error: Option<FileError>,
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Signature {
    len: u64,
    mtime_ns: i128,
    ino: u64,
    ctime_ns: i128,
}

#[derive(Debug, Default)]
struct Watched {
    signature: Option<Signature>,
    /// Hash of the content last read.
    seen: Option<String>,
    /// How many consecutive polls saw `seen`.
    seen_polls: u32,
    /// Hash of the content last applied or rejected (never retried until it changes).
    settled: Option<String>,
}

pub struct Reloader {
    config: Arc<Configuration>,
    logs: LogDb,
    dir: PathBuf,
    interval: Duration,
    file_events: bool,
    status: Mutex<ReloadStatus>,
    watched: Mutex<BTreeMap<&'static str, Watched>>,
    wake: Notify,
    polls: Mutex<u32>,
    /// Cluster mode: file contents are applied once cluster-wide (their hashes are kept in
    /// PostgreSQL), whichever instance sees them first.
    cluster: Option<Arc<crate::cluster::Cluster>>,
}

impl std::fmt::Debug for Reloader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reloader")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn signature(meta: &std::fs::Metadata) -> Signature {
    Signature {
        len: meta.len(),
        mtime_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
        ino: meta.ino(),
        ctime_ns: i128::from(meta.ctime()) * 1_000_000_000 + i128::from(meta.ctime_nsec()),
    }
}

impl Reloader {
    pub fn new(
        config: Arc<Configuration>,
        logs: LogDb,
        dir: PathBuf,
        interval: Duration,
        file_events: bool,
        cluster: Option<Arc<crate::cluster::Cluster>>,
    ) -> Arc<Self> {
        Arc::new(Self {
            config,
            logs,
            dir,
            interval,
            file_events,
            status: Mutex::new(ReloadStatus {
                poll_interval_ms: u64::try_from(interval.as_millis()).unwrap_or(u64::MAX),
                ..ReloadStatus::default()
            }),
            watched: Mutex::new(BTreeMap::new()),
            wake: Notify::new(),
            polls: Mutex::new(0),
            cluster,
        })
    }

    #[must_use]
    pub fn status(&self) -> ReloadStatus {
        self.status
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Poll now instead of at the next tick (SIGHUP, `POST /admin/api/reload`).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// The start-up import: apply whatever differs from what was applied last time, without
    /// waiting for the settle poll (nothing is writing the files while we start).
    pub fn initial_sync(&self) {
        for file in ConfigFile::ALL {
            self.check(file, true);
        }
    }

    /// The poll loop; returns when `shutdown` is cancelled. A wake-up (a file-system event,
    /// SIGHUP, the admin API) polls after a short pause and, while a new content is still
    /// unsettled, once more shortly after: a local edit applies in about 200 ms instead of two
    /// poll intervals.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) -> anyhow::Result<()> {
        let _events = self.watch_events();
        loop {
            let woken = tokio::select! {
                () = shutdown.cancelled() => return Ok(()),
                () = tokio::time::sleep(self.interval) => false,
                () = self.wake.notified() => true,
            };
            if woken {
                tokio::time::sleep(EVENT_SETTLE).await;
            }
            let this = Arc::clone(&self);
            crate::store::blocking(move || this.poll_once()).await;
            if woken && self.unsettled() {
                tokio::time::sleep(EVENT_SETTLE).await;
                let this = Arc::clone(&self);
                crate::store::blocking(move || this.poll_once()).await;
            }
        }
    }

    /// An inotify watch on the data dir that wakes the poller when a config file changes; `None`
    /// (polling only) where the platform or the mount offers none.
    fn watch_events(self: &Arc<Self>) -> Option<notify::RecommendedWatcher> {
        use notify::Watcher as _;
        if !self.file_events {
            return None;
        }
        let names: Vec<&'static str> = ConfigFile::ALL.iter().map(|f| f.file_name()).collect();
        let reloader = Arc::downgrade(self);
        let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            let Ok(event) = event else { return };
            let ours = event.paths.iter().any(|path| {
                path.file_name()
                    .and_then(|name| name.to_str())
                    .is_some_and(|name| names.contains(&name))
            });
            if ours && let Some(reloader) = reloader.upgrade() {
                reloader.wake();
            }
        });
        let mut watcher = match watcher {
            Ok(watcher) => watcher,
            Err(err) => {
                tracing::info!(error = %err, "no file-system events; config files are polled only");
                return None;
            }
        };
        if let Err(err) = watcher.watch(&self.dir, notify::RecursiveMode::NonRecursive) {
            tracing::info!(error = %err, "no file-system events; config files are polled only");
            return None;
        }
        self.lock_status().file_events = true;
        Some(watcher)
    }

    /// Whether a file's new content has been read once but not yet confirmed by a second read.
    fn unsettled(&self) -> bool {
        self.watched
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .values()
            .any(|w| w.seen.is_some() && w.seen != w.settled)
    }

    fn lock_status(&self) -> std::sync::MutexGuard<'_, ReloadStatus> {
        self.status
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// One poll over every file (blocking IO; also called directly by tests).
    pub fn poll_once(&self) {
        let full_hash = {
            let mut polls = self
                .polls
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            *polls = polls.wrapping_add(1);
            polls.is_multiple_of(FULL_HASH_EVERY)
        };
        for file in ConfigFile::ALL {
            self.check(file, full_hash);
        }
    }

    fn check(&self, file: ConfigFile, force_hash: bool) {
        let name = file.file_name();
        let path = self.dir.join(name);
        let meta = std::fs::metadata(&path).ok();
        self.update_status(name, |s| s.present = meta.is_some());
        let Some(meta) = meta else { return };
        let mut watched = self
            .watched
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let entry = watched.entry(name).or_default();
        if entry.settled.is_none() {
            entry.settled = self.logs.last_applied(IMPORT_SOURCE, name).ok().flatten();
        }
        let sig = signature(&meta);
        let initial = entry.signature.is_none();
        if entry.signature.as_ref() == Some(&sig) && !force_hash && entry.seen_polls >= 2 {
            return;
        }
        entry.signature = Some(sig);
        let Ok(bytes) = std::fs::read(&path) else {
            return;
        };
        let hash = sha256_hex(&bytes);
        if entry.seen.as_deref() == Some(hash.as_str()) {
            entry.seen_polls += 1;
        } else {
            entry.seen = Some(hash.clone());
            entry.seen_polls = 1;
        }
        let settled_now = entry.seen_polls >= 2 || (initial && force_hash);
        if entry.settled.as_deref() == Some(hash.as_str()) || !settled_now {
            return;
        }
        let previous = entry.settled.replace(hash.clone());
        drop(watched);
        if let Some(cluster) = &self.cluster {
            match cluster.file_applied(name, &hash) {
                Ok(false) => {}
                Ok(true) => {
                    tracing::info!(
                        file = name,
                        "this content was applied in the cluster already (by another instance); not applied again"
                    );
                    self.settle(name, &hash, "applied in the cluster");
                    return;
                }
                Err(err) => {
                    // PostgreSQL unreachable: the configuration is read-only; try again later.
                    tracing::debug!(file = name, error = %err, "config file waits for PostgreSQL");
                    self.lock_watched().entry(name).or_default().settled = previous;
                    return;
                }
            }
        }
        self.apply(file, &bytes, &hash);
    }

    fn lock_watched(&self) -> std::sync::MutexGuard<'_, BTreeMap<&'static str, Watched>> {
        self.watched
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Record a content as applied without applying it here.
    fn settle(&self, name: &str, hash: &str, note: &str) {
        if let Err(err) = self
            .logs
            .record_import(IMPORT_SOURCE, name, hash, "applied", note)
        {
            tracing::warn!(error = %err, "could not record the import");
        }
        self.update_status(name, |s| {
            s.applied_sha256 = Some(hash.to_string());
            s.error = None;
        });
    }

    fn apply(&self, file: ConfigFile, bytes: &[u8], hash: &str) {
        let name = file.file_name();
        // quota_usage.json seeds the counters once; afterwards relaybox owns them.
        if file == ConfigFile::QuotaUsage
            && matches!(self.logs.last_applied(IMPORT_SOURCE, name), Ok(Some(_)))
        {
            tracing::info!(
                file = name,
                "already imported once; later changes are not re-imported"
            );
            return;
        }
        let result = self.plan_and_apply(file, bytes);
        let at = crate::domain::now().to_string();
        let logs = &self.logs;
        match result {
            Ok(changes) => {
                tracing::info!(file = name, changes, "applied config file");
                if let Some(cluster) = &self.cluster
                    && let Err(err) = cluster.record_file(name, hash)
                {
                    tracing::warn!(file = name, error = %err, "could not record the applied file in PostgreSQL");
                }
                if let Err(err) = logs.record_import(IMPORT_SOURCE, name, hash, "applied", "") {
                    tracing::warn!(error = %err, "could not record the import");
                }
                let mut status = self
                    .status
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                status.last_reload_at = Some(at.clone());
                if status.last_error.as_ref().is_some_and(|e| e.file == name) {
                    status.last_error = None;
                }
                let file_status = status.files.entry(name.to_string()).or_default();
                file_status.applied_sha256 = Some(hash.to_string());
                file_status.applied_at = Some(at);
                file_status.error = None;
            }
            Err(error) => {
                tracing::error!(file = name, error = %error, "config file rejected; the running configuration stays");
                let detail = error.to_string();
                if let Err(err) = logs.record_import(IMPORT_SOURCE, name, hash, "rejected", &detail)
                {
                    tracing::warn!(error = %err, "could not record the rejection");
                }
                let mut status = self
                    .status
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                status.last_error = Some(error.clone());
                status.files.entry(name.to_string()).or_default().error = Some(error);
            }
        }
    }

    /// Parse, validate and apply one file; returns how many records changed. The file is
    /// planned inside the config write, against the committed state, so an admin change made
    /// meanwhile is compared with, not overwritten blindly.
    fn plan_and_apply(&self, file: ConfigFile, bytes: &[u8]) -> Result<usize, FileError> {
        let store_error = |e: &dyn std::fmt::Display| FileError {
            file: file.file_name().to_string(),
            line: None,
            column: None,
            field: None,
            reason: format!("could not be applied: {e}"),
        };
        if file == ConfigFile::QuotaUsage {
            let config =
                std::fs::read(self.dir.join(ConfigFile::Config.file_name())).unwrap_or_default();
            let entries = cc_bridge::plan_quota_usage(bytes, &config)?;
            for entry in &entries {
                self.logs
                    .put_channel_quota(&entry.channel_id, entry.used, &entry.last_reset_at)
                    .map_err(|e| store_error(&e))?;
            }
            return Ok(entries.len());
        }
        let mut changes = 0;
        let written = self.config.write(|committed| {
            let ops: Vec<ConfigOp> = match file {
                ConfigFile::Config => cc_bridge::plan_config(
                    bytes,
                    committed,
                    self.config.cipher(),
                    ChannelOrigin::ConfigFile,
                )?,
                ConfigFile::Pricing => cc_bridge::plan_pricing(bytes, committed)?,
                ConfigFile::Aliases => cc_bridge::plan_aliases(bytes, committed)?,
                ConfigFile::QuotaUsage => Vec::new(),
            };
            changes = ops.len();
            Ok::<_, ReloadFailure>(ops)
        });
        match written {
            Ok(_) => Ok(changes),
            Err(ReloadFailure::File(error)) => Err(error),
            Err(ReloadFailure::Write(error)) => Err(store_error(&error)),
        }
    }

    fn update_status(&self, name: &str, change: impl FnOnce(&mut FileStatus)) {
        let mut status = self
            .status
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        change(status.files.entry(name.to_string()).or_default());
    }
}

/// Why a file's change was not written: the file itself, or the write.
enum ReloadFailure {
    File(FileError),
    Write(crate::config::WriteError),
}

impl From<FileError> for ReloadFailure {
    fn from(error: FileError) -> Self {
        Self::File(error)
    }
}

impl From<crate::config::WriteError> for ReloadFailure {
    fn from(error: crate::config::WriteError) -> Self {
        Self::Write(error)
    }
}
