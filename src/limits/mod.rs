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
//! do: `keys` (admission, permits, usage), `channel_quota`, `channel_rate` (the RPM queue) and
//! `sticky` (session binding).

pub mod clock;
pub mod quota;
pub mod seed;
pub mod window;

mod channel_quota;
mod channel_rate;
mod keys;
mod sticky;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use time::OffsetDateTime;

pub use channel_quota::{ChannelUsage, QuotaUsage};
pub use clock::{Clock, ManualClock, SystemClock};
use keys::KeyState;
pub use keys::{KeyPermit, KeySeed, KeyUsage, Refusal, WindowUsage, key_horizon};
use window::RollingSum;

use crate::FastMap;

const RPM_WINDOW: i64 = 60;
/// Rolling windows of tokens, requests and cost keep one-minute buckets.
const USAGE_BUCKET: i64 = 60;

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
        })
    }

    #[must_use]
    pub fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }
}
