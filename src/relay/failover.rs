//! cc-bridge failover rules: an upstream failure is matched to the most specific rule
//! (`"429:QUOTA_EXHAUSTED"` before `"429"` before `"others"`), whose action chain decides:
//! retry the same channel after a wait (up to `maxAttempts`, 99 = unlimited), fail over to the
//! next channel, suspend the channel, or give the error to the client.

use std::time::Duration;

use crate::domain::settings::{ActionStep, FailoverRule, FailoverSettings};

/// Unlimited retries still stop once this much time was spent waiting on one channel.
const MAX_TOTAL_WAIT: Duration = Duration::from_secs(60);

/// One failed upstream attempt. `status` 502/504 stand for connection errors and timeouts.
#[derive(Debug, Clone)]
pub struct Failure {
    pub status: u16,
    pub body: String,
    pub retry_after: Option<Duration>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Retry(Duration),
    Failover,
    Suspend(Duration),
    /// Return this failure to the client as it is.
    GiveUp,
}

/// Where a request is in a channel's action chain; new for each channel.
#[derive(Debug, Default, Clone)]
pub struct ChainState {
    rule: Option<usize>,
    step: usize,
    attempts: u32,
    waited: Duration,
}

fn step(action: &str, wait: Option<u64>, max: Option<u32>) -> ActionStep {
    ActionStep {
        action: action.into(),
        wait_seconds: wait,
        max_attempts: max,
    }
}

fn rule(codes: &str, chain: Vec<ActionStep>) -> FailoverRule {
    FailoverRule {
        error_codes: codes.into(),
        action_chain: chain,
        extra: serde_json::Map::new(),
    }
}

/// cc-bridge's defaults, used when the settings define no rules.
#[must_use]
pub fn default_rules() -> Vec<FailoverRule> {
    vec![
        rule("429:QUOTA_EXHAUSTED", vec![step("suspend", None, None)]),
        rule("403:CREDIT_EXHAUSTED", vec![step("suspend", None, None)]),
        rule(
            "429:model_cooldown",
            vec![
                step("retry", Some(0), Some(99)),
                step("failover", None, None),
            ],
        ),
        rule(
            "429:RESOURCE_EXHAUSTED",
            vec![
                step("retry", Some(20), Some(99)),
                step("failover", None, None),
            ],
        ),
        rule(
            "429",
            vec![
                step("retry", Some(5), Some(3)),
                step("failover", None, None),
            ],
        ),
        rule("401,403", vec![step("failover", None, None)]),
        rule(
            "500,502,503,504,529",
            vec![
                step("retry", Some(5), Some(2)),
                step("failover", None, None),
            ],
        ),
    ]
}

/// How specific an `errorCodes` entry is for this failure: 3 = status and code, 2 = status,
/// 1 = `others`, 0 = no match.
fn specificity(entry: &str, failure: &Failure) -> u8 {
    let entry = entry.trim();
    if entry.eq_ignore_ascii_case("others") {
        return 1;
    }
    let (status, code) = entry
        .split_once(':')
        .map_or((entry, None), |(s, c)| (s, Some(c)));
    let Ok(status) = status.trim().parse::<u16>() else {
        return 0;
    };
    // "5xx" style entries are not in cc-bridge; a plain status must match exactly.
    if status != failure.status {
        return 0;
    }
    match code {
        Some(code)
            if failure
                .body
                .to_ascii_lowercase()
                .contains(&code.trim().to_ascii_lowercase()) =>
        {
            3
        }
        Some(_) => 0,
        None => 2,
    }
}

fn matching_rule(rules: &[FailoverRule], failure: &Failure) -> Option<usize> {
    rules
        .iter()
        .enumerate()
        .filter_map(|(i, rule)| {
            let best = rule
                .error_codes
                .split(',')
                .map(|e| specificity(e, failure))
                .max()
                .unwrap_or(0);
            (best > 0).then_some((best, i))
        })
        // most specific first; among equals the first rule wins
        .max_by(|(a, ai), (b, bi)| a.cmp(b).then(bi.cmp(ai)))
        .map(|(_, i)| i)
}

