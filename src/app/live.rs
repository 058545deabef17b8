//! The live snapshot: an immutable view of the configuration that the request path reads.
//!
//! Built from a [`ConfigState`] with every secret opened and every index prepared (fallible),
//! then swapped in atomically (infallible). In-flight requests keep the snapshot they started
//! with.

use std::sync::Arc;

use zeroize::Zeroizing;

use crate::FastMap;
use crate::crypto::{Cipher, CryptoError};
use crate::domain::{Channel, ClientKey, ModelAliases, Pool, PricingTable, Settings};
use crate::store::ConfigState;

/// AAD of a channel's upstream keys.
#[must_use]
pub fn api_key_aad(channel_id: &str) -> String {
    format!("channel/{channel_id}/apiKey")
}

/// AAD of a channel's OAuth token block.
#[must_use]
pub fn oauth_aad(channel_id: &str) -> String {
    format!("channel/{channel_id}/oauthTokens")
}

/// AAD of a key's legacy salt.
#[must_use]
pub fn legacy_salt_aad(key_id: &str) -> String {
    format!("key/{key_id}/legacySalt")
}

/// A channel with its secrets opened, ready to forward to.
#[derive(Debug)]
pub struct LiveChannel {
    pub channel: Channel,
    /// Per upstream API key, the header values that carry it (built once per snapshot, not
    /// per request); `None` for a key that is not a valid header value.
    pub credentials: Vec<Option<Credential>>,
    pub oauth_tokens: Option<Zeroizing<String>>,
}

/// One upstream API key as header values, marked sensitive (never logged by hyper).
#[derive(Debug)]
pub struct Credential {
    /// The key itself: `x-api-key`, `x-goog-api-key`.
    pub raw: hyper::header::HeaderValue,
    /// `Bearer <key>`: `authorization`.
    pub bearer: hyper::header::HeaderValue,
}

impl Credential {
    fn new(key: &str) -> Option<Self> {
        let sensitive = |mut value: hyper::header::HeaderValue| {
            value.set_sensitive(true);
            value
        };
        Some(Self {
            raw: sensitive(hyper::header::HeaderValue::from_str(key).ok()?),
            bearer: sensitive(hyper::header::HeaderValue::from_str(&format!("Bearer {key}")).ok()?),
        })
    }
}

/// Client keys that carry a claude-relay-service salted hash, grouped by salt, so a presented
/// key costs one hash per distinct salt (usually one).
#[derive(Debug, Default)]
pub struct LegacyIndex {
    pub by_salt: Vec<(Zeroizing<String>, KeysByHash)>,
}

/// Hex digest → key.
pub type KeysByHash = FastMap<String, Arc<ClientKey>>;

#[derive(Debug, Default)]
pub struct Live {
    pub revision: u64,
    pub keys_by_hash: KeysByHash,
    pub legacy: LegacyIndex,
    /// Per pool, ordered by priority then file position.
    pub pools: FastMap<Pool, Vec<Arc<LiveChannel>>>,
    pub pricing: PricingTable,
    pub aliases: ModelAliases,
    pub settings: Settings,
    pub state: ConfigState,
}

impl Live {
    /// Prepare a snapshot; fails (and the old one stays) when a secret cannot be opened.
    pub fn prepare(state: ConfigState, cipher: &Cipher) -> Result<Live, CryptoError> {
        let mut keys_by_hash =
            KeysByHash::with_capacity_and_hasher(state.keys.len(), Default::default());
        let mut legacy = LegacyIndex::default();
        for key in state.keys.values() {
            let key_arc = Arc::new(key.clone());
            keys_by_hash.insert(key.hash.clone(), Arc::clone(&key_arc));
            if let Some(legacy_hash) = &key.legacy_hash {
                let salt = cipher.open(&legacy_salt_aad(&key.id), &legacy_hash.salt)?;
                match legacy.by_salt.iter_mut().find(|(s, _)| **s == *salt) {
                    Some((_, map)) => {
                        map.insert(legacy_hash.hash.clone(), key_arc);
                    }
                    None => legacy.by_salt.push((
                        salt,
                        KeysByHash::from_iter([(legacy_hash.hash.clone(), key_arc)]),
                    )),
                }
            }
        }
        let mut pools: FastMap<Pool, Vec<Arc<LiveChannel>>> = FastMap::default();
        for channel in state.channels.values() {
            let api_keys = channel
                .api_keys
                .iter()
                .map(|sealed| cipher.open(&api_key_aad(&channel.id), sealed))
                .collect::<Result<Vec<_>, _>>()?;
            let oauth_tokens = channel
                .oauth_tokens
                .as_ref()
                .map(|sealed| cipher.open(&oauth_aad(&channel.id), sealed))
                .transpose()?;
            pools
                .entry(channel.pool)
                .or_default()
                .push(Arc::new(LiveChannel {
                    channel: channel.clone(),
                    credentials: api_keys.iter().map(|key| Credential::new(key)).collect(),
                    oauth_tokens,
                }));
        }
        for channels in pools.values_mut() {
            channels.sort_by(|a, b| {
                (a.channel.priority, a.channel.position, &a.channel.id).cmp(&(
                    b.channel.priority,
                    b.channel.position,
                    &b.channel.id,
                ))
            });
        }
        Ok(Live {
            revision: state.revision,
            keys_by_hash,
            legacy,
            pools,
            pricing: PricingTable::new(&state.pricing),
            aliases: state.aliases.clone(),
            settings: state.settings.clone(),
            state,
        })
    }

    /// The key a client presented, by its SHA-256 or, failing that, by a legacy salted hash.
    #[must_use]
    pub fn find_key(&self, presented: &str) -> Option<&Arc<ClientKey>> {
        let mut hex = [0u8; 64];
        let hash = crate::crypto::client_key_hash_hex(presented, &mut hex);
        if let Some(key) = self.keys_by_hash.get(hash) {
            return Some(key);
        }
        self.legacy
            .by_salt
            .iter()
            .find_map(|(salt, map)| map.get(&crate::crypto::legacy_hash(presented, salt)))
    }

    #[must_use]
    pub fn channels(&self, pool: Pool) -> &[Arc<LiveChannel>] {
        self.pools.get(&pool).map_or(&[], Vec::as_slice)
    }
}
