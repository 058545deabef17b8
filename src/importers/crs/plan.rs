//! The planned channels and keys against the current state: names made unique per pool,
//! positions, secrets sealed (an unchanged secret keeps its sealed value), and the decision
//! new / changed / unchanged.
//!
//! Each imported record is remembered in `import_history` (`channel/<id>`, `key/<id>`) with a
//! fingerprint of its mapped source: an HMAC-SHA256 keyed with claude-relay-service's
//! `ENCRYPTION_KEY` over the mapping and its plaintext secrets (so nothing about a secret can be
//! learned from it). A record whose fingerprint did not change since the last import is left
//! alone — edits made in relaybox since (a new base URL, a status) stay. A record whose source
//! changed is written again.

use std::collections::{BTreeMap, BTreeSet};

use hmac::{Hmac, KeyInit as _, Mac};
use serde_json::{Map, Value};
use sha2::Sha256;

use super::accounts::AccountPlan;
use super::keys::KeyPlan;
use super::{EXTRA, secret_aad};
use crate::config::aad::{api_key_aad, legacy_salt_aad, oauth_aad};
use crate::crypto::{Cipher, CryptoError, SealedSecret};
use crate::domain::key::LegacyHash;
use crate::domain::{Channel, ClientKey, Pool};
use crate::store::sqlite::ImportEntry;
use crate::store::{ConfigOp, ConfigState, Expect};

/// Bumped when the mapping changes, so every record is compared again.
const MAPPING_VERSION: &str = "crs-import/1";

/// Outcome counts of one entity.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub new: u64,
    pub changed: u64,
    pub unchanged: u64,
}

#[derive(Debug, Default)]
pub struct ConfigPlan {
    pub ops: Vec<ConfigOp>,
    /// `(item, fingerprint, detail)` to record once the ops are applied.
    pub history: Vec<(String, String, String)>,
    pub channels: Counts,
    pub keys: Counts,
    pub channel_notes: Vec<String>,
    pub key_skips: Vec<(String, String)>,
}

fn fingerprint(secret: &str, kind: &str, record: &Value, secrets: &[&str]) -> String {
    let mut mac = <Hmac<Sha256>>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(MAPPING_VERSION.as_bytes());
    mac.update(kind.as_bytes());
    mac.update(record.to_string().as_bytes());
    for s in secrets {
        mac.update(&[0]);
        mac.update(s.as_bytes());
    }
    hex::encode(mac.finalize().into_bytes())
}

/// `existing` when it opens to `plaintext`, else a new seal.
fn seal_or_reuse(
    cipher: &Cipher,
    aad: &str,
    plaintext: &str,
    existing: Option<&SealedSecret>,
) -> Result<SealedSecret, CryptoError> {
    if let Some(sealed) = existing
        && cipher
            .open(aad, sealed)
            .is_ok_and(|open| open.as_str() == plaintext)
    {
        return Ok(sealed.clone());
    }
    cipher.seal(aad, plaintext)
}

fn crs_object(extra: &mut Map<String, Value>) -> &mut Map<String, Value> {
    let entry = extra
        .entry(EXTRA.to_string())
        .or_insert_with(|| Value::Object(Map::new()));
    if !entry.is_object() {
        *entry = Value::Object(Map::new());
    }
    match entry {
        Value::Object(map) => map,
        _ => unreachable!("made an object above"),
    }
}

fn existing_secret(channel: Option<&Channel>, name: &str) -> Option<SealedSecret> {
    let value = channel?
        .extra
        .get(EXTRA)?
        .get("secrets")?
        .get(name)?
        .clone();
    serde_json::from_value(value).ok()
}

