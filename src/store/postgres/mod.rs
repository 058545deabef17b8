//! Cluster mode: the configuration shared through PostgreSQL.
//!
//! PostgreSQL holds the truth (`cfg_head`, `cfg_record`, `cfg_keyring`; the schema is created
//! and migrated by [`migrate`]); each instance keeps serving from its local copy.
//!
//! **Writes** ([`PgStore::commit_records`]): one transaction that locks the head row
//! (`SELECT … FOR UPDATE`), checks the version of every record it writes (stale → the same
//! [`StoreError::Conflict`] the local store gives, so the admin API answers 409) and the
//! uniqueness rules (key hashes, channel names per pool), bumps the revision, writes each
//! record with that revision (deletes leave tombstones) and `pg_notify`s
//! [`NOTIFY_CHANNEL`] with it.
//!
//! **Pulls** ([`PgStore::changes_since`]): the records and tombstones with `rev > applied`, in
//! revision order. Why `rev > applied` never skips a change: a revision is taken from the head
//! row *while its lock is held*, and the lock is released only by the commit. So a writer that
//! got revision N has committed before any writer can read the head row and take N+1 — revision
//! order is commit order — and a reader's snapshot that sees revision N sees every revision
//! below it. A `bigserial` or `now()` would be assigned before commit and could commit out of
//! order (a late commit with a smaller number is skipped by a poller that already passed it).
//! A page ends on a revision boundary, so `through` is always safe to record as applied.
//!
//! NOTIFY is only a hint (lost while a listener is disconnected); pullers poll regardless.
//!
//! [`PgStore`] is async; it also implements the synchronous [`ConfigStore`] (strict mode: the
//! commit is refused with [`StoreError::RevisionMoved`] unless the head is at its base), run on
//! the runtime it was connected on — call those methods from a blocking thread
//! ([`crate::store::blocking`]) or outside any runtime, never from an async task.

mod commit;
pub mod counters;
pub mod instances;
pub mod leases;
pub mod logs;
pub mod migrate;
mod pull;
pub mod target;
mod tombstones;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio::runtime::Handle;

pub use commit::Base;
pub use pull::{ChangePage, Head, PulledRecord, ResyncReason};
pub use target::{Target, Tls};
pub use tombstones::Collected;

use super::{Commit, ConfigState, ConfigStore, StoreError};
use crate::crypto::KeyringRecord;

/// The NOTIFY channel; the payload is the committed revision.
pub const NOTIFY_CHANNEL: &str = "relaybox_config";

/// Connections the store keeps (config writes are rare; pulls and writes share them).
const POOL_SIZE: usize = 4;

/// The cluster's PostgreSQL: a small connection pool and the runtime it lives on.
pub struct PgStore {
    pool: Pool,
    target: Target,
    runtime: Handle,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

impl PgStore {
    /// Connect and bring the schema up to date (refusing a newer one). Call inside a tokio
    /// runtime; the store keeps using that runtime.
    pub async fn connect(target: &Target) -> Result<Self, StoreError> {
        let store = Self::new(target)?;
        store.prepare().await?;
        Ok(store)
    }

