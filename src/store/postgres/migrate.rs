//! Embedded, forward-only migrations for the cluster's PostgreSQL schema, tracked in
//! `relaybox_schema`. Never edit a shipped migration; add the next file. A later migration
//! must keep what an older relaybox reads readable (add columns and tables; never change the
//! meaning of one) — an older binary refuses a newer schema only at start.

use tokio_postgres::Client;

use super::pg_error;
use crate::store::StoreError;

/// In order; entry N takes the schema from version N to N+1.
pub const MIGRATIONS: &[(&str, &str)] = &[
    ("0001_config", include_str!("migrations/0001_config.sql")),
    (
        "0002_request_log",
        include_str!("migrations/0002_request_log.sql"),
    ),
    (
        "0003_instances",
        include_str!("migrations/0003_instances.sql"),
    ),
    (
        "0004_usage_counters",
        include_str!("migrations/0004_usage_counters.sql"),
    ),
    (
        "0005_import_history",
        include_str!("migrations/0005_import_history.sql"),
    ),
];

/// Serialises migrations of instances starting together (a transaction-scoped lock, released
/// at commit: nothing is held across a connection's life).
const MIGRATION_LOCK: i64 = 0x7265_6c61_7962_6f78; // "relaybox"

/// The schema version this binary writes.
#[must_use]
pub fn latest() -> u64 {
    MIGRATIONS.len() as u64
}

/// Bring the database to the latest schema in one transaction; refuse one newer than this
/// binary. Returns the version found before.
pub async fn run(client: &mut Client) -> Result<u64, StoreError> {
    let tx = client.transaction().await.map_err(pg_error)?;
    // `IF NOT EXISTS` on an existing table is a NOTICE every start; nobody needs to read it.
    tx.batch_execute("SET LOCAL client_min_messages = warning")
        .await
        .map_err(pg_error)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(pg_error)?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS relaybox_schema (
             singleton  boolean     PRIMARY KEY DEFAULT true CHECK (singleton),
             version    bigint      NOT NULL,
             updated_at timestamptz NOT NULL DEFAULT now()
         )",
    )
    .await
    .map_err(pg_error)?;
    let found = tx
        .query_opt("SELECT version FROM relaybox_schema", &[])
        .await
        .map_err(pg_error)?
        .map_or(0, |row| row.get::<_, i64>(0));
    let found = u64::try_from(found).unwrap_or(0);
    if found > latest() {
        return Err(StoreError::ClusterSchemaTooNew {
            found,
            supported: latest(),
        });
    }
    for (index, (name, sql)) in MIGRATIONS.iter().enumerate() {
        let version = index as u64 + 1;
        if version <= found {
            continue;
        }
        tx.batch_execute(sql)
            .await
            .map_err(|e| StoreError::Backend(format!("PostgreSQL migration {name}: {e}")))?;
        tracing::info!(migration = name, "PostgreSQL schema upgraded");
    }
    if found < latest() {
        tx.execute(
            "INSERT INTO relaybox_schema (version) VALUES ($1)
             ON CONFLICT (singleton) DO UPDATE SET version = excluded.version, updated_at = now()",
            &[&i64::try_from(latest()).unwrap_or(i64::MAX)],
        )
        .await
        .map_err(pg_error)?;
    }
    tx.commit().await.map_err(pg_error)?;
    Ok(found)
}
