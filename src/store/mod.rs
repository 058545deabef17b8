//! Storage behind small traits.
//!
//! - [`ConfigStore`]: keys, channels, pricing, aliases, settings, keyring — `relaybox.redb`
//!   ([`redb_store::RedbStore`]) or memory ([`memory::MemoryStore`], for unit tests).
//! - [`LogStore`](sqlite::LogStore): request logs, usage, quota usage, import history —
//!   `logs.sqlite`, written by one background writer with group commit.
//!
//! Every config change is a list of [`ConfigOp`]s applied in one transaction. The semantics of
//! an op (optimistic versions, unique key hashes) live in one pure function,
//! [`ConfigState::apply_ops`]; its [`RecordWrite`]s are what an engine persists
//! ([`ConfigStore::commit`]). Only the config writer (`config::writer`) calls it.

pub mod memory;
pub mod mirror;
pub mod postgres;
pub mod redb_store;
pub mod sqlite;
pub mod table;

#[cfg(test)]
mod conformance;

pub use table::Table;

use crate::crypto::KeyringRecord;
use crate::domain::channel::Credentials;
use crate::domain::{Channel, ClientKey, ModelAliases, ModelPrice, Settings};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{kind} '{id}' does not exist")]
    NotFound { kind: &'static str, id: String },
    #[error("{0}")]
    Conflict(String),
    #[error(
        "this data dir was written by a newer relaybox ({store} schema {found}, this binary supports up to {supported}); upgrade relaybox or restore a backup"
    )]
    SchemaTooNew {
        store: &'static str,
        found: u64,
        supported: u64,
    },
    /// Cluster mode: the PostgreSQL schema is newer than this binary knows.
    #[error(
        "the PostgreSQL database was set up by a newer relaybox (schema {found}, this binary supports up to {supported}); upgrade this instance to the version the others run"
    )]
    ClusterSchemaTooNew { found: u64, supported: u64 },
    /// Cluster mode: PostgreSQL cannot be reached (or the connection broke); nothing was written
    /// unless the error says the outcome is unknown.
    #[error("PostgreSQL is unreachable ({0})")]
    Unreachable(String),
    /// Cluster mode: a config change while PostgreSQL is unreachable (never queued: instances
    /// must not diverge).
    #[error(
        "the configuration is read-only while PostgreSQL is unreachable ({0}); the change was not written"
    )]
    ReadOnly(String),
    /// Cluster mode: the offline CLI on a data dir that is a copy of a cluster's configuration.
    #[error(
        "this data dir holds a copy of cluster {0}'s configuration: change it through a running instance (its admin API, or this command while the server runs), not offline"
    )]
    ClusterCopy(String),
    #[error(
        "the data dir is in use by another relaybox process ({0}); stop it first, or use its admin API"
    )]
    Locked(String),
    #[error("storage error: {0}")]
    Backend(String),
    /// A store file failed its integrity check or is not a database at all.
    #[error("{0}")]
    Damaged(String),
    /// The disk holding the data dir is full (ENOSPC, SQLITE_FULL): nothing was written.
    #[error(
        "the disk holding the data dir is full ({0}); the change was not written. Free some space and retry"
    )]
    DiskFull(String),
    /// Another I/O fault (EIO, read-only file system, a store that must be reopened): nothing
    /// was written; the store recovers by itself when the fault goes away.
    #[error("the data dir cannot be written ({0}); the change was not written. Retry shortly")]
    Io(String),
    #[error(
        "relaybox.redb was changed outside this process (revision {found}, expected {expected}); the change was not written"
    )]
    RevisionMoved { expected: u64, found: u64 },
}

impl StoreError {
    /// An I/O error classified: a full disk, or another I/O fault.
    #[must_use]
    pub fn from_io(context: &str, err: &std::io::Error) -> Self {
        if is_disk_full(err) {
            StoreError::DiskFull(format!("{context}: {err}"))
        } else {
            StoreError::Io(format!("{context}: {err}"))
        }
    }

