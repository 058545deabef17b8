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

use super::aad::legacy_salt_aad;
use super::channel::{LiveChannel, LoadBalance, load_balance_per_pool};
use crate::FastMap;
use crate::crypto::{Cipher, CryptoError};
use crate::domain::failover::FailoverPolicy;
use crate::domain::{Channel, ClientKey, ModelAliases, Pool, PricingTable, Settings};
use crate::store::{ConfigState, RecordWrite, Table};

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
    /// Shared by the snapshots between channel changes.
    pub pools: Arc<FastMap<Pool, Vec<Arc<LiveChannel>>>>,
    /// Shared by the snapshots between pricing changes.
    pub pricing: Arc<PricingTable>,
    pub aliases: ModelAliases,
    pub settings: Settings,
    /// Each pool's load-balance strategy, parsed (index: `Pool as usize`).
    pub load_balance: [LoadBalance; 4],
    /// The failover rules, compiled.
    pub failover: Arc<FailoverPolicy>,
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
            pools: Arc::default(),
            pricing: Arc::default(),
            aliases: ModelAliases::default(),
            settings: Settings::default(),
            load_balance: [LoadBalance::Failover; 4],
            failover: Arc::default(),
            state: ConfigState::default(),
        }
    }
}

/// The settings the relay works with: a value out of range (written by an older version or
/// an importer) is reported and replaced by its default, never fatal.
fn usable_settings(stored: &Settings) -> Settings {
    let (usable, replaced) = stored.usable();
    for problem in replaced {
        tracing::warn!(
            record = "settings",
            field = %problem.field,
            problem = %problem.rule,
            "a stored setting is out of range; its default is used until it is changed"
        );
    }
    usable
}

/// The key as the relay checks it: a stored limit out of range is reported and left out.
fn usable_key(stored: &ClientKey) -> ClientKey {
    if stored.limits.validate().is_ok() {
        return stored.clone();
    }
    let (limits, dropped) = stored.limits.usable();
    for problem in dropped {
        tracing::warn!(
            record = %format!("key {} ({})", stored.id, stored.name),
            field = %problem.field,
            problem = %problem.rule,
            "a stored key limit is out of range; it is ignored until it is changed"
        );
    }
    ClientKey {
        limits,
        ..stored.clone()
    }
}

/// A channel number out of range is reported; the request path computes with it saturating
/// (a quota period that cannot be computed is no quota).
fn report_bad_channel(channel: &Channel) {
    if let Err(problem) = channel.validate() {
        tracing::warn!(
            record = %format!("channel {} ({})", channel.id, channel.name),
            field = %problem.field,
            problem = %problem.rule,
            "a stored channel value is out of range; it is ignored until it is changed"
        );
    }
}

