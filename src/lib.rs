//! relaybox: a self-hosted LLM API relay in one binary.
//!
//! See `ARCHITECTURE.md` for the map of this crate.

pub mod app;
pub mod cli;
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
pub mod telemetry;