    /// Whether this is an I/O fault of the data dir (disk full included), which goes away by
    /// itself rather than being a bad request or a bug.
    #[must_use]
    pub fn is_io(&self) -> bool {
        matches!(self, StoreError::DiskFull(_) | StoreError::Io(_))
    }
}

/// ENOSPC or EDQUOT.
#[must_use]
pub fn is_disk_full(err: &std::io::Error) -> bool {
    matches!(
        err.kind(),
        std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
    ) || err.raw_os_error() == Some(28)
}

/// What an op expects to find: the optimistic-concurrency precondition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Create: the record must not exist.
    Absent,
    /// Update: the record must exist at this version (stale → conflict).
    Version(u64),
    /// Update: the record must exist, any version.
    Exists,
    /// Upsert (imports).
    Any,
}

#[derive(Debug, Clone)]
pub enum ConfigOp {
    PutKey(ClientKey, Expect),
    DeleteKey(String, Expect),
    /// The channel's config and, when they differ from the stored ones, its credentials.
    PutChannel(Channel, Expect),
    /// Only a channel's credentials (rotation, token refresh); `Expect` is about the
    /// credentials' version. The channel's own version stays.
    PutCredentials(String, Credentials, Expect),
    DeleteChannel(String, Expect),
    PutPrice(String, ModelPrice, Expect),
    DeletePrice(String, Expect),
    PutAliases(ModelAliases, Expect),
    PutSettings(Settings, Expect),
}

/// Everything in the config store. Its tables are persistent maps: a clone is O(1) and shares
/// every record, so the committed state and each snapshot built from it cost what changed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConfigState {
    pub keys: Table<ClientKey>,
    /// SHA-256 hex → key id (unique).
    pub key_hashes: Table<String>,
    pub channels: Table<Channel>,
    pub pricing: Table<ModelPrice>,
    pub aliases: ModelAliases,
    pub settings: Settings,
    /// Bumped by every committed change; the live snapshot records the revision it was built from.
    pub revision: u64,
}

/// A row-level write produced by [`ConfigState::apply_ops`], for engines that store per record.
#[derive(Debug, Clone, PartialEq)]
pub enum RecordWrite {
    Key(String, Option<ClientKey>),
    KeyHash(String, Option<String>),
    /// The channel's config record (its `credentials` are not part of it).
    Channel(String, Option<Channel>),
    /// The channel's credentials record.
    Credentials(String, Option<Credentials>),
    Price(String, Option<ModelPrice>),
    Aliases(ModelAliases),
    Settings(Settings),
}

fn check(
    kind: &'static str,
    id: &str,
    current: Option<u64>,
    expect: Expect,
) -> Result<u64, StoreError> {
    match (expect, current) {
        (Expect::Absent, Some(_)) => Err(StoreError::Conflict(format!(
            "{kind} '{id}' already exists"
        ))),
        (Expect::Version(_) | Expect::Exists, None) => Err(StoreError::NotFound {
            kind,
            id: id.to_string(),
        }),
        (Expect::Version(want), Some(have)) if want != have => Err(StoreError::Conflict(format!(
            "{kind} '{id}' was changed by someone else (version {have}, you sent {want}); reload and retry"
        ))),
        (_, current) => Ok(current.unwrap_or(0) + 1),
    }
}

impl ConfigState {
    /// Apply `ops` in order, all or nothing: on error `self` is unchanged. Returns the record
    /// writes an engine must persist. Versions are set here, so callers never pick them.
    pub fn apply_ops(&mut self, ops: &[ConfigOp]) -> Result<Vec<RecordWrite>, StoreError> {
        let mut next = self.clone();
        let mut writes = Vec::new();
        for op in ops {
            next.apply_one(op, &mut writes)?;
        }
        next.revision += 1;
        *self = next;
        Ok(writes)
    }

