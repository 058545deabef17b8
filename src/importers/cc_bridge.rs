//! Import from cc-bridge (format notes: `formats/cc-bridge.md`).
//!
//! Two users:
//! - the hot-reload poller and the start-up auto-import call the `plan_*` functions on the
//!   cc-bridge-format JSON files of the data dir (origin [`ChannelOrigin::ConfigFile`]) and apply
//!   the ops themselves;
//! - `relaybox import cc-bridge DIR` calls [`import_dir`] (origin [`ChannelOrigin::Import`]),
//!   which also imports the SQLite side (client keys, request logs, user aliases) and returns a
//!   verification report.
//!
//! Every file is validated whole before anything is planned: a file that does not parse or
//! validate produces a [`FileError`] naming the file, the position and the field, and no ops.
//! Plans compare with the current state, so importing the same files twice changes nothing.

mod import;
mod plan;
mod report;
mod source;
mod sqlite;
mod timestamp;
mod validate;

use std::collections::BTreeMap;
use std::path::PathBuf;

pub use self::import::{ImportOptions, Progress, ProgressFn, import_dir};
pub use self::plan::{
    QuotaEntry, QuotaPlan, derived_channel_id, plan_aliases, plan_config, plan_pricing,
    plan_quota_usage, plan_quota_usage_detailed,
};
pub use self::report::{EntityReport, FileOutcome, ImportReport};
pub use self::sqlite::{
    CcBridgeDb, DATABASE_FILES, ImportedKey, UserAlias, find_database, read_sqlite,
};
pub use crate::domain::channel::ChannelOrigin;

use crate::config::WriteError;
use crate::domain::Pool;
use crate::store::StoreError;

/// The `source` of cc-bridge entries in `import_history`.
pub const SOURCE: &str = "cc-bridge";

/// The cc-bridge JSON files relaybox reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub enum ConfigFile {
    Config,
    Pricing,
    Aliases,
    QuotaUsage,
}

impl ConfigFile {
    pub const ALL: [ConfigFile; 4] = [
        ConfigFile::Config,
        ConfigFile::Pricing,
        ConfigFile::Aliases,
        ConfigFile::QuotaUsage,
    ];

    #[must_use]
    pub fn file_name(self) -> &'static str {
        match self {
            ConfigFile::Config => "config.json",
            ConfigFile::Pricing => "pricing.json",
            ConfigFile::Aliases => "model-aliases.json",
            ConfigFile::QuotaUsage => "quota_usage.json",
        }
    }

    #[must_use]
    pub fn from_file_name(name: &str) -> Option<ConfigFile> {
        ConfigFile::ALL
            .into_iter()
            .find(|file| file.file_name() == name)
    }
}

impl std::fmt::Display for ConfigFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.file_name())
    }
}

/// Why a file was rejected, precisely enough to fix it:
/// `config.json line 12 column 5 (upstream[0].priority): invalid type: string "high", expected i64`.
///
/// Syntax and type errors carry the line and column; type and semantic errors the field path.
/// Upstream secrets are never echoed.
#[derive(Debug, Clone, PartialEq, thiserror::Error, serde::Serialize)]
#[error("{}", render(.file, .line, .column, .field, .reason))]
pub struct FileError {
    pub file: String,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub field: Option<String>,
    pub reason: String,
}

fn render(
    file: &str,
    line: &Option<usize>,
    column: &Option<usize>,
    field: &Option<String>,
    reason: &str,
) -> String {
    let mut out = file.to_string();
    if let Some(line) = line {
        out.push_str(&format!(" line {line}"));
        if let Some(column) = column {
            out.push_str(&format!(" column {column}"));
        }
    }
    if let Some(field) = field {
        out.push_str(&format!(" ({field})"));
    }
    out.push_str(": ");
    out.push_str(reason);
    out
}

impl FileError {
    /// A file that parses but does not validate (no position, usually a field).
    pub(crate) fn semantic(
        file: ConfigFile,
        field: Option<String>,
        reason: impl Into<String>,
    ) -> Self {
        Self {
            file: file.file_name().to_string(),
            line: None,
            column: None,
            field,
            reason: reason.into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{0}")]
    File(#[from] FileError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Write(#[from] WriteError),
    #[error("{}: {source}", .path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {reason}", .path.display())]
    Database { path: PathBuf, reason: String },
    #[error("{} is not a folder; give the path of cc-bridge's .config folder", .0.display())]
    NotADirectory(PathBuf),
    #[error(
        "{} holds no cc-bridge files (config.json, pricing.json, model-aliases.json, quota_usage.json, cc-bridge.db, request_logs.db); give the path of cc-bridge's .config folder",
        .0.display()
    )]
    NothingToImport(PathBuf),
}

/// Channel ids per pool of a `config.json` (index → id), e.g. to read cc-bridge data that refers
/// to channels by index. Validates the file like [`plan_config`].
pub fn channel_ids_by_pool(config_json: &[u8]) -> Result<BTreeMap<Pool, Vec<String>>, FileError> {
    Ok(plan::parse_config(config_json)?.ids_by_pool())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_error_display() {
        let err = FileError {
            file: "config.json".into(),
            line: Some(12),
            column: Some(5),
            field: Some("upstream[0].priority".into()),
            reason: "invalid type: string, expected i64".into(),
        };
        assert_eq!(
            err.to_string(),
            "config.json line 12 column 5 (upstream[0].priority): invalid type: string, expected i64"
        );
        let semantic = FileError::semantic(ConfigFile::Pricing, None, "bad");
        assert_eq!(semantic.to_string(), "pricing.json: bad");
    }

    #[test]
    fn file_names_round_trip() {
        for file in ConfigFile::ALL {
            assert_eq!(ConfigFile::from_file_name(file.file_name()), Some(file));
        }
    }
}
