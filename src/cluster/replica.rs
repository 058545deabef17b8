//! The local copy of the cluster's configuration and the replicated writer.
//!
//! PostgreSQL holds the truth; `relaybox.redb` holds a copy at an applied revision, and the
//! published snapshot is built from that copy. [`Replica::sync`] brings the copy up to date:
//! it pulls `rev > applied` page by page and applies each page in one local transaction that
//! also records the page's revision, so a crash mid-way re-fetches the page. A copy that cannot
//! be brought up to date page by page (another cluster, PostgreSQL restored from an older
//! backup, tombstones already collected) is replaced whole, with a warning.
//!
//! [`Replica`] is also the cluster's [`ConfigWriter`]: a write catches up first (so the plan
//! runs on the newest state), commits to PostgreSQL (versions checked there: a stale edit is a
//! 409 on every instance), then applies the change locally before it answers — read your
//! writes. PostgreSQL unreachable means the configuration is read-only here; nothing is queued.

use std::sync::{Arc, Mutex, MutexGuard};

use serde::Serialize;

use super::heartbeat::InstanceReport;
use crate::config::{ConfigWriter, Freshness, Plan, Snapshot, Snapshots, WriteError, Written};
use crate::crypto::Cipher;
use crate::store::postgres::{Base, ChangePage, PgStore, ResyncReason};
use crate::store::{Commit, ConfigState, ConfigStore, StoreError};

/// Records per pulled page (a page never splits a revision, so it may hold more).
const PAGE_SIZE: usize = 500;

/// How the local copy stands, for `/health` and the admin API.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplicaStatus {
    pub cluster_id: String,
    /// The revision the local copy (and the published snapshot) is at.
    pub applied_revision: u64,
    /// PostgreSQL's revision when it was last read.
    pub head_revision: u64,
    /// When the copy last matched PostgreSQL's head (RFC 3339).
    pub confirmed_at: Option<String>,
    /// Since when PostgreSQL has not answered (RFC 3339); `None` while it answers.
    pub unreachable_since: Option<String>,
    pub last_error: Option<String>,
    /// Full resyncs since start, and why the last one happened.
    pub resyncs: u64,
    pub last_resync: Option<String>,
}

/// How a start in cluster mode went (said in the log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Joined {
    /// PostgreSQL was empty: it now holds this data dir's configuration.
    Seeded { revision: u64, records: usize },
    /// This data dir was new or already a copy of this cluster; it is now at PostgreSQL's head.
    Pulled { revision: u64 },
    /// PostgreSQL is unreachable: serving this data dir's copy as it is.
    Offline { revision: u64, error: String },
}

#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Write(#[from] WriteError),
    #[error(
        "this data dir's configuration belongs to cluster {local}, but PostgreSQL holds cluster {remote}. Point --postgres-url at the database of cluster {local}; or, to make this instance join cluster {remote}, stop it and move relaybox.redb out of the data dir (the configuration then comes from PostgreSQL)"
    )]
    OtherCluster { local: String, remote: String },
    #[error(
        "this data dir has a configuration of its own ({summary}) and PostgreSQL already holds cluster {remote}'s. An instance joins a cluster with an empty data dir (its configuration comes from PostgreSQL); to keep this one's keys, import it into the cluster instead, or start it alone without --postgres-url"
    )]
    OwnConfiguration { summary: String, remote: String },
    #[error(
        "PostgreSQL is unreachable ({0}) and this data dir holds no copy of a cluster's configuration yet: the first start in cluster mode needs PostgreSQL"
    )]
    FirstStartOffline(String),
}

/// The copy's identity, guarded by the lock that serialises applying and writing.
#[derive(Debug)]
struct Copy {
    cluster_id: String,
}