    /// The store without touching the network yet (connections open on first use), so an
    /// instance can start while PostgreSQL is down. Call inside a tokio runtime; the store
    /// keeps using that runtime.
    pub fn new(target: &Target) -> Result<Self, StoreError> {
        let manager_config = ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        };
        let manager = match target.rustls_config()? {
            None => {
                Manager::from_config(target.config.clone(), tokio_postgres::NoTls, manager_config)
            }
            Some(tls) => Manager::from_config(
                target.config.clone(),
                tokio_postgres_rustls::MakeRustlsConnect::new(tls),
                manager_config,
            ),
        };
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(std::time::Duration::from_secs(10)))
            .create_timeout(Some(std::time::Duration::from_secs(10)))
            .recycle_timeout(Some(std::time::Duration::from_secs(5)))
            .build()
            .map_err(|e| StoreError::Backend(format!("PostgreSQL pool: {e}")))?;
        Ok(Self {
            pool,
            target: target.clone(),
            runtime: Handle::current(),
        })
    }

    /// Bring the schema up to date (refusing a newer one); returns the version found before.
    pub async fn prepare(&self) -> Result<u64, StoreError> {
        let mut client = self.client().await?;
        let before = migrate::run(&mut client).await?;
        if before == 0 {
            tracing::info!("PostgreSQL: relaybox schema created");
        }
        Ok(before)
    }

    /// The target this store connects to.
    #[must_use]
    pub fn target(&self) -> &Target {
        &self.target
    }

    pub(crate) async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.pool.get().await.map_err(|err| match err {
            deadpool_postgres::PoolError::Backend(err) => pg_error(err),
            other => StoreError::Unreachable(other.to_string()),
        })
    }

    /// The schema version recorded in the database.
    pub async fn schema_version(&self) -> Result<u64, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_one("SELECT version FROM relaybox_schema", &[])
            .await
            .map_err(pg_error)?;
        Ok(u64::try_from(row.get::<_, i64>(0)).unwrap_or(0))
    }

    /// The cluster's keyring, if one was stored.
    pub async fn keyring_async(&self) -> Result<Option<KeyringRecord>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt("SELECT body::text FROM cfg_keyring", &[])
            .await
            .map_err(pg_error)?;
        row.map(|row| decode("keyring", "keyring", &row.get::<_, String>(0)))
            .transpose()
    }

    /// Store the cluster's keyring; refused when one exists (the first instance's wins).
    pub async fn init_keyring_async(&self, record: &KeyringRecord) -> Result<(), StoreError> {
        let client = self.client().await?;
        let inserted = client
            .execute(
                "INSERT INTO cfg_keyring (body) VALUES ($1::text::jsonb)
                 ON CONFLICT (singleton) DO NOTHING",
                &[&encode(record)?],
            )
            .await
            .map_err(pg_error)?;
        if inserted == 0 {
            return Err(StoreError::Conflict(
                "this cluster already has a keyring".into(),
            ));
        }
        Ok(())
    }

    /// Whether a cc-bridge config file with this content was applied in this cluster.
    pub async fn import_seen(&self, file: &str, sha256: &str) -> Result<bool, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT 1 FROM cfg_import WHERE file = $1 AND sha256 = $2",
                &[&file, &sha256],
            )
            .await
            .map_err(pg_error)?;
        Ok(row.is_some())
    }

    /// Record that `instance_id` applied this content of a config file.
    pub async fn record_import(
        &self,
        file: &str,
        sha256: &str,
        instance_id: &str,
    ) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO cfg_import (file, sha256, instance_id) VALUES ($1, $2, $3)
                 ON CONFLICT (file, sha256) DO NOTHING",
                &[&file, &sha256, &instance_id],
            )
            .await
            .map_err(pg_error)?;
        Ok(())
    }

    /// Run one of this store's futures to completion from synchronous code: a blocking thread,
    /// a thread outside any runtime, or a worker of a multi-threaded runtime (which is told it
    /// blocks). Config writes are synchronous; this is how they reach PostgreSQL.
    pub fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        tokio::task::block_in_place(|| self.runtime.block_on(future))
    }
}

impl ConfigStore for PgStore {
    fn load(&self) -> Result<ConfigState, StoreError> {
        self.block_on(self.load_async())
    }

    fn commit(&self, commit: Commit<'_>) -> Result<(), StoreError> {
        let revision = self.block_on(self.commit_records(
            Base::Revision {
                base: commit.base,
                revision: commit.revision,
            },
            commit.writes,
        ))?;
        debug_assert_eq!(revision, commit.revision);
        Ok(())
    }

    fn revision(&self) -> Result<u64, StoreError> {
        Ok(self.block_on(self.head())?.rev)
    }

    fn keyring(&self) -> Result<Option<KeyringRecord>, StoreError> {
        self.block_on(self.keyring_async())
    }

    fn init_keyring(&self, record: &KeyringRecord) -> Result<(), StoreError> {
        self.block_on(self.init_keyring_async(record))
    }
}

/// A PostgreSQL error as a store error: a lost or refused connection is
/// [`StoreError::Unreachable`]; a unique violation is a conflict; the rest is a backend error.
pub(crate) fn pg_error(err: tokio_postgres::Error) -> StoreError {
    use tokio_postgres::error::SqlState;
    match err.code() {
        Some(code) if *code == SqlState::UNIQUE_VIOLATION => StoreError::Conflict(format!(
            "the change clashes with a record written meanwhile ({}); reload and retry",
            err.as_db_error().map_or("", |e| e.message())
        )),
        Some(
            code @ (&SqlState::ADMIN_SHUTDOWN
            | &SqlState::CRASH_SHUTDOWN
            | &SqlState::CANNOT_CONNECT_NOW
            | &SqlState::TOO_MANY_CONNECTIONS),
        ) => StoreError::Unreachable(format!("{err} ({})", code.code())),
        Some(_) => StoreError::Backend(format!("PostgreSQL: {err}")),
        None if err.is_closed() || std::error::Error::source(&err).is_some() => {
            StoreError::Unreachable(describe(&err))
        }
        None => StoreError::Backend(format!("PostgreSQL: {}", describe(&err))),
    }
}

/// The error and its causes on one line ("error connecting to server: Connection refused").
fn describe(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let line = cause.to_string();
        if !text.contains(&line) {
            text.push_str(": ");
            text.push_str(&line);
        }
        source = cause.source();
    }
    text
}

fn decode<T: serde::de::DeserializeOwned>(
    kind: &str,
    id: &str,
    text: &str,
) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| {
        StoreError::Backend(format!("PostgreSQL: record {kind}/{id} is unreadable: {e}"))
    })
}

fn encode<T: serde::Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Backend(format!("encoding a record: {e}")))
}

#[cfg(test)]
pub(crate) mod test_support;
