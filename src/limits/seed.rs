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
                (horizon > 0).then(|| (key.id.as_str(), now - time::Duration::seconds(horizon)))
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
