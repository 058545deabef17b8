//! `relaybox.redb`: the config store. One `Immediate` write transaction per change; values are
//! serde_json (evolvable with `#[serde(default)]`), the file carries a schema version.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, RwLock, RwLockReadGuard};

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Commit, ConfigState, ConfigStore, RecordWrite, StoreError, Table};
use crate::crypto::KeyringRecord;
use crate::domain::Channel;
use crate::domain::channel::Credentials;

const KEYS: TableDefinition<&str, &[u8]> = TableDefinition::new("keys");
const KEY_HASHES: TableDefinition<&str, &str> = TableDefinition::new("key_hashes");
const CHANNELS: TableDefinition<&str, &[u8]> = TableDefinition::new("channels");
/// A channel's upstream secrets, by channel id (schema 2; schema 1 kept them in the channel).
const CREDENTIALS: TableDefinition<&str, &[u8]> = TableDefinition::new("credentials");
const PRICING: TableDefinition<&str, &[u8]> = TableDefinition::new("pricing");
/// Single documents: `aliases`, `settings`.
const DOCUMENTS: TableDefinition<&str, &[u8]> = TableDefinition::new("documents");
const KEYRING: TableDefinition<&str, &[u8]> = TableDefinition::new("keyring");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// Cluster mode: `id` = the PostgreSQL cluster this file is a copy of (absent: single node).
const CLUSTER: TableDefinition<&str, &str> = TableDefinition::new("cluster");
const CLUSTER_ID: &str = "id";
const CLUSTER_INSTANCE: &str = "instance";

const META_SCHEMA: &str = "schema_version";
const META_REVISION: &str = "revision";
const KEYRING_ACTIVE: &str = "active";
/// Written by the recovery probe after an I/O fault (unix seconds); nothing reads it.
const META_WRITE_PROBE: &str = "write_probe";

/// The schema this binary writes. Bump it with an `upgrade_from_vN` step below.
pub const SCHEMA_VERSION: u64 = 2;

const PREVIOUS_IO: &str = "relaybox.redb: a previous I/O error; the store is being reopened";

impl From<redb::Error> for StoreError {
    fn from(err: redb::Error) -> Self {
        match err {
            redb::Error::Io(io) => StoreError::from_io("relaybox.redb", &io),
            // redb refuses every use after an I/O error until it is reopened.
            redb::Error::PreviousIo => StoreError::Io(PREVIOUS_IO.into()),
            other => StoreError::Backend(format!("relaybox.redb: {other}")),
        }
    }
}

macro_rules! backend_from {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(err: $t) -> Self {
                StoreError::from(redb::Error::from(err))
            }
        }
    )*};
}
backend_from!(
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    redb::DatabaseError
);

/// `relaybox.redb`. redb refuses any further use of a `Database` after an I/O error ("close and
/// re-open"), so the handle sits behind a lock: an operation that meets an I/O fault records it,
/// and the next operation (or [`ConfigStore::recover`], which `/health` calls) closes the file
/// and opens it again. Operations hold the read side; only the reopen takes the write side, so
/// no transaction is live while the file is closed.
pub struct RedbStore {
    path: PathBuf,
    db: RwLock<Option<Database>>,
    /// The I/O fault met last; cleared by the next successful write.
    fault: Mutex<Option<StoreError>>,
    /// An I/O fault left the handle unusable: the next operation reopens the file.
    needs_reopen: AtomicBool,
}

/// One operation's hold on the open database.
struct Open<'a>(RwLockReadGuard<'a, Option<Database>>);

impl std::ops::Deref for Open<'_> {
    type Target = Database;
    fn deref(&self) -> &Database {
        // `Open` is only built over `Some` (see `RedbStore::db`).
        self.0.as_ref().unwrap_or_else(|| unreachable!())
    }
}

impl std::fmt::Debug for RedbStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RedbStore")
    }
}

