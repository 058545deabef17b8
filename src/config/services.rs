//! Use cases shared by the admin API and the offline CLI: they generate ids, timestamps and
//! hashes, seal secrets, check rules, and make one change through [`Configuration::write`].
//! A change that builds on the current value (a patch) is planned inside the write, against
//! the committed state; the answer is read from the snapshot that write published.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use zeroize::Zeroizing;

use super::aad::{api_key_aad, oauth_aad};
use super::{Configuration, WriteError};
use crate::crypto::{self, CryptoError, SealedSecret};
use crate::domain::bounds::{self, InvalidField};
use crate::domain::channel::ChannelOrigin;
use crate::domain::key::{Expiry, KeyAllowlists, KeyLimits, unknown_key_fields};
use crate::domain::pricing::ModelAlias;
use crate::domain::{
    Channel, ClientKey, KeyStatus, ModelAliases, ModelPrice, Pool, Settings, new_id, now,
};
use crate::store::{ConfigOp, ConfigState, Expect, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("{kind} '{id}' does not exist")]
    NotFound { kind: &'static str, id: String },
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Invalid(String),
    /// A field outside its range, or one the type does not have.
    #[error("{0}")]
    Field(#[from] InvalidField),
    #[error("{0}")]
    Store(StoreError),
    #[error("{0}")]
    Crypto(#[from] CryptoError),
}

impl From<WriteError> for ServiceError {
    fn from(err: WriteError) -> Self {
        match err {
            WriteError::Store(store) => store.into(),
            WriteError::Crypto(crypto) => ServiceError::Crypto(crypto),
            WriteError::Refused => ServiceError::Invalid("the change was refused".into()),
        }
    }
}

impl From<StoreError> for ServiceError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound { kind, id } => ServiceError::NotFound { kind, id },
            StoreError::Conflict(message) => ServiceError::Conflict(message),
            other => ServiceError::Store(other),
        }
    }
}

type Result<T> = std::result::Result<T, ServiceError>;

fn invalid(message: impl Into<String>) -> ServiceError {
    ServiceError::Invalid(message.into())
}

// ---- client keys ------------------------------------------------------------------------------

/// Fields of a new key; everything but the name is optional.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewKey {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub is_admin: bool,
    #[serde(default)]
    pub expiry: Option<Expiry>,
    #[serde(default)]
    pub limits: KeyLimits,
    #[serde(default)]
    pub allow: KeyAllowlists,
}

/// A key as shown to admins: never the hash's secret, never the key itself.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyView {
    #[serde(flatten)]
    pub key: ClientKey,
}

impl KeyView {
    #[must_use]
    pub fn of(key: &ClientKey) -> Self {
        let mut key = key.clone();
        if let Some(legacy) = key.legacy_hash.as_mut() {
            // The salt is claude-relay-service's ENCRYPTION_KEY: never shown.
            legacy.salt = SealedSecret::redacted();
        }
        Self { key }
    }
}

impl NewKey {
    /// A new key from an admin JSON body: every field known, every number in range.
    pub fn from_json(body: Value) -> Result<NewKey> {
        let object = body
            .as_object()
            .ok_or_else(|| invalid("a key must be a JSON object"))?;
        unknown_key_fields(object)?;
        let new: NewKey = serde_json::from_value(body).map_err(|e| invalid(format!("key: {e}")))?;
        new.validate()?;
        Ok(new)
    }

    fn validate(&self) -> Result<()> {
        if self.name.trim().is_empty() {
            return Err(invalid("a key needs a name"));
        }
        self.limits.validate()?;
        if let Some(expiry) = &self.expiry {
            expiry.validate()?;
        }
        Ok(())
    }
}

/// Create a key; the plaintext is returned once and never stored.
pub fn create_key(config: &Configuration, new: NewKey) -> Result<(ClientKey, Zeroizing<String>)> {
    new.validate()?;
    let name = new.name.trim();
    let prefix = config.snapshot().settings.key_prefix.clone();
    let plaintext = crypto::generate_client_key(&prefix)?;
    let at = now();
    let key = ClientKey {
        id: new_id(),
        name: name.to_string(),
        description: new.description,
        status: KeyStatus::Active,
        is_admin: new.is_admin,
        hash: crypto::hash_client_key(&plaintext),
        display_prefix: crypto::display_prefix(&plaintext),
        legacy_hash: None,
        created_at: at,
        updated_at: at,
        expiry: new.expiry,
        first_used_at: None,
        limits: new.limits,
        allow: new.allow,
        version: 0,
        extra: Map::new(),
    };
    let written = config.write(|committed| {
        name_is_free(committed, &key.name, None)?;
        Ok::<_, ServiceError>(vec![ConfigOp::PutKey(key.clone(), Expect::Absent)])
    })?;
    Ok((key_in(&written.state, &key.id)?, plaintext))
}

