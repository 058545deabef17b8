//! The request-log shipper: copies `logs.sqlite`'s rows to the cluster's PostgreSQL, in `seq`
//! order, from the cursor in `ship_cursor` ([`crate::store::sqlite::outbox`]).
//!
//! One step ([`LogShipper::ship_once`]): read up to a batch of rows after the cursor (a
//! read-only connection; the log writer never waits), write them to PostgreSQL in one statement
//! ([`PgStore::insert_log_batch`]: a COPY, or `ON CONFLICT DO NOTHING` when rows are there
//! already), and only after that commit move the cursor to the batch's last row. A crash
//! between the two resends the batch, which PostgreSQL absorbs: at least once, effectively
//! exactly once. A row is never skipped: the cursor moves only over rows PostgreSQL committed.
//! While a full batch goes out, the next one is read.
//!
//! The loop ([`LogShipper::run`]) steps again at once while batches come back full, and
//! otherwise waits [`ShipOptions::idle_interval`] (rows reach PostgreSQL within about that
//! long). A failed step — PostgreSQL unreachable or refusing, a local read failing — is
//! retried after a backoff with jitter, doubling up to [`ShipOptions::max_backoff`]; nothing
//! is ever fatal, and meanwhile the backlog figures keep being refreshed. Every
//! [`ShipOptions::cap_check_interval`] the local cap is enforced (shipped rows pruned, oldest
//! first; unshipped rows kept, counted and warned about).
//!
//! Test hook: with `RELAYBOX_TEST_SHIP_CRASH_AFTER_COMMIT=1` in the environment the process
//! aborts right after a PostgreSQL commit, before the cursor moves — the window a resend covers.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

use crate::metrics::LogShipMetrics;
use crate::store::StoreError;
use crate::store::postgres::PgStore;
use crate::store::postgres::logs::KnownPartitions;
use crate::store::sqlite::LogDb;
use crate::store::sqlite::outbox::{Backlog, CapReport, LogCap, OutboxRow, POSTGRES_SINK};

/// The environment variable of the crash hook (see the module docs).
pub const CRASH_AFTER_COMMIT_VAR: &str = "RELAYBOX_TEST_SHIP_CRASH_AFTER_COMMIT";

/// How the shipper works; [`Default`] is what cluster mode uses.
#[derive(Debug, Clone)]
pub struct ShipOptions {
    /// Rows per PostgreSQL statement.
    pub batch_rows: usize,
    /// The wait after a batch that was not full (how stale PostgreSQL's copy may be).
    pub idle_interval: Duration,
    /// The first wait after a failure; it doubles per failure in a row, up to `max_backoff`.
    pub min_backoff: Duration,
    pub max_backoff: Duration,
    /// One step may take this long before it counts as failed (PostgreSQL hanging).
    pub step_timeout: Duration,
    /// Monthly partitions kept ready ahead of the current month.
    pub months_ahead: u32,
    /// How big logs.sqlite may grow before shipped rows are pruned.
    pub cap: LogCap,
    pub cap_check_interval: Duration,
}

impl Default for ShipOptions {
    fn default() -> Self {
        Self {
            batch_rows: 5_000,
            idle_interval: Duration::from_millis(250),
            min_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(60),
            step_timeout: Duration::from_secs(60),
            months_ahead: 2,
            cap: LogCap::default(),
            cap_check_interval: Duration::from_secs(30),
        }
    }
}

/// What the shipper is doing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ShipState {
    /// Not stepped yet.
    #[default]
    Starting,
    /// Everything written locally is in PostgreSQL (as of the last step).
    CaughtUp,
    /// Batches are going out.
    Shipping,
    /// The last step failed; the next one comes after the backoff.
    Retrying,
}

