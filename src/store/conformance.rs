//! One story, every [`ConfigStore`] engine.
//!
//! Each property below takes a factory that opens the store of one data dir: every call sees
//! what earlier handles committed (so calling it again after dropping the handle is a restart).
//! Changes are driven the way `config::writer::LocalWriter` drives them: plan against the
//! committed [`ConfigState`], [`ConfigState::apply_ops`], [`ConfigStore::commit`]; after every
//! step the store's `load()` must equal the state the writer holds.
//!
//! Adding an engine is one `conformance!(name, factory);` line at the bottom, plus its factory.
//! A factory returns `None` when its engine cannot run here (PostgreSQL without a test server
//! outside CI); the test then passes after saying why.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Map, Value, json};
use time::macros::datetime;

use super::memory::MemoryStore;
use super::postgres::test_support::TestDatabase;
use super::redb_store::RedbStore;
use super::{Commit, ConfigOp, ConfigState, ConfigStore, Expect, StoreError, Table};
use crate::crypto::{Cipher, KeyringRecord, MasterSecret, SealedSecret};
use crate::domain::channel::{ChannelOrigin, ChannelStatus, PriceMultiplier};
use crate::domain::key::{Expiry, KeyAllowlists, KeyLimits, LegacyHash, WindowLimit};
use crate::domain::pricing::ModelAlias;
use crate::domain::{Channel, ClientKey, KeyStatus, ModelAliases, ModelPrice, Pool, Settings};

/// Opens the store of one data dir (see the module docs).
type Open<'a> = &'a dyn Fn() -> Box<dyn ConfigStore>;
/// A fresh, empty data dir of one engine.
type Fresh = Box<dyn Fn() -> Box<dyn ConfigStore>>;

// ---------------------------------------------------------------------------------------------
// Engines

/// A [`MemoryStore`] shared by every handle, so "reopening" finds what was committed.
struct SharedMemory(Arc<MemoryStore>);

impl ConfigStore for SharedMemory {
    fn load(&self) -> Result<ConfigState, StoreError> {
        self.0.load()
    }
    fn commit(&self, commit: Commit<'_>) -> Result<(), StoreError> {
        self.0.commit(commit)
    }
    fn revision(&self) -> Result<u64, StoreError> {
        self.0.revision()
    }
    fn keyring(&self) -> Result<Option<KeyringRecord>, StoreError> {
        self.0.keyring()
    }
    fn init_keyring(&self, record: &KeyringRecord) -> Result<(), StoreError> {
        self.0.init_keyring(record)
    }
}

fn memory_engine() -> Option<Fresh> {
    let store = Arc::new(MemoryStore::default());
    Some(Box::new(move || Box::new(SharedMemory(Arc::clone(&store)))))
}

/// A `relaybox.redb` in a temporary dir (removed with the factory); each call opens the file anew.
fn redb_engine() -> Option<Fresh> {
    let dir = tempfile::tempdir().unwrap();
    Some(Box::new(move || {
        Box::new(RedbStore::open(&dir.path().join("relaybox.redb")).unwrap())
    }))
}

/// A database of its own on the test PostgreSQL (dropped with the factory); each call connects
/// a new pool, as an instance start does.
fn postgres_engine() -> Option<Fresh> {
    let database = TestDatabase::create()?;
    Some(Box::new(move || Box::new(database.open())))
}

// ---------------------------------------------------------------------------------------------
// The writer's side

/// The writer's view of one data dir: an open store and the committed state it holds.
struct Run<'a> {
    open: Open<'a>,
    store: Option<Box<dyn ConfigStore>>,
    state: ConfigState,
}

impl<'a> Run<'a> {
    fn start(open: Open<'a>) -> Self {
        let store = open();
        let state = store.load().unwrap();
        let run = Self {
            open,
            store: Some(store),
            state,
        };
        run.verify();
        run
    }

    fn store(&self) -> &dyn ConfigStore {
        self.store.as_deref().unwrap()
    }

    /// The store holds exactly the state the writer holds, and `revision()` agrees.
    #[track_caller]
    fn verify(&self) {
        let loaded = self.store().load().unwrap();
        assert_same_state(&loaded, &self.state);
        assert_eq!(self.store().revision().unwrap(), loaded.revision);
    }

    /// Close the store and open it again (a restart); nothing committed may be lost.
    #[track_caller]
    fn reopen(&mut self) {
        self.store = None;
        self.store = Some((self.open)());
        self.verify();
    }

    /// Plan, apply and commit one change as the writer does; then check the store.
    #[track_caller]
    fn change(&mut self, ops: Vec<ConfigOp>) -> Result<(), StoreError> {
        let mut next = self.state.clone();
        let writes = match next.apply_ops(&ops) {
            Ok(writes) => writes,
            Err(err) => {
                assert_eq!(next, self.state, "a refused change was half applied");
                return Err(err);
            }
        };
        self.store().commit(Commit {
            base: self.state.revision,
            revision: next.revision,
            writes: &writes,
            cluster: None,
        })?;
        self.state = next;
        self.verify();
        Ok(())
    }

    #[track_caller]
    fn ok(&mut self, ops: Vec<ConfigOp>) {
        let revision = self.state.revision;
        self.change(ops).unwrap();
        assert_eq!(
            self.state.revision,
            revision + 1,
            "one commit, one revision"
        );
    }

