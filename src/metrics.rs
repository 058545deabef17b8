//! Prometheus metrics, kept in plain atomics and small maps (bounded label sets: endpoint,
//! status, channel), rendered in the text exposition format by `GET /metrics`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use crate::FastMap;
use crate::store::sqlite::writer::WriterStats;

/// Upper bounds of the latency histogram, in seconds.
const LATENCY_BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

#[derive(Debug, Default)]
struct Histogram {
    buckets: [u64; LATENCY_BUCKETS.len()],
    count: u64,
    sum_seconds: f64,
}

/// channel name → count
type CountsByChannel = FastMap<String, u64>;

#[derive(Debug, Default)]
pub struct Metrics {
    /// endpoint → status → channel → count (nested so a lookup borrows instead of allocating)
    requests: Mutex<FastMap<String, FastMap<u16, CountsByChannel>>>,
    latency: Mutex<FastMap<String, Histogram>>,
    /// (channel, status) → count
    upstream_errors: Mutex<BTreeMap<(String, u16), u64>>,
    retries: AtomicU64,
    failovers: AtomicU64,
    input_tokens: AtomicU64,
    output_tokens: AtomicU64,
    cache_creation_tokens: AtomicU64,
    cache_read_tokens: AtomicU64,
    /// micro-USD, so an atomic integer can carry it
    cost_micros: AtomicU64,
    /// limit name → count
    limit_refusals: Mutex<BTreeMap<String, u64>>,
    /// Admin API requests with a missing or wrong key, and those refused while throttled.
    admin_auth_failures: AtomicU64,
    admin_auth_throttled: AtomicU64,
    /// Requests whose model has no price anywhere, by model (at most
    /// [`UNPRICED_MODELS_NAMED`] names; later ones count under [`UNPRICED_OTHER`]).
    unpriced: Mutex<BTreeMap<String, u64>>,
    /// Cluster mode: live instances and the leases this instance holds (set by its loops).
    pub cluster_nodes: ClusterNodeGauges,
    /// Cluster mode: budget syncs with PostgreSQL that failed (shared with the sync loop).
    budget_sync_errors: Arc<AtomicU64>,
    /// Request-log shipping to PostgreSQL (cluster mode); the shipper holds a clone.
    log_ship: Arc<LogShipMetrics>,
}

/// Cluster mode's instance and lease gauges; a clone shares them (the heartbeat and the job
/// runner each get one). Rendered only once a loop has set them: a single node shows none.
#[derive(Debug, Clone, Default)]
pub struct ClusterNodeGauges {
    inner: std::sync::Arc<ClusterNodeValues>,
}

#[derive(Debug, Default)]
struct ClusterNodeValues {
    /// 0 until the heartbeat set it.
    live_instances: AtomicU64,
    /// job → whether this instance holds its lease
    lease_held: Mutex<BTreeMap<String, bool>>,
}

impl ClusterNodeGauges {
    pub fn set_live_instances(&self, live: u64) {
        self.inner.live_instances.store(live, Ordering::Relaxed);
    }

    pub fn set_lease_held(&self, job: &str, held: bool) {
        let mut leases = lock(&self.inner.lease_held);
        match leases.get_mut(job) {
            Some(value) => *value = held,
            None => {
                leases.insert(job.to_string(), held);
            }
        }
    }

    fn render(&self, out: &mut String) {
        let live = self.inner.live_instances.load(Ordering::Relaxed);
        if live > 0 {
            let _ = writeln!(
                out,
                "# HELP relaybox_cluster_live_instances Instances of this cluster seen in the last 15 s (this one included; the last known count while PostgreSQL is unreachable).\n# TYPE relaybox_cluster_live_instances gauge\nrelaybox_cluster_live_instances {live}"
            );
        }
        let leases = lock(&self.inner.lease_held);
        if !leases.is_empty() {
            out.push_str("# HELP relaybox_cluster_lease_held Whether this instance holds the lease of a singleton job (1) or not (0).\n# TYPE relaybox_cluster_lease_held gauge\n");
            for (job, held) in leases.iter() {
                let _ = writeln!(
                    out,
                    "relaybox_cluster_lease_held{{job=\"{}\"}} {}",
                    escape(job),
                    u8::from(*held)
                );
            }
        }
    }
}

