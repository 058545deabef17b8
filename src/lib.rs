//! relaybox: a self-hosted LLM API relay in one binary.
//!
//! See `ARCHITECTURE.md` for the map of this crate.

pub mod app;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod convert;
pub mod crypto;
pub mod domain;
pub mod fsguard;
pub mod http;
pub mod importers;
pub mod limits;
pub mod metrics;
pub mod providers;
pub mod relay;
pub mod store;
pub mod tasks;
pub mod telemetry;
pub mod tls;

/// A `HashMap` with foldhash's per-process seeded hasher, for keys relaybox chooses itself (ids,
/// key hashes, channel and endpoint names). Every request makes about ten such lookups; with
/// std's SipHash they cost 3,400 instructions more. Maps keyed by what a client sends (session
/// ids) keep std's hasher, which resists crafted collisions.
pub type FastMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