impl RedbStore {
    /// Open (or create) the store, verify its integrity and bring its schema up to date.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let db = open_database(path)?;
        let store = Self {
            path: path.to_path_buf(),
            db: RwLock::new(Some(db)),
            fault: Mutex::new(None),
            needs_reopen: AtomicBool::new(false),
        };
        store.upgrade()?;
        Ok(store)
    }

    /// The open database, reopened first when an I/O fault closed it.
    fn db(&self) -> Result<Open<'_>, StoreError> {
        {
            let guard = self
                .db
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if guard.is_some() && !self.needs_reopen.load(Ordering::Acquire) {
                return Ok(Open(guard));
            }
        }
        self.reopen()?;
        let guard = self
            .db
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match &*guard {
            Some(_) => Ok(Open(guard)),
            None => Err(StoreError::Io("relaybox.redb is closed".into())),
        }
    }

    fn current_fault(&self) -> Option<String> {
        self.fault
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_ref()
            .map(ToString::to_string)
    }

    /// Remember an I/O fault so the next operation reopens the file; other errors pass as they
    /// are. redb's "previous I/O error" is answered with the fault that caused it (a full disk
    /// stays a full disk).
    fn noting<T>(&self, result: Result<T, StoreError>) -> Result<T, StoreError> {
        let Err(err) = &result else { return result };
        if !err.is_io() {
            return result;
        }
        let mut fault = self
            .fault
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if matches!(err, StoreError::Io(m) if m == PREVIOUS_IO)
            && let Some(first) = &*fault
        {
            return Err(clone_io(first));
        }
        tracing::warn!(error = %err, "relaybox.redb: I/O fault; the file will be reopened");
        *fault = Some(clone_io(err));
        self.needs_reopen.store(true, Ordering::Release);
        result
    }

    /// A write went through: the fault episode is over.
    fn written<T>(&self, result: Result<T, StoreError>) -> Result<T, StoreError> {
        let result = self.noting(result);
        if result.is_ok() {
            let mut fault = self
                .fault
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if fault.take().is_some() {
                tracing::info!("relaybox.redb is written again");
            }
        }
        result
    }

    /// Close the database and open it again (redb's way out of an I/O error). On failure the
    /// store stays closed and the next operation tries again.
    fn reopen(&self) -> Result<(), StoreError> {
        let mut guard = self
            .db
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if guard.is_some() && !self.needs_reopen.load(Ordering::Acquire) {
            return Ok(()); // another caller reopened it meanwhile
        }
        // Close first: redb allows one `Database` per file.
        *guard = None;
        match open_database(&self.path) {
            Ok(db) => {
                *guard = Some(db);
                self.needs_reopen.store(false, Ordering::Release);
                tracing::info!("relaybox.redb reopened after an I/O fault");
                Ok(())
            }
            Err(err) => {
                let err = if err.is_io() {
                    err
                } else {
                    StoreError::Io(format!("relaybox.redb could not be reopened: {err}"))
                };
                *self
                    .fault
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(clone_io(&err));
                Err(err)
            }
        }
    }

    fn upgrade(&self) -> Result<(), StoreError> {
        let db = self.db()?;
        let txn = db.begin_write()?;
        {
            let mut meta = txn.open_table(META)?;
            let found = meta.get(META_SCHEMA)?.map(|v| v.value());
            match found {
                None => {
                    meta.insert(META_SCHEMA, SCHEMA_VERSION)?;
                    meta.insert(META_REVISION, 0)?;
                }
                Some(found) if found > SCHEMA_VERSION => {
                    return Err(StoreError::SchemaTooNew {
                        store: "relaybox.redb",
                        found,
                        supported: SCHEMA_VERSION,
                    });
                }
                // Older schemas are upgraded here one step at a time, in this transaction.
                Some(found) => {
                    if found < 2 {
                        upgrade_from_v1(&txn)?;
                    }
                    meta.insert(META_SCHEMA, SCHEMA_VERSION)?;
                }
            }
            // Create every table so readers never meet a missing one.
            txn.open_table(KEYS)?;
            txn.open_table(KEY_HASHES)?;
            txn.open_table(CHANNELS)?;
            txn.open_table(CREDENTIALS)?;
            txn.open_table(PRICING)?;
            txn.open_table(DOCUMENTS)?;
            txn.open_table(KEYRING)?;
        }
        txn.commit()?;
        Ok(())
    }

    /// The schema version recorded in the file.
    pub fn schema_version(&self) -> Result<u64, StoreError> {
        let txn = self.db()?.begin_read()?;
        let meta = txn.open_table(META)?;
        Ok(meta.get(META_SCHEMA)?.map_or(0, |v| v.value()))
    }

    /// Test and repair support: set the recorded schema version.
    #[doc(hidden)]
    pub fn force_schema_version(&self, version: u64) -> Result<(), StoreError> {
        let txn = self.db()?.begin_write()?;
        txn.open_table(META)?.insert(META_SCHEMA, version)?;
        txn.commit()?;
        Ok(())
    }
}

