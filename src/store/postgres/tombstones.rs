//! Removing old tombstones from the shared configuration (a singleton job's work).
//!
//! A delete leaves a tombstone so that copies pulling `rev > applied` learn about it. Once a
//! tombstone is older than every copy that may still pull, it only takes space. Removing it is
//! safe because `cfg_head.min_rev` is raised past it in the same transaction: a copy that
//! applied less than `min_rev` may have missed a removed tombstone, so its next pull gets
//! [`super::ResyncReason::TooOld`] and it replaces its copy whole.

use std::time::Duration;

use super::PgStore;
use super::leases::{FencedError, Grant};

/// What one collection removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Collected {
    /// Tombstones removed.
    pub removed: u64,
    /// `cfg_head.min_rev` afterwards.
    pub min_rev: u64,
}

impl PgStore {
    /// Remove the tombstones last written more than `retention` ago (by PostgreSQL's clock) and
    /// raise `min_rev` to the highest removed revision + 1 — in one transaction fenced by
    /// `grant`, which also locks the head row, so it is serialised with config writes: a write
    /// either committed before (its tombstone, if old enough, is seen by the delete and counted
    /// into `min_rev`) or waits until this commits.
    pub async fn collect_tombstones(
        &self,
        grant: &Grant,
        retention: Duration,
    ) -> Result<Collected, FencedError> {
        let retention_ms = i64::try_from(retention.as_millis()).unwrap_or(i64::MAX);
        self.fenced(grant, move |tx| {
            Box::pin(async move {
                tx.query_one("SELECT rev FROM cfg_head WHERE singleton FOR UPDATE", &[])
                    .await?;
                // One statement both removes the rows and reports their revisions, so `min_rev`
                // covers exactly what was removed.
                let gone = tx
                    .query_one(
                        "WITH gone AS (
                             DELETE FROM cfg_record
                             WHERE deleted
                               AND updated_at < now() - $1::bigint * interval '1 millisecond'
                             RETURNING rev
                         )
                         SELECT count(*), max(rev) FROM gone",
                        &[&retention_ms],
                    )
                    .await?;
                let removed: i64 = gone.get(0);
                let highest: Option<i64> = gone.get(1);
                let min_rev: i64 = match highest {
                    Some(highest) => tx
                        .query_one(
                            "UPDATE cfg_head SET min_rev = greatest(min_rev, $1::bigint + 1)
                             WHERE singleton RETURNING min_rev",
                            &[&highest],
                        )
                        .await?
                        .get(0),
                    None => tx
                        .query_one("SELECT min_rev FROM cfg_head WHERE singleton", &[])
                        .await?
                        .get(0),
                };
                Ok(Collected {
                    removed: u64::try_from(removed).unwrap_or(0),
                    min_rev: u64::try_from(min_rev).unwrap_or(0),
                })
            })
        })
        .await
    }
}
