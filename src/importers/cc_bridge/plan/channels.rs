//! `config.json` → channel ops (sealed secrets, deletions for the data dir's own file, an
//! order of puts the store accepts) and the settings op.

use std::collections::{BTreeSet, HashMap};

use serde_json::{Map, Value};

use super::parsed_config::{SourceChannel, parse_config};
use super::settings::settings_from;
use crate::crypto::{Cipher, SealedSecret};
use crate::domain::channel::{ChannelOrigin, Credentials};
use crate::domain::{Channel, ChannelStatus, Pool};
use crate::importers::cc_bridge::{ConfigFile, FileError};
use crate::importers::{api_key_aad, oauth_aad};
use crate::store::{ConfigOp, ConfigState, Expect};

/// What a `config.json` plan does, for the import report.
#[derive(Debug, Default)]
pub(crate) struct ConfigPlan {
    pub ops: Vec<ConfigOp>,
    pub found: u64,
    pub new: u64,
    pub changed: u64,
    pub unchanged: u64,
    pub removed: u64,
}

/// Parse + validate `config.json`; return the ops that make the store match it (empty when the
/// store already matches, so importing twice changes nothing).
///
/// - Channels of all four pools are upserted with [`Expect::Any`]; their `apiKeys` and
///   `oauthTokens` are sealed with [`api_key_aad`] / [`oauth_aad`].
/// - `origin == ConfigFile`: channels of that origin no longer in the file are deleted;
///   channels created in the admin UI are never touched (a file that claims one's id is
///   rejected). `origin == Import`: upsert only; an existing channel keeps its origin.
/// - Settings are replaced by the file's, keeping relaybox's own fields.
pub fn plan_config(
    bytes: &[u8],
    current: &ConfigState,
    cipher: &Cipher,
    origin: ChannelOrigin,
) -> Result<Vec<ConfigOp>, FileError> {
    Ok(plan_config_detailed(bytes, current, cipher, origin)?.ops)
}

pub(crate) fn plan_config_detailed(
    bytes: &[u8],
    current: &ConfigState,
    cipher: &Cipher,
    origin: ChannelOrigin,
) -> Result<ConfigPlan, FileError> {
    let parsed = parse_config(bytes)?;
    let mut plan = ConfigPlan {
        found: parsed.channels.len() as u64,
        ..ConfigPlan::default()
    };
    let file_ids: BTreeSet<&str> = parsed.channels.iter().map(|c| c.id.as_str()).collect();

    if origin == ChannelOrigin::ConfigFile {
        for channel in &parsed.channels {
            if let Some(existing) = current.channels.get(&channel.id)
                && existing.origin == ChannelOrigin::Admin
            {
                return Err(FileError::semantic(
                    ConfigFile::Config,
                    Some(format!("{}[{}].id", channel.key, channel.index)),
                    format!(
                        "channel id '{}' belongs to the channel '{}' created in the admin UI; config.json cannot take it over (change or remove this id)",
                        channel.id, existing.name
                    ),
                ));
            }
        }
    }
    let removed: BTreeSet<&str> = if origin == ChannelOrigin::ConfigFile {
        current
            .channels
            .values()
            .filter(|c| c.origin == ChannelOrigin::ConfigFile && !file_ids.contains(c.id.as_str()))
            .map(|c| c.id.as_str())
            .collect()
    } else {
        BTreeSet::new()
    };
    for channel in &parsed.channels {
        let name = channel.src.name.trim();
        let clash = current.channels.values().find(|c| {
            c.pool == channel.pool
                && !file_ids.contains(c.id.as_str())
                && !removed.contains(c.id.as_str())
                && c.name.trim().eq_ignore_ascii_case(name)
        });
        if let Some(clash) = clash {
            return Err(FileError::semantic(
                ConfigFile::Config,
                Some(format!("{}[{}].name", channel.key, channel.index)),
                format!(
                    "the {} pool already has a channel named '{}' (id {}) that this file does not manage; rename one of them",
                    channel.pool, clash.name, clash.id
                ),
            ));
        }
    }

    let mut puts = Vec::new();
    for channel in &parsed.channels {
        let existing = current.channels.get(&channel.id);
        let desired = build_channel(channel, existing, cipher, origin)?;
        match existing {
            Some(existing) if *existing == desired => plan.unchanged += 1,
            Some(_) => {
                plan.changed += 1;
                puts.push(desired);
            }
            None => {
                plan.new += 1;
                puts.push(desired);
            }
        }
    }
    plan.removed = removed.len() as u64;
    plan.ops.extend(
        removed
            .iter()
            .map(|id| ConfigOp::DeleteChannel((*id).to_string(), Expect::Any)),
    );
    order_channel_puts(current, &removed, puts, &mut plan.ops);

    let settings = settings_from(&parsed, &current.settings);
    if settings != current.settings {
        plan.ops.push(ConfigOp::PutSettings(settings, Expect::Any));
    }

    // The store enforces unique names per pool after every op; make sure this plan applies.
    current.clone().apply_ops(&plan.ops).map_err(|err| {
        FileError::semantic(
            ConfigFile::Config,
            None,
            format!("the channels cannot be stored: {err}"),
        )
    })?;
    Ok(plan)
}

