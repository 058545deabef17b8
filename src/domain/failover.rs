//! cc-bridge failover rules: an upstream failure is matched to the most specific rule
//! (`"429:QUOTA_EXHAUSTED"` before `"429"` before `"others"`), whose action chain decides:
//! retry the same channel after a wait (up to `maxAttempts`, 99 = unlimited), fail over to the
//! next channel, suspend the channel, or give the error to the client.
//!
//! The settings' rules are compiled once per configuration change into a [`FailoverPolicy`]
//! (status codes parsed, error codes lower-cased, actions as enums); deciding about a failure
//! on the request path then parses nothing.

use std::time::Duration;

use crate::domain::settings::{ActionStep, FailoverRule, FailoverSettings};

/// Unlimited retries still stop once this much time was spent waiting on one channel.
const MAX_TOTAL_WAIT: Duration = Duration::from_secs(60);

/// One failed upstream attempt. `status` 502/504 stand for connection errors and timeouts.
#[derive(Debug, Clone, Default)]
pub struct Failure {
    pub status: u16,
    pub body: String,
    pub retry_after: Option<Duration>,
    /// No connection was made (refused, DNS, TLS handshake, a bad URL): nothing answered, so
    /// waiting and retrying the same channel would only delay the next one.
    pub no_connection: bool,
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

/// One `errorCodes` entry, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
enum CodeMatch {
    /// `others`: any failure, least specific.
    Others,
    /// `429`
    Status(u16),
    /// `429:QUOTA_EXHAUSTED` (the code lower-cased; found anywhere in the body).
    StatusAndCode(u16, String),
    /// An entry that is not a status: matches nothing.
    Never,
}

impl CodeMatch {
    fn parse(entry: &str) -> CodeMatch {
        let entry = entry.trim();
        if entry.eq_ignore_ascii_case("others") {
            return CodeMatch::Others;
        }
        let (status, code) = entry
            .split_once(':')
            .map_or((entry, None), |(s, c)| (s, Some(c)));
        // "5xx" style entries are not in cc-bridge; a plain status must match exactly.
        let Ok(status) = status.trim().parse::<u16>() else {
            return CodeMatch::Never;
        };
        match code {
            Some(code) => CodeMatch::StatusAndCode(status, code.trim().to_ascii_lowercase()),
            None => CodeMatch::Status(status),
        }
    }

    /// How specific this entry is for the failure: 3 = status and code, 2 = status,
    /// 1 = `others`, 0 = no match. `body` is the failure's body, lower-cased.
    fn specificity(&self, status: u16, body: &str) -> u8 {
        match self {
            CodeMatch::Others => 1,
            CodeMatch::Status(s) if *s == status => 2,
            CodeMatch::StatusAndCode(s, code) if *s == status && body.contains(code.as_str()) => 3,
            _ => 0,
        }
    }
}

/// One step of an action chain, parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    /// Retry the same channel, up to `max` times (99 = unlimited); `wait` `None` = the
    /// upstream's hint (or 1 s).
    Retry {
        wait: Option<Duration>,
        max: u32,
    },
    Failover,
    Suspend,
    /// `none`: give the failure back.
    GiveUp,
    /// An action relaybox does not know: skipped.
    Unknown,
}