/// The shipper's state for `/health` and `GET /admin/api/cluster`.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ShipStatus {
    pub state: ShipState,
    /// Every local row up to this `seq` is in PostgreSQL.
    pub cursor: i64,
    /// Local rows not in PostgreSQL yet.
    pub backlog_rows: u64,
    /// `initial_time` of the oldest of them.
    #[serde(with = "time::serde::rfc3339::option")]
    pub oldest_unshipped_at: Option<OffsetDateTime>,
    /// When the last batch was committed to PostgreSQL.
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_shipped_at: Option<OffsetDateTime>,
    /// The last failure, until a step succeeds.
    pub last_error: Option<String>,
    pub consecutive_errors: u32,
    /// Rows committed to PostgreSQL since the start.
    pub shipped_rows: u64,
    /// Rows over the local cap that are kept because they are not shipped yet.
    pub kept_over_cap: u64,
}

impl ShipStatus {
    /// How long the oldest unshipped row has waited.
    #[must_use]
    pub fn backlog_age(&self, now: OffsetDateTime) -> Duration {
        self.oldest_unshipped_at.map_or(Duration::ZERO, |at| {
            (now - at).try_into().unwrap_or(Duration::ZERO)
        })
    }

    /// Why `/health` should say `degraded`, if it should: shipping fails, or logs.sqlite is
    /// over its cap with rows that cannot be pruned.
    #[must_use]
    pub fn problem(&self, now: OffsetDateTime) -> Option<String> {
        let waiting = || {
            format!(
                "{} rows wait locally (the oldest for {} s)",
                self.backlog_rows,
                self.backlog_age(now).as_secs()
            )
        };
        if let Some(error) = &self.last_error {
            return Some(format!(
                "request logs are not shipping to PostgreSQL: {error}; {}",
                waiting()
            ));
        }
        (self.kept_over_cap > 0).then(|| {
            format!(
                "logs.sqlite is over its cap by {} rows that are not shipped yet (kept; nothing is dropped); {}",
                self.kept_over_cap,
                waiting()
            )
        })
    }
}

/// A shared view of a shipper's [`ShipStatus`].
#[derive(Debug, Clone, Default)]
pub struct ShipStatusHandle(Arc<Mutex<ShipStatus>>);

impl ShipStatusHandle {
    #[must_use]
    pub fn snapshot(&self) -> ShipStatus {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ShipStatus> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Ships one instance's request logs to PostgreSQL; see the module docs.
pub struct LogShipper {
    logs: LogDb,
    pg: Arc<PgStore>,
    instance_id: String,
    options: ShipOptions,
    status: ShipStatusHandle,
    metrics: Arc<LogShipMetrics>,
    known: KnownPartitions,
    /// The cursor as last read from or written to `ship_cursor`; `None` until read.
    cursor: Option<i64>,
    /// The batch after the one last sent, read while PostgreSQL took that one.
    read_ahead: Option<Vec<OutboxRow>>,
    partitions_checked: Option<Instant>,
    crash_after_commit: bool,
}

impl std::fmt::Debug for LogShipper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogShipper")
            .field("instance_id", &self.instance_id)
            .field("cursor", &self.cursor)
            .finish_non_exhaustive()
    }
}

/// How often the months ahead are checked (a new month needs its partition before it starts).
const PARTITION_CHECK_INTERVAL: Duration = Duration::from_secs(3600);

/// How often the backlog figures are refreshed while waiting out a backoff.
const BACKLOG_REFRESH: Duration = Duration::from_secs(1);

impl LogShipper {
    /// A shipper of `logs` into `pg`, its rows marked with `instance_id`. It starts from the
    /// cursor stored in `logs`. Its figures go to a [`LogShipMetrics`] of its own unless
    /// [`LogShipper::with_metrics`] hands it the server's.
    #[must_use]
    pub fn new(
        logs: LogDb,
        pg: Arc<PgStore>,
        instance_id: impl Into<String>,
        options: ShipOptions,
    ) -> Self {
        let crash_after_commit =
            std::env::var(CRASH_AFTER_COMMIT_VAR).is_ok_and(|v| v == "1" || v == "true");
        Self {
            logs,
            pg,
            instance_id: instance_id.into(),
            options,
            status: ShipStatusHandle::default(),
            metrics: Arc::default(),
            known: KnownPartitions::default(),
            cursor: None,
            read_ahead: None,
            partitions_checked: None,
            crash_after_commit,
        }
    }

