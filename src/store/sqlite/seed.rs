//! Queries that rebuild the in-memory limit counters from the durable log at start.

use std::collections::HashMap;

use rusqlite::params;
use time::OffsetDateTime;

use super::{KeyRequest, LogReader};
use crate::store::StoreError;

fn unix_of(text: &str) -> Option<i64> {
    OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(OffsetDateTime::unix_timestamp)
}

impl LogReader {
    /// Per key: (cost over all time, cost on `today`), from the daily roll-ups (which also hold
    /// imported history).
    pub fn cost_totals(
        &self,
        today: time::Date,
    ) -> Result<HashMap<String, (f64, f64)>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT key_id, SUM(cost), SUM(CASE WHEN day = ?1 THEN cost ELSE 0 END) FROM usage_daily GROUP BY key_id",
            )?;
            let rows = stmt.query_map(params![today.to_string()], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    (row.get::<_, f64>(1)?, row.get::<_, f64>(2)?),
                ))
            })?;
            rows.collect()
        })
    }

    /// Per client key of `keys`: its requests since its own start time. One pass over the time
    /// index serves every key.
    pub fn key_requests_since(
        &self,
        keys: &HashMap<&str, OffsetDateTime>,
    ) -> Result<HashMap<String, Vec<KeyRequest>>, StoreError> {
        let mut out: HashMap<String, Vec<KeyRequest>> = HashMap::new();
        let Some(earliest) = keys.values().min() else {
            return Ok(out);
        };
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT client_id, initial_time, total_tokens, price FROM request_log WHERE initial_time >= ?1",
            )?;
            let mut rows = stmt.query(params![crate::domain::format_time(*earliest)])?;
            while let Some(row) = rows.next()? {
                let client: String = row.get(0)?;
                let Some(since) = keys.get(client.as_str()) else {
                    continue;
                };
                let Some(at) = unix_of(&row.get::<_, String>(1)?) else {
                    continue;
                };
                if at < since.unix_timestamp() {
                    continue;
                }
                let tokens = u64::try_from(row.get::<_, i64>(2)?).unwrap_or(0);
                out.entry(client)
                    .or_default()
                    .push((at, tokens, row.get(3)?));
            }
            Ok(())
        })?;
        Ok(out)
    }

    /// (unix seconds, model, cost) of a channel's successful requests since `since` that
    /// relaybox itself relayed (rows imported from cc-bridge are already in its quota counters).
    pub fn channel_requests_since(
        &self,
        channel_id: &str,
        since: OffsetDateTime,
    ) -> Result<Vec<(i64, String, f64)>, StoreError> {
        let rows: Vec<(String, String, f64)> = self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT initial_time, model, price FROM request_log
                 WHERE channel_id = ?1 AND initial_time >= ?2 AND status = 'success' AND id NOT LIKE 'ccb-%'",
            )?;
            let rows = stmt.query_map(
                params![channel_id, crate::domain::format_time(since)],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
            )?;
            rows.collect()
        })?;
        Ok(rows
            .into_iter()
            .filter_map(|(at, model, cost)| unix_of(&at).map(|at| (at, model, cost)))
            .collect())
    }
}
