//! Copying records between stores (cluster mode): a copy applies what another store already
//! decided — versions and uniqueness were checked there — so nothing here checks; it keeps the
//! copy's derived index (key hashes) right and returns the writes a local engine persists.

use super::{ConfigState, RecordWrite};
use crate::domain::Channel;

impl ConfigState {
    /// Whether anything was ever configured (a new data dir has no records).
    #[must_use]
    pub fn has_records(&self) -> bool {
        !self.keys.is_empty()
            || !self.channels.is_empty()
            || !self.pricing.is_empty()
            || self.aliases.version > 0
            || self.settings.version > 0
    }

    /// Every record as a write, for seeding another store with this state.
    #[must_use]
    pub fn all_writes(&self) -> Vec<RecordWrite> {
        let mut writes = Vec::new();
        for (id, key) in self.keys.iter() {
            writes.push(RecordWrite::KeyHash(key.hash.clone(), Some(id.clone())));
            writes.push(RecordWrite::Key(id.clone(), Some(key.clone())));
        }
        for (id, channel) in self.channels.iter() {
            writes.push(RecordWrite::Channel(id.clone(), Some(channel.clone())));
            if has_credentials_record(channel) {
                writes.push(RecordWrite::Credentials(
                    id.clone(),
                    Some(channel.credentials.clone()),
                ));
            }
        }
        for (model, price) in self.pricing.iter() {
            writes.push(RecordWrite::Price(model.clone(), Some(price.clone())));
        }
        if self.aliases.version > 0 {
            writes.push(RecordWrite::Aliases(self.aliases.clone()));
        }
        if self.settings.version > 0 {
            writes.push(RecordWrite::Settings(self.settings.clone()));
        }
        writes
    }

    /// Apply records another store committed (a pulled page), as they are, and move to
    /// `revision`. Returns the writes for the local engine (the records plus key-hash index
    /// changes).
    pub fn apply_pulled(&mut self, records: &[RecordWrite], revision: u64) -> Vec<RecordWrite> {
        let mut writes = Vec::with_capacity(records.len() + 2);
        for record in records {
            match record {
                RecordWrite::Key(id, Some(key)) => {
                    if let Some(old) = self.keys.get(id)
                        && old.hash != key.hash
                    {
                        let old_hash = old.hash.clone();
                        self.forget_hash(&old_hash, id, &mut writes);
                    }
                    self.key_hashes.insert(key.hash.clone(), id.clone());
                    writes.push(RecordWrite::KeyHash(key.hash.clone(), Some(id.clone())));
                    self.keys.insert(id.clone(), key.clone());
                }
                RecordWrite::Key(id, None) => {
                    if let Some(old) = self.keys.get(id) {
                        let old_hash = old.hash.clone();
                        self.forget_hash(&old_hash, id, &mut writes);
                        self.keys.remove(id);
                    }
                }
                // Derived from the keys; another store's index is not copied.
                RecordWrite::KeyHash(..) => continue,
                RecordWrite::Channel(id, Some(channel)) => {
                    // The channel record never carries the credentials: keep the copy's.
                    let credentials = self
                        .channels
                        .get(id)
                        .map(|c| c.credentials.clone())
                        .unwrap_or_default();
                    self.channels.insert(
                        id.clone(),
                        Channel {
                            credentials,
                            ..channel.clone()
                        },
                    );
                }
                RecordWrite::Channel(id, None) => {
                    self.channels.remove(id);
                }
                RecordWrite::Credentials(id, Some(credentials)) => {
                    if let Some(channel) = self.channels.get(id) {
                        let channel = Channel {
                            credentials: credentials.clone(),
                            ..channel.clone()
                        };
                        self.channels.insert(id.clone(), channel);
                    }
                }
                RecordWrite::Credentials(_, None) => {}
                RecordWrite::Price(model, Some(price)) => {
                    self.pricing.insert(model.clone(), price.clone());
                }
                RecordWrite::Price(model, None) => {
                    self.pricing.remove(model);
                }
                RecordWrite::Aliases(aliases) => self.aliases = aliases.clone(),
                RecordWrite::Settings(settings) => self.settings = settings.clone(),
            }
            writes.push(record.clone());
        }
        self.revision = revision;
        writes
    }

