//! Stage 4 of the request path: which channels may serve this request, in which order.
//!
//! Order: promoted channels first (`promotionUntil` in the future), then by priority (lower
//! first) and file position; the pool's load-balance strategy rotates (`round-robin`) or
//! shuffles (`random`) the best-priority tier. Channels that are not active, not in the key's
//! allowlist, need a protocol conversion relaybox does not have, or whose circuit is open are
//! skipped — with the reason kept for the error message and the log.

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
            health.open_until = Some(Instant::now() + cooldown);
            return true;
        }
        false
    }

    pub fn suspend(&self, id: &str, duration: Duration) {
        self.lock()
            .entry(id.to_string())
            .or_default()
            .suspended_until = Some(Instant::now() + duration);
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

/// The ordered candidates for a request of `pool` by `key`.
pub fn plan(
    live: &Snapshot,
    health: &Health,
    limits: &Limiter,
    pool: Pool,
    key: &ClientKey,
    now: OffsetDateTime,
) -> Plan {
    let mut plan = Plan::default();
    let allowed = allowlist(key, pool);
    let instant = Instant::now();
    let mut usable: Vec<Candidate> = Vec::new();
    for channel in live.channels(pool) {
        let name = channel.channel.name.clone();
        if !channel.channel.is_routable() {
            plan.skipped.push((
                name,
                format!("status is {:?}", channel.channel.status).to_lowercase(),
            ));
            continue;
        }
        if !allowed.is_empty() && !allowed.contains(&channel.channel.id) {
            plan.skipped.push((name, "not allowed for this key".into()));
            continue;
        }
        let kind = match &channel.upstream {
            Ok(kind) => *kind,
            Err(reason) => {
                plan.skipped.push((name, reason.clone()));
                continue;
            }
        };
        if let Some(reason) = health.unavailable(&channel.channel.id, instant) {
            plan.skipped.push((name, reason));
            continue;
        }
        if let Err(reason) = limits.quota_check(&channel.channel.id, channel.quota.as_ref()) {
            plan.skipped.push((name, reason));
            continue;
        }
        usable.push(Candidate {
            channel: Arc::clone(channel),
            kind,
        });
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
