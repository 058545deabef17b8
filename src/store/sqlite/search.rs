//! Log search: filters over `request_log`, newest first, paged by a keyset cursor of
//! (`initial_time`, `id`) rather than OFFSET, so rows written between two page fetches never
//! shift or repeat a page.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rusqlite::types::Value;

use super::reader::row_to_log;
use super::{LOG_COLUMNS, LogReader, RequestLog};
use crate::store::StoreError;

/// Which `http_status` values a search keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusFilter {
    /// `2xx` → 200..=299 (the hundreds digit).
    Class(u16),
    Exact(u16),
}

/// Where the previous page ended: the (`initial_time`, `id`) of its last row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogCursor {
    pub initial_time: String,
    pub id: String,
}

impl LogCursor {
    /// The opaque token handed to clients.
    #[must_use]
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!("{}\n{}", self.initial_time, self.id))
    }

    /// The cursor of a token made by [`encode`](Self::encode); `None` when it is not one.
    #[must_use]
    pub fn decode(token: &str) -> Option<Self> {
        let bytes = URL_SAFE_NO_PAD.decode(token).ok()?;
        let text = String::from_utf8(bytes).ok()?;
        let (initial_time, id) = text.split_once('\n')?;
        (!initial_time.is_empty() && !id.is_empty()).then(|| Self {
            initial_time: initial_time.to_string(),
            id: id.to_string(),
        })
    }
}

/// A log search. Times are in the stored form (RFC 3339 UTC, milliseconds, `Z`); `from` is
/// inclusive, `to` exclusive. Every filter set must hold.
#[derive(Debug, Clone, Default)]
pub struct LogSearch {
    pub from: Option<String>,
    pub to: Option<String>,
    pub client_id: Option<String>,
    pub model: Option<String>,
    pub channel_id: Option<String>,
    pub endpoint: Option<String>,
    pub status: Option<StatusFilter>,
    /// The row's `status` column: `success`, `error`, `client_disconnect`, `rejected`, …
    pub outcome: Option<String>,
    pub stream: Option<bool>,
    pub session_id: Option<String>,
    /// A substring of `error` or `upstream_error`, ASCII case ignored.
    pub error: Option<String>,
    pub after: Option<LogCursor>,
    pub limit: u32,
}

/// One page of a search, and the cursor of the next one when more rows match.
#[derive(Debug, Clone)]
pub struct LogPage {
    pub logs: Vec<RequestLog>,
    pub next: Option<LogCursor>,
}

impl LogSearch {
    /// The statement and its parameters (one page plus one row, to know whether more follow).
    fn statement(&self) -> (String, Vec<Value>) {
        let mut clauses: Vec<&str> = Vec::new();
        let mut values: Vec<Value> = Vec::new();
        let mut text = |clause: &'static str, value: &Option<String>, values: &mut Vec<Value>| {
            if let Some(value) = value {
                clauses.push(clause);
                values.push(Value::Text(value.clone()));
            }
        };
        text("initial_time >= ?", &self.from, &mut values);
        text("initial_time < ?", &self.to, &mut values);
        text("client_id = ?", &self.client_id, &mut values);
        text("model = ?", &self.model, &mut values);
        text("channel_id = ?", &self.channel_id, &mut values);
        text("endpoint = ?", &self.endpoint, &mut values);
        text("status = ?", &self.outcome, &mut values);
        text("session_id = ?", &self.session_id, &mut values);
        let error = self.error.as_ref().map(|e| e.to_ascii_lowercase());
        if let Some(error) = error {
            clauses.push("(instr(lower(error), ?) > 0 OR instr(lower(upstream_error), ?) > 0)");
            values.push(Value::Text(error.clone()));
            values.push(Value::Text(error));
        }
        match self.status {
            Some(StatusFilter::Class(class)) => {
                clauses.push("http_status BETWEEN ? AND ?");
                values.push(Value::Integer(i64::from(class) * 100));
                values.push(Value::Integer(i64::from(class) * 100 + 99));
            }
            Some(StatusFilter::Exact(code)) => {
                clauses.push("http_status = ?");
                values.push(Value::Integer(i64::from(code)));
            }
            None => {}
        }
        if let Some(stream) = self.stream {
            clauses.push("stream = ?");
            values.push(Value::Integer(i64::from(stream)));
        }
        if let Some(after) = &self.after {
            clauses.push("(initial_time, id) < (?, ?)");
            values.push(Value::Text(after.initial_time.clone()));
            values.push(Value::Text(after.id.clone()));
        }
        let filter = if clauses.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", clauses.join(" AND "))
        };
        values.push(Value::Integer(i64::from(self.limit) + 1));
        (
            format!(
                "SELECT {LOG_COLUMNS} FROM request_log{filter} ORDER BY initial_time DESC, id DESC LIMIT ?"
            ),
            values,
        )
    }
}

impl LogReader {
    /// One page of `search`, newest first.
    pub fn search_logs(&self, search: &LogSearch) -> Result<LogPage, StoreError> {
        let (sql, values) = search.statement();
        let mut logs = self.read(|conn| {
            let mut stmt = conn.prepare_cached(&sql)?;
            let rows = stmt.query_map(rusqlite::params_from_iter(values), row_to_log)?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
        })?;
        let limit = usize::try_from(search.limit).unwrap_or(usize::MAX);
        let next = if logs.len() > limit {
            logs.truncate(limit);
            logs.last().map(|row| LogCursor {
                initial_time: row.initial_time.clone(),
                id: row.id.clone(),
            })
        } else {
            None
        };
        Ok(LogPage { logs, next })
    }

    /// The row with this id.
    pub fn log_by_id(&self, id: &str) -> Result<Option<RequestLog>, StoreError> {
        use rusqlite::OptionalExtension as _;
        static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
            format!("SELECT {LOG_COLUMNS} FROM request_log WHERE id = ?1")
        });
        self.read(|conn| {
            conn.prepare_cached(&SQL)?
                .query_row([id], row_to_log)
                .optional()
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]
mod tests {
    use super::*;
    use crate::store::sqlite::{LogDb, OpenOptions};

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let cursor = LogCursor {
            initial_time: "2026-11-21T10:00:00.000Z".into(),
            id: "req_1".into(),
        };
        assert_eq!(LogCursor::decode(&cursor.encode()), Some(cursor));
        assert_eq!(LogCursor::decode("not a cursor!"), None);
        assert_eq!(
            LogCursor::decode(&URL_SAFE_NO_PAD.encode("no newline")),
            None
        );
    }

    #[test]
    fn the_first_page_uses_the_time_index() {
        let dir = tempfile::tempdir().unwrap();
        let db = LogDb::open(&dir.path().join("logs.sqlite"), OpenOptions::default()).unwrap();
        let search = LogSearch {
            after: Some(LogCursor {
                initial_time: "2026-11-21T10:00:00.000Z".into(),
                id: "x".into(),
            }),
            limit: 50,
            ..LogSearch::default()
        };
        let (sql, values) = search.statement();
        let plan: Vec<String> = db
            .reader()
            .read(|conn| {
                let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))?;
                let rows = stmt.query_map(rusqlite::params_from_iter(values), |r| r.get(3))?;
                rows.collect()
            })
            .unwrap();
        let plan = plan.join("; ");
        assert!(plan.contains("request_log_time_id"), "{plan}");
        assert!(!plan.contains("TEMP B-TREE"), "no sort: {plan}");
    }
}