pub struct Replica {
    pg: Arc<PgStore>,
    local: Arc<dyn ConfigStore>,
    cipher: Arc<Cipher>,
    snapshots: Snapshots,
    freshness: Arc<Freshness>,
    copy: Mutex<Copy>,
    status: Mutex<ReplicaStatus>,
    /// What the heartbeat tells the other instances (applied revision, stale since).
    report: Arc<InstanceReport>,
}

impl std::fmt::Debug for Replica {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replica")
            .field("snapshots", &self.snapshots)
            .finish_non_exhaustive()
    }
}

impl Replica {
    /// Start in cluster mode (blocking; call from a blocking thread): seed an empty PostgreSQL
    /// from this data dir, or bring this data dir's copy to PostgreSQL's head before serving,
    /// or — PostgreSQL unreachable — serve the copy this data dir already holds.
    pub fn join(
        pg: Arc<PgStore>,
        local: Arc<dyn ConfigStore>,
        cipher: Arc<Cipher>,
    ) -> Result<(Replica, Joined), JoinError> {
        let state = local.load()?;
        let local_cluster = local.cluster_id()?;
        let snapshot = Snapshot::build(state.clone(), &cipher).map_err(WriteError::from)?;
        let replica = Replica {
            pg,
            local,
            cipher,
            snapshots: Snapshots::new(snapshot),
            freshness: Arc::new(Freshness::replicated()),
            copy: Mutex::new(Copy {
                cluster_id: local_cluster.clone().unwrap_or_default(),
            }),
            status: Mutex::new(ReplicaStatus {
                cluster_id: local_cluster.clone().unwrap_or_default(),
                applied_revision: state.revision,
                ..ReplicaStatus::default()
            }),
            report: Arc::default(),
        };
        let head = match replica.pg.block_on(async {
            replica.pg.prepare().await?;
            replica.pg.head().await
        }) {
            Ok(head) => head,
            Err(StoreError::Unreachable(error)) => {
                if local_cluster.is_none() {
                    return Err(JoinError::FirstStartOffline(error));
                }
                replica.note_unreachable(&error);
                return Ok((
                    replica,
                    Joined::Offline {
                        revision: state.revision,
                        error,
                    },
                ));
            }
            Err(err) => return Err(err.into()),
        };
        if head.rev == 0
            && state.has_records()
            && let Some(seeded) = replica.pg.block_on(replica.pg.seed(&state))?
        {
            // The copy is PostgreSQL's state already; it only learns whose copy it is.
            replica.local.commit(Commit {
                base: state.revision,
                revision: seeded.rev,
                writes: &[],
                cluster: Some(&seeded.cluster_id),
            })?;
            let mut copy = replica.lock_copy();
            copy.cluster_id.clone_from(&seeded.cluster_id);
            let records = state.all_writes().len();
            let joined = Joined::Seeded {
                revision: seeded.rev,
                records,
            };
            replica.publish_state(state, seeded.rev, &seeded.cluster_id)?;
            drop(copy);
            replica.confirmed(seeded.rev, seeded.rev);
            return Ok((replica, joined));
        }
        let mut copy = replica.lock_copy();
        match &local_cluster {
            Some(local) if *local != head.cluster_id && head.rev > 0 => {
                return Err(JoinError::OtherCluster {
                    local: local.clone(),
                    remote: head.cluster_id,
                });
            }
            None if state.has_records() && head.rev > 0 => {
                return Err(JoinError::OwnConfiguration {
                    summary: summary(&state),
                    remote: head.cluster_id,
                });
            }
            _ => {}
        }
        let revision = replica.catch_up(&mut copy)?;
        drop(copy);
        Ok((replica, Joined::Pulled { revision }))
    }

    /// The published snapshot's handle (what the relay and the admin API read).
    #[must_use]
    pub fn snapshots(&self) -> &Snapshots {
        &self.snapshots
    }

    #[must_use]
    pub fn freshness(&self) -> &Arc<Freshness> {
        &self.freshness
    }

