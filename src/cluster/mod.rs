//! Cluster mode: several relaybox instances share one configuration, their request logs,
//! budgets and singleton jobs through PostgreSQL, and each keeps serving from its local copy
//! when PostgreSQL is gone.
//!
//! Arrows: `app → cluster → {config, limits, store}`. The SQL lives in `store::postgres`;
//! this module holds the loops that use it (each a supervised task started by `app`).

pub mod replica;
pub mod sync;

use std::sync::Arc;

pub use replica::{JoinError, Joined, Replica, ReplicaStatus};

use crate::store::StoreError;
use crate::store::postgres::{PgStore, Target};
use crate::tasks::Tasks;

/// This instance's part in a cluster: its config copy and the loops that talk to PostgreSQL.
pub struct Cluster {
    pub replica: Arc<Replica>,
    pub target: Target,
    /// Stable per data dir: names this instance's rows in PostgreSQL.
    pub instance_id: String,
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
    pub fn pg(&self) -> &Arc<PgStore> {
        self.replica.pg()
    }

    /// Start the loops (supervised: they end with the server).
    pub fn start(&self, tasks: &Tasks) {
        let shutdown = tasks.shutdown_token();
        tasks.spawn(
            "cluster-config-sync",
            sync::ConfigSync::new(
                Arc::clone(&self.replica),
                self.target.clone(),
                sync::POLL_INTERVAL,
            )
            .run(shutdown),
        );
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
        }
        problems
    }
}
