//! Stage 4 of the request path: which channels may serve this request, in which order.
//!
//! Order: promoted channels first (`promotionUntil` in the future), then by priority (lower
//! first) and file position; the pool's load-balance strategy rotates (`round-robin`) or
//! shuffles (`random`) the best-priority tier. Channels that are not active, not in the key's
//! allowlist, cannot serve the pool, or whose circuit is open are skipped — with the reason
//! kept for the error message and the log. A composite channel stands for the channels its
//! `compositeMappings` name for the request's model, tried in the mapping's order.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use time::OffsetDateTime;

use crate::config::{LiveChannel, LoadBalance, Snapshot, UpstreamKind};
use crate::domain::{ClientKey, Pool};
use crate::limits::Limiter;

/// A channel to try, with how to talk to it.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub channel: Arc<LiveChannel>,
    pub kind: UpstreamKind,
    /// The model to ask this channel for before its own `modelMapping` (a composite mapping's
    /// `targetModel`); `None` = the client's.
    pub model: Option<String>,
}

#[derive(Debug, Default)]
pub struct Plan {
    pub candidates: Vec<Candidate>,
    /// (channel name, why it was skipped)
    pub skipped: Vec<(String, String)>,
}

#[derive(Debug, Default, Clone, Copy)]
struct ChannelHealth {
    consecutive_failures: u32,
    open_until: Option<Instant>,
    suspended_until: Option<Instant>,
}

/// `duration` from now; a duration beyond what the clock can hold (a stored setting near
/// `u64::MAX` seconds) means "for as long as this process runs".
fn later(duration: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(duration)
        .or_else(|| now.checked_add(Duration::from_secs(100 * 365 * 86_400)))
        .unwrap_or(now)
}

/// In-memory channel health: the circuit breaker and `suspend` actions. Not persisted: after a
/// restart every channel gets a fresh chance.
#[derive(Debug, Default)]
pub struct Health {
    channels: Mutex<HashMap<String, ChannelHealth>>,
    round_robin: [AtomicUsize; 4],
    key_round_robin: AtomicUsize,
    random_state: AtomicUsize,
}

impl Health {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, ChannelHealth>> {
        self.channels
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Why the channel is unavailable right now, if it is.
    fn unavailable(&self, id: &str, now: Instant) -> Option<String> {
        let health = *self.lock().get(id)?;
        if let Some(until) = health.suspended_until
            && until > now
        {
            return Some(format!(
                "suspended for {} s more",
                (until - now).as_secs() + 1
            ));
        }
        if let Some(until) = health.open_until
            && until > now
        {
            return Some(format!(
                "circuit open after {} failures, retried in {} s",
                health.consecutive_failures,
                (until - now).as_secs() + 1
            ));
        }
        None
    }

    /// What holds the channel back right now, for the admin views: `("suspended", why)` (a
    /// failover rule's `suspend`) or `("circuit_open", why)`; `None` when nothing does.
    #[must_use]
    pub fn held_back(&self, id: &str) -> Option<(&'static str, String)> {
        let now = Instant::now();
        let why = self.unavailable(id, now)?;
        let suspended = self
            .lock()
            .get(id)
            .and_then(|health| health.suspended_until)
            .is_some_and(|until| until > now);
        Some((
            if suspended {
                "suspended"
            } else {
                "circuit_open"
            },
            why,
        ))
    }

    pub fn record_success(&self, id: &str) {
        let mut map = self.lock();
        if let Some(health) = map.get_mut(id) {
            *health = ChannelHealth::default();
        }
    }

    /// Count a failure; opens the circuit at `threshold` consecutive failures. Returns whether
    /// it opened now.
    pub fn record_failure(&self, id: &str, threshold: u32, cooldown: Duration) -> bool {
        let mut map = self.lock();
        let health = map.entry(id.to_string()).or_default();
        health.consecutive_failures += 1;
        if threshold > 0 && health.consecutive_failures >= threshold {
            health.open_until = Some(later(cooldown));
            return true;
        }
        false
    }

    pub fn suspend(&self, id: &str, duration: Duration) {
        self.lock()
            .entry(id.to_string())
            .or_default()
            .suspended_until = Some(later(duration));
    }