    #[must_use]
    pub fn status(&self) -> ReplicaStatus {
        self.status
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    #[must_use]
    pub fn pg(&self) -> &Arc<PgStore> {
        &self.pg
    }

    #[must_use]
    pub fn report(&self) -> &Arc<InstanceReport> {
        &self.report
    }

    /// Bring the copy to PostgreSQL's head (blocking). Returns the applied revision.
    pub fn sync(&self) -> Result<u64, StoreError> {
        let mut copy = self.lock_copy();
        self.catch_up(&mut copy)
    }

    fn lock_copy(&self) -> MutexGuard<'_, Copy> {
        // Every change to the copy is committed before the snapshot moves: a panic while
        // holding the lock leaves nothing half done.
        self.copy
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Pull until the copy is at the head, resyncing when a page cannot repair it.
    fn catch_up(&self, copy: &mut Copy) -> Result<u64, StoreError> {
        let result = self.catch_up_inner(copy);
        match &result {
            Ok(_) => {}
            Err(StoreError::Unreachable(error)) => self.note_unreachable(error),
            Err(err) => self.note_error(&err.to_string()),
        }
        result
    }

    fn catch_up_inner(&self, copy: &mut Copy) -> Result<u64, StoreError> {
        loop {
            let current = self.snapshots.current();
            let page = self
                .pg
                .block_on(self.pg.changes_since(current.revision, PAGE_SIZE))?;
            if let Some(reason) = page.head.resync_reason(&copy.cluster_id, current.revision) {
                return self.resync(copy, &reason);
            }
            let through = page.through;
            let more = page.has_more();
            let head = page.head.rev;
            if through != current.revision || !page.records.is_empty() {
                self.apply_page(&current, page)?;
            }
            if !more {
                self.confirmed(through, head);
                return Ok(through);
            }
        }
    }

    /// One page in one local transaction, then the snapshot that shows it.
    fn apply_page(&self, current: &Snapshot, page: ChangePage) -> Result<(), StoreError> {
        let records: Vec<_> = page.records.into_iter().map(|r| r.write).collect();
        let mut next = current.state.clone();
        let writes = next.apply_pulled(&records, page.through);
        let snapshot = current
            .advance(next, &writes, &self.cipher)
            .map_err(|e| StoreError::Backend(format!("a pulled secret cannot be opened: {e}")))?;
        self.local.commit(Commit {
            base: current.revision,
            revision: page.through,
            writes: &writes,
            cluster: None,
        })?;
        self.snapshots.publish(Arc::new(snapshot));
        Ok(())
    }

    /// Replace the copy with PostgreSQL's whole configuration.
    fn resync(&self, copy: &mut Copy, reason: &ResyncReason) -> Result<u64, StoreError> {
        // A data dir that was no cluster's copy yet (a new instance joining) just takes it all.
        let joining = copy.cluster_id.is_empty();
        if joining {
            tracing::info!("cluster mode: taking the cluster's configuration from PostgreSQL");
        } else {
            tracing::warn!(
                reason = %reason,
                "the local copy of the configuration cannot be brought up to date change by change; replacing it with PostgreSQL's whole configuration"
            );
        }
        let (head, state) = self.pg.block_on(self.pg.snapshot())?;
        let current = self.snapshots.current();
        let writes = current.state.writes_to_become(&state);
        let revision = head.rev;
        let snapshot = Snapshot::build(state, &self.cipher)
            .map_err(|e| StoreError::Backend(format!("a pulled secret cannot be opened: {e}")))?;
        self.local.commit(Commit {
            base: current.revision,
            revision,
            writes: &writes,
            cluster: Some(&head.cluster_id),
        })?;
        self.snapshots.publish(Arc::new(snapshot));
        copy.cluster_id.clone_from(&head.cluster_id);
        {
            let mut status = self.lock_status();
            status.cluster_id.clone_from(&head.cluster_id);
            if !joining {
                status.resyncs += 1;
                status.last_resync = Some(reason.to_string());
            }
        }
        self.confirmed(revision, revision);
        Ok(revision)
    }

    fn publish_state(
        &self,
        state: ConfigState,
        revision: u64,
        cluster_id: &str,
    ) -> Result<(), WriteError> {
        let state = ConfigState { revision, ..state };
        self.snapshots
            .publish(Arc::new(Snapshot::build(state, &self.cipher)?));
        self.lock_status().cluster_id = cluster_id.to_string();
        Ok(())
    }

    fn lock_status(&self) -> MutexGuard<'_, ReplicaStatus> {
        self.status
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn confirmed(&self, applied: u64, head: u64) {
        self.freshness.confirm();
        self.report.set_applied_rev(applied);
        self.report.set_config_stale_since(None);
        let mut status = self.lock_status();
        if status.unreachable_since.is_some() {
            tracing::info!("PostgreSQL answers again; the configuration is current");
        }
        status.applied_revision = applied;
        status.head_revision = head;
        status.confirmed_at = Some(crate::domain::format_time(crate::domain::now()));
        status.unreachable_since = None;
        status.last_error = None;
    }

    fn note_unreachable(&self, error: &str) {
        self.stale_from_now();
        let mut status = self.lock_status();
        if status.unreachable_since.is_none() {
            tracing::warn!(
                error,
                "PostgreSQL is unreachable: serving the local copy of the configuration (revision {}); admin changes are refused until it answers",
                status.applied_revision
            );
            status.unreachable_since = Some(crate::domain::format_time(crate::domain::now()));
        }
        status.last_error = Some(error.to_string());
    }

    fn stale_from_now(&self) {
        // The first failure since the copy was last confirmed.
        if self.lock_status().last_error.is_none() {
            self.report
                .set_config_stale_since(Some(std::time::Instant::now()));
        }
        self.freshness.failed();
    }

    fn note_error(&self, error: &str) {
        self.stale_from_now();
        tracing::warn!(error, "pulling the configuration from PostgreSQL failed");
        self.lock_status().last_error = Some(error.to_string());
    }
}

impl ConfigWriter for Replica {
    fn write(&self, plan: &mut Plan<'_>) -> Result<Written, WriteError> {
        let mut copy = self.lock_copy();
        self.catch_up(&mut copy).map_err(read_only)?;
        let current = self.snapshots.current();
        let ops = plan(&current.state)?;
        if ops.is_empty() {
            return Ok(Written {
                snapshot: current,
                changed: false,
            });
        }
        let mut next = current.state.clone();
        let writes = next.apply_ops(&ops)?;
        let committed = self
            .pg
            .block_on(
                self.pg
                    .commit_records(Base::Records(&current.state), &writes),
            )
            .map_err(read_only)?;
        if committed == next.revision {
            // Nobody committed in between: the change is exactly what PostgreSQL now holds at
            // `committed`; apply it without a round trip.
            let snapshot = Arc::new(current.advance(next, &writes, &self.cipher)?);
            self.local.commit(Commit {
                base: current.revision,
                revision: committed,
                writes: &writes,
                cluster: None,
            })?;
            self.snapshots.publish(Arc::clone(&snapshot));
            self.confirmed(committed, committed);
            return Ok(Written {
                snapshot,
                changed: true,
            });
        }
        // Another instance's change landed first: pull both (ours is at `committed`).
        self.catch_up(&mut copy)?;
        Ok(Written {
            snapshot: self.snapshots.current(),
            changed: true,
        })
    }
}

/// PostgreSQL unreachable while writing: the configuration is read-only here.
fn read_only(err: StoreError) -> WriteError {
    match err {
        StoreError::Unreachable(detail) => WriteError::Store(StoreError::ReadOnly(detail)),
        other => WriteError::Store(other),
    }
}

fn summary(state: &ConfigState) -> String {
    format!(
        "{} keys, {} channels, {} prices",
        state.keys.len(),
        state.channels.len(),
        state.pricing.len()
    )
}
