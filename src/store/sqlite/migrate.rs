//! Embedded, forward-only migrations for `logs.sqlite`, tracked in `PRAGMA user_version`.
//! Never edit a shipped migration; add the next file.

use rusqlite::Connection;

use crate::store::StoreError;

/// In order; entry N takes the schema from version N to N+1.
pub const MIGRATIONS: &[(&str, &str)] = &[
    (
        "0001_request_log",
        include_str!("migrations/0001_request_log.sql"),
    ),
    ("0002_usage", include_str!("migrations/0002_usage.sql")),
    (
        "0003_drop_client_time_index",
        include_str!("migrations/0003_drop_client_time_index.sql"),
    ),
    (
        "0004_unpriced",
        include_str!("migrations/0004_unpriced.sql"),
    ),
    (
        "0005_ship_cursor",
        include_str!("migrations/0005_ship_cursor.sql"),
    ),
    (
        "0006_log_search",
        include_str!("migrations/0006_log_search.sql"),
    ),
    (
        "0007_usage_rollups",
        include_str!("migrations/0007_usage_rollups.sql"),
    ),
    (
        "0008_session_hours",
        include_str!("migrations/0008_session_hours.sql"),
    ),
];

/// The schema version this binary writes.
#[must_use]
pub fn latest() -> u64 {
    MIGRATIONS.len() as u64
}

pub fn user_version(conn: &Connection) -> Result<u64, StoreError> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    Ok(u64::try_from(version).unwrap_or(0))
}

/// Bring the database to the latest schema; refuse one newer than this binary.
pub fn run(conn: &mut Connection) -> Result<(), StoreError> {
    run_to(conn, latest())
}

/// Apply migrations up to `target` (tests use this to build an older data dir).
pub fn run_to(conn: &mut Connection, target: u64) -> Result<(), StoreError> {
    let found = user_version(conn)?;
    if found > latest() {
        return Err(StoreError::SchemaTooNew {
            store: "logs.sqlite",
            found,
            supported: latest(),
        });
    }
    for (index, (name, sql)) in MIGRATIONS.iter().enumerate() {
        let version = index as u64 + 1;
        if version <= found || version > target {
            continue;
        }
        let tx = conn.transaction()?;
        tx.execute_batch(sql)
            .map_err(|e| StoreError::Backend(format!("logs.sqlite migration {name}: {e}")))?;
        if *name == "0007_usage_rollups" {
            // The new roll-ups start with the history already logged, in the same transaction.
            let started = std::time::Instant::now();
            let rows = super::rollup::backfill(&tx).map_err(|e| {
                StoreError::Backend(format!("logs.sqlite migration {name} (back-fill): {e}"))
            })?;
            tracing::info!(
                rows,
                elapsed_ms = started.elapsed().as_millis(),
                "usage roll-ups back-filled"
            );
        }
        tx.pragma_update(
            None,
            "user_version",
            i64::try_from(version).unwrap_or(i64::MAX),
        )?;
        tx.commit()?;
        tracing::info!(migration = name, "logs.sqlite upgraded");
    }
    Ok(())
}
