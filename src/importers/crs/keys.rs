//! API keys → client keys (format notes §2).
//!
//! The key itself stays what the client has: relaybox stores claude-relay-service's hash
//! `sha256(key + ENCRYPTION_KEY)` as the key's `legacyHash` (the salt sealed) and accepts a
//! presented key whose salted hash matches. Its `hash` (the unsalted SHA-256 relaybox normally
//! looks keys up by) is unknown, so it is the placeholder `crs-legacy:<their hash>`: unique, and
//! never equal to a SHA-256 hex digest, so no presented key can match it.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::accounts::Group;
use super::record::{Record, string_list};
use super::source::{Snapshot, Value as RedisValue};
use crate::domain::key::{Expiry, KeyAllowlists, KeyLimits, WindowLimit};
use crate::domain::{ClientKey, KeyStatus, Pool};

/// `hash` of an imported key whose plaintext is unknown.
pub const PLACEHOLDER_PREFIX: &str = "crs-legacy:";
/// An allowlist entry that matches no channel: keeps a key off every channel of a pool.
pub const NO_CHANNEL: &str = "crs-no-shared-account";

/// One key, mapped (the legacy salt is sealed by the planner).
#[derive(Debug, Clone)]
pub struct KeyPlan {
    pub crs_id: String,
    /// `legacy_hash` is `None` here; see `legacy`.
    pub key: ClientKey,
    /// claude-relay-service's `sha256(key + ENCRYPTION_KEY)`, when its record has one.
    pub legacy: Option<String>,
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySkip {
    pub item: String,
    pub reason: String,
}

/// Where a key binding can point: account id → (channel id, pool), and the guard for keys
/// without a binding.
#[derive(Debug, Default)]
pub struct Bindings {
    pub channels: BTreeMap<String, (String, Pool)>,
    /// Pools that have dedicated channels relaybox would route to: keys without a binding for
    /// such a pool get its shared channels as their allowlist (claude-relay-service gives them
    /// only the shared pool).
    pub guarded: BTreeMap<Pool, Vec<String>>,
    pub groups: BTreeMap<String, Group>,
}

/// claude-relay-service client ids → user-agent substrings (their validators match these at
/// the start of `User-Agent`) and the endpoints the client may use.
const CLIENTS: &[(&str, &[&str], &[&str])] = &[
    ("claude_code", &["claude-cli/"], &["messages"]),
    ("gemini_cli", &["GeminiCLI/"], &["gemini"]),
    (
        "codex_cli",
        &["codex_cli_rs/", "codex_vscode/", "codex_exec/"],
        &["responses"],
    ),
    ("droid_cli", &["factory-cli/"], &["droid"]),
];

/// claude-relay-service permission → relaybox endpoints (pools). `droid` has no relaybox
/// endpoint: kept literally, it matches none.
fn endpoints_of(permission: &str) -> Vec<String> {
    match permission {
        "claude" => vec!["messages".into()],
        "gemini" => vec!["gemini".into()],
        "openai" => vec!["responses".into(), "chat".into()],
        other => vec![other.to_string()],
    }
}

/// Fields mapped onto relaybox's key fields, or volatile (`lastUsedAt`), or bulky (`icon`).
const NOT_KEPT: &[&str] = &[
    "apiKey",
    "id",
    "name",
    "description",
    "createdAt",
    "updatedAt",
    "lastUsedAt",
    "icon",
];

pub fn read_keys(
    snapshot: &Snapshot,
    bindings: &Bindings,
    now: OffsetDateTime,
) -> (Vec<KeyPlan>, Vec<KeySkip>, u64) {
    let mut plans = Vec::new();
    let mut skips = Vec::new();
    let mut found = 0;
    for (id, value) in snapshot.with_prefix("apikey:") {
        if id.contains(':') || id == "hash_map" {
            continue;
        }
        found += 1;
        let item = format!("apikey:{id}");
        let RedisValue::Hash(fields) = value else {
            skips.push(KeySkip {
                item,
                reason: "not a hash".into(),
            });
            continue;
        };
        let record = Record::from_hash(fields);
        match map_key(id, &record, bindings, now) {
            Ok(plan) => plans.push(plan),
            Err(reason) => skips.push(KeySkip {
                item: format!("{item} ({})", record.text("name")),
                reason,
            }),
        }
    }
    (plans, skips, found)
}

fn is_sha256_hex(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

fn map_key(
    id: &str,
    record: &Record,
    bindings: &Bindings,
    now: OffsetDateTime,
) -> Result<KeyPlan, String> {
    let mut notes = Vec::new();
    let stored = record
        .get("apiKey")
        .ok_or_else(|| "it has no apiKey (hash) field".to_string())?;
    let (hash, legacy, display_prefix) = if is_sha256_hex(stored) {
        let legacy = stored.to_ascii_lowercase();
        (
            format!("{PLACEHOLDER_PREFIX}{legacy}"),
            Some(legacy),
            "cr_…".to_string(),
        )
    } else {
        // Old imports kept the plaintext (their own import script hashes it).
        notes.push("its key was stored in plaintext in Redis; only its SHA-256 is kept".into());
        (
            crate::crypto::hash_client_key(stored),
            None,
            crate::crypto::display_prefix(stored),
        )
    };
    let created = record.time("createdAt").unwrap_or(now);
    let updated = record.time("updatedAt").unwrap_or(created);
    let mut crs = Map::new();
    crs.insert("id".into(), Value::String(id.to_string()));

    // State: deleted → revoked, inactive → disabled.
    let status = if record.flag("isDeleted", false) {
        let note = format!(
            "soft-deleted in claude-relay-service{}{}",
            record
                .get("deletedAt")
                .map(|at| format!(" at {at}"))
                .unwrap_or_default(),
            record
                .get("deletedBy")
                .map(|by| format!(" by {by}"))
                .unwrap_or_default()
        );
        crs.insert("note".into(), Value::String(note.clone()));
        notes.push(format!("{note} → revoked"));
        KeyStatus::Revoked
    } else if !record.flag("isActive", true) {
        KeyStatus::Disabled
    } else {
        KeyStatus::Active
    };

    // Expiry and activation.
    let mut first_used_at = None;
    let expiry = if record.text("expirationMode") == "activation" {
        let period = record.number("activationDays").unwrap_or(0.0);
        let hours = record.text("activationUnit") == "hours";
        let days = if hours { period / 24.0 } else { period };
        let whole_days = u32::try_from(days.ceil().max(1.0) as i64).unwrap_or(u32::MAX);
        let activated = record.flag("isActivated", false);
        match (
            activated,
            record.time("activatedAt"),
            record.time("expiresAt"),
        ) {
            (true, Some(at), Some(expires)) => {
                first_used_at = Some(at);
                let expected = at + time::Duration::days(i64::from(whole_days));
                if (expected - expires).abs() <= time::Duration::minutes(1) {
                    Some(Expiry::AfterFirstUse { days: whole_days })
                } else {
                    notes.push(format!(
                        "activated at {}; it expires at {} (a fixed date: its period is not a whole number of days, or was changed)",
                        at.format(&Rfc3339).unwrap_or_default(),
                        expires.format(&Rfc3339).unwrap_or_default()
                    ));
                    Some(Expiry::FixedAt {
                        expires_at: expires,
                    })
                }
            }
            (true, Some(at), None) => {
                first_used_at = Some(at);
                Some(Expiry::AfterFirstUse { days: whole_days })
            }
            _ => {
                if (days - days.ceil()).abs() > f64::EPSILON || period <= 0.0 {
                    notes.push(format!(
                        "activation period {period} {} → {whole_days} day(s) after first use (relaybox counts whole days)",
                        if hours { "hours" } else { "days" }
                    ));
                }
                Some(Expiry::AfterFirstUse { days: whole_days })
            }
        }
    } else {
        record
            .time("expiresAt")
            .map(|expires_at| Expiry::FixedAt { expires_at })
    };
    if let Some(Expiry::FixedAt { expires_at }) = &expiry
        && *expires_at <= now
    {
        notes.push(format!(
            "expired at {}: kept expired",
            expires_at.format(&Rfc3339).unwrap_or_default()
        ));
    }

    // Limits.
    let mut limits = KeyLimits {
        concurrent_requests: record
            .positive("concurrencyLimit")
            .map(|n| u32::try_from(n.round() as i64).unwrap_or(u32::MAX)),
        cost_per_day: record.positive("dailyCostLimit"),
        cost_total: record.positive("totalCostLimit"),
        ..KeyLimits::default()
    };
    let token_limit = record.positive("tokenLimit");
    let request_limit = record.positive("rateLimitRequests");
    let cost_limit = record.positive("rateLimitCost");
    match record.positive("rateLimitWindow") {
        Some(minutes) => {
            let window_seconds = (minutes * 60.0).round() as u64;
            limits.requests_per_window = request_limit.map(|limit| WindowLimit {
                limit,
                window_seconds,
            });
            if let Some(limit) = token_limit {
                limits.tokens_per_window = Some(WindowLimit {
                    limit,
                    window_seconds,
                });
                if cost_limit.is_some() {
                    notes.push(
                        "rateLimitCost is not mapped: claude-relay-service enforces tokenLimit instead when both are set (kept in extra)".into(),
                    );
                }
            } else {
                limits.cost_per_window = cost_limit.map(|limit| WindowLimit {
                    limit,
                    window_seconds,
                });
            }
        }
        None => {
            if token_limit.is_some() || request_limit.is_some() || cost_limit.is_some() {
                notes.push(
                    "tokenLimit/rateLimitRequests/rateLimitCost are not mapped: rateLimitWindow is 0, so claude-relay-service did not enforce them either (kept in extra)".into(),
                );
            }
        }
    }
    if limits.cost_per_day.is_some() {
        notes.push(
            "dailyCostLimit: claude-relay-service's day starts at midnight of its TIMEZONE_OFFSET, relaybox's at midnight UTC".into(),
        );
    }
    if let Some(weekly) = record.positive("weeklyOpusCostLimit") {
        notes.push(format!(
            "weeklyOpusCostLimit ${weekly} has no relaybox equivalent: kept in extra, not enforced"
        ));
    }
    if record.get("serviceRates").is_some_and(|r| r != "{}") {
        notes.push(format!(
            "serviceRates {} kept in extra: relaybox does not multiply a key's cost (imported usage keeps the rated cost)",
            record.text("serviceRates")
        ));
    }

    // Endpoints (permissions, narrowed by a client restriction) and user agents.
    let permissions = string_list(record.text("permissions"));
    let all = permissions.is_empty() || permissions.iter().any(|p| p == "all");
    let mut endpoints: Vec<String> = if all {
        Vec::new()
    } else {
        let mut list = Vec::new();
        for permission in &permissions {
            for endpoint in endpoints_of(permission) {
                if !list.contains(&endpoint) {
                    list.push(endpoint);
                }
            }
        }
        list
    };
    let mut user_agents = Vec::new();
    let clients = string_list(record.text("allowedClients"));
    if record.flag("enableClientRestriction", false) && !clients.is_empty() {
        let mut client_endpoints: Vec<String> = Vec::new();
        for client in &clients {
            match CLIENTS.iter().find(|(id, _, _)| id == client) {
                Some((_, agents, pools)) => {
                    user_agents.extend(agents.iter().map(|a| (*a).to_string()));
                    client_endpoints.extend(pools.iter().map(|p| (*p).to_string()));
                }
                None => {
                    notes.push(format!(
                        "allowed client '{client}' is unknown; kept as a user-agent substring"
                    ));
                    user_agents.push(client.clone());
                }
            }
        }
        endpoints = if all {
            client_endpoints
        } else {
            endpoints
                .into_iter()
                .filter(|e| client_endpoints.contains(e))
                .collect()
        };
        if endpoints.is_empty() {
            endpoints.push("none".into());
            notes.push(
                "its permissions and allowed clients have no endpoint in common: it may use none"
                    .into(),
            );
        }
        notes.push(format!(
            "allowed clients {} → user agents containing {}",
            clients.join(", "),
            user_agents.join(" or ")
        ));
    }
    if record.flag("enableModelRestriction", false) {
        let blocked = string_list(record.text("restrictedModels"));
        if !blocked.is_empty() {
            notes.push(format!(
                "model blacklist {} kept in extra: relaybox's model allowlist cannot express a blacklist, so it is NOT enforced",
                blocked.join(", ")
            ));
        }
    }

    // Channel bindings.
    let mut allow = KeyAllowlists {
        endpoints,
        user_agents,
        ..KeyAllowlists::default()
    };
    let mut bound: BTreeMap<Pool, Vec<String>> = BTreeMap::new();
    for (field, pool) in [
        ("claudeAccountId", Pool::Messages),
        ("claudeConsoleAccountId", Pool::Messages),
        ("ccrAccountId", Pool::Messages),
        ("bedrockAccountId", Pool::Messages),
        ("geminiAccountId", Pool::Gemini),
        ("openaiAccountId", Pool::Responses),
        ("azureOpenaiAccountId", Pool::Chat),
    ] {
        let Some(binding) = record.get(field) else {
            continue;
        };
        let members: Vec<String> = match binding.strip_prefix("group:") {
            Some(group_id) => match bindings.groups.get(group_id) {
                Some(group) => {
                    notes.push(format!(
                        "{field} is group '{}' ({} member(s)) → its member channels",
                        group.name,
                        group.members.len()
                    ));
                    group.members.clone()
                }
                None => {
                    notes.push(format!(
                        "{field} names group {group_id}, which does not exist: its {pool} requests match no channel"
                    ));
                    bound
                        .entry(pool)
                        .or_default()
                        .push(format!("crs-group-{group_id}"));
                    continue;
                }
            },
            None => {
                let account = binding
                    .strip_prefix("api:")
                    .or_else(|| binding.strip_prefix("responses:"))
                    .unwrap_or(binding);
                vec![account.to_string()]
            }
        };
        for account in members {
            match bindings.channels.get(&account) {
                Some((channel, channel_pool)) => bound
                    .entry(*channel_pool)
                    .or_default()
                    .push(channel.clone()),
                None => {
                    notes.push(format!(
                        "{field}: account {account} was not imported: its {pool} requests match no channel"
                    ));
                    bound
                        .entry(pool)
                        .or_default()
                        .push(super::channel_id(&account));
                }
            }
        }
    }
    if record.get("droidAccountId").is_some() {
        notes.push("droidAccountId kept in extra: relaybox has no Droid endpoints".into());
    }
    for pool in Pool::ALL {
        let usable =
            allow.endpoints.is_empty() || allow.endpoints.iter().any(|e| e == pool.as_str());
        let list = match bound.remove(&pool) {
            Some(mut channels) => {
                let mut seen = BTreeSet::new();
                channels.retain(|c| seen.insert(c.clone()));
                channels
            }
            None if !usable => Vec::new(),
            None => match bindings.guarded.get(&pool) {
                Some(shared) if shared.is_empty() => vec![NO_CHANNEL.to_string()],
                Some(shared) => shared.clone(),
                None => Vec::new(),
            },
        };
        *channels_of(&mut allow, pool) = list;
    }

    // Everything else, kept.
    let mut fields = Map::new();
    for (field, value) in &record.fields {
        if !value.is_empty() && !NOT_KEPT.contains(&field.as_str()) {
            fields.insert(field.clone(), Value::String(value.clone()));
        }
    }
    crs.insert("fields".into(), Value::Object(fields));
    let mut extra = Map::new();
    extra.insert(super::EXTRA.into(), Value::Object(crs));

    let key = ClientKey {
        id: super::key_id(id),
        name: record
            .get("name")
            .map_or_else(|| format!("crs-{id}"), str::to_string),
        description: record.text("description").to_string(),
        status,
        is_admin: false,
        hash,
        display_prefix,
        legacy_hash: None,
        created_at: created,
        updated_at: updated,
        expiry,
        first_used_at,
        limits,
        allow,
        version: 0,
        extra,
    };
    Ok(KeyPlan {
        crs_id: id.to_string(),
        key,
        legacy,
        notes,
    })
}

pub(crate) fn channels_of(allow: &mut KeyAllowlists, pool: Pool) -> &mut Vec<String> {
    match pool {
        Pool::Messages => &mut allow.channels_messages,
        Pool::Responses => &mut allow.channels_responses,
        Pool::Gemini => &mut allow.channels_gemini,
        Pool::Chat => &mut allow.channels_chat,
    }
}
