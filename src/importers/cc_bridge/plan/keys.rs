//! The database's `api_keys` → key ops, keeping relaybox-only fields of existing keys.

use std::collections::BTreeMap;

use crate::domain::key::KeyAllowlists;
use crate::domain::{ClientKey, Pool};
use crate::importers::cc_bridge::sqlite::ImportedKey;
use crate::store::{ConfigOp, ConfigState, Expect};

/// What importing the `api_keys` table does.
#[derive(Debug, Default)]
pub(crate) struct KeyPlan {
    pub ops: Vec<ConfigOp>,
    pub new: u64,
    pub changed: u64,
    pub unchanged: u64,
    /// `(item, reason)`.
    pub skipped: Vec<(String, String)>,
    pub notes: Vec<String>,
}

/// Upsert the imported keys; fields relaybox has and cc-bridge does not (expiry, other limits,
/// user-agent allowlist, first use) are kept from an existing key of the same id.
/// `pools` maps legacy index allowlist entries to channel ids.
pub(crate) fn plan_keys(
    keys: &[ImportedKey],
    current: &ConfigState,
    pools: Option<&BTreeMap<Pool, Vec<String>>>,
) -> KeyPlan {
    let mut plan = KeyPlan::default();
    // hash → key id as the store will see it while the ops run (hashes are unique).
    let mut hashes = current.key_hashes.clone();
    for imported in keys {
        let mut key = imported.key.clone();
        for (pool, index) in &imported.legacy_channel_indexes {
            let resolved = pools
                .and_then(|pools| pools.get(pool))
                .and_then(|ids| usize::try_from(*index).ok().and_then(|i| ids.get(i)))
                .cloned();
            let entry = resolved.unwrap_or_else(|| {
                plan.notes.push(format!(
                    "key {} ({}): allowlist entry {pool} channel #{index} has no channel in config.json; kept as 'index:{index}' (matches no channel)",
                    key.id, key.name
                ));
                format!("index:{index}")
            });
            channels_of(&mut key.allow, *pool).push(entry);
        }
        if let Some(owner) = hashes.get(&key.hash)
            && *owner != key.id
        {
            plan.skipped.push((
                format!("{} ({})", key.id, key.name),
                format!("key '{owner}' already has the same hash (the same key was imported before under another id)"),
            ));
            continue;
        }
        let desired = match current.keys.get(&key.id) {
            Some(existing) => {
                if existing.hash != key.hash {
                    hashes.remove(&existing.hash);
                }
                merge_key(existing, key)
            }
            None => key,
        };
        hashes.insert(desired.hash.clone(), desired.id.clone());
        match current.keys.get(&desired.id) {
            Some(existing) if *existing == desired => plan.unchanged += 1,
            Some(_) => {
                plan.changed += 1;
                plan.ops.push(ConfigOp::PutKey(desired, Expect::Any));
            }
            None => {
                plan.new += 1;
                plan.ops.push(ConfigOp::PutKey(desired, Expect::Any));
            }
        }
    }
    plan
}

fn channels_of(allow: &mut KeyAllowlists, pool: Pool) -> &mut Vec<String> {
    match pool {
        Pool::Messages => &mut allow.channels_messages,
        Pool::Responses => &mut allow.channels_responses,
        Pool::Gemini => &mut allow.channels_gemini,
        Pool::Chat => &mut allow.channels_chat,
    }
}

fn merge_key(existing: &ClientKey, imported: ClientKey) -> ClientKey {
    let mut key = existing.clone();
    key.name = imported.name;
    key.description = imported.description;
    key.status = imported.status;
    key.is_admin = imported.is_admin;
    key.hash = imported.hash;
    key.display_prefix = imported.display_prefix;
    key.created_at = imported.created_at;
    key.updated_at = imported.updated_at;
    key.limits.requests_per_minute = imported.limits.requests_per_minute;
    key.allow.endpoints = imported.allow.endpoints;
    key.allow.channels_messages = imported.allow.channels_messages;
    key.allow.channels_responses = imported.allow.channels_responses;
    key.allow.channels_gemini = imported.allow.channels_gemini;
    key.allow.channels_chat = imported.allow.channels_chat;
    key.allow.models = imported.allow.models;
    key.extra.extend(imported.extra);
    key
}

#[cfg(test)]
mod tests {
    use serde_json::Map;

    use super::*;

    #[test]
    fn keys_with_one_hash_are_imported_once() {
        use crate::domain::key::KeyStatus;
        let key = |id: &str, hash: &str| ImportedKey {
            key: ClientKey {
                id: id.into(),
                name: id.into(),
                description: String::new(),
                status: KeyStatus::Active,
                is_admin: false,
                hash: hash.into(),
                display_prefix: "sk-".into(),
                legacy_hash: None,
                created_at: time::OffsetDateTime::UNIX_EPOCH,
                updated_at: time::OffsetDateTime::UNIX_EPOCH,
                expiry: None,
                first_used_at: None,
                limits: crate::domain::key::KeyLimits::default(),
                allow: KeyAllowlists::default(),
                version: 0,
                extra: Map::new(),
            },
            legacy_channel_indexes: vec![(Pool::Gemini, 0), (Pool::Chat, 5)],
        };
        let hash = "ab".repeat(32);
        let keys = [key("ccb-1", &hash), key("ccb-2", &hash)];
        let mut pools = BTreeMap::new();
        pools.insert(Pool::Gemini, vec!["g0".to_string()]);
        let plan = plan_keys(&keys, &ConfigState::default(), Some(&pools));
        assert_eq!((plan.new, plan.skipped.len()), (1, 1));
        let mut state = ConfigState::default();
        state.apply_ops(&plan.ops).unwrap();
        assert_eq!(state.keys["ccb-1"].allow.channels_gemini, ["g0"]);
        assert_eq!(
            state.keys["ccb-1"].allow.channels_chat,
            ["index:5"],
            "unresolved: fails closed"
        );
        assert!(plan_keys(&keys[..1], &state, Some(&pools)).ops.is_empty());
    }
}