fn crypto_error(err: &crate::crypto::CryptoError) -> FileError {
    FileError::semantic(
        ConfigFile::Config,
        None,
        format!("sealing an upstream secret failed: {err}"),
    )
}

/// The channel's credentials after this file. A file that still names the secrets it named
/// when it was last applied (same digest) leaves the stored ones in place, even when they were
/// rotated since through the admin API; a file whose secrets changed wins. Secrets equal to the
/// stored ones keep their sealed form, so an unchanged file changes nothing.
fn file_credentials(
    source: &SourceChannel,
    existing: Option<&Channel>,
    cipher: &Cipher,
) -> Result<Credentials, FileError> {
    let src = &source.src;
    let id = source.id.as_str();
    let digest = secrets_digest(id, &src.api_keys, src.oauth_tokens.as_ref());
    if let Some(existing) = existing
        && existing.credentials.file_digest.as_deref() == Some(digest.as_str())
    {
        return Ok(existing.credentials.clone());
    }
    let stored = existing.map(|e| &e.credentials);
    let key_aad = api_key_aad(id);
    let mut api_keys = Vec::with_capacity(src.api_keys.len());
    for (i, plaintext) in src.api_keys.iter().enumerate() {
        let same = stored.and_then(|e| e.api_keys.get(i)).filter(|sealed| {
            cipher
                .open(&key_aad, sealed)
                .is_ok_and(|open| open.as_str() == plaintext.as_str())
        });
        api_keys.push(match same {
            Some(sealed) => sealed.clone(),
            None => cipher
                .seal(&key_aad, plaintext)
                .map_err(|e| crypto_error(&e))?,
        });
    }
    let oauth_tokens = match &src.oauth_tokens {
        None => None,
        Some(tokens) => {
            let value = Value::Object(tokens.clone());
            let aad = oauth_aad(id);
            let same = stored
                .and_then(|e| e.oauth_tokens.as_ref())
                .filter(|sealed| {
                    cipher
                        .open(&aad, sealed)
                        .ok()
                        .and_then(|open| serde_json::from_str::<Value>(&open).ok())
                        .is_some_and(|opened| opened == value)
                });
            Some(match same {
                Some(sealed) => sealed.clone(),
                None => seal_json(cipher, &aad, &value)?,
            })
        }
    };
    Ok(Credentials {
        api_keys,
        oauth_tokens,
        version: stored.map_or(0, |c| c.version),
        file_digest: Some(digest),
    })
}

/// SHA-256 over a channel's secrets as a file gives them (keys are long random strings, so
/// the digest reveals nothing usable; it only tells "the file says the same as before").
fn secrets_digest(id: &str, api_keys: &[String], oauth: Option<&Map<String, Value>>) -> String {
    use sha2::{Digest as _, Sha256};
    let mut hash = Sha256::new();
    hash.update(id.as_bytes());
    for key in api_keys {
        hash.update([0]);
        hash.update(key.as_bytes());
    }
    if let Some(tokens) = oauth {
        hash.update([1]);
        hash.update(Value::Object(tokens.clone()).to_string().as_bytes());
    }
    hex::encode(hash.finalize())
}

