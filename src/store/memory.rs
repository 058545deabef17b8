//! In-memory [`ConfigStore`] for unit tests and as the conformance baseline.

use std::sync::Mutex;

use super::{ConfigOp, ConfigState, ConfigStore, StoreError};
use crate::crypto::KeyringRecord;

#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: Mutex<(ConfigState, Option<KeyringRecord>)>,
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

    fn apply(&self, ops: &[ConfigOp]) -> Result<u64, StoreError> {
        let mut guard = self.lock();
        guard.0.apply_ops(ops)?;
        Ok(guard.0.revision)
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