    /// Report into `metrics` (the server's, from [`crate::metrics::Metrics::log_ship`]).
    #[must_use]
    pub fn with_metrics(mut self, metrics: Arc<LogShipMetrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// The status, readable while [`LogShipper::run`] goes on.
    #[must_use]
    pub fn status(&self) -> ShipStatusHandle {
        self.status.clone()
    }

    /// Ship until `cancel`. Never returns an error: every failure is retried (the `Result`
    /// fits [`crate::tasks::Tasks::spawn`]).
    pub async fn run(mut self, cancel: CancellationToken) -> anyhow::Result<()> {
        self.metrics.start();
        let mut failures: u32 = 0;
        let mut next_cap_check = Instant::now();
        while !cancel.is_cancelled() {
            if Instant::now() >= next_cap_check {
                self.enforce_cap().await;
                next_cap_check = Instant::now() + self.options.cap_check_interval;
            }
            let step = tokio::select! {
                () = cancel.cancelled() => break,
                step = tokio::time::timeout(self.options.step_timeout, self.ship_once()) => step,
            };
            let step = step.unwrap_or_else(|_| {
                Err(StoreError::Unreachable(format!(
                    "a shipping step took longer than {} s",
                    self.options.step_timeout.as_secs()
                )))
            });
            match step {
                Ok(shipped) => {
                    if failures > 0 {
                        tracing::info!(failures, "request-log shipping to PostgreSQL works again");
                    }
                    failures = 0;
                    if shipped < self.options.batch_rows {
                        sleep_or_cancel(self.options.idle_interval, &cancel).await;
                    }
                }
                Err(err) => {
                    failures = failures.saturating_add(1);
                    self.record_failure(&err, failures);
                    let delay =
                        backoff(self.options.min_backoff, self.options.max_backoff, failures);
                    self.wait_refreshing(delay, &cancel).await;
                }
            }
        }
        Ok(())
    }

    /// One step: the next batch, committed to PostgreSQL, then the cursor moved past it.
    /// Returns the rows shipped (0 when nothing was waiting).
    pub async fn ship_once(&mut self) -> Result<usize, StoreError> {
        self.ensure_partitions_ahead().await?;
        let rows = match self.read_ahead.take() {
            Some(rows) => rows,
            None => self.next_batch().await?,
        };
        if !rows.is_empty() {
            if rows.len() == self.options.batch_rows {
                // More is likely waiting: read it while PostgreSQL takes this batch (a backlog
                // drains about a fifth faster). Rows after the cursor never change, so the
                // batch read ahead stays valid whatever happens to this one.
                let reader = self.logs.reader();
                let (after, limit) = (rows[rows.len() - 1].seq, self.options.batch_rows);
                let read = crate::store::blocking(move || reader.rows_after(after, limit));
                let (sent, read) = tokio::join!(self.send(&rows), read);
                sent?;
                self.read_ahead = read.ok().filter(|next| !next.is_empty());
            } else {
                self.send(&rows).await?;
            }
            if self.crash_after_commit {
                tracing::error!(
                    "{CRASH_AFTER_COMMIT_VAR} is set: aborting after the PostgreSQL commit"
                );
                std::process::abort();
            }
            self.mark_shipped(&rows).await?;
        }
        self.refresh_backlog().await?;
        Ok(rows.len())
    }

    /// Step 1: up to a batch of rows after the cursor, in `seq` order.
    pub async fn next_batch(&mut self) -> Result<Vec<OutboxRow>, StoreError> {
        let cursor = self.cursor().await?;
        let reader = self.logs.reader();
        let limit = self.options.batch_rows;
        crate::store::blocking(move || reader.rows_after(cursor, limit)).await
    }

    /// Step 2: commit `rows` to PostgreSQL (rows already there are skipped). Returns how many
    /// were new.
    pub async fn send(&mut self, rows: &[OutboxRow]) -> Result<u64, StoreError> {
        self.pg
            .insert_log_batch(&self.instance_id, rows, &mut self.known)
            .await
    }

    /// Step 3: move the cursor past `rows`, which PostgreSQL has committed.
    pub async fn mark_shipped(&mut self, rows: &[OutboxRow]) -> Result<(), StoreError> {
        let Some(last) = rows.last().map(|row| row.seq) else {
            return Ok(());
        };
        let sink = self.logs.sink();
        crate::store::blocking(move || sink.advance_ship_cursor(POSTGRES_SINK, last)).await?;
        self.cursor = Some(last);
        self.metrics.shipped(rows.len() as u64);
        let mut status = self.status.lock();
        status.state = ShipState::Shipping;
        status.cursor = last;
        status.shipped_rows += rows.len() as u64;
        status.last_shipped_at = Some(crate::domain::now());
        status.last_error = None;
        status.consecutive_errors = 0;
        Ok(())
    }

    async fn cursor(&mut self) -> Result<i64, StoreError> {
        if let Some(cursor) = self.cursor {
            return Ok(cursor);
        }
        let reader = self.logs.reader();
        let cursor = crate::store::blocking(move || reader.ship_cursor(POSTGRES_SINK)).await?;
        self.cursor = Some(cursor);
        Ok(cursor)
    }

    async fn ensure_partitions_ahead(&mut self) -> Result<(), StoreError> {
        if self
            .partitions_checked
            .is_some_and(|at| at.elapsed() < PARTITION_CHECK_INTERVAL)
        {
            return Ok(());
        }
        self.pg
            .ensure_log_partitions(crate::domain::now(), self.options.months_ahead)
            .await?;
        self.partitions_checked = Some(Instant::now());
        Ok(())
    }

    async fn refresh_backlog(&mut self) -> Result<Backlog, StoreError> {
        let reader = self.logs.reader();
        let backlog = crate::store::blocking(move || reader.backlog(POSTGRES_SINK)).await?;
        if backlog.last_seq < backlog.cursor {
            // Rows at or below the cursor were deleted and their numbers handed out again:
            // the new rows there would never ship. See store::sqlite::outbox.
            tracing::error!(
                cursor = backlog.cursor,
                last_seq = backlog.last_seq,
                "request_log lost its newest rows below the shipping cursor; rows written since may not ship"
            );
        }
        let oldest = backlog.oldest_unshipped_at();
        self.metrics.backlog(backlog.rows, oldest);
        let mut status = self.status.lock();
        status.cursor = backlog.cursor;
        status.backlog_rows = backlog.rows;
        status.oldest_unshipped_at = oldest;
        if status.last_error.is_none() {
            status.state = if backlog.rows == 0 {
                ShipState::CaughtUp
            } else {
                ShipState::Shipping
            };
        }
        Ok(backlog)
    }

    async fn enforce_cap(&mut self) {
        let sink = self.logs.sink();
        let cap = self.options.cap;
        let report = crate::store::blocking(move || sink.enforce_cap(POSTGRES_SINK, &cap)).await;
        match report {
            Ok(CapReport {
                pruned,
                kept_over_cap,
            }) => {
                if pruned > 0 {
                    tracing::info!(
                        rows = pruned,
                        "logs.sqlite: shipped request-log rows pruned to stay under the cap"
                    );
                    self.metrics.pruned(pruned);
                }
                let was_over = self.status.lock().kept_over_cap > 0;
                if kept_over_cap > 0 && !was_over {
                    tracing::warn!(
                        rows = kept_over_cap,
                        "logs.sqlite is over its cap and every row left is waiting to be shipped to PostgreSQL; they are kept (nothing is dropped) and the file grows until they ship"
                    );
                } else if kept_over_cap == 0 && was_over {
                    tracing::info!("logs.sqlite is back under its cap");
                }
                self.metrics.kept_over_cap(kept_over_cap);
                self.status.lock().kept_over_cap = kept_over_cap;
            }
            Err(err) => {
                tracing::warn!(error = %err, "logs.sqlite: enforcing the request-log cap failed; retried later");
            }
        }
    }

    fn record_failure(&self, err: &StoreError, failures: u32) {
        self.metrics.error();
        // Loud on the first failure, then once in a while: an outage must not flood the log.
        if failures == 1 || failures.is_power_of_two() {
            tracing::warn!(error = %err, failures, "request-log shipping to PostgreSQL failed; rows stay local and are retried");
        }
        let mut status = self.status.lock();
        status.state = ShipState::Retrying;
        status.last_error = Some(err.to_string());
        status.consecutive_errors = failures;
    }

    /// Wait `delay` (or until `cancel`), refreshing the backlog figures meanwhile: rows keep
    /// being written while PostgreSQL is away.
    async fn wait_refreshing(&mut self, delay: Duration, cancel: &CancellationToken) {
        let deadline = Instant::now() + delay;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || cancel.is_cancelled() {
                return;
            }
            sleep_or_cancel(left.min(BACKLOG_REFRESH), cancel).await;
            if let Err(err) = self.refresh_backlog().await {
                tracing::debug!(error = %err, "logs.sqlite: reading the shipping backlog failed");
            }
        }
    }
}

