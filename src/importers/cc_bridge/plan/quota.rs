//! `quota_usage.json` → quota counters per channel id (its keys are indexes into the pools
//! of `config.json`).

use serde_json::Value;

use super::parsed_config::parse_config;
use crate::domain::Pool;
use crate::importers::cc_bridge::source::{self, SrcQuotaUsage};
use crate::importers::cc_bridge::{ConfigFile, FileError};

/// One channel's quota counter from `quota_usage.json`.
#[derive(Debug, Clone, PartialEq)]
pub struct QuotaEntry {
    pub channel_id: String,
    pub used: f64,
    pub last_reset_at: String,
}

/// The mapped counters, and the entries that could not be mapped (`"messages.7"`, reason).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QuotaPlan {
    pub entries: Vec<QuotaEntry>,
    pub skipped: Vec<(String, String)>,
}

/// `quota_usage.json` keys are array indexes into the pools of `config.json` (the same
/// snapshot): map them to channel ids. Entries that point past the end of a pool are dropped;
/// see [`plan_quota_usage_detailed`] for the list.
pub fn plan_quota_usage(bytes: &[u8], config_json: &[u8]) -> Result<Vec<QuotaEntry>, FileError> {
    Ok(plan_quota_usage_detailed(bytes, config_json)?.entries)
}

/// [`plan_quota_usage`] with the entries that could not be mapped.
pub fn plan_quota_usage_detailed(bytes: &[u8], config_json: &[u8]) -> Result<QuotaPlan, FileError> {
    let parsed = parse_config(config_json)?;
    let (src, _raw): (SrcQuotaUsage, Value) = source::parse(ConfigFile::QuotaUsage, bytes)?;
    let ids = parsed.ids_by_pool();
    let mut plan = QuotaPlan::default();
    for (pool, section) in [
        (Pool::Messages, &src.messages),
        (Pool::Responses, &src.responses),
        (Pool::Gemini, &src.gemini),
        (Pool::Chat, &src.chat),
    ] {
        let pool_ids = ids.get(&pool).map_or(&[][..], Vec::as_slice);
        for (key, usage) in section {
            let item = format!("{pool}.{key}");
            if !(usage.used.is_finite() && usage.used >= 0.0) {
                return Err(FileError::semantic(
                    ConfigFile::QuotaUsage,
                    Some(format!("{pool}.{key}.used")),
                    format!("{} is negative; usage is 0 or more", usage.used),
                ));
            }
            let Ok(index) = key.trim().parse::<usize>() else {
                plan.skipped
                    .push((item, format!("'{key}' is not a channel index")));
                continue;
            };
            match pool_ids.get(index) {
                Some(id) => plan.entries.push(QuotaEntry {
                    channel_id: id.clone(),
                    used: usage.used,
                    last_reset_at: usage.last_reset_at.clone(),
                }),
                None => plan.skipped.push((
                    item,
                    format!("config.json has {} channel(s) in the {pool} pool, so index {index} points at none", pool_ids.len()),
                )),
            }
        }
    }
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::importers::cc_bridge::derived_channel_id;

    #[test]
    fn quota_indexes_map_to_ids_and_strays_are_listed() {
        let config = br#"{"upstream": [
            {"id": "m0", "name": "a", "serviceType": "claude", "baseUrl": "https://a.example"},
            {"id": "m1", "name": "b", "serviceType": "claude", "baseUrl": "https://b.example"}],
            "responsesUpstream": [{"name": "r", "serviceType": "responses", "baseUrl": "https://r.example"}]}"#;
        let usage = br#"{"messages": {"1": {"used": 3, "lastResetAt": "2026-07-01T00:00:00Z"}, "5": {"used": 1}},
            "responses": {"0": {"used": 2.5, "lastResetAt": "2026-07-02T00:00:00Z"}}, "gemini": null}"#;
        let plan = plan_quota_usage_detailed(usage, config).unwrap();
        assert_eq!(plan.entries.len(), 2);
        assert_eq!(plan.entries[0].channel_id, "m1");
        assert_eq!(
            plan.entries[1].channel_id,
            derived_channel_id(Pool::Responses, "r")
        );
        assert_eq!(plan.skipped.len(), 1);
        assert_eq!(plan.skipped[0].0, "messages.5");
    }
}
