//! Semantic checks of cc-bridge files: what parses but would not work.
//!
//! Each check names the field it rejects (`upstream[2].serviceType`) and says what is allowed.
//! The first problem rejects the whole file.

use std::collections::{BTreeMap, HashMap};

use super::source::{SrcChannel, SrcConfig, SrcPricing, SrcRule};
use super::{ConfigFile, FileError, timestamp};
use crate::domain::Pool;

pub(crate) const LOAD_BALANCE: &[&str] = &["", "round-robin", "random", "failover"];
pub(crate) const STATUSES: &[&str] = &["", "active", "suspended", "disabled"];
pub(crate) const QUOTA_TYPES: &[&str] = &["", "requests", "credit"];
pub(crate) const QUOTA_RESET_MODES: &[&str] = &["", "fixed", "rolling"];
pub(crate) const QUOTA_RESET_UNITS: &[&str] = &["", "hours", "days", "weeks", "months"];
pub(crate) const ACTIONS: &[&str] = &["retry", "failover", "suspend", "none"];

/// The `serviceType`s each pool can serve (cc-bridge: `composite` only in the Messages pool,
/// `openai-oauth` only in the Responses pool; the others convert between protocols).
pub(crate) fn service_types(pool: Pool) -> &'static [&'static str] {
    match pool {
        Pool::Messages => &[
            "claude",
            "openai",
            "openai_chat",
            "openaiold",
            "gemini",
            "responses",
            "composite",
        ],
        Pool::Responses => &[
            "responses",
            "openai-oauth",
            "openai",
            "openai_chat",
            "openaiold",
            "claude",
            "gemini",
        ],
        Pool::Gemini => &[
            "gemini",
            "claude",
            "openai",
            "openai_chat",
            "openaiold",
            "responses",
        ],
        Pool::Chat => &["openai", "openai_chat", "openaiold", "claude", "gemini"],
    }
}

/// Service types that route elsewhere or use a fixed endpoint, so `baseUrl` may be empty.
fn base_url_optional(service_type: &str) -> bool {
    matches!(service_type, "composite" | "openai-oauth")
}

