//! Wiring: the only place that builds things and connects them.
//!
//! [`DataDir::open`] is the one start-up sequence every command shares (server and offline
//! CLI): file-system guard → instance lock → stores → keyring check. [`Instance`] adds the
//! configuration (snapshot + writer) and is what the offline CLI works on; the server builds
//! [`server::App`] from it (relay state, log writer, config-file poller, supervised tasks).

pub mod probe;
pub mod reload;
pub mod server;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::config::{Configuration, WriteError};
use crate::crypto::{Cipher, CryptoError, MasterSecret};
use crate::fsguard::{self, InstanceLock};
use crate::store::redb_store::RedbStore;
use crate::store::sqlite::{LogDb, OpenOptions};
use crate::store::{ConfigStore, StoreError};

pub const CONFIG_DB_FILE: &str = "relaybox.redb";
pub const LOG_DB_FILE: &str = "logs.sqlite";
pub const SECRET_KEY_FILE: &str = "secret.key";

/// What moving a damaged store file away costs, said in the refusal.
const CONFIG_LOSS: &str =
    "relaybox then starts with an empty configuration (every key, channel and price is gone)";
const LOGS_LOSS: &str = "relaybox then starts with empty request logs (history, usage and budgets start from zero); move logs.sqlite-wal and logs.sqlite-shm away with it";

/// The files of a data dir that must stay private (0600).
const PRIVATE_FILES: [&str; 7] = [
    CONFIG_DB_FILE,
    LOG_DB_FILE,
    "logs.sqlite-wal",
    "logs.sqlite-shm",
    SECRET_KEY_FILE,
    server::CONTROL_FILE,
    fsguard::LOCK_FILE,
];

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
    #[error(
        "this instance's encryption key does not open the cluster's keyring: every instance of a cluster needs the same key. Set RELAYBOX_ENCRYPTION_KEY to the value the other instances use (or copy the first instance's {SECRET_KEY_FILE} into this data dir)"
    )]
    WrongClusterKey,
    #[error(
        "this instance joins a cluster whose secrets are encrypted, but it has no key: set RELAYBOX_ENCRYPTION_KEY to the value the other instances use (or copy the first instance's {SECRET_KEY_FILE} into {})",
        data_dir.display()
    )]
    MissingClusterKey { data_dir: PathBuf },
    #[error(
        "this data dir has a configuration of its own, its secrets sealed with a keyring of its own (not the cluster's): it was used alone or in another cluster. An instance joins a cluster with an empty data dir (its configuration comes from PostgreSQL); or start this one without --postgres-url"
    )]
    OtherKeyring,
    #[error(
        "this data dir's configuration belongs to cluster {local}, but PostgreSQL holds another cluster (its keyring differs). Point --postgres-url at the database of cluster {local}; or, to make this instance join the other cluster, stop it and move relaybox.redb out of the data dir (the configuration then comes from PostgreSQL)"
    )]
    OtherClusterKeyring { local: String },
    #[error("{0}")]
    Join(#[from] crate::cluster::JoinError),
    /// Another instance gave the cluster its keyring first; start again with that one.
    #[error("another instance set up the cluster's keyring at the same moment; start again")]
    KeyringRace(Box<crate::crypto::KeyringRecord>),
    #[error("crypto: {0}")]
    Crypto(CryptoError),
    #[error("{0}")]
    FileSystem(String),
    #[error("{0}")]
    Locked(String),
    #[error(
        "no relaybox data dir at {} ({why}). Point --data-dir or RELAYBOX_DATA_DIR at the folder your relaybox server uses; `relaybox serve` creates a new data dir on its first start",
        path.display()
    )]
    NoDataDir { path: PathBuf, why: &'static str },
    #[error("the configuration cannot be loaded: {0}")]
    Config(#[from] WriteError),
    #[error(
        "{} is damaged or unreadable ({detail}). Stop relaybox and restore {file} from your backup; or, to start without it, move it away (mv {file} {file}.damaged): {consequence}",
        path.display()
    )]
    Damaged {
        file: &'static str,
        path: PathBuf,
        detail: String,
        consequence: &'static str,
    },
    #[error(
        "{} cannot be written ({detail}): make it (and the data dir) writable by the user relaybox runs as, and check that the file system is not mounted read-only",
        path.display()
    )]
    NotWritable { path: PathBuf, detail: String },
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
    /// Cluster mode: the cluster's keyring as PostgreSQL holds it (`None`: single node, a new
    /// cluster, or PostgreSQL unreachable at start). A new data dir takes it instead of making
    /// its own, so every instance opens the same sealed secrets.
    pub cluster_keyring: Option<crate::crypto::KeyringRecord>,
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

/// Whether `path` holds a relaybox data dir (its configuration store exists).
#[must_use]
pub fn is_data_dir(path: &Path) -> bool {
    path.join(CONFIG_DB_FILE).is_file()
}

/// `path` made absolute against the current folder (for messages: where relaybox looked).
#[must_use]
pub fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