/// The configured prices, with the built-in (USD) list behind them while prices are in USD.
fn pricing_table(state: &ConfigState) -> PricingTable {
    let usd = state.settings.pricing_currency.eq_ignore_ascii_case("USD");
    PricingTable::new(state.pricing.iter()).with_builtin(usd)
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
            report_bad_channel(channel);
            snapshot.channels.insert(
                channel.id.clone(),
                Arc::new(LiveChannel::open(channel, cipher)?),
            );
        }
        snapshot.rebuild_pools();
        snapshot.pricing = Arc::new(pricing_table(&state));
        snapshot.aliases = state.aliases.clone();
        snapshot.settings = usable_settings(&state.settings);
        snapshot.load_balance = load_balance_per_pool(&state.settings);
        snapshot.failover = Arc::new(FailoverPolicy::compile(&state.settings.failover));
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
        let failover_changed = next.settings.failover != self.state.settings.failover;
        let currency_changed =
            next.settings.pricing_currency != self.state.settings.pricing_currency;
        let mut snapshot = Snapshot {
            revision: next.revision,
            keys_by_hash: self.keys_by_hash.clone(),
            legacy: self.legacy.clone(),
            channels: self.channels.clone(),
            pools: Arc::clone(&self.pools),
            pricing: Arc::clone(&self.pricing),
            aliases: next.aliases.clone(),
            settings: if next.settings == self.state.settings {
                self.settings.clone()
            } else {
                usable_settings(&next.settings)
            },
            load_balance: load_balance_per_pool(&next.settings),
            failover: if failover_changed {
                Arc::new(FailoverPolicy::compile(&next.settings.failover))
            } else {
                Arc::clone(&self.failover)
            },
            state: next,
        };
        // A channel's config and credentials may both be written by one change: open it once.
        let mut changed_channels = std::collections::BTreeSet::new();
        let mut pricing_changed = currency_changed;
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
                RecordWrite::Channel(id, _) | RecordWrite::Credentials(id, _) => {
                    changed_channels.insert(id.as_str());
                }
                RecordWrite::Price(..) => pricing_changed = true,
                RecordWrite::KeyHash(..) | RecordWrite::Aliases(_) | RecordWrite::Settings(_) => {}
            }
        }
        // Opened from the state after the change, which joins config and credentials.
        for id in &changed_channels {
            match snapshot.state.channels.get(*id) {
                Some(channel) => {
                    report_bad_channel(channel);
                    let live = Arc::new(LiveChannel::open(channel, cipher)?);
                    snapshot.channels.insert((*id).to_string(), live);
                }
                None => _ = snapshot.channels.remove(*id),
            }
        }
        if !changed_channels.is_empty() {
            snapshot.rebuild_pools();
        }
        if pricing_changed {
            snapshot.pricing = Arc::new(pricing_table(&snapshot.state));
        }
        Ok(snapshot)
    }

    fn add_key(&mut self, key: &ClientKey, cipher: &Cipher) -> Result<(), CryptoError> {
        let key_arc = Arc::new(usable_key(key));
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
        self.pools = Arc::new(pools);
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

    #[cfg(test)]
    fn find_key_by_hash(&self, hash: &str) -> Option<&Arc<ClientKey>> {
        self.keys_by_hash.get(hash)
    }

    #[must_use]
    pub fn channels(&self, pool: Pool) -> &[Arc<LiveChannel>] {
        self.pools.get(&pool).map_or(&[], Vec::as_slice)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail loudly")]

    use super::*;
    use crate::config::aad::api_key_aad;
    use crate::crypto::MasterSecret;
    use crate::domain::{Channel, KeyStatus};
    use crate::store::{ConfigOp, Expect};

    fn cipher() -> Cipher {
        let master = MasterSecret::from_text(&MasterSecret::generate_text().unwrap());
        Cipher::create(&master).unwrap().0
    }

    fn key(id: &str) -> ClientKey {
        serde_json::from_value(serde_json::json!({
            "id": id, "name": id, "hash": format!("hash-{id}"), "displayPrefix": "rb_",
            "createdAt": "2026-01-01T00:00:00Z", "updatedAt": "2026-01-01T00:00:00Z",
        }))
        .unwrap()
    }

    fn channel(id: &str, cipher: &Cipher, secret: &str) -> Channel {
        let mut channel: Channel = serde_json::from_value(serde_json::json!({
            "id": id, "pool": "messages", "name": id, "serviceType": "claude",
            "baseUrl": "https://upstream.example",
        }))
        .unwrap();
        channel.credentials.api_keys = vec![cipher.seal(&api_key_aad(id), secret).unwrap()];
        channel
    }

    /// Apply `ops` the way the writer does; returns the advanced snapshot.
    fn advance(snapshot: &Snapshot, ops: &[ConfigOp], cipher: &Cipher) -> Snapshot {
        let mut next = snapshot.state.clone();
        let writes = next.apply_ops(ops).unwrap();
        snapshot.advance(next, &writes, cipher).unwrap()
    }

    #[test]
    fn advancing_shares_what_did_not_change_and_equals_a_full_build() {
        let cipher = cipher();
        let start = Snapshot::build(ConfigState::default(), &cipher).unwrap();
        let one = advance(
            &start,
            &[
                ConfigOp::PutKey(key("k1"), Expect::Absent),
                ConfigOp::PutChannel(channel("c1", &cipher, "sk-one"), Expect::Absent),
                ConfigOp::PutChannel(channel("c2", &cipher, "sk-two"), Expect::Absent),
            ],
            &cipher,
        );
        assert!(one.find_key_by_hash("hash-k1").is_some());
        assert_eq!(one.channels(Pool::Messages).len(), 2);

        // A key change: every channel, the pools and the pricing are the same allocations.
        let two = advance(
            &one,
            &[ConfigOp::PutKey(key("k2"), Expect::Absent)],
            &cipher,
        );
        assert!(Arc::ptr_eq(&one.pools, &two.pools));
        assert!(Arc::ptr_eq(&one.pricing, &two.pricing));
        assert!(Arc::ptr_eq(&one.channels["c1"], &two.channels["c1"]));

        // Rotating c1's credentials reopens c1 only.
        let mut rotated = two.state.channels["c1"].credentials.clone();
        rotated.api_keys = vec![cipher.seal(&api_key_aad("c1"), "sk-rotated").unwrap()];
        let three = advance(
            &two,
            &[ConfigOp::PutCredentials(
                "c1".into(),
                rotated,
                Expect::Exists,
            )],
            &cipher,
        );
        assert!(!Arc::ptr_eq(&two.channels["c1"], &three.channels["c1"]));
        assert!(Arc::ptr_eq(&two.channels["c2"], &three.channels["c2"]));
        assert_eq!(
            three.channels["c1"].credentials[0].as_ref().unwrap().raw,
            "sk-rotated"
        );
        assert_eq!(three.state.channels["c1"].version, 1);

        // Revoke and delete: gone from the index at once.
        let mut revoked = key("k1");
        revoked.status = KeyStatus::Revoked;
        let four = advance(
            &three,
            &[
                ConfigOp::PutKey(revoked, Expect::Exists),
                ConfigOp::DeleteKey("k2".into(), Expect::Exists),
                ConfigOp::DeleteChannel("c2".into(), Expect::Exists),
            ],
            &cipher,
        );
        assert_eq!(
            four.find_key_by_hash("hash-k1").unwrap().status,
            KeyStatus::Revoked
        );
        assert!(four.find_key_by_hash("hash-k2").is_none());
        assert_eq!(four.channels(Pool::Messages).len(), 1);

        // The advanced snapshot shows what a full build of the same state shows.
        let rebuilt = Snapshot::build(four.state.clone(), &cipher).unwrap();
        assert_eq!(rebuilt.keys_by_hash.size(), four.keys_by_hash.size());
        for (hash, key) in rebuilt.keys_by_hash.iter() {
            assert_eq!(four.keys_by_hash.get(hash).unwrap(), key);
        }
        let ids = |s: &Snapshot| -> Vec<String> {
            s.channels(Pool::Messages)
                .iter()
                .map(|c| c.channel.id.clone())
                .collect()
        };
        assert_eq!(ids(&rebuilt), ids(&four));
        assert_eq!(rebuilt.revision, four.revision);
    }
}
