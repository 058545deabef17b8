//! From parsed cc-bridge files to the [`ConfigOp`]s that make the store match them.
//!
//! Every plan compares with the current state and emits ops only for what differs, so planning
//! twice in a row yields no ops the second time. Sealed secrets are compared by their opened
//! plaintexts (sealing is randomised) and re-used when equal, so an unchanged channel compares
//! equal field by field.
//!
//! One file per source: `parsed_config` (what the others start from), `channels` and
//! `settings` (`config.json`), `pricing`, `aliases`, `quota` and `keys` (the database's
//! `api_keys`).

mod aliases;
mod channels;
mod keys;
mod parsed_config;
mod pricing;
mod quota;
mod settings;

pub use aliases::plan_aliases;
pub(crate) use aliases::plan_aliases_detailed;
pub use channels::plan_config;
pub(crate) use channels::plan_config_detailed;
pub(crate) use keys::plan_keys;
pub use parsed_config::derived_channel_id;
pub(crate) use parsed_config::{ParsedConfig, parse_config};
pub use pricing::plan_pricing;
pub(crate) use pricing::plan_pricing_detailed;
pub use quota::{QuotaEntry, QuotaPlan, plan_quota_usage, plan_quota_usage_detailed};