/// The channel as it will be stored: secrets sealed (or reused), position and version kept.
fn materialize(
    plan: &AccountPlan,
    channel: &Channel,
    existing: Option<&Channel>,
    cipher: &Cipher,
) -> Result<Channel, CryptoError> {
    let mut out = channel.clone();
    let aad = api_key_aad(&out.id);
    let stored = existing.map(|e| &e.credentials);
    out.credentials = existing.map(|e| e.credentials.clone()).unwrap_or_default();
    out.credentials.api_keys = plan
        .api_keys
        .iter()
        .enumerate()
        .map(|(i, key)| seal_or_reuse(cipher, &aad, key, stored.and_then(|e| e.api_keys.get(i))))
        .collect::<Result<_, _>>()?;
    out.credentials.oauth_tokens = match &plan.oauth_tokens {
        None => None,
        Some(tokens) => {
            let aad = oauth_aad(&out.id);
            let wanted = Value::Object(tokens.clone());
            let reuse = stored
                .and_then(|e| e.oauth_tokens.as_ref())
                .filter(|sealed| {
                    cipher
                        .open(&aad, sealed)
                        .ok()
                        .and_then(|text| serde_json::from_str::<Value>(&text).ok())
                        .is_some_and(|v| v == wanted)
                });
            Some(match reuse {
                Some(sealed) => sealed.clone(),
                None => cipher.seal(&aad, &wanted.to_string())?,
            })
        }
    };
    if !plan.secrets.is_empty() {
        let mut sealed = Map::new();
        for (name, plaintext) in &plan.secrets {
            let value = seal_or_reuse(
                cipher,
                &secret_aad(&out.id, name),
                plaintext,
                existing_secret(existing, name).as_ref(),
            )?;
            sealed.insert(name.clone(), Value::String(value.as_str().to_string()));
        }
        crs_object(&mut out.extra).insert("secrets".into(), Value::Object(sealed));
    }
    if let Some(existing) = existing {
        out.version = existing.version;
    }
    Ok(out)
}

/// Plan the channels: unique names per pool, positions, and what changes.
pub fn plan_channels(
    plan: &mut ConfigPlan,
    accounts: &[AccountPlan],
    state: &ConfigState,
    history: &BTreeMap<String, ImportEntry>,
    cipher: &Cipher,
    secret: &str,
) -> Result<(), CryptoError> {
    let mut order: Vec<&AccountPlan> = accounts.iter().collect();
    order.sort_by(|a, b| {
        (a.channel.pool, a.created, &a.crs_id).cmp(&(b.channel.pool, b.created, &b.crs_id))
    });
    let mut taken: BTreeMap<Pool, BTreeSet<String>> = BTreeMap::new();
    let mut next_position: BTreeMap<Pool, u32> = BTreeMap::new();
    for channel in state.channels.values() {
        let position = next_position.entry(channel.pool).or_insert(0);
        *position = (*position).max(channel.position.saturating_add(1));
        if !accounts.iter().any(|a| a.channel.id == channel.id) {
            taken
                .entry(channel.pool)
                .or_default()
                .insert(channel.name.to_lowercase());
        }
    }
    for account in order {
        let mut channel = account.channel.clone();
        let names = taken.entry(channel.pool).or_default();
        if names.contains(&channel.name.to_lowercase()) {
            let short = &account.crs_id[..account.crs_id.len().min(8)];
            let mut renamed = format!("{} (crs {short})", channel.name);
            if names.contains(&renamed.to_lowercase()) {
                renamed = format!("{} (crs {})", channel.name, account.crs_id);
            }
            plan.channel_notes.push(format!(
                "{} {}: the {} pool already has a channel named '{}'; imported as '{renamed}'",
                account.platform.label(),
                account.crs_id,
                channel.pool,
                channel.name
            ));
            channel.name = renamed;
        }
        names.insert(channel.name.to_lowercase());
        let existing = state.channels.get(&channel.id);
        channel.position = match existing {
            Some(existing) => existing.position,
            None => {
                let position = next_position.entry(channel.pool).or_insert(0);
                let mine = *position;
                *position = position.saturating_add(1);
                mine
            }
        };
        let item = format!("channel/{}", channel.id);
        let mut plain_secrets: Vec<&str> = account.api_keys.iter().map(|k| k.as_str()).collect();
        let oauth_text = account
            .oauth_tokens
            .as_ref()
            .map(|t| Value::Object(t.clone()).to_string());
        plain_secrets.extend(oauth_text.as_deref());
        plain_secrets.extend(
            account
                .secrets
                .iter()
                .flat_map(|(n, v)| [n.as_str(), v.as_str()]),
        );
        let mut fingerprinted = channel.clone();
        fingerprinted.position = 0;
        let record = serde_json::to_value(&fingerprinted).unwrap_or(Value::Null);
        let fp = fingerprint(secret, "channel", &record, &plain_secrets);
        let detail = format!("{} '{}'", account.platform.label(), channel.name);
        if existing.is_some() && history.get(&item).is_some_and(|h| h.sha256 == fp) {
            plan.channels.unchanged += 1;
            continue;
        }
        let desired = materialize(account, &channel, existing, cipher)?;
        match existing {
            Some(existing) if *existing == desired => plan.channels.unchanged += 1,
            Some(_) => {
                plan.channels.changed += 1;
                plan.ops.push(ConfigOp::PutChannel(desired, Expect::Any));
            }
            None => {
                plan.channels.new += 1;
                plan.ops.push(ConfigOp::PutChannel(desired, Expect::Any));
            }
        }
        plan.history.push((item, fp, detail));
    }
    Ok(())
}

