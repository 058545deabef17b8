//! Retry delays for the cluster loops while PostgreSQL fails: doubling from a base up to a cap,
//! each delay jittered (between half and all of it), so instances that lost PostgreSQL together
//! do not all come back in the same instant.

use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    failures: u32,
}

impl Backoff {
    /// Delays start at `base` and never exceed `cap` (at least `base`).
    #[must_use]
    pub fn new(base: Duration, cap: Duration) -> Self {
        Self {
            base,
            cap: cap.max(base),
            failures: 0,
        }
    }

    /// Count a failure; the delay before the next attempt.
    pub fn failed(&mut self) -> Duration {
        let doubled = self
            .base
            .saturating_mul(1u32 << self.failures.min(20))
            .min(self.cap);
        self.failures = self.failures.saturating_add(1);
        jitter(doubled)
    }

    /// An attempt worked: the next failure starts again from `base`.
    pub fn succeeded(&mut self) {
        self.failures = 0;
    }

    /// Failures in a row so far.
    #[must_use]
    pub fn failures(&self) -> u32 {
        self.failures
    }
}

/// A random delay between half of `delay` and `delay`.
fn jitter(delay: Duration) -> Duration {
    let half = delay / 2;
    let spread = u64::try_from((delay - half).as_micros()).unwrap_or(u64::MAX);
    // Without randomness (never expected) the full delay is still a valid one.
    let random = getrandom::u64().unwrap_or(u64::MAX);
    half + Duration::from_micros(random % spread.saturating_add(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_cap_with_jitter_and_restart_after_a_success() {
        let base = Duration::from_millis(100);
        let cap = Duration::from_secs(1);
        let mut backoff = Backoff::new(base, cap);
        for (attempt, full) in [100, 200, 400, 800, 1000, 1000].into_iter().enumerate() {
            let full = Duration::from_millis(full);
            let delay = backoff.failed();
            assert!(
                delay >= full / 2 && delay <= full,
                "attempt {attempt}: {delay:?} not within [{:?}, {full:?}]",
                full / 2
            );
        }
        assert_eq!(backoff.failures(), 6);
        backoff.succeeded();
        assert_eq!(backoff.failures(), 0);
        assert!(backoff.failed() <= base);
        // Jitter spreads instances: 50 delays are not all the same.
        let delays: std::collections::HashSet<Duration> =
            (0..50).map(|_| Backoff::new(cap, cap).failed()).collect();
        assert!(delays.len() > 1);
    }
}
