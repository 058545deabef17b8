//! relaybox: a self-hosted LLM API relay in one binary.
//!
//! See `ARCHITECTURE.md` for the map of this crate.

pub mod crypto;
pub mod domain;
pub mod store;