/// Plan the keys: legacy salt sealed, what changes, hash clashes skipped.
pub fn plan_keys(
    plan: &mut ConfigPlan,
    keys: &[KeyPlan],
    state: &ConfigState,
    history: &BTreeMap<String, ImportEntry>,
    cipher: &Cipher,
    secret: &str,
) -> Result<Vec<String>, CryptoError> {
    let mut imported = Vec::new();
    for planned in keys {
        let key = &planned.key;
        if let Some(owner) = state.key_hashes.get(&key.hash)
            && *owner != key.id
        {
            plan.key_skips.push((
                format!("apikey:{} ({})", planned.crs_id, key.name),
                format!("relaybox key '{owner}' already has the same hash"),
            ));
            continue;
        }
        imported.push(planned.crs_id.clone());
        let item = format!("key/{}", key.id);
        let record = serde_json::to_value(key).unwrap_or(Value::Null);
        let salt = planned.legacy.as_ref().map(|_| secret);
        let fp = fingerprint(
            secret,
            "key",
            &record,
            &[planned.legacy.as_deref().unwrap_or(""), salt.unwrap_or("")],
        );
        let existing = state.keys.get(&key.id);
        if existing.is_some() && history.get(&item).is_some_and(|h| h.sha256 == fp) {
            plan.keys.unchanged += 1;
            continue;
        }
        let desired = materialize_key(planned, existing, cipher, secret)?;
        match existing {
            Some(existing) if *existing == desired => plan.keys.unchanged += 1,
            Some(_) => {
                plan.keys.changed += 1;
                plan.ops.push(ConfigOp::PutKey(desired, Expect::Any));
            }
            None => {
                plan.keys.new += 1;
                plan.ops.push(ConfigOp::PutKey(desired, Expect::Any));
            }
        }
        plan.history.push((item, fp, format!("key '{}'", key.name)));
    }
    Ok(imported)
}

fn materialize_key(
    planned: &KeyPlan,
    existing: Option<&ClientKey>,
    cipher: &Cipher,
    salt: &str,
) -> Result<ClientKey, CryptoError> {
    let mut key = planned.key.clone();
    if let Some(hash) = &planned.legacy {
        let aad = legacy_salt_aad(&key.id);
        let sealed = seal_or_reuse(
            cipher,
            &aad,
            salt,
            existing
                .and_then(|e| e.legacy_hash.as_ref())
                .map(|l| &l.salt),
        )?;
        key.legacy_hash = Some(LegacyHash {
            hash: hash.clone(),
            salt: sealed,
        });
    }
    if let Some(existing) = existing {
        key.version = existing.version;
        // relaybox stamped a first use since: keep it.
        if key.first_used_at.is_none() {
            key.first_used_at = existing.first_used_at;
        }
    }
    Ok(key)
}
