//! Rolling sums in fixed-width time buckets.

use std::collections::VecDeque;

/// Values added at a time, summed over a trailing window. Resolution is one bucket: a value
/// leaves the window between `window - bucket` and `window` seconds after it was added.
#[derive(Debug, Clone)]
pub struct RollingSum {
    bucket_secs: i64,
    /// (bucket index = unix seconds / bucket_secs, sum of values in it), oldest first
    buckets: VecDeque<(i64, f64)>,
}

impl RollingSum {
    #[must_use]
    pub fn new(bucket_secs: i64) -> Self {
        Self {
            bucket_secs: bucket_secs.max(1),
            buckets: VecDeque::new(),
        }
    }

    pub fn add(&mut self, at_unix: i64, value: f64) {
        let index = at_unix.div_euclid(self.bucket_secs);
        match self.buckets.iter_mut().rev().find(|(i, _)| *i == index) {
            Some((_, sum)) => *sum += value,
            None => {
                // Keep the deque ordered even if a late completion lands in an older bucket.
                let position = self
                    .buckets
                    .iter()
                    .position(|(i, _)| *i > index)
                    .unwrap_or(self.buckets.len());
                self.buckets.insert(position, (index, value));
            }
        }
    }

    fn first_index_in(&self, now_unix: i64, window_secs: i64) -> i64 {
        // A bucket is inside the window while any part of it is younger than `window`.
        // Saturating: a window may be as long as a stored limit says (up to i64::MAX).
        now_unix
            .saturating_sub(window_secs)
            .div_euclid(self.bucket_secs)
            .saturating_add(1)
    }

    /// Sum over the trailing `window_secs`.
    #[must_use]
    pub fn sum(&self, now_unix: i64, window_secs: i64) -> f64 {
        let first = self.first_index_in(now_unix, window_secs);
        self.buckets
            .iter()
            .filter(|(i, _)| *i >= first)
            .map(|(_, v)| v)
            .sum()
    }

    /// Seconds until the oldest value inside the window leaves it (for `retry-after`).
    #[must_use]
    pub fn seconds_until_oldest_expires(&self, now_unix: i64, window_secs: i64) -> i64 {
        let first = self.first_index_in(now_unix, window_secs);
        self.buckets
            .iter()
            .find(|(i, _)| *i >= first)
            .map_or(0, |(i, _)| {
                i.saturating_mul(self.bucket_secs)
                    .saturating_add(window_secs)
                    .saturating_sub(now_unix)
                    .max(1)
            })
    }

    /// A sum built from `(bucket index, value)` pairs in ascending index order (what the
    /// cluster's other instances used; see [`crate::store::postgres::counters`]).
    #[must_use]
    pub fn from_sorted(bucket_secs: i64, buckets: Vec<(i64, f64)>) -> Self {
        debug_assert!(buckets.windows(2).all(|w| w[0].0 < w[1].0));
        Self {
            bucket_secs: bucket_secs.max(1),
            buckets: buckets.into(),
        }
    }

    /// The buckets with index `first` or later, oldest first, as (index, sum).
    pub fn buckets_from(&self, first: i64) -> impl Iterator<Item = (i64, f64)> + '_ {
        // Usually only the newest bucket or two: walk back from the end.
        let start = self.buckets.len()
            - self
                .buckets
                .iter()
                .rev()
                .take_while(|(i, _)| *i >= first)
                .count();
        self.buckets.range(start..).copied()
    }

    /// Forget buckets older than `horizon_secs`.
    pub fn prune(&mut self, now_unix: i64, horizon_secs: i64) {
        let first = self.first_index_in(now_unix, horizon_secs);
        while self.buckets.front().is_some_and(|(i, _)| *i < first) {
            self.buckets.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::RollingSum;

    #[test]
    fn values_leave_the_window_after_it_passes() {
        let mut sum = RollingSum::new(1);
        sum.add(100, 1.0);
        sum.add(100, 1.0);
        sum.add(130, 1.0);
        assert!((sum.sum(130, 60) - 3.0).abs() < 1e-9);
        assert!((sum.sum(159, 60) - 3.0).abs() < 1e-9);
        assert!(
            (sum.sum(160, 60) - 1.0).abs() < 1e-9,
            "the two at t=100 left at t=160"
        );
        assert_eq!(sum.seconds_until_oldest_expires(130, 60), 30);
        sum.prune(200, 60);
        assert!(sum.sum(200, 1000).abs() < 1e-9);
    }

    #[test]
    fn buckets_from_an_index_and_a_sum_built_from_sorted_buckets() {
        let mut sum = RollingSum::new(60);
        sum.add(0, 1.0);
        sum.add(120, 2.0);
        sum.add(125, 3.0);
        sum.add(180, 4.0);
        assert_eq!(
            sum.buckets_from(2).collect::<Vec<_>>(),
            vec![(2, 5.0), (3, 4.0)]
        );
        assert_eq!(sum.buckets_from(i64::MIN).count(), 3);
        assert_eq!(sum.buckets_from(4).count(), 0);
        let copy = RollingSum::from_sorted(60, sum.buckets_from(i64::MIN).collect());
        assert!((copy.sum(200, 3600) - sum.sum(200, 3600)).abs() < 1e-9);
        assert_eq!(
            copy.seconds_until_oldest_expires(200, 3600),
            sum.seconds_until_oldest_expires(200, 3600)
        );
    }

    #[test]
    fn minute_buckets() {
        let mut sum = RollingSum::new(60);
        sum.add(0, 5.0);
        assert!((sum.sum(3599, 3600) - 5.0).abs() < 1e-9);
        assert!(sum.sum(3600, 3600).abs() < 1e-9);
    }
}
