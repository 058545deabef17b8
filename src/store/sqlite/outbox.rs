//! `logs.sqlite` as the outbox of request-log shipping (cluster mode): rows are written here
//! first, as always, and a shipper copies them to PostgreSQL in `seq` order.
//!
//! `seq` is the table's `INTEGER PRIMARY KEY`, assigned by the one write connection in commit
//! order, so `seq > cursor` is exactly "not shipped yet": a row committed later always gets a
//! higher `seq`. The cursor (`ship_cursor`, one row per sink) says every row up to it is
//! committed in the sink; it only moves forward, and only after the sink's commit — a crash in
//! between resends a batch, which the sink absorbs by row id.
//!
//! SQLite gives a new row `MAX(seq) + 1`, so deleting the newest rows would hand their numbers
//! out again, below the cursor, and those rows would never ship. Whatever deletes rows must keep
//! the row at the cursor; [`LogSink::enforce_cap`] deletes only rows below it.
//!
//! Reads go through the [`LogReader`] (never waiting for the log writer); the cursor and the
//! pruning take the write connection for one short transaction each.

use rusqlite::{OptionalExtension as _, params};
use time::OffsetDateTime;

use super::reader::row_to_log;
use super::{LOG_COLUMNS, LogReader, LogSink, RequestLog};
use crate::store::StoreError;

/// The sink name of cluster mode's PostgreSQL in `ship_cursor`.
pub const POSTGRES_SINK: &str = "postgres";

/// Rows deleted per transaction when pruning, so the log writer waits for one short step at
/// most.
const PRUNE_STEP_ROWS: i64 = 5_000;

/// One request-log row with its place in the outbox.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxRow {
    pub seq: i64,
    pub log: RequestLog,
}

/// What is left to ship, read in one snapshot.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Backlog {
    /// Every row up to this `seq` is shipped (0: none yet).
    pub cursor: i64,
    /// The highest `seq` in the table (0: empty).
    pub last_seq: i64,
    /// Rows after the cursor: `last_seq - cursor` (rows are deleted only below the cursor, so
    /// there are no gaps above it).
    pub rows: u64,
    /// `initial_time` of the first row after the cursor, as stored (RFC 3339).
    pub oldest_initial_time: Option<String>,
}

impl Backlog {
    /// `initial_time` of the oldest unshipped row, when there is one and it parses.
    #[must_use]
    pub fn oldest_unshipped_at(&self) -> Option<OffsetDateTime> {
        let text = self.oldest_initial_time.as_deref()?;
        OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()
    }
}

/// How big `logs.sqlite` may grow before shipped rows are pruned, oldest first. Unshipped rows
/// are never pruned: past the cap with nothing shipped left to delete, the file grows and
/// [`CapReport::kept_over_cap`] says by how many rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogCap {
    /// Bytes the database's pages hold (free pages excluded). Default 1 GiB.
    pub max_bytes: Option<u64>,
    /// Rows in `request_log` (counted as the span of `seq`). Default none.
    pub max_rows: Option<u64>,
}

impl LogCap {
    pub const DEFAULT_MAX_BYTES: u64 = 1 << 30;
}

impl Default for LogCap {
    fn default() -> Self {
        Self {
            max_bytes: Some(Self::DEFAULT_MAX_BYTES),
            max_rows: None,
        }
    }
}

/// What one [`LogSink::enforce_cap`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CapReport {
    /// Shipped rows deleted.
    pub pruned: u64,
    /// Rows still over the cap and kept: the unshipped ones and the row at the cursor (which
    /// keeps the numbering; see the module docs). 0 when the cap is met.
    pub kept_over_cap: u64,
}

impl LogReader {
    /// The sink's cursor: every row up to this `seq` is shipped (0 when nothing is).
    pub fn ship_cursor(&self, sink: &str) -> Result<i64, StoreError> {
        self.read(|conn| read_cursor(conn, sink))
    }

    /// Up to `limit` rows with `seq > after`, in `seq` order.
    pub fn rows_after(&self, after: i64, limit: usize) -> Result<Vec<OutboxRow>, StoreError> {
        static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
            format!(
                "SELECT {LOG_COLUMNS}, seq FROM request_log WHERE seq > ?1 ORDER BY seq LIMIT ?2"
            )
        });
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(&SQL)?;
            let rows = stmt.query_map(params![after, limit], |row| {
                Ok(OutboxRow {
                    log: row_to_log(row)?,
                    seq: row.get(super::LOG_COLUMN_COUNT)?,
                })
            })?;
            rows.collect()
        })
    }

    /// The sink's backlog. Cheap at any size: two index lookups, no count.
    pub fn backlog(&self, sink: &str) -> Result<Backlog, StoreError> {
        self.read(|conn| {
            let cursor = read_cursor(conn, sink)?;
            let last_seq: i64 =
                conn.query_row("SELECT COALESCE(MAX(seq), 0) FROM request_log", [], |row| {
                    row.get(0)
                })?;
            let oldest_initial_time = conn
                .prepare_cached(
                    "SELECT initial_time FROM request_log WHERE seq > ?1 ORDER BY seq LIMIT 1",
                )?
                .query_row([cursor], |row| row.get(0))
                .optional()?;
            Ok(Backlog {
                cursor,
                last_seq,
                rows: u64::try_from(last_seq - cursor).unwrap_or(0),
                oldest_initial_time,
            })
        })
    }
}