/// Key names are unique (checked against the committed state, inside the write), so a name
/// always finds one key. Keys imported with the same name keep it; commands then refuse that
/// name and list the candidates' ids.
fn name_is_free(state: &ConfigState, name: &str, except_id: Option<&str>) -> Result<()> {
    match state
        .keys
        .values()
        .find(|k| k.name == name && Some(k.id.as_str()) != except_id)
    {
        Some(other) => Err(ServiceError::Conflict(format!(
            "a key named '{name}' exists already (id {}); choose another name",
            other.id
        ))),
        None => Ok(()),
    }
}

/// The refusal of a name several records carry, listing them.
fn ambiguous<'a>(kind: &str, name: &str, ids: impl Iterator<Item = &'a str>) -> ServiceError {
    let ids: Vec<&str> = ids.collect();
    invalid(format!(
        "several {kind}s are named '{name}' ({}); use the id",
        ids.join(", ")
    ))
}

pub fn list_keys(config: &Configuration) -> Vec<ClientKey> {
    config.snapshot().state.keys.values().cloned().collect()
}

pub fn get_key(config: &Configuration, id: &str) -> Result<ClientKey> {
    key_in(&config.snapshot().state, id)
}

fn key_in(state: &ConfigState, id: &str) -> Result<ClientKey> {
    state
        .keys
        .get(id)
        .cloned()
        .ok_or_else(|| ServiceError::NotFound {
            kind: "key",
            id: id.to_string(),
        })
}

/// Find a key by id, or by name when exactly one key has it (CLI convenience).
pub fn resolve_key(config: &Configuration, id_or_name: &str) -> Result<ClientKey> {
    if let Ok(key) = get_key(config, id_or_name) {
        return Ok(key);
    }
    let live = config.snapshot();
    let matches: Vec<_> = live
        .state
        .keys
        .values()
        .filter(|k| k.name == id_or_name)
        .collect();
    match matches.as_slice() {
        [one] => Ok((*one).clone()),
        [] => Err(ServiceError::NotFound {
            kind: "key",
            id: id_or_name.to_string(),
        }),
        several => Err(ambiguous(
            "key",
            id_or_name,
            several.iter().map(|k| k.id.as_str()),
        )),
    }
}

/// Fields a key patch may change.
const KEY_PATCHABLE: &[&str] = &[
    "name",
    "description",
    "status",
    "isAdmin",
    "expiry",
    "limits",
    "allow",
];

/// Merge `patch` (JSON object of patchable fields) into the key. `version` (optimistic
/// concurrency) comes from the patch's `version` field or the caller.
pub fn update_key(
    config: &Configuration,
    id: &str,
    patch: &Value,
    version: Option<u64>,
) -> Result<ClientKey> {
    if let Some(object) = patch.as_object() {
        unknown_key_fields(object)?;
    }
    let written = config.write(|committed| {
        let current = key_in(committed, id)?;
        let (merged, patch_version) = merge_patch(&current, patch, KEY_PATCHABLE)?;
        let mut key: ClientKey = merged;
        if key.name.trim().is_empty() {
            return Err(invalid("a key needs a name"));
        }
        if key.name != current.name {
            name_is_free(committed, &key.name, Some(id))?;
        }
        key.limits.validate()?;
        if let Some(expiry) = &key.expiry {
            expiry.validate()?;
        }
        key.updated_at = now();
        let expect = version
            .or(patch_version)
            .map_or(Expect::Exists, Expect::Version);
        Ok(vec![ConfigOp::PutKey(key, expect)])
    })?;
    key_in(&written.state, id)
}

pub fn set_key_status(config: &Configuration, id: &str, status: KeyStatus) -> Result<ClientKey> {
    update_key(config, id, &serde_json::json!({ "status": status }), None)
}

pub fn delete_key(config: &Configuration, id: &str, version: Option<u64>) -> Result<()> {
    let expect = version.map_or(Expect::Exists, Expect::Version);
    config.apply(&[ConfigOp::DeleteKey(id.to_string(), expect)])?;
    Ok(())
}

