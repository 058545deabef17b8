//! The heartbeat: every few seconds this instance upserts its row in `instances` (what it has
//! applied, its log backlog, how stale its config is) and reads everyone's, so it knows how many
//! instances are live (the limits divide by that), what `GET /admin/api/cluster` shows, and how
//! far its clock is from PostgreSQL's.
//!
//! PostgreSQL unreachable is never fatal: the last view is kept (marked stale) and the beat is
//! retried with a growing, jittered delay. The live count never drops below 1 — this instance
//! is live whatever PostgreSQL says.
//!
//! Starting it (the app):
//! ```ignore
//! let report = Arc::new(InstanceReport::default());
//! let heartbeat = Heartbeat::new(store, Identity::new(id, hostname, listen), report.clone(),
//!     HeartbeatOptions { gauges: metrics.cluster_nodes.clone(), ..Default::default() });
//! let view = heartbeat.view(); // live_instances() for the limits, status() for /health
//! tasks.spawn("cluster-heartbeat", heartbeat.run(tasks.shutdown_token()));
//! ```

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::backoff::Backoff;
use crate::limits::{Clock, SystemClock};
use crate::metrics::ClusterNodeGauges;
use crate::store::StoreError;
use crate::store::postgres::PgStore;
use crate::store::postgres::instances::{Beat, ClockSkew, InstanceInfo, LIVE_WITHIN};

/// Who this instance is, as its row shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub instance_id: String,
    pub hostname: String,
    pub version: String,
    /// The address it serves on.
    pub listen: String,
}

impl Identity {
    /// This binary's version.
    #[must_use]
    pub fn new(instance_id: String, hostname: String, listen: String) -> Self {
        Self {
            instance_id,
            hostname,
            version: env!("CARGO_PKG_VERSION").to_string(),
            listen,
        }
    }
}

/// What the rest of the instance tells the cluster through the heartbeat; set by whoever knows
/// (the config puller, the log shipper), read at each beat. Shared behind an `Arc`.
#[derive(Debug, Default)]
pub struct InstanceReport {
    applied_rev: AtomicU64,
    log_backlog_rows: AtomicU64,
    log_backlog_age_ms: AtomicU64,
    config_stale_since: Mutex<Option<Instant>>,
}

impl InstanceReport {
    /// The config revision the local copy has applied.
    pub fn set_applied_rev(&self, rev: u64) {
        self.applied_rev.store(rev, Ordering::Relaxed);
    }

    /// Request-log rows not yet shipped, and the age of the oldest.
    pub fn set_log_backlog(&self, rows: u64, oldest: Duration) {
        self.log_backlog_rows.store(rows, Ordering::Relaxed);
        let age = u64::try_from(oldest.as_millis()).unwrap_or(u64::MAX);
        self.log_backlog_age_ms.store(age, Ordering::Relaxed);
    }

    /// Since when the local config copy could not be refreshed (`None`: it is fresh).
    pub fn set_config_stale_since(&self, since: Option<Instant>) {
        *self
            .config_stale_since
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = since;
    }

    fn fill(&self, beat: &mut Beat) {
        beat.applied_rev = self.applied_rev.load(Ordering::Relaxed);
        beat.log_backlog_rows = self.log_backlog_rows.load(Ordering::Relaxed);
        beat.log_backlog_age =
            Duration::from_millis(self.log_backlog_age_ms.load(Ordering::Relaxed));
        beat.config_stale_for = self
            .config_stale_since
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .map(|since| since.elapsed());
    }
}

/// How the heartbeat runs.
#[derive(Clone)]
pub struct HeartbeatOptions {
    /// Between beats while PostgreSQL answers.
    pub interval: Duration,
    /// Seen this recently = live.
    pub live_within: Duration,
    /// A beat (the upsert and the read of all rows) taking longer counts as failed.
    pub timeout: Duration,
    /// The longest delay between attempts while PostgreSQL fails.
    pub backoff_cap: Duration,
    /// A clock skew beyond this is warned about (once, until it is back within).
    pub skew_alarm: Duration,
    /// This instance's clock (tests shift it).
    pub clock: Arc<dyn Clock>,
    /// Where `relaybox_cluster_live_instances` goes.
    pub gauges: ClusterNodeGauges,
}

impl Default for HeartbeatOptions {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(5),
            live_within: LIVE_WITHIN,
            timeout: Duration::from_secs(10),
            backoff_cap: Duration::from_secs(30),
            skew_alarm: Duration::from_secs(2),
            clock: Arc::new(SystemClock),
            gauges: ClusterNodeGauges::default(),
        }
    }
}

