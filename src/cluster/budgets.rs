//! Budgets, quotas and rate limits across the cluster's instances.
//!
//! [`BudgetSync`] runs beside the relay: every interval ([`DEFAULT_INTERVAL`], 2 s) it
//! publishes this instance's usage counters that changed (absolute totals per bucket, its own
//! rows only: [`crate::store::postgres::counters`]), reads the sums of every other instance and
//! hands them to the [`Limiter`], which adds them to its own figures on the request path
//! without ever waiting on PostgreSQL. It also passes the number of live instances on, so
//! requests per minute and concurrency are enforced on this instance's share.
//!
//! **Worst-case overshoot.** An instance's view of another's usage is at most about 2 × the
//! interval old (one interval until the other publishes, one until this one reads), so once a
//! budget is used up each instance can still admit what the *others* admitted in the last 2T
//! that it has not seen, and no more than its own traffic in 2T: the cluster over-admits at most
//! what it admits in 2T (N instances at r requests/s each: N·r·2T). Costs and tokens add the
//! requests in flight when the budget is reached (their cost is known only when they end; a
//! single instance has that term too). While PostgreSQL is unreachable the last figures stay
//! in use (they only leave rolling windows as time passes) and each instance enforces the rest
//! of the budget alone: at most N × what was left can be admitted.
//!
//! PostgreSQL being unreachable is never fatal: the loop keeps the unpublished rows, backs off
//! (doubling from the interval to [`MAX_BACKOFF`], with jitter) and republishes everything
//! once it is back (the database may have been restored). The status handle and the
//! `relaybox_budget_sync_errors_total` metric say how it goes.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

use crate::FastMap;
use crate::limits::Limiter;
use crate::store::StoreError;
use crate::store::postgres::PgStore;
use crate::store::postgres::counters::{CounterRow, Scope};

/// How often usage is exchanged; the overshoot bound grows with it.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(2);
/// The longest wait between attempts while PostgreSQL is unreachable.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Every bucket held is published again this often (heals rows lost on the PostgreSQL side).
const FULL_EXPORT_EVERY: Duration = Duration::from_secs(300);
/// One sync that takes longer than this has failed (a connection that went silent).
const SYNC_TIMEOUT: Duration = Duration::from_secs(15);
/// The last publish at shutdown waits no longer than this.
const FINAL_PUBLISH_TIMEOUT: Duration = Duration::from_secs(2);

/// How the exchange goes, for `/health` and `GET /admin/api/cluster`.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BudgetSyncStatus {
    /// The end of the last sync that published and read.
    #[serde(serialize_with = "rfc3339")]
    pub last_sync: Option<OffsetDateTime>,
    /// The last failure, kept after a success so it can be told when it was.
    pub last_error: Option<String>,
    #[serde(serialize_with = "rfc3339")]
    pub last_error_at: Option<OffsetDateTime>,
    /// Failures since the last success (0: in sync).
    pub consecutive_failures: u32,
    pub errors_total: u64,
    /// This instance's buckets waiting to be published.
    pub unpublished_rows: usize,
    /// The other instances' buckets in use.
    pub remote_rows: usize,
    /// The instances sharing per-minute and concurrency limits.
    pub live_instances: usize,
}

fn rfc3339<S: serde::Serializer>(at: &Option<OffsetDateTime>, s: S) -> Result<S::Ok, S::Error> {
    match at {
        Some(at) => s.serialize_str(&crate::domain::format_time(*at)),
        None => s.serialize_none(),
    }
}

impl BudgetSyncStatus {
    /// Whether the last attempt succeeded.
    #[must_use]
    pub fn in_sync(&self) -> bool {
        self.last_sync.is_some() && self.consecutive_failures == 0
    }
}

/// A cheap, cloneable view of a [`BudgetSync`]'s status.
#[derive(Debug, Clone, Default)]
pub struct BudgetSyncHandle(Arc<Mutex<BudgetSyncStatus>>);

