//! Importers: bring the data of the tools relaybox replaces into relaybox's stores.
//!
//! - [`cc_bridge`]: a cc-bridge `.config/` folder (JSON files + SQLite), also the format of the
//!   hot-reloaded JSON files in the data dir (SPEC §4).

pub mod cc_bridge;
pub mod crs;

/// The AADs that bind sealed channel secrets to their channel (one definition, in the live
/// snapshot that opens them).
pub use crate::config::aad::{api_key_aad, oauth_aad};
