//! Upstream channels: the cc-bridge `UpstreamConfig` fields, in one of four pools.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::bounds::{self, Bounds, InvalidField};
use crate::crypto::SealedSecret;

/// The four channel pools; the endpoint a client calls decides the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Pool {
    /// `/v1/messages` (cc-bridge `upstream`).
    Messages,
    /// `/v1/responses` (cc-bridge `responsesUpstream`).
    Responses,
    /// Gemini endpoints (cc-bridge `geminiUpstream`).
    Gemini,
    /// `/v1/chat/completions` (cc-bridge `chatUpstream`).
    Chat,
}

impl Pool {
    pub const ALL: [Pool; 4] = [Pool::Messages, Pool::Responses, Pool::Gemini, Pool::Chat];

    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Pool::Messages => "messages",
            Pool::Responses => "responses",
            Pool::Gemini => "gemini",
            Pool::Chat => "chat",
        }
    }

    #[must_use]
    pub fn parse(text: &str) -> Option<Pool> {
        Pool::ALL.into_iter().find(|pool| pool.as_str() == text)
    }
}

impl std::fmt::Display for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChannelStatus {
    #[default]
    Active,
    /// Paused, manually or by a failover `suspend` action.
    Suspended,
    /// In the standby pool; never routed to.
    Disabled,
}

/// Where a channel came from: `config.json` re-imports replace only the channels they own.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ChannelOrigin {
    #[default]
    Admin,
    ConfigFile,
    Import,
}

/// Cost multipliers for one model prefix (`_default` multiplies with the specific match).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PriceMultiplier {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_multiplier: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_multiplier: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_creation_multiplier: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_read_multiplier: Option<f64>,
}

/// One upstream. Secrets (`apiKeys`, `oauthTokens`) are always sealed in this type; only the
/// live snapshot holds them opened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Channel {
    pub id: String,
    pub pool: Pool,
    pub name: String,
    pub service_type: String,
    pub base_url: String,
    /// The upstream secrets: a store record of their own with its own version, so rotating
    /// or refreshing them never bumps the channel's `version` (no false 409 for an admin
    /// editing the channel meanwhile). Never part of the channel's record.
    #[serde(skip)]
    pub credentials: Credentials,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub key_load_balance: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub website: String,
    #[serde(default)]
    pub insecure_skip_verify: bool,
    #[serde(default)]
    pub model_mapping: BTreeMap<String, String>,
    /// Seconds to wait for upstream response headers (cc-bridge default 120).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_header_timeout: Option<u64>,
    #[serde(default)]
    pub priority: i64,
    #[serde(default)]
    pub status: ChannelStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promotion_until: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub price_multipliers: BTreeMap<String, PriceMultiplier>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub quota_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota_limit: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota_reset_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota_reset_interval: Option<i64>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub quota_reset_unit: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub quota_reset_mode: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub quota_models: Vec<String>,
    #[serde(default)]
    pub rate_limit_rpm: u32,
    #[serde(default)]
    pub queue_enabled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue_timeout: Option<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub composite_mappings: Vec<Value>,
    /// Order inside the pool as in the source file (ties in priority keep file order).
    #[serde(default)]
    pub position: u32,
    #[serde(default)]
    pub origin: ChannelOrigin,
    /// Optimistic-concurrency version; bumped by every write.
    #[serde(default)]
    pub version: u64,
    /// Every other field of the source (cc-bridge has many that relaybox keeps but does not
    /// act on yet: contentFilter, codexServiceTierOverride, …).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
    /// Seconds without a byte from the upstream after which a response is ended with a
    /// timeout error; `None` = the settings' `streamIdleTimeoutSeconds`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_idle_timeout_seconds: Option<u64>,
}

/// A channel's upstream secrets, sealed (`enc:v1:…`, AAD bound to the channel id).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Credentials {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub api_keys: Vec<SealedSecret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oauth_tokens: Option<SealedSecret>,
    /// Bumped by every change of the secrets (not by changes of the channel).
    #[serde(default)]
    pub version: u64,
    /// The digest of the secrets a config file last gave this channel: a reload whose file
    /// still says the same keeps secrets rotated since (by the admin API or a token refresh).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_digest: Option<String>,
}