// ---- channels ---------------------------------------------------------------------------------

/// A channel as shown to admins: upstream keys masked, OAuth tokens never shown.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChannelView {
    #[serde(flatten)]
    pub channel: Value,
}

/// Mask a secret for display: enough to recognise it, never enough to use it. At most the
/// first 4 and the last 4 characters are shown, and never more than a third of the secret
/// (shared evenly between head and tail, the head getting the odd one).
#[must_use]
pub fn mask_secret(secret: &str) -> String {
    let chars: Vec<char> = secret.chars().collect();
    let shown = (chars.len() / 3).min(8);
    let tail = shown / 2;
    let head = shown - tail;
    let head: String = chars[..head].iter().collect();
    let tail: String = chars[chars.len() - tail..].iter().collect();
    format!("{head}…{tail}")
}

fn is_masked(text: &str) -> bool {
    text.contains('…')
}

pub fn channel_view(config: &Configuration, channel: &Channel) -> Result<ChannelView> {
    let mut value = serde_json::to_value(channel).map_err(|e| invalid(e.to_string()))?;
    let masked: Vec<String> = channel
        .credentials
        .api_keys
        .iter()
        .map(|sealed| {
            config
                .cipher()
                .open(&api_key_aad(&channel.id), sealed)
                .map(|k| mask_secret(&k))
        })
        .collect::<std::result::Result<_, _>>()?;
    if let Some(object) = value.as_object_mut() {
        object.insert("apiKeys".into(), serde_json::json!(masked));
        if channel.credentials.oauth_tokens.is_some() {
            object.insert("oauthTokens".into(), Value::String("(set)".into()));
        }
        object.insert(
            "credentialsVersion".into(),
            Value::from(channel.credentials.version),
        );
    }
    Ok(ChannelView { channel: value })
}

pub fn list_channels(config: &Configuration, pool: Option<Pool>) -> Vec<Channel> {
    let live = config.snapshot();
    let mut channels: Vec<Channel> = live
        .state
        .channels
        .values()
        .filter(|c| pool.is_none_or(|p| c.pool == p))
        .cloned()
        .collect();
    channels.sort_by(|a, b| {
        (a.pool, a.priority, a.position, &a.name).cmp(&(b.pool, b.priority, b.position, &b.name))
    });
    channels
}

pub fn get_channel(config: &Configuration, id: &str) -> Result<Channel> {
    channel_in(&config.snapshot().state, id)
}

fn channel_in(state: &ConfigState, id: &str) -> Result<Channel> {
    state
        .channels
        .get(id)
        .cloned()
        .ok_or_else(|| ServiceError::NotFound {
            kind: "channel",
            id: id.to_string(),
        })
}

/// Find a channel by id, or by name when exactly one channel has it.
pub fn resolve_channel(config: &Configuration, id_or_name: &str) -> Result<Channel> {
    if let Ok(channel) = get_channel(config, id_or_name) {
        return Ok(channel);
    }
    let live = config.snapshot();
    let matches: Vec<_> = live
        .state
        .channels
        .values()
        .filter(|c| c.name.eq_ignore_ascii_case(id_or_name))
        .collect();
    match matches.as_slice() {
        [one] => Ok((*one).clone()),
        [] => Err(ServiceError::NotFound {
            kind: "channel",
            id: id_or_name.to_string(),
        }),
        several => Err(ambiguous(
            "channel",
            id_or_name,
            several.iter().map(|c| c.id.as_str()),
        )),
    }
}

