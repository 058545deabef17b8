//! Import from claude-relay-service (format notes: `formats/claude-relay-service-redis.md`).
//!
//! `relaybox import claude-relay-service` runs in two steps:
//!
//! 1. [`prepare`] reads the source (a live Redis, read-only, or a JSON dump), decrypts every
//!    account secret with the deployment's `ENCRYPTION_KEY` and maps keys, accounts, groups and
//!    usage to relaybox's types. A wrong `ENCRYPTION_KEY` is refused here — none of the secrets
//!    decrypt — before the data dir is even opened.
//! 2. [`import`] compares that with the data dir and writes what differs: all keys and channels
//!    in ONE config transaction, their fingerprints in `import_history`, then the usage history
//!    in idempotent batches (an interrupted run continues where it stopped; a second run writes
//!    nothing).
//!
//! The mapping: [`keys`] (API keys → client keys with their legacy hash), [`accounts`]
//! (accounts → channels), [`usage`] (statistics → `usage_daily`); README "Import from
//! claude-relay-service" has the table.

mod accounts;
mod keys;
mod plan;
mod record;
mod report;
mod secrets;
mod source;
mod usage;

use std::collections::{BTreeMap, BTreeSet};

use zeroize::Zeroizing;

pub use self::accounts::{AccountFailure, Group, Platform};
pub use self::keys::{NO_CHANNEL, PLACEHOLDER_PREFIX};
pub use self::report::{CrsReport, Entity, Totals};
pub use self::secrets::{DecryptError, Decryptor};
pub use self::source::{Snapshot, Source, Value, read as read_source, wanted};
pub use self::usage::{UNATTRIBUTED, utc_day};

use self::accounts::AccountPlan;
use self::keys::{Bindings, KeyPlan};
use self::usage::{KeyRef, KeyUsage};
use crate::config::{Configuration, WriteError};
use crate::crypto::{Cipher, CryptoError};
use crate::domain::{ChannelStatus, Pool};
use crate::store::StoreError;
use crate::store::sqlite::LogDb;

/// The `source` of claude-relay-service entries in `import_history`.
pub const SOURCE: &str = "claude-relay-service";

/// The `extra` field of imported keys and channels that holds what relaybox keeps but does
/// not act on (and a channel's other sealed secrets, under `secrets`).
pub const EXTRA: &str = "claudeRelayService";

/// Usage contributions per transaction.
const USAGE_BATCH: usize = 500;

/// The relaybox id of a claude-relay-service key.
#[must_use]
pub fn key_id(crs_id: &str) -> String {
    format!("crs-{crs_id}")
}

/// The relaybox id of a claude-relay-service account.
#[must_use]
pub fn channel_id(crs_id: &str) -> String {
    format!("crs-{crs_id}")
}

/// AAD of a secret sealed into `extra.claudeRelayService.secrets.<name>` of a channel.
#[must_use]
pub fn secret_aad(channel_id: &str, name: &str) -> String {
    format!("channel/{channel_id}/crs/{name}")
}

#[derive(Debug, thiserror::Error)]
pub enum CrsError {
    #[error("{0}")]
    Source(String),
    #[error(
        "the --encryption-key is not this deployment's ENCRYPTION_KEY: none of the {failed} account secret(s) tried decrypt with it (e.g. {example}). Nothing was written. Use the ENCRYPTION_KEY from claude-relay-service's .env (or config/config.js)"
    )]
    WrongEncryptionKey { failed: u64, example: String },
    #[error(
        "--check-key {shown}: its hash with this --encryption-key matches no API key of the source — the ENCRYPTION_KEY is wrong, or the key is not from this deployment. Nothing was written"
    )]
    CheckKeyUnknown { shown: String },
    #[error(
        "{0} holds no claude-relay-service data (no apikey:* and no account records); is it the right Redis database (…/0, …/1)?"
    )]
    NothingToImport(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Write(#[from] WriteError),
    #[error("crypto: {0}")]
    Crypto(#[from] CryptoError),
}

/// Receives progress lines.
pub type ProgressFn = Box<dyn Fn(&str) + Send + Sync>;

/// How [`prepare`] and [`import`] run.
pub struct CrsOptions {
    /// claude-relay-service's `ENCRYPTION_KEY`.
    pub encryption_key: Zeroizing<String>,
    /// claude-relay-service's `TIMEZONE_OFFSET`, in minutes.
    pub timezone_offset_minutes: i32,
    pub dry_run: bool,
    /// Plaintext keys to verify the `ENCRYPTION_KEY` against (optional).
    pub check_keys: Vec<Zeroizing<String>>,
    /// Receives progress lines.
    pub progress: Option<ProgressFn>,
}

impl std::fmt::Debug for CrsOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CrsOptions")
            .field("timezone_offset_minutes", &self.timezone_offset_minutes)
            .field("dry_run", &self.dry_run)
            .field("check_keys", &self.check_keys.len())
            .finish_non_exhaustive()
    }
}

