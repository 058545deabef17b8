//! The configuration: the published snapshot the request path reads, the one writer every
//! change goes through, and the use cases built on them (`services`).
//!
//! Arrows: `config` knows the stores and the domain; it does not know HTTP, the relay or the
//! app that wires them.

pub mod aad;
pub mod channel;
pub mod freshness;
pub mod services;
pub mod snapshot;
pub mod writer;

use std::sync::Arc;

use crate::crypto::Cipher;
use crate::store::{ConfigOp, ConfigState, ConfigStore};
pub use channel::{CompositeRoute, LiveChannel, LoadBalance, UpstreamKind};
pub use freshness::Freshness;
pub use snapshot::Snapshot;
pub use writer::{ConfigWriter, LocalWriter, Plan, Snapshots, WriteError, Written};

/// The configuration of one data dir: read the snapshot, change through the writer.
pub struct Configuration {
    writer: Arc<dyn ConfigWriter>,
    snapshots: Snapshots,
    cipher: Arc<Cipher>,
    freshness: Arc<Freshness>,
}

impl std::fmt::Debug for Configuration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Configuration")
            .field("snapshots", &self.snapshots)
            .finish_non_exhaustive()
    }
}

impl Configuration {
    /// Single node: the local store is the truth.
    pub fn local(store: Arc<dyn ConfigStore>, cipher: Arc<Cipher>) -> Result<Self, WriteError> {
        let writer = LocalWriter::open(store, Arc::clone(&cipher))?;
        let snapshots = writer.snapshots().clone();
        Ok(Self {
            writer: Arc::new(writer),
            snapshots,
            cipher,
            freshness: Arc::new(Freshness::local()),
        })
    }

    /// Cluster mode: changes go through a replicated writer that keeps `snapshots` current.
    #[must_use]
    pub fn replicated(
        writer: Arc<dyn ConfigWriter>,
        snapshots: Snapshots,
        cipher: Arc<Cipher>,
        freshness: Arc<Freshness>,
    ) -> Self {
        Self {
            writer,
            snapshots,
            cipher,
            freshness,
        }
    }

    /// How current the configuration is (always, on a single node).
    #[must_use]
    pub fn freshness(&self) -> &Freshness {
        &self.freshness
    }

    /// The current snapshot; take it once per request and use it throughout.
    #[must_use]
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshots.current()
    }

    /// The handle readers keep (the relay holds this, not the writer).
    #[must_use]
    pub fn snapshots(&self) -> &Snapshots {
        &self.snapshots
    }

    /// A copy of the committed state (O(1): its tables are shared) for planning a large change,
    /// such as an import, outside the writer. Ops planned on it carry the versions they saw,
    /// so a change committed meanwhile makes them fail instead of being overwritten.
    #[must_use]
    pub fn committed(&self) -> ConfigState {
        self.snapshot().state.clone()
    }

    #[must_use]
    pub fn cipher(&self) -> &Cipher {
        &self.cipher
    }

    /// One change: `plan` decides the ops against the committed state (under the writer's
    /// lock); returns the published snapshot that shows the change. A plan's own error is
    /// returned as it is, and nothing is written.
    pub fn write<E, P>(&self, mut plan: P) -> Result<Arc<Snapshot>, E>
    where
        E: From<WriteError>,
        P: FnMut(&ConfigState) -> Result<Vec<ConfigOp>, E>,
    {
        let mut refusal = None;
        let written = self.writer.write(&mut |state| {
            plan(state).map_err(|err| {
                refusal = Some(err);
                WriteError::Refused
            })
        });
        match (written, refusal) {
            (_, Some(err)) => Err(err),
            (Ok(written), None) => Ok(written.snapshot),
            (Err(err), None) => Err(err.into()),
        }
    }

    /// Ops already decided (their `Expect`s are checked against the committed state).
    pub fn apply(&self, ops: &[ConfigOp]) -> Result<Arc<Snapshot>, WriteError> {
        self.write(|_| Ok::<_, WriteError>(ops.to_vec()))
    }
}
