//! Usage figures of completed UTC days kept in memory, per question shape (the daily table's
//! `SELECT` with its filter values) and day, so a dashboard refresh over 30 or 90 days sums
//! only the days that changed (today, and any day an import or a late row wrote to).
//!
//! An entry holds the day's `usage_day_generation` counter as read in the snapshot it was
//! summed from; the writer raises that counter in the transaction that adds to the day, so a
//! reader that sees another counter in its own snapshot recomputes the day. No clock or commit
//! hook is involved, and every write path (relay, imports, back-fill) is covered.

use std::sync::{Arc, Mutex, PoisonError};

use super::rollup::{Figures, UsageGroup};

/// The most groups kept over all entries (a group with its histograms is about 700 bytes, so
/// ~15 MB). When full, everything is dropped: the next refresh fills it again, and a bounded
/// cache with no bookkeeping per entry is enough for a few dashboard questions.
const MAX_CACHED_GROUPS: usize = 20_000;

/// One day's groups under one question shape: (group key, group, figures).
pub(crate) struct DayFigures {
    pub(crate) generation: i64,
    pub(crate) groups: Vec<(String, UsageGroup, Figures)>,
}

#[derive(Default)]
struct Entries {
    /// Shape → day → figures.
    shapes: crate::FastMap<String, crate::FastMap<String, Arc<DayFigures>>>,
    groups: usize,
}

#[derive(Default)]
pub(crate) struct UsageCache {
    entries: Mutex<Entries>,
}

impl std::fmt::Debug for UsageCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UsageCache").finish_non_exhaustive()
    }
}

impl UsageCache {
    /// The day's figures if they were summed at `generation`.
    pub(crate) fn get(&self, shape: &str, day: &str, generation: i64) -> Option<Arc<DayFigures>> {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        let found = entries.shapes.get(shape)?.get(day)?;
        (found.generation == generation).then(|| Arc::clone(found))
    }

    /// Keep a day's figures (unless too many to keep) and hand them back.
    pub(crate) fn put(&self, shape: &str, day: &str, figures: DayFigures) -> Arc<DayFigures> {
        let figures = Arc::new(figures);
        if figures.groups.len() > MAX_CACHED_GROUPS {
            return figures;
        }
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.groups + figures.groups.len() > MAX_CACHED_GROUPS {
            *entries = Entries::default();
        }
        entries.groups += figures.groups.len();
        let replaced = entries
            .shapes
            .entry(shape.to_string())
            .or_default()
            .insert(day.to_string(), Arc::clone(&figures));
        if let Some(old) = replaced {
            entries.groups -= old.groups.len();
        }
        figures
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day_of(groups: usize, generation: i64) -> DayFigures {
        DayFigures {
            generation,
            groups: (0..groups)
                .map(|i| (i.to_string(), UsageGroup::default(), Figures::default()))
                .collect(),
        }
    }

    #[test]
    fn entries_answer_only_their_generation_and_stay_bounded() {
        let cache = UsageCache::default();
        let _ = cache.put("q", "2026-11-20", day_of(3, 4));
        assert!(cache.get("q", "2026-11-20", 4).is_some());
        assert!(cache.get("q", "2026-11-20", 5).is_none());
        assert!(cache.get("other", "2026-11-20", 4).is_none());
        let _ = cache.put("q", "2026-11-20", day_of(2, 5));
        assert_eq!(cache.get("q", "2026-11-20", 5).unwrap().groups.len(), 2);
        let _ = cache.put("q", "2026-11-21", day_of(MAX_CACHED_GROUPS - 1, 1));
        assert!(
            cache.get("q", "2026-11-20", 5).is_none(),
            "dropped when full"
        );
        assert!(cache.get("q", "2026-11-21", 1).is_some());
        let big = cache.put("q", "2026-11-22", day_of(MAX_CACHED_GROUPS + 1, 1));
        assert_eq!(big.groups.len(), MAX_CACHED_GROUPS + 1, "handed back whole");
        assert!(cache.get("q", "2026-11-22", 1).is_none(), "too big to keep");
    }
}
