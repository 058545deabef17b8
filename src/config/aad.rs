//! The associated data each sealed secret is bound to: a secret copied to another record
//! (another channel or key) does not open.

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