    /// A change that must be refused: the error, with the store and the writer's state unchanged.
    #[track_caller]
    fn refused(&mut self, ops: Vec<ConfigOp>) -> StoreError {
        let before = self.store().load().unwrap();
        let held = self.state.clone();
        let err = self.change(ops).expect_err("the change was accepted");
        assert_eq!(
            self.state, held,
            "a refused change altered the writer's state"
        );
        assert_eq!(
            self.store().load().unwrap(),
            before,
            "a refused change was written"
        );
        self.verify();
        err
    }

    fn revision(&self) -> u64 {
        self.store().revision().unwrap()
    }
}

/// `loaded == committed`, failing on the first record that differs rather than on the whole state.
#[track_caller]
fn assert_same_state(loaded: &ConfigState, committed: &ConfigState) {
    assert_eq!(loaded.revision, committed.revision, "revision");
    assert_same_table("keys", &loaded.keys, &committed.keys);
    assert_same_table("key_hashes", &loaded.key_hashes, &committed.key_hashes);
    assert_same_table("channels", &loaded.channels, &committed.channels);
    assert_same_table("pricing", &loaded.pricing, &committed.pricing);
    assert_eq!(loaded.aliases, committed.aliases, "aliases");
    assert_eq!(loaded.settings, committed.settings, "settings");
    assert_eq!(
        loaded, committed,
        "the store differs from the committed state"
    );
}

#[track_caller]
fn assert_same_table<V: PartialEq + std::fmt::Debug>(
    name: &str,
    loaded: &Table<V>,
    committed: &Table<V>,
) {
    let loaded_ids: Vec<&String> = loaded.keys().collect();
    let committed_ids: Vec<&String> = committed.keys().collect();
    assert_eq!(loaded_ids, committed_ids, "{name}: ids");
    for (id, record) in committed {
        assert_eq!(&loaded[id.as_str()], record, "{name}/{id}");
    }
}

#[track_caller]
fn assert_conflict(err: &StoreError) {
    assert!(
        matches!(err, StoreError::Conflict(_)),
        "expected a conflict, got {err:?}"
    );
}

