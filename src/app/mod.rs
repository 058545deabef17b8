//! Wiring: open a data dir, hold the live snapshot, apply changes.
//!
//! [`DataDir::open`] is the one start-up sequence every command shares (server and offline
//! CLI): file-system guard → instance lock → stores → keyring check. [`Core`] adds the live
//! snapshot and is what services work on; the server wraps it in [`server::Server`].

pub mod live;
pub mod reload;
pub mod server;
pub mod services;
pub mod tasks;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::crypto::{Cipher, CryptoError, MasterSecret};
use crate::fsguard::{self, InstanceLock};
use crate::store::redb_store::RedbStore;
use crate::store::sqlite::{LogDb, OpenOptions};
use crate::store::{ConfigOp, ConfigStore, StoreError, blocking};
pub use live::Live;

pub const CONFIG_DB_FILE: &str = "relaybox.redb";
pub const LOG_DB_FILE: &str = "logs.sqlite";
pub const SECRET_KEY_FILE: &str = "secret.key";

/// Fatal problems while opening a data dir or starting; each message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error(
        "RELAYBOX_ENCRYPTION_KEY does not match this data dir: its secrets were encrypted with another key. Start with the original key (or the original {SECRET_KEY_FILE}), or point --data-dir at another folder"
    )]
    WrongEncryptionKey,
    #[error(
        "this data dir has encrypted secrets but no key: set RELAYBOX_ENCRYPTION_KEY, or restore {path} from your backup"
    )]
    MissingEncryptionKey { path: PathBuf },
    #[error("crypto: {0}")]
    Crypto(CryptoError),
    #[error("{0}")]
    FileSystem(String),
    #[error("{0}")]
    Locked(String),
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

/// How to open a data dir.
#[derive(Debug, Clone, Default)]
pub struct DataDirOptions {
    pub path: PathBuf,
    /// `RELAYBOX_ENCRYPTION_KEY`; when `None`, `secret.key` in the data dir is used (created on
    /// first start).
    pub encryption_key: Option<String>,
    pub allow_network_fs: bool,
}

/// The two stores of a data dir.
#[derive(Clone)]
pub struct Stores {
    pub config: Arc<dyn ConfigStore>,
    pub logs: LogDb,
}

/// An opened data dir: guarded, locked, stores open, keyring unlocked.
pub struct DataDir {
    pub path: PathBuf,
    pub stores: Stores,
    pub cipher: Arc<Cipher>,
    pub exclusive_locking: bool,
    lock: InstanceLock,
}

impl std::fmt::Debug for DataDir {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataDir")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl DataDir {
    pub fn open(options: &DataDirOptions, purpose: &str) -> Result<DataDir, StartupError> {
        let path = options.path.clone();
        std::fs::create_dir_all(&path).map_err(|source| StartupError::Io {
            what: "cannot create the data dir",
            path: path.clone(),
            source,
        })?;
        let verdict = fsguard::check_data_dir(&path, options.allow_network_fs)
            .map_err(|e| StartupError::FileSystem(e.to_string()))?;
        if let Some(warning) = &verdict.warning {
            tracing::warn!("{warning}");
        }
        let lock = InstanceLock::acquire(&path, purpose)
            .map_err(|e| StartupError::Locked(e.to_string()))?;
        let config = RedbStore::open(&path.join(CONFIG_DB_FILE))?;
        let logs = LogDb::open(
            &path.join(LOG_DB_FILE),
            OpenOptions {
                exclusive_locking: verdict.exclusive_locking,
            },
        )?;
        let cipher = unlock_keyring(&config, &path, options.encryption_key.as_deref())?;
        Ok(DataDir {
            path,
            stores: Stores {
                config: Arc::new(config),
                logs,
            },
            cipher: Arc::new(cipher),
            exclusive_locking: verdict.exclusive_locking,
            lock,
        })
    }

    /// The instance lock held on this data dir.
    #[must_use]
    pub fn lock(&self) -> &InstanceLock {
        &self.lock
    }
}