fn build_channel(
    source: &SourceChannel,
    existing: Option<&Channel>,
    cipher: &Cipher,
    origin: ChannelOrigin,
) -> Result<Channel, FileError> {
    let src = &source.src;
    let id = source.id.as_str();

    let credentials = file_credentials(source, existing, cipher)?;
    let origin = match (origin, existing) {
        (ChannelOrigin::Import, Some(existing)) => existing.origin,
        (origin, _) => origin,
    };
    let status = match src.status.as_str() {
        "suspended" => ChannelStatus::Suspended,
        "disabled" => ChannelStatus::Disabled,
        _ => ChannelStatus::Active,
    };
    Ok(Channel {
        id: id.to_string(),
        pool: source.pool,
        name: src.name.clone(),
        service_type: src.service_type.trim().to_string(),
        base_url: src.base_url.trim().to_string(),
        credentials,
        key_load_balance: src.key_load_balance.clone(),
        description: src.description.clone(),
        website: src.website.clone(),
        insecure_skip_verify: src.insecure_skip_verify,
        model_mapping: src.model_mapping.clone(),
        response_header_timeout: src.response_header_timeout,
        priority: src.priority,
        status,
        promotion_until: src.promotion_until.clone(),
        price_multipliers: src.price_multipliers.clone(),
        quota_type: src.quota_type.clone(),
        quota_limit: src.quota_limit,
        quota_reset_at: src.quota_reset_at.clone(),
        quota_reset_interval: src.quota_reset_interval,
        quota_reset_unit: src.quota_reset_unit.clone(),
        quota_reset_mode: src.quota_reset_mode.clone(),
        quota_models: src.quota_models.clone(),
        rate_limit_rpm: src.rate_limit_rpm,
        queue_enabled: src.queue_enabled,
        queue_timeout: src.queue_timeout,
        composite_mappings: src
            .composite_mappings
            .iter()
            .cloned()
            .map(Value::Object)
            .collect(),
        position: u32::try_from(source.index).unwrap_or(u32::MAX),
        origin,
        version: existing.map_or(0, |e| e.version),
        extra: source.extra.clone(),
        stream_idle_timeout_seconds: None,
    })
}

fn seal_json(cipher: &Cipher, aad: &str, value: &Value) -> Result<SealedSecret, FileError> {
    let text = zeroize::Zeroizing::new(value.to_string());
    cipher.seal(aad, &text).map_err(|e| crypto_error(&e))
}

