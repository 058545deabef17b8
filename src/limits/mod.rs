//! Limits, enforced in memory on the request path and durable across restarts.
//!
//! - Per key: requests per minute, concurrent requests, requests/tokens/cost per rolling window,
//!   cost per UTC day, total cost. [`Limiter::admit_key`] checks and counts a request and returns
//!   a [`KeyPermit`] that holds its concurrency slot until dropped — on every path: success,
//!   error, client disconnect, panic.
//! - Per channel: cc-bridge quotas (requests or credit, fixed or rolling periods, model filter)
//!   and `rateLimitRpm` with an optional bounded queue.
//! - Sticky sessions: a conversation stays on the channel that served it first.
//!
//! Nothing here touches a disk. The request-log rows are the durable record: they are
//! group-committed together with the daily usage roll-ups, and [`Limiter::seed_key`] /
//! [`Limiter::seed_channel`] rebuild the counters from them at start. A hard kill therefore loses
//! at most the rows of the last group commit (≤ 100 ms).
//!
//! [`Limiter`] is the one handle the request path holds; its methods live with the job they
//! do: `keys` (admission, permits, usage), `channel_quota`, `channel_rate` (the RPM queue),
//! `sticky` (session binding) and `shared` (cluster mode).
//!
//! **Cluster mode** (`shared`): budgets, rolling windows and channel quotas count this
//! instance's own usage plus what the other instances used as of the last sync (a per-key and
//! per-channel figure the sync replaces; the request path never waits on PostgreSQL).
//! Requests per minute and concurrency are enforced locally on this instance's share:
//! ⌈limit ÷ live instances⌉, never below 1. A single instance (1 live instance, nothing from
//! others) behaves exactly as without a cluster.

pub mod clock;
pub mod quota;
pub mod seed;
pub mod window;

mod channel_quota;
mod channel_rate;
mod keys;
mod shared;
mod sticky;

use std::collections::HashMap;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex, MutexGuard};

use time::OffsetDateTime;

pub use channel_quota::{ChannelUsage, QuotaUsage};
pub use clock::{Clock, ManualClock, SystemClock};
use keys::KeyState;
pub use keys::{KeyPermit, KeySeed, KeyUsage, Refusal, WindowUsage, key_horizon};
use quota::QuotaPeriod;
use shared::RemoteChannel;
use window::RollingSum;

use crate::FastMap;

const RPM_WINDOW: i64 = 60;
/// Rolling windows of tokens, requests and cost keep one-minute buckets.
const USAGE_BUCKET: i64 = 60;
/// `dirty_from` of counters with nothing to publish.
const CLEAN: i64 = i64::MAX;

/// This instance's share of a per-minute or concurrency limit when `instances` share it:
/// ⌈limit ÷ instances⌉, never below 1 (and the limit itself for one instance).
#[must_use]
pub fn local_share(limit: u32, instances: usize) -> u32 {
    match u32::try_from(instances) {
        Ok(0 | 1) => limit,
        Ok(n) => limit.div_ceil(n).max(1),
        Err(_) => 1,
    }
}

/// One channel's counters: the rate limiter's (`recent`, `queued`) and the quota's, kept in one
/// map so the usage report reads both under one lock.
#[derive(Debug)]
struct ChannelState {
    recent: RollingSum,
    queued: u32,
    quota_used: f64,
    quota_period_start: i64,
    /// A manual reset (or an imported `lastResetAt`): usage before it does not count.
    quota_floor: i64,
    quota_rolling: RollingSum,
    seeded_for: Option<String>,
    /// The quota period last looked at (what the counters above count), for publishing.
    last_period: Option<QuotaPeriod>,
    /// The oldest minute whose quota usage changed since the last export ([`CLEAN`]: none).
    dirty_from: i64,
    /// What the cluster's other instances used, as of the last sync.
    remote: Option<Box<RemoteChannel>>,
}

impl Default for ChannelState {
    fn default() -> Self {
        Self {
            recent: RollingSum::new(1),
            queued: 0,
            quota_used: 0.0,
            quota_period_start: i64::MIN,
            quota_floor: i64::MIN,
            quota_rolling: RollingSum::new(USAGE_BUCKET),
            seeded_for: None,
            last_period: None,
            dirty_from: CLEAN,
            remote: None,
        }
    }
}

/// All in-memory counters, each map behind its own mutex so keys, channels and sessions never
/// wait on each other.
pub struct Limiter {
    clock: Arc<dyn Clock>,
    keys: Mutex<FastMap<String, KeyState>>,
    channels: Mutex<FastMap<String, ChannelState>>,
    /// `key id / session id` → (channel id, expires at unix seconds)
    sessions: Mutex<HashMap<String, (String, i64)>>,
    /// Instances sharing per-minute and concurrency limits (1 without a cluster).
    live_instances: AtomicUsize,
}

impl std::fmt::Debug for Limiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limiter").finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn channel_state<'a>(
    channels: &'a mut FastMap<String, ChannelState>,
    id: &str,
) -> &'a mut ChannelState {
    if !channels.contains_key(id) {
        channels.insert(id.to_string(), ChannelState::default());
    }
    channels
        .get_mut(id)
        .unwrap_or_else(|| unreachable!("inserted above"))
}

impl Limiter {
    #[must_use]
    pub fn new(clock: Arc<dyn Clock>) -> Arc<Self> {
        Arc::new(Self {
            clock,
            keys: Mutex::new(FastMap::default()),
            channels: Mutex::new(FastMap::default()),
            sessions: Mutex::new(HashMap::new()),
            live_instances: AtomicUsize::new(1),
        })
    }

    #[must_use]
    pub fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }
}

#[cfg(test)]
mod tests {
    use super::local_share;

    #[test]
    fn the_local_share_rounds_up_and_never_reaches_zero() {
        assert_eq!(local_share(10, 1), 10);
        assert_eq!(
            local_share(10, 0),
            10,
            "no cluster view yet: the whole limit"
        );
        assert_eq!(local_share(10, 3), 4);
        assert_eq!(local_share(9, 3), 3);
        assert_eq!(local_share(2, 3), 1);
        assert_eq!(local_share(1, 100), 1);
        assert_eq!(local_share(u32::MAX, 2), u32::MAX / 2 + 1);
    }
}