    fn apply_one(
        &mut self,
        op: &ConfigOp,
        writes: &mut Vec<RecordWrite>,
    ) -> Result<(), StoreError> {
        match op {
            ConfigOp::PutKey(key, expect) => {
                let current = self.keys.get(&key.id);
                let version = check("key", &key.id, current.map(|k| k.version), *expect)?;
                if let Some(owner) = self.key_hashes.get(&key.hash)
                    && owner != &key.id
                {
                    return Err(StoreError::Conflict(format!(
                        "another key ('{owner}') already has this key's hash"
                    )));
                }
                if let Some(old) = current
                    && old.hash != key.hash
                {
                    self.key_hashes.remove(&old.hash);
                    writes.push(RecordWrite::KeyHash(old.hash.clone(), None));
                }
                let mut key = key.clone();
                key.version = version;
                self.key_hashes.insert(key.hash.clone(), key.id.clone());
                writes.push(RecordWrite::KeyHash(key.hash.clone(), Some(key.id.clone())));
                writes.push(RecordWrite::Key(key.id.clone(), Some(key.clone())));
                self.keys.insert(key.id.clone(), key);
            }
            ConfigOp::DeleteKey(id, expect) => {
                let current = self.keys.get(id).map(|k| k.version);
                check("key", id, current, delete_expect(*expect))?;
                if let Some(old) = self.keys.get(id).cloned() {
                    self.keys.remove(id);
                    self.key_hashes.remove(&old.hash);
                    writes.push(RecordWrite::KeyHash(old.hash, None));
                    writes.push(RecordWrite::Key(id.clone(), None));
                }
            }
            ConfigOp::PutChannel(channel, expect) => {
                let current = self.channels.get(&channel.id).map(|c| c.version);
                let version = check("channel", &channel.id, current, *expect)?;
                let clash = self.channels.values().find(|c| {
                    c.id != channel.id
                        && c.pool == channel.pool
                        && c.name.eq_ignore_ascii_case(&channel.name)
                });
                if let Some(clash) = clash {
                    return Err(StoreError::Conflict(format!(
                        "the {} pool already has a channel named '{}' (id {})",
                        channel.pool, clash.name, clash.id
                    )));
                }
                let mut channel = channel.clone();
                channel.version = version;
                let stored = self.channels.get(&channel.id).map(|c| &c.credentials);
                let credentials_changed = match stored {
                    Some(stored) => {
                        !stored.same_secrets(&channel.credentials)
                            || stored.file_digest != channel.credentials.file_digest
                    }
                    None => {
                        !channel.credentials.is_empty() || channel.credentials.file_digest.is_some()
                    }
                };
                channel.credentials.version = match stored {
                    Some(stored) if credentials_changed => stored.version + 1,
                    Some(stored) => stored.version,
                    None => u64::from(credentials_changed),
                };
                writes.push(RecordWrite::Channel(
                    channel.id.clone(),
                    Some(channel.clone()),
                ));
                if credentials_changed {
                    writes.push(RecordWrite::Credentials(
                        channel.id.clone(),
                        Some(channel.credentials.clone()),
                    ));
                }
                self.channels.insert(channel.id.clone(), channel);
            }
            ConfigOp::PutCredentials(id, credentials, expect) => {
                let Some(current) = self.channels.get(id) else {
                    return Err(StoreError::NotFound {
                        kind: "channel",
                        id: id.clone(),
                    });
                };
                let version = check(
                    "credentials of channel",
                    id,
                    Some(current.credentials.version),
                    *expect,
                )?;
                let mut channel = current.clone();
                channel.credentials = Credentials {
                    version,
                    ..credentials.clone()
                };
                writes.push(RecordWrite::Credentials(
                    id.clone(),
                    Some(channel.credentials.clone()),
                ));
                self.channels.insert(id.clone(), channel);
            }
            ConfigOp::DeleteChannel(id, expect) => {
                let current = self.channels.get(id).map(|c| c.version);
                check("channel", id, current, delete_expect(*expect))?;
                if self.channels.remove(id) {
                    writes.push(RecordWrite::Channel(id.clone(), None));
                    writes.push(RecordWrite::Credentials(id.clone(), None));
                }
            }
            ConfigOp::PutPrice(model, price, expect) => {
                let current = self.pricing.get(model).map(|p| p.version);
                let version = check("price", model, current, *expect)?;
                let mut price = price.clone();
                price.version = version;
                writes.push(RecordWrite::Price(model.clone(), Some(price.clone())));
                self.pricing.insert(model.clone(), price);
            }
            ConfigOp::DeletePrice(model, expect) => {
                let current = self.pricing.get(model).map(|p| p.version);
                check("price", model, current, delete_expect(*expect))?;
                if self.pricing.remove(model) {
                    writes.push(RecordWrite::Price(model.clone(), None));
                }
            }
            ConfigOp::PutAliases(aliases, expect) => {
                let version = check("aliases", "aliases", Some(self.aliases.version), *expect)?;
                self.aliases = ModelAliases {
                    version,
                    ..aliases.clone()
                };
                writes.push(RecordWrite::Aliases(self.aliases.clone()));
            }
            ConfigOp::PutSettings(settings, expect) => {
                let version = check("settings", "settings", Some(self.settings.version), *expect)?;
                self.settings = Settings {
                    version,
                    ..settings.clone()
                };
                writes.push(RecordWrite::Settings(self.settings.clone()));
            }
        }
        Ok(())
    }
}

