//! `quota_usage.json`: its counters are imported once (relaybox counts on from there), and only
//! with a `config.json` to map its channel indexes.

use std::path::Path;

use super::{Run, read};
use crate::importers::cc_bridge::plan::{self, QuotaEntry};
use crate::importers::cc_bridge::report::FileOutcome;
use crate::importers::cc_bridge::{ConfigFile, ImportError, SOURCE};

/// The counters to write once the config ops are applied.
#[derive(Default)]
pub(super) struct QuotaWrites {
    pub writes: Vec<QuotaEntry>,
    /// How many of them are channels without a counter yet (for a dry run's target count).
    pub new: u64,
}

/// Read and plan `quota_usage.json` against what `logs.sqlite` already holds. `config` is
/// `config.json`'s bytes and SHA-256, when the folder has one.
pub(super) fn plan(
    run: &mut Run<'_>,
    dir: &Path,
    config: Option<&(Vec<u8>, String)>,
) -> Result<QuotaWrites, ImportError> {
    let mut quota = QuotaWrites::default();
    let Some((bytes, sha)) = read::read_file(dir, ConfigFile::QuotaUsage)? else {
        return Ok(quota);
    };
    let name = ConfigFile::QuotaUsage.file_name();
    match (run.logs.last_applied(SOURCE, name)?, config) {
        (Some(previous), _) => {
            let found = match config {
                Some((config_bytes, _)) => plan::plan_quota_usage_detailed(&bytes, config_bytes)
                    .map(|p| (p.entries.len() + p.skipped.len()) as u64)
                    .unwrap_or(0),
                None => 0,
            };
            let report = &mut run.report;
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
            let report = &mut run.report;
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
            let plan = plan::plan_quota_usage_detailed(&bytes, config_bytes)
                .map_err(|e| run.reject(ConfigFile::QuotaUsage, &sha, e))?;
            run.report.quota.found = (plan.entries.len() + plan.skipped.len()) as u64;
            for (item, reason) in &plan.skipped {
                run.report.quota.skip(item, reason);
            }
            for entry in &plan.entries {
                match run.logs.channel_quota(&entry.channel_id)? {
                    Some((used, last)) if used == entry.used && last == entry.last_reset_at => {
                        run.report.quota.unchanged += 1;
                    }
                    previous => {
                        run.report.quota.imported += 1;
                        quota.new += u64::from(previous.is_none());
                        quota.writes.push(entry.clone());
                    }
                }
            }
            let changed = run.report.quota.imported > 0;
            run.file_outcome(name, &sha, changed);
            run.applied(name, &sha, format!("{} counter(s)", plan.entries.len()));
        }
    }
    Ok(quota)
}
