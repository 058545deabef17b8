//! Global settings: the non-channel part of cc-bridge's `config.json` plus relaybox's own knobs.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::Pool;
use super::bounds::{self, Bounds, InvalidField};

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

impl ActionStep {
    pub const FIELDS: &'static [&'static str] = &["action", "waitSeconds", "maxAttempts"];

    fn validate(&self) -> Result<(), InvalidField> {
        bounds::SECONDS_UP_TO_A_DAY.check_some("waitSeconds", self.wait_seconds)?;
        Bounds::between(0, 99, "attempts (99 = unlimited)")
            .check_some("maxAttempts", self.max_attempts)
    }
}

impl FailoverSettings {
    fn validate(&self) -> Result<(), InvalidField> {
        let seconds = bounds::SECONDS_UP_TO_A_DAY;
        seconds.check_some(
            "genericResourceWaitSeconds",
            self.generic_resource_wait_seconds,
        )?;
        seconds.check_some(
            "modelCooldownExtraSeconds",
            self.model_cooldown_extra_seconds,
        )?;
        seconds.check_some(
            "modelCooldownMaxWaitSeconds",
            self.model_cooldown_max_wait_seconds,
        )?;
        for (r, rule) in self.rules.iter().enumerate() {
            for (s, step) in rule.action_chain.iter().enumerate() {
                step.validate()
                    .map_err(|e| e.under(&format!("rules.{r}.actionChain.{s}")))?;
            }
        }
        Ok(())
    }
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
const WEEK_SECONDS: u64 = 7 * bounds::DAY_SECONDS;
const SECONDS_1_TO_A_WEEK: Bounds<u64> = Bounds::between(1, WEEK_SECONDS, "seconds");
/// A request body: at least 1 KiB (no API request is smaller), at most 1 GiB.
const MAX_BODY_BYTES: Bounds<u64> = Bounds::between(1024, 1 << 30, "bytes");
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
    /// Cluster mode: an instance whose configuration was last confirmed with PostgreSQL longer
    /// ago than this refuses relay traffic (fail closed; 0 = off: keep serving the last copy).
    #[serde(default)]
    pub max_config_staleness_seconds: u64,
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
            max_config_staleness_seconds: 0,
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
        "maxConfigStalenessSeconds",
    ];

    /// Whether relaybox can run with these settings: every number inside its range (the
    /// README's admin API section lists them), every strategy a known one.
    pub fn validate(&self) -> Result<(), InvalidField> {
        MAX_BODY_BYTES.check("maxBodyBytes", self.max_body_bytes)?;
        Bounds::between(0, 1000, "failures (0 = never open)")
            .check("circuitBreakerThreshold", self.circuit_breaker_threshold)?;
        bounds::SECONDS_1_TO_A_DAY.check(
            "circuitBreakerCooldownSeconds",
            self.circuit_breaker_cooldown_seconds,
        )?;
        SECONDS_1_TO_A_WEEK.check("suspendSeconds", self.suspend_seconds)?;
        Bounds::between(0, WEEK_SECONDS, "seconds (0 = off)")
            .check("stickySessionTtlSeconds", self.sticky_session_ttl_seconds)?;
        Bounds::between(0, 100_000, "requests").check("maxQueueLength", self.max_queue_length)?;
        bounds::SECONDS_UP_TO_A_DAY_OR_OFF
            .check("streamIdleTimeoutSeconds", self.stream_idle_timeout_seconds)?;
        bounds::SECONDS_UP_TO_A_DAY_OR_OFF
            .check("requestDeadlineSeconds", self.request_deadline_seconds)?;
        bounds::SECONDS_UP_TO_A_DAY_OR_OFF.check(
            "maxConfigStalenessSeconds",
            self.max_config_staleness_seconds,
        )?;
        self.failover.validate().map_err(|e| e.under("failover"))?;
        if self.key_prefix.len() > 16 || self.key_prefix.chars().any(char::is_whitespace) {
            return Err(InvalidField::new(
                "keyPrefix",
                "must be at most 16 characters without spaces",
            ));
        }
        for (field, strategy) in [
            ("loadBalance", &self.load_balance),
            ("responsesLoadBalance", &self.responses_load_balance),
            ("geminiLoadBalance", &self.gemini_load_balance),
            ("chatLoadBalance", &self.chat_load_balance),
        ] {
            let empty_is_inherited = field != "loadBalance" && strategy.is_empty();
            if !empty_is_inherited
                && !matches!(strategy.as_str(), "failover" | "round-robin" | "random")
            {
                return Err(InvalidField::new(
                    field,
                    format!("must be failover, round-robin or random, not '{strategy}'"),
                ));
            }
        }
        Ok(())
    }

    /// The settings with every unusable value replaced by its default, and what was replaced
    /// (a record written before the checks existed, or by an importer).
    #[must_use]
    pub fn usable(&self) -> (Settings, Vec<InvalidField>) {
        let mut settings = self.clone();
        let mut replaced = Vec::new();
        let defaults = serde_json::to_value(Settings::default()).unwrap_or_default();
        while let Err(problem) = settings.validate() {
            let pointer = format!("/{}", problem.field.replace('.', "/"));
            let repaired = serde_json::to_value(&settings).ok().and_then(|mut value| {
                match (defaults.pointer(&pointer), value.pointer_mut(&pointer)) {
                    (Some(default), Some(slot)) => *slot = default.clone(),
                    _ => return None,
                }
                serde_json::from_value::<Settings>(value).ok()
            });
            replaced.push(problem);
            match repaired {
                Some(repaired) if repaired != settings => settings = repaired,
                // Nested values without a default of their own (a failover rule's step):
                // the failover rules go back to cc-bridge's defaults.
                _ if settings.failover != FailoverSettings::default() => {
                    settings.failover = FailoverSettings::default();
                }
                _ => {
                    let version = settings.version;
                    settings = Settings::default();
                    settings.version = version;
                }
            }
        }
        (settings, replaced)
    }

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unusable_stored_settings_fall_back_to_their_defaults_one_field_at_a_time() {
        let mut stored = Settings {
            max_body_bytes: 0,
            circuit_breaker_cooldown_seconds: u64::MAX,
            suspend_seconds: 42,
            ..Settings::default()
        };
        stored.failover.rules.push(FailoverRule {
            error_codes: "500".into(),
            action_chain: vec![ActionStep {
                action: "retry".into(),
                wait_seconds: Some(u64::MAX),
                max_attempts: None,
            }],
            extra: Map::new(),
        });
        let (usable, replaced) = stored.usable();
        let fields: Vec<&str> = replaced.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "maxBodyBytes",
                "circuitBreakerCooldownSeconds",
                "failover.rules.0.actionChain.0.waitSeconds"
            ]
        );
        assert_eq!(usable.max_body_bytes, DEFAULT_MAX_BODY_BYTES);
        assert_eq!(usable.circuit_breaker_cooldown_seconds, 30);
        assert_eq!(usable.suspend_seconds, 42, "good values are kept");
        assert!(usable.validate().is_ok());
    }
}