/// Deleting with `Any` tolerates a missing record (idempotent imports); `Absent` makes no sense.
fn delete_expect(expect: Expect) -> Expect {
    match expect {
        Expect::Absent => Expect::Exists,
        other => other,
    }
}

/// One change as an engine persists it: the record writes that take the store from revision
/// `base` to `revision`, in one durable transaction.
#[derive(Debug, Clone, Copy)]
pub struct Commit<'a> {
    pub base: u64,
    pub revision: u64,
    pub writes: &'a [RecordWrite],
    /// Cluster mode: the PostgreSQL cluster this copy follows from now on, recorded in the same
    /// transaction (set when a copy is seeded, joins or is resynced; `None` keeps it).
    pub cluster: Option<&'a str>,
}

/// Keys, channels, pricing, aliases, settings and the keyring.
///
/// A store persists; it does not decide. Versions and uniqueness are checked by
/// [`ConfigState::apply_ops`] against the committed state the writer holds, so a commit costs
/// what it changes.
pub trait ConfigStore: Send + Sync {
    /// The whole configuration (at start and on a full resync; never per request or per write).
    fn load(&self) -> Result<ConfigState, StoreError>;
    /// Persist one change in one durable transaction. Refused with
    /// [`StoreError::RevisionMoved`] (and nothing written) when the stored revision is not
    /// `commit.base`.
    fn commit(&self, commit: Commit<'_>) -> Result<(), StoreError>;
    /// The current revision without loading everything.
    fn revision(&self) -> Result<u64, StoreError>;
    /// Cluster mode: the id of the PostgreSQL cluster this store is a copy of (`None`: a
    /// single-node store).
    fn cluster_id(&self) -> Result<Option<String>, StoreError> {
        Ok(None)
    }
    /// A stable id for the instance serving this store (cluster mode names its rows in
    /// PostgreSQL with it); created on first use.
    fn instance_id(&self) -> Result<String, StoreError> {
        Ok(uuid::Uuid::now_v7().to_string())
    }
    fn keyring(&self) -> Result<Option<KeyringRecord>, StoreError>;
    /// Store the keyring of a new data dir; refuses to replace an existing one.
    fn init_keyring(&self, record: &KeyringRecord) -> Result<(), StoreError>;
    /// The I/O fault the store is in, if any (for `/health`); `None` when it works.
    fn fault(&self) -> Option<String> {
        None
    }
    /// Try to leave a fault state (reopen the file); `Ok` when the store works again.
    fn recover(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

/// Run blocking store work off the async runtime; a panic in it is resumed in the caller.
pub async fn blocking<T, F>(work: F) -> T
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    match tokio::task::spawn_blocking(work).await {
        Ok(value) => value,
        Err(err) => std::panic::resume_unwind(err.into_panic()),
    }
}
