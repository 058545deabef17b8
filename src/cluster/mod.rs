//! Cluster mode: several relaybox instances share one configuration, their request logs,
//! budgets and singleton jobs through PostgreSQL, and each keeps serving from its local copy
//! when PostgreSQL is gone.
//!
//! Arrows: `app → cluster → {config, limits, store}`. The SQL lives in `store::postgres`;
//! this module holds the loops that use it (each a supervised task started by `app`).

pub mod shipper;
