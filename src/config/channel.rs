//! A channel as the request path uses it: parsed once per change, when the snapshot is
//! advanced, so nothing on the request path parses a date, a JSON string or a string enum.
//!
//! Two protocols are named apart: the client's (decided by the endpoint it called) and the
//! upstream's ([`UpstreamKind`], decided by the channel's `serviceType`). When they differ the
//! relay converts between them (`crate::convert`).

use time::OffsetDateTime;
use zeroize::Zeroizing;

use super::aad::{api_key_aad, oauth_aad};
use crate::crypto::{Cipher, CryptoError};
use crate::domain::{Channel, Pool, Settings};
use crate::limits::quota::QuotaSchedule;
use crate::providers::{ModelMapper, Protocol};

/// How relaybox talks to a channel: its wire protocol and how it authenticates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamKind {
    /// Anthropic Messages, `x-api-key` (or an OAuth access token).
    Anthropic,
    /// OpenAI-compatible Chat Completions, `Authorization: Bearer`.
    OpenAiChat,
    /// OpenAI Responses, `Authorization: Bearer`.
    OpenAiResponses,
    /// Codex OAuth (`openai-oauth`): Responses with the OAuth access token and account id.
    CodexOAuth,
    /// Gemini, `x-goog-api-key`.
    Gemini,
}

impl UpstreamKind {
    /// The wire protocol the upstream speaks.
    #[must_use]
    pub fn protocol(self) -> Protocol {
        match self {
            UpstreamKind::Anthropic => Protocol::Anthropic,
            UpstreamKind::OpenAiChat => Protocol::OpenAiChat,
            UpstreamKind::OpenAiResponses | UpstreamKind::CodexOAuth => Protocol::OpenAiResponses,
            UpstreamKind::Gemini => Protocol::Gemini,
        }
    }
}

/// How a channel of `service_type` serves requests of `pool`, or why it cannot. Every pool can
/// use an upstream of any of the four protocols (the relay converts); Codex OAuth serves only
/// the Responses pool, and a `composite` channel only routes the Messages pool's models to
/// other channels (see [`CompositeRoute`]).
pub fn upstream_kind(pool: Pool, service_type: &str) -> Result<UpstreamKind, String> {
    if let Some(problem) = crate::domain::channel::service_type_problem(pool, service_type) {
        return Err(format!("serviceType {problem}"));
    }
    Ok(match service_type {
        "claude" => UpstreamKind::Anthropic,
        "openai" | "openai_chat" | "openaiold" => UpstreamKind::OpenAiChat,
        "responses" => UpstreamKind::OpenAiResponses,
        "openai-oauth" => UpstreamKind::CodexOAuth,
        "gemini" => UpstreamKind::Gemini,
        _ => {
            return Err(
                "a composite channel forwards to the channels its compositeMappings name".into(),
            );
        }
    })
}

/// One of a composite channel's `compositeMappings`: requests whose model contains `pattern`
/// go to `targets` in order (the target channel, then its `failoverChain`), with the model
/// renamed to `target_model` when set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompositeRoute {
    pub pattern: String,
    /// (pool, channel id) in the order to try.
    pub targets: Vec<(Pool, String)>,
    pub target_model: Option<String>,
}

impl CompositeRoute {
    /// The routes of a channel's `compositeMappings`; entries without a pattern or a target
    /// are left out.
    #[must_use]
    pub fn parse_all(mappings: &[serde_json::Value]) -> Vec<CompositeRoute> {
        mappings.iter().filter_map(Self::parse).collect()
    }

    fn parse(mapping: &serde_json::Value) -> Option<CompositeRoute> {
        let text = |field: &str| {
            mapping
                .get(field)
                .and_then(serde_json::Value::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty())
        };
        let pool_of = |name: Option<&str>| match name {
            Some("responses") => Pool::Responses,
            Some("chat") => Pool::Chat,
            Some("gemini") => Pool::Gemini,
            _ => Pool::Messages,
        };
        let pattern = text("pattern")?.to_ascii_lowercase();
        let pool = pool_of(text("targetPool"));
        let mut targets = vec![(pool, text("targetChannelId")?.to_string())];
        if let Some(chain) = mapping.get("failoverChain").and_then(|c| c.as_array()) {
            targets.extend(
                chain
                    .iter()
                    .filter_map(|id| id.as_str())
                    .map(|id| (pool, id.to_string())),
            );
        }
        if let Some(more) = mapping.get("failoverTargets").and_then(|c| c.as_array()) {
            targets.extend(more.iter().filter_map(|target| {
                let id = target.get("channelId")?.as_str()?;
                Some((
                    pool_of(target.get("pool").and_then(|p| p.as_str())),
                    id.to_string(),
                ))
            }));
        }
        targets.dedup();
        Some(CompositeRoute {
            pattern,
            targets,
            target_model: text("targetModel").map(str::to_string),
        })
    }