fn open_database(path: &Path) -> Result<Database, StoreError> {
    let mut db = Database::builder()
        .set_cache_size(32 * 1024 * 1024)
        .create(path)
        .map_err(|err| match err {
            redb::DatabaseError::DatabaseAlreadyOpen => {
                StoreError::Locked(format!("{} is open elsewhere", path.display()))
            }
            other => StoreError::from(other),
        })?;
    if !db.check_integrity()? {
        tracing::warn!(path = %path.display(), "relaybox.redb was repaired at open");
    }
    Ok(db)
}

/// A copy of an I/O fault (`StoreError` holds no source, only text).
fn clone_io(err: &StoreError) -> StoreError {
    match err {
        StoreError::DiskFull(m) => StoreError::DiskFull(m.clone()),
        other => StoreError::Io(match other {
            StoreError::Io(m) => m.clone(),
            other => other.to_string(),
        }),
    }
}

/// Schema 1 → 2: a channel's `apiKeys` and `oauthTokens` move out of its record into a
/// credentials record of their own (version 1).
fn upgrade_from_v1(txn: &redb::WriteTransaction) -> Result<(), StoreError> {
    let mut channels = txn.open_table(CHANNELS)?;
    let mut credentials = txn.open_table(CREDENTIALS)?;
    let mut moved = Vec::new();
    for entry in channels.range::<&str>(..)? {
        let (id, bytes) = entry?;
        let mut record: serde_json::Map<String, serde_json::Value> =
            decode("channels", id.value(), bytes.value())?;
        let api_keys = record.remove("apiKeys");
        let oauth_tokens = record.remove("oauthTokens");
        if api_keys.is_none() && oauth_tokens.is_none() {
            continue;
        }
        let mut secrets = serde_json::json!({ "version": 1 });
        if let Some(keys) = api_keys {
            secrets["apiKeys"] = keys;
        }
        if let Some(tokens) = oauth_tokens {
            secrets["oauthTokens"] = tokens;
        }
        moved.push((id.value().to_string(), encode(&record)?, encode(&secrets)?));
    }
    for (id, channel, secrets) in &moved {
        channels.insert(id.as_str(), channel.as_slice())?;
        credentials.insert(id.as_str(), secrets.as_slice())?;
    }
    if !moved.is_empty() {
        tracing::info!(
            channels = moved.len(),
            "relaybox.redb: channel secrets moved into their own records (schema 2)"
        );
    }
    Ok(())
}

fn decode<T: DeserializeOwned>(table: &str, id: &str, bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| {
        StoreError::Backend(format!(
            "relaybox.redb: record {table}/{id} is unreadable: {e}"
        ))
    })
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(value).map_err(|e| StoreError::Backend(format!("encoding a record: {e}")))
}

