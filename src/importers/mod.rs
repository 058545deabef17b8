//! Importers: bring the data of the tools relaybox replaces into relaybox's stores.
//!
//! - [`cc_bridge`]: a cc-bridge `.config/` folder (JSON files + SQLite), also the format of the
//!   hot-reloaded JSON files in the data dir (SPEC §4).

pub mod cc_bridge;

/// The AAD that binds a channel's sealed upstream API keys to that channel.
///
/// Every entry of `Channel::api_keys` is sealed with this AAD; the relay opens them with it.
#[must_use]
pub fn api_key_aad(channel_id: &str) -> String {
    format!("channel/{channel_id}/apiKey")
}

/// The AAD that binds a channel's sealed OAuth token block (JSON object text) to that channel.
#[must_use]
pub fn oauth_aad(channel_id: &str) -> String {
    format!("channel/{channel_id}/oauthTokens")
}
