//! Cluster mode: several relaybox instances share one configuration, their request logs,
//! budgets and singleton jobs through PostgreSQL, and each keeps serving from its local copy
//! when PostgreSQL is gone.
//!
//! Arrows: `app → cluster → {config, limits, store}`. The SQL lives in `store::postgres`;
//! this module holds the loops that use it (each a supervised task started by `app`).

mod backoff;
pub mod heartbeat;
pub mod jobs;

pub use backoff::Backoff;
pub mod replica;
pub mod sync;

use std::sync::{Arc, OnceLock};

pub use replica::{JoinError, Joined, Replica, ReplicaStatus};

use self::heartbeat::{ClusterView, Heartbeat, HeartbeatOptions, Identity};
use self::jobs::{GoneInstances, JobOptions, JobRunner, JobsView, TombstoneGc};
use crate::limits::Limiter;
use crate::metrics::Metrics;
use crate::store::StoreError;
use crate::store::postgres::{PgStore, Target};
use crate::store::sqlite::LogDb;
use crate::tasks::Tasks;

/// This instance's part in a cluster: its config copy and the loops that talk to PostgreSQL.
pub struct Cluster {
    pub replica: Arc<Replica>,
    pub target: Target,
    /// Stable per data dir: names this instance's rows in PostgreSQL.
    pub instance_id: String,
    /// What the other instances are (the heartbeat's view; one live instance until it beats).
    pub view: ClusterView,
    jobs: OnceLock<JobsView>,
    budgets: OnceLock<budgets::BudgetSyncHandle>,
    shipping: OnceLock<shipper::ShipStatusHandle>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("instance_id", &self.instance_id)
            .finish_non_exhaustive()
    }
}

impl Cluster {
    #[must_use]
    pub fn new(replica: Arc<Replica>, target: Target, instance_id: String) -> Self {
        Self {
            replica,
            target,
            instance_id,
            view: ClusterView::default(),
            jobs: OnceLock::new(),
            budgets: OnceLock::new(),
            shipping: OnceLock::new(),
        }
    }

    #[must_use]
    pub fn pg(&self) -> &Arc<PgStore> {
        self.replica.pg()
    }

    /// Start the loops (supervised: they end with the server). `listen` is this instance's
    /// address as the other instances' operators see it in the instances list.
    pub fn start(
        &self,
        tasks: &Tasks,
        limits: &Arc<Limiter>,
        logs: &LogDb,
        metrics: &Metrics,
        listen: &str,
    ) {
        let gauges = &metrics.cluster_nodes;
        let shutdown = tasks.shutdown_token();
        tasks.spawn(
            "cluster-config-sync",
            sync::ConfigSync::new(
                Arc::clone(&self.replica),
                self.target.clone(),
                sync::POLL_INTERVAL,
            )
            .run(shutdown.clone()),
        );
        let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|name| name.trim().to_string())
            .unwrap_or_default();
        let heartbeat = Heartbeat::with_view(
            Arc::clone(self.pg()),
            Identity::new(self.instance_id.clone(), hostname, listen.to_string()),
            Arc::clone(self.replica.report()),
            HeartbeatOptions {
                gauges: gauges.clone(),
                ..HeartbeatOptions::default()
            },
            self.view.clone(),
        );
        tasks.spawn("cluster-heartbeat", heartbeat.run(shutdown.clone()));
        let jobs = JobRunner::new(
            Arc::clone(self.pg()),
            self.instance_id.clone(),
            JobOptions {
                gauges: gauges.clone(),
                ..JobOptions::default()
            },
        )
        .with_job(TombstoneGc::default())
        .with_job(GoneInstances::default())
        .with_job(jobs::CounterPrune {
            limits: Arc::clone(limits),
            every: std::time::Duration::from_secs(3600),
        });
        let _ = self.jobs.set(jobs.view());
        tasks.spawn("cluster-jobs", jobs.run(shutdown.clone()));
        let view = self.view.clone();
        let budgets = budgets::BudgetSync::new(
            Arc::clone(limits),
            Arc::clone(self.pg()),
            self.instance_id.clone(),
            budgets::DEFAULT_INTERVAL,
        )
        .with_live_instances(move || view.live_instances())
        .with_error_counter(metrics.budget_sync_errors());
        let _ = self.budgets.set(budgets.handle());
        tasks.spawn("cluster-budget-sync", budgets.run(shutdown.clone()));
        let shipper = shipper::LogShipper::new(
            logs.clone(),
            Arc::clone(self.pg()),
            self.instance_id.clone(),
            shipper::ShipOptions::default(),
        )
        .with_metrics(metrics.log_ship());
        let shipping = shipper.status();
        let _ = self.shipping.set(shipping.clone());
        tasks.spawn("cluster-log-shipper", shipper.run(shutdown.clone()));
        // The heartbeat tells the other instances this one's log backlog.
        let report = Arc::clone(self.replica.report());
        tasks.spawn("cluster-backlog-report", async move {
            loop {
                let status = shipping.snapshot();
                let age = status.backlog_age(crate::domain::now());
                report.set_log_backlog(status.backlog_rows, age);
                tokio::select! {
                    () = shutdown.cancelled() => return Ok(()),
                    () = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
                }
            }
        });
    }

    /// `GET /admin/api/cluster`.
    #[must_use]
    pub fn report(&self) -> serde_json::Value {
        serde_json::json!({
            "mode": "cluster",
            "instanceId": self.instance_id,
            "postgres": self.target.to_string(),
            "config": self.replica.status(),
            "nodes": self.view.status(),
            "jobs": self.jobs.get().map(JobsView::status).unwrap_or_default(),
            "budgets": self.budgets.get().map(budgets::BudgetSyncHandle::status),
            "logShipping": self.shipping.get().map(shipper::ShipStatusHandle::snapshot),
        })
    }

    /// Whether this content of a cc-bridge config file was applied in the cluster (blocking).
    pub fn file_applied(&self, file: &str, sha256: &str) -> Result<bool, StoreError> {
        let pg = self.pg();
        pg.block_on(pg.import_seen(file, sha256))
    }

    /// Record that this instance applied this content of a config file (blocking).
    pub fn record_file(&self, file: &str, sha256: &str) -> Result<(), StoreError> {
        let pg = self.pg();
        pg.block_on(pg.record_import(file, sha256, &self.instance_id))
    }

    /// Why `/health` should say degraded, if it should.
    #[must_use]
    pub fn problems(&self) -> Vec<String> {
        let status = self.replica.status();
        let mut problems = Vec::new();
        if let Some(since) = &status.unreachable_since {
            let age = self
                .replica
                .freshness()
                .stale_for()
                .map_or(0, |age| age.as_secs());
            problems.push(format!(
                "PostgreSQL is unreachable since {since}: serving the local copy of the configuration (revision {}, last confirmed {age} s ago); admin changes are refused until it answers",
                status.applied_revision
            ));
        } else if let Some(error) = &status.last_error {
            problems.push(format!(
                "the configuration cannot be brought up to date from PostgreSQL: {error}; serving revision {}",
                status.applied_revision
            ));
        }
        if let Some(problem) = self
            .shipping
            .get()
            .and_then(|status| status.snapshot().problem(crate::domain::now()))
        {
            problems.push(problem);
        }
        let nodes = self.view.status();
        if nodes.clock_skew_alarm {
            problems.push(format!(
                "this instance's clock is {} ms off PostgreSQL's; budgets and day boundaries may be attributed wrongly",
                nodes.clock_skew_ms.unwrap_or_default()
            ));
        }
        problems
    }
}
pub mod budgets;
pub mod shipper;
