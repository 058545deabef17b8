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

mod plan;
mod report;
mod source;
mod sqlite;
mod timestamp;
mod validate;

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

pub use self::plan::{
    QuotaEntry, QuotaPlan, derived_channel_id, plan_aliases, plan_config, plan_pricing,
    plan_quota_usage, plan_quota_usage_detailed,
};
pub use self::report::{EntityReport, FileOutcome, ImportReport};
pub use self::sqlite::{
    CcBridgeDb, DATABASE_FILES, ImportedKey, UserAlias, find_database, read_sqlite,
};
pub use crate::domain::channel::ChannelOrigin;

use crate::config::{Configuration, WriteError};
use crate::crypto::Cipher;
use crate::domain::{ModelAliases, Pool, Settings};
use crate::store::sqlite::LogDb;
use crate::store::{ConfigOp, StoreError};

/// The `source` of cc-bridge entries in `import_history`.
pub const SOURCE: &str = "cc-bridge";

/// Request-log rows per batch (one transaction each) and per progress report.
const LOG_BATCH: usize = 1000;

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

/// Where a long import stands (request logs: every 1000 rows).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub stage: &'static str,
    pub done: u64,
    pub total: u64,
}

/// Receives [`Progress`] reports.
pub type ProgressFn = Box<dyn Fn(&Progress) + Send + Sync>;

/// How [`import_dir`] runs.
pub struct ImportOptions {
    /// Compute the same report, write nothing.
    pub dry_run: bool,
    /// Origin of new channels: [`ChannelOrigin::Import`] for the CLI (upsert, never delete);
    /// [`ChannelOrigin::ConfigFile`] for the data dir's own files (channels no longer in
    /// `config.json` are deleted).
    pub origin: ChannelOrigin,
    pub progress: Option<ProgressFn>,
}

impl Default for ImportOptions {
    fn default() -> Self {
        Self {
            dry_run: false,
            origin: ChannelOrigin::Import,
            progress: None,
        }
    }
}

impl std::fmt::Debug for ImportOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImportOptions")
            .field("dry_run", &self.dry_run)
            .field("origin", &self.origin)
            .field("progress", &self.progress.is_some())
            .finish()
    }
}

impl ImportOptions {
    fn report_progress(&self, stage: &'static str, done: u64, total: u64) {
        if let Some(progress) = &self.progress {
            progress(&Progress { stage, done, total });
        }
    }
}

