//! Plain data types and rules of relaybox: no IO, no HTTP, no storage engine.
//!
//! Field names follow cc-bridge (camelCase) wherever it has them, so its files import unchanged
//! and the admin API speaks the same names.

pub mod channel;
pub mod key;
pub mod pricing;
pub mod settings;

pub use channel::{Channel, ChannelStatus, Pool};
pub use key::{ClientKey, KeyStatus};
pub use pricing::{ModelAliases, ModelPrice, PricingTable};
pub use settings::Settings;

use time::OffsetDateTime;

/// Current wall-clock time in UTC; one place so tests and code agree on the clock source.
#[must_use]
pub fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

/// RFC 3339 UTC with milliseconds (`2026-11-21T06:30:00.123Z`): fixed width, so text order is
/// time order; the form of every timestamp in `logs.sqlite`.
#[must_use]
pub fn format_time(at: OffsetDateTime) -> String {
    const FORMAT: &[time::format_description::BorrowedFormatItem<'static>] = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    at.to_offset(time::UtcOffset::UTC)
        .format(FORMAT)
        .unwrap_or_default()
}

/// A new time-ordered identifier (UUIDv7, simple hex form).
#[must_use]
pub fn new_id() -> String {
    uuid::Uuid::now_v7().simple().to_string()
}

/// A short random channel id (8 hex characters, the cc-bridge form).
#[must_use]
pub fn new_channel_id() -> String {
    // The tail of a UUIDv7 is random; its head is the timestamp and would repeat.
    let id = new_id();
    id[id.len() - 8..].to_string()
}