impl Action {
    fn parse(step: &ActionStep) -> Action {
        match step.action.as_str() {
            "retry" => Action::Retry {
                wait: match step.wait_seconds.unwrap_or(0) {
                    0 => None,
                    seconds => Some(Duration::from_secs(seconds)),
                },
                max: step.max_attempts.unwrap_or(1),
            },
            "failover" => Action::Failover,
            "suspend" => Action::Suspend,
            "none" => Action::GiveUp,
            _ => Action::Unknown,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct CompiledRule {
    codes: Vec<CodeMatch>,
    chain: Vec<Action>,
}

/// The failover settings, compiled (cc-bridge's default rules when the settings define none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailoverPolicy {
    enabled: bool,
    rules: Vec<CompiledRule>,
}

impl Default for FailoverPolicy {
    fn default() -> Self {
        Self::compile(&FailoverSettings::default())
    }
}

impl FailoverPolicy {
    #[must_use]
    pub fn compile(settings: &FailoverSettings) -> FailoverPolicy {
        let defaults;
        let rules: &[FailoverRule] = if settings.rules.is_empty() {
            defaults = default_rules();
            &defaults
        } else {
            &settings.rules
        };
        FailoverPolicy {
            enabled: settings.enabled,
            rules: rules
                .iter()
                .map(|rule| CompiledRule {
                    codes: rule.error_codes.split(',').map(CodeMatch::parse).collect(),
                    chain: rule.action_chain.iter().map(Action::parse).collect(),
                })
                .collect(),
        }
    }

    fn matching_rule(&self, failure: &Failure) -> Option<usize> {
        let body = failure.body.to_ascii_lowercase();
        self.rules
            .iter()
            .enumerate()
            .filter_map(|(i, rule)| {
                let best = rule
                    .codes
                    .iter()
                    .map(|code| code.specificity(failure.status, &body))
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
        &self,
        failure: &Failure,
        state: &mut ChainState,
        suspend_default: Duration,
    ) -> Decision {
        // Retries with waits are for upstream answers (a 429, a 503); a channel that cannot
        // be reached is left at once, whatever the rules say.
        if failure.no_connection {
            return Decision::Failover;
        }
        if !self.enabled {
            return match failure.status {
                401 | 403 | 429 | 500..=599 => Decision::Failover,
                _ => Decision::GiveUp,
            };
        }
        let Some(index) = self.matching_rule(failure) else {
            return Decision::GiveUp;
        };
        if state.rule != Some(index) {
            *state = ChainState {
                rule: Some(index),
                ..ChainState::default()
            };
        }
        let chain = &self.rules[index].chain;
        while let Some(current) = chain.get(state.step) {
            match *current {
                Action::Retry { wait, max } => {
                    let wait = wait
                        .unwrap_or_else(|| failure.retry_after.unwrap_or(Duration::from_secs(1)));
                    let unlimited = max >= 99;
                    // Saturating: `wait` may be a stored `waitSeconds` or an upstream's
                    // `retry-after` of any size.
                    if (unlimited || state.attempts < max)
                        && state.waited.saturating_add(wait) <= MAX_TOTAL_WAIT
                    {
                        state.attempts += 1;
                        state.waited += wait;
                        return Decision::Retry(wait);
                    }
                    state.step += 1;
                    state.attempts = 0;
                }
                Action::Failover => return Decision::Failover,
                Action::Suspend => {
                    return Decision::Suspend(failure.retry_after.unwrap_or(suspend_default));
                }
                Action::GiveUp => return Decision::GiveUp,
                Action::Unknown => state.step += 1,
            }
        }
        Decision::Failover
    }
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

/// Compile `settings` and decide (the tests' shorthand; the request path keeps the compiled
/// policy in its snapshot).
#[cfg(test)]
fn decide(
    settings: &FailoverSettings,
    failure: &Failure,
    state: &mut ChainState,
    suspend_default: Duration,
) -> Decision {
    FailoverPolicy::compile(settings).decide(failure, state, suspend_default)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(status: u16, body: &str) -> Failure {
        Failure {
            status,
            body: body.into(),
            ..Failure::default()
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
            retry_after: Some(Duration::from_secs(20)),
            ..Failure::default()
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

    fn hinted(status: u16, body: &str, seconds: u64) -> Failure {
        Failure {
            status,
            body: body.into(),
            retry_after: Some(Duration::from_secs(seconds)),
            ..Failure::default()
        }
    }

    /// Every decision on one channel for the same failure until it stops retrying.
    fn run_chain(settings: &FailoverSettings, failure: &Failure) -> (Vec<Decision>, Decision) {
        let mut state = ChainState::default();
        let mut retries = Vec::new();
        loop {
            match decide(settings, failure, &mut state, Duration::from_secs(300)) {
                retry @ Decision::Retry(_) => retries.push(retry),
                last => return (retries, last),
            }
            assert!(retries.len() < 1000, "the chain never ends");
        }
    }

    fn retries(n: usize, seconds: u64) -> Vec<Decision> {
        vec![Decision::Retry(Duration::from_secs(seconds)); n]
    }

    #[test]
    fn a_retry_after_of_any_size_after_a_first_wait_does_not_overflow() {
        let settings = FailoverSettings {
            rules: vec![rule(
                "429",
                vec![
                    step("retry", Some(0), Some(99)),
                    step("failover", None, None),
                ],
            )],
            ..FailoverSettings::default()
        };
        let mut state = ChainState::default();
        let small = hinted(429, "", 1);
        assert_eq!(
            decide(&settings, &small, &mut state, Duration::ZERO),
            Decision::Retry(Duration::from_secs(1))
        );
        let huge = hinted(429, "", u64::MAX);
        assert_eq!(
            decide(&settings, &huge, &mut state, Duration::ZERO),
            Decision::Failover
        );
    }

    #[test]
    fn default_429_retries_on_its_own_schedule_even_with_a_retry_after() {
        let settings = FailoverSettings::default();
        // The plain 429 rule waits its fixed 5 s; the upstream's hint does not change it.
        assert_eq!(
            run_chain(&settings, &hinted(429, "slow down", 30)),
            (retries(3, 5), Decision::Failover)
        );
        // A quota that ran out parks the channel for as long as the upstream says...
        assert_eq!(
            decide(
                &settings,
                &hinted(429, "QUOTA_EXHAUSTED", 3600),
                &mut ChainState::default(),
                Duration::from_secs(300)
            ),
            Decision::Suspend(Duration::from_secs(3600))
        );
        // ...and a 403 for exhausted credit for the default time.
        assert_eq!(
            decide(
                &settings,
                &failure(403, "{\"error\":{\"code\":\"credit_exhausted\"}}"),
                &mut ChainState::default(),
                Duration::from_secs(300)
            ),
            Decision::Suspend(Duration::from_secs(300))
        );
    }

    #[test]
    fn default_429_variants_by_error_code() {
        let settings = FailoverSettings::default();
        // RESOURCE_EXHAUSTED: 20 s waits, "unlimited" but within the 60 s budget.
        assert_eq!(
            run_chain(&settings, &failure(429, "RESOURCE_EXHAUSTED: try later")),
            (retries(3, 20), Decision::Failover)
        );
        // model_cooldown: the upstream's hint as the wait...
        assert_eq!(
            run_chain(&settings, &hinted(429, "model_cooldown", 15)),
            (retries(4, 15), Decision::Failover)
        );
        // ...or 1 s without one.
        assert_eq!(
            run_chain(&settings, &failure(429, "model_cooldown")),
            (retries(60, 1), Decision::Failover)
        );
    }

    #[test]
    fn an_unreachable_channel_is_left_at_once_whatever_the_rules_say() {
        let refused = Failure {
            status: 502,
            body: "no response from the upstream: connection failed".into(),
            no_connection: true,
            ..Failure::default()
        };
        let retry_forever = FailoverSettings {
            rules: vec![rule("502,others", vec![step("retry", Some(5), Some(99))])],
            ..FailoverSettings::default()
        };
        let disabled = FailoverSettings {
            enabled: false,
            ..FailoverSettings::default()
        };
        for settings in [FailoverSettings::default(), retry_forever, disabled] {
            assert_eq!(run_chain(&settings, &refused), (vec![], Decision::Failover));
        }
        // A 502 the upstream answered still follows the rules.
        assert_eq!(
            run_chain(&FailoverSettings::default(), &failure(502, "bad gateway")),
            (retries(2, 5), Decision::Failover)
        );
    }

    #[test]
    fn default_5xx_retries_twice_then_fails_over() {
        let settings = FailoverSettings::default();
        for status in [500, 502, 503, 504, 529] {
            assert_eq!(
                run_chain(&settings, &failure(status, "upstream trouble")),
                (retries(2, 5), Decision::Failover),
                "{status}"
            );
        }
        // A Retry-After does not shorten a fixed wait either.
        assert_eq!(
            run_chain(&settings, &hinted(503, "", 1)),
            (retries(2, 5), Decision::Failover)
        );
        // 5xx codes outside the rule are the client's to see.
        for status in [501, 505] {
            assert_eq!(
                run_chain(&settings, &failure(status, "")),
                (Vec::new(), Decision::GiveUp),
                "{status}"
            );
        }
    }

    #[test]
    fn default_auth_failures_fail_over_and_client_errors_are_given_back() {
        let settings = FailoverSettings::default();
        for status in [401, 403] {
            assert_eq!(
                run_chain(&settings, &failure(status, "invalid x-api-key")),
                (Vec::new(), Decision::Failover),
                "{status}"
            );
        }
        for status in [400, 404, 413, 422] {
            assert_eq!(
                run_chain(&settings, &hinted(status, "bad request", 5)),
                (Vec::new(), Decision::GiveUp),
                "{status}"
            );
        }
    }

    #[test]
    fn a_different_failure_starts_its_own_chain() {
        let settings = FailoverSettings::default();
        let suspend = Duration::from_secs(300);
        let mut state = ChainState::default();
        let limited = failure(429, "slow down");
        let broken = failure(500, "boom");
        for _ in 0..2 {
            assert_eq!(
                decide(&settings, &limited, &mut state, suspend),
                Decision::Retry(Duration::from_secs(5))
            );
        }
        // The 500 rule has its own two retries.
        for _ in 0..2 {
            assert_eq!(
                decide(&settings, &broken, &mut state, suspend),
                Decision::Retry(Duration::from_secs(5))
            );
        }
        assert_eq!(
            decide(&settings, &broken, &mut state, suspend),
            Decision::Failover
        );
    }

    #[test]
    fn custom_chains_advance_step_by_step() {
        let settings = FailoverSettings {
            rules: vec![rule(
                "429, 503",
                vec![
                    step("retry", Some(2), None),
                    step("unknown-action", None, None),
                    step("retry", Some(7), Some(2)),
                    step("suspend", None, None),
                ],
            )],
            ..FailoverSettings::default()
        };
        let mut state = ChainState::default();
        let busy = failure(503, "");
        let suspend = Duration::from_secs(42);
        let decisions: Vec<Decision> = (0..5)
            .map(|_| decide(&settings, &busy, &mut state, suspend))
            .collect();
        assert_eq!(
            decisions,
            [
                // no maxAttempts: one retry
                Decision::Retry(Duration::from_secs(2)),
                Decision::Retry(Duration::from_secs(7)),
                Decision::Retry(Duration::from_secs(7)),
                Decision::Suspend(suspend),
                Decision::Suspend(suspend),
            ]
        );
        // A chain that runs out fails over; an unmatched status is given back.
        let short = FailoverSettings {
            rules: vec![rule("502", vec![step("retry", Some(1), Some(1))])],
            ..FailoverSettings::default()
        };
        assert_eq!(
            run_chain(&short, &failure(502, "")),
            (retries(1, 1), Decision::Failover)
        );
        assert_eq!(
            run_chain(&short, &failure(429, "")),
            (Vec::new(), Decision::GiveUp)
        );
    }

    #[test]
    fn disabled_rules_fail_over_on_server_and_auth_errors_only() {
        let disabled = FailoverSettings {
            enabled: false,
            ..FailoverSettings::default()
        };
        for status in [401, 403, 429, 500, 599] {
            assert_eq!(
                run_chain(&disabled, &hinted(status, "QUOTA_EXHAUSTED", 10)),
                (Vec::new(), Decision::Failover),
                "{status}"
            );
        }
        for status in [400, 404, 499] {
            assert_eq!(
                run_chain(&disabled, &failure(status, "")),
                (Vec::new(), Decision::GiveUp),
                "{status}"
            );
        }
    }
}