impl Credentials {
    /// The same secrets (versions and file digest aside).
    #[must_use]
    pub fn same_secrets(&self, other: &Credentials) -> bool {
        self.api_keys == other.api_keys && self.oauth_tokens == other.oauth_tokens
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.api_keys.is_empty() && self.oauth_tokens.is_none()
    }
}

impl PriceMultiplier {
    fn validate(&self) -> Result<(), InvalidField> {
        let m = bounds::MULTIPLIER;
        m.check_some("inputMultiplier", self.input_multiplier)?;
        m.check_some("outputMultiplier", self.output_multiplier)?;
        m.check_some("cacheCreationMultiplier", self.cache_creation_multiplier)?;
        m.check_some("cacheReadMultiplier", self.cache_read_multiplier)
    }
}

impl Channel {
    /// cc-bridge channel fields relaybox keeps (in `extra`) but does not act on yet: the admin
    /// API accepts these, and refuses any other field a channel does not have.
    pub const CC_BRIDGE_EXTRAS: &'static [&'static str] = &[
        "codexServiceTierOverride",
        "contentFilter",
        "continueThinkingEnabled",
        "responsesEncryptedReasoningMode",
        "responsesWebSocketEnabled",
    ];

    /// Whether relaybox can work with this channel's numbers (field names as in the admin API).
    pub fn validate(&self) -> Result<(), InvalidField> {
        if let Some(problem) = service_type_problem(self.pool, &self.service_type) {
            return Err(InvalidField::new("serviceType", problem));
        }
        bounds::SECONDS_1_TO_A_DAY
            .check_some("responseHeaderTimeout", self.response_header_timeout)?;
        Bounds::between(-1_000_000, 1_000_000, "").check("priority", self.priority)?;
        Bounds::between(0.0, bounds::MAX_COUNT, "(0 = no quota)")
            .check_some("quotaLimit", self.quota_limit)?;
        Bounds::between(1, 1000, "units of quotaResetUnit")
            .check_some("quotaResetInterval", self.quota_reset_interval)?;
        Bounds::between(0, 1_000_000, "requests per minute (0 = no limit)")
            .check("rateLimitRpm", self.rate_limit_rpm)?;
        bounds::SECONDS_1_TO_A_DAY.check_some("queueTimeout", self.queue_timeout)?;
        Bounds::between(0, bounds::DAY_SECONDS, "seconds (0 = the settings' value)")
            .check_some("streamIdleTimeoutSeconds", self.stream_idle_timeout_seconds)?;
        for (prefix, multiplier) in &self.price_multipliers {
            multiplier
                .validate()
                .map_err(|e| e.under(prefix).under("priceMultipliers"))?;
        }
        Ok(())
    }

    /// Whether relaybox may route requests to this channel at all.
    #[must_use]
    pub fn is_routable(&self) -> bool {
        self.status == ChannelStatus::Active
    }
}

/// Why a channel of `service_type` cannot be used in `pool`, if it cannot. Every pool takes an
/// upstream of any of the four protocols (the relay converts between them); a Codex account
/// (`openai-oauth`) serves only the responses pool and a `composite` channel only the messages
/// pool.
#[must_use]
pub fn service_type_problem(pool: Pool, service_type: &str) -> Option<String> {
    match (pool, service_type) {
        (_, "claude" | "openai" | "openai_chat" | "openaiold" | "responses" | "gemini")
        | (Pool::Responses, "openai-oauth")
        | (Pool::Messages, "composite") => None,
        (_, "openai-oauth") => Some(format!(
            "'openai-oauth' (a Codex account) can serve only the responses pool, not the {pool} pool"
        )),
        (_, "composite") => Some(format!(
            "'composite' exists only in the messages pool, not the {pool} pool"
        )),
        (_, other) => Some(format!(
            "'{other}' is not a service type relaybox knows (claude, openai, openai_chat, openaiold, responses, gemini, openai-oauth, composite)"
        )),
    }
}