/// How many unpriced model names get a label (and a line in `/health`) of their own: model
/// names come from clients and upstreams, so the label set must not grow without bound.
pub const UNPRICED_MODELS_NAMED: usize = 32;
/// The label of unpriced requests beyond the named models.
pub const UNPRICED_OTHER: &str = "_other";
/// Longer model names are cut to this many characters in labels.
const MODEL_LABEL_MAX: usize = 128;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Metrics {
    pub fn request(&self, endpoint: &str, status: u16, channel: &str, elapsed: Duration) {
        {
            let mut requests = lock(&self.requests);
            let by_status = match requests.get_mut(endpoint) {
                Some(map) => map,
                None => requests.entry(endpoint.to_string()).or_default(),
            };
            let by_channel = by_status.entry(status).or_default();
            match by_channel.get_mut(channel) {
                Some(count) => *count += 1,
                None => {
                    by_channel.insert(channel.to_string(), 1);
                }
            }
        }
        let seconds = elapsed.as_secs_f64();
        let mut latency = lock(&self.latency);
        let histogram = match latency.get_mut(endpoint) {
            Some(histogram) => histogram,
            None => latency.entry(endpoint.to_string()).or_default(),
        };
        histogram.count += 1;
        histogram.sum_seconds += seconds;
        for (i, bound) in LATENCY_BUCKETS.iter().enumerate() {
            if seconds <= *bound {
                histogram.buckets[i] += 1;
            }
        }
    }

    pub fn tokens(
        &self,
        input: u64,
        output: u64,
        cache_creation: u64,
        cache_read: u64,
        cost_usd: f64,
    ) {
        self.input_tokens.fetch_add(input, Ordering::Relaxed);
        self.output_tokens.fetch_add(output, Ordering::Relaxed);
        self.cache_creation_tokens
            .fetch_add(cache_creation, Ordering::Relaxed);
        self.cache_read_tokens
            .fetch_add(cache_read, Ordering::Relaxed);
        // Rounded to micro-USD; negative or NaN costs are impossible by construction.
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "cost is finite and non-negative"
        )]
        let micros = (cost_usd * 1e6).round().max(0.0) as u64;
        self.cost_micros.fetch_add(micros, Ordering::Relaxed);
    }

    pub fn upstream_error(&self, channel: &str, status: u16) {
        *lock(&self.upstream_errors)
            .entry((channel.to_string(), status))
            .or_default() += 1;
    }

    pub fn retry(&self) {
        self.retries.fetch_add(1, Ordering::Relaxed);
    }

    pub fn failover(&self) {
        self.failovers.fetch_add(1, Ordering::Relaxed);
    }

    pub fn limit_refusal(&self, limit: &str) {
        *lock(&self.limit_refusals)
            .entry(limit.to_string())
            .or_default() += 1;
    }

    /// Count a request of `model`, which has no price. Returns whether this is the first one
    /// (of this model, or the first beyond the named ones), so the caller warns once.
    pub fn unpriced(&self, model: &str) -> bool {
        let model = match model.char_indices().nth(MODEL_LABEL_MAX) {
            Some((end, _)) => &model[..end],
            None => model,
        };
        let mut unpriced = lock(&self.unpriced);
        if let Some(count) = unpriced.get_mut(model) {
            *count += 1;
            return false;
        }
        let named = unpriced.keys().filter(|m| *m != UNPRICED_OTHER).count();
        let label = if named < UNPRICED_MODELS_NAMED {
            model
        } else {
            UNPRICED_OTHER
        };
        let count = unpriced.entry(label.to_string()).or_default();
        *count += 1;
        *count == 1
    }

    /// The models counted by [`Metrics::unpriced`] (at most [`UNPRICED_MODELS_NAMED`], plus
    /// [`UNPRICED_OTHER`] when there were more), by name.
    #[must_use]
    pub fn unpriced_models(&self) -> Vec<String> {
        lock(&self.unpriced).keys().cloned().collect()
    }

    pub fn admin_auth_failure(&self) {
        self.admin_auth_failures.fetch_add(1, Ordering::Relaxed);
    }

    pub fn admin_auth_throttled(&self) {
        self.admin_auth_throttled.fetch_add(1, Ordering::Relaxed);
    }

    /// The counter of failed budget syncs, for `cluster::budgets::BudgetSync` to count into.
    #[must_use]
    pub fn budget_sync_errors(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.budget_sync_errors)
    }

    /// The figures the request-log shipper updates (hand it this handle).
    #[must_use]
    pub fn log_ship(&self) -> Arc<LogShipMetrics> {
        Arc::clone(&self.log_ship)
    }

    /// The text exposition format.
    #[must_use]
    pub fn render(&self, writer: WriterStats) -> String {
        let mut out = String::with_capacity(4096);
        out.push_str("# HELP relaybox_requests_total Relayed requests by endpoint, HTTP status and channel.\n# TYPE relaybox_requests_total counter\n");
        let mut rows: Vec<(&String, u16, &String, u64)> = Vec::new();
        let requests = lock(&self.requests);
        for (endpoint, by_status) in requests.iter() {
            for (status, by_channel) in by_status {
                for (channel, count) in by_channel {
                    rows.push((endpoint, *status, channel, *count));
                }
            }
        }
        rows.sort_unstable();
        for (endpoint, status, channel, count) in rows {
            let _ = writeln!(
                out,
                "relaybox_requests_total{{endpoint=\"{}\",status=\"{status}\",channel=\"{}\"}} {count}",
                escape(endpoint),
                escape(channel)
            );
        }
        drop(requests);
        out.push_str("# HELP relaybox_request_duration_seconds Time from request to the end of the response.\n# TYPE relaybox_request_duration_seconds histogram\n");
        let latency = lock(&self.latency);
        let mut endpoints: Vec<_> = latency.iter().collect();
        endpoints.sort_unstable_by(|a, b| a.0.cmp(b.0));
        for (endpoint, h) in endpoints {
            let endpoint = escape(endpoint);
            for (bound, count) in LATENCY_BUCKETS.iter().zip(h.buckets.iter()) {
                let _ = writeln!(
                    out,
                    "relaybox_request_duration_seconds_bucket{{endpoint=\"{endpoint}\",le=\"{bound}\"}} {count}"
                );
            }
            let _ = writeln!(
                out,
                "relaybox_request_duration_seconds_bucket{{endpoint=\"{endpoint}\",le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "relaybox_request_duration_seconds_sum{{endpoint=\"{endpoint}\"}} {}",
                h.sum_seconds
            );
            let _ = writeln!(
                out,
                "relaybox_request_duration_seconds_count{{endpoint=\"{endpoint}\"}} {}",
                h.count
            );
        }
        out.push_str("# HELP relaybox_tokens_total Tokens relayed, by kind.\n# TYPE relaybox_tokens_total counter\n");
        for (kind, value) in [
            ("input", &self.input_tokens),
            ("output", &self.output_tokens),
            ("cache_creation", &self.cache_creation_tokens),
            ("cache_read", &self.cache_read_tokens),
        ] {
            let _ = writeln!(
                out,
                "relaybox_tokens_total{{kind=\"{kind}\"}} {}",
                value.load(Ordering::Relaxed)
            );
        }
        out.push_str("# HELP relaybox_cost_usd_total Cost of relayed requests in USD.\n# TYPE relaybox_cost_usd_total counter\n");
        #[expect(clippy::cast_precision_loss, reason = "display only")]
        let cost = self.cost_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "relaybox_cost_usd_total {cost}");
        out.push_str("# HELP relaybox_upstream_errors_total Failed upstream attempts by channel and status (0 = no response).\n# TYPE relaybox_upstream_errors_total counter\n");
        for ((channel, status), count) in lock(&self.upstream_errors).iter() {
            let _ = writeln!(
                out,
                "relaybox_upstream_errors_total{{channel=\"{}\",status=\"{status}\"}} {count}",
                escape(channel)
            );
        }
        let _ = writeln!(
            out,
            "# HELP relaybox_upstream_retries_total Retries of the same channel.\n# TYPE relaybox_upstream_retries_total counter\nrelaybox_upstream_retries_total {}",
            self.retries.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP relaybox_failovers_total Moves to the next channel.\n# TYPE relaybox_failovers_total counter\nrelaybox_failovers_total {}",
            self.failovers.load(Ordering::Relaxed)
        );
        out.push_str("# HELP relaybox_limit_refusals_total Requests refused by a key or channel limit.\n# TYPE relaybox_limit_refusals_total counter\n");
        for (limit, count) in lock(&self.limit_refusals).iter() {
            let _ = writeln!(
                out,
                "relaybox_limit_refusals_total{{limit=\"{}\"}} {count}",
                escape(limit)
            );
        }
        out.push_str("# HELP relaybox_unpriced_requests_total Requests that used tokens of a model with no price (configured or built-in); their cost is logged as 0. Model names beyond the first 32 count as _other.\n# TYPE relaybox_unpriced_requests_total counter\n");
        for (model, count) in lock(&self.unpriced).iter() {
            let _ = writeln!(
                out,
                "relaybox_unpriced_requests_total{{model=\"{}\"}} {count}",
                escape(model)
            );
        }
        let _ = writeln!(
            out,
            "# HELP relaybox_admin_auth_failures_total Admin API requests with a missing or wrong key.\n# TYPE relaybox_admin_auth_failures_total counter\nrelaybox_admin_auth_failures_total {}",
            self.admin_auth_failures.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP relaybox_admin_auth_throttled_total Admin API requests refused (429) after too many failed authentications from their address.\n# TYPE relaybox_admin_auth_throttled_total counter\nrelaybox_admin_auth_throttled_total {}",
            self.admin_auth_throttled.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP relaybox_budget_sync_errors_total Cluster mode: budget syncs with PostgreSQL that failed (the last figures of the other instances stay in use).\n# TYPE relaybox_budget_sync_errors_total counter\nrelaybox_budget_sync_errors_total {}",
            self.budget_sync_errors.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP relaybox_log_queue_depth Request-log rows waiting for the writer.\n# TYPE relaybox_log_queue_depth gauge\nrelaybox_log_queue_depth {}",
            writer.queued
        );
        let _ = writeln!(
            out,
            "# HELP relaybox_log_rows_written_total Request-log rows committed.\n# TYPE relaybox_log_rows_written_total counter\nrelaybox_log_rows_written_total {}",
            writer.written
        );
        let _ = writeln!(
            out,
            "# HELP relaybox_log_rows_dropped_total Request-log rows lost: the queue was full, or commits failed for longer than the retry buffer holds.\n# TYPE relaybox_log_rows_dropped_total counter\nrelaybox_log_rows_dropped_total {}",
            writer.dropped
        );
        let _ = writeln!(
            out,
            "# HELP relaybox_log_rows_retrying Request-log rows held after a failed commit, waiting for the retry.\n# TYPE relaybox_log_rows_retrying gauge\nrelaybox_log_rows_retrying {}",
            writer.retrying
        );
        let _ = writeln!(
            out,
            "# HELP relaybox_log_commit_failures_total Request-log commits that failed (disk full, I/O error); their rows are retried.\n# TYPE relaybox_log_commit_failures_total counter\nrelaybox_log_commit_failures_total {}",
            writer.commit_failures
        );
        let _ = writeln!(
            out,
            "# HELP relaybox_log_commits_total Request-log transactions committed.\n# TYPE relaybox_log_commits_total counter\nrelaybox_log_commits_total {}",
            writer.batches
        );
        self.cluster_nodes.render(&mut out);
        self.log_ship.render(&mut out);
        out
    }
}