/// Append the channel puts in an order the store accepts: it checks unique names per pool after
/// every op, so a channel taking a name another file channel gives up waits for that one, and a
/// cycle of renames (`a`↔`b`) parks one channel under a temporary name first.
fn order_channel_puts(
    current: &ConfigState,
    removed: &BTreeSet<&str>,
    puts: Vec<Channel>,
    ops: &mut Vec<ConfigOp>,
) {
    type Slot = (Pool, String);
    let slot_of = |c: &Channel| (c.pool, c.name.to_ascii_lowercase());
    let mut owner: HashMap<Slot, String> = HashMap::new();
    let mut held: HashMap<String, Slot> = HashMap::new();
    for channel in current
        .channels
        .values()
        .filter(|c| !removed.contains(c.id.as_str()))
    {
        owner.insert(slot_of(channel), channel.id.clone());
        held.insert(channel.id.clone(), slot_of(channel));
    }
    let mut claim = |id: &str, slot: Slot, owner: &mut HashMap<Slot, String>| {
        if let Some(old) = held.remove(id)
            && owner.get(&old).is_some_and(|o| o == id)
        {
            owner.remove(&old);
        }
        owner.insert(slot.clone(), id.to_string());
        held.insert(id.to_string(), slot);
    };

    let mut pending = puts;
    let mut rounds = 0;
    while !pending.is_empty() {
        rounds += 1;
        let before = pending.len();
        let mut waiting = Vec::new();
        for channel in pending {
            let slot = slot_of(&channel);
            if owner.get(&slot).is_some_and(|id| *id != channel.id) {
                waiting.push(channel);
            } else {
                claim(&channel.id, slot, &mut owner);
                ops.push(ConfigOp::PutChannel(channel, Expect::Any));
            }
        }
        if waiting.len() == before {
            if rounds > before * 2 + 2 {
                // Cannot happen with names unique in the file; let the store report it.
                ops.extend(
                    waiting
                        .into_iter()
                        .map(|c| ConfigOp::PutChannel(c, Expect::Any)),
                );
                return;
            }
            let mut parked = waiting[0].clone();
            parked.name = format!("{} (renaming {})", parked.name, parked.id);
            claim(&parked.id, slot_of(&parked), &mut owner);
            ops.push(ConfigOp::PutChannel(parked, Expect::Any));
        }
        pending = waiting;
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::Map;

    use super::*;
    use crate::crypto::MasterSecret;
    use crate::importers::cc_bridge::derived_channel_id;

    fn cipher() -> Cipher {
        let master = MasterSecret::from_text(&MasterSecret::generate_text().unwrap());
        Cipher::create(&master).unwrap().0
    }

    #[test]
    fn renaming_cycle_is_ordered_through_a_parked_name() {
        let cipher = cipher();
        let first = br#"{"upstream": [
            {"id": "aaaa0001", "name": "alpha", "serviceType": "claude", "baseUrl": "https://a.example"},
            {"id": "aaaa0002", "name": "beta", "serviceType": "claude", "baseUrl": "https://b.example"}]}"#;
        let mut state = ConfigState::default();
        let ops = plan_config(first, &state, &cipher, ChannelOrigin::ConfigFile).unwrap();
        state.apply_ops(&ops).unwrap();
        let swapped = br#"{"upstream": [
            {"id": "aaaa0001", "name": "BETA", "serviceType": "claude", "baseUrl": "https://a.example"},
            {"id": "aaaa0002", "name": "alpha", "serviceType": "claude", "baseUrl": "https://b.example"}]}"#;
        let ops = plan_config(swapped, &state, &cipher, ChannelOrigin::ConfigFile).unwrap();
        state.apply_ops(&ops).unwrap();
        assert_eq!(state.channels["aaaa0001"].name, "BETA");
        assert_eq!(state.channels["aaaa0002"].name, "alpha");
        assert!(
            plan_config(swapped, &state, &cipher, ChannelOrigin::ConfigFile)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn config_file_origin_deletes_only_its_own_channels() {
        let cipher = cipher();
        let mut state = ConfigState::default();
        let admin = Channel {
            id: "admin1".into(),
            pool: Pool::Messages,
            name: "manual".into(),
            service_type: "claude".into(),
            base_url: "https://m.example".into(),
            key_load_balance: String::new(),
            description: String::new(),
            website: String::new(),
            insecure_skip_verify: false,
            model_mapping: BTreeMap::new(),
            response_header_timeout: None,
            priority: 0,
            status: ChannelStatus::Active,
            promotion_until: None,
            price_multipliers: BTreeMap::new(),
            credentials: Default::default(),
            quota_type: String::new(),
            quota_limit: None,
            quota_reset_at: None,
            quota_reset_interval: None,
            quota_reset_unit: String::new(),
            quota_reset_mode: String::new(),
            quota_models: Vec::new(),
            rate_limit_rpm: 0,
            queue_enabled: false,
            queue_timeout: None,
            composite_mappings: Vec::new(),
            position: 0,
            origin: ChannelOrigin::Admin,
            version: 0,
            extra: Map::new(),
            stream_idle_timeout_seconds: None,
        };
        state
            .apply_ops(&[ConfigOp::PutChannel(admin, Expect::Absent)])
            .unwrap();
        let two = br#"{"upstream": [
            {"name": "one", "serviceType": "claude", "baseUrl": "https://1.example", "apiKeys": ["k1"]},
            {"name": "two", "serviceType": "claude", "baseUrl": "https://2.example"}]}"#;
        let ops = plan_config(two, &state, &cipher, ChannelOrigin::ConfigFile).unwrap();
        state.apply_ops(&ops).unwrap();
        assert_eq!(state.channels.len(), 3);

        let one = br#"{"upstream": [
            {"name": "one", "serviceType": "claude", "baseUrl": "https://1.example", "apiKeys": ["k1"]}]}"#;
        // Import origin never deletes.
        let ops = plan_config(one, &state, &cipher, ChannelOrigin::Import).unwrap();
        assert!(
            ops.iter()
                .all(|op| !matches!(op, ConfigOp::DeleteChannel(..)))
        );
        let ops = plan_config(one, &state, &cipher, ChannelOrigin::ConfigFile).unwrap();
        let deleted: Vec<_> = ops
            .iter()
            .filter_map(|op| match op {
                ConfigOp::DeleteChannel(id, _) => Some(id.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(deleted, [derived_channel_id(Pool::Messages, "two")]);
        state.apply_ops(&ops).unwrap();
        assert!(state.channels.contains_key("admin1"));

        // A file channel named like the admin channel is rejected, not merged.
        let clash = br#"{"upstream": [{"name": "Manual", "serviceType": "claude", "baseUrl": "https://x.example"}]}"#;
        let err = plan_config(clash, &state, &cipher, ChannelOrigin::ConfigFile).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("upstream[0].name"));
        // And a file cannot take over an admin channel's id.
        let steal = br#"{"upstream": [{"id": "admin1", "name": "x", "serviceType": "claude", "baseUrl": "https://x.example"}]}"#;
        let err = plan_config(steal, &state, &cipher, ChannelOrigin::ConfigFile).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("upstream[0].id"));
    }
}