impl CrsOptions {
    #[must_use]
    pub fn new(encryption_key: &str) -> Self {
        Self {
            encryption_key: Zeroizing::new(encryption_key.to_string()),
            timezone_offset_minutes: 8 * 60,
            dry_run: false,
            check_keys: Vec::new(),
            progress: None,
        }
    }

    fn progress(&self, line: &str) {
        if let Some(progress) = &self.progress {
            progress(line);
        }
    }
}

/// The source, read, decrypted and mapped; nothing of the data dir involved yet.
pub struct Prepared {
    source: String,
    scanned: u64,
    read: u64,
    decrypted: u64,
    accounts: Vec<AccountPlan>,
    account_failures: Vec<AccountFailure>,
    accounts_found: u64,
    groups: Vec<Group>,
    keys: Vec<KeyPlan>,
    key_skips: Vec<keys::KeySkip>,
    keys_found: u64,
    usage: BTreeMap<String, KeyUsage>,
    unreadable_usage: Vec<String>,
    /// Pools where unbound keys were limited to the shared channels.
    guarded: BTreeMap<Pool, Vec<String>>,
}

impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prepared")
            .field("source", &self.source)
            .field("keys", &self.keys.len())
            .field("accounts", &self.accounts.len())
            .finish_non_exhaustive()
    }
}

/// Step 1: read the source and map it. Fails on a wrong `ENCRYPTION_KEY`.
pub fn prepare(source: &Source, options: &CrsOptions) -> Result<Prepared, CrsError> {
    let shown = source.describe();
    options.progress(&format!("reading {shown}"));
    let snapshot = source::read(source, &|line| options.progress(line))?;
    prepare_snapshot(&shown, &snapshot, options)
}

/// [`prepare`] on a snapshot already read.
pub fn prepare_snapshot(
    shown: &str,
    snapshot: &Snapshot,
    options: &CrsOptions,
) -> Result<Prepared, CrsError> {
    let decryptor = Decryptor::new(&options.encryption_key);
    options.progress("decrypting account secrets");
    let (accounts, account_failures, accounts_found) =
        accounts::read_accounts(snapshot, &decryptor, options.timezone_offset_minutes);
    let (decrypted, failed) = decryptor.counts();
    if failed > 0 && decrypted == 0 {
        let example = account_failures
            .first()
            .map(|f| format!("{}: {}", f.item, f.reason))
            .unwrap_or_default();
        return Err(CrsError::WrongEncryptionKey { failed, example });
    }
    let groups = accounts::read_groups(snapshot);

    // Where keys can be bound, and which pools keep unbound keys on shared channels.
    let mut bindings = Bindings {
        groups: groups.iter().map(|g| (g.id.clone(), g.clone())).collect(),
        ..Bindings::default()
    };
    for account in &accounts {
        bindings.channels.insert(
            account.crs_id.clone(),
            (account.channel.id.clone(), account.channel.pool),
        );
    }
    for pool in Pool::ALL {
        let in_pool: Vec<&AccountPlan> =
            accounts.iter().filter(|a| a.channel.pool == pool).collect();
        if in_pool
            .iter()
            .any(|a| !a.shared && a.channel.status == ChannelStatus::Active)
        {
            let mut shared: Vec<&AccountPlan> = in_pool.into_iter().filter(|a| a.shared).collect();
            shared.sort_by(|a, b| {
                (a.channel.priority, &a.crs_id).cmp(&(b.channel.priority, &b.crs_id))
            });
            bindings
                .guarded
                .insert(pool, shared.iter().map(|a| a.channel.id.clone()).collect());
        }
    }
    let (keys, key_skips, keys_found) = keys::read_keys(snapshot, &bindings, crate::domain::now());

    for presented in &options.check_keys {
        let hash = crate::crypto::legacy_hash(presented, &options.encryption_key);
        if !keys.iter().any(|k| {
            k.legacy
                .as_deref()
                .is_some_and(|l| crate::crypto::digests_equal(l, &hash))
        }) {
            return Err(CrsError::CheckKeyUnknown {
                shown: crate::crypto::display_prefix(presented),
            });
        }
    }
    if keys_found == 0 && accounts_found == 0 {
        return Err(CrsError::NothingToImport(shown.to_string()));
    }
    let (usage, unreadable_usage) = usage::read_usage(snapshot);
    Ok(Prepared {
        source: shown.to_string(),
        scanned: snapshot.scanned,
        read: snapshot.keys.len() as u64,
        decrypted,
        accounts,
        account_failures,
        accounts_found,
        groups,
        keys,
        key_skips,
        keys_found,
        usage,
        unreadable_usage,
        guarded: bindings.guarded,
    })
}