fn read_map<T, Tbl>(name: &str, table: &Tbl) -> Result<Table<T>, StoreError>
where
    T: DeserializeOwned,
    Tbl: ReadableTable<&'static str, &'static [u8]>,
{
    let mut out = Table::default();
    for entry in table.range::<&str>(..)? {
        let (id, bytes) = entry?;
        out.insert(
            id.value().to_string(),
            decode(name, id.value(), bytes.value())?,
        );
    }
    Ok(out)
}

/// Read the whole state through any transaction kind.
macro_rules! read_state {
    ($txn:expr) => {{
        let txn = $txn;
        let keys = read_map("keys", &txn.open_table(KEYS)?)?;
        let mut key_hashes = Table::default();
        for entry in txn.open_table(KEY_HASHES)?.range::<&str>(..)? {
            let (hash, id) = entry?;
            key_hashes.insert(hash.value().to_string(), id.value().to_string());
        }
        let mut channels: Table<Channel> = read_map("channels", &txn.open_table(CHANNELS)?)?;
        for entry in txn.open_table(CREDENTIALS)?.range::<&str>(..)? {
            let (id, bytes) = entry?;
            let credentials: Credentials = decode("credentials", id.value(), bytes.value())?;
            if let Some(channel) = channels.get(id.value()) {
                let channel = Channel {
                    credentials,
                    ..channel.clone()
                };
                channels.insert(id.value().to_string(), channel);
            }
        }
        let pricing = read_map("pricing", &txn.open_table(PRICING)?)?;
        let documents = txn.open_table(DOCUMENTS)?;
        let aliases = match documents.get("aliases")? {
            Some(bytes) => decode("documents", "aliases", bytes.value())?,
            None => Default::default(),
        };
        let settings = match documents.get("settings")? {
            Some(bytes) => decode("documents", "settings", bytes.value())?,
            None => Default::default(),
        };
        let revision = txn
            .open_table(META)?
            .get(META_REVISION)?
            .map_or(0, |v| v.value());
        ConfigState {
            keys,
            key_hashes,
            channels,
            pricing,
            aliases,
            settings,
            revision,
        }
    }};
}

impl ConfigStore for RedbStore {
    fn load(&self) -> Result<ConfigState, StoreError> {
        self.noting(self.load_once())
    }

    fn commit(&self, commit: Commit<'_>) -> Result<(), StoreError> {
        self.written(self.commit_once(commit))
    }

    fn revision(&self) -> Result<u64, StoreError> {
        self.noting(self.revision_once())
    }

    fn keyring(&self) -> Result<Option<KeyringRecord>, StoreError> {
        self.noting(self.keyring_once())
    }

    fn cluster_id(&self) -> Result<Option<String>, StoreError> {
        self.noting(self.cluster_id_once())
    }

    fn instance_id(&self) -> Result<String, StoreError> {
        self.written(self.instance_id_once())
    }

    fn init_keyring(&self, record: &KeyringRecord) -> Result<(), StoreError> {
        self.written(self.init_keyring_once(record))
    }

    fn fault(&self) -> Option<String> {
        self.current_fault()
    }

    /// Reopen if needed and try a one-value write (the probe's timestamp in `meta`): only a
    /// write shows the disk takes writes again.
    fn recover(&self) -> Result<(), StoreError> {
        if self.current_fault().is_none() {
            return Ok(());
        }
        self.written(self.probe_once())
    }
}

impl RedbStore {
    fn load_once(&self) -> Result<ConfigState, StoreError> {
        let txn = self.db()?.begin_read()?;
        Ok(read_state!(&txn))
    }

