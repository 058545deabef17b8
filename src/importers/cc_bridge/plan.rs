//! From parsed cc-bridge files to the [`ConfigOp`]s that make the store match them.
//!
//! Every plan compares with the current state and emits ops only for what differs, so planning
//! twice in a row yields no ops the second time. Sealed secrets are compared by their opened
//! plaintexts (sealing is randomised) and re-used when equal, so an unchanged channel compares
//! equal field by field.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::source::{
    self, SrcAliases, SrcChannel, SrcConfig, SrcFailover, SrcPrice, SrcPricing, SrcQuotaUsage,
    SrcRule,
};
use super::sqlite::ImportedKey;
use super::validate;
use super::{ConfigFile, FileError};
use crate::crypto::{Cipher, SealedSecret};
use crate::domain::channel::ChannelOrigin;
use crate::domain::key::KeyAllowlists;
use crate::domain::settings::{ActionStep, FailoverRule, FailoverSettings};
use crate::domain::{Channel, ChannelStatus, ClientKey, ModelAliases, ModelPrice, Pool, Settings};
use crate::importers::{api_key_aad, oauth_aad};
use crate::store::{ConfigOp, ConfigState, Expect};

/// Channel fields relaybox sets itself; a source field of that name would collide when stored.
const RESERVED_CHANNEL_KEYS: &[&str] = &["pool", "position", "origin", "version"];
/// Settings fields that are relaybox's own (kept from the current settings, never from a file).
const RESERVED_SETTINGS_KEYS: &[&str] = Settings::OWN_FIELDS;

/// The id of a channel that has none in `config.json`: the first 8 hex characters of
/// `sha256("{pool}/{name}")` (name trimmed), so re-imports find the same channel.
#[must_use]
pub fn derived_channel_id(pool: Pool, name: &str) -> String {
    let digest = hex::encode(Sha256::digest(format!("{pool}/{}", name.trim()).as_bytes()));
    digest[..8].to_string()
}

fn channel_id(pool: Pool, channel: &SrcChannel) -> String {
    let id = channel.id.trim();
    if id.is_empty() {
        derived_channel_id(pool, &channel.name)
    } else {
        id.to_string()
    }
}

/// One channel of the file, with where it sits and the id it will have.
pub(crate) struct SourceChannel {
    pub pool: Pool,
    /// The JSON key of its pool (`upstream`, `responsesUpstream`, …), for error paths.
    pub key: &'static str,
    pub index: usize,
    pub id: String,
    pub src: SrcChannel,
    pub extra: Map<String, Value>,
}

/// A parsed and validated `config.json`.
pub(crate) struct ParsedConfig {
    pub src: SrcConfig,
    pub raw: Value,
    pub channels: Vec<SourceChannel>,
}

impl ParsedConfig {
    /// Channel ids per pool, in file order (index → id), for `quota_usage.json` and legacy
    /// index references.
    pub(crate) fn ids_by_pool(&self) -> BTreeMap<Pool, Vec<String>> {
        let mut out: BTreeMap<Pool, Vec<String>> =
            Pool::ALL.iter().map(|pool| (*pool, Vec::new())).collect();
        for channel in &self.channels {
            out.entry(channel.pool)
                .or_default()
                .push(channel.id.clone());
        }
        out
    }

    /// `(pool, lowercase name)` → id, for request-log rows that only carry a channel name.
    pub(crate) fn ids_by_name(&self) -> HashMap<(Pool, String), String> {
        self.channels
            .iter()
            .map(|c| ((c.pool, c.src.name.trim().to_lowercase()), c.id.clone()))
            .collect()
    }
}