async fn sleep_or_cancel(delay: Duration, cancel: &CancellationToken) {
    tokio::select! {
        () = cancel.cancelled() => {}
        () = tokio::time::sleep(delay) => {}
    }
}

/// The wait after `failures` failures in a row: `min` doubled per failure, capped at `max`,
/// then a random part of up to half taken off, so instances that lost PostgreSQL together do
/// not come back in step.
fn backoff(min: Duration, max: Duration, failures: u32) -> Duration {
    let doubled = min.saturating_mul(1_u32 << failures.saturating_sub(1).min(16));
    let ceiling = doubled.min(max);
    let random = getrandom::u64().unwrap_or(0);
    #[expect(
        clippy::cast_precision_loss,
        reason = "a fraction for jitter; precision does not matter"
    )]
    let fraction = (random >> 11) as f64 / (1_u64 << 53) as f64;
    ceiling.mul_f64(1.0 - fraction / 2.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_up_to_its_cap() {
        let min = Duration::from_millis(500);
        let max = Duration::from_secs(60);
        for failures in 1..40 {
            let ceiling = min.saturating_mul(1 << (failures - 1).min(16)).min(max);
            let delay = backoff(min, max, failures);
            assert!(delay <= ceiling, "{failures}: {delay:?} > {ceiling:?}");
            assert!(
                delay >= ceiling / 2,
                "{failures}: {delay:?} < half of {ceiling:?}"
            );
        }
        assert!(backoff(min, max, 1_000) <= max);
        // Jitter: twenty draws are not all the same.
        let draws: std::collections::BTreeSet<Duration> =
            (0..20).map(|_| backoff(min, max, 10)).collect();
        assert!(draws.len() > 1);
    }

    #[test]
    fn the_problem_names_the_error_and_the_backlog() {
        let now = time::macros::datetime!(2026-05-01 12:00:00 UTC);
        let mut status = ShipStatus {
            backlog_rows: 42,
            oldest_unshipped_at: Some(now - time::Duration::seconds(90)),
            ..ShipStatus::default()
        };
        assert_eq!(status.problem(now), None);
        status.last_error = Some("PostgreSQL is unreachable (refused)".into());
        let problem = status.problem(now).unwrap();
        assert!(
            problem.contains("refused") && problem.contains("42 rows") && problem.contains("90 s"),
            "{problem}"
        );
    }
}