impl std::fmt::Debug for HeartbeatOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeartbeatOptions")
            .field("interval", &self.interval)
            .field("live_within", &self.live_within)
            .field("timeout", &self.timeout)
            .field("backoff_cap", &self.backoff_cap)
            .field("skew_alarm", &self.skew_alarm)
            .finish_non_exhaustive()
    }
}

/// What the heartbeat knows about the cluster; a cheap handle (clone it freely).
#[derive(Debug, Clone)]
pub struct ClusterView {
    live: Arc<AtomicUsize>,
    state: Arc<Mutex<ViewState>>,
}

#[derive(Debug, Default)]
struct ViewState {
    instances: Vec<InstanceInfo>,
    last_beat: Option<Instant>,
    failing_since: Option<Instant>,
    last_error: Option<String>,
    clock_skew: Option<ClockSkew>,
    skew_alarm: bool,
}

/// The view for `/health` and `GET /admin/api/cluster`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterStatus {
    /// Live instances, this one included (at least 1).
    pub live_instances: usize,
    /// Every instance PostgreSQL knows, as of the last successful beat.
    pub instances: Vec<InstanceInfo>,
    /// The last beat failed: the view is as of `last_heartbeat_ms_ago`.
    pub stale: bool,
    /// Since the last successful beat (`None`: none yet).
    pub last_heartbeat_ms_ago: Option<u64>,
    /// How long beats have been failing.
    pub failing_for_ms: Option<u64>,
    pub last_error: Option<String>,
    /// This instance's clock minus PostgreSQL's.
    pub clock_skew_ms: Option<i64>,
    /// The skew is beyond the alarm threshold (2 s by default).
    pub clock_skew_alarm: bool,
}