/// Parse and validate `config.json`.
pub(crate) fn parse_config(bytes: &[u8]) -> Result<ParsedConfig, FileError> {
    let (src, raw): (SrcConfig, Value) = source::parse(ConfigFile::Config, bytes)?;
    let ids: BTreeMap<Pool, Vec<String>> = validate::pools(&src)
        .into_iter()
        .map(|(pool, _, channels)| (pool, channels.iter().map(|c| channel_id(pool, c)).collect()))
        .collect();
    validate::config(&src, &ids)?;
    let known = source::known_keys::<SrcChannel>();
    let mut channels = Vec::new();
    for (pool, key, list) in validate::pools(&src) {
        for (index, channel) in list.iter().enumerate() {
            let raw_channel = raw.get(key).and_then(|pool| pool.get(index));
            channels.push(SourceChannel {
                pool,
                key,
                index,
                id: channel_id(pool, channel),
                src: channel.clone(),
                extra: source::extras(raw_channel, &known, RESERVED_CHANNEL_KEYS),
            });
        }
    }
    Ok(ParsedConfig { src, raw, channels })
}

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

fn build_channel(
    source: &SourceChannel,
    existing: Option<&Channel>,
    cipher: &Cipher,
    origin: ChannelOrigin,
) -> Result<Channel, FileError> {
    let src = &source.src;
    let id = source.id.as_str();

    let key_aad = api_key_aad(id);
    let mut api_keys = Vec::with_capacity(src.api_keys.len());
    for (i, plaintext) in src.api_keys.iter().enumerate() {
        let same = existing.and_then(|e| e.api_keys.get(i)).filter(|sealed| {
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
            let same = existing
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
        api_keys,
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
        oauth_tokens,
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

/// The settings `config.json` describes, on top of relaybox's own fields of `current`.
fn settings_from(parsed: &ParsedConfig, current: &Settings) -> Settings {
    let src = &parsed.src;
    let failover = match &src.failover {
        None => FailoverSettings::default(),
        Some(failover) => failover_from(failover, parsed.raw.get("failover")),
    };
    Settings {
        load_balance: if src.load_balance.is_empty() {
            "failover".to_string()
        } else {
            src.load_balance.clone()
        },
        responses_load_balance: src.responses_load_balance.clone(),
        gemini_load_balance: src.gemini_load_balance.clone(),
        chat_load_balance: src.chat_load_balance.clone(),
        failover,
        debug_log: src.debug_log.clone().map(Value::Object),
        user_agent: src.user_agent.clone().map(Value::Object),
        outbound_header_policy: src.outbound_header_policy.clone().map(Value::Object),
        extra: source::extras(
            Some(&parsed.raw),
            &source::known_keys::<SrcConfig>(),
            RESERVED_SETTINGS_KEYS,
        ),
        // relaybox's own knobs (keyPrefix, limits, …) are never taken from a cc-bridge file.
        ..current.clone()
    }
}

fn failover_from(src: &SrcFailover, raw: Option<&Value>) -> FailoverSettings {
    let rule_keys = source::known_keys::<SrcRule>();
    let rules = src
        .rules
        .iter()
        .enumerate()
        .map(|(i, rule)| FailoverRule {
            error_codes: rule.error_codes.clone(),
            action_chain: rule
                .action_chain
                .iter()
                .map(|step| ActionStep {
                    action: step.action.clone(),
                    wait_seconds: step.wait_seconds,
                    max_attempts: step.max_attempts,
                })
                .collect(),
            // Legacy `action` / `threshold` / `waitSeconds` are kept here as they are.
            extra: source::extras(
                raw.and_then(|f| f.get("rules")).and_then(|r| r.get(i)),
                &rule_keys,
                &[],
            ),
        })
        .collect();
    FailoverSettings {
        enabled: src.enabled,
        rules,
        generic_resource_wait_seconds: src.generic_resource_wait_seconds,
        model_cooldown_extra_seconds: src.model_cooldown_extra_seconds,
        model_cooldown_max_wait_seconds: src.model_cooldown_max_wait_seconds,
        extra: source::extras(raw, &source::known_keys::<SrcFailover>(), &[]),
    }
}

/// What a `pricing.json` plan does.
#[derive(Debug, Default)]
pub(crate) struct PricingPlan {
    pub ops: Vec<ConfigOp>,
    pub found: u64,
    pub new: u64,
    pub changed: u64,
    pub unchanged: u64,
    pub removed: u64,
}

/// Parse + validate `pricing.json`: a `PutPrice` per new or changed model, a `DeletePrice` per
/// model no longer in the file, and the currency into the settings.
pub fn plan_pricing(bytes: &[u8], current: &ConfigState) -> Result<Vec<ConfigOp>, FileError> {
    Ok(plan_pricing_detailed(bytes, current)?.ops)
}

pub(crate) fn plan_pricing_detailed(
    bytes: &[u8],
    current: &ConfigState,
) -> Result<PricingPlan, FileError> {
    let (src, raw): (SrcPricing, Value) = source::parse(ConfigFile::Pricing, bytes)?;
    validate::pricing(&src)?;
    let known = source::known_keys::<SrcPrice>();
    let mut plan = PricingPlan {
        found: src.models.len() as u64,
        ..PricingPlan::default()
    };
    for (model, price) in &src.models {
        let existing = current.pricing.get(model);
        let desired = ModelPrice {
            input_price: price.input_price,
            output_price: price.output_price,
            cache_creation_price: price.cache_creation_price,
            cache_read_price: price.cache_read_price,
            description: price.description.clone(),
            export_to_models: price.export_to_models,
            version: existing.map_or(0, |e| e.version),
            extra: source::extras(
                raw.get("models").and_then(|m| m.get(model)),
                &known,
                &["version"],
            ),
        };
        match existing {
            Some(existing) if *existing == desired => plan.unchanged += 1,
            Some(_) => {
                plan.changed += 1;
                plan.ops
                    .push(ConfigOp::PutPrice(model.clone(), desired, Expect::Any));
            }
            None => {
                plan.new += 1;
                plan.ops
                    .push(ConfigOp::PutPrice(model.clone(), desired, Expect::Any));
            }
        }
    }
    for model in current
        .pricing
        .keys()
        .filter(|m| !src.models.contains_key(*m))
    {
        plan.removed += 1;
        plan.ops
            .push(ConfigOp::DeletePrice(model.clone(), Expect::Any));
    }
    let currency = match src.currency.trim() {
        "" => "USD".to_string(),
        other => other.to_string(),
    };
    if current.settings.pricing_currency != currency {
        let settings = Settings {
            pricing_currency: currency,
            ..current.settings.clone()
        };
        plan.ops.push(ConfigOp::PutSettings(settings, Expect::Any));
    }
    Ok(plan)
}

/// Parse `model-aliases.json`: one `PutAliases` when the lists differ. `chatModels` (relaybox's
/// own list) is kept when the file has none.
pub fn plan_aliases(bytes: &[u8], current: &ConfigState) -> Result<Vec<ConfigOp>, FileError> {
    Ok(plan_aliases_detailed(bytes, current)?.0)
}

/// The ops, and how many alias entries the file has.
pub(crate) fn plan_aliases_detailed(
    bytes: &[u8],
    current: &ConfigState,
) -> Result<(Vec<ConfigOp>, u64), FileError> {
    let (src, raw): (SrcAliases, Value) = source::parse(ConfigFile::Aliases, bytes)?;
    let found = (src.messages_models.len()
        + src.responses_models.len()
        + src.gemini_models.len()
        + src.chat_models.as_ref().map_or(0, Vec::len)) as u64;
    let desired = ModelAliases {
        messages_models: src.messages_models,
        responses_models: src.responses_models,
        gemini_models: src.gemini_models,
        chat_models: src
            .chat_models
            .unwrap_or_else(|| current.aliases.chat_models.clone()),
        version: current.aliases.version,
        extra: source::extras(
            Some(&raw),
            &source::known_keys::<SrcAliases>(),
            &["version"],
        ),
    };
    let ops = if desired == current.aliases {
        Vec::new()
    } else {
        vec![ConfigOp::PutAliases(desired, Expect::Any)]
    };
    Ok((ops, found))
}

/// One channel's quota counter from `quota_usage.json`.
#[derive(Debug, Clone, PartialEq)]
pub struct QuotaEntry {
    pub channel_id: String,
    pub used: f64,
    pub last_reset_at: String,
}

/// The mapped counters, and the entries that could not be mapped (`"messages.7"`, reason).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QuotaPlan {
    pub entries: Vec<QuotaEntry>,
    pub skipped: Vec<(String, String)>,
}

/// `quota_usage.json` keys are array indexes into the pools of `config.json` (the same
/// snapshot): map them to channel ids. Entries that point past the end of a pool are dropped;
/// see [`plan_quota_usage_detailed`] for the list.
pub fn plan_quota_usage(bytes: &[u8], config_json: &[u8]) -> Result<Vec<QuotaEntry>, FileError> {
    Ok(plan_quota_usage_detailed(bytes, config_json)?.entries)
}

/// [`plan_quota_usage`] with the entries that could not be mapped.
pub fn plan_quota_usage_detailed(bytes: &[u8], config_json: &[u8]) -> Result<QuotaPlan, FileError> {
    let parsed = parse_config(config_json)?;
    let (src, _raw): (SrcQuotaUsage, Value) = source::parse(ConfigFile::QuotaUsage, bytes)?;
    let ids = parsed.ids_by_pool();
    let mut plan = QuotaPlan::default();
    for (pool, section) in [
        (Pool::Messages, &src.messages),
        (Pool::Responses, &src.responses),
        (Pool::Gemini, &src.gemini),
        (Pool::Chat, &src.chat),
    ] {
        let pool_ids = ids.get(&pool).map_or(&[][..], Vec::as_slice);
        for (key, usage) in section {
            let item = format!("{pool}.{key}");
            if !(usage.used.is_finite() && usage.used >= 0.0) {
                return Err(FileError::semantic(
                    ConfigFile::QuotaUsage,
                    Some(format!("{pool}.{key}.used")),
                    format!("{} is negative; usage is 0 or more", usage.used),
                ));
            }
            let Ok(index) = key.trim().parse::<usize>() else {
                plan.skipped
                    .push((item, format!("'{key}' is not a channel index")));
                continue;
            };
            match pool_ids.get(index) {
                Some(id) => plan.entries.push(QuotaEntry {
                    channel_id: id.clone(),
                    used: usage.used,
                    last_reset_at: usage.last_reset_at.clone(),
                }),
                None => plan.skipped.push((
                    item,
                    format!("config.json has {} channel(s) in the {pool} pool, so index {index} points at none", pool_ids.len()),
                )),
            }
        }
    }
    Ok(plan)
}

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
    use super::*;
    use crate::crypto::MasterSecret;

    fn cipher() -> Cipher {
        let master = MasterSecret::from_text(&MasterSecret::generate_text().unwrap());
        Cipher::create(&master).unwrap().0
    }

    #[test]
    fn derived_ids_are_stable_8_hex() {
        let id = derived_channel_id(Pool::Messages, "main");
        assert_eq!(id.len(), 8);
        assert_eq!(id, derived_channel_id(Pool::Messages, " main "));
        assert_ne!(id, derived_channel_id(Pool::Chat, "main"));
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
            api_keys: Vec::new(),
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
            oauth_tokens: None,
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

    #[test]
    fn quota_indexes_map_to_ids_and_strays_are_listed() {
        let config = br#"{"upstream": [
            {"id": "m0", "name": "a", "serviceType": "claude", "baseUrl": "https://a.example"},
            {"id": "m1", "name": "b", "serviceType": "claude", "baseUrl": "https://b.example"}],
            "responsesUpstream": [{"name": "r", "serviceType": "responses", "baseUrl": "https://r.example"}]}"#;
        let usage = br#"{"messages": {"1": {"used": 3, "lastResetAt": "2026-07-01T00:00:00Z"}, "5": {"used": 1}},
            "responses": {"0": {"used": 2.5, "lastResetAt": "2026-07-02T00:00:00Z"}}, "gemini": null}"#;
        let plan = plan_quota_usage_detailed(usage, config).unwrap();
        assert_eq!(plan.entries.len(), 2);
        assert_eq!(plan.entries[0].channel_id, "m1");
        assert_eq!(
            plan.entries[1].channel_id,
            derived_channel_id(Pool::Responses, "r")
        );
        assert_eq!(plan.skipped.len(), 1);
        assert_eq!(plan.skipped[0].0, "messages.5");
    }
}