    fn commit_once(&self, commit: Commit<'_>) -> Result<(), StoreError> {
        let db = self.db()?;
        let txn = db.begin_write()?;
        {
            let found = txn
                .open_table(META)?
                .get(META_REVISION)?
                .map_or(0, |v| v.value());
            if found != commit.base {
                return Err(StoreError::RevisionMoved {
                    expected: commit.base,
                    found,
                });
            }
        }
        {
            let mut keys = txn.open_table(KEYS)?;
            let mut hashes = txn.open_table(KEY_HASHES)?;
            let mut channels = txn.open_table(CHANNELS)?;
            let mut credentials = txn.open_table(CREDENTIALS)?;
            let mut pricing = txn.open_table(PRICING)?;
            let mut documents = txn.open_table(DOCUMENTS)?;
            for write in commit.writes {
                match write {
                    RecordWrite::Key(id, Some(key)) => {
                        keys.insert(id.as_str(), encode(key)?.as_slice())?;
                    }
                    RecordWrite::Key(id, None) => {
                        keys.remove(id.as_str())?;
                    }
                    RecordWrite::KeyHash(hash, Some(id)) => {
                        hashes.insert(hash.as_str(), id.as_str())?;
                    }
                    RecordWrite::KeyHash(hash, None) => {
                        hashes.remove(hash.as_str())?;
                    }
                    RecordWrite::Channel(id, Some(channel)) => {
                        channels.insert(id.as_str(), encode(channel)?.as_slice())?;
                    }
                    RecordWrite::Channel(id, None) => {
                        channels.remove(id.as_str())?;
                    }
                    RecordWrite::Credentials(id, Some(secrets)) => {
                        credentials.insert(id.as_str(), encode(secrets)?.as_slice())?;
                    }
                    RecordWrite::Credentials(id, None) => {
                        credentials.remove(id.as_str())?;
                    }
                    RecordWrite::Price(model, Some(price)) => {
                        pricing.insert(model.as_str(), encode(price)?.as_slice())?;
                    }
                    RecordWrite::Price(model, None) => {
                        pricing.remove(model.as_str())?;
                    }
                    RecordWrite::Aliases(aliases) => {
                        documents.insert("aliases", encode(aliases)?.as_slice())?;
                    }
                    RecordWrite::Settings(settings) => {
                        documents.insert("settings", encode(settings)?.as_slice())?;
                    }
                }
            }
            txn.open_table(META)?
                .insert(META_REVISION, commit.revision)?;
            if let Some(cluster) = commit.cluster {
                txn.open_table(CLUSTER)?.insert(CLUSTER_ID, cluster)?;
            }
        }
        txn.commit()?;
        Ok(())
    }

    fn cluster_id_once(&self) -> Result<Option<String>, StoreError> {
        let txn = self.db()?.begin_read()?;
        let table = match txn.open_table(CLUSTER) {
            Ok(table) => table,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(err) => return Err(err.into()),
        };
        Ok(table.get(CLUSTER_ID)?.map(|v| v.value().to_string()))
    }

    fn instance_id_once(&self) -> Result<String, StoreError> {
        let db = self.db()?;
        let txn = db.begin_write()?;
        let id = {
            let mut table = txn.open_table(CLUSTER)?;
            let existing = table.get(CLUSTER_INSTANCE)?.map(|v| v.value().to_string());
            match existing {
                Some(id) => id,
                None => {
                    let id = uuid::Uuid::now_v7().to_string();
                    table.insert(CLUSTER_INSTANCE, id.as_str())?;
                    id
                }
            }
        };
        txn.commit()?;
        Ok(id)
    }

    fn probe_once(&self) -> Result<(), StoreError> {
        let db = self.db()?;
        let txn = db.begin_write()?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        txn.open_table(META)?.insert(META_WRITE_PROBE, now)?;
        txn.commit()?;
        Ok(())
    }

    fn revision_once(&self) -> Result<u64, StoreError> {
        let txn = self.db()?.begin_read()?;
        Ok(txn
            .open_table(META)?
            .get(META_REVISION)?
            .map_or(0, |v| v.value()))
    }

