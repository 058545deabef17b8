//! How current this instance's configuration is. A single node's is always current; in
//! cluster mode it is as current as the last time the local copy was confirmed to match
//! PostgreSQL (a pull that reached the head).

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

#[derive(Debug)]
pub struct Freshness {
    /// Unix milliseconds of the last confirmation; `None` for a single node.
    confirmed_at_ms: Option<AtomicI64>,
}

impl Freshness {
    /// A single node: its store is the truth.
    #[must_use]
    pub fn local() -> Self {
        Self {
            confirmed_at_ms: None,
        }
    }

    /// A copy of a cluster's configuration; counted as confirmed now (the copy's age before
    /// this process started is unknown).
    #[must_use]
    pub fn replicated() -> Self {
        Self {
            confirmed_at_ms: Some(AtomicI64::new(now_ms())),
        }
    }

    /// The copy matched PostgreSQL's head just now.
    pub fn confirm(&self) {
        if let Some(at) = &self.confirmed_at_ms {
            at.store(now_ms(), Ordering::Relaxed);
        }
    }

    /// How long ago the copy was last confirmed (`None`: a single node, never stale).
    #[must_use]
    pub fn stale_for(&self) -> Option<Duration> {
        let at = self.confirmed_at_ms.as_ref()?.load(Ordering::Relaxed);
        let ms = u64::try_from(now_ms().saturating_sub(at)).unwrap_or(0);
        Some(Duration::from_millis(ms))
    }

    /// Whether relay traffic must be refused: a limit is set (`max_seconds` > 0) and the copy
    /// was last confirmed longer ago than that.
    #[must_use]
    pub fn too_stale(&self, max_seconds: u64) -> Option<Duration> {
        if max_seconds == 0 {
            return None;
        }
        self.stale_for()
            .filter(|age| *age > Duration::from_secs(max_seconds))
    }
}

fn now_ms() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(now.as_millis()).unwrap_or(i64::MAX)
}
