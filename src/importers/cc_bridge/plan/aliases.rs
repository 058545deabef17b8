//! `model-aliases.json` → one aliases op.

use serde_json::Value;

use crate::domain::ModelAliases;
use crate::importers::cc_bridge::source::{self, SrcAliases};
use crate::importers::cc_bridge::{ConfigFile, FileError};
use crate::store::{ConfigOp, ConfigState, Expect};

/// Parse `model-aliases.json`: one `PutAliases` when the lists differ. `chatModels` (relaybox's
/// own list) is kept when the file has none.
pub fn plan_aliases(bytes: &[u8], current: &ConfigState) -> Result<Vec<ConfigOp>, FileError> {
    Ok(plan_aliases_detailed(bytes, current)?.0)
}

/// The ops, and how many alias entries the file has.
pub(crate) fn plan_aliases_detailed(
    bytes: &[u8],
    current: &ConfigState,
) -> Result<(Vec<ConfigOp>, u64), FileError> {
    let (src, raw): (SrcAliases, Value) = source::parse(ConfigFile::Aliases, bytes)?;
    let found = (src.messages_models.len()
        + src.responses_models.len()
        + src.gemini_models.len()
        + src.chat_models.as_ref().map_or(0, Vec::len)) as u64;
    let desired = ModelAliases {
        messages_models: src.messages_models,
        responses_models: src.responses_models,
        gemini_models: src.gemini_models,
        chat_models: src
            .chat_models
            .unwrap_or_else(|| current.aliases.chat_models.clone()),
        version: current.aliases.version,
        extra: source::extras(
            Some(&raw),
            &source::known_keys::<SrcAliases>(),
            &["version"],
        ),
    };
    let ops = if desired == current.aliases {
        Vec::new()
    } else {
        vec![ConfigOp::PutAliases(desired, Expect::Any)]
    };
    Ok((ops, found))
}
