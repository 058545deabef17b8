//! Failed admin authentications per client address: after [`MAX_FAILURES`] within
//! [`WINDOW`], every admin request from that address is answered 429 (with `retry-after`)
//! until the window ends — a correct key too, so a guesser learns nothing while blocked.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const MAX_FAILURES: u32 = 10;
pub const WINDOW: Duration = Duration::from_secs(60);
/// Addresses remembered at most (memory stays bounded under a spray of addresses); past it,
/// expired entries go first, then the oldest.
const MAX_ADDRESSES: usize = 10_000;

#[derive(Debug, Default)]
pub struct AuthThrottle {
    /// address → (start of its window, failures in it)
    failures: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

impl AuthThrottle {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, (Instant, u32)>> {
        self.failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Seconds until `address` may try again, when it is blocked now.
    pub fn blocked(&self, address: IpAddr, now: Instant) -> Option<u64> {
        let (start, failures) = *self.lock().get(&address)?;
        let end = start + WINDOW;
        (failures >= MAX_FAILURES && now < end)
            .then(|| (end - now).as_secs_f64().ceil().max(1.0) as u64)
    }

    /// Count one failed authentication from `address`.
    pub fn fail(&self, address: IpAddr, now: Instant) {
        let mut map = self.lock();
        if map.len() >= MAX_ADDRESSES && !map.contains_key(&address) {
            map.retain(|_, (start, _)| now.duration_since(*start) < WINDOW);
            if map.len() >= MAX_ADDRESSES
                && let Some(oldest) = map.iter().min_by_key(|(_, (s, _))| *s).map(|(a, _)| *a)
            {
                map.remove(&oldest);
            }
        }
        let entry = map.entry(address).or_insert((now, 0));
        if now.duration_since(entry.0) >= WINDOW {
            *entry = (now, 0);
        }
        entry.1 = entry.1.saturating_add(1);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ten_failures_block_an_address_for_the_rest_of_the_minute() {
        let throttle = AuthThrottle::default();
        let a: IpAddr = [10, 0, 0, 1].into();
        let b: IpAddr = [10, 0, 0, 2].into();
        let t0 = Instant::now();
        for _ in 0..MAX_FAILURES - 1 {
            throttle.fail(a, t0);
        }
        assert_eq!(throttle.blocked(a, t0), None, "nine failures are allowed");
        throttle.fail(a, t0);
        assert_eq!(throttle.blocked(a, t0), Some(60));
        assert_eq!(throttle.blocked(a, t0 + Duration::from_secs(59)), Some(1));
        assert_eq!(
            throttle.blocked(b, t0),
            None,
            "other addresses are not affected"
        );
        assert_eq!(throttle.blocked(a, t0 + WINDOW), None, "the window ended");
        throttle.fail(a, t0 + WINDOW);
        assert_eq!(
            throttle.blocked(a, t0 + WINDOW),
            None,
            "a new window starts"
        );
    }

    #[test]
    fn memory_is_bounded() {
        let throttle = AuthThrottle::default();
        let t0 = Instant::now();
        for i in 0..(MAX_ADDRESSES as u32 + 500) {
            throttle.fail(IpAddr::from(i.to_be_bytes()), t0);
        }
        assert_eq!(throttle.len(), MAX_ADDRESSES);
    }
}