    fn next(&self, pool: Pool) -> usize {
        self.round_robin[pool as usize].fetch_add(1, Ordering::Relaxed)
    }

    /// Which of a channel's upstream keys a request starts with: `keyLoadBalance`
    /// (`failover` = the first, `round-robin`, `random`; empty = the pool's strategy). Retries
    /// move on to the next key.
    pub fn first_key(&self, channel: &LiveChannel, pool_strategy: LoadBalance) -> usize {
        match channel.key_load_balance.unwrap_or(pool_strategy) {
            LoadBalance::RoundRobin => self.key_round_robin.fetch_add(1, Ordering::Relaxed),
            LoadBalance::Random => self.random(),
            LoadBalance::Failover => 0,
        }
    }

    fn random(&self) -> usize {
        // A cheap, well-mixed sequence is enough to spread load; nothing secret depends on it.
        let x = self.random_state.fetch_add(0x9E37_79B9, Ordering::Relaxed);
        x.wrapping_mul(0x85EB_CA6B).rotate_left(13)
    }
}

fn allowlist(key: &ClientKey, pool: Pool) -> &[String] {
    match pool {
        Pool::Messages => &key.allow.channels_messages,
        Pool::Responses => &key.allow.channels_responses,
        Pool::Gemini => &key.allow.channels_gemini,
        Pool::Chat => &key.allow.channels_chat,
    }
}

fn promoted(channel: &LiveChannel, now: OffsetDateTime) -> bool {
    channel.promotion_until.is_some_and(|until| until > now)
}

/// Whether `channel` can take a request now, else why not: its status, its health (suspended,
/// circuit open) and its quota.
fn available(
    channel: &LiveChannel,
    health: &Health,
    limits: &Limiter,
    instant: Instant,
) -> Result<(), String> {
    if !channel.channel.is_routable() {
        return Err(format!("status is {:?}", channel.channel.status).to_lowercase());
    }
    if let Some(reason) = health.unavailable(&channel.channel.id, instant) {
        return Err(reason);
    }
    limits.quota_check(&channel.channel.id, channel.quota.as_ref())
}

/// How to talk to a channel that can take a request now, else why not.
fn usable_now(
    channel: &LiveChannel,
    health: &Health,
    limits: &Limiter,
    instant: Instant,
) -> Result<UpstreamKind, String> {
    let kind = channel.upstream.clone()?;
    available(channel, health, limits, instant)?;
    Ok(kind)
}

/// The ordered candidates for a request of `pool` for `model` by `key`.
pub fn plan(
    live: &Snapshot,
    health: &Health,
    limits: &Limiter,
    pool: Pool,
    model: &str,
    key: &ClientKey,
    now: OffsetDateTime,
) -> Plan {
    let mut plan = Plan::default();
    let allowed = allowlist(key, pool);
    let instant = Instant::now();
    let mut usable: Vec<Candidate> = Vec::new();
    for channel in live.channels(pool) {
        let name = &channel.channel.name;
        if !channel.channel.is_routable() {
            plan.skipped.push((
                name.clone(),
                format!("status is {:?}", channel.channel.status).to_lowercase(),
            ));
            continue;
        }
        if !allowed.is_empty() && !allowed.contains(&channel.channel.id) {
            plan.skipped
                .push((name.clone(), "not allowed for this key".into()));
            continue;
        }
        if channel.channel.service_type == "composite" {
            if let Err(reason) = available(channel, health, limits, instant) {
                plan.skipped.push((name.clone(), reason));
                continue;
            }
            let Some(route) = channel.composite.iter().find(|r| r.matches(model)) else {
                plan.skipped.push((
                    name.clone(),
                    format!("no compositeMappings pattern matches the model '{model}'"),
                ));
                continue;
            };
            for (target_pool, id) in &route.targets {
                let Some(target) = live
                    .channels(*target_pool)
                    .iter()
                    .find(|c| &c.channel.id == id)
                else {
                    plan.skipped.push((
                        format!("{name} → {id}"),
                        format!("no channel {id} in the {target_pool} pool"),
                    ));
                    continue;
                };
                match usable_now(target, health, limits, instant) {
                    Ok(kind) => usable.push(Candidate {
                        channel: Arc::clone(target),
                        kind,
                        model: route.target_model.clone(),
                    }),
                    Err(reason) => plan
                        .skipped
                        .push((format!("{name} → {}", target.channel.name), reason)),
                }
            }
            continue;
        }
        match usable_now(channel, health, limits, instant) {
            Ok(kind) => usable.push(Candidate {
                channel: Arc::clone(channel),
                kind,
                model: None,
            }),
            Err(reason) => plan.skipped.push((name.clone(), reason)),
        }
    }
    // Promoted channels first, keeping their relative order.
    let (mut first, mut rest): (Vec<_>, Vec<_>) =
        usable.into_iter().partition(|c| promoted(&c.channel, now));
    let strategy = live.load_balance[pool as usize];
    if !rest.is_empty() && strategy != LoadBalance::Failover {
        let best = rest[0].channel.channel.priority;
        let tier = rest
            .iter()
            .take_while(|c| c.channel.channel.priority == best)
            .count();
        if tier > 1 {
            let shift = if strategy == LoadBalance::Random {
                health.random()
            } else {
                health.next(pool)
            } % tier;
            rest[..tier].rotate_left(shift);
        }
    }
    first.append(&mut rest);
    plan.candidates = first;
    plan
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use time::format_description::well_known::Rfc3339;

    use super::*;
    use crate::crypto::Cipher;
    use crate::domain::{Channel, ChannelStatus, Settings};
    use crate::limits::SystemClock;
    use crate::relay::test_support::{channel, cipher, key, live, snapshot};

    fn limiter() -> Arc<Limiter> {
        Limiter::new(Arc::new(SystemClock))
    }

    fn messages(id: &str, priority: i64) -> Channel {
        channel(id, Pool::Messages, "claude", priority)
    }

    fn ids(plan: &Plan) -> Vec<&str> {
        plan.candidates
            .iter()
            .map(|c| c.channel.channel.id.as_str())
            .collect()
    }

    fn skipped(plan: &Plan) -> Vec<(&str, &str)> {
        plan.skipped
            .iter()
            .map(|(name, why)| (name.as_str(), why.as_str()))
            .collect()
    }

    /// One plan of the messages pool by an unrestricted key.
    fn plan_messages(live: &Snapshot, health: &Health) -> Plan {
        plan(
            live,
            health,
            &limiter(),
            Pool::Messages,
            "m",
            &key("k1"),
            crate::domain::now(),
        )
    }

    fn in_an_hour(hours: i64) -> String {
        (crate::domain::now() + time::Duration::hours(hours))
            .format(&Rfc3339)
            .unwrap()
    }

    fn round_robin() -> Settings {
        Settings {
            load_balance: "round-robin".into(),
            ..Settings::default()
        }
    }

    #[test]
    fn priority_order_then_file_position() {
        let cipher = cipher();
        let live = snapshot(
            &cipher,
            vec![
                messages("a", 2),
                messages("b", 1),
                messages("c", 1),
                messages("d", 0),
                channel("x", Pool::Chat, "openai", 0),
            ],
            Settings::default(),
        );
        let plan = plan_messages(&live, &Health::default());
        assert_eq!(ids(&plan), ["d", "b", "c", "a"]);
        assert!(plan.skipped.is_empty());
        assert!(
            plan.candidates
                .iter()
                .all(|c| c.kind == UpstreamKind::Anthropic)
        );
        // The same order on every call under `failover`.
        assert_eq!(
            ids(&plan_messages(&live, &Health::default())),
            ["d", "b", "c", "a"]
        );
    }

    #[test]
    fn disabled_and_suspended_channels_are_skipped_with_their_status() {
        let cipher = cipher();
        let mut disabled = messages("b", 0);
        disabled.status = ChannelStatus::Disabled;
        let mut suspended = messages("c", 1);
        suspended.status = ChannelStatus::Suspended;
        let live = snapshot(
            &cipher,
            vec![messages("a", 2), disabled, suspended],
            Settings::default(),
        );
        let plan = plan_messages(&live, &Health::default());
        assert_eq!(ids(&plan), ["a"]);
        assert_eq!(
            skipped(&plan),
            [
                ("ch-b", "status is disabled"),
                ("ch-c", "status is suspended")
            ]
        );
    }

    #[test]
    fn the_keys_channel_allowlist_is_per_pool() {
        let cipher = cipher();
        let live = snapshot(
            &cipher,
            vec![
                messages("a", 0),
                messages("b", 1),
                messages("c", 2),
                channel("x", Pool::Chat, "openai", 0),
            ],
            Settings::default(),
        );
        let mut key = key("k1");
        key.allow.channels_messages = vec!["b".into()];
        let health = Health::default();
        let limits = limiter();
        let now = crate::domain::now();
        let plan = plan(&live, &health, &limits, Pool::Messages, "m", &key, now);
        assert_eq!(ids(&plan), ["b"]);
        assert_eq!(
            skipped(&plan),
            [
                ("ch-a", "not allowed for this key"),
                ("ch-c", "not allowed for this key")
            ]
        );
        // No chat allowlist: every chat channel.
        let chat = super::plan(&live, &health, &limits, Pool::Chat, "m", &key, now);
        assert_eq!(ids(&chat), ["x"]);
    }

    #[test]
    fn channels_of_another_protocol_serve_the_pool_through_a_conversion() {
        let cipher = cipher();
        let live = snapshot(
            &cipher,
            vec![
                channel("claude-in-chat", Pool::Chat, "claude", 0),
                channel("openai", Pool::Chat, "openai", 1),
                channel("codex", Pool::Responses, "openai-oauth", 0),
                channel("gemini-in-responses", Pool::Responses, "gemini", 1),
            ],
            Settings::default(),
        );
        let health = Health::default();
        let limits = limiter();
        let now = crate::domain::now();
        let chat = plan(&live, &health, &limits, Pool::Chat, "m", &key("k1"), now);
        assert_eq!(ids(&chat), ["claude-in-chat", "openai"]);
        assert_eq!(chat.candidates[0].kind, UpstreamKind::Anthropic);
        assert_eq!(chat.candidates[1].kind, UpstreamKind::OpenAiChat);
        let responses = plan(
            &live,
            &health,
            &limits,
            Pool::Responses,
            "m",
            &key("k1"),
            now,
        );
        assert_eq!(ids(&responses), ["codex", "gemini-in-responses"]);
        assert_eq!(responses.candidates[1].kind, UpstreamKind::Gemini);
    }

    #[test]
    fn a_composite_channel_stands_for_the_targets_of_the_matching_mapping() {
        let cipher = cipher();
        let mut composite = channel("mix", Pool::Messages, "composite", 0);
        composite.composite_mappings = vec![
            serde_json::json!({"pattern": "haiku", "targetChannelId": "cheap", "targetModel": "gpt-4o-mini", "failoverChain": ["gone", "backup"]}),
            serde_json::json!({"pattern": "opus", "targetChannelId": "codex", "targetPool": "responses"}),
        ];
        let mut suspended = channel("backup", Pool::Messages, "claude", 9);
        suspended.status = ChannelStatus::Suspended;
        let live = snapshot(
            &cipher,
            vec![
                composite,
                channel("cheap", Pool::Messages, "openai", 5),
                suspended,
                channel("codex", Pool::Responses, "responses", 0),
            ],
            Settings::default(),
        );
        let health = Health::default();
        let limits = limiter();
        let now = crate::domain::now();
        let mut only_mix = key("k1");
        only_mix.allow.channels_messages = vec!["mix".into()];
        let haiku = plan(
            &live,
            &health,
            &limits,
            Pool::Messages,
            "claude-haiku-4-5",
            &only_mix,
            now,
        );
        assert_eq!(ids(&haiku), ["cheap"]);
        assert_eq!(haiku.candidates[0].model.as_deref(), Some("gpt-4o-mini"));
        assert_eq!(haiku.candidates[0].kind, UpstreamKind::OpenAiChat);
        assert_eq!(
            skipped(&haiku),
            [
                ("ch-mix → gone", "no channel gone in the messages pool"),
                ("ch-mix → ch-backup", "status is suspended"),
                ("ch-cheap", "not allowed for this key"),
                ("ch-backup", "status is suspended"),
            ]
        );
        let opus = plan(
            &live,
            &health,
            &limits,
            Pool::Messages,
            "claude-OPUS-4-1",
            &only_mix,
            now,
        );
        assert_eq!(ids(&opus), ["codex"]);
        assert_eq!(opus.candidates[0].model, None);
        let sonnet = plan(
            &live,
            &health,
            &limits,
            Pool::Messages,
            "claude-sonnet-4-5",
            &only_mix,
            now,
        );
        assert!(sonnet.candidates.is_empty());
        assert_eq!(
            sonnet.skipped[0],
            (
                "ch-mix".to_string(),
                "no compositeMappings pattern matches the model 'claude-sonnet-4-5'".to_string()
            )
        );
    }

    #[test]
    fn a_promotion_in_the_future_goes_first() {
        let cipher = cipher();
        let mut promoted = messages("promoted", 5);
        promoted.promotion_until = Some(in_an_hour(1));
        let mut expired = messages("expired", 1);
        expired.promotion_until = Some(in_an_hour(-1));
        let mut garbled = messages("garbled", 2);
        garbled.promotion_until = Some("next tuesday".into());
        let mut later = messages("later", 9);
        later.promotion_until = Some(in_an_hour(2));
        let live = snapshot(
            &cipher,
            vec![messages("a", 0), expired, garbled, promoted, later],
            Settings::default(),
        );
        let plan = plan_messages(&live, &Health::default());
        // Promoted channels keep their priority order among themselves.
        assert_eq!(ids(&plan), ["promoted", "later", "a", "expired", "garbled"]);
    }

    #[test]
    fn round_robin_rotates_the_best_tier_per_pool() {
        let cipher = cipher();
        let live = snapshot(
            &cipher,
            vec![
                messages("a", 0),
                messages("b", 0),
                messages("c", 0),
                messages("d", 1),
                channel("e", Pool::Chat, "openai", 0),
                channel("f", Pool::Chat, "openai", 0),
            ],
            round_robin(),
        );
        let health = Health::default();
        let orders: Vec<Vec<String>> = (0..4)
            .map(|_| {
                ids(&plan_messages(&live, &health))
                    .into_iter()
                    .map(String::from)
                    .collect()
            })
            .collect();
        assert_eq!(
            orders,
            [
                ["a", "b", "c", "d"],
                ["b", "c", "a", "d"],
                ["c", "a", "b", "d"],
                ["a", "b", "c", "d"],
            ]
        );
        // The chat pool has its own rotation: it starts at its first channel.
        let chat = plan(
            &live,
            &health,
            &limiter(),
            Pool::Chat,
            "m",
            &key("k1"),
            crate::domain::now(),
        );
        assert_eq!(ids(&chat), ["e", "f"]);
    }

    #[test]
    fn round_robin_leaves_promoted_channels_first() {
        let cipher = cipher();
        let mut promoted = messages("p", 3);
        promoted.promotion_until = Some(in_an_hour(1));
        let live = snapshot(
            &cipher,
            vec![messages("a", 0), messages("b", 0), promoted],
            round_robin(),
        );
        let health = Health::default();
        assert_eq!(ids(&plan_messages(&live, &health)), ["p", "a", "b"]);
        assert_eq!(ids(&plan_messages(&live, &health)), ["p", "b", "a"]);
    }

    #[test]
    fn a_suspended_channel_is_skipped_until_its_time_is_up() {
        let cipher = cipher();
        let live = snapshot(
            &cipher,
            vec![messages("a", 0), messages("b", 1), messages("c", 2)],
            Settings::default(),
        );
        let health = Health::default();
        health.suspend("a", Duration::from_secs(60));
        health.suspend("c", Duration::ZERO);
        let plan = plan_messages(&live, &health);
        assert_eq!(ids(&plan), ["b", "c"]);
        assert_eq!(plan.skipped.len(), 1);
        let (name, why) = &plan.skipped[0];
        assert_eq!(name, "ch-a");
        assert!(
            why == "suspended for 60 s more" || why == "suspended for 59 s more",
            "{why}"
        );
    }

    #[test]
    fn the_circuit_opens_at_the_threshold_and_a_success_closes_it() {
        let cipher = cipher();
        let live = snapshot(
            &cipher,
            vec![messages("a", 0), messages("b", 1)],
            Settings::default(),
        );
        let health = Health::default();
        let cooldown = Duration::from_secs(30);
        assert!(!health.record_failure("a", 2, cooldown));
        assert_eq!(ids(&plan_messages(&live, &health)), ["a", "b"]);
        assert!(health.record_failure("a", 2, cooldown));
        let plan = plan_messages(&live, &health);
        assert_eq!(ids(&plan), ["b"]);
        assert_eq!(plan.skipped.len(), 1);
        assert_eq!(plan.skipped[0].0, "ch-a");
        assert!(
            plan.skipped[0]
                .1
                .starts_with("circuit open after 2 failures, retried in "),
            "{}",
            plan.skipped[0].1
        );
        health.record_success("a");
        assert_eq!(ids(&plan_messages(&live, &health)), ["a", "b"]);

        // Threshold 0 never opens; an elapsed cooldown lets the channel be tried again.
        for _ in 0..10 {
            assert!(!health.record_failure("b", 0, cooldown));
        }
        assert!(health.record_failure("a", 1, Duration::ZERO));
        assert_eq!(ids(&plan_messages(&live, &health)), ["a", "b"]);
    }

    #[test]
    fn a_channel_over_its_quota_is_skipped() {
        let cipher = cipher();
        let mut quota = messages("q", 0);
        quota.quota_type = "requests".into();
        quota.quota_limit = Some(1.0);
        let live = snapshot(
            &cipher,
            vec![quota.clone(), messages("b", 1)],
            Settings::default(),
        );
        let limits = limiter();
        let health = Health::default();
        let now = crate::domain::now();
        let before = plan(
            &live,
            &health,
            &limits,
            Pool::Messages,
            "m",
            &key("k1"),
            now,
        );
        assert_eq!(ids(&before), ["q", "b"]);
        limits.record_channel_usage(&quota, "claude-sonnet-4-5", now, 0.0);
        let after = plan(
            &live,
            &health,
            &limits,
            Pool::Messages,
            "m",
            &key("k1"),
            now,
        );
        assert_eq!(ids(&after), ["b"]);
        assert_eq!(skipped(&after), [("ch-q", "over its quota (1 of 1)")]);
    }

    fn with_key_balance(cipher: &Cipher, strategy: &str) -> LiveChannel {
        let mut channel = messages("k", 0);
        channel.key_load_balance = strategy.into();
        live(&channel, cipher)
    }

    #[test]
    fn first_key_follows_the_channel_else_the_pool() {
        let cipher = cipher();
        let own_failover = with_key_balance(&cipher, "failover");
        let pool_default = with_key_balance(&cipher, "");
        let own_round_robin = with_key_balance(&cipher, "round-robin");
        let own_random = with_key_balance(&cipher, "random");
        assert_eq!(own_failover.key_load_balance, Some(LoadBalance::Failover));
        assert_eq!(pool_default.key_load_balance, None);

        let health = Health::default();
        // The channel's own `failover` wins over a round-robin pool.
        for _ in 0..3 {
            assert_eq!(health.first_key(&own_failover, LoadBalance::RoundRobin), 0);
        }
        // No channel setting: the pool's strategy.
        assert_eq!(health.first_key(&pool_default, LoadBalance::Failover), 0);
        let rotated: Vec<usize> = (0..3)
            .map(|_| health.first_key(&pool_default, LoadBalance::RoundRobin))
            .collect();
        assert_eq!(rotated, [0, 1, 2]);

        // The channel's own round-robin over a failover pool.
        let health = Health::default();
        let rotated: Vec<usize> = (0..3)
            .map(|_| health.first_key(&own_round_robin, LoadBalance::Failover))
            .collect();
        assert_eq!(rotated, [0, 1, 2]);

        // Random spreads over every key (of three) within a few requests.
        let health = Health::default();
        let mut seen = [false; 3];
        for _ in 0..30 {
            seen[health.first_key(&own_random, LoadBalance::Failover) % 3] = true;
        }
        assert_eq!(seen, [true; 3]);
    }
}