#[track_caller]
fn assert_not_found(err: &StoreError, want_kind: &str, want_id: &str) {
    match err {
        StoreError::NotFound { kind, id } => assert_eq!((*kind, id.as_str()), (want_kind, want_id)),
        other => panic!("expected not-found, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Records

fn key(id: &str, hash: &str) -> ClientKey {
    let at = datetime!(2026-01-02 03:04:05.123456789 UTC);
    ClientKey {
        id: id.to_string(),
        name: format!("key {id}"),
        description: String::new(),
        status: KeyStatus::Active,
        is_admin: false,
        hash: hash.to_string(),
        display_prefix: "cr_1a2b".to_string(),
        legacy_hash: None,
        created_at: at,
        updated_at: at,
        expiry: None,
        first_used_at: None,
        limits: KeyLimits::default(),
        allow: KeyAllowlists::default(),
        version: 0,
        extra: Map::new(),
    }
}

fn channel(id: &str, pool: Pool, name: &str) -> Channel {
    let mut channel: Channel = serde_json::from_value(json!({
        "id": id, "pool": "messages", "name": name,
        "serviceType": "claude", "baseUrl": "https://upstream.example",
    }))
    .unwrap();
    channel.pool = pool;
    channel
}

fn price(input: f64) -> ModelPrice {
    ModelPrice {
        input_price: input,
        output_price: input * 5.0,
        ..ModelPrice::default()
    }
}

fn aliases(models: &[&str]) -> ModelAliases {
    ModelAliases {
        messages_models: models
            .iter()
            .map(|m| ModelAlias {
                value: (*m).to_string(),
                description: None,
            })
            .collect(),
        ..ModelAliases::default()
    }
}

/// `record` as the store must hold it after a write that gave it `version`.
fn at<T: Clone>(record: &T, version: u64, set: fn(&mut T, u64)) -> T {
    let mut record = record.clone();
    set(&mut record, version);
    record
}

fn key_at(k: &ClientKey, version: u64) -> ClientKey {
    at(k, version, |k, v| k.version = v)
}

fn channel_at(c: &Channel, version: u64) -> Channel {
    at(c, version, |c, v| c.version = v)
}

fn price_at(p: &ModelPrice, version: u64) -> ModelPrice {
    at(p, version, |p, v| p.version = v)
}

fn put_key(k: &ClientKey, expect: Expect) -> ConfigOp {
    ConfigOp::PutKey(k.clone(), expect)
}

fn put_channel(c: &Channel, expect: Expect) -> ConfigOp {
    ConfigOp::PutChannel(c.clone(), expect)
}

fn put_price(model: &str, p: &ModelPrice, expect: Expect) -> ConfigOp {
    ConfigOp::PutPrice(model.to_string(), p.clone(), expect)
}

fn keyring_record() -> KeyringRecord {
    let text = MasterSecret::generate_text().unwrap();
    Cipher::create(&MasterSecret::from_text(&text)).unwrap().1
}

// ---------------------------------------------------------------------------------------------
// Properties

/// A new data dir: revision 0, no records, default aliases and settings, no keyring.
fn empty_store(open: Open<'_>) {
    let mut run = Run::start(open);
    let loaded = run.store().load().unwrap();
    assert_eq!(loaded.revision, 0);
    assert_eq!(run.revision(), 0);
    assert!(loaded.keys.is_empty());
    assert!(loaded.key_hashes.is_empty());
    assert!(loaded.channels.is_empty());
    assert!(loaded.pricing.is_empty());
    assert_eq!(loaded.aliases, ModelAliases::default());
    assert_eq!(loaded.settings, Settings::default());
    assert_eq!(loaded, ConfigState::default());
    assert_eq!(run.store().keyring().unwrap(), None);
    // Opening an empty data dir again changes nothing.
    run.reopen();
    assert_eq!(run.store().load().unwrap(), ConfigState::default());
    assert_eq!(run.store().keyring().unwrap(), None);
}

/// Every kind of record is created at version 1 and each write bumps it by one; every commit
/// bumps the revision by exactly one, however many ops it holds.
fn versions_and_revisions(open: Open<'_>) {
    let mut run = Run::start(open);
    let k1 = key("k1", "h1");
    let c1 = channel("c1", Pool::Messages, "main");
    let p1 = price(3.0);

    run.ok(vec![put_key(&k1, Expect::Absent)]);
    assert_eq!(run.revision(), 1);
    let loaded = run.store().load().unwrap();
    assert_eq!(loaded.keys["k1"], key_at(&k1, 1));
    assert_eq!(loaded.key_hashes["h1"], "k1");

    run.ok(vec![
        put_channel(&c1, Expect::Absent),
        put_price("claude-sonnet", &p1, Expect::Absent),
    ]);
    assert_eq!(run.revision(), 2, "two ops in one change are one revision");
    run.reopen();
    let loaded = run.store().load().unwrap();
    assert_eq!(loaded.channels["c1"], channel_at(&c1, 1));
    assert_eq!(loaded.pricing["claude-sonnet"], price_at(&p1, 1));

    // The singletons start at version 0 (defaults) and are written over.
    let a = aliases(&["claude-sonnet-4-5"]);
    run.ok(vec![ConfigOp::PutAliases(a.clone(), Expect::Version(0))]);
    let s = Settings {
        load_balance: "round-robin".to_string(),
        max_queue_length: 7,
        ..Settings::default()
    };
    run.ok(vec![ConfigOp::PutSettings(s.clone(), Expect::Exists)]);
    assert_eq!(run.revision(), 4);
    let loaded = run.store().load().unwrap();
    assert_eq!(
        loaded.aliases,
        ModelAliases {
            version: 1,
            ..a.clone()
        }
    );
    assert_eq!(
        loaded.settings,
        Settings {
            version: 1,
            ..s.clone()
        }
    );

    // Updates: Version(current), Exists and Any all bump by one; the sent version is ignored.
    let k1b = ClientKey {
        name: "renamed".to_string(),
        version: 99,
        ..k1.clone()
    };
    run.ok(vec![put_key(&k1b, Expect::Version(1))]);
    run.ok(vec![put_key(&k1b, Expect::Exists)]);
    run.ok(vec![put_key(&k1b, Expect::Any)]);
    let c1b = Channel {
        priority: 3,
        ..c1.clone()
    };
    run.ok(vec![
        put_channel(&c1b, Expect::Version(1)),
        put_price("claude-sonnet", &price(4.0), Expect::Version(1)),
        ConfigOp::PutAliases(aliases(&["a", "b"]), Expect::Version(1)),
        ConfigOp::PutSettings(s.clone(), Expect::Version(1)),
    ]);
    // Upsert of a missing record creates it at 1.
    run.ok(vec![put_price("gpt-5", &price(1.25), Expect::Any)]);
    assert_eq!(run.revision(), 9);
    run.reopen();
    let loaded = run.store().load().unwrap();
    assert_eq!(loaded.keys["k1"], key_at(&k1b, 4));
    assert_eq!(loaded.channels["c1"], channel_at(&c1b, 2));
    assert_eq!(loaded.pricing["claude-sonnet"], price_at(&price(4.0), 2));
    assert_eq!(loaded.pricing["gpt-5"], price_at(&price(1.25), 1));
    assert_eq!(loaded.aliases.version, 2);
    assert_eq!(loaded.settings.version, 2);
    assert_eq!(loaded.revision, 9);
}

/// Stale versions, creates over existing records and updates of missing ones are refused and
/// write nothing.
fn refusals_write_nothing(open: Open<'_>) {
    let mut run = Run::start(open);
    let k1 = key("k1", "h1");
    let c1 = channel("c1", Pool::Messages, "main");
    run.ok(vec![
        put_key(&k1, Expect::Absent),
        put_channel(&c1, Expect::Absent),
        put_price("m", &price(1.0), Expect::Absent),
        ConfigOp::PutAliases(aliases(&["x"]), Expect::Any),
        ConfigOp::PutSettings(Settings::default(), Expect::Any),
    ]);
    run.ok(vec![put_key(&k1, Expect::Version(1))]);
    let revision = run.revision();
    assert_eq!(revision, 2);

    // Stale version.
    for op in [
        put_key(&k1, Expect::Version(1)),
        put_channel(&c1, Expect::Version(2)),
        put_price("m", &price(2.0), Expect::Version(0)),
        ConfigOp::PutAliases(aliases(&["y"]), Expect::Version(2)),
        ConfigOp::PutSettings(Settings::default(), Expect::Version(0)),
        ConfigOp::DeleteKey("k1".to_string(), Expect::Version(1)),
        ConfigOp::DeleteChannel("c1".to_string(), Expect::Version(5)),
        ConfigOp::DeletePrice("m".to_string(), Expect::Version(2)),
    ] {
        assert_conflict(&run.refused(vec![op]));
    }
    // Create over an existing record.
    for op in [
        put_key(&k1, Expect::Absent),
        put_channel(&c1, Expect::Absent),
        put_price("m", &price(2.0), Expect::Absent),
        ConfigOp::PutAliases(aliases(&["y"]), Expect::Absent),
        ConfigOp::PutSettings(Settings::default(), Expect::Absent),
    ] {
        assert_conflict(&run.refused(vec![op]));
    }
    // Update or delete of a missing record.
    let cases = [
        (put_key(&key("k9", "h9"), Expect::Version(1)), "key", "k9"),
        (put_key(&key("k9", "h9"), Expect::Exists), "key", "k9"),
        (
            put_channel(&channel("c9", Pool::Chat, "n"), Expect::Exists),
            "channel",
            "c9",
        ),
        (
            put_price("m9", &price(1.0), Expect::Version(3)),
            "price",
            "m9",
        ),
        (
            ConfigOp::DeleteKey("k9".to_string(), Expect::Exists),
            "key",
            "k9",
        ),
        (
            ConfigOp::DeleteChannel("c9".to_string(), Expect::Version(1)),
            "channel",
            "c9",
        ),
        (
            ConfigOp::DeletePrice("m9".to_string(), Expect::Absent),
            "price",
            "m9",
        ),
    ];
    for (op, kind, id) in cases {
        assert_not_found(&run.refused(vec![op]), kind, id);
    }
    assert_eq!(run.revision(), revision, "no refusal moved the revision");
    assert!(!run.store().load().unwrap().key_hashes.contains_key("h9"));
    run.reopen();
    assert_eq!(run.revision(), revision);
}

/// A delete removes the record (and a key's hash entry) for good; deleting a missing record
/// with `Any` is fine; an id created again starts over at version 1.
fn deletes_are_real(open: Open<'_>) {
    let mut run = Run::start(open);
    let k1 = key("k1", "h1");
    let k2 = key("k2", "h2");
    let c1 = channel("c1", Pool::Messages, "main");
    run.ok(vec![
        put_key(&k1, Expect::Absent),
        put_key(&k2, Expect::Absent),
        put_channel(&c1, Expect::Absent),
        put_price("m", &price(1.0), Expect::Absent),
    ]);
    run.ok(vec![
        put_key(&k1, Expect::Exists),
        put_channel(&c1, Expect::Exists),
    ]);

    run.ok(vec![ConfigOp::DeleteKey(
        "k1".to_string(),
        Expect::Version(2),
    )]);
    run.ok(vec![
        ConfigOp::DeleteChannel("c1".to_string(), Expect::Exists),
        ConfigOp::DeletePrice("m".to_string(), Expect::Any),
    ]);
    run.reopen();
    let loaded = run.store().load().unwrap();
    assert!(!loaded.keys.contains_key("k1"));
    assert!(
        !loaded.key_hashes.contains_key("h1"),
        "the deleted key's hash is still indexed"
    );
    assert!(loaded.channels.is_empty());
    assert!(loaded.pricing.is_empty());
    assert_eq!(loaded.keys.len(), 1);
    assert_eq!(loaded.key_hashes.len(), 1);
    assert_eq!(loaded.key_hashes["h2"], "k2");

    // Deleting what is not there with `Any` succeeds (and still is one revision).
    let revision = run.revision();
    run.ok(vec![
        ConfigOp::DeleteKey("k1".to_string(), Expect::Any),
        ConfigOp::DeleteChannel("c1".to_string(), Expect::Any),
        ConfigOp::DeletePrice("m".to_string(), Expect::Any),
    ]);
    assert_eq!(run.revision(), revision + 1);
    run.reopen();

    // The ids and the freed hash can be used again, from version 1.
    let k1_again = key("k1", "h1");
    run.ok(vec![
        put_key(&k1_again, Expect::Absent),
        put_channel(&c1, Expect::Absent),
        put_price("m", &price(2.0), Expect::Absent),
    ]);
    run.reopen();
    let loaded = run.store().load().unwrap();
    assert_eq!(loaded.keys["k1"], key_at(&k1_again, 1));
    assert_eq!(loaded.key_hashes["h1"], "k1");
    assert_eq!(loaded.channels["c1"], channel_at(&c1, 1));
    assert_eq!(loaded.pricing["m"], price_at(&price(2.0), 1));

    // Deleting a key and giving its hash to a new key in one change.
    let k3 = key("k3", "h1");
    run.ok(vec![
        ConfigOp::DeleteKey("k1".to_string(), Expect::Version(1)),
        put_key(&k3, Expect::Absent),
    ]);
    run.reopen();
    let loaded = run.store().load().unwrap();
    assert_eq!(loaded.key_hashes["h1"], "k3");
    assert!(!loaded.keys.contains_key("k1"));
}

/// `key_hashes` maps each key's hash to its id, follows hash changes, and refuses a second key
/// with a hash already in use.
fn key_hash_index(open: Open<'_>) {
    let mut run = Run::start(open);
    let k1 = key("k1", "h1");
    let k2 = key("k2", "h2");
    run.ok(vec![
        put_key(&k1, Expect::Absent),
        put_key(&k2, Expect::Absent),
    ]);
    let loaded = run.store().load().unwrap();
    assert_eq!(loaded.key_hashes["h1"], "k1");
    assert_eq!(loaded.key_hashes["h2"], "k2");

    // Two keys with one hash.
    assert_conflict(&run.refused(vec![put_key(&key("k3", "h1"), Expect::Absent)]));
    assert_conflict(&run.refused(vec![put_key(&key("k2", "h1"), Expect::Exists)]));

    // A new hash moves the index entry.
    let k1b = key("k1", "h1b");
    run.ok(vec![put_key(&k1b, Expect::Version(1))]);
    run.reopen();
    let loaded = run.store().load().unwrap();
    assert!(
        !loaded.key_hashes.contains_key("h1"),
        "the old hash is still indexed"
    );
    assert_eq!(loaded.key_hashes["h1b"], "k1");
    assert_eq!(loaded.key_hashes.len(), 2);

    // The freed hash is free; the writes of one change are applied in order (the old entry is
    // removed before the new key claims it).
    let k3 = key("k3", "h1b");
    let k1c = key("k1", "h1c");
    run.ok(vec![
        put_key(&k1c, Expect::Exists),
        put_key(&k3, Expect::Absent),
    ]);
    run.reopen();
    let loaded = run.store().load().unwrap();
    assert_eq!(loaded.key_hashes["h1c"], "k1");
    assert_eq!(loaded.key_hashes["h1b"], "k3");
    assert_eq!(loaded.key_hashes["h2"], "k2");
    assert_eq!(loaded.key_hashes.len(), 3);
    for (hash, id) in &loaded.key_hashes {
        assert_eq!(&loaded.keys[id.as_str()].hash, hash);
    }
}

/// A channel's name is unique in its pool, ignoring case; other pools may reuse it.
fn channel_names_unique_per_pool(open: Open<'_>) {
    let mut run = Run::start(open);
    let c1 = channel("c1", Pool::Messages, "Main");
    run.ok(vec![put_channel(&c1, Expect::Absent)]);

    assert_conflict(&run.refused(vec![put_channel(
        &channel("c2", Pool::Messages, "main"),
        Expect::Absent,
    )]));
    assert_conflict(&run.refused(vec![put_channel(
        &channel("c2", Pool::Messages, "MAIN"),
        Expect::Any,
    )]));

    // Other pools may use the name.
    let c2 = channel("c2", Pool::Responses, "main");
    let c3 = channel("c3", Pool::Chat, "MAIN");
    run.ok(vec![
        put_channel(&c2, Expect::Absent),
        put_channel(&c3, Expect::Absent),
    ]);
    // A channel may change the case of its own name.
    run.ok(vec![put_channel(
        &channel("c1", Pool::Messages, "MAIN"),
        Expect::Version(1),
    )]);
    // Renaming or moving onto a taken name is refused.
    let c4 = channel("c4", Pool::Messages, "backup");
    run.ok(vec![put_channel(&c4, Expect::Absent)]);
    assert_conflict(&run.refused(vec![put_channel(
        &channel("c4", Pool::Messages, "main"),
        Expect::Version(1),
    )]));
    assert_conflict(&run.refused(vec![put_channel(
        &channel("c2", Pool::Messages, "main"),
        Expect::Version(1),
    )]));
    run.reopen();
    assert_eq!(run.store().load().unwrap().channels.len(), 4);

    // Once the holder is deleted the name is free again.
    run.ok(vec![
        ConfigOp::DeleteChannel("c1".to_string(), Expect::Exists),
        put_channel(&channel("c4", Pool::Messages, "main"), Expect::Version(1)),
    ]);
    run.reopen();
    let loaded = run.store().load().unwrap();
    assert_eq!(loaded.channels["c4"].name, "main");
    assert_eq!(loaded.channels["c4"].version, 2);
    assert!(!loaded.channels.contains_key("c1"));
}

/// A commit whose base is not the stored revision is refused and writes nothing.
fn commit_checks_the_base(open: Open<'_>) {
    let mut run = Run::start(open);
    run.ok(vec![put_key(&key("k1", "h1"), Expect::Absent)]);
    run.ok(vec![put_key(&key("k2", "h2"), Expect::Absent)]);
    let before = run.store().load().unwrap();
    assert_eq!(before.revision, 2);

    // A second writer that planned against revision 1 (behind) or invented revision 5 (ahead).
    for base in [0, 1, 3, 5] {
        let mut other = before.clone();
        other.revision = base;
        let writes = other
            .apply_ops(&[
                ConfigOp::DeleteKey("k1".to_string(), Expect::Any),
                put_key(&key("k9", "h9"), Expect::Any),
                ConfigOp::PutSettings(Settings::default(), Expect::Any),
            ])
            .unwrap();
        let err = run
            .store()
            .commit(Commit {
                base,
                revision: other.revision,
                writes: &writes,
                cluster: None,
            })
            .unwrap_err();
        match err {
            StoreError::RevisionMoved { expected, found } => {
                assert_eq!((expected, found), (base, 2))
            }
            other => panic!("expected RevisionMoved, got {other:?}"),
        }
        run.verify();
    }
    run.reopen();
    assert_eq!(run.store().load().unwrap(), before);

    // Two writers from one state: the first commit wins, the second is refused.
    let mut first = before.clone();
    let mut second = before.clone();
    let w1 = first
        .apply_ops(&[put_key(&key("k3", "h3"), Expect::Absent)])
        .unwrap();
    let w2 = second
        .apply_ops(&[put_key(&key("k4", "h4"), Expect::Absent)])
        .unwrap();
    run.store()
        .commit(Commit {
            base: 2,
            revision: first.revision,
            writes: &w1,
            cluster: None,
        })
        .unwrap();
    let err = run
        .store()
        .commit(Commit {
            base: 2,
            revision: second.revision,
            writes: &w2,
            cluster: None,
        })
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::RevisionMoved {
                expected: 2,
                found: 3
            }
        ),
        "{err:?}"
    );
    run.state = first;
    run.verify();
    run.reopen();
    assert!(!run.store().load().unwrap().keys.contains_key("k4"));
}

/// The ops of one change land together or not at all.
fn changes_are_all_or_nothing(open: Open<'_>) {
    let mut run = Run::start(open);
    let c1 = channel("c1", Pool::Messages, "main");
    run.ok(vec![
        put_key(&key("k1", "h1"), Expect::Absent),
        put_channel(&c1, Expect::Absent),
    ]);
    let revision = run.revision();

    // The second op fails: the first is not written.
    let err = run.refused(vec![
        put_key(&key("k2", "h2"), Expect::Absent),
        put_channel(&c1, Expect::Version(7)),
    ]);
    assert_conflict(&err);
    let err = run.refused(vec![
        ConfigOp::DeleteKey("k1".to_string(), Expect::Exists),
        put_price("m", &price(1.0), Expect::Absent),
        ConfigOp::DeleteChannel("nope".to_string(), Expect::Exists),
    ]);
    assert_not_found(&err, "channel", "nope");
    let err = run.refused(vec![
        put_key(&key("k2", "h2"), Expect::Absent),
        put_key(&key("k3", "h2"), Expect::Absent),
    ]);
    assert_conflict(&err);
    run.reopen();
    let loaded = run.store().load().unwrap();
    assert_eq!(loaded.revision, revision);
    assert!(loaded.keys.contains_key("k1"));
    assert!(!loaded.keys.contains_key("k2"));
    assert!(!loaded.key_hashes.contains_key("h2"));
    assert!(loaded.pricing.is_empty());

    // And when every op holds, all of them land, in one revision.
    run.ok(vec![
        ConfigOp::DeleteKey("k1".to_string(), Expect::Exists),
        put_key(&key("k2", "h2"), Expect::Absent),
        put_price("m", &price(1.0), Expect::Absent),
        put_channel(
            &channel("c1", Pool::Messages, "renamed"),
            Expect::Version(1),
        ),
    ]);
    run.reopen();
    let loaded = run.store().load().unwrap();
    assert_eq!(loaded.revision, revision + 1);
    assert_eq!(loaded.keys.len(), 1);
    assert_eq!(loaded.keys["k2"].version, 1);
    assert_eq!(loaded.channels["c1"].name, "renamed");
    assert_eq!(loaded.pricing["m"].version, 1);
}

/// The keyring is stored once, read back whole, and never replaced; it is not config state.
fn keyring_is_set_once(open: Open<'_>) {
    let mut run = Run::start(open);
    assert_eq!(run.store().keyring().unwrap(), None);
    let record = keyring_record();
    run.store().init_keyring(&record).unwrap();
    assert_eq!(run.store().keyring().unwrap(), Some(record.clone()));
    run.verify();
    assert_eq!(run.revision(), 0, "the keyring is not a config change");

    let other = keyring_record();
    assert_ne!(other, record);
    assert_conflict(&run.store().init_keyring(&other).unwrap_err());
    assert_eq!(run.store().keyring().unwrap(), Some(record.clone()));

    run.ok(vec![put_key(&key("k1", "h1"), Expect::Absent)]);
    run.reopen();
    assert_eq!(run.store().keyring().unwrap(), Some(record.clone()));
    assert_conflict(&run.store().init_keyring(&other).unwrap_err());
    assert_eq!(run.store().keyring().unwrap(), Some(record));
}

/// Every field of every record survives a commit and a restart exactly (timestamps to the
/// nanosecond, floats to the bit, fields relaybox does not know).
fn records_round_trip(open: Open<'_>) {
    let mut run = Run::start(open);
    let sealed: SealedSecret = serde_json::from_value(json!("enc:v1:0011aabb:bm9uY2U")).unwrap();
    let extra = |value: Value| value.as_object().unwrap().clone();

    let mut k1 = key("k1", "h1");
    k1.description = "ci runner".to_string();
    k1.status = KeyStatus::Disabled;
    k1.is_admin = true;
    k1.legacy_hash = Some(LegacyHash {
        hash: "legacy".to_string(),
        salt: sealed.clone(),
    });
    k1.updated_at = datetime!(2026-03-04 05:06:07.000000001 +08:00);
    k1.expiry = Some(Expiry::AfterFirstUse { days: 30 });
    k1.first_used_at = Some(datetime!(2026-03-05 00:00:00.5 UTC));
    k1.limits = KeyLimits {
        requests_per_minute: Some(60),
        concurrent_requests: Some(2),
        tokens_per_window: Some(WindowLimit {
            limit: 1.0 / 3.0,
            window_seconds: 18_000,
        }),
        requests_per_window: None,
        cost_per_day: Some(0.1 + 0.2),
        cost_per_window: Some(WindowLimit {
            limit: 2.675,
            window_seconds: 3600,
        }),
        cost_total: Some(1e-7),
    };
    k1.allow = KeyAllowlists {
        endpoints: vec!["messages".to_string(), "chat".to_string()],
        models: vec!["claude-*".to_string()],
        user_agents: vec!["claude-cli".to_string()],
        ..KeyAllowlists::default()
    };
    k1.extra = extra(json!({"importedFrom": "crs", "tags": ["a", "b"], "n": {"x": 1.5}}));
    let mut k2 = key("k2", "h2");
    k2.expiry = Some(Expiry::FixedAt {
        expires_at: datetime!(2027-01-01 00:00:00 UTC),
    });

    let mut c1 = channel("c1", Pool::Gemini, "Gemini Pro");
    c1.credentials.api_keys = vec![sealed.clone(), sealed.clone()];
    c1.key_load_balance = "round-robin".to_string();
    c1.insecure_skip_verify = true;
    c1.model_mapping = BTreeMap::from([("opus".to_string(), "claude-opus-4-1".to_string())]);
    c1.response_header_timeout = Some(90);
    c1.priority = -2;
    c1.status = ChannelStatus::Suspended;
    c1.price_multipliers = BTreeMap::from([(
        "_default".to_string(),
        PriceMultiplier {
            input_multiplier: Some(0.7),
            output_multiplier: Some(1.1),
            ..PriceMultiplier::default()
        },
    )]);
    c1.credentials.oauth_tokens = Some(sealed);
    c1.quota_limit = Some(100.0 / 7.0);
    c1.quota_models = vec!["gemini-*".to_string()];
    c1.composite_mappings = vec![json!({"from": "a", "to": ["b", "c"]})];
    c1.position = 4;
    c1.origin = ChannelOrigin::Import;
    c1.extra = extra(json!({"contentFilter": {"enabled": true, "words": ["x"]}}));

    let p1 = ModelPrice {
        input_price: 1.0 / 3.0,
        output_price: 0.1 + 0.2,
        cache_creation_price: Some(0.0),
        cache_read_price: None,
        description: Some("Sonnet".to_string()),
        export_to_models: Some(false),
        version: 0,
        extra: extra(json!({"currency": "USD"})),
    };
    let a = ModelAliases {
        gemini_models: vec![ModelAlias {
            value: "gemini-2.5-pro".to_string(),
            description: Some("pro".to_string()),
        }],
        chat_models: vec![ModelAlias {
            value: "gpt-5".to_string(),
            description: None,
        }],
        extra: extra(json!({"note": "kept"})),
        ..aliases(&["claude-sonnet-4-5"])
    };
    let s = Settings {
        responses_load_balance: "random".to_string(),
        debug_log: Some(json!({"enabled": true})),
        key_prefix: "rb_".to_string(),
        max_body_bytes: 1 << 20,
        sticky_session_ttl_seconds: 0,
        extra: extra(json!({"currentUpstream": 2})),
        ..Settings::default()
    };

    run.ok(vec![
        put_key(&k1, Expect::Absent),
        put_key(&k2, Expect::Absent),
        put_channel(&c1, Expect::Absent),
        put_price("claude-sonnet", &p1, Expect::Absent),
        ConfigOp::PutAliases(a.clone(), Expect::Any),
        ConfigOp::PutSettings(s.clone(), Expect::Any),
    ]);
    run.reopen();
    let loaded = run.store().load().unwrap();
    assert_eq!(loaded.keys["k1"], key_at(&k1, 1));
    assert_eq!(loaded.keys["k2"], key_at(&k2, 1));
    let mut c1_stored = channel_at(&c1, 1);
    c1_stored.credentials.version = 1;
    assert_eq!(loaded.channels["c1"], c1_stored);
    assert_eq!(loaded.pricing["claude-sonnet"], price_at(&p1, 1));
    assert_eq!(loaded.aliases, ModelAliases { version: 1, ..a });
    assert_eq!(loaded.settings, Settings { version: 1, ..s });
}

/// Floats come back bit for bit: a price, limit or multiplier the writer committed is the one a
/// restart loads (not one a unit in the last place away).
///
/// Ignored for now: redb keeps records as JSON, and serde_json without its `float_roundtrip`
/// feature reads about one double in eleven one ulp off. Enable that feature, then drop the
/// `#[ignore]` below.
fn floats_round_trip(open: Open<'_>) {
    let mut run = Run::start(open);
    // 18.233521453552402 is one value a best-effort decimal parser reads one ulp off; the
    // computed ones are the kind of price an importer or a per-token conversion produces.
    let values: Vec<f64> = std::iter::once(18.233_521_453_552_402)
        .chain((1..=60).map(|i| f64::from(i) * 0.37 / 3.0 + 10.0))
        .collect();
    let mut ops = Vec::new();
    for (i, &value) in values.iter().enumerate() {
        let p = ModelPrice {
            input_price: value,
            output_price: value * 5.0,
            cache_creation_price: Some(value * 1.25),
            cache_read_price: Some(value / 10.0),
            ..ModelPrice::default()
        };
        ops.push(put_price(&format!("model-{i:02}"), &p, Expect::Absent));
    }
    let mut k1 = key("k1", "h1");
    k1.limits.cost_per_day = Some(values[0]);
    k1.limits.cost_total = Some(values[1] * 1000.0);
    k1.limits.cost_per_window = Some(WindowLimit {
        limit: values[2],
        window_seconds: 3600,
    });
    let mut c1 = channel("c1", Pool::Messages, "main");
    c1.quota_limit = Some(values[3]);
    c1.price_multipliers = BTreeMap::from([(
        "claude".to_string(),
        PriceMultiplier {
            input_multiplier: Some(values[4] / 10.0),
            ..PriceMultiplier::default()
        },
    )]);
    ops.push(put_key(&k1, Expect::Absent));
    ops.push(put_channel(&c1, Expect::Absent));
    run.ok(ops);
    run.reopen();
    let loaded = run.store().load().unwrap();
    for (i, &value) in values.iter().enumerate() {
        let stored = loaded.pricing[format!("model-{i:02}").as_str()].input_price;
        assert_eq!(
            stored.to_bits(),
            value.to_bits(),
            "{value} came back as {stored}"
        );
    }
    assert_eq!(loaded.keys["k1"], key_at(&k1, 1));
    assert_eq!(loaded.channels["c1"], channel_at(&c1, 1));
}

// ---------------------------------------------------------------------------------------------
// One test per property and engine

/// Credentials are their own record: rotating them bumps only their version, a channel edit
/// that keeps them leaves their version, a delete takes them along, a stale version is refused.
fn credentials_are_their_own_record(open: Open<'_>) {
    let mut run = Run::start(open);
    let sealed = |text: &str| -> crate::crypto::SealedSecret {
        serde_json::from_value(json!(format!("enc:v1:0011aabb:{text}"))).unwrap()
    };
    let mut c = channel("c1", Pool::Messages, "main");
    c.credentials.api_keys = vec![sealed("one")];
    run.ok(vec![put_channel(&c, Expect::Absent)]);
    let stored = run.state.channels["c1"].clone();
    assert_eq!((stored.version, stored.credentials.version), (1, 1));

    // Rotation: the channel's version stays.
    let rotated = crate::domain::channel::Credentials {
        api_keys: vec![sealed("two")],
        ..stored.credentials.clone()
    };
    run.ok(vec![ConfigOp::PutCredentials(
        "c1".into(),
        rotated.clone(),
        Expect::Version(1),
    )]);
    let stored = run.state.channels["c1"].clone();
    assert_eq!((stored.version, stored.credentials.version), (1, 2));
    assert_eq!(stored.credentials.api_keys, rotated.api_keys);
    run.reopen();

    // An admin who loaded the channel before the rotation edits it: no conflict, and the
    // rotated key stays.
    let mut edited = stored.clone();
    edited.priority = 7;
    run.ok(vec![put_channel(&edited, Expect::Version(1))]);
    let stored = run.state.channels["c1"].clone();
    assert_eq!((stored.version, stored.credentials.version), (2, 2));
    assert_eq!(stored.credentials.api_keys, rotated.api_keys);

    // A stale credentials version is refused; so are the credentials of a missing channel.
    assert_conflict(&run.refused(vec![ConfigOp::PutCredentials(
        "c1".into(),
        rotated.clone(),
        Expect::Version(1),
    )]));
    let err = run.refused(vec![ConfigOp::PutCredentials(
        "nope".into(),
        rotated,
        Expect::Any,
    )]);
    assert_not_found(&err, "channel", "nope");

    // Deleted with the channel; a new channel of the same id starts without them.
    run.ok(vec![ConfigOp::DeleteChannel("c1".into(), Expect::Exists)]);
    run.reopen();
    run.ok(vec![put_channel(
        &channel("c1", Pool::Messages, "main"),
        Expect::Absent,
    )]);
    let stored = run.state.channels["c1"].clone();
    assert!(stored.credentials.api_keys.is_empty());
    assert_eq!(stored.credentials.version, 0);
    run.reopen();
}

macro_rules! conformance {
    ($engine:ident, $fresh:expr) => {
        mod $engine {
            #[test]
            fn empty_store() {
                let Some(fresh) = $fresh() else { return };
                super::empty_store(&*fresh);
            }
            #[test]
            fn versions_and_revisions() {
                let Some(fresh) = $fresh() else { return };
                super::versions_and_revisions(&*fresh);
            }
            #[test]
            fn refusals_write_nothing() {
                let Some(fresh) = $fresh() else { return };
                super::refusals_write_nothing(&*fresh);
            }
            #[test]
            fn deletes_are_real() {
                let Some(fresh) = $fresh() else { return };
                super::deletes_are_real(&*fresh);
            }
            #[test]
            fn key_hash_index() {
                let Some(fresh) = $fresh() else { return };
                super::key_hash_index(&*fresh);
            }
            #[test]
            fn channel_names_unique_per_pool() {
                let Some(fresh) = $fresh() else { return };
                super::channel_names_unique_per_pool(&*fresh);
            }
            #[test]
            fn commit_checks_the_base() {
                let Some(fresh) = $fresh() else { return };
                super::commit_checks_the_base(&*fresh);
            }
            #[test]
            fn changes_are_all_or_nothing() {
                let Some(fresh) = $fresh() else { return };
                super::changes_are_all_or_nothing(&*fresh);
            }
            #[test]
            fn keyring_is_set_once() {
                let Some(fresh) = $fresh() else { return };
                super::keyring_is_set_once(&*fresh);
            }
            #[test]
            fn credentials_are_their_own_record() {
                let Some(fresh) = $fresh() else { return };
                super::credentials_are_their_own_record(&*fresh);
            }
            #[test]
            fn records_round_trip() {
                let Some(fresh) = $fresh() else { return };
                super::records_round_trip(&*fresh);
            }
            #[test]
            fn floats_round_trip() {
                let Some(fresh) = $fresh() else { return };
                super::floats_round_trip(&*fresh);
            }
        }
    };
}

conformance!(memory, super::memory_engine);
conformance!(redb, super::redb_engine);
conformance!(postgres, super::postgres_engine);