/// Build a channel from admin JSON: plaintext `apiKeys` (masked entries keep the stored key at
/// that position) and an `oauthTokens` object are sealed here.
fn channel_from_json(
    config: &Configuration,
    mut body: Value,
    existing: Option<&Channel>,
) -> Result<Channel> {
    let object = body
        .as_object_mut()
        .ok_or_else(|| invalid("a channel must be a JSON object"))?;
    // What a view shows but a client cannot set (a view sent back as it was read is fine).
    for forbidden in ["version", "origin", "credentialsVersion", "health"] {
        object.remove(forbidden);
    }
    let id = match existing {
        Some(channel) => channel.id.clone(),
        None => match object.get("id").and_then(Value::as_str) {
            Some(id) if !id.trim().is_empty() => id.trim().to_string(),
            _ => crate::domain::new_channel_id(),
        },
    };
    object.insert("id".into(), Value::String(id.clone()));
    let plaintext_keys: Vec<String> = match object.remove("apiKeys") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .into_iter()
            .map(|item| match item {
                Value::String(s) => Ok(s),
                _ => Err(invalid("apiKeys must be a list of strings")),
            })
            .collect::<Result<_>>()?,
        Some(_) => return Err(invalid("apiKeys must be a list of strings")),
    };
    let oauth = object.remove("oauthTokens");
    let mut channel: Channel =
        serde_json::from_value(body).map_err(|e| invalid(format!("channel: {e}")))?;
    if channel.name.trim().is_empty() {
        return Err(invalid("a channel needs a name"));
    }
    channel.validate()?;
    // A composite channel forwards to other channels and has no upstream of its own.
    let composite = channel.service_type == "composite";
    let url_ok = channel.base_url.starts_with("http://")
        || channel.base_url.starts_with("https://")
        || (composite && channel.base_url.is_empty());
    if !url_ok {
        return Err(invalid("baseUrl must start with http:// or https://"));
    }
    let mut sealed = Vec::with_capacity(plaintext_keys.len());
    for (index, key) in plaintext_keys.iter().enumerate() {
        if is_masked(key) {
            let kept = existing
                .and_then(|c| c.credentials.api_keys.get(index))
                .ok_or_else(|| {
                    invalid(
                        "apiKeys contains a masked value where no key is stored; send the full key",
                    )
                })?;
            sealed.push(kept.clone());
        } else {
            sealed.push(config.cipher().seal(&api_key_aad(&id), key)?);
        }
    }
    channel.credentials.api_keys = sealed;
    channel.credentials.oauth_tokens = match oauth {
        None => existing.and_then(|c| c.credentials.oauth_tokens.clone()),
        Some(Value::Null) => None,
        Some(Value::String(s)) if s == "(set)" => {
            existing.and_then(|c| c.credentials.oauth_tokens.clone())
        }
        Some(tokens @ Value::Object(_)) => {
            Some(config.cipher().seal(&oauth_aad(&id), &tokens.to_string())?)
        }
        Some(_) => return Err(invalid("oauthTokens must be an object")),
    };
    if let Some(existing) = existing {
        channel.origin = existing.origin;
        channel.position = existing.position;
        // Kept: a config file that still names the same secrets leaves the admin's in place.
        channel
            .credentials
            .file_digest
            .clone_from(&existing.credentials.file_digest);
    } else {
        channel.origin = ChannelOrigin::Admin;
    }
    Ok(channel)
}

pub fn create_channel(config: &Configuration, body: Value) -> Result<Channel> {
    let sent = body.as_object().cloned().unwrap_or_default();
    let channel = channel_from_json(config, body, None)?;
    unknown_channel_fields(&sent, &channel, None)?;
    let written = config.write(|committed| {
        let mut channel = channel.clone();
        let in_pool = committed
            .channels
            .values()
            .filter(|c| c.pool == channel.pool)
            .count();
        channel.position = u32::try_from(in_pool).unwrap_or(u32::MAX);
        Ok::<_, ServiceError>(vec![ConfigOp::PutChannel(channel, Expect::Absent)])
    })?;
    channel_in(&written.state, &channel.id)
}

pub fn update_channel(
    config: &Configuration,
    id: &str,
    patch: &Value,
    version: Option<u64>,
) -> Result<Channel> {
    let patch_object = patch
        .as_object()
        .ok_or_else(|| invalid("a patch must be a JSON object"))?;
    let patch_version = patch_object.get("version").and_then(Value::as_u64);
    // A patch of the secrets alone is a credentials change: the channel keeps its version.
    let only_credentials = patch_object
        .keys()
        .all(|field| matches!(field.as_str(), "apiKeys" | "oauthTokens" | "version"));
    let written = config.write(|committed| {
        let current = channel_in(committed, id)?;
        let channel = patched_channel(config, &current, patch_object)?;
        let expect = version
            .or(patch_version)
            .map_or(Expect::Exists, Expect::Version);
        if only_credentials {
            if let Expect::Version(want) = expect
                && want != current.version
            {
                return Err(ServiceError::Conflict(format!(
                    "channel '{id}' was changed by someone else (version {}, you sent {want}); reload and retry",
                    current.version
                )));
            }
            return Ok(vec![ConfigOp::PutCredentials(
                current.id.clone(),
                channel.credentials,
                Expect::Exists,
            )]);
        }
        Ok::<_, ServiceError>(vec![ConfigOp::PutChannel(channel, expect)])
    })?;
    channel_in(&written.state, id)
}

