//! The config side of an import: `config.json`, `pricing.json`, `model-aliases.json` and the
//! database's `api_keys`, each planned against the state the previous ones leave, into one
//! batch of ops that [`import_dir`](super::import_dir) applies in one transaction.

use std::path::Path;

use super::{ImportOptions, Run, read};
use crate::crypto::Cipher;
use crate::domain::Settings;
use crate::importers::cc_bridge::plan::{self, ParsedConfig};
use crate::importers::cc_bridge::report::EntityReport;
use crate::importers::cc_bridge::{CcBridgeDb, ConfigFile, ImportError};
use crate::store::{ConfigOp, ConfigState};

/// The config ops planned so far, and what the later steps need from the files.
pub(super) struct Planned {
    /// The current state with `ops` applied: what the store will hold.
    pub state: ConfigState,
    pub ops: Vec<ConfigOp>,
    /// `config.json`'s bytes and SHA-256, when the folder has one.
    pub config: Option<(Vec<u8>, String)>,
    pub parsed_config: Option<ParsedConfig>,
}

/// Plan `config.json`, `pricing.json` and `model-aliases.json` (each optional) and tally the
/// settings they describe.
pub(super) fn plan_json_files(
    run: &mut Run<'_>,
    dir: &Path,
    current: &ConfigState,
    cipher: &Cipher,
    options: &ImportOptions,
) -> Result<Planned, ImportError> {
    let mut state = current.clone();
    let mut ops: Vec<ConfigOp> = Vec::new();

    // --- config.json ----------------------------------------------------------------------
    let config = read::read_file(dir, ConfigFile::Config)?;
    let mut parsed_config = None;
    if let Some((bytes, sha)) = &config {
        let plan = plan::plan_config_detailed(bytes, &state, cipher, options.origin)
            .map_err(|e| run.reject(ConfigFile::Config, sha, e))?;
        parsed_config = Some(plan::parse_config(bytes)?);
        state.apply_ops(&plan.ops)?;
        run.report.channels = EntityReport {
            found: plan.found,
            imported: plan.new + plan.changed,
            unchanged: plan.unchanged,
            removed: plan.removed,
            ..EntityReport::default()
        };
        run.record_file(ConfigFile::Config, sha, plan.ops.len());
        ops.extend(plan.ops);
    }

    // --- pricing.json ---------------------------------------------------------------------
    let pricing = read::read_file(dir, ConfigFile::Pricing)?;
    if let Some((bytes, sha)) = &pricing {
        let plan = plan::plan_pricing_detailed(bytes, &state)
            .map_err(|e| run.reject(ConfigFile::Pricing, sha, e))?;
        state.apply_ops(&plan.ops)?;
        run.report.pricing = EntityReport {
            found: plan.found,
            imported: plan.new + plan.changed,
            unchanged: plan.unchanged,
            removed: plan.removed,
            ..EntityReport::default()
        };
        run.record_file(ConfigFile::Pricing, sha, plan.ops.len());
        ops.extend(plan.ops);
    }

    // --- model-aliases.json ---------------------------------------------------------------
    if let Some((bytes, sha)) = read::read_file(dir, ConfigFile::Aliases)? {
        let (alias_ops, found) = plan::plan_aliases_detailed(&bytes, &state)
            .map_err(|e| run.reject(ConfigFile::Aliases, &sha, e))?;
        state.apply_ops(&alias_ops)?;
        let aliases = &mut run.report.aliases;
        aliases.found = found;
        if alias_ops.is_empty() {
            aliases.unchanged = found;
        } else {
            aliases.imported = found;
        }
        run.record_file(ConfigFile::Aliases, &sha, alias_ops.len());
        ops.extend(alias_ops);
    }

    if config.is_some() || pricing.is_some() {
        let settings = &mut run.report.settings;
        settings.found = 1;
        if same_settings(&state.settings, &current.settings) {
            settings.unchanged = 1;
        } else {
            settings.imported = 1;
        }
    }
    Ok(Planned {
        state,
        ops,
        config,
        parsed_config,
    })
}

/// Plan the database's `api_keys` on top of the JSON files (its legacy channel indexes refer
/// to `config.json`).
pub(super) fn plan_api_keys(
    run: &mut Run<'_>,
    db: &CcBridgeDb,
    planned: &mut Planned,
) -> Result<(), ImportError> {
    let report = &mut run.report;
    report.database = Some(db.path.clone());
    report.notes.extend(db.notes.iter().cloned());
    let ids_by_pool = planned
        .parsed_config
        .as_ref()
        .map(ParsedConfig::ids_by_pool);
    let key_plan = plan::plan_keys(&db.keys, &planned.state, ids_by_pool.as_ref());
    planned.state.apply_ops(&key_plan.ops)?;
    let keys = &mut report.keys;
    keys.found = (db.keys.len() + db.skipped_keys.len()) as u64;
    keys.imported = key_plan.new + key_plan.changed;
    keys.unchanged = key_plan.unchanged;
    for (item, reason) in db.skipped_keys.iter().chain(&key_plan.skipped) {
        keys.skip(item, reason);
    }
    keys.notes.extend(key_plan.notes);
    planned.ops.extend(key_plan.ops);
    Ok(())
}

/// Equal but for the version the store stamps.
fn same_settings(a: &Settings, b: &Settings) -> bool {
    Settings {
        version: 0,
        ..a.clone()
    } == Settings {
        version: 0,
        ..b.clone()
    }
}