/// Notes shared by several records, listed once with the records they apply to.
fn grouped_notes(notes: Vec<(String, String)>) -> Vec<String> {
    let mut by_text: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut order = Vec::new();
    for (who, note) in notes {
        let entry = by_text.entry(note.clone()).or_default();
        if entry.is_empty() {
            order.push(note);
        }
        entry.push(who);
    }
    order
        .into_iter()
        .map(|note| {
            let who = &by_text[&note];
            if who.len() == 1 {
                format!("{}: {note}", who[0])
            } else if who.len() <= 5 {
                format!("{} ({}): {note}", who.join(", "), who.len())
            } else {
                format!("{}, … ({} records): {note}", who[..5].join(", "), who.len())
            }
        })
        .collect()
}

/// Step 2: write what differs into the stores (nothing with `dry_run`) and report.
pub fn import(
    prepared: &Prepared,
    config_store: &Configuration,
    logs: &LogDb,
    cipher: &Cipher,
    options: &CrsOptions,
) -> Result<CrsReport, CrsError> {
    let dry_run = options.dry_run;
    let secret = options.encryption_key.as_str();
    let state = config_store.committed();
    let mut history = logs.latest_imports(SOURCE, "channel/")?;
    history.extend(logs.latest_imports(SOURCE, "key/")?);

    options.progress("planning keys and channels");
    let mut config = plan::ConfigPlan::default();
    plan::plan_channels(
        &mut config,
        &prepared.accounts,
        &state,
        &history,
        cipher,
        secret,
    )?;
    let imported_keys: BTreeSet<String> = plan::plan_keys(
        &mut config,
        &prepared.keys,
        &state,
        &history,
        cipher,
        secret,
    )?
    .into_iter()
    .collect();

    let key_refs: BTreeMap<String, KeyRef> = prepared
        .keys
        .iter()
        .filter(|k| imported_keys.contains(&k.crs_id))
        .map(|k| {
            (
                k.crs_id.clone(),
                KeyRef {
                    id: k.key.id.clone(),
                    name: k.key.name.clone(),
                    created: k.key.created_at.date(),
                },
            )
        })
        .collect();
    let ledger = logs.usage_contributions(SOURCE)?;
    let usage_plan = usage::plan_usage(
        &prepared.usage,
        &key_refs,
        &ledger,
        options.timezone_offset_minutes,
    );

    if !dry_run {
        if !config.ops.is_empty() {
            options.progress(&format!(
                "writing {} key(s) and channel(s)",
                config.ops.len()
            ));
            config_store.apply(&config.ops)?;
        }
        if !config.history.is_empty() {
            logs.record_imports(SOURCE, &config.history)?;
        }
        let total = usage_plan.changed.len();
        let mut done = 0;
        for batch in usage_plan.changed.chunks(USAGE_BATCH) {
            logs.apply_usage_contributions(SOURCE, batch)?;
            done += batch.len();
            options.progress(&format!("usage rows: {done}/{total}"));
        }
    }

    // ---- report ----------------------------------------------------------------------------
    let target = if dry_run {
        let mut projected = state.clone();
        projected.apply_ops(&config.ops)?;
        projected
    } else {
        config_store.committed()
    };
    let mut report = CrsReport {
        source: prepared.source.clone(),
        dry_run,
        scanned_keys: prepared.scanned,
        read_keys: prepared.read,
        secrets_decrypted: prepared.decrypted,
        timezone_offset_hours: f64::from(options.timezone_offset_minutes) / 60.0,
        ..CrsReport::default()
    };

    let keys = &mut report.keys;
    keys.found = prepared.keys_found;
    keys.new = config.keys.new;
    keys.changed = config.keys.changed;
    keys.unchanged = config.keys.unchanged;
    for skip in &prepared.key_skips {
        keys.skip(&skip.item, &skip.reason);
    }
    for (item, reason) in &config.key_skips {
        keys.skip(item, reason);
    }
    keys.target = target
        .keys
        .keys()
        .filter(|id| id.starts_with("crs-"))
        .count() as u64;
    keys.notes = grouped_notes(
        prepared
            .keys
            .iter()
            .flat_map(|k| {
                k.notes
                    .iter()
                    .map(|n| (format!("'{}'", k.key.name), n.clone()))
            })
            .collect(),
    );

    let channels = &mut report.channels;
    channels.found = prepared.accounts_found;
    channels.new = config.channels.new;
    channels.changed = config.channels.changed;
    channels.unchanged = config.channels.unchanged;
    for failure in &prepared.account_failures {
        channels.fail(&failure.item, &failure.reason);
    }
    channels.target = target
        .channels
        .keys()
        .filter(|id| id.starts_with("crs-"))
        .count() as u64;
    let mut channel_notes: Vec<(String, String)> = prepared
        .accounts
        .iter()
        .flat_map(|a| {
            a.notes.iter().map(|n| {
                (
                    format!("{} '{}'", a.platform.label(), a.channel.name),
                    n.clone(),
                )
            })
        })
        .collect();
    channel_notes.extend(
        config
            .channel_notes
            .iter()
            .map(|n| ("naming".to_string(), n.clone())),
    );
    channels.notes = grouped_notes(channel_notes);

    let usage = &mut report.usage;
    usage.found = usage_plan.contributions.len() as u64;
    for c in &usage_plan.changed {
        if ledger.contains_key(&c.item) {
            usage.changed += 1;
        } else {
            usage.new += 1;
        }
    }
    usage.unchanged = usage_plan.unchanged;
    for (item, reason) in &usage_plan.skipped {
        usage.skip(item, reason);
    }
    for name in &prepared.unreadable_usage {
        usage.skip(name, "not a readable usage record");
    }
    let mut rows: BTreeSet<(String, String, String)> = logs
        .usage_daily(None)?
        .into_iter()
        .filter(|r| r.key_id.starts_with("crs-"))
        .map(|r| (r.key_id, r.model, r.day))
        .collect();
    if dry_run {
        rows.extend(
            usage_plan
                .contributions
                .iter()
                .map(|c| (c.key_id.clone(), c.model.clone(), c.day.clone())),
        );
    }
    usage.target = rows.len() as u64;
    usage.notes = usage_plan.notes.clone();
    if usage_plan.kept > 0 {
        usage.notes.push(format!(
            "{} row(s) imported earlier have expired from Redis since; they are kept as imported",
            usage_plan.kept
        ));
    }
    let totals = |(figures, cost): (usage::Figures, f64)| Totals {
        requests: figures.requests,
        tokens: figures.tokens(),
        cost,
    };
    report.usage_source = totals(usage_plan.source_total);
    report.usage_imported = totals(usage_plan.imported_total);

    for group in &prepared.groups {
        let users = prepared
            .keys
            .iter()
            .filter(|k| {
                k.key
                    .extra
                    .get(EXTRA)
                    .and_then(|c| c.get("fields"))
                    .is_some_and(|f| {
                        f.as_object().is_some_and(|f| {
                            f.values()
                                .any(|v| v.as_str() == Some(&format!("group:{}", group.id)))
                        })
                    })
            })
            .count();
        let members: Vec<String> = group
            .members
            .iter()
            .map(|m| {
                prepared
                    .accounts
                    .iter()
                    .find(|a| &a.crs_id == m)
                    .map_or_else(|| format!("{m} (not imported)"), |a| a.channel.name.clone())
            })
            .collect();
        report.groups.push(format!(
            "'{}' ({}, members: {}) → the channel allowlist of {users} key(s)",
            group.name,
            group.platform,
            if members.is_empty() {
                "none".to_string()
            } else {
                members.join(", ")
            }
        ));
    }
    for (pool, shared) in &prepared.guarded {
        report.notes.push(format!(
            "the {pool} pool has dedicated accounts: keys without a binding for it may use only its shared channels ({}), as in claude-relay-service; add channels you create later to their allowlists",
            if shared.is_empty() { "none".to_string() } else { shared.join(", ") }
        ));
    }
    let (source_cost, imported_cost) = (report.usage_source.cost, report.usage_imported.cost);
    if (source_cost - imported_cost).abs() > 1e-12 {
        report.notes.push(format!(
            "usage cost differs by ${:.8}: claude-relay-service rounds each request's per-model cost to whole micro-dollars, its key totals are not rounded",
            source_cost - imported_cost
        ));
    }
    if prepared.keys.iter().all(|k| k.legacy.is_none()) && !prepared.keys.is_empty() {
        report.notes.push("no key has a salted hash; nothing to verify the ENCRYPTION_KEY against on the key side".into());
    }
    if prepared.decrypted == 0 && !prepared.keys.is_empty() {
        report.notes.push(
            "no account secret could check the --encryption-key: if it is wrong, the imported keys will not authenticate (add --check-key with one known key to be sure)".into(),
        );
    }
    Ok(report)
}