fn ms(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

impl Default for ClusterView {
    fn default() -> Self {
        Self {
            live: Arc::new(AtomicUsize::new(1)),
            state: Arc::default(),
        }
    }
}

impl ClusterView {
    /// Live instances, this one included: at least 1, and the last known count while
    /// PostgreSQL is unreachable. One atomic load (fine on the request path).
    #[must_use]
    pub fn live_instances(&self) -> usize {
        self.live.load(Ordering::Relaxed).max(1)
    }

    /// The counter behind [`ClusterView::live_instances`], for a component that keeps it
    /// (the limiter). Never below 1.
    #[must_use]
    pub fn live_counter(&self) -> Arc<AtomicUsize> {
        Arc::clone(&self.live)
    }

    #[must_use]
    pub fn status(&self) -> ClusterStatus {
        let state = self.lock();
        ClusterStatus {
            live_instances: self.live_instances(),
            instances: state.instances.clone(),
            stale: state.failing_since.is_some(),
            last_heartbeat_ms_ago: state.last_beat.map(|at| ms(at.elapsed())),
            failing_for_ms: state.failing_since.map(|at| ms(at.elapsed())),
            last_error: state.last_error.clone(),
            clock_skew_ms: state.clock_skew.map(|skew| skew.millis),
            clock_skew_alarm: state.skew_alarm,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ViewState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The heartbeat loop (see the module docs).
pub struct Heartbeat {
    store: Arc<PgStore>,
    identity: Identity,
    report: Arc<InstanceReport>,
    options: HeartbeatOptions,
    view: ClusterView,
}

impl Heartbeat {
    #[must_use]
    pub fn new(
        store: Arc<PgStore>,
        identity: Identity,
        report: Arc<InstanceReport>,
        options: HeartbeatOptions,
    ) -> Self {
        // Cluster mode from the start: itself, until the first beat says more.
        options.gauges.set_live_instances(1);
        Self {
            store,
            identity,
            report,
            options,
            view: ClusterView::default(),
        }
    }

    /// Like [`Heartbeat::new`], filling a view handed out before the heartbeat existed.
    #[must_use]
    pub fn with_view(
        store: Arc<PgStore>,
        identity: Identity,
        report: Arc<InstanceReport>,
        options: HeartbeatOptions,
        view: ClusterView,
    ) -> Self {
        Self {
            view,
            ..Self::new(store, identity, report, options)
        }
    }

    /// The handle the rest of the instance reads; valid before `run` starts (1 live instance).
    #[must_use]
    pub fn view(&self) -> ClusterView {
        self.view.clone()
    }

    /// Beat until `cancel`; then mark this instance stopped (so the others stop counting it at
    /// once) and return. Never fails: PostgreSQL errors are retried.
    pub async fn run(self, cancel: CancellationToken) -> anyhow::Result<()> {
        let mut backoff = Backoff::new(self.options.interval, self.options.backoff_cap);
        let mut beat = Beat {
            instance_id: self.identity.instance_id.clone(),
            hostname: self.identity.hostname.clone(),
            version: self.identity.version.clone(),
            listen: self.identity.listen.clone(),
            first: true,
            applied_rev: 0,
            log_backlog_rows: 0,
            log_backlog_age: Duration::ZERO,
            clock_skew_ms: None,
            config_stale_for: None,
        };
        loop {
            self.report.fill(&mut beat);
            let outcome = tokio::select! {
                () = cancel.cancelled() => break,
                outcome = self.beat_once(&mut beat) => outcome,
            };
            let delay = match outcome {
                Ok(()) => {
                    if backoff.failures() > 0 {
                        tracing::info!(
                            live = self.view.live_instances(),
                            "cluster heartbeat: PostgreSQL answers again"
                        );
                    }
                    backoff.succeeded();
                    self.options.interval
                }
                Err(err) => {
                    if backoff.failures() == 0 {
                        tracing::warn!(
                            error = %err,
                            live = self.view.live_instances(),
                            "cluster heartbeat failed; keeping the last known view of the cluster and retrying"
                        );
                    } else {
                        tracing::debug!(error = %err, "cluster heartbeat failed again");
                    }
                    self.failed(&err);
                    backoff.failed()
                }
            };
            tokio::select! {
                () = cancel.cancelled() => break,
                () = tokio::time::sleep(delay) => {}
            }
        }
        // Best effort: a stop that cannot reach PostgreSQL just ages out of the live window.
        let goodbye = self.store.mark_stopped(&self.identity.instance_id);
        match tokio::time::timeout(Duration::from_secs(2), goodbye).await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => tracing::debug!(error = %err, "could not mark this instance stopped"),
            Err(_) => tracing::debug!("marking this instance stopped timed out"),
        }
        Ok(())
    }

    async fn beat_once(&self, beat: &mut Beat) -> Result<(), StoreError> {
        let work = async {
            let skew = self.store.heartbeat(beat, &*self.options.clock).await?;
            // The row is written: later beats keep its start time.
            beat.first = false;
            beat.clock_skew_ms = Some(skew.millis);
            let instances = self.store.list_instances(self.options.live_within).await?;
            Ok::<_, StoreError>((skew, instances))
        };
        let (skew, instances) = tokio::time::timeout(self.options.timeout, work)
            .await
            .map_err(|_| {
                StoreError::Unreachable(format!("no answer within {:?}", self.options.timeout))
            })??;
        self.skew_measured(skew);
        let live = instances.iter().filter(|i| i.live).count().max(1);
        self.view.live.store(live, Ordering::Relaxed);
        self.options.gauges.set_live_instances(live as u64);
        let mut state = self.view.lock();
        state.instances = instances;
        state.last_beat = Some(Instant::now());
        state.failing_since = None;
        state.last_error = None;
        Ok(())
    }

    /// Keep the last view, marked stale since the first failure.
    fn failed(&self, err: &StoreError) {
        let mut state = self.view.lock();
        state.failing_since.get_or_insert_with(Instant::now);
        state.last_error = Some(err.to_string());
    }

    /// Warn once when the skew goes beyond the alarm (beyond the measurement's own
    /// uncertainty), and once when it is back.
    fn skew_measured(&self, skew: ClockSkew) {
        let alarm = i64::try_from(self.options.skew_alarm.as_millis()).unwrap_or(i64::MAX);
        let uncertainty = i64::try_from((skew.round_trip / 2).as_millis()).unwrap_or(0);
        let beyond = skew.millis.abs() - uncertainty > alarm;
        let mut state = self.view.lock();
        state.clock_skew = Some(skew);
        if beyond && !state.skew_alarm {
            tracing::warn!(
                skew_ms = skew.millis,
                "this instance's clock is {} ms {} PostgreSQL's: leases and liveness use PostgreSQL's clock, but log timestamps and day boundaries use this one; sync the clock (NTP)",
                skew.millis.abs(),
                if skew.millis > 0 {
                    "ahead of"
                } else {
                    "behind"
                }
            );
        } else if !beyond && state.skew_alarm {
            tracing::info!(
                skew_ms = skew.millis,
                "this instance's clock is back in line with PostgreSQL's"
            );
        }
        state.skew_alarm = beyond;
    }
}
