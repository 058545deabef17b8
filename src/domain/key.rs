//! Client keys: what a client presents to relaybox. Stored only as hashes.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::OffsetDateTime;

use crate::crypto::SealedSecret;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyStatus {
    #[default]
    Active,
    Disabled,
    Revoked,
}

impl KeyStatus {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            KeyStatus::Active => "active",
            KeyStatus::Disabled => "disabled",
            KeyStatus::Revoked => "revoked",
        }
    }
}

/// When a key stops working.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "camelCase")]
pub enum Expiry {
    /// A fixed instant.
    #[serde(rename_all = "camelCase")]
    FixedAt {
        #[serde(with = "time::serde::rfc3339")]
        expires_at: OffsetDateTime,
    },
    /// N days after the key is first used (claude-relay-service "activation").
    #[serde(rename_all = "camelCase")]
    AfterFirstUse { days: u32 },
}

/// A budget over a rolling window of `window_seconds`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WindowLimit {
    pub limit: f64,
    pub window_seconds: u64,
}

/// All optional; `None` means unlimited.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyLimits {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_per_minute: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrent_requests: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_per_window: Option<WindowLimit>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_per_window: Option<WindowLimit>,
    /// USD per calendar day (UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_per_day: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_per_window: Option<WindowLimit>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_total: Option<f64>,
}

/// Empty lists mean "everything allowed".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyAllowlists {
    /// `messages`, `responses`, `gemini`, `chat` (cc-bridge `allowed_endpoints`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub endpoints: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub channels_messages: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub channels_responses: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub channels_gemini: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub channels_chat: Vec<String>,
    /// Model globs (`claude-*`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub models: Vec<String>,
    /// User-agent substrings a client must present.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub user_agents: Vec<String>,
}

/// A salted hash carried over from claude-relay-service: `sha256(key + salt)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LegacyHash {
    pub hash: String,
    /// The salt (claude-relay-service's `ENCRYPTION_KEY`), sealed at rest.
    pub salt: SealedSecret,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientKey {
    pub id: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    #[serde(default)]
    pub status: KeyStatus,
    #[serde(default)]
    pub is_admin: bool,
    /// SHA-256 (hex) of the whole key.
    pub hash: String,
    /// The first characters of the key, for recognising it in lists (`cr_1a2b…`).
    pub display_prefix: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub legacy_hash: Option<LegacyHash>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiry: Option<Expiry>,
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub first_used_at: Option<OffsetDateTime>,
    #[serde(default)]
    pub limits: KeyLimits,
    #[serde(default)]
    pub allow: KeyAllowlists,
    #[serde(default)]
    pub version: u64,
    /// Fields carried over from an import that relaybox keeps but does not act on.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}
