//! Rebuild the limiter's counters from `logs.sqlite` (at start, and when limits change).

use std::collections::HashMap;

use time::OffsetDateTime;

use super::{KeySeed, Limiter, key_horizon};
use crate::store::ConfigState;
use crate::store::StoreError;
use crate::store::sqlite::LogDb;

/// Seed every key and channel whose counters are not yet seeded for their current limits.
/// Returns how many were seeded.
pub fn seed_changed(
    limiter: &Limiter,
    state: &ConfigState,
    logs: &LogDb,
) -> Result<usize, StoreError> {
    let now = limiter.now();
    let mut seeded = 0;
    let keys: Vec<_> = state
        .keys
        .values()
        .filter(|k| limiter.key_needs_seed(k))
        .collect();
    if !keys.is_empty() {
        let totals = logs.cost_totals(now.date())?;
        // Each key's longest window: where its rows start to count.
        let windows: HashMap<&str, OffsetDateTime> = keys
            .iter()
            .filter_map(|key| {
                let horizon = key_horizon(&key.limits);
                // A window older than the calendar (stored before limits were checked)
                // counts from its start rather than panicking.
                let since = now
                    .checked_sub(time::Duration::seconds(horizon))
                    .unwrap_or(OffsetDateTime::UNIX_EPOCH);
                (horizon > 0).then_some((key.id.as_str(), since))
            })
            .collect();
        let mut recent_by_key = logs.key_requests_since(&windows)?;
        for key in keys {
            let recent = recent_by_key.remove(&key.id).unwrap_or_default();
            let (cost_total, cost_today) = totals.get(&key.id).copied().unwrap_or_default();
            limiter.seed_key(
                key,
                &KeySeed {
                    recent,
                    cost_today,
                    cost_total,
                },
            );
            seeded += 1;
        }
    }
    for channel in state
        .channels
        .values()
        .filter(|c| limiter.channel_needs_seed(c))
    {
        let (baseline, floor) = match logs.channel_quota(&channel.id)? {
            Some((used, reset_at)) => {
                let floor = OffsetDateTime::parse(
                    &reset_at,
                    &time::format_description::well_known::Rfc3339,
                )
                .ok();
                (if floor.is_some() { used } else { 0.0 }, floor)
            }
            None => (0.0, None),
        };
        let rows = match limiter.channel_seed_since(channel, floor) {
            Some(since) => logs.channel_requests_since(&channel.id, since)?,
            None => Vec::new(),
        };
        limiter.seed_channel(channel, baseline, floor, &rows);
        seeded += 1;
    }
    Ok(seeded)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail loudly")]

    use std::sync::Arc;

    use super::*;
    use crate::domain::ClientKey;
    use crate::domain::key::WindowLimit;
    use crate::store::sqlite::OpenOptions;

    /// A key stored with a window longer than the calendar (before limits were checked) is
    /// seeded from the start of time instead of panicking at every start.
    #[test]
    fn a_window_beyond_the_calendar_is_seeded_without_panicking() {
        let mut key: ClientKey = serde_json::from_value(serde_json::json!({
            "id": "k", "name": "k", "hash": "h", "displayPrefix": "rb_",
            "createdAt": "2026-01-01T00:00:00Z", "updatedAt": "2026-01-01T00:00:00Z",
        }))
        .unwrap();
        key.limits.requests_per_window = Some(WindowLimit {
            limit: 10.0,
            window_seconds: u64::MAX,
        });
        let mut state = ConfigState::default();
        state.keys.insert("k".into(), key);
        let logs = LogDb::open(std::path::Path::new(":memory:"), OpenOptions::default()).unwrap();
        let limiter = Limiter::new(Arc::new(crate::limits::SystemClock));
        assert_eq!(seed_changed(&limiter, &state, &logs).unwrap(), 1);
    }
}
