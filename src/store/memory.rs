//! In-memory [`ConfigStore`] for unit tests and as the conformance baseline.

use std::sync::Mutex;

use super::{Commit, ConfigState, ConfigStore, RecordWrite, StoreError};
use crate::crypto::KeyringRecord;
use crate::domain::Channel;

#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: Mutex<(ConfigState, Option<KeyringRecord>)>,
    cluster: Mutex<Option<String>>,
}

impl MemoryStore {
    fn lock(&self) -> std::sync::MutexGuard<'_, (ConfigState, Option<KeyringRecord>)> {
        // A poisoned lock only means another test thread panicked; the data is still whole
        // because apply_ops never leaves a half-applied state.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl ConfigStore for MemoryStore {
    fn load(&self) -> Result<ConfigState, StoreError> {
        Ok(self.lock().0.clone())
    }

    fn commit(&self, commit: Commit<'_>) -> Result<(), StoreError> {
        let mut guard = self.lock();
        let state = &mut guard.0;
        if state.revision != commit.base {
            return Err(StoreError::RevisionMoved {
                expected: commit.base,
                found: state.revision,
            });
        }
        for write in commit.writes {
            match write.clone() {
                RecordWrite::Key(id, Some(key)) => state.keys.insert(id, key),
                RecordWrite::Key(id, None) => _ = state.keys.remove(&id),
                RecordWrite::KeyHash(hash, Some(id)) => state.key_hashes.insert(hash, id),
                RecordWrite::KeyHash(hash, None) => _ = state.key_hashes.remove(&hash),
                RecordWrite::Channel(id, Some(channel)) => {
                    // The config record: the stored credentials stay (they have their own).
                    let credentials = state
                        .channels
                        .get(&id)
                        .map(|c| c.credentials.clone())
                        .unwrap_or_default();
                    state.channels.insert(
                        id,
                        Channel {
                            credentials,
                            ..channel
                        },
                    );
                }
                RecordWrite::Credentials(id, Some(credentials)) => {
                    if let Some(channel) = state.channels.get(&id) {
                        let channel = Channel {
                            credentials,
                            ..channel.clone()
                        };
                        state.channels.insert(id, channel);
                    }
                }
                RecordWrite::Credentials(_, None) => {}
                RecordWrite::Channel(id, None) => _ = state.channels.remove(&id),
                RecordWrite::Price(model, Some(price)) => state.pricing.insert(model, price),
                RecordWrite::Price(model, None) => _ = state.pricing.remove(&model),
                RecordWrite::Aliases(aliases) => state.aliases = aliases,
                RecordWrite::Settings(settings) => state.settings = settings,
            }
        }
        state.revision = commit.revision;
        if let Some(cluster) = commit.cluster {
            *self
                .cluster
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(cluster.to_string());
        }
        Ok(())
    }

    fn cluster_id(&self) -> Result<Option<String>, StoreError> {
        Ok(self
            .cluster
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone())
    }

    fn revision(&self) -> Result<u64, StoreError> {
        Ok(self.lock().0.revision)
    }

    fn keyring(&self) -> Result<Option<KeyringRecord>, StoreError> {
        Ok(self.lock().1.clone())
    }

    fn init_keyring(&self, record: &KeyringRecord) -> Result<(), StoreError> {
        let mut guard = self.lock();
        if guard.1.is_some() {
            return Err(StoreError::Conflict("a keyring already exists".into()));
        }
        guard.1 = Some(record.clone());
        Ok(())
    }
}
