//! Singleton jobs: work that must run on one instance of the cluster at a time (tombstone
//! cleanup, removing gone instances; later partition creation and log retention). Every
//! instance runs a [`JobRunner`]; each tick it takes or renews the lease of every job, and the
//! holder runs the jobs that are due with the lease's [`Grant`] — their writes go through
//! [`PgStore::fenced`], so a holder that was paused past its lease writes nothing once another
//! took over.
//!
//! Adding a job is one line: implement [`Job`] and `runner.with_job(MyJob::new(..))`.
//!
//! Starting it (the app):
//! ```ignore
//! let runner = JobRunner::new(store, instance_id, JobOptions {
//!         gauges: metrics.cluster_nodes.clone(), ..Default::default() })
//!     .with_job(TombstoneGc::default())
//!     .with_job(GoneInstances::default());
//! let jobs = runner.view(); // status() for GET /admin/api/cluster
//! tasks.spawn("cluster-jobs", runner.run(tasks.shutdown_token()));
//! ```

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use tokio_util::sync::CancellationToken;

use super::backoff::Backoff;
use crate::metrics::ClusterNodeGauges;
use crate::store::StoreError;
use crate::store::postgres::PgStore;
use crate::store::postgres::leases::{FencedError, Grant};

/// A job that runs on one instance of the cluster at a time.
pub trait Job: Send + Sync {
    /// Its lease's name (unique among jobs; also the `job` label of its metric).
    fn name(&self) -> &'static str;
    /// How often the holder runs it.
    fn every(&self) -> Duration;
    /// One run by the lease's holder. Every write goes through [`PgStore::fenced`] with
    /// `grant`; a run should end well within the lease's time to live (do big work in
    /// batches, each its own fenced transaction).
    fn run<'a>(
        &'a self,
        store: &'a PgStore,
        grant: &'a Grant,
    ) -> BoxFuture<'a, Result<(), FencedError>>;
}

/// Removes config tombstones older than `retention` (see
/// [`PgStore::collect_tombstones`]): a copy that has not pulled for that long resyncs whole.
#[derive(Debug, Clone)]
pub struct TombstoneGc {
    pub retention: Duration,
    pub every: Duration,
}

impl TombstoneGc {
    pub const DEFAULT_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);
}

impl Default for TombstoneGc {
    fn default() -> Self {
        Self {
            retention: Self::DEFAULT_RETENTION,
            every: Duration::from_secs(3600),
        }
    }
}

impl Job for TombstoneGc {
    fn name(&self) -> &'static str {
        "tombstone-gc"
    }

    fn every(&self) -> Duration {
        self.every
    }

    fn run<'a>(
        &'a self,
        store: &'a PgStore,
        grant: &'a Grant,
    ) -> BoxFuture<'a, Result<(), FencedError>> {
        Box::pin(async move {
            let collected = store.collect_tombstones(grant, self.retention).await?;
            if collected.removed > 0 {
                tracing::info!(
                    removed = collected.removed,
                    min_rev = collected.min_rev,
                    "removed old config tombstones; copies older than revision {} will resync",
                    collected.min_rev
                );
            }
            Ok(())
        })
    }
}

/// Removes the rows of instances not seen for `older_than`.
#[derive(Debug, Clone)]
pub struct GoneInstances {
    pub older_than: Duration,
    pub every: Duration,
}

impl Default for GoneInstances {
    fn default() -> Self {
        Self {
            older_than: Duration::from_secs(24 * 3600),
            every: Duration::from_secs(3600),
        }
    }
}

impl Job for GoneInstances {
    fn name(&self) -> &'static str {
        "gone-instances"
    }

    fn every(&self) -> Duration {
        self.every
    }

    fn run<'a>(
        &'a self,
        store: &'a PgStore,
        grant: &'a Grant,
    ) -> BoxFuture<'a, Result<(), FencedError>> {
        Box::pin(async move {
            let removed = store.remove_gone_instances(grant, self.older_than).await?;
            if removed > 0 {
                tracing::info!(removed, "removed instances not seen for a day");
            }
            Ok(())
        })
    }
}

/// How the runner runs.
#[derive(Debug, Clone)]
pub struct JobOptions {
    /// Between lease renewals (and checks whether a job is due). Well below `ttl`.
    pub tick: Duration,
    /// A lease lasts this long unless renewed: how long the cluster waits for a holder that
    /// died before another instance takes its jobs over.
    pub ttl: Duration,
    /// A renewal taking longer counts as failed.
    pub timeout: Duration,
    /// The longest delay between attempts while PostgreSQL fails.
    pub backoff_cap: Duration,
    /// Where `relaybox_cluster_lease_held{job}` goes.
    pub gauges: ClusterNodeGauges,
}

