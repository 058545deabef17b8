//! The settings `config.json` describes (load balancing, failover rules, passthrough blocks),
//! laid over relaybox's own settings fields.

use serde_json::Value;

use super::parsed_config::ParsedConfig;
use crate::domain::Settings;
use crate::domain::settings::{ActionStep, FailoverRule, FailoverSettings};
use crate::importers::cc_bridge::source::{self, SrcConfig, SrcFailover, SrcRule};

/// Settings fields that are relaybox's own (kept from the current settings, never from a file).
const RESERVED_SETTINGS_KEYS: &[&str] = Settings::OWN_FIELDS;

/// The settings `config.json` describes, on top of relaybox's own fields of `current`.
pub(super) fn settings_from(parsed: &ParsedConfig, current: &Settings) -> Settings {
    let src = &parsed.src;
    let failover = match &src.failover {
        None => FailoverSettings::default(),
        Some(failover) => failover_from(failover, parsed.raw.get("failover")),
    };
    Settings {
        load_balance: if src.load_balance.is_empty() {
            "failover".to_string()
        } else {
            src.load_balance.clone()
        },
        responses_load_balance: src.responses_load_balance.clone(),
        gemini_load_balance: src.gemini_load_balance.clone(),
        chat_load_balance: src.chat_load_balance.clone(),
        failover,
        debug_log: src.debug_log.clone().map(Value::Object),
        user_agent: src.user_agent.clone().map(Value::Object),
        outbound_header_policy: src.outbound_header_policy.clone().map(Value::Object),
        extra: source::extras(
            Some(&parsed.raw),
            &source::known_keys::<SrcConfig>(),
            RESERVED_SETTINGS_KEYS,
        ),
        // relaybox's own knobs (keyPrefix, limits, …) are never taken from a cc-bridge file.
        ..current.clone()
    }
}

fn failover_from(src: &SrcFailover, raw: Option<&Value>) -> FailoverSettings {
    let rule_keys = source::known_keys::<SrcRule>();
    let rules = src
        .rules
        .iter()
        .enumerate()
        .map(|(i, rule)| FailoverRule {
            error_codes: rule.error_codes.clone(),
            action_chain: rule
                .action_chain
                .iter()
                .map(|step| ActionStep {
                    action: step.action.clone(),
                    wait_seconds: step.wait_seconds,
                    max_attempts: step.max_attempts,
                })
                .collect(),
            // Legacy `action` / `threshold` / `waitSeconds` are kept here as they are.
            extra: source::extras(
                raw.and_then(|f| f.get("rules")).and_then(|r| r.get(i)),
                &rule_keys,
                &[],
            ),
        })
        .collect();
    FailoverSettings {
        enabled: src.enabled,
        rules,
        generic_resource_wait_seconds: src.generic_resource_wait_seconds,
        model_cooldown_extra_seconds: src.model_cooldown_extra_seconds,
        model_cooldown_max_wait_seconds: src.model_cooldown_max_wait_seconds,
        extra: source::extras(raw, &source::known_keys::<SrcFailover>(), &[]),
    }
}
