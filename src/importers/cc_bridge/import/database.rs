//! The data side of the database: request logs (in idempotent batches, so an interrupted import
//! resumes where it stopped) and user aliases, written into `logs.sqlite`.

use std::collections::HashMap;

use super::{ImportOptions, Run, read};
use crate::domain::Pool;
use crate::importers::cc_bridge::plan::ParsedConfig;
use crate::importers::cc_bridge::{CcBridgeDb, ImportError, sqlite};
use crate::store::sqlite::{LogDb, RequestLog};

/// Request-log rows per batch (one transaction each) and per progress report.
const LOG_BATCH: usize = 1000;

/// Import the request logs and user aliases of `db`; returns how many user aliases are new
/// (for a dry run's target count).
pub(super) fn import(
    run: &mut Run<'_>,
    db: &CcBridgeDb,
    parsed_config: Option<&ParsedConfig>,
    options: &ImportOptions,
) -> Result<u64, ImportError> {
    let logs = run.logs;
    let dry_run = run.dry_run;
    let names = parsed_config
        .map(ParsedConfig::ids_by_name)
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
    let report = &mut run.report;
    report.request_logs.found = total;
    report.request_logs.imported = imported;
    report.request_logs.unchanged = unchanged;
    for (item, reason) in &skipped {
        report.request_logs.skip(item, reason);
    }

    let mut alias_new = 0;
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
    let sha = read::sha256_file(&db.path)?;
    let changed = imported + report.user_aliases.imported + report.keys.imported > 0;
    run.file_outcome(&file, &sha, changed);
    run.applied(&file, &sha, format!("{imported} log row(s)"));
    Ok(alias_new)
}

/// Rows without cc-bridge's stable `channel_uid` get the id of the channel of that name in the
/// endpoint's pool, when `config.json` has exactly that channel.
fn resolve_channels(batch: &mut [RequestLog], names: &HashMap<(Pool, String), String>) {
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

/// How many rows of `batch` are not in `logs.sqlite` yet (dry run; read-only connection).
fn count_new_logs(logs: &LogDb, batch: &[RequestLog]) -> Result<u64, ImportError> {
    Ok(logs.reader().read(|conn| {
        let mut stmt = conn.prepare_cached("SELECT 1 FROM request_log WHERE id = ?1")?;
        let mut new = 0;
        for row in batch {
            if !stmt.exists([&row.id])? {
                new += 1;
            }
        }
        Ok(new)
    })?)
}

fn existing_user_alias(logs: &LogDb, user_id: &str) -> Result<Option<String>, ImportError> {
    use rusqlite::OptionalExtension;
    Ok(logs.reader().read(|conn| {
        conn.query_row(
            "SELECT alias FROM user_aliases WHERE user_id = ?1",
            [user_id],
            |row| row.get(0),
        )
        .optional()
    })?)
}