    /// The writes that turn this state into `target` (a full resync): deletes for what
    /// `target` lacks, puts for what differs. Applying them leaves exactly `target`.
    #[must_use]
    pub fn writes_to_become(&self, target: &ConfigState) -> Vec<RecordWrite> {
        let mut writes = Vec::new();
        for (hash, id) in self.key_hashes.iter() {
            if target.key_hashes.get(hash) != Some(id) {
                writes.push(RecordWrite::KeyHash(hash.clone(), None));
            }
        }
        for id in self.keys.keys() {
            if !target.keys.contains_key(id) {
                writes.push(RecordWrite::Key(id.clone(), None));
            }
        }
        for (hash, id) in target.key_hashes.iter() {
            if self.key_hashes.get(hash) != Some(id) {
                writes.push(RecordWrite::KeyHash(hash.clone(), Some(id.clone())));
            }
        }
        for (id, key) in target.keys.iter() {
            if self.keys.get(id) != Some(key) {
                writes.push(RecordWrite::Key(id.clone(), Some(key.clone())));
            }
        }
        for id in self.channels.keys() {
            if !target.channels.contains_key(id) {
                writes.push(RecordWrite::Channel(id.clone(), None));
                writes.push(RecordWrite::Credentials(id.clone(), None));
            }
        }
        for (id, channel) in target.channels.iter() {
            let mine = self.channels.get(id);
            if mine != Some(channel) {
                writes.push(RecordWrite::Channel(id.clone(), Some(channel.clone())));
                if mine.map(|c| &c.credentials) != Some(&channel.credentials) {
                    writes.push(RecordWrite::Credentials(
                        id.clone(),
                        Some(channel.credentials.clone()),
                    ));
                }
            }
        }
        for model in self.pricing.keys() {
            if !target.pricing.contains_key(model) {
                writes.push(RecordWrite::Price(model.clone(), None));
            }
        }
        for (model, price) in target.pricing.iter() {
            if self.pricing.get(model) != Some(price) {
                writes.push(RecordWrite::Price(model.clone(), Some(price.clone())));
            }
        }
        if self.aliases != target.aliases {
            writes.push(RecordWrite::Aliases(target.aliases.clone()));
        }
        if self.settings != target.settings {
            writes.push(RecordWrite::Settings(target.settings.clone()));
        }
        writes
    }

    fn forget_hash(&mut self, hash: &str, id: &str, writes: &mut Vec<RecordWrite>) {
        // Within one pulled revision another key may already own this hash.
        if self.key_hashes.get(hash).is_some_and(|owner| owner == id) {
            self.key_hashes.remove(hash);
            writes.push(RecordWrite::KeyHash(hash.to_string(), None));
        }
    }
}

fn has_credentials_record(channel: &Channel) -> bool {
    !channel.credentials.is_empty()
        || channel.credentials.file_digest.is_some()
        || channel.credentials.version > 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::memory::MemoryStore;
    use crate::store::{Commit, ConfigStore};

    fn key(id: &str, hash: &str, version: u64) -> crate::domain::ClientKey {
        crate::domain::ClientKey {
            id: id.into(),
            name: id.into(),
            hash: hash.into(),
            version,
            ..crate::relay::test_support::key(id)
        }
    }

    fn persisted(base: &ConfigState, writes: &[RecordWrite], revision: u64) -> ConfigState {
        let store = MemoryStore::default();
        store
            .commit(Commit {
                base: 0,
                revision: base.revision,
                writes: &base.all_writes(),
                cluster: None,
            })
            .unwrap();
        store
            .commit(Commit {
                base: base.revision,
                revision,
                writes,
                cluster: None,
            })
            .unwrap();
        store.load().unwrap()
    }

    #[test]
    fn a_pulled_page_moves_a_key_hash_and_the_engine_agrees() {
        let mut copy = ConfigState::default();
        copy.keys.insert("a".into(), key("a", "h1", 1));
        copy.key_hashes.insert("h1".into(), "a".into());
        copy.revision = 3;
        let before = copy.clone();
        // In one revision: a is rotated to a new hash and b takes a's old hash.
        let page = [
            RecordWrite::Key("a".into(), Some(key("a", "h2", 2))),
            RecordWrite::Key("b".into(), Some(key("b", "h1", 1))),
        ];
        let writes = copy.apply_pulled(&page, 5);
        assert_eq!(copy.revision, 5);
        assert_eq!(copy.key_hashes.get("h1").map(String::as_str), Some("b"));
        assert_eq!(copy.key_hashes.get("h2").map(String::as_str), Some("a"));
        assert_eq!(persisted(&before, &writes, 5), copy);
    }

    #[test]
    fn a_resync_diff_turns_one_state_into_the_other_exactly() {
        let mut local = ConfigState::default();
        local.keys.insert("gone".into(), key("gone", "hg", 1));
        local.key_hashes.insert("hg".into(), "gone".into());
        local.keys.insert("kept".into(), key("kept", "hk", 1));
        local.key_hashes.insert("hk".into(), "kept".into());
        local.revision = 9;
        let mut remote = ConfigState::default();
        remote.keys.insert("kept".into(), key("kept", "hk2", 4));
        remote.key_hashes.insert("hk2".into(), "kept".into());
        remote.keys.insert("new".into(), key("new", "hg", 1));
        remote.key_hashes.insert("hg".into(), "new".into());
        remote.settings.version = 2;
        remote.revision = 4;
        let writes = local.writes_to_become(&remote);
        assert_eq!(persisted(&local, &writes, 4), remote);
        assert!(remote.writes_to_become(&remote).is_empty());
    }
}