/// `relaybox import cc-bridge DIR`: import a cc-bridge `.config` folder.
///
/// 1. `config.json`, `pricing.json`, `model-aliases.json` (each optional) and the `api_keys` of
///    the database are planned against the current state and applied in ONE `store.apply`
///    (skipped when nothing differs).
/// 2. `quota_usage.json`, unless one was imported before (counters are imported once).
/// 3. The database (`cc-bridge.db`, else `request_logs.db`), opened read-only: request logs in
///    idempotent batches of 1000 (an interrupted import resumes where it stopped), user aliases.
/// 4. Each applied file is recorded in `import_history`.
///
/// A file that fails validation stops the import before anything is written. The source folder
/// is never modified. With `dry_run`, the same report is computed and nothing is written.
pub fn import_dir(
    dir: &Path,
    config_store: &Configuration,
    logs: &LogDb,
    cipher: &Cipher,
    options: &ImportOptions,
) -> Result<ImportReport, ImportError> {
    let (dir, note) = source_dir(dir)?;
    let mut report = ImportReport {
        source: dir.clone(),
        dry_run: options.dry_run,
        ..ImportReport::default()
    };
    report.notes.extend(note);
    let dry_run = options.dry_run;
    let reject = |file: ConfigFile, sha: &str, err: FileError| -> ImportError {
        if !dry_run {
            // Best effort: the import fails with `err` whether or not the history row is written.
            let _ = logs.record_import(SOURCE, file.file_name(), sha, "rejected", &err.to_string());
        }
        ImportError::File(err)
    };

    let current = config_store.committed();
    let mut state = current.clone();
    let mut ops: Vec<ConfigOp> = Vec::new();
    // Files whose content is now in the stores: (item, sha256, detail).
    let mut applied: Vec<(String, String, String)> = Vec::new();

    // --- config.json ----------------------------------------------------------------------
    let config = read_file(&dir, ConfigFile::Config)?;
    let mut parsed_config = None;
    if let Some((bytes, sha)) = &config {
        let plan = plan::plan_config_detailed(bytes, &state, cipher, options.origin)
            .map_err(|e| reject(ConfigFile::Config, sha, e))?;
        parsed_config = Some(plan::parse_config(bytes)?);
        state.apply_ops(&plan.ops)?;
        report.channels = EntityReport {
            found: plan.found,
            imported: plan.new + plan.changed,
            unchanged: plan.unchanged,
            removed: plan.removed,
            ..EntityReport::default()
        };
        record_file(
            &mut report,
            &mut applied,
            ConfigFile::Config,
            sha,
            plan.ops.len(),
            dry_run,
        );
        ops.extend(plan.ops);
    }

    // --- pricing.json ---------------------------------------------------------------------
    let pricing = read_file(&dir, ConfigFile::Pricing)?;
    if let Some((bytes, sha)) = &pricing {
        let plan = plan::plan_pricing_detailed(bytes, &state)
            .map_err(|e| reject(ConfigFile::Pricing, sha, e))?;
        state.apply_ops(&plan.ops)?;
        report.pricing = EntityReport {
            found: plan.found,
            imported: plan.new + plan.changed,
            unchanged: plan.unchanged,
            removed: plan.removed,
            ..EntityReport::default()
        };
        record_file(
            &mut report,
            &mut applied,
            ConfigFile::Pricing,
            sha,
            plan.ops.len(),
            dry_run,
        );
        ops.extend(plan.ops);
    }

    // --- model-aliases.json ---------------------------------------------------------------
    if let Some((bytes, sha)) = read_file(&dir, ConfigFile::Aliases)? {
        let (alias_ops, found) = plan::plan_aliases_detailed(&bytes, &state)
            .map_err(|e| reject(ConfigFile::Aliases, &sha, e))?;
        state.apply_ops(&alias_ops)?;
        report.aliases.found = found;
        if alias_ops.is_empty() {
            report.aliases.unchanged = found;
        } else {
            report.aliases.imported = found;
        }
        record_file(
            &mut report,
            &mut applied,
            ConfigFile::Aliases,
            &sha,
            alias_ops.len(),
            dry_run,
        );
        ops.extend(alias_ops);
    }

    if config.is_some() || pricing.is_some() {
        report.settings.found = 1;
        if same_settings(&state.settings, &current.settings) {
            report.settings.unchanged = 1;
        } else {
            report.settings.imported = 1;
        }
    }

    // --- api_keys (config side of the database) -------------------------------------------
    let db = find_database(&dir)
        .map(|path| read_sqlite(&path))
        .transpose()?;
    if let Some(db) = &db {
        report.database = Some(db.path.clone());
        report.notes.extend(db.notes.iter().cloned());
        let ids_by_pool = parsed_config.as_ref().map(plan::ParsedConfig::ids_by_pool);
        let key_plan = plan::plan_keys(&db.keys, &state, ids_by_pool.as_ref());
        state.apply_ops(&key_plan.ops)?;
        report.keys.found = (db.keys.len() + db.skipped_keys.len()) as u64;
        report.keys.imported = key_plan.new + key_plan.changed;
        report.keys.unchanged = key_plan.unchanged;
        for (item, reason) in db.skipped_keys.iter().chain(&key_plan.skipped) {
            report.keys.skip(item, reason);
        }
        report.keys.notes.extend(key_plan.notes);
        ops.extend(key_plan.ops);
    }

    // --- quota_usage.json -----------------------------------------------------------------
    // Planned (and validated) before anything is written; written after the config ops.
    let mut quota_new = 0;
    let mut quota_writes = Vec::new();
    if let Some((bytes, sha)) = read_file(&dir, ConfigFile::QuotaUsage)? {
        let name = ConfigFile::QuotaUsage.file_name();
        match (logs.last_applied(SOURCE, name)?, &config) {
            (Some(previous), _) => {
                let found = match &config {
                    Some((config_bytes, _)) => {
                        plan::plan_quota_usage_detailed(&bytes, config_bytes)
                            .map(|p| (p.entries.len() + p.skipped.len()) as u64)
                            .unwrap_or(0)
                    }
                    None => 0,
                };
                report.quota.found = found;
                report.quota.skipped = found;
                let reason = format!(
                    "a quota_usage.json was imported before (sha256 {}…); quota counters are imported once, relaybox counts on from there",
                    previous.get(..12).unwrap_or(&previous)
                );
                report
                    .quota
                    .skipped_items
                    .push(format!("all entries: {reason}"));
                report.files.push(FileOutcome {
                    file: name.into(),
                    sha256: sha,
                    outcome: "skipped: imported before".into(),
                });
            }
            (None, None) => {
                report.quota.skip(
                    name,
                    "config.json is needed to map its channel indexes to channels",
                );
                report.files.push(FileOutcome {
                    file: name.into(),
                    sha256: sha,
                    outcome: "skipped: no config.json".into(),
                });
            }
            (None, Some((config_bytes, _))) => {
                let plan = plan_quota_usage_detailed(&bytes, config_bytes)
                    .map_err(|e| reject(ConfigFile::QuotaUsage, &sha, e))?;
                report.quota.found = (plan.entries.len() + plan.skipped.len()) as u64;
                for (item, reason) in &plan.skipped {
                    report.quota.skip(item, reason);
                }
                for entry in &plan.entries {
                    match logs.channel_quota(&entry.channel_id)? {
                        Some((used, last)) if used == entry.used && last == entry.last_reset_at => {
                            report.quota.unchanged += 1;
                        }
                        previous => {
                            report.quota.imported += 1;
                            quota_new += u64::from(previous.is_none());
                            quota_writes.push(entry.clone());
                        }
                    }
                }
                let changed = report.quota.imported > 0;
                file_outcome(&mut report, name, &sha, changed, dry_run);
                applied.push((
                    name.into(),
                    sha,
                    format!("{} counter(s)", plan.entries.len()),
                ));
            }
        }
    }

    // One transaction for every config change.
    if !dry_run && !ops.is_empty() {
        config_store.apply(&ops)?;
    }
    if !dry_run {
        for entry in &quota_writes {
            logs.put_channel_quota(&entry.channel_id, entry.used, &entry.last_reset_at)?;
        }
    }

    // --- request logs and user aliases ----------------------------------------------------
    let mut alias_new = 0;
    if let Some(db) = &db {
        let names = parsed_config
            .as_ref()
            .map(plan::ParsedConfig::ids_by_name)
            .unwrap_or_default();
        let total = db.request_log_count;
        let (mut imported, mut unchanged, mut done) = (0u64, 0u64, 0u64);
        options.report_progress("request_logs", 0, total);
        let skipped = db.for_each_log_batch(LOG_BATCH, |mut batch| {
            resolve_channels(&mut batch, &names);
            let new = if dry_run {
                count_new_logs(logs, &batch)?
            } else {
                logs.insert_logs(&batch)? as u64
            };
            imported += new;
            unchanged += batch.len() as u64 - new;
            done += batch.len() as u64;
            options.report_progress("request_logs", done, total);
            Ok(())
        })?;
        report.request_logs.found = total;
        report.request_logs.imported = imported;
        report.request_logs.unchanged = unchanged;
        for (item, reason) in &skipped {
            report.request_logs.skip(item, reason);
        }

        report.user_aliases.found = db.user_aliases.len() as u64;
        for alias in &db.user_aliases {
            let existing = existing_user_alias(logs, &alias.user_id)?;
            if existing.as_deref() == Some(alias.alias.as_str()) {
                report.user_aliases.unchanged += 1;
                continue;
            }
            report.user_aliases.imported += 1;
            alias_new += u64::from(existing.is_none());
            if !dry_run {
                logs.put_user_alias(
                    &alias.user_id,
                    &alias.alias,
                    &alias.created_at,
                    &alias.updated_at,
                )?;
            }
        }
        let file = db
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let sha = sha256_file(&db.path)?;
        let changed = imported + report.user_aliases.imported + report.keys.imported > 0;
        file_outcome(&mut report, &file, &sha, changed, dry_run);
        applied.push((file, sha, format!("{imported} log row(s)")));
    }

    // --- history ------------------------------------------------------------------------
    if !dry_run {
        for (item, sha, detail) in &applied {
            if logs.last_applied(SOURCE, item)?.as_deref() != Some(sha.as_str()) {
                logs.record_import(SOURCE, item, sha, "applied", detail)?;
            }
        }
    }

    // --- target counts (re-read: the report verifies what is stored) ----------------------
    let target = if dry_run {
        state
    } else {
        config_store.committed()
    };
    report.channels.target = target.channels.len() as u64;
    report.settings.target = 1;
    report.pricing.target = target.pricing.len() as u64;
    report.aliases.target = alias_entries(&target.aliases);
    report.keys.target = target.keys.len() as u64;
    let pending = |n: u64| if dry_run { n } else { 0 };
    report.request_logs.target = logs.count_logs()? + pending(report.request_logs.imported);
    report.quota.target = count_rows(logs, "channel_quota_usage")? + pending(quota_new);
    report.user_aliases.target = count_rows(logs, "user_aliases")? + pending(alias_new);
    Ok(report)
}