/// `current` with the fields of an admin patch.
fn patched_channel(
    config: &Configuration,
    current: &Channel,
    patch_object: &Map<String, Value>,
) -> Result<Channel> {
    for fixed in ["id", "pool"] {
        if let Some(value) = patch_object.get(fixed)
            && serde_json::to_value(current)
                .ok()
                .and_then(|c| c.get(fixed).cloned())
                .as_ref()
                != Some(value)
        {
            return Err(invalid(format!(
                "{fixed} cannot be changed; create a new channel instead"
            )));
        }
    }
    // Start from the admin view (masked keys), so untouched keys round-trip as masked.
    let mut merged = channel_view(config, current)?.channel;
    if let Some(object) = merged.as_object_mut() {
        for (field, value) in patch_object {
            object.insert(field.clone(), value.clone());
        }
    }
    let channel = channel_from_json(config, merged, Some(current))?;
    unknown_channel_fields(patch_object, &channel, Some(current))?;
    Ok(channel)
}

/// Fields of a channel body that are neither relaybox's, nor cc-bridge's that relaybox keeps,
/// nor already carried (with that value) by the stored channel.
fn unknown_channel_fields(
    sent: &Map<String, Value>,
    channel: &Channel,
    stored: Option<&Channel>,
) -> std::result::Result<(), InvalidField> {
    let mut carried = stored.map(|c| c.extra.clone()).unwrap_or_default();
    for field in Channel::CC_BRIDGE_EXTRAS {
        if let Some(value) = sent.get(*field) {
            carried.insert((*field).to_string(), value.clone());
        }
    }
    bounds::unknown_fields(sent, &channel.extra, Some(&carried))
}

pub fn delete_channel(config: &Configuration, id: &str, version: Option<u64>) -> Result<()> {
    let expect = version.map_or(Expect::Exists, Expect::Version);
    config.apply(&[ConfigOp::DeleteChannel(id.to_string(), expect)])?;
    Ok(())
}

// ---- pricing, aliases, settings ---------------------------------------------------------------

