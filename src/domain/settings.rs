//! Global settings: the non-channel part of cc-bridge's `config.json` plus relaybox's own knobs.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::Pool;

/// One step of a failover action chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActionStep {
    /// `retry`, `failover`, `suspend` or `none`.
    pub action: String,
    /// Seconds to wait before a retry; 0 = use the upstream's reset hint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait_seconds: Option<u64>,
    /// Attempts for a retry step; 99 = unlimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<u32>,
}

/// `errorCodes` such as `"429:QUOTA_EXHAUSTED"`, `"500,502"` or `"others"`, and what to do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FailoverRule {
    pub error_codes: String,
    #[serde(default)]
    pub action_chain: Vec<ActionStep>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FailoverSettings {
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default)]
    pub rules: Vec<FailoverRule>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generic_resource_wait_seconds: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_cooldown_extra_seconds: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_cooldown_max_wait_seconds: Option<u64>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

fn yes() -> bool {
    true
}

impl Default for FailoverSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            rules: Vec::new(),
            generic_resource_wait_seconds: None,
            model_cooldown_extra_seconds: None,
            model_cooldown_max_wait_seconds: None,
            extra: Map::new(),
        }
    }
}

pub const DEFAULT_KEY_PREFIX: &str = "cr_";
pub const DEFAULT_MAX_BODY_BYTES: u64 = 32 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Settings {
    /// `failover` (default), `round-robin` or `random`, per pool.
    #[serde(default = "failover")]
    pub load_balance: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub responses_load_balance: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub gemini_load_balance: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub chat_load_balance: String,
    #[serde(default)]
    pub failover: FailoverSettings,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub debug_log: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outbound_header_policy: Option<Value>,
    /// Currency of `pricing.json` (cc-bridge: always USD).
    #[serde(default = "usd")]
    pub pricing_currency: String,
    /// Prefix of newly created client keys.
    #[serde(default = "default_key_prefix")]
    pub key_prefix: String,
    /// Largest request body the relay accepts.
    #[serde(default = "default_max_body")]
    pub max_body_bytes: u64,
    /// Consecutive failures after which a channel's circuit opens (it is skipped).
    #[serde(default = "default_breaker_threshold")]
    pub circuit_breaker_threshold: u32,
    /// How long an open circuit stays open before one trial request is let through.
    #[serde(default = "default_breaker_cooldown")]
    pub circuit_breaker_cooldown_seconds: u64,
    /// How long a `suspend` failover action parks a channel when the upstream gives no reset time.
    #[serde(default = "default_suspend")]
    pub suspend_seconds: u64,
    /// How long requests of one conversation stay on the channel that served them first
    /// (0 turns sticky sessions off).
    #[serde(default = "default_sticky_ttl")]
    pub sticky_session_ttl_seconds: u64,
    /// How many requests may wait in one channel's `queueEnabled` rate-limit queue.
    #[serde(default = "default_queue_length")]
    pub max_queue_length: u32,
    #[serde(default)]
    pub version: u64,
    /// cc-bridge fields relaybox keeps but does not act on (legacy `currentUpstream`, …).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
    /// A stream (or a non-stream body) from which the upstream sends no byte for this long is
    /// ended with a timeout error; a channel's `streamIdleTimeoutSeconds` overrides it.
    #[serde(default = "default_stream_idle_timeout")]
    pub stream_idle_timeout_seconds: u64,
    /// Retries and failover for one request start no new attempt or wait after this long
    /// (0 = no bound).
    #[serde(default = "default_request_deadline")]
    pub request_deadline_seconds: u64,
}

/// Long enough for a reasoning model that thinks for minutes between two events (upstreams
/// send pings meanwhile, but not all of them), short enough that a dead upstream frees its
/// client well before the client's own 10-minute timeout.
pub const DEFAULT_STREAM_IDLE_TIMEOUT_SECONDS: u64 = 300;
/// Below the 10 minutes the Anthropic and OpenAI SDKs (and Claude Code) wait by default, so the
/// client gets the relay's last upstream error rather than its own timeout.
pub const DEFAULT_REQUEST_DEADLINE_SECONDS: u64 = 300;

fn default_stream_idle_timeout() -> u64 {
    DEFAULT_STREAM_IDLE_TIMEOUT_SECONDS
}
fn default_request_deadline() -> u64 {
    DEFAULT_REQUEST_DEADLINE_SECONDS
}

fn failover() -> String {
    "failover".to_string()
}
fn usd() -> String {
    "USD".to_string()
}
fn default_key_prefix() -> String {
    DEFAULT_KEY_PREFIX.to_string()
}
fn default_max_body() -> u64 {
    DEFAULT_MAX_BODY_BYTES
}
fn default_breaker_threshold() -> u32 {
    5
}
fn default_breaker_cooldown() -> u64 {
    30
}
fn default_suspend() -> u64 {
    300
}
fn default_sticky_ttl() -> u64 {
    3600
}
fn default_queue_length() -> u32 {
    100
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            load_balance: failover(),
            responses_load_balance: String::new(),
            gemini_load_balance: String::new(),
            chat_load_balance: String::new(),
            failover: FailoverSettings::default(),
            debug_log: None,
            user_agent: None,
            outbound_header_policy: None,
            pricing_currency: usd(),
            key_prefix: default_key_prefix(),
            max_body_bytes: default_max_body(),
            circuit_breaker_threshold: default_breaker_threshold(),
            circuit_breaker_cooldown_seconds: default_breaker_cooldown(),
            suspend_seconds: default_suspend(),
            sticky_session_ttl_seconds: default_sticky_ttl(),
            max_queue_length: default_queue_length(),
            version: 0,
            extra: Map::new(),
            stream_idle_timeout_seconds: default_stream_idle_timeout(),
            request_deadline_seconds: default_request_deadline(),
        }
    }
}

impl Settings {
    /// relaybox's own fields (camelCase): never read from or written to cc-bridge files.
    pub const OWN_FIELDS: &'static [&'static str] = &[
        "pricingCurrency",
        "keyPrefix",
        "maxBodyBytes",
        "circuitBreakerThreshold",
        "circuitBreakerCooldownSeconds",
        "suspendSeconds",
        "stickySessionTtlSeconds",
        "maxQueueLength",
        "version",
        "streamIdleTimeoutSeconds",
        "requestDeadlineSeconds",
    ];

    /// The load-balance strategy of a pool (empty falls back to `loadBalance`, as in cc-bridge).
    #[must_use]
    pub fn load_balance_for(&self, pool: Pool) -> &str {
        let specific = match pool {
            Pool::Messages => "",
            Pool::Responses => &self.responses_load_balance,
            Pool::Gemini => &self.gemini_load_balance,
            Pool::Chat => &self.chat_load_balance,
        };
        if specific.is_empty() {
            &self.load_balance
        } else {
            specific
        }
    }
}