/// `dir`, or its `.config` folder when `dir` is cc-bridge's working directory.
fn source_dir(dir: &Path) -> Result<(PathBuf, Option<String>), ImportError> {
    if !dir.is_dir() {
        return Err(ImportError::NotADirectory(dir.to_path_buf()));
    }
    let has_files = |d: &Path| {
        ConfigFile::ALL
            .iter()
            .any(|f| d.join(f.file_name()).is_file())
            || find_database(d).is_some()
    };
    if has_files(dir) {
        return Ok((dir.to_path_buf(), None));
    }
    let nested = dir.join(".config");
    if nested.is_dir() && has_files(&nested) {
        let note = format!(
            "{} holds no cc-bridge files; read its .config folder",
            dir.display()
        );
        return Ok((nested, Some(note)));
    }
    Err(ImportError::NothingToImport(dir.to_path_buf()))
}

/// The file's bytes and SHA-256, or `None` when it does not exist.
fn read_file(dir: &Path, file: ConfigFile) -> Result<Option<(Vec<u8>, String)>, ImportError> {
    let path = dir.join(file.file_name());
    match std::fs::read(&path) {
        Ok(bytes) => {
            let sha = hex::encode(Sha256::digest(&bytes));
            Ok(Some((bytes, sha)))
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(ImportError::Io { path, source }),
    }
}

fn sha256_file(path: &Path) -> Result<String, ImportError> {
    let io = |source| ImportError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buffer).map_err(io)?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// Note a planned file in the report and queue its import-history entry.
fn record_file(
    report: &mut ImportReport,
    applied: &mut Vec<(String, String, String)>,
    file: ConfigFile,
    sha: &str,
    op_count: usize,
    dry_run: bool,
) {
    file_outcome(report, file.file_name(), sha, op_count > 0, dry_run);
    applied.push((
        file.file_name().into(),
        sha.to_string(),
        format!("{op_count} op(s)"),
    ));
}

fn file_outcome(report: &mut ImportReport, file: &str, sha: &str, changed: bool, dry_run: bool) {
    let outcome = match (changed, dry_run) {
        (false, _) => "unchanged",
        (true, false) => "applied",
        (true, true) => "would apply",
    };
    report.files.push(FileOutcome {
        file: file.into(),
        sha256: sha.into(),
        outcome: outcome.into(),
    });
}

fn same_settings(a: &Settings, b: &Settings) -> bool {
    Settings {
        version: 0,
        ..a.clone()
    } == Settings {
        version: 0,
        ..b.clone()
    }
}

fn alias_entries(aliases: &ModelAliases) -> u64 {
    (aliases.messages_models.len()
        + aliases.responses_models.len()
        + aliases.gemini_models.len()
        + aliases.chat_models.len()) as u64
}

/// Rows without cc-bridge's stable `channel_uid` get the id of the channel of that name in the
/// endpoint's pool, when `config.json` has exactly that channel.
fn resolve_channels(
    batch: &mut [crate::store::sqlite::RequestLog],
    names: &HashMap<(Pool, String), String>,
) {
    if names.is_empty() {
        return;
    }
    for row in batch
        .iter_mut()
        .filter(|r| r.channel_id.is_empty() && !r.channel_name.is_empty())
    {
        let key = (
            sqlite::pool_of_endpoint(&row.endpoint),
            row.channel_name.trim().to_lowercase(),
        );
        if let Some(id) = names.get(&key) {
            row.channel_id.clone_from(id);
        }
    }
}

/// How many rows of `batch` are not in `logs.sqlite` yet (dry run).
fn count_new_logs(
    logs: &LogDb,
    batch: &[crate::store::sqlite::RequestLog],
) -> Result<u64, ImportError> {
    let conn = logs.lock();
    let mut stmt = conn
        .prepare_cached("SELECT 1 FROM request_log WHERE id = ?1")
        .map_err(StoreError::from)?;
    let mut new = 0;
    for row in batch {
        if !stmt.exists([&row.id]).map_err(StoreError::from)? {
            new += 1;
        }
    }
    Ok(new)
}

fn existing_user_alias(logs: &LogDb, user_id: &str) -> Result<Option<String>, ImportError> {
    use rusqlite::OptionalExtension;
    let conn = logs.lock();
    Ok(conn
        .query_row(
            "SELECT alias FROM user_aliases WHERE user_id = ?1",
            [user_id],
            |row| row.get(0),
        )
        .optional()
        .map_err(StoreError::from)?)
}

fn count_rows(logs: &LogDb, table: &'static str) -> Result<u64, ImportError> {
    let conn = logs.lock();
    let count: i64 = conn
        .query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |row| {
            row.get(0)
        })
        .map_err(StoreError::from)?;
    Ok(u64::try_from(count).unwrap_or(0))
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