/// The pools of `config.json`: relaybox pool, JSON key, channels.
pub(crate) fn pools(config: &SrcConfig) -> [(Pool, &'static str, &[SrcChannel]); 4] {
    [
        (Pool::Messages, "upstream", config.upstream.as_slice()),
        (
            Pool::Responses,
            "responsesUpstream",
            config.responses_upstream.as_slice(),
        ),
        (
            Pool::Gemini,
            "geminiUpstream",
            config.gemini_upstream.as_slice(),
        ),
        (Pool::Chat, "chatUpstream", config.chat_upstream.as_slice()),
    ]
}

fn error(field: String, reason: String) -> FileError {
    FileError::semantic(ConfigFile::Config, Some(field), reason)
}

fn one_of(field: String, value: &str, allowed: &[&str]) -> Result<(), FileError> {
    if allowed.contains(&value) {
        return Ok(());
    }
    let listed: Vec<String> = allowed
        .iter()
        .map(|a| {
            if a.is_empty() {
                "\"\"".to_string()
            } else {
                (*a).to_string()
            }
        })
        .collect();
    Err(error(
        field,
        format!("'{value}' is not one of: {}", listed.join(", ")),
    ))
}

/// Check `config.json`; `ids` are the channel ids the importer will use (explicit or derived),
/// pool by pool, in file order.
pub(crate) fn config(
    config: &SrcConfig,
    ids: &BTreeMap<Pool, Vec<String>>,
) -> Result<(), FileError> {
    one_of("loadBalance".into(), &config.load_balance, LOAD_BALANCE)?;
    one_of(
        "responsesLoadBalance".into(),
        &config.responses_load_balance,
        LOAD_BALANCE,
    )?;
    one_of(
        "geminiLoadBalance".into(),
        &config.gemini_load_balance,
        LOAD_BALANCE,
    )?;
    one_of(
        "chatLoadBalance".into(),
        &config.chat_load_balance,
        LOAD_BALANCE,
    )?;

    let mut seen_ids: HashMap<&str, String> = HashMap::new();
    for (pool, key, channels) in pools(config) {
        let mut names: HashMap<String, usize> = HashMap::new();
        for (index, channel) in channels.iter().enumerate() {
            let at = |field: &str| format!("{key}[{index}].{field}");
            channel_fields(pool, channel, &at)?;
            let name = channel.name.trim().to_lowercase();
            if let Some(first) = names.insert(name, index) {
                return Err(error(
                    at("name"),
                    format!(
                        "the {pool} pool already has a channel named '{}' ({key}[{first}]); names must be unique per pool (case-insensitive)",
                        channels[first].name.trim()
                    ),
                ));
            }
            if let Some(id) = ids.get(&pool).and_then(|ids| ids.get(index))
                && let Some(other) = seen_ids.insert(id.as_str(), format!("{key}[{index}]"))
            {
                return Err(error(
                    at("id"),
                    format!("channel id '{id}' is also used by {other}; ids must be unique"),
                ));
            }
        }
    }

    if let Some(failover) = &config.failover {
        for (index, rule) in failover.rules.iter().enumerate() {
            failover_rule(index, rule)?;
        }
    }
    Ok(())
}

fn channel_fields(
    pool: Pool,
    channel: &SrcChannel,
    at: &dyn Fn(&str) -> String,
) -> Result<(), FileError> {
    if channel.name.trim().is_empty() {
        return Err(error(at("name"), "every channel needs a name".into()));
    }
    if !channel.id.is_empty() && channel.id.trim().is_empty() {
        return Err(error(
            at("id"),
            "the id is blank; remove it to derive one, or give a real id".into(),
        ));
    }
    let service_type = channel.service_type.trim();
    let allowed = service_types(pool);
    if !allowed.contains(&service_type) {
        return Err(error(
            at("serviceType"),
            format!(
                "'{service_type}' is not a service type of the {pool} pool (allowed: {})",
                allowed.join(", ")
            ),
        ));
    }
    let base_url = channel.base_url.trim();
    if !(base_url.is_empty() && base_url_optional(service_type)) {
        check_http_url(base_url).map_err(|reason| error(at("baseUrl"), reason))?;
    }
    one_of(at("status"), &channel.status, STATUSES)?;
    one_of(
        at("keyLoadBalance"),
        &channel.key_load_balance,
        LOAD_BALANCE,
    )?;
    one_of(at("quotaType"), &channel.quota_type, QUOTA_TYPES)?;
    one_of(
        at("quotaResetMode"),
        &channel.quota_reset_mode,
        QUOTA_RESET_MODES,
    )?;
    one_of(
        at("quotaResetUnit"),
        &channel.quota_reset_unit,
        QUOTA_RESET_UNITS,
    )?;
    if let Some(limit) = channel.quota_limit
        && !(limit.is_finite() && limit >= 0.0)
    {
        return Err(error(
            at("quotaLimit"),
            format!("{limit} is negative; use 0 or more"),
        ));
    }
    if let Some(interval) = channel.quota_reset_interval
        && interval < 0
    {
        return Err(error(
            at("quotaResetInterval"),
            format!("{interval} is negative; use 0 or more"),
        ));
    }
    for (field, value) in [
        ("promotionUntil", &channel.promotion_until),
        ("quotaResetAt", &channel.quota_reset_at),
    ] {
        if let Some(text) = value
            && !timestamp::is_rfc3339(text)
        {
            return Err(error(
                at(field),
                format!("'{text}' is not an RFC 3339 time (like 2026-08-01T00:00:00Z)"),
            ));
        }
    }
    for (prefix, multiplier) in &channel.price_multipliers {
        for (field, value) in [
            ("inputMultiplier", multiplier.input_multiplier),
            ("outputMultiplier", multiplier.output_multiplier),
            (
                "cacheCreationMultiplier",
                multiplier.cache_creation_multiplier,
            ),
            ("cacheReadMultiplier", multiplier.cache_read_multiplier),
        ] {
            if let Some(value) = value
                && !(value.is_finite() && value >= 0.0)
            {
                return Err(error(
                    at(&format!("priceMultipliers.{prefix}.{field}")),
                    format!("{value} is negative; multipliers are 0 or more (0 means 1.0)"),
                ));
            }
        }
    }
    Ok(())
}

fn failover_rule(index: usize, rule: &SrcRule) -> Result<(), FileError> {
    let at = |field: &str| format!("failover.rules[{index}].{field}");
    check_error_codes(&rule.error_codes).map_err(|reason| error(at("errorCodes"), reason))?;
    for (step, action) in rule.action_chain.iter().enumerate() {
        let field = format!("failover.rules[{index}].actionChain[{step}].action");
        if !ACTIONS.contains(&action.action.trim()) {
            return Err(error(
                field,
                format!(
                    "'{}' is not an action (allowed: {})",
                    action.action,
                    ACTIONS.join(", ")
                ),
            ));
        }
    }
    Ok(())
}

/// `others`, or a comma-separated list of `NNN` / `NNN:SUBTYPE` (`429:QUOTA_EXHAUSTED`).
pub(crate) fn check_error_codes(text: &str) -> Result<(), String> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("others") {
        return Ok(());
    }
    if text.is_empty() {
        return Err("errorCodes is empty; use a list like \"500,502\", \"429:QUOTA_EXHAUSTED\" or \"others\"".into());
    }
    for item in text.split(',') {
        let item = item.trim();
        let (status, subtype) = match item.split_once(':') {
            Some((status, subtype)) => (status, Some(subtype)),
            None => (item, None),
        };
        let valid_status = status.len() == 3
            && status.bytes().all(|b| b.is_ascii_digit())
            && (100..=599).contains(&status.parse::<u16>().unwrap_or(0));
        let valid_subtype = subtype.is_none_or(|s| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        });
        if !(valid_status && valid_subtype) {
            return Err(format!(
                "'{item}' is not an error code; use an HTTP status (429), a status with a subtype (429:QUOTA_EXHAUSTED), or \"others\""
            ));
        }
    }
    Ok(())
}

