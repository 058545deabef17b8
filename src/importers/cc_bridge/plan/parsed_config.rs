//! `config.json` parsed and validated, with the id each channel will have: what the channel,
//! quota and key plans all start from.

use std::collections::{BTreeMap, HashMap};

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::domain::Pool;
use crate::importers::cc_bridge::source::{self, SrcChannel, SrcConfig};
use crate::importers::cc_bridge::validate;
use crate::importers::cc_bridge::{ConfigFile, FileError};

/// Channel fields relaybox sets itself; a source field of that name would collide when stored.
const RESERVED_CHANNEL_KEYS: &[&str] = &["pool", "position", "origin", "version"];
/// The id of a channel that has none in `config.json`: the first 8 hex characters of
/// `sha256("{pool}/{name}")` (name trimmed), so re-imports find the same channel.
#[must_use]
pub fn derived_channel_id(pool: Pool, name: &str) -> String {
    let digest = hex::encode(Sha256::digest(format!("{pool}/{}", name.trim()).as_bytes()));
    digest[..8].to_string()
}

fn channel_id(pool: Pool, channel: &SrcChannel) -> String {
    let id = channel.id.trim();
    if id.is_empty() {
        derived_channel_id(pool, &channel.name)
    } else {
        id.to_string()
    }
}

/// One channel of the file, with where it sits and the id it will have.
pub(crate) struct SourceChannel {
    pub pool: Pool,
    /// The JSON key of its pool (`upstream`, `responsesUpstream`, …), for error paths.
    pub key: &'static str,
    pub index: usize,
    pub id: String,
    pub src: SrcChannel,
    pub extra: Map<String, Value>,
}

/// A parsed and validated `config.json`.
pub(crate) struct ParsedConfig {
    pub src: SrcConfig,
    pub raw: Value,
    pub channels: Vec<SourceChannel>,
}

impl ParsedConfig {
    /// Channel ids per pool, in file order (index → id), for `quota_usage.json` and legacy
    /// index references.
    pub(crate) fn ids_by_pool(&self) -> BTreeMap<Pool, Vec<String>> {
        let mut out: BTreeMap<Pool, Vec<String>> =
            Pool::ALL.iter().map(|pool| (*pool, Vec::new())).collect();
        for channel in &self.channels {
            out.entry(channel.pool)
                .or_default()
                .push(channel.id.clone());
        }
        out
    }

    /// `(pool, lowercase name)` → id, for request-log rows that only carry a channel name.
    pub(crate) fn ids_by_name(&self) -> HashMap<(Pool, String), String> {
        self.channels
            .iter()
            .map(|c| ((c.pool, c.src.name.trim().to_lowercase()), c.id.clone()))
            .collect()
    }
}

/// Parse and validate `config.json`.
pub(crate) fn parse_config(bytes: &[u8]) -> Result<ParsedConfig, FileError> {
    let (src, raw): (SrcConfig, Value) = source::parse(ConfigFile::Config, bytes)?;
    let ids: BTreeMap<Pool, Vec<String>> = validate::pools(&src)
        .into_iter()
        .map(|(pool, _, channels)| (pool, channels.iter().map(|c| channel_id(pool, c)).collect()))
        .collect();
    validate::config(&src, &ids)?;
    let known = source::known_keys::<SrcChannel>();
    let mut channels = Vec::new();
    for (pool, key, list) in validate::pools(&src) {
        for (index, channel) in list.iter().enumerate() {
            let raw_channel = raw.get(key).and_then(|pool| pool.get(index));
            channels.push(SourceChannel {
                pool,
                key,
                index,
                id: channel_id(pool, channel),
                src: channel.clone(),
                extra: source::extras(raw_channel, &known, RESERVED_CHANNEL_KEYS),
            });
        }
    }
    Ok(ParsedConfig { src, raw, channels })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_ids_are_stable_8_hex() {
        let id = derived_channel_id(Pool::Messages, "main");
        assert_eq!(id.len(), 8);
        assert_eq!(id, derived_channel_id(Pool::Messages, " main "));
        assert_ne!(id, derived_channel_id(Pool::Chat, "main"));
    }
}