/// Open the keyring, or create it on a new data dir (with a generated `secret.key` when no
/// key was given).
fn unlock_keyring(
    store: &RedbStore,
    data_dir: &Path,
    env_key: Option<&str>,
) -> Result<Cipher, StartupError> {
    let key_file = data_dir.join(SECRET_KEY_FILE);
    let existing = store.keyring()?;
    let master = match env_key {
        Some(text) => MasterSecret::from_text(text),
        None if key_file.exists() => {
            let text = std::fs::read_to_string(&key_file).map_err(|source| StartupError::Io {
                what: "cannot read",
                path: key_file.clone(),
                source,
            })?;
            MasterSecret::from_text(&text)
        }
        None if existing.is_some() => {
            return Err(StartupError::MissingEncryptionKey { path: key_file });
        }
        None => {
            let text = MasterSecret::generate_text().map_err(StartupError::Crypto)?;
            write_private_file(&key_file, format!("{}\n", text.as_str()).as_bytes()).map_err(
                |source| StartupError::Io {
                    what: "cannot write",
                    path: key_file.clone(),
                    source,
                },
            )?;
            tracing::info!(path = %key_file.display(), "generated a new master secret; back it up with the data dir");
            MasterSecret::from_text(&text)
        }
    };
    match existing {
        Some(record) => Cipher::open_keyring(&master, &record).map_err(|e| match e {
            CryptoError::WrongKey => StartupError::WrongEncryptionKey,
            other => StartupError::Crypto(other),
        }),
        None => {
            if master.is_passphrase() {
                tracing::warn!(
                    "RELAYBOX_ENCRYPTION_KEY is a passphrase; a random key (relaybox keygen) is stronger"
                );
            }
            let (cipher, record) = Cipher::create(&master).map_err(StartupError::Crypto)?;
            store.init_keyring(&record)?;
            Ok(cipher)
        }
    }
}

/// Write a file readable only by its owner (0600), atomically (temp file + rename).
pub fn write_private_file(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    file.write_all(contents)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// A data dir plus its live snapshot: what services operate on.
pub struct Core {
    pub data: DataDir,
    live: ArcSwap<Live>,
}

impl std::fmt::Debug for Core {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core")
            .field("data", &self.data)
            .finish_non_exhaustive()
    }
}

impl Core {
    pub fn new(data: DataDir) -> Result<Core, StartupError> {
        let state = data.stores.config.load()?;
        let live = Live::prepare(state, &data.cipher).map_err(StartupError::Crypto)?;
        Ok(Core {
            data,
            live: ArcSwap::from_pointee(live),
        })
    }

    /// The current snapshot; take it once per request and use it throughout.
    #[must_use]
    pub fn live(&self) -> Arc<Live> {
        self.live.load_full()
    }

    #[must_use]
    pub fn cipher(&self) -> &Cipher {
        &self.data.cipher
    }

    #[must_use]
    pub fn stores(&self) -> &Stores {
        &self.data.stores
    }

    /// Apply a change in one transaction, then rebuild and swap the snapshot.
    pub fn apply(&self, ops: &[ConfigOp]) -> Result<u64, services::ServiceError> {
        let revision = self.data.stores.config.apply(ops)?;
        self.refresh()?;
        Ok(revision)
    }

    /// Rebuild the snapshot from the store (after a change by this or another process).
    pub fn refresh(&self) -> Result<(), services::ServiceError> {
        let state = self.data.stores.config.load()?;
        if state.revision == self.live.load().revision && state.revision != 0 {
            return Ok(());
        }
        let live = Live::prepare(state, &self.data.cipher)?;
        self.live.store(Arc::new(live));
        Ok(())
    }

    /// [`Core::apply`] off the async runtime.
    pub async fn apply_async(
        self: &Arc<Self>,
        ops: Vec<ConfigOp>,
    ) -> Result<u64, services::ServiceError> {
        let core = Arc::clone(self);
        blocking(move || core.apply(&ops)).await
    }
}