/// An absolute `http://` or `https://` URL with a host (and a valid port, if any).
pub(crate) fn check_http_url(text: &str) -> Result<(), String> {
    if text.is_empty() {
        return Err("baseUrl is empty; give the upstream's URL (https://…)".into());
    }
    let Some((scheme, rest)) = text.split_once("://") else {
        return Err(format!(
            "'{text}' is not a URL; it must start with https:// or http://"
        ));
    };
    if !(scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https")) {
        return Err(format!(
            "'{text}' uses the scheme '{scheme}'; only http and https are supported"
        ));
    }
    if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("'{text}' contains spaces or control characters"));
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    let (host, port) = if let Some(bracketed) = host_port.strip_prefix('[') {
        let Some((ip, after)) = bracketed.split_once(']') else {
            return Err(format!("'{text}' has an unclosed IPv6 address"));
        };
        (ip, after.strip_prefix(':'))
    } else {
        match host_port.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (host_port, None),
        }
    };
    if host.is_empty() {
        return Err(format!("'{text}' has no host"));
    }
    if let Some(port) = port
        && !(port.is_empty() || port.parse::<u16>().is_ok_and(|p| p > 0))
    {
        return Err(format!("'{text}' has an invalid port '{port}'"));
    }
    Ok(())
}

/// Check `pricing.json`: every price is a number ≥ 0.
pub(crate) fn pricing(pricing: &SrcPricing) -> Result<(), FileError> {
    for (model, price) in &pricing.models {
        if model.trim().is_empty() {
            return Err(FileError::semantic(
                ConfigFile::Pricing,
                Some("models".into()),
                "a model id is empty",
            ));
        }
        for (field, value) in [
            ("inputPrice", Some(price.input_price)),
            ("outputPrice", Some(price.output_price)),
            ("cacheCreationPrice", price.cache_creation_price),
            ("cacheReadPrice", price.cache_read_price),
        ] {
            if let Some(value) = value
                && !(value.is_finite() && value >= 0.0)
            {
                return Err(FileError::semantic(
                    ConfigFile::Pricing,
                    Some(format!("models.{model}.{field}")),
                    format!("{value} is negative; prices are 0 or more (USD per million tokens)"),
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_syntax() {
        for good in [
            "401,403",
            "429:QUOTA_EXHAUSTED",
            "500, 502,503,504",
            "others",
            "429:model_cooldown",
        ] {
            assert!(check_error_codes(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "4xx",
            "429:",
            "42",
            "700",
            "429;500",
            "401,,403",
            "others,500",
        ] {
            assert!(check_error_codes(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn http_urls() {
        for good in [
            "https://api.anthropic.com",
            "http://127.0.0.1:8080/v1",
            "https://user:pw@host.example/path?x=1",
            "https://[::1]:443/",
        ] {
            assert!(check_http_url(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "api.anthropic.com",
            "ftp://x",
            "https://",
            "https://host:99999",
            "https://a b",
            "https:///path",
        ] {
            assert!(check_http_url(bad).is_err(), "{bad}");
        }
    }
}