/// Decide what to do about `failure` on the current channel.
pub fn decide(
    settings: &FailoverSettings,
    failure: &Failure,
    state: &mut ChainState,
    suspend_default: Duration,
) -> Decision {
    if !settings.enabled {
        return match failure.status {
            401 | 403 | 429 | 500..=599 => Decision::Failover,
            _ => Decision::GiveUp,
        };
    }
    let defaults;
    let rules: &[FailoverRule] = if settings.rules.is_empty() {
        defaults = default_rules();
        &defaults
    } else {
        &settings.rules
    };
    let Some(index) = matching_rule(rules, failure) else {
        return Decision::GiveUp;
    };
    if state.rule != Some(index) {
        *state = ChainState {
            rule: Some(index),
            ..ChainState::default()
        };
    }
    let chain = &rules[index].action_chain;
    while let Some(current) = chain.get(state.step) {
        match current.action.as_str() {
            "retry" => {
                let max = current.max_attempts.unwrap_or(1);
                let wait = match current.wait_seconds.unwrap_or(0) {
                    0 => failure.retry_after.unwrap_or(Duration::from_secs(1)),
                    seconds => Duration::from_secs(seconds),
                };
                let unlimited = max >= 99;
                if (unlimited || state.attempts < max) && state.waited + wait <= MAX_TOTAL_WAIT {
                    state.attempts += 1;
                    state.waited += wait;
                    return Decision::Retry(wait);
                }
                state.step += 1;
                state.attempts = 0;
            }
            "failover" => return Decision::Failover,
            "suspend" => return Decision::Suspend(failure.retry_after.unwrap_or(suspend_default)),
            "none" => return Decision::GiveUp,
            _ => state.step += 1,
        }
    }
    Decision::Failover
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(status: u16, body: &str) -> Failure {
        Failure {
            status,
            body: body.into(),
            retry_after: None,
        }
    }

    #[test]
    fn most_specific_rule_wins_and_chains_advance() {
        let settings = FailoverSettings::default();
        let suspend = Duration::from_secs(300);
        let mut state = ChainState::default();
        assert_eq!(
            decide(
                &settings,
                &failure(429, "{\"error\":\"QUOTA_EXHAUSTED\"}"),
                &mut state,
                suspend
            ),
            Decision::Suspend(suspend)
        );

        let mut state = ChainState::default();
        let plain = failure(429, "slow down");
        for _ in 0..3 {
            assert_eq!(
                decide(&settings, &plain, &mut state, suspend),
                Decision::Retry(Duration::from_secs(5))
            );
        }
        assert_eq!(
            decide(&settings, &plain, &mut state, suspend),
            Decision::Failover
        );

        let mut state = ChainState::default();
        assert_eq!(
            decide(&settings, &failure(401, ""), &mut state, suspend),
            Decision::Failover
        );
        assert_eq!(
            decide(
                &settings,
                &failure(400, "bad"),
                &mut ChainState::default(),
                suspend
            ),
            Decision::GiveUp
        );
    }

    #[test]
    fn zero_wait_uses_the_upstream_hint_and_unlimited_is_bounded() {
        let settings = FailoverSettings {
            rules: vec![rule("429", vec![step("retry", Some(0), Some(99))])],
            ..FailoverSettings::default()
        };
        let hinted = Failure {
            status: 429,
            body: String::new(),
            retry_after: Some(Duration::from_secs(20)),
        };
        let mut state = ChainState::default();
        let mut retries = 0;
        while decide(&settings, &hinted, &mut state, Duration::ZERO)
            == Decision::Retry(Duration::from_secs(20))
        {
            retries += 1;
        }
        assert_eq!(retries, 3, "60 s budget / 20 s");
    }

    #[test]
    fn others_and_disabled() {
        let settings = FailoverSettings {
            rules: vec![
                rule("others", vec![step("none", None, None)]),
                rule("500", vec![step("failover", None, None)]),
            ],
            ..FailoverSettings::default()
        };
        assert_eq!(
            decide(
                &settings,
                &failure(500, ""),
                &mut ChainState::default(),
                Duration::ZERO
            ),
            Decision::Failover
        );
        assert_eq!(
            decide(
                &settings,
                &failure(418, ""),
                &mut ChainState::default(),
                Duration::ZERO
            ),
            Decision::GiveUp
        );
        let disabled = FailoverSettings {
            enabled: false,
            ..FailoverSettings::default()
        };
        assert_eq!(
            decide(
                &disabled,
                &failure(503, ""),
                &mut ChainState::default(),
                Duration::ZERO
            ),
            Decision::Failover
        );
    }
}
