//! `relaybox import cc-bridge DIR`: [`import_dir`] runs the steps in order; each step lives in
//! its own file: `read` (the folder and its files), `config_files` (the JSON files and the
//! database's `api_keys`, planned into one batch of ops), `quota_usage`, and `database`
//! (request logs and user aliases, written after the config).

mod config_files;
mod database;
mod quota_usage;
mod read;

use std::path::Path;

use super::report::{FileOutcome, ImportReport};
use super::{
    ChannelOrigin, ConfigFile, FileError, ImportError, SOURCE, find_database, read_sqlite,
};
use crate::config::Configuration;
use crate::crypto::Cipher;
use crate::domain::ModelAliases;
use crate::store::ConfigState;
use crate::store::sqlite::LogDb;

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
///    the database are planned against the current state and applied in ONE config write
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
    let (dir, note) = read::source_dir(dir)?;
    let mut run = Run::new(&dir, logs, options.dry_run);
    run.report.notes.extend(note);

    let current = config_store.committed();
    let mut planned = config_files::plan_json_files(&mut run, &dir, &current, cipher, options)?;
    let db = find_database(&dir)
        .map(|path| read_sqlite(&path))
        .transpose()?;
    if let Some(db) = &db {
        config_files::plan_api_keys(&mut run, db, &mut planned)?;
    }
    // Planned (and validated) before anything is written; written after the config ops.
    let quota = quota_usage::plan(&mut run, &dir, planned.config.as_ref())?;

    // One transaction for every config change.
    if !run.dry_run && !planned.ops.is_empty() {
        config_store.apply(&planned.ops)?;
    }
    if !run.dry_run {
        for entry in &quota.writes {
            logs.put_channel_quota(&entry.channel_id, entry.used, &entry.last_reset_at)?;
        }
    }

    let alias_new = match &db {
        Some(db) => database::import(&mut run, db, planned.parsed_config.as_ref(), options)?,
        None => 0,
    };
    run.record_history()?;

    // Re-read: the report verifies what is stored.
    let target = if run.dry_run {
        planned.state
    } else {
        config_store.committed()
    };
    run.count_targets(&target, quota.new, alias_new)?;
    Ok(run.report)
}

/// A file whose content is now in the stores, for `import_history`.
struct AppliedFile {
    item: String,
    sha256: String,
    detail: String,
}

/// What the steps of one import share: the report they fill in and the files to record.
struct Run<'a> {
    logs: &'a LogDb,
    dry_run: bool,
    report: ImportReport,
    applied: Vec<AppliedFile>,
}

impl<'a> Run<'a> {
    fn new(source: &Path, logs: &'a LogDb, dry_run: bool) -> Self {
        Self {
            logs,
            dry_run,
            report: ImportReport {
                source: source.to_path_buf(),
                dry_run,
                ..ImportReport::default()
            },
            applied: Vec::new(),
        }
    }

    /// A file that failed validation: noted in `import_history` (unless a dry run) and
    /// returned as the import's error.
    fn reject(&self, file: ConfigFile, sha: &str, err: FileError) -> ImportError {
        if !self.dry_run {
            // Best effort: the import fails with `err` whether or not the history row is written.
            let _ = self.logs.record_import(
                SOURCE,
                file.file_name(),
                sha,
                "rejected",
                &err.to_string(),
            );
        }
        ImportError::File(err)
    }

    /// Note a planned file in the report and queue its import-history entry.
    fn record_file(&mut self, file: ConfigFile, sha: &str, op_count: usize) {
        self.file_outcome(file.file_name(), sha, op_count > 0);
        self.applied(file.file_name(), sha, format!("{op_count} op(s)"));
    }

    fn applied(&mut self, item: &str, sha: &str, detail: String) {
        self.applied.push(AppliedFile {
            item: item.into(),
            sha256: sha.into(),
            detail,
        });
    }

    fn file_outcome(&mut self, file: &str, sha: &str, changed: bool) {
        let outcome = match (changed, self.dry_run) {
            (false, _) => "unchanged",
            (true, false) => "applied",
            (true, true) => "would apply",
        };
        self.report.files.push(FileOutcome {
            file: file.into(),
            sha256: sha.into(),
            outcome: outcome.into(),
        });
    }

    /// Enter each applied file in `import_history`, unless that very content is its last entry.
    fn record_history(&self) -> Result<(), ImportError> {
        if self.dry_run {
            return Ok(());
        }
        for file in &self.applied {
            if self.logs.last_applied(SOURCE, &file.item)?.as_deref() != Some(file.sha256.as_str())
            {
                self.logs.record_import(
                    SOURCE,
                    &file.item,
                    &file.sha256,
                    "applied",
                    &file.detail,
                )?;
            }
        }
        Ok(())
    }

    /// What the stores hold after the import (a dry run adds what it would have written).
    fn count_targets(
        &mut self,
        target: &ConfigState,
        quota_new: u64,
        alias_new: u64,
    ) -> Result<(), ImportError> {
        let logs = self.logs;
        let dry_run = self.dry_run;
        let report = &mut self.report;
        report.channels.target = target.channels.len() as u64;
        report.settings.target = 1;
        report.pricing.target = target.pricing.len() as u64;
        report.aliases.target = alias_entries(&target.aliases);
        report.keys.target = target.keys.len() as u64;
        let pending = |n: u64| if dry_run { n } else { 0 };
        report.request_logs.target = logs.count_logs()? + pending(report.request_logs.imported);
        report.quota.target = count_rows(logs, "channel_quota_usage")? + pending(quota_new);
        report.user_aliases.target = count_rows(logs, "user_aliases")? + pending(alias_new);
        Ok(())
    }
}

fn alias_entries(aliases: &ModelAliases) -> u64 {
    (aliases.messages_models.len()
        + aliases.responses_models.len()
        + aliases.gemini_models.len()
        + aliases.chat_models.len()) as u64
}

fn count_rows(logs: &LogDb, table: &'static str) -> Result<u64, ImportError> {
    let count: i64 = logs.reader().read(|conn| {
        conn.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |row| {
            row.get(0)
        })
    })?;
    Ok(u64::try_from(count).unwrap_or(0))
}