    fn keyring_once(&self) -> Result<Option<KeyringRecord>, StoreError> {
        let txn = self.db()?.begin_read()?;
        let table = txn.open_table(KEYRING)?;
        match table.get(KEYRING_ACTIVE)? {
            Some(bytes) => Ok(Some(decode("keyring", KEYRING_ACTIVE, bytes.value())?)),
            None => Ok(None),
        }
    }

    /// Cluster mode: take the cluster's keyring in place of this data dir's own. Only for a
    /// copy with no records yet (nothing is sealed with the keyring it replaces).
    pub fn adopt_keyring(&self, record: &KeyringRecord) -> Result<(), StoreError> {
        self.written((|| {
            let db = self.db()?;
            let txn = db.begin_write()?;
            txn.open_table(KEYRING)?
                .insert(KEYRING_ACTIVE, encode(record)?.as_slice())?;
            txn.commit()?;
            Ok(())
        })())
    }

    fn init_keyring_once(&self, record: &KeyringRecord) -> Result<(), StoreError> {
        let db = self.db()?;
        let txn = db.begin_write()?;
        {
            let mut table = txn.open_table(KEYRING)?;
            if table.get(KEYRING_ACTIVE)?.is_some() {
                return Err(StoreError::Conflict(
                    "this data dir already has a keyring".into(),
                ));
            }
            table.insert(KEYRING_ACTIVE, encode(record)?.as_slice())?;
        }
        txn.commit()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail loudly")]

    use super::*;

    #[test]
    fn schema_1_channel_secrets_move_into_credentials_records() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("relaybox.redb");
        {
            // A schema-1 file: the secrets inside the channel record.
            let store = RedbStore::open(&path).unwrap();
            let db = store.db().unwrap();
            let txn = db.begin_write().unwrap();
            {
                let record = serde_json::json!({
                    "id": "c1", "pool": "messages", "name": "main", "serviceType": "claude",
                    "baseUrl": "https://upstream.example", "version": 3,
                    "apiKeys": ["enc:v1:0011aabb:a2V5"], "oauthTokens": "enc:v1:0011aabb:dG9r",
                });
                let plain = serde_json::json!({
                    "id": "c2", "pool": "chat", "name": "no-secrets", "serviceType": "openai",
                    "baseUrl": "https://upstream.example", "version": 1,
                });
                let mut channels = txn.open_table(CHANNELS).unwrap();
                channels
                    .insert("c1", encode(&record).unwrap().as_slice())
                    .unwrap();
                channels
                    .insert("c2", encode(&plain).unwrap().as_slice())
                    .unwrap();
                txn.open_table(META)
                    .unwrap()
                    .insert(META_SCHEMA, 1)
                    .unwrap();
            }
            txn.commit().unwrap();
        }
        let store = RedbStore::open(&path).unwrap();
        assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
        let state = store.load().unwrap();
        let c1 = &state.channels["c1"];
        assert_eq!(c1.version, 3, "the channel keeps its version");
        assert_eq!(c1.credentials.version, 1);
        assert_eq!(c1.credentials.api_keys[0].as_str(), "enc:v1:0011aabb:a2V5");
        assert_eq!(
            c1.credentials.oauth_tokens.as_ref().unwrap().as_str(),
            "enc:v1:0011aabb:dG9r"
        );
        assert!(
            c1.extra.is_empty(),
            "no secret left in the channel: {:?}",
            c1.extra
        );
        assert!(state.channels["c2"].credentials.is_empty());
        // The channel record itself no longer carries them.
        let db = store.db().unwrap();
        let txn = db.begin_read().unwrap();
        let raw = txn.open_table(CHANNELS).unwrap();
        let bytes = raw.get("c1").unwrap().unwrap();
        let text = String::from_utf8_lossy(bytes.value()).to_string();
        assert!(
            !text.contains("apiKeys") && !text.contains("enc:v1"),
            "{text}"
        );
    }
}