impl BudgetSyncHandle {
    #[must_use]
    pub fn status(&self) -> BudgetSyncStatus {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BudgetSyncStatus> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

type LiveInstances = Box<dyn Fn() -> usize + Send + Sync>;

/// The loop that shares this instance's usage with the cluster and takes the others'.
pub struct BudgetSync {
    limiter: Arc<Limiter>,
    store: Arc<PgStore>,
    instance_id: String,
    interval: Duration,
    live_instances: Option<LiveInstances>,
    errors: Arc<AtomicU64>,
    status: BudgetSyncHandle,
    /// Exported rows not yet published; a newer figure of a bucket replaces the older one.
    unpublished: FastMap<(Scope, String, i64), CounterRow>,
    /// When every bucket is published again; `None`: at the next sync.
    next_full_export: Option<Instant>,
}

impl std::fmt::Debug for BudgetSync {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BudgetSync")
            .field("instance_id", &self.instance_id)
            .field("interval", &self.interval)
            .finish_non_exhaustive()
    }
}

impl BudgetSync {
    /// `instance_id` must stay the same across restarts of this data dir (its rows are
    /// republished under it after a restart; under a new id the old rows would count twice).
    /// `interval`: [`DEFAULT_INTERVAL`] unless there is a reason.
    #[must_use]
    pub fn new(
        limiter: Arc<Limiter>,
        store: Arc<PgStore>,
        instance_id: impl Into<String>,
        interval: Duration,
    ) -> Self {
        Self {
            limiter,
            store,
            instance_id: instance_id.into(),
            interval: interval.max(Duration::from_millis(10)),
            live_instances: None,
            errors: Arc::default(),
            status: BudgetSyncHandle::default(),
            unpublished: FastMap::default(),
            next_full_export: None,
        }
    }

    /// Where the number of live instances comes from (the heartbeat's view); read at every
    /// sync, also while PostgreSQL is unreachable, and handed to
    /// [`Limiter::set_live_instances`]. Without it the limiter keeps what it is told elsewhere.
    #[must_use]
    pub fn with_live_instances(
        mut self,
        source: impl Fn() -> usize + Send + Sync + 'static,
    ) -> Self {
        self.live_instances = Some(Box::new(source));
        self
    }

    /// Count failures into this counter too (`Metrics::budget_sync_errors`).
    #[must_use]
    pub fn with_error_counter(mut self, counter: Arc<AtomicU64>) -> Self {
        self.errors = counter;
        self
    }

    #[must_use]
    pub fn handle(&self) -> BudgetSyncHandle {
        self.status.clone()
    }

    /// Publish what changed here and take the others' sums, once. On failure nothing is lost:
    /// the rows wait for the next attempt and the limiter keeps the previous sums.
    pub async fn sync_once(&mut self) -> Result<(), StoreError> {
        if let Some(source) = &self.live_instances {
            self.limiter.set_live_instances(source());
        }
        let full = self.next_full_export.is_none_or(|at| Instant::now() >= at);
        let result = match tokio::time::timeout(SYNC_TIMEOUT, self.exchange(full)).await {
            Ok(result) => result,
            Err(_) => Err(StoreError::Unreachable(format!(
                "no answer from PostgreSQL within {} s",
                SYNC_TIMEOUT.as_secs()
            ))),
        };
        let now = crate::domain::now();
        let mut status = self.status.lock();
        status.unpublished_rows = self.unpublished.len();
        status.live_instances = self.limiter.live_instances();
        match &result {
            Ok(remote_rows) => {
                if full {
                    self.next_full_export = Some(Instant::now() + FULL_EXPORT_EVERY);
                }
                if status.consecutive_failures > 0 {
                    tracing::info!(
                        failures = status.consecutive_failures,
                        "budget sync with PostgreSQL works again"
                    );
                }
                status.last_sync = Some(now);
                status.consecutive_failures = 0;
                status.remote_rows = *remote_rows;
            }
            Err(err) => {
                // Once it is back, publish everything: PostgreSQL may have lost rows meanwhile.
                self.next_full_export = None;
                status.consecutive_failures = status.consecutive_failures.saturating_add(1);
                status.errors_total += 1;
                status.last_error = Some(err.to_string());
                status.last_error_at = Some(now);
                self.errors.fetch_add(1, Ordering::Relaxed);
                if status.consecutive_failures == 1 {
                    tracing::warn!(error = %err, "budget sync with PostgreSQL failed; the other instances' last known usage stays in use");
                } else {
                    tracing::debug!(error = %err, failures = status.consecutive_failures, "budget sync with PostgreSQL failed again");
                }
            }
        }
        result.map(|_| ())
    }

