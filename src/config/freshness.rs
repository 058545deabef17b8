//! How current this instance's configuration is. A single node's is always current; in
//! cluster mode it is as current as the last time the local copy was confirmed to match
//! PostgreSQL (a pull that reached the head). `maxConfigStalenessSeconds` counts from the
//! first failed pull after that (pulls run every 5 s), so a healthy cluster never trips it.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

#[derive(Debug)]
pub struct Freshness {
    /// Unix milliseconds of the last confirmation; `None` for a single node.
    confirmed_at_ms: Option<AtomicI64>,
    /// Unix milliseconds of the first failed pull since the last confirmation (0: none).
    failing_since_ms: AtomicI64,
}

impl Freshness {
    /// A single node: its store is the truth.
    #[must_use]
    pub fn local() -> Self {
        Self {
            confirmed_at_ms: None,
            failing_since_ms: AtomicI64::new(0),
        }
    }

    /// A copy of a cluster's configuration; counted as confirmed now (the copy's age before
    /// this process started is unknown).
    #[must_use]
    pub fn replicated() -> Self {
        Self {
            confirmed_at_ms: Some(AtomicI64::new(now_ms())),
            failing_since_ms: AtomicI64::new(0),
        }
    }

    /// The copy matched PostgreSQL's head just now.
    pub fn confirm(&self) {
        if let Some(at) = &self.confirmed_at_ms {
            at.store(now_ms(), Ordering::Relaxed);
            self.failing_since_ms.store(0, Ordering::Relaxed);
        }
    }

    /// A pull failed (PostgreSQL unreachable, or the copy cannot be brought up to date).
    pub fn failed(&self) {
        if self.confirmed_at_ms.is_some() {
            let _ = self.failing_since_ms.compare_exchange(
                0,
                now_ms(),
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
        }
    }

    /// How long ago the copy was last confirmed (`None`: a single node, never stale).
    #[must_use]
    pub fn stale_for(&self) -> Option<Duration> {
        let at = self.confirmed_at_ms.as_ref()?.load(Ordering::Relaxed);
        let ms = u64::try_from(now_ms().saturating_sub(at)).unwrap_or(0);
        Some(Duration::from_millis(ms))
    }

    /// Whether relay traffic must be refused: a limit is set (`max_seconds` > 0) and pulls
    /// have failed for longer than that. Returns how long ago the copy was last confirmed.
    #[must_use]
    pub fn too_stale(&self, max_seconds: u64) -> Option<Duration> {
        if max_seconds == 0 {
            return None;
        }
        let since = self.failing_since_ms.load(Ordering::Relaxed);
        if since == 0 {
            return None;
        }
        let failing = u64::try_from(now_ms().saturating_sub(since)).unwrap_or(0);
        if failing <= max_seconds.saturating_mul(1000) {
            return None;
        }
        self.stale_for()
    }
}

fn now_ms() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(now.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_failed_pulls_make_a_copy_too_stale() {
        assert_eq!(Freshness::local().too_stale(1), None);
        let copy = Freshness::replicated();
        copy.confirmed_at_ms
            .as_ref()
            .unwrap()
            .store(now_ms() - 60_000, Ordering::Relaxed);
        // Not confirmed for a minute, but no pull failed: a quiet, healthy cluster.
        assert_eq!(copy.too_stale(5), None);
        copy.failed();
        copy.failing_since_ms
            .store(now_ms() - 6_000, Ordering::Relaxed);
        assert!(
            copy.too_stale(5)
                .is_some_and(|age| age >= Duration::from_secs(60))
        );
        assert_eq!(copy.too_stale(0), None, "0 turns the check off");
        assert_eq!(copy.too_stale(10), None);
        copy.confirm();
        assert_eq!(copy.too_stale(5), None);
    }
}
