//! Client keys: what a client presents to relaybox. Stored only as hashes.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::OffsetDateTime;

use super::bounds::{self, Bounds, InvalidField};
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

impl Expiry {
    pub fn validate(&self) -> Result<(), InvalidField> {
        match self {
            Expiry::FixedAt { .. } => Ok(()),
            Expiry::AfterFirstUse { days } => Bounds::between(1, 3650, "days")
                .check("days", *days)
                .map_err(|e| e.under("expiry")),
        }
    }
}

/// A budget over a rolling window of `window_seconds`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WindowLimit {
    pub limit: f64,
    pub window_seconds: u64,
}

/// The longest rolling window a limit may have: ten years.
pub const MAX_WINDOW_SECONDS: u64 = bounds::TEN_YEARS_SECONDS;

impl WindowLimit {
    fn validate(&self, amount: Bounds<f64>) -> Result<(), InvalidField> {
        amount.check("limit", self.limit)?;
        bounds::WINDOW_SECONDS.check("windowSeconds", self.window_seconds)
    }
}

impl KeyLimits {
    /// Why these limits cannot be used, if they cannot: a limit that no request can meet (zero,
    /// negative, not a number) would refuse the key forever, and a window beyond ten years
    /// cannot be computed with. Fields are named as in the admin API (`limits.costPerDay`).
    pub fn validate(&self) -> Result<(), InvalidField> {
        let window = |name: &str, value: &Option<WindowLimit>, amount| {
            value
                .as_ref()
                .map_or(Ok(()), |w| w.validate(amount).map_err(|e| e.under(name)))
        };
        (|| {
            bounds::POSITIVE_U32.check_some("requestsPerMinute", self.requests_per_minute)?;
            bounds::POSITIVE_U32.check_some("concurrentRequests", self.concurrent_requests)?;
            bounds::POSITIVE_USD.check_some("costPerDay", self.cost_per_day)?;
            bounds::POSITIVE_USD.check_some("costTotal", self.cost_total)?;
            window(
                "tokensPerWindow",
                &self.tokens_per_window,
                bounds::POSITIVE_COUNT,
            )?;
            window(
                "requestsPerWindow",
                &self.requests_per_window,
                bounds::POSITIVE_COUNT,
            )?;
            window("costPerWindow", &self.cost_per_window, bounds::POSITIVE_USD)
        })()
        .map_err(|e| e.under("limits"))
    }

    /// The limits with every unusable one left out, and what was left out (a record written
    /// before the checks existed, or by an importer): a bad limit is reported, never fatal.
    #[must_use]
    pub fn usable(&self) -> (KeyLimits, Vec<InvalidField>) {
        let mut limits = self.clone();
        let mut dropped = Vec::new();
        while let Err(problem) = limits.validate() {
            let cleared = match problem.field.split('.').nth(1) {
                Some("requestsPerMinute") => limits.requests_per_minute.take().is_some(),
                Some("concurrentRequests") => limits.concurrent_requests.take().is_some(),
                Some("costPerDay") => limits.cost_per_day.take().is_some(),
                Some("costTotal") => limits.cost_total.take().is_some(),
                Some("tokensPerWindow") => limits.tokens_per_window.take().is_some(),
                Some("requestsPerWindow") => limits.requests_per_window.take().is_some(),
                Some("costPerWindow") => limits.cost_per_window.take().is_some(),
                _ => false,
            };
            dropped.push(problem);
            if !cleared {
                // A field `validate` names but this list does not: drop every limit rather
                // than loop.
                limits = KeyLimits::default();
            }
        }
        (limits, dropped)
    }
}

/// All optional; `None` means unlimited.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyLimits {
    // Adding a field: add it to `FIELDS` and its bound to `validate`.
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

impl KeyLimits {
    /// The fields the admin API accepts in `limits`.
    pub const FIELDS: &'static [&'static str] = &[
        "requestsPerMinute",
        "concurrentRequests",
        "tokensPerWindow",
        "requestsPerWindow",
        "costPerDay",
        "costPerWindow",
        "costTotal",
    ];
}