impl DataDir {
    /// Open a data dir that must exist already: every command but `serve` (and a real import)
    /// uses this, so a command run from the wrong folder never creates a second, empty data
    /// dir that the running server does not know.
    pub fn open_existing(options: &DataDirOptions, purpose: &str) -> Result<DataDir, StartupError> {
        if !is_data_dir(&options.path) {
            let why = if options.path.exists() {
                "the folder exists but holds no relaybox.redb"
            } else {
                "the folder does not exist"
            };
            return Err(StartupError::NoDataDir {
                path: absolute(&options.path),
                why,
            });
        }
        Self::open(options, purpose)
    }

    /// Open a data dir, creating it (and its stores and keyring) when it is new.
    pub fn open(options: &DataDirOptions, purpose: &str) -> Result<DataDir, StartupError> {
        let path = options.path.clone();
        fsguard::modes::create_private_dir(&path).map_err(|source| StartupError::Io {
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
        let config_path = path.join(CONFIG_DB_FILE);
        let logs_path = path.join(LOG_DB_FILE);
        check_store_files(
            &path,
            &[(&config_path, CONFIG_LOSS), (&logs_path, LOGS_LOSS)],
        )?;
        let config = RedbStore::open(&config_path)
            .map_err(|err| refusal(err, CONFIG_DB_FILE, &config_path, CONFIG_LOSS))?;
        let logs = LogDb::open(
            &logs_path,
            OpenOptions {
                exclusive_locking: verdict.exclusive_locking,
            },
        )
        .map_err(|err| refusal(err, LOG_DB_FILE, &logs_path, LOGS_LOSS))?;
        let cipher = match &options.cluster_keyring {
            Some(cluster) => {
                join_keyring(&config, &path, options.encryption_key.as_deref(), cluster)?
            }
            None => unlock_keyring(&config, &path, options.encryption_key.as_deref())?,
        };
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

/// Before the stores open: refuse a zero-byte store file in a data dir that is not new (an
/// engine would take it for a new, empty store and every key would be gone), create missing
/// store files 0600, and make existing files of the data dir private.
fn check_store_files(dir: &Path, stores: &[(&Path, &'static str)]) -> Result<(), StartupError> {
    let size = |path: &Path| std::fs::metadata(path).ok().map(|m| m.len());
    let established = dir.join(SECRET_KEY_FILE).exists()
        || stores
            .iter()
            .any(|(path, _)| size(path).is_some_and(|len| len > 0));
    for (path, consequence) in stores {
        if established && size(path) == Some(0) {
            let file = if path.ends_with(CONFIG_DB_FILE) {
                CONFIG_DB_FILE
            } else {
                LOG_DB_FILE
            };
            return Err(StartupError::Damaged {
                file,
                path: path.to_path_buf(),
                detail: "the file is empty (0 bytes) in a data dir that was in use".into(),
                consequence,
            });
        }
    }
    for name in PRIVATE_FILES {
        let file = dir.join(name);
        match fsguard::modes::tighten(&file) {
            Ok(Some(mode)) => tracing::warn!(
                path = %file.display(),
                "{name} was readable by other users (mode {mode:o}); made it private (0600)"
            ),
            Ok(None) => {}
            Err(err) => {
                tracing::warn!(path = %file.display(), error = %err, "cannot check the file's mode");
            }
        }
    }
    for (path, _) in stores {
        fsguard::modes::create_private_file(path).map_err(|source| {
            match StoreError::from_io("creating the store file", &source) {
                StoreError::DiskFull(_) => {
                    StartupError::Store(StoreError::from_io("creating the store file", &source))
                }
                _ => StartupError::NotWritable {
                    path: path.to_path_buf(),
                    detail: source.to_string(),
                },
            }
        })?;
    }
    Ok(())
}

/// A store that did not open: a full disk, a lock or a newer schema say so themselves; an
/// I/O fault means the file cannot be written; anything else means it is damaged.
fn refusal(
    err: StoreError,
    file: &'static str,
    path: &Path,
    consequence: &'static str,
) -> StartupError {
    match err {
        StoreError::Locked(_) | StoreError::SchemaTooNew { .. } | StoreError::DiskFull(_) => {
            StartupError::Store(err)
        }
        StoreError::Io(detail) => StartupError::NotWritable {
            path: path.to_path_buf(),
            detail,
        },
        other => StartupError::Damaged {
            file,
            path: path.to_path_buf(),
            detail: other.to_string(),
            consequence,
        },
    }
}

/// The master secret the operator gave: `RELAYBOX_ENCRYPTION_KEY`, else the data dir's
/// `secret.key`; `None` when there is neither.
fn given_master(
    data_dir: &Path,
    env_key: Option<&str>,
) -> Result<Option<MasterSecret>, StartupError> {
    if let Some(text) = env_key {
        return Ok(Some(MasterSecret::from_text(text)));
    }
    let key_file = data_dir.join(SECRET_KEY_FILE);
    if !key_file.exists() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&key_file).map_err(|source| StartupError::Io {
        what: "cannot read",
        path: key_file.clone(),
        source,
    })?;
    Ok(Some(MasterSecret::from_text(&text)))
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
    let master = match given_master(data_dir, env_key)? {
        Some(master) => master,
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

/// Cluster mode: open the cluster's keyring with this instance's key, and make it this data
/// dir's keyring (a data dir with records of its own keeps its keyring only if it is the same).
fn join_keyring(
    store: &RedbStore,
    data_dir: &Path,
    env_key: Option<&str>,
    cluster: &crate::crypto::KeyringRecord,
) -> Result<Cipher, StartupError> {
    let Some(master) = given_master(data_dir, env_key)? else {
        return Err(StartupError::MissingClusterKey {
            data_dir: data_dir.to_path_buf(),
        });
    };
    let cipher = Cipher::open_keyring(&master, cluster).map_err(|e| match e {
        CryptoError::WrongKey => StartupError::WrongClusterKey,
        other => StartupError::Crypto(other),
    })?;
    match store.keyring()? {
        Some(own) if own == *cluster => {}
        None => store.init_keyring(cluster)?,
        Some(_) => {
            if store.load()?.has_records() {
                return Err(match store.cluster_id()? {
                    Some(local) => StartupError::OtherClusterKeyring { local },
                    None => StartupError::OtherKeyring,
                });
            }
            store.adopt_keyring(cluster)?;
        }
    }
    Ok(cipher)
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

/// An opened data dir with its configuration loaded: what the offline CLI works on, and what
/// the server is built from.
pub struct Instance {
    pub data: DataDir,
    pub config: Arc<Configuration>,
    /// Cluster mode: the replicated configuration and the loops that talk to PostgreSQL.
    pub cluster: Option<Arc<crate::cluster::Cluster>>,
}

impl std::fmt::Debug for Instance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Instance")
            .field("data", &self.data)
            .finish_non_exhaustive()
    }
}

impl Instance {
    /// Load the configuration (the one full read of the store) and build the first snapshot.
    pub fn load(data: DataDir) -> Result<Instance, StartupError> {
        let config =
            Configuration::local(Arc::clone(&data.stores.config), Arc::clone(&data.cipher))?;
        Ok(Instance {
            data,
            config: Arc::new(config),
            cluster: None,
        })
    }

    /// Cluster mode (blocking): join the cluster behind `pg` — seed it from this data dir, or
    /// bring this data dir's copy up to date before serving — and change the configuration
    /// through PostgreSQL from now on.
    pub fn join(
        data: DataDir,
        pg: Arc<crate::store::postgres::PgStore>,
    ) -> Result<Instance, StartupError> {
        use crate::cluster::{Cluster, Joined, Replica};
        let instance_id = data.stores.config.instance_id()?;
        let target = pg.target().clone();
        // The first instance gives the cluster its keyring — before anything sealed with it
        // can reach PostgreSQL. Two first instances racing: the loser starts over with the
        // winner's keyring (`KeyringRace`).
        if let Some(own) = data.stores.config.keyring()? {
            match pg.block_on(pg.init_keyring_async(&own)) {
                Ok(()) | Err(StoreError::Unreachable(_)) => {}
                Err(StoreError::Conflict(_)) => {
                    if let Some(cluster) = pg.block_on(pg.keyring_async())?
                        && cluster != own
                    {
                        return Err(StartupError::KeyringRace(Box::new(cluster)));
                    }
                }
                Err(err) => return Err(err.into()),
            }
        }
        let (replica, joined) = Replica::join(
            Arc::clone(&pg),
            Arc::clone(&data.stores.config),
            Arc::clone(&data.cipher),
        )?;
        match &joined {
            Joined::Seeded { revision, records } => tracing::info!(
                revision,
                records,
                "cluster mode: PostgreSQL was empty; seeded it with this data dir's configuration"
            ),
            Joined::Pulled { revision } => tracing::info!(
                revision,
                "cluster mode: the configuration is PostgreSQL's (revision {revision})"
            ),
            Joined::Offline { revision, error } => tracing::warn!(
                revision,
                %error,
                "cluster mode: PostgreSQL is unreachable; serving this data dir's copy of the configuration (revision {revision}) until it answers; admin changes are refused meanwhile"
            ),
        }
        let replica = Arc::new(replica);
        let config = Configuration::replicated(
            Arc::clone(&replica) as Arc<dyn crate::config::ConfigWriter>,
            replica.snapshots().clone(),
            Arc::clone(&data.cipher),
            Arc::clone(replica.freshness()),
        );
        Ok(Instance {
            data,
            config: Arc::new(config),
            cluster: Some(Arc::new(Cluster::new(replica, target, instance_id))),
        })
    }

    #[must_use]
    pub fn stores(&self) -> &Stores {
        &self.data.stores
    }
}