    /// Publish, then read. Returns how many of the others' buckets are in use.
    async fn exchange(&mut self, full: bool) -> Result<usize, StoreError> {
        for row in self.limiter.export_usage(full) {
            self.unpublished
                .insert((row.scope, row.subject.clone(), row.bucket), row);
        }
        self.publish().await?;
        let counters = self.store.counters();
        let others = counters
            .others(
                &self.instance_id,
                self.limiter.remote_since(),
                self.limiter.now(),
            )
            .await?;
        self.limiter.apply_remote_usage(&others);
        Ok(others.len())
    }

    /// Publish the waiting rows; on failure they keep waiting.
    async fn publish(&mut self) -> Result<(), StoreError> {
        // Buckets that no longer count anywhere need not wait through an outage.
        let since = self.limiter.remote_since().unix_timestamp();
        self.unpublished
            .retain(|_, row| row.ends_at.is_none_or(|end| end > since));
        // Copied, not drained: a publish cut short (shutdown) leaves them waiting.
        let rows: Vec<CounterRow> = self.unpublished.values().cloned().collect();
        self.store
            .counters()
            .publish(&self.instance_id, &rows)
            .await?;
        self.unpublished.clear();
        Ok(())
    }

    /// Sync every interval until `cancel`, backing off while PostgreSQL is unreachable; then
    /// publish one last time (briefly) so the others see this instance's final usage.
    /// Never fails: run it as a supervised task.
    pub async fn run(mut self, cancel: CancellationToken) -> anyhow::Result<()> {
        loop {
            let delay = tokio::select! {
                () = cancel.cancelled() => break,
                result = self.sync_once() => match result {
                    Ok(()) => self.interval,
                    Err(_) => backoff(self.interval, self.status.lock().consecutive_failures),
                },
            };
            tokio::select! {
                () = cancel.cancelled() => break,
                () = tokio::time::sleep(delay) => {}
            }
        }
        for row in self.limiter.export_usage(false) {
            self.unpublished
                .insert((row.scope, row.subject.clone(), row.bucket), row);
        }
        if !self.unpublished.is_empty()
            && tokio::time::timeout(FINAL_PUBLISH_TIMEOUT, self.publish())
                .await
                .map_or(true, |r| r.is_err())
        {
            tracing::info!(
                rows = self.unpublished.len(),
                "shutdown: the last usage counters were not published (they are rebuilt from the log at the next start)"
            );
        }
        Ok(())
    }
}

/// The wait after `failures` failures in a row: the interval doubled per failure, capped at
/// [`MAX_BACKOFF`], then between half and all of that at random (instances that lost
/// PostgreSQL together do not come back in step).
#[must_use]
pub fn backoff(interval: Duration, failures: u32) -> Duration {
    let doubled = interval.saturating_mul(1 << failures.saturating_sub(1).min(16));
    let capped = doubled.min(MAX_BACKOFF).max(interval);
    let random = getrandom::u32().unwrap_or(u32::MAX / 2);
    let fraction = 0.5 + f64::from(random) / f64::from(u32::MAX) / 2.0;
    capped.mul_f64(fraction)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        let interval = Duration::from_secs(2);
        for _ in 0..50 {
            let first = backoff(interval, 1);
            assert!(
                first >= Duration::from_secs(1) && first <= interval,
                "{first:?}"
            );
            let third = backoff(interval, 3);
            assert!(third >= Duration::from_secs(4) && third <= Duration::from_secs(8));
            let many = backoff(interval, 40);
            assert!(many >= MAX_BACKOFF / 2 && many <= MAX_BACKOFF, "{many:?}");
        }
        // Jitter: not every wait is the same.
        let waits: std::collections::BTreeSet<_> = (0..20).map(|_| backoff(interval, 5)).collect();
        assert!(waits.len() > 1);
    }
}