impl WindowLimit {
    pub const FIELDS: &'static [&'static str] = &["limit", "windowSeconds"];
}

impl KeyAllowlists {
    pub const FIELDS: &'static [&'static str] = &[
        "endpoints",
        "channelsMessages",
        "channelsResponses",
        "channelsGemini",
        "channelsChat",
        "models",
        "userAgents",
    ];
}

/// The fields of an admin key body (`limits`, `allow`) that a key does not have: these types
/// keep no extras, so serde would drop an unknown field without a word.
pub fn unknown_key_fields(body: &Map<String, Value>) -> Result<(), InvalidField> {
    if let Some(Value::Object(limits)) = body.get("limits") {
        bounds::only_fields(limits, KeyLimits::FIELDS).map_err(|e| e.under("limits"))?;
        for window in ["tokensPerWindow", "requestsPerWindow", "costPerWindow"] {
            if let Some(Value::Object(w)) = limits.get(window) {
                bounds::only_fields(w, WindowLimit::FIELDS)
                    .map_err(|e| e.under(window).under("limits"))?;
            }
        }
    }
    if let Some(Value::Object(allow)) = body.get("allow") {
        bounds::only_fields(allow, KeyAllowlists::FIELDS).map_err(|e| e.under("allow"))?;
    }
    Ok(())
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

impl ClientKey {
    /// Whether the key's expiry has passed at `now`. A key that expires N days after its first
    /// use and was never used has not; an end beyond the calendar never comes.
    #[must_use]
    pub fn is_expired(&self, now: OffsetDateTime) -> bool {
        match &self.expiry {
            Some(Expiry::FixedAt { expires_at }) => now >= *expires_at,
            Some(Expiry::AfterFirstUse { days }) => self.first_used_at.is_some_and(|first| {
                first
                    .checked_add(time::Duration::days(i64::from(*days)))
                    .is_some_and(|end| now >= end)
            }),
            None => false,
        }
    }

    /// An active, unexpired admin key: what the admin API accepts.
    #[must_use]
    pub fn grants_admin(&self, now: OffsetDateTime) -> bool {
        self.is_admin && self.status == KeyStatus::Active && !self.is_expired(now)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail loudly")]

    use super::*;
    use time::macros::datetime;

    fn key(expiry: Option<Expiry>, first_used_at: Option<OffsetDateTime>) -> ClientKey {
        let mut key: ClientKey = serde_json::from_value(serde_json::json!({
            "id": "k", "name": "k", "hash": "h", "displayPrefix": "rb_", "isAdmin": true,
            "createdAt": "2026-01-01T00:00:00Z", "updatedAt": "2026-01-01T00:00:00Z",
        }))
        .unwrap();
        key.expiry = expiry;
        key.first_used_at = first_used_at;
        key
    }

    #[test]
    fn expiry_and_admin_rights() {
        let now = datetime!(2026-06-01 00:00 UTC);
        let past = Some(Expiry::FixedAt {
            expires_at: datetime!(2026-05-01 00:00 UTC),
        });
        assert!(key(past.clone(), None).is_expired(now));
        assert!(
            !key(past, None).grants_admin(now),
            "an expired admin key is no admin key"
        );
        assert!(key(None, None).grants_admin(now));
        let ten_days = Some(Expiry::AfterFirstUse { days: 10 });
        assert!(!key(ten_days.clone(), None).is_expired(now), "never used");
        assert!(key(ten_days.clone(), Some(datetime!(2026-05-01 00:00 UTC))).is_expired(now));
        assert!(!key(ten_days, Some(datetime!(2026-05-30 00:00 UTC))).is_expired(now));
        // An end beyond the calendar never comes (and does not overflow).
        let forever = Some(Expiry::AfterFirstUse { days: u32::MAX });
        assert!(!key(forever, Some(now)).is_expired(now));
        let mut disabled = key(None, None);
        disabled.status = KeyStatus::Disabled;
        assert!(!disabled.grants_admin(now));
    }
}