    /// Whether a request for `model` takes this route (a case-insensitive substring match, as
    /// in cc-bridge: "haiku" takes claude-haiku-4-5).
    #[must_use]
    pub fn matches(&self, model: &str) -> bool {
        model.to_ascii_lowercase().contains(&self.pattern)
    }
}

/// How requests spread over a pool's best tier, or over a channel's upstream keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LoadBalance {
    /// The first that works.
    #[default]
    Failover,
    RoundRobin,
    Random,
}

impl LoadBalance {
    /// The settings' spelling; anything else is `None` (the admin API refuses it).
    #[must_use]
    pub fn parse(text: &str) -> Option<LoadBalance> {
        match text {
            "failover" => Some(LoadBalance::Failover),
            "round-robin" => Some(LoadBalance::RoundRobin),
            "random" => Some(LoadBalance::Random),
            _ => None,
        }
    }
}

/// Each pool's strategy, indexed by `Pool as usize`.
#[must_use]
pub fn load_balance_per_pool(settings: &Settings) -> [LoadBalance; 4] {
    Pool::ALL.map(|pool| LoadBalance::parse(settings.load_balance_for(pool)).unwrap_or_default())
}

/// A channel with its secrets opened and its settings parsed, ready to forward to.
#[derive(Debug)]
pub struct LiveChannel {
    pub channel: Channel,
    /// How to reach it from its pool, or why it cannot serve the pool.
    pub upstream: Result<UpstreamKind, String>,
    /// A composite channel's routes (empty for every other channel).
    pub composite: Vec<CompositeRoute>,
    /// `modelMapping`, prepared.
    pub mapper: ModelMapper,
    /// `promotionUntil`, parsed (`None` when absent or not RFC 3339).
    pub promotion_until: Option<OffsetDateTime>,
    /// `keyLoadBalance`; `None` = the pool's strategy.
    pub key_load_balance: Option<LoadBalance>,
    /// The quota settings, parsed; `None` = no quota.
    pub quota: Option<QuotaSchedule>,
    /// Per upstream API key, the header values that carry it; `None` for a key that is not a
    /// valid header value.
    pub credentials: Vec<Option<Credential>>,
    pub oauth_tokens: Option<Zeroizing<String>>,
    /// From `oauth_tokens`, parsed once: `Bearer <access_token>` and the Codex account id.
    pub oauth: Option<OAuthHeaders>,
    /// The channel's own `streamIdleTimeoutSeconds` (`None` = the settings' default).
    pub stream_idle_timeout: Option<std::time::Duration>,
}

/// The header values an OAuth channel sends, marked sensitive.
#[derive(Debug)]
pub struct OAuthHeaders {
    pub bearer: hyper::header::HeaderValue,
    pub account_id: Option<hyper::header::HeaderValue>,
}

impl OAuthHeaders {
    /// `None` when the token block has no usable `access_token`.
    fn parse(tokens: &str) -> Option<OAuthHeaders> {
        let tokens: serde_json::Value = serde_json::from_str(tokens).ok()?;
        let access = tokens.get("access_token")?.as_str()?;
        let mut bearer = hyper::header::HeaderValue::from_str(&format!("Bearer {access}")).ok()?;
        bearer.set_sensitive(true);
        let account_id = tokens
            .get("account_id")
            .and_then(|a| a.as_str())
            .and_then(|a| hyper::header::HeaderValue::from_str(a).ok());
        Some(OAuthHeaders { bearer, account_id })
    }
}