impl Default for JobOptions {
    fn default() -> Self {
        Self {
            tick: Duration::from_secs(10),
            ttl: Duration::from_secs(30),
            timeout: Duration::from_secs(10),
            backoff_cap: Duration::from_secs(60),
            gauges: ClusterNodeGauges::default(),
        }
    }
}

/// One job as the status shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobStatus {
    pub name: String,
    /// This instance holds its lease.
    pub held: bool,
    /// The lease's epoch while held.
    pub epoch: Option<u64>,
    /// Runs completed by this instance.
    pub runs: u64,
    pub last_run_ms_ago: Option<u64>,
    pub last_error: Option<String>,
}

#[derive(Debug, Clone)]
struct JobState {
    name: &'static str,
    epoch: Option<u64>,
    runs: u64,
    last_run: Option<Instant>,
    last_error: Option<String>,
}

/// The runner's state for status pages; a cheap handle.
#[derive(Debug, Clone, Default)]
pub struct JobsView {
    jobs: Arc<Mutex<Vec<JobState>>>,
}

impl JobsView {
    #[must_use]
    pub fn status(&self) -> Vec<JobStatus> {
        self.lock()
            .iter()
            .map(|job| JobStatus {
                name: job.name.to_string(),
                held: job.epoch.is_some(),
                epoch: job.epoch,
                runs: job.runs,
                last_run_ms_ago: job
                    .last_run
                    .map(|at| u64::try_from(at.elapsed().as_millis()).unwrap_or(u64::MAX)),
                last_error: job.last_error.clone(),
            })
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<JobState>> {
        self.jobs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn update(&self, index: usize, change: impl FnOnce(&mut JobState)) {
        if let Some(job) = self.lock().get_mut(index) {
            change(job);
        }
    }
}

struct Slot {
    job: Box<dyn Job>,
    grant: Option<Grant>,
    /// When it is due next (`None`: at once).
    next_run: Option<Instant>,
    /// Retries of a failing run (PostgreSQL answered, the job failed).
    retry: Backoff,
}

/// Runs the singleton jobs on this instance while it holds their leases (see the module docs).
pub struct JobRunner {
    store: Arc<PgStore>,
    holder: String,
    options: JobOptions,
    slots: Vec<Slot>,
    view: JobsView,
}

impl JobRunner {
    /// `holder`: this instance's id.
    #[must_use]
    pub fn new(store: Arc<PgStore>, holder: String, options: JobOptions) -> Self {
        Self {
            store,
            holder,
            options,
            slots: Vec::new(),
            view: JobsView::default(),
        }
    }

    /// Run `job` too.
    #[must_use]
    pub fn with_job(mut self, job: impl Job + 'static) -> Self {
        self.view.lock().push(JobState {
            name: job.name(),
            epoch: None,
            runs: 0,
            last_run: None,
            last_error: None,
        });
        self.options.gauges.set_lease_held(job.name(), false);
        self.slots.push(Slot {
            retry: Backoff::new(self.options.tick, job.every()),
            job: Box::new(job),
            grant: None,
            next_run: None,
        });
        self
    }

    #[must_use]
    pub fn view(&self) -> JobsView {
        self.view.clone()
    }

    /// Renew and run until `cancel`; then give the held leases up, so another instance takes
    /// the jobs over at once. Never fails: PostgreSQL errors are retried.
    pub async fn run(mut self, cancel: CancellationToken) -> anyhow::Result<()> {
        let mut backoff = Backoff::new(self.options.tick, self.options.backoff_cap);
        loop {
            // Shutdown does not wait for a run: dropping it rolls its transaction back.
            let outcome = tokio::select! {
                () = cancel.cancelled() => break,
                outcome = self.tick() => outcome,
            };
            let delay = match outcome {
                Ok(()) => {
                    if backoff.failures() > 0 {
                        tracing::info!("singleton jobs: PostgreSQL answers again");
                    }
                    backoff.succeeded();
                    self.options.tick
                }
                Err(err) => {
                    if backoff.failures() == 0 {
                        tracing::warn!(error = %err, "singleton jobs: cannot renew their leases; they pause here until PostgreSQL answers");
                    }
                    self.drop_grants(Some(&err));
                    backoff.failed()
                }
            };
            tokio::select! {
                () = cancel.cancelled() => break,
                () = tokio::time::sleep(delay) => {}
            }
        }
        self.release_all().await;
        Ok(())
    }

    /// Renew every lease, then run the due jobs of those held (all renewals first, so a long
    /// job never lets another job's lease lapse). Fails when PostgreSQL does not answer a
    /// renewal.
    async fn tick(&mut self) -> Result<(), StoreError> {
        for index in 0..self.slots.len() {
            self.renew(index).await?;
        }
        for index in 0..self.slots.len() {
            let slot = &self.slots[index];
            if slot.grant.is_some() && slot.next_run.is_none_or(|at| at <= Instant::now()) {
                self.run_job(index).await;
            }
        }
        Ok(())
    }

    async fn renew(&mut self, index: usize) -> Result<(), StoreError> {
        let name = self.slots[index].job.name();
        let renewal = self
            .store
            .acquire_or_renew(name, &self.holder, self.options.ttl);
        let grant = tokio::time::timeout(self.options.timeout, renewal)
            .await
            .map_err(|_| StoreError::Unreachable("a lease renewal timed out".into()))??;
        let slot = &mut self.slots[index];
        match (&grant, slot.grant.as_ref().map(|g| g.epoch)) {
            (Some(grant), before) if before != Some(grant.epoch) => {
                tracing::info!(
                    job = name,
                    epoch = grant.epoch,
                    "took the singleton job's lease"
                );
                // A new tenure: the previous holder's schedule is unknown; run at once.
                slot.next_run = None;
            }
            (None, Some(_)) => {
                tracing::info!(
                    job = name,
                    "another instance holds the singleton job's lease now"
                );
            }
            _ => {}
        }
        slot.grant = grant;
        let epoch = slot.grant.as_ref().map(|g| g.epoch);
        self.options.gauges.set_lease_held(name, epoch.is_some());
        self.view.update(index, |state| state.epoch = epoch);
        Ok(())
    }

    async fn run_job(&mut self, index: usize) {
        let slot = &mut self.slots[index];
        let Some(grant) = slot.grant.clone() else {
            return;
        };
        let name = slot.job.name();
        // A run longer than the lease could not commit anyway.
        let outcome = tokio::time::timeout(self.options.ttl, slot.job.run(&self.store, &grant))
            .await
            .unwrap_or_else(|_| {
                Err(FencedError::Store(StoreError::Backend(
                    "the run outlasted its lease; nothing it had not committed was kept".into(),
                )))
            });
        match outcome {
            Ok(()) => {
                slot.retry.succeeded();
                slot.next_run = Some(Instant::now() + slot.job.every());
                self.view.update(index, |state| {
                    state.runs += 1;
                    state.last_run = Some(Instant::now());
                    state.last_error = None;
                });
            }
            Err(FencedError::Lost { .. }) => {
                tracing::info!(
                    job = name,
                    "lost the singleton job's lease during its run; nothing was written"
                );
                slot.grant = None;
                self.options.gauges.set_lease_held(name, false);
                self.view.update(index, |state| state.epoch = None);
            }
            Err(FencedError::Store(err)) => {
                let delay = slot.retry.failed();
                tracing::warn!(job = name, error = %err, retry_in = ?delay, "singleton job failed");
                slot.next_run = Some(Instant::now() + delay);
                self.view
                    .update(index, |state| state.last_error = Some(err.to_string()));
            }
        }
    }

    /// Without an answer from PostgreSQL no lease can be trusted: run nothing until renewed.
    fn drop_grants(&mut self, err: Option<&StoreError>) {
        for (index, slot) in self.slots.iter_mut().enumerate() {
            slot.grant = None;
            self.options.gauges.set_lease_held(slot.job.name(), false);
            self.view.update(index, |state| {
                state.epoch = None;
                if let Some(err) = err {
                    state.last_error = Some(err.to_string());
                }
            });
        }
    }

    async fn release_all(&mut self) {
        for slot in &self.slots {
            let Some(grant) = &slot.grant else { continue };
            let release = self.store.release(grant);
            match tokio::time::timeout(Duration::from_secs(2), release).await {
                Ok(Ok(_)) => {}
                Ok(Err(err)) => {
                    tracing::debug!(job = grant.name, error = %err, "could not release the lease");
                }
                Err(_) => tracing::debug!(job = grant.name, "releasing the lease timed out"),
            }
        }
        self.drop_grants(None);
    }
}

/// Removes usage-counter buckets that ended before the longest window any limit of this
/// instance looks at (idempotent: only rows nobody reads any more go, so no fencing is needed).
pub struct CounterPrune {
    pub limits: Arc<crate::limits::Limiter>,
    pub every: Duration,
}

impl Job for CounterPrune {
    fn name(&self) -> &'static str {
        "usage-counter-prune"
    }

    fn every(&self) -> Duration {
        self.every
    }

    fn run<'a>(
        &'a self,
        store: &'a PgStore,
        _grant: &'a Grant,
    ) -> BoxFuture<'a, Result<(), FencedError>> {
        Box::pin(async move {
            let before = crate::domain::now() - self.limits.counter_retention();
            let removed = store.counters().prune_before(before).await?;
            if removed > 0 {
                tracing::debug!(removed, "pruned ended usage-counter buckets");
            }
            Ok(())
        })
    }
}
