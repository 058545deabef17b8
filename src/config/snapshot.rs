//! The snapshot: an immutable view of the configuration that the request path reads.
//!
//! Built once at start from a [`ConfigState`] ([`Snapshot::build`]: every secret opened, every
//! index prepared), then advanced by each committed change ([`Snapshot::advance`]), which
//! touches only the records the change wrote: unchanged keys and channels are shared with the
//! previous snapshot, never rebuilt or decrypted again. Both are fallible and happen before
//! the change is committed; publishing is an infallible pointer swap. In-flight requests keep
//! the snapshot they started with.

use std::sync::Arc;

use zeroize::Zeroizing;

use super::channel::{LiveChannel, LoadBalance, load_balance_per_pool};
use crate::FastMap;
use crate::crypto::{Cipher, CryptoError};
use crate::domain::{ClientKey, ModelAliases, Pool, PricingTable, Settings};
use crate::store::{ConfigState, RecordWrite, Table};

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

/// Client keys that carry a claude-relay-service salted hash, grouped by salt, so a presented
/// key costs one hash per distinct salt (usually one).
#[derive(Debug, Default, Clone)]
pub struct LegacyIndex {
    pub by_salt: Vec<(Arc<Zeroizing<String>>, KeysByHash)>,
}

/// Hex digest → key: a persistent hash map, so a snapshot that changes one key shares the rest.
pub type KeysByHash = rpds::HashTrieMapSync<String, Arc<ClientKey>, foldhash::fast::RandomState>;

fn keys_by_hash() -> KeysByHash {
    KeysByHash::new_with_hasher_and_ptr_kind(foldhash::fast::RandomState::default())
}

#[derive(Debug)]
pub struct Snapshot {
    pub revision: u64,
    pub keys_by_hash: KeysByHash,
    pub legacy: LegacyIndex,
    /// Every channel by id, secrets opened.
    pub channels: Table<Arc<LiveChannel>>,
    /// Per pool, ordered by priority then file position (rebuilt from `channels` when a
    /// channel changes: there are few).
    pub pools: FastMap<Pool, Vec<Arc<LiveChannel>>>,
    pub pricing: PricingTable,
    pub aliases: ModelAliases,
    pub settings: Settings,
    /// Each pool's load-balance strategy, parsed (index: `Pool as usize`).
    pub load_balance: [LoadBalance; 4],
    /// The committed state this snapshot shows (shares its records with it).
    pub state: ConfigState,
}

impl Default for Snapshot {
    fn default() -> Self {
        Self {
            revision: 0,
            keys_by_hash: keys_by_hash(),
            legacy: LegacyIndex::default(),
            channels: Table::default(),
            pools: FastMap::default(),
            pricing: PricingTable::default(),
            aliases: ModelAliases::default(),
            settings: Settings::default(),
            load_balance: [LoadBalance::Failover; 4],
            state: ConfigState::default(),
        }
    }
}

impl Snapshot {
    /// The whole snapshot from a state (at start and on a full resync); fails when a secret
    /// cannot be opened.
    pub fn build(state: ConfigState, cipher: &Cipher) -> Result<Snapshot, CryptoError> {
        let mut snapshot = Snapshot::default();
        for key in state.keys.values() {
            snapshot.add_key(key, cipher)?;
        }
        for channel in state.channels.values() {
            snapshot.channels.insert(
                channel.id.clone(),
                Arc::new(LiveChannel::open(channel, cipher)?),
            );
        }
        snapshot.rebuild_pools();
        snapshot.pricing = PricingTable::new(state.pricing.iter());
        snapshot.aliases = state.aliases.clone();
        snapshot.settings = state.settings.clone();
        snapshot.load_balance = load_balance_per_pool(&state.settings);
        snapshot.revision = state.revision;
        snapshot.state = state;
        Ok(snapshot)
    }

    /// The snapshot after one committed change: `next` is the state after it, `writes` what
    /// it wrote. Only the written records are rebuilt.
    pub fn advance(
        &self,
        next: ConfigState,
        writes: &[RecordWrite],
        cipher: &Cipher,
    ) -> Result<Snapshot, CryptoError> {
        let mut snapshot = Snapshot {
            revision: next.revision,
            keys_by_hash: self.keys_by_hash.clone(),
            legacy: self.legacy.clone(),
            channels: self.channels.clone(),
            pools: FastMap::default(),
            pricing: PricingTable::default(),
            aliases: next.aliases.clone(),
            settings: next.settings.clone(),
            load_balance: load_balance_per_pool(&next.settings),
            state: self.state.clone(),
        };
        let (mut channels_changed, mut pricing_changed) = (false, false);
        for write in writes {
            match write {
                RecordWrite::Key(id, after) => {
                    if let Some(before) = self.state.keys.get(id) {
                        snapshot.remove_key(before);
                    }
                    if let Some(key) = after {
                        snapshot.add_key(key, cipher)?;
                    }
                }
                // The config record or the credentials: either way only this channel is
                // opened again, from the state after the change (which joins both).
                RecordWrite::Channel(id, _) | RecordWrite::Credentials(id, _) => {
                    channels_changed = true;
                    match next.channels.get(id) {
                        Some(channel) => snapshot
                            .channels
                            .insert(id.clone(), Arc::new(LiveChannel::open(channel, cipher)?)),
                        None => _ = snapshot.channels.remove(id),
                    }
                }
                RecordWrite::Price(..) => pricing_changed = true,
                RecordWrite::KeyHash(..) | RecordWrite::Aliases(_) | RecordWrite::Settings(_) => {}
            }
        }
        if channels_changed {
            snapshot.rebuild_pools();
        } else {
            snapshot.pools = self.pools.clone();
        }
        snapshot.pricing = if pricing_changed {
            PricingTable::new(next.pricing.iter())
        } else {
            self.pricing.clone()
        };
        snapshot.state = next;
        Ok(snapshot)
    }

    fn add_key(&mut self, key: &ClientKey, cipher: &Cipher) -> Result<(), CryptoError> {
        let key_arc = Arc::new(key.clone());
        self.keys_by_hash
            .insert_mut(key.hash.clone(), Arc::clone(&key_arc));
        if let Some(legacy_hash) = &key.legacy_hash {
            let salt = cipher.open(&legacy_salt_aad(&key.id), &legacy_hash.salt)?;
            match self.legacy.by_salt.iter_mut().find(|(s, _)| ***s == *salt) {
                Some((_, map)) => map.insert_mut(legacy_hash.hash.clone(), key_arc),
                None => {
                    let mut map = keys_by_hash();
                    map.insert_mut(legacy_hash.hash.clone(), key_arc);
                    self.legacy.by_salt.push((Arc::new(salt), map));
                }
            }
        }
        Ok(())
    }

    fn remove_key(&mut self, key: &ClientKey) {
        self.keys_by_hash.remove_mut(&key.hash);
        if let Some(legacy_hash) = &key.legacy_hash {
            for (_, map) in &mut self.legacy.by_salt {
                map.remove_mut(&legacy_hash.hash);
            }
            self.legacy.by_salt.retain(|(_, map)| !map.is_empty());
        }
    }

    fn rebuild_pools(&mut self) {
        let mut pools: FastMap<Pool, Vec<Arc<LiveChannel>>> = FastMap::default();
        for channel in self.channels.values() {
            pools
                .entry(channel.channel.pool)
                .or_default()
                .push(Arc::clone(channel));
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
        self.pools = pools;
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