impl LiveChannel {
    /// Open a channel's secrets and parse what the request path needs.
    pub fn open(channel: &Channel, cipher: &Cipher) -> Result<LiveChannel, CryptoError> {
        let api_keys = channel
            .credentials
            .api_keys
            .iter()
            .map(|sealed| cipher.open(&api_key_aad(&channel.id), sealed))
            .collect::<Result<Vec<_>, _>>()?;
        let oauth_tokens = channel
            .credentials
            .oauth_tokens
            .as_ref()
            .map(|sealed| cipher.open(&oauth_aad(&channel.id), sealed))
            .transpose()?;
        Ok(LiveChannel {
            upstream: upstream_kind(channel.pool, &channel.service_type),
            composite: if channel.service_type == "composite" {
                CompositeRoute::parse_all(&channel.composite_mappings)
            } else {
                Vec::new()
            },
            mapper: ModelMapper::new(&channel.model_mapping),
            promotion_until: channel.promotion_until.as_deref().and_then(|t| {
                OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()
            }),
            key_load_balance: LoadBalance::parse(&channel.key_load_balance),
            quota: QuotaSchedule::of(channel),
            credentials: api_keys.iter().map(|key| Credential::new(key)).collect(),
            oauth: oauth_tokens.as_deref().and_then(|t| OAuthHeaders::parse(t)),
            oauth_tokens,
            stream_idle_timeout: channel
                .stream_idle_timeout_seconds
                .filter(|&seconds| seconds > 0)
                .map(std::time::Duration::from_secs),
            channel: channel.clone(),
        })
    }

    /// How long the upstream may send nothing before its answer is ended with a timeout: the
    /// channel's override, else `settings.streamIdleTimeoutSeconds`; `None` = never (0).
    #[must_use]
    pub fn stream_idle_timeout(&self, settings: &Settings) -> Option<std::time::Duration> {
        self.stream_idle_timeout.or_else(|| {
            (settings.stream_idle_timeout_seconds > 0)
                .then(|| std::time::Duration::from_secs(settings.stream_idle_timeout_seconds))
        })
    }
}

/// One upstream API key as header values, marked sensitive (never logged by hyper).
#[derive(Debug)]
pub struct Credential {
    /// The key itself: `x-api-key`, `x-goog-api-key`.
    pub raw: hyper::header::HeaderValue,
    /// `Bearer <key>`: `authorization`.
    pub bearer: hyper::header::HeaderValue,
}

impl Credential {
    fn new(key: &str) -> Option<Self> {
        let sensitive = |mut value: hyper::header::HeaderValue| {
            value.set_sensitive(true);
            value
        };
        Some(Self {
            raw: sensitive(hyper::header::HeaderValue::from_str(key).ok()?),
            bearer: sensitive(hyper::header::HeaderValue::from_str(&format!("Bearer {key}")).ok()?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_types_per_pool() {
        assert_eq!(
            upstream_kind(Pool::Messages, "claude"),
            Ok(UpstreamKind::Anthropic)
        );
        assert_eq!(
            upstream_kind(Pool::Messages, "openai"),
            Ok(UpstreamKind::OpenAiChat)
        );
        assert_eq!(
            upstream_kind(Pool::Gemini, "responses"),
            Ok(UpstreamKind::OpenAiResponses)
        );
        assert!(upstream_kind(Pool::Chat, "openai-oauth").is_err());
        assert!(upstream_kind(Pool::Chat, "composite").is_err());
        assert!(
            upstream_kind(Pool::Chat, "cohere")
                .unwrap_err()
                .contains("cohere")
        );
        assert_eq!(
            upstream_kind(Pool::Chat, "openaiold"),
            Ok(UpstreamKind::OpenAiChat)
        );
        assert_eq!(
            upstream_kind(Pool::Chat, "claude"),
            Ok(UpstreamKind::Anthropic)
        );
        assert_eq!(
            UpstreamKind::CodexOAuth.protocol(),
            Protocol::OpenAiResponses
        );
    }

    #[test]
    fn load_balance_spellings() {
        assert_eq!(
            LoadBalance::parse("round-robin"),
            Some(LoadBalance::RoundRobin)
        );
        assert_eq!(LoadBalance::parse(""), None);
        let settings = Settings {
            chat_load_balance: "random".into(),
            ..Settings::default()
        };
        let per_pool = load_balance_per_pool(&settings);
        assert_eq!(per_pool[Pool::Chat as usize], LoadBalance::Random);
        assert_eq!(per_pool[Pool::Messages as usize], LoadBalance::Failover);
    }
}
