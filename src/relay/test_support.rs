//! Fixtures for the request path's unit tests: a cipher, channels, keys, a snapshot and a
//! [`Relay`], all in memory (no data dir).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use serde_json::{Map, json};
use time::OffsetDateTime;

use super::Relay;
use crate::config::aad::{api_key_aad, oauth_aad};
use crate::config::{Configuration, LiveChannel, Snapshot};
use crate::crypto::{Cipher, MasterSecret};
use crate::domain::key::{KeyAllowlists, KeyLimits};
use crate::domain::{Channel, ClientKey, KeyStatus, Pool, Settings};
use crate::store::ConfigState;

/// A cipher from a fresh random master secret (no keyring file).
pub(crate) fn cipher() -> Cipher {
    let master = MasterSecret::from_text(&MasterSecret::generate_text().unwrap());
    Cipher::create(&master).unwrap().0
}

/// An active channel of `pool` without credentials.
pub(crate) fn channel(id: &str, pool: Pool, service_type: &str, priority: i64) -> Channel {
    let mut channel: Channel = serde_json::from_value(json!({
        "id": id,
        "pool": pool,
        "name": format!("ch-{id}"),
        "serviceType": service_type,
        "baseUrl": format!("https://{id}.upstream.example"),
        "priority": priority,
    }))
    .unwrap();
    channel.pool = pool;
    channel
}

/// `channel` with these upstream API keys, sealed as the store keeps them.
pub(crate) fn with_api_keys(mut channel: Channel, cipher: &Cipher, keys: &[&str]) -> Channel {
    channel.credentials.api_keys = keys
        .iter()
        .map(|key| cipher.seal(&api_key_aad(&channel.id), key).unwrap())
        .collect();
    channel
}

/// `channel` with an OAuth token block (JSON text), sealed.
pub(crate) fn with_oauth(mut channel: Channel, cipher: &Cipher, tokens: &str) -> Channel {
    channel.credentials.oauth_tokens = Some(cipher.seal(&oauth_aad(&channel.id), tokens).unwrap());
    channel
}

/// The channel as the request path sees it, secrets opened.
pub(crate) fn live(channel: &Channel, cipher: &Cipher) -> LiveChannel {
    LiveChannel::open(channel, cipher).unwrap()
}

/// An active client key without limits or allowlists.
pub(crate) fn key(id: &str) -> ClientKey {
    let at = OffsetDateTime::UNIX_EPOCH;
    ClientKey {
        id: id.to_string(),
        name: format!("key {id}"),
        description: String::new(),
        status: KeyStatus::Active,
        is_admin: false,
        hash: format!("hash-{id}"),
        display_prefix: "cr_test".to_string(),
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

/// A snapshot of these channels (file position = their order here) and settings.
pub(crate) fn snapshot(cipher: &Cipher, channels: Vec<Channel>, settings: Settings) -> Snapshot {
    let mut state = ConfigState {
        settings,
        ..ConfigState::default()
    };
    for (position, mut channel) in channels.into_iter().enumerate() {
        channel.position = u32::try_from(position).unwrap();
        state.channels.insert(channel.id.clone(), channel);
    }
    Snapshot::build(state, cipher).unwrap()
}

/// A relay over an empty in-memory config store, whose log rows go to an in-memory SQLite
/// database. Needs a Tokio runtime only for what is sent through it.
pub(crate) fn relay() -> Relay {
    let cipher = Arc::new(cipher());
    let store = Arc::new(crate::store::memory::MemoryStore::default());
    let config = Configuration::local(store, cipher).unwrap();
    let logs = crate::store::sqlite::LogDb::open(
        std::path::Path::new(":memory:"),
        crate::store::sqlite::OpenOptions::default(),
    )
    .unwrap();
    Relay {
        config: Arc::new(config),
        limits: crate::limits::Limiter::new(Arc::new(crate::limits::SystemClock)),
        health: super::routing::Health::default(),
        upstream: super::client::UpstreamClient::new().unwrap(),
        logs: crate::store::sqlite::writer::LogWriter::start(logs, Default::default()).unwrap(),
        metrics: crate::metrics::Metrics::default(),
        tasks: crate::tasks::Tasks::new(),
        body_read_timeout: super::state::DEFAULT_BODY_READ_TIMEOUT,
        drain_over: tokio_util::sync::CancellationToken::new(),
    }
}
