//! The one config-write path.
//!
//! Every change to the configuration — admin API, offline CLI, config-file reload, importers,
//! the relay's own writes (a key's first use), the admin key from the environment — goes
//! through a [`ConfigWriter`]. A write:
//! 1. waits for the writer's lock (writes are serialised),
//! 2. plans its ops against the **committed** state (never a snapshot copy that may be older),
//!    so a patch merges onto the latest acknowledged value and versions are checked there,
//! 3. prepares the next snapshot (opens only the secrets the change wrote),
//! 4. commits one store transaction,
//! 5. publishes the snapshot, and only then returns.
//!
//! So an answer reflects every change acknowledged before it, a revoked key is refused as soon
//! as the revoke is acknowledged, and a created key works at once.
//!
//! [`LocalWriter`] is the single-node implementation; cluster mode adds a replicated one.

use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;

use super::snapshot::Snapshot;
use crate::crypto::{Cipher, CryptoError};
use crate::store::{Commit, ConfigOp, ConfigState, ConfigStore, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("a secret of the changed configuration cannot be opened: {0}")]
    Crypto(#[from] CryptoError),
    /// The plan refused the change (its own error is kept by [`Configuration::write`]).
    ///
    /// [`Configuration::write`]: super::Configuration::write
    #[error("the change was refused")]
    Refused,
}

/// A plan: the ops of one change, decided against the committed state.
pub type Plan<'a> = dyn FnMut(&ConfigState) -> Result<Vec<ConfigOp>, WriteError> + 'a;

/// What a write returns: the snapshot that shows it (already published).
#[derive(Debug, Clone)]
pub struct Written {
    pub snapshot: Arc<Snapshot>,
    /// Whether anything was written (an empty plan writes nothing and keeps the revision).
    pub changed: bool,
}

/// The seam every config change goes through.
pub trait ConfigWriter: Send + Sync {
    /// Run `plan` against the committed state, serialised with every other write; commit its
    /// ops in one transaction and publish the new snapshot before returning.
    fn write(&self, plan: &mut Plan<'_>) -> Result<Written, WriteError>;
}

/// The published snapshot, shared by the writer (which replaces it) and every reader.
#[derive(Clone)]
pub struct Snapshots(Arc<ArcSwap<Snapshot>>);

impl std::fmt::Debug for Snapshots {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Snapshots")
            .field(&self.0.load().revision)
            .finish()
    }
}

impl Snapshots {
    #[must_use]
    pub fn new(snapshot: Snapshot) -> Self {
        Self(Arc::new(ArcSwap::from_pointee(snapshot)))
    }

    /// The current snapshot; take it once per request and use it throughout.
    #[must_use]
    pub fn current(&self) -> Arc<Snapshot> {
        self.0.load_full()
    }

    /// Replace the published snapshot (only a writer does this, under its lock).
    pub fn publish(&self, snapshot: Arc<Snapshot>) {
        self.0.store(snapshot);
    }
}

/// Single node: the committed state is the published snapshot's (a change is published under
/// the lock, right after its commit), and the store is the local `relaybox.redb`.
pub struct LocalWriter {
    store: Arc<dyn ConfigStore>,
    cipher: Arc<Cipher>,
    snapshots: Snapshots,
    lock: Mutex<()>,
    /// Cluster mode, offline: the store is a copy of this cluster's configuration; writing it
    /// here would make it diverge from PostgreSQL.
    copy_of: Option<String>,
}

impl std::fmt::Debug for LocalWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalWriter")
            .field("snapshots", &self.snapshots)
            .finish_non_exhaustive()
    }
}

impl LocalWriter {
    /// Load the store and build the first snapshot.
    pub fn open(store: Arc<dyn ConfigStore>, cipher: Arc<Cipher>) -> Result<Self, WriteError> {
        let state = store.load()?;
        let snapshot = Snapshot::build(state, &cipher)?;
        let copy_of = store.cluster_id()?;
        Ok(Self {
            store,
            cipher,
            snapshots: Snapshots::new(snapshot),
            lock: Mutex::new(()),
            copy_of,
        })
    }

    #[must_use]
    pub fn snapshots(&self) -> &Snapshots {
        &self.snapshots
    }
}

impl ConfigWriter for LocalWriter {
    fn write(&self, plan: &mut Plan<'_>) -> Result<Written, WriteError> {
        // A panic while holding the lock cannot leave a half change behind (the snapshot is
        // replaced only after a successful commit), so a poisoned lock is safe to take.
        let _serialised = self
            .lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let current = self.snapshots.current();
        let ops = plan(&current.state)?;
        if ops.is_empty() {
            return Ok(Written {
                snapshot: current,
                changed: false,
            });
        }
        if let Some(cluster) = &self.copy_of {
            return Err(StoreError::ClusterCopy(cluster.clone()).into());
        }
        let mut next = current.state.clone();
        let writes = next.apply_ops(&ops)?;
        let snapshot = Arc::new(current.advance(next, &writes, &self.cipher)?);
        let commit = Commit {
            base: current.revision,
            revision: snapshot.revision,
            writes: &writes,
            cluster: None,
        };
        match self.store.commit(commit) {
            Ok(()) => {}
            Err(err @ StoreError::RevisionMoved { .. }) => {
                // Someone wrote the file behind our back: show what is there now, and let the
                // caller retry against it.
                tracing::warn!(error = %err, "reloading the configuration from relaybox.redb");
                let state = self.store.load()?;
                self.snapshots
                    .publish(Arc::new(Snapshot::build(state, &self.cipher)?));
                return Err(err.into());
            }
            Err(err) => return Err(err.into()),
        }
        self.snapshots.publish(Arc::clone(&snapshot));
        Ok(Written {
            snapshot,
            changed: true,
        })
    }
}