pub fn list_pricing(config: &Configuration) -> Vec<(String, ModelPrice)> {
    config
        .snapshot()
        .state
        .pricing
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

pub fn get_price(config: &Configuration, model: &str) -> Result<ModelPrice> {
    price_in(&config.snapshot().state, model)
}

fn price_in(state: &ConfigState, model: &str) -> Result<ModelPrice> {
    state
        .pricing
        .get(model)
        .cloned()
        .ok_or_else(|| ServiceError::NotFound {
            kind: "price",
            id: model.to_string(),
        })
}

/// A new price from an admin JSON body (without its `model`).
pub fn price_from_json(body: Value) -> Result<ModelPrice> {
    let sent = body.as_object().cloned().unwrap_or_default();
    let price: ModelPrice =
        serde_json::from_value(body).map_err(|e| invalid(format!("price: {e}")))?;
    bounds::only_fields(&sent, PRICE_FIELDS)?;
    Ok(price)
}

pub fn create_price(config: &Configuration, model: &str, price: ModelPrice) -> Result<ModelPrice> {
    if model.trim().is_empty() {
        return Err(invalid("a price needs a model id or prefix"));
    }
    price.validate()?;
    let written = config.apply(&[ConfigOp::PutPrice(model.to_string(), price, Expect::Absent)])?;
    price_in(&written.state, model)
}

/// What a new price may name (`version` is the store's).
const PRICE_FIELDS: &[&str] = &[
    "inputPrice",
    "outputPrice",
    "cacheCreationPrice",
    "cacheReadPrice",
    "description",
    "exportToModels",
    "version",
];

const PRICE_PATCHABLE: &[&str] = &[
    "inputPrice",
    "outputPrice",
    "cacheCreationPrice",
    "cacheReadPrice",
    "description",
    "exportToModels",
];

pub fn update_price(
    config: &Configuration,
    model: &str,
    patch: &Value,
    version: Option<u64>,
) -> Result<ModelPrice> {
    let written = config.write(|committed| {
        let current = price_in(committed, model)?;
        let (price, patch_version): (ModelPrice, _) =
            merge_patch(&current, patch, PRICE_PATCHABLE)?;
        price.validate()?;
        let expect = version
            .or(patch_version)
            .map_or(Expect::Exists, Expect::Version);
        Ok::<_, ServiceError>(vec![ConfigOp::PutPrice(model.to_string(), price, expect)])
    })?;
    price_in(&written.state, model)
}

pub fn delete_price(config: &Configuration, model: &str, version: Option<u64>) -> Result<()> {
    let expect = version.map_or(Expect::Exists, Expect::Version);
    config.apply(&[ConfigOp::DeletePrice(model.to_string(), expect)])?;
    Ok(())
}

/// The aliases document from an admin JSON body: the known lists of `{value, description}`.
pub fn aliases_from_json(body: Value) -> Result<ModelAliases> {
    let sent = body.as_object().cloned().unwrap_or_default();
    let aliases: ModelAliases =
        serde_json::from_value(body).map_err(|e| invalid(format!("aliases: {e}")))?;
    bounds::unknown_fields(&sent, &aliases.extra, None)?;
    for (list, items) in &sent {
        for (i, item) in items.as_array().into_iter().flatten().enumerate() {
            if let Some(item) = item.as_object() {
                bounds::only_fields(item, &["value", "description"])
                    .map_err(|e| e.under(&format!("{list}.{i}")))?;
            }
        }
    }
    Ok(aliases)
}

pub fn put_aliases(
    config: &Configuration,
    aliases: ModelAliases,
    version: Option<u64>,
) -> Result<ModelAliases> {
    let expect = version.map_or(Expect::Any, Expect::Version);
    let written = config.apply(&[ConfigOp::PutAliases(aliases, expect)])?;
    Ok(written.aliases.clone())
}

fn alias_list(aliases: &mut ModelAliases, pool: Pool) -> &mut Vec<ModelAlias> {
    match pool {
        Pool::Messages => &mut aliases.messages_models,
        Pool::Responses => &mut aliases.responses_models,
        Pool::Gemini => &mut aliases.gemini_models,
        Pool::Chat => &mut aliases.chat_models,
    }
}

/// Offer one more model name in a pool's `/v1/models` list.
pub fn add_alias(config: &Configuration, pool: Pool, alias: ModelAlias) -> Result<ModelAliases> {
    let written = config.write(|committed| {
        let mut aliases = committed.aliases.clone();
        let version = aliases.version;
        let list = alias_list(&mut aliases, pool);
        if list.iter().any(|a| a.value == alias.value) {
            return Err(ServiceError::Conflict(format!(
                "the {pool} pool already offers '{}'",
                alias.value
            )));
        }
        list.push(alias.clone());
        Ok(vec![ConfigOp::PutAliases(
            aliases,
            Expect::Version(version),
        )])
    })?;
    Ok(written.aliases.clone())
}

pub fn remove_alias(config: &Configuration, pool: Pool, value: &str) -> Result<ModelAliases> {
    let written = config.write(|committed| {
        let mut aliases = committed.aliases.clone();
        let version = aliases.version;
        let list = alias_list(&mut aliases, pool);
        let before = list.len();
        list.retain(|a| a.value != value);
        if list.len() == before {
            return Err(ServiceError::NotFound {
                kind: "alias",
                id: format!("{pool}/{value}"),
            });
        }
        Ok(vec![ConfigOp::PutAliases(
            aliases,
            Expect::Version(version),
        )])
    })?;
    Ok(written.aliases.clone())
}

/// Change the settings a JSON object names and keep every other one. Fields relaybox does not
/// know are refused (a GET document sent back unchanged is fine: its carried-over cc-bridge
/// fields are the stored ones); the result must pass [`Settings::validate`]. `version`
/// (optimistic concurrency) comes from the object or the caller.
pub fn update_settings(
    config: &Configuration,
    patch: &Value,
    version: Option<u64>,
) -> Result<Settings> {
    let patch = patch
        .as_object()
        .ok_or_else(|| invalid("settings must be a JSON object"))?;
    let version = version.or_else(|| patch.get("version").and_then(Value::as_u64));
    let written = config.write(|committed| {
        let current = &committed.settings;
        let mut merged = serde_json::to_value(current).map_err(|e| invalid(e.to_string()))?;
        if let Some(object) = merged.as_object_mut() {
            for (field, value) in patch {
                if field != "version" {
                    object.insert(field.clone(), value.clone());
                }
            }
        }
        let settings: Settings =
            serde_json::from_value(merged).map_err(|e| invalid(format!("settings: {e}")))?;
        unknown_settings_fields(patch, &settings, current)?;
        settings.validate()?;
        let expect = version.map_or(Expect::Any, Expect::Version);
        Ok::<_, ServiceError>(vec![ConfigOp::PutSettings(settings, expect)])
    })?;
    Ok(written.settings.clone())
}

/// The fields of a settings patch that relaybox would only carry as extras, down to the
/// failover rules and their steps.
fn unknown_settings_fields(
    patch: &Map<String, Value>,
    settings: &Settings,
    stored: &Settings,
) -> std::result::Result<(), InvalidField> {
    bounds::unknown_fields(patch, &settings.extra, Some(&stored.extra))?;
    let Some(Value::Object(failover)) = patch.get("failover") else {
        return Ok(());
    };
    let under = |e: InvalidField| e.under("failover");
    bounds::unknown_fields(
        failover,
        &settings.failover.extra,
        Some(&stored.failover.extra),
    )
    .map_err(under)?;
    let rules = failover.get("rules").and_then(Value::as_array);
    for (r, rule) in rules.into_iter().flatten().enumerate() {
        let (Some(sent), Some(parsed)) = (rule.as_object(), settings.failover.rules.get(r)) else {
            continue;
        };
        let stored_extra = stored.failover.rules.get(r).map(|rule| &rule.extra);
        let under = |e: InvalidField| e.under(&format!("failover.rules.{r}"));
        bounds::unknown_fields(sent, &parsed.extra, stored_extra).map_err(under)?;
        let steps = sent.get("actionChain").and_then(Value::as_array);
        for (s, step) in steps.into_iter().flatten().enumerate() {
            if let Some(step) = step.as_object() {
                bounds::only_fields(step, crate::domain::settings::ActionStep::FIELDS)
                    .map_err(|e| under(e.under(&format!("actionChain.{s}"))))?;
            }
        }
    }
    Ok(())
}

/// Merge the patchable fields of a JSON patch into `current`; unknown fields are refused so a
/// typo never silently does nothing. Returns the merged value and the patch's `version`.
fn merge_patch<T>(current: &T, patch: &Value, patchable: &[&str]) -> Result<(T, Option<u64>)>
where
    T: Serialize + serde::de::DeserializeOwned,
{
    let patch = patch
        .as_object()
        .ok_or_else(|| invalid("a patch must be a JSON object"))?;
    let mut merged = serde_json::to_value(current).map_err(|e| invalid(e.to_string()))?;
    let mut version = None;
    let object = merged
        .as_object_mut()
        .ok_or_else(|| invalid("not an object"))?;
    for (field, value) in patch {
        if field == "version" {
            version = value.as_u64();
            continue;
        }
        if !patchable.contains(&field.as_str()) {
            return Err(invalid(format!(
                "field '{field}' cannot be changed (changeable: {})",
                patchable.join(", ")
            )));
        }
        if value.is_null() {
            object.remove(field);
        } else {
            object.insert(field.clone(), value.clone());
        }
    }
    let merged = serde_json::from_value(merged).map_err(|e| invalid(e.to_string()))?;
    Ok((merged, version))
}

#[cfg(test)]
mod tests {
    use super::mask_secret;

    #[test]
    fn masking_shows_at_most_four_and_four_and_never_more_than_a_third() {
        for len in 0..=40 {
            let secret: String = (0..len)
                .map(|i| char::from(b'a' + u8::try_from(i % 26).unwrap_or(0)))
                .collect();
            let masked = mask_secret(&secret);
            let (head, tail) = masked.split_once('…').unwrap_or_default();
            let shown = head.chars().count() + tail.chars().count();
            assert!(shown * 3 <= len, "{len}: {masked}");
            assert!(
                head.chars().count() <= 4 && tail.chars().count() <= 4,
                "{len}: {masked}"
            );
            assert!(
                secret.starts_with(head) && secret.ends_with(tail),
                "{len}: {masked}"
            );
            if len >= 24 {
                assert_eq!(shown, 8, "long secrets show 4 + 4: {masked}");
            }
        }
        assert_eq!(
            mask_secret("sk-abcdefghij"),
            "sk…ij",
            "13 characters show 4 of them"
        );
        assert_eq!(mask_secret(""), "…");
    }
}