impl LogSink {
    /// Move the sink's cursor to `seq`, after the sink committed every row up to it. A lower
    /// value than the stored one is refused (the cursor only moves forward; the same value is a
    /// no-op), and so is one past the last row (rows written later would get numbers below it
    /// and never ship).
    pub fn advance_ship_cursor(&self, sink: &str, seq: i64) -> Result<(), StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let current = read_cursor(&tx, sink)?;
        if seq < current {
            return Err(StoreError::Conflict(format!(
                "the {sink} shipping cursor is at {current}; it does not move back to {seq}"
            )));
        }
        let last_seq: i64 =
            tx.query_row("SELECT COALESCE(MAX(seq), 0) FROM request_log", [], |row| {
                row.get(0)
            })?;
        if seq > last_seq {
            return Err(StoreError::Conflict(format!(
                "the {sink} shipping cursor cannot move to {seq}: the last request-log row is {last_seq}"
            )));
        }
        tx.execute(
            "INSERT INTO ship_cursor (sink, seq) VALUES (?1, ?2)
             ON CONFLICT (sink) DO UPDATE SET seq = excluded.seq",
            params![sink, seq],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Bring `logs.sqlite` under `cap` by deleting rows the sink has shipped, oldest first, a
    /// step at a time (the log writer gets the connection between steps). Rows at or after the
    /// cursor are kept whatever the cap; the report says how many rows over it they are.
    pub fn enforce_cap(&self, sink: &str, cap: &LogCap) -> Result<CapReport, StoreError> {
        let mut report = CapReport::default();
        loop {
            let conn = self.lock();
            let cursor = read_cursor(&conn, sink)?;
            let (first, last, used_bytes): (i64, i64, i64) = conn.query_row(
                "SELECT COALESCE(MIN(seq), 0), COALESCE(MAX(seq), 0),
                        (SELECT (page_count - freelist_count) * page_size
                         FROM pragma_page_count(), pragma_freelist_count(), pragma_page_size())
                 FROM request_log",
                [],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
            )?;
            let rows = if last >= first && last > 0 {
                u64::try_from(last - first + 1).unwrap_or(0)
            } else {
                0
            };
            let excess = rows_over_cap(cap, rows, u64::try_from(used_bytes).unwrap_or(0));
            if excess == 0 {
                return Ok(report);
            }
            // Shipped rows are those below the cursor; the row at the cursor stays (see the
            // module docs).
            let shipped = u64::try_from(cursor - first).unwrap_or(0);
            if shipped == 0 {
                report.kept_over_cap = excess;
                return Ok(report);
            }
            let step = excess.min(shipped).min(PRUNE_STEP_ROWS as u64);
            let below = (first + i64::try_from(step).unwrap_or(PRUNE_STEP_ROWS)).min(cursor);
            let deleted = conn.execute("DELETE FROM request_log WHERE seq < ?1", [below])?;
            report.pruned += deleted as u64;
            // The guard drops here: the writer may commit before the next step.
        }
    }
}

/// How many of the oldest rows must go to meet `cap`. Bytes are turned into rows at the
/// database's average row size (the estimate is checked again after each step).
fn rows_over_cap(cap: &LogCap, rows: u64, used_bytes: u64) -> u64 {
    let by_rows = cap.max_rows.map_or(0, |max| rows.saturating_sub(max));
    let by_bytes = match cap.max_bytes {
        Some(max) if used_bytes > max && rows > 0 => {
            let over = u128::from(used_bytes - max) * u128::from(rows);
            u64::try_from(over.div_ceil(u128::from(used_bytes))).unwrap_or(rows)
        }
        _ => 0,
    };
    by_rows.max(by_bytes).min(rows)
}

fn read_cursor(conn: &rusqlite::Connection, sink: &str) -> rusqlite::Result<i64> {
    Ok(conn
        .prepare_cached("SELECT seq FROM ship_cursor WHERE sink = ?1")?
        .query_row([sink], |row| row.get(0))
        .optional()?
        .unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_over_the_cap_become_rows_at_the_average_row_size() {
        let cap = LogCap {
            max_bytes: Some(1_000),
            max_rows: None,
        };
        assert_eq!(rows_over_cap(&cap, 100, 1_000), 0);
        // 2000 bytes for 100 rows: 20 bytes a row, 1000 bytes over → 50 rows.
        assert_eq!(rows_over_cap(&cap, 100, 2_000), 50);
        // Rounded up: 1 byte over is one row.
        assert_eq!(rows_over_cap(&cap, 100, 1_001), 1);
        let both = LogCap {
            max_bytes: Some(1_000),
            max_rows: Some(30),
        };
        assert_eq!(
            rows_over_cap(&both, 100, 2_000),
            70,
            "the tighter limit wins"
        );
        assert_eq!(rows_over_cap(&LogCap::default(), 0, 0), 0);
    }
}
