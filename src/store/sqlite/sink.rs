//! The write side of `logs.sqlite`: the one read-write connection, which the background
//! [`writer`](super::writer) and the importers write through.

use std::sync::{Arc, Mutex, MutexGuard};

use rusqlite::{Connection, OptionalExtension, params};

use super::{
    ADD_TO_USAGE_DAILY, RequestLog, UsageContribution, UsageFigures, insert_logs_tx,
    insert_logs_tx_pacing,
};
use crate::store::StoreError;

/// The read-write connection to `logs.sqlite`, shared behind a mutex: the writer holds it for
/// one group-commit transaction at a time, imports take it in between. Reads go through a
/// [`LogReader`](super::LogReader) instead, which does not wait for this mutex (unless the
/// database is opened with exclusive locking, see there).
#[derive(Clone)]
pub struct LogSink {
    conn: Arc<Mutex<Connection>>,
}

impl std::fmt::Debug for LogSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LogSink")
    }
}

impl LogSink {
    pub(super) fn new(conn: Arc<Mutex<Connection>>) -> Self {
        Self { conn }
    }

    /// The write connection, for one short unit of work. Never hold it across an `.await`.
    pub fn lock(&self) -> MutexGuard<'_, Connection> {
        lock(&self.conn)
    }

    /// Insert rows and update the usage roll-ups in one transaction. Rows whose `id` already
    /// exists are skipped (imports are idempotent); returns how many were new.
    pub fn insert_logs(&self, rows: &[RequestLog]) -> Result<usize, StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let inserted = insert_logs_tx(&tx, rows)?;
        tx.commit()?;
        Ok(inserted)
    }

    /// [`LogSink::insert_logs`], calling `pace` before each slice of rows (the writer steps
    /// aside there).
    pub(crate) fn insert_logs_pacing(
        &self,
        rows: &[RequestLog],
        pace: impl FnMut(usize),
    ) -> Result<usize, StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let inserted = insert_logs_tx_pacing(&tx, rows, pace)?;
        tx.commit()?;
        Ok(inserted)
    }

    /// Record that `item` of `source` with content `sha256` was applied (or rejected).
    pub fn record_import(
        &self,
        source: &str,
        item: &str,
        sha256: &str,
        outcome: &str,
        detail: &str,
    ) -> Result<(), StoreError> {
        let conn = self.lock();
        conn.execute(
            "INSERT INTO import_history (source, item, sha256, applied_at, outcome, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![source, item, sha256, crate::domain::now().to_string(), outcome, detail],
        )?;
        Ok(())
    }

    /// Record several applied items of `source` (`(item, sha256, detail)`) in one transaction.
    pub fn record_imports(
        &self,
        source: &str,
        items: &[(String, String, String)],
    ) -> Result<(), StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        {
            let now = crate::domain::now().to_string();
            let mut insert = tx.prepare_cached(
                "INSERT INTO import_history (source, item, sha256, applied_at, outcome, detail) VALUES (?1, ?2, ?3, ?4, 'applied', ?5)",
            )?;
            for (item, sha, detail) in items {
                insert.execute(params![source, item, sha, now, detail])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Set a channel's quota counter (imports; the relay keeps its own in memory).
    pub fn put_channel_quota(
        &self,
        channel_id: &str,
        used: f64,
        last_reset_at: &str,
    ) -> Result<(), StoreError> {
        let conn = self.lock();
        conn.execute(
            "INSERT INTO channel_quota_usage (channel_id, used, last_reset_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (channel_id) DO UPDATE SET used = excluded.used, last_reset_at = excluded.last_reset_at",
            params![channel_id, used, last_reset_at],
        )?;
        Ok(())
    }

    pub fn put_user_alias(
        &self,
        user_id: &str,
        alias: &str,
        created_at: &str,
        updated_at: &str,
    ) -> Result<bool, StoreError> {
        let conn = self.lock();
        let changed = conn.execute(
            "INSERT INTO user_aliases (user_id, alias, created_at, updated_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (user_id) DO UPDATE SET alias = excluded.alias, updated_at = excluded.updated_at
             WHERE user_aliases.alias != excluded.alias",
            params![user_id, alias, created_at, updated_at],
        )?;
        Ok(changed > 0)
    }

    /// Make `usage_daily` hold each item's new contribution instead of its previous one (which
    /// may have been counted on another day) and record it in `import_history`, all in one
    /// transaction. Only the difference is applied, so traffic relaybox counted in the same rows
    /// stays. Items equal to their previous contribution are skipped; returns how many changed.
    pub fn apply_usage_contributions(
        &self,
        source: &str,
        items: &[UsageContribution],
    ) -> Result<usize, StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let mut changed = 0;
        {
            let now = crate::domain::now().to_string();
            // Read inside the write transaction: the previous contribution and its replacement
            // must agree.
            let mut previous = tx.prepare_cached(
                "SELECT detail FROM import_history WHERE source = ?1 AND item = ?2 AND outcome = 'applied' ORDER BY id DESC LIMIT 1",
            )?;
            let mut add = tx.prepare_cached(ADD_TO_USAGE_DAILY)?;
            let mut drop_empty = tx.prepare_cached(
                "DELETE FROM usage_daily WHERE key_id = ?1 AND model = ?2 AND day = ?3
                   AND requests = 0 AND input_tokens = 0 AND output_tokens = 0
                   AND cache_creation_tokens = 0 AND cache_read_tokens = 0 AND abs(cost) < 1e-12",
            )?;
            let mut record = tx.prepare_cached(
                "INSERT INTO import_history (source, item, sha256, applied_at, outcome, detail) VALUES (?1, ?2, ?3, ?4, 'applied', ?5)",
            )?;
            for item in items {
                let old: Option<UsageContribution> = previous
                    .query_row(params![source, item.item], |row| row.get::<_, String>(0))
                    .optional()?
                    .and_then(|detail| serde_json::from_str(&detail).ok());
                if old.as_ref() == Some(item) {
                    continue;
                }
                let mut apply = |c: &UsageContribution, u: UsageFigures| -> rusqlite::Result<()> {
                    add.execute(params![
                        c.key_id,
                        c.model,
                        c.day,
                        u.requests,
                        u.input_tokens,
                        u.output_tokens,
                        u.cache_creation_tokens,
                        u.cache_read_tokens,
                        u.cost
                    ])?;
                    drop_empty.execute(params![c.key_id, c.model, c.day])?;
                    Ok(())
                };
                if let Some(old) = &old {
                    apply(old, old.usage.negated())?;
                }
                apply(item, item.usage)?;
                let detail = serde_json::to_string(item)
                    .map_err(|e| StoreError::Backend(format!("usage contribution: {e}")))?;
                let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(detail.as_bytes()));
                record.execute(params![source, item.item, sha, now, detail])?;
                changed += 1;
            }
        }
        tx.commit()?;
        Ok(changed)
    }
}

pub(super) fn lock(conn: &Mutex<Connection>) -> MutexGuard<'_, Connection> {
    conn.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