/// Request-log shipping to PostgreSQL, kept by the shipper and rendered with the rest once a
/// shipper has started (outside cluster mode there is nothing to show).
#[derive(Debug, Default)]
pub struct LogShipMetrics {
    active: AtomicBool,
    backlog_rows: AtomicU64,
    /// Unix milliseconds of the oldest unshipped row's time; `i64::MIN` when nothing waits.
    oldest_unshipped_ms: AtomicI64,
    shipped_rows: AtomicU64,
    errors: AtomicU64,
    pruned_rows: AtomicU64,
    kept_over_cap: AtomicU64,
}

impl LogShipMetrics {
    pub fn start(&self) {
        self.oldest_unshipped_ms.store(i64::MIN, Ordering::Relaxed);
        self.active.store(true, Ordering::Relaxed);
    }

    /// The backlog now: rows after the cursor and the time of the oldest of them.
    pub fn backlog(&self, rows: u64, oldest: Option<time::OffsetDateTime>) {
        self.backlog_rows.store(rows, Ordering::Relaxed);
        let oldest_ms = oldest.map_or(i64::MIN, |at| {
            i64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MIN)
        });
        self.oldest_unshipped_ms.store(oldest_ms, Ordering::Relaxed);
    }

    pub fn shipped(&self, rows: u64) {
        self.shipped_rows.fetch_add(rows, Ordering::Relaxed);
    }

    pub fn error(&self) {
        self.errors.fetch_add(1, Ordering::Relaxed);
    }

    pub fn pruned(&self, rows: u64) {
        self.pruned_rows.fetch_add(rows, Ordering::Relaxed);
    }

    pub fn kept_over_cap(&self, rows: u64) {
        self.kept_over_cap.store(rows, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String) {
        if !self.active.load(Ordering::Relaxed) {
            return;
        }
        let oldest_ms = self.oldest_unshipped_ms.load(Ordering::Relaxed);
        // The age grows between the shipper's updates: it is taken at scrape time.
        #[expect(clippy::cast_precision_loss, reason = "display only")]
        let age = if oldest_ms == i64::MIN {
            0.0
        } else {
            let now_ms = crate::domain::now().unix_timestamp_nanos() / 1_000_000;
            (now_ms - i128::from(oldest_ms)).max(0) as f64 / 1e3
        };
        let gauges_and_counters = [
            (
                "relaybox_log_ship_backlog_rows",
                "gauge",
                "Request-log rows written locally and not yet shipped to PostgreSQL.",
                self.backlog_rows.load(Ordering::Relaxed).to_string(),
            ),
            (
                "relaybox_log_ship_backlog_age_seconds",
                "gauge",
                "Age of the oldest request-log row not yet shipped to PostgreSQL (0 when none waits).",
                age.to_string(),
            ),
            (
                "relaybox_log_shipped_rows_total",
                "counter",
                "Request-log rows committed to PostgreSQL by this instance (a resent row counts again).",
                self.shipped_rows.load(Ordering::Relaxed).to_string(),
            ),
            (
                "relaybox_log_ship_errors_total",
                "counter",
                "Failed shipping attempts (PostgreSQL unreachable or refusing, local read or cursor errors); each is retried.",
                self.errors.load(Ordering::Relaxed).to_string(),
            ),
            (
                "relaybox_log_pruned_rows_total",
                "counter",
                "Shipped request-log rows deleted locally to keep logs.sqlite under its cap.",
                self.pruned_rows.load(Ordering::Relaxed).to_string(),
            ),
            (
                "relaybox_log_kept_over_cap_rows",
                "gauge",
                "Request-log rows over the local cap that are kept because they are not shipped yet.",
                self.kept_over_cap.load(Ordering::Relaxed).to_string(),
            ),
        ];
        for (name, kind, help, value) in gauges_and_counters {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        }
    }
}

fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unpriced_models_are_counted_with_a_bounded_label_set() {
        let metrics = Metrics::default();
        assert!(metrics.unpriced("m-a"));
        assert!(!metrics.unpriced("m-a"), "the second request warns no more");
        for i in 1..UNPRICED_MODELS_NAMED {
            assert!(metrics.unpriced(&format!("m-{i}")));
        }
        // Beyond the named ones: one label for all, reported (warned) once.
        assert!(metrics.unpriced("one-too-many"));
        assert!(!metrics.unpriced("and-another"));
        let models = metrics.unpriced_models();
        assert_eq!(models.len(), UNPRICED_MODELS_NAMED + 1);
        assert!(models.iter().any(|m| m == UNPRICED_OTHER));
        assert!(!models.iter().any(|m| m == "one-too-many"));
        let text = metrics.render(WriterStats::default());
        assert!(text.contains("relaybox_unpriced_requests_total{model=\"m-a\"} 2\n"));
        assert!(text.contains("relaybox_unpriced_requests_total{model=\"_other\"} 2\n"));
        // A very long name is cut, so one client cannot make a huge label.
        let metrics = Metrics::default();
        metrics.unpriced(&"x".repeat(10_000));
        assert_eq!(metrics.unpriced_models()[0].len(), MODEL_LABEL_MAX);
    }

    #[test]
    fn cluster_gauges_appear_once_set_and_clones_share_them() {
        let metrics = Metrics::default();
        let text = metrics.render(WriterStats::default());
        assert!(
            !text.contains("relaybox_cluster_"),
            "a single node shows none"
        );
        let gauges = metrics.cluster_nodes.clone();
        gauges.set_live_instances(3);
        gauges.set_lease_held("tombstone-gc", true);
        gauges.set_lease_held("gone-instances", false);
        let text = metrics.render(WriterStats::default());
        assert!(
            text.contains("relaybox_cluster_live_instances 3\n"),
            "{text}"
        );
        assert!(text.contains("relaybox_cluster_lease_held{job=\"tombstone-gc\"} 1\n"));
        assert!(text.contains("relaybox_cluster_lease_held{job=\"gone-instances\"} 0\n"));
    }
}
