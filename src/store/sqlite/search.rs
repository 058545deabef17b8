//! Log search: filters over `request_log`, newest first, paged by a keyset cursor of
//! (`initial_time`, `id`) rather than OFFSET, so rows written between two page fetches never
//! shift or repeat a page.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rusqlite::Connection;
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

/// Length of an hourly roll-up period, `YYYY-MM-DDTHH`.
const HOUR_LEN: usize = 13;
/// Length of a daily roll-up period, `YYYY-MM-DD`.
const DAY_LEN: usize = 10;
/// Matching days read from the daily roll-up at a time (a page is usually filled from the
/// first one; an absent value reads them all).
const DAYS_PER_READ: usize = 16;

/// The time range one statement scans: `initial_time` in [`from`, `to`), and after the cursor
/// when `after_cursor`.
struct Window<'a> {
    from: Option<&'a str>,
    to: Option<&'a str>,
    after_cursor: bool,
}

impl LogSearch {
    /// The statement and its parameters for `limit` rows inside `window`.
    fn statement(&self, window: &Window<'_>, limit: usize) -> (String, Vec<Value>) {
        let mut clauses: Vec<&str> = Vec::new();
        let mut values: Vec<Value> = Vec::new();
        let mut text = |clause: &'static str, value: Option<&str>, values: &mut Vec<Value>| {
            if let Some(value) = value {
                clauses.push(clause);
                values.push(Value::Text(value.to_string()));
            }
        };
        text("initial_time >= ?", window.from, &mut values);
        text("initial_time < ?", window.to, &mut values);
        text("client_id = ?", self.client_id.as_deref(), &mut values);
        text("model = ?", self.model.as_deref(), &mut values);
        text("channel_id = ?", self.channel_id.as_deref(), &mut values);
        text("endpoint = ?", self.endpoint.as_deref(), &mut values);
        text("status = ?", self.outcome.as_deref(), &mut values);
        text("session_id = ?", self.session_id.as_deref(), &mut values);
        let error = self.error.as_ref().map(|e| e.to_ascii_lowercase());
        if let Some(error) = error {
            clauses.push("(instr(lower(error), ?) > 0 OR instr(lower(upstream_error), ?) > 0)");
            values.push(Value::Text(error.clone()));
            values.push(Value::Text(error));
        }
        let mut sql = String::new();
        push_status(self.status, "http_status", &mut sql, &mut values);
        if !sql.is_empty() {
            clauses.push(&sql[" AND ".len()..]);
        }
        if let Some(stream) = self.stream {
            clauses.push("stream = ?");
            values.push(Value::Integer(i64::from(stream)));
        }
        if let Some(after) = self.after.as_ref().filter(|_| window.after_cursor) {
            clauses.push("(initial_time, id) < (?, ?)");
            values.push(Value::Text(after.initial_time.clone()));
            values.push(Value::Text(after.id.clone()));
        }
        let filter = if clauses.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", clauses.join(" AND "))
        };
        values.push(Value::Integer(i64::try_from(limit).unwrap_or(i64::MAX)));
        (
            format!(
                "SELECT {LOG_COLUMNS} FROM request_log{filter} ORDER BY initial_time DESC, id DESC LIMIT ?"
            ),
            values,
        )
    }

    /// The whole search as one statement: `limit` rows, newest first.
    fn plain_statement(&self, limit: usize) -> (String, Vec<Value>) {
        let window = Window {
            from: self.from.as_deref(),
            to: self.to.as_deref(),
            after_cursor: true,
        };
        self.statement(&window, limit)
    }

    /// Whether the usage roll-ups can bound this search. They are keyed by (hour, key, model,
    /// channel, endpoint, HTTP status), written in the same transaction as the rows they count
    /// and bucketed by the first 13 characters of the same `initial_time` (every insert,
    /// imports included, goes through that path; rows written before the roll-ups existed were
    /// back-filled by migration 0007). So a row matching these filters lies in an hour whose
    /// roll-up rows match them too: scanning only those hours is exact. Rows pruned from
    /// `request_log` leave their roll-ups behind, which only adds hours to scan. Error text,
    /// outcome, stream and session are not in the roll-ups (successful rows can carry an
    /// upstream error from a failed-over attempt), so they alone do not prune.
    fn prunable(&self) -> bool {
        self.client_id.is_some()
            || self.model.is_some()
            || self.channel_id.is_some()
            || self.endpoint.is_some()
            || self.status.is_some()
    }

    /// The latest hour a matching row can start in: that of `to` or of the cursor, whichever
    /// is earlier.
    fn upper_hour(&self) -> Option<&str> {
        let to = self.to.as_deref().and_then(|t| t.get(..HOUR_LEN));
        let after = (self.after.as_ref()).and_then(|a| a.initial_time.get(..HOUR_LEN));
        match (to, after) {
            (Some(to), Some(after)) => Some(to.min(after)),
            (one, other) => one.or(other),
        }
    }

    /// The earliest hour a matching row can start in.
    fn lower_hour(&self) -> Option<&str> {
        self.from.as_deref().and_then(|f| f.get(..HOUR_LEN))
    }

    /// Add the rows of `hour` (`YYYY-MM-DDTHH`) to `logs`, up to `want` in all.
    fn scan_hour(
        &self,
        conn: &Connection,
        hour: &str,
        want: usize,
        logs: &mut Vec<RequestLog>,
    ) -> rusqlite::Result<Scan> {
        let Some(hour_end) = prefix_end(hour).filter(|_| hour.len() == HOUR_LEN) else {
            return Ok(Scan::Odd);
        };
        // The search's own bounds matter only in its first and last hour, and the cursor only
        // in its own hour (older hours end before it); one lower and one upper bound keep
        // SQLite's index range inside the hour.
        let from = self.from.as_deref().filter(|f| *f > hour).unwrap_or(hour);
        let to = (self.to.as_deref())
            .filter(|t| **t < *hour_end)
            .unwrap_or(&hour_end);
        let window = Window {
            from: Some(from),
            to: Some(to),
            after_cursor: self.upper_hour().is_some_and(|u| u == hour),
        };
        let (sql, values) = self.statement(&window, want - logs.len());
        logs.extend(rows(conn, &sql, values)?);
        Ok(if logs.len() >= want {
            Scan::Full
        } else {
            Scan::More
        })
    }

    /// Up to `want` rows of a session search, read only inside the hours `session_hours`
    /// lists for it (newest first); `None` for an empty session or an oddly stored time.
    fn session_rows(
        &self,
        conn: &Connection,
        want: usize,
    ) -> rusqlite::Result<Option<Vec<RequestLog>>> {
        let Some(session) = self.session_id.as_deref().filter(|s| !s.is_empty()) else {
            return Ok(None);
        };
        let mut sql = "SELECT period FROM session_hours WHERE session_id = ?".to_string();
        let mut values = vec![Value::Text(session.to_string())];
        if let Some(lower) = self.lower_hour() {
            sql.push_str(" AND period >= ?");
            values.push(Value::Text(lower.to_string()));
        }
        if let Some(upper) = self.upper_hour() {
            sql.push_str(" AND period <= ?");
            values.push(Value::Text(upper.to_string()));
        }
        sql.push_str(" ORDER BY period DESC");
        let mut logs = Vec::new();
        for hour in periods(conn, &sql, values)? {
            match self.scan_hour(conn, &hour, want, &mut logs)? {
                Scan::Full => break,
                Scan::Odd => return Ok(None),
                Scan::More => {}
            }
        }
        Ok(Some(logs))
    }

    /// ` AND …` conditions on the roll-up dimensions, and their values.
    fn roll_up_filter(&self) -> (String, Vec<Value>) {
        let mut sql = String::new();
        let mut values = Vec::new();
        let dimensions = [
            ("key_id", &self.client_id),
            ("model", &self.model),
            ("channel_id", &self.channel_id),
            ("endpoint", &self.endpoint),
        ];
        for (column, value) in dimensions {
            if let Some(value) = value {
                sql.push_str(" AND ");
                sql.push_str(column);
                sql.push_str(" = ?");
                values.push(Value::Text(value.clone()));
            }
        }
        push_status(self.status, "http_status", &mut sql, &mut values);
        (sql, values)
    }

    /// Up to `want` rows, newest first, read only inside the hours whose roll-ups match: the
    /// days from `usage_daily_detail` (a few dozen rows per day), then their hours from
    /// `usage_hourly`, then each hour's rows by the time index. `None` when a roll-up period
    /// is not of the usual form (an oddly stored time): the caller scans instead.
    fn pruned_rows(
        &self,
        conn: &Connection,
        want: usize,
    ) -> rusqlite::Result<Option<Vec<RequestLog>>> {
        let (filter, filter_values) = self.roll_up_filter();
        let upper = self.upper_hour();
        let lower = self.lower_hour();
        let mut logs = Vec::new();
        let mut before_day: Option<String> = None;
        loop {
            // Days newest first, below the previous batch.
            let mut sql = format!("SELECT DISTINCT period FROM usage_daily_detail WHERE 1{filter}");
            let mut values = filter_values.clone();
            let mut bound = |clause: &str, value: Option<&str>| {
                if let Some(value) = value {
                    sql.push_str(clause);
                    values.push(Value::Text(value.to_string()));
                }
            };
            bound(" AND period >= ?", lower.and_then(|h| h.get(..DAY_LEN)));
            bound(" AND period <= ?", upper.and_then(|h| h.get(..DAY_LEN)));
            bound(" AND period < ?", before_day.as_deref());
            sql.push_str(" ORDER BY period DESC LIMIT ?");
            values.push(Value::Integer(DAYS_PER_READ as i64));
            let days = periods(conn, &sql, values)?;
            for day in &days {
                let Some(day_end) = prefix_end(day).filter(|_| day.len() == DAY_LEN) else {
                    return Ok(None);
                };
                let mut sql = format!(
                    "SELECT DISTINCT period FROM usage_hourly WHERE period >= ? AND period < ?{filter}"
                );
                let mut values = vec![Value::Text(day.clone()), Value::Text(day_end)];
                values.extend(filter_values.iter().cloned());
                let mut bound = |clause: &str, value: Option<&str>| {
                    if let Some(value) = value {
                        sql.push_str(clause);
                        values.push(Value::Text(value.to_string()));
                    }
                };
                bound(" AND period >= ?", lower);
                bound(" AND period <= ?", upper);
                sql.push_str(" ORDER BY period DESC");
                for hour in periods(conn, &sql, values)? {
                    match self.scan_hour(conn, &hour, want, &mut logs)? {
                        Scan::Full => return Ok(Some(logs)),
                        Scan::Odd => return Ok(None),
                        Scan::More => {}
                    }
                }
            }
            if days.len() < DAYS_PER_READ {
                return Ok(Some(logs));
            }
            before_day = days.last().cloned();
        }
    }
}

/// What scanning one hour left.
enum Scan {
    /// The page is full.
    Full,
    /// Not yet: go on with the next hour.
    More,
    /// The period is not of the usual form: scan the plain way instead.
    Odd,
}

/// The hours (`YYYY-MM-DDTHH`) each session has rows in, kept by the log writer in the same
/// transaction as the rows (one upsert per session and hour in a batch, where an index on
/// `request_log.session_id` would cost every row: measured, it halved the writer's rows/s).
/// A session search reads only those hours. Duplicate rows an insert ignores still add
/// their hour: an extra hour to scan, never a missing one.
#[derive(Default)]
pub(crate) struct SessionHours<'a> {
    hours: std::collections::HashSet<(&'a str, &'a str), foldhash::fast::RandomState>,
}

impl<'a> SessionHours<'a> {
    /// The session hours of `rows`.
    pub(crate) fn of(rows: &'a [RequestLog]) -> Self {
        let mut this = Self::default();
        for r in rows.iter().filter(|r| !r.session_id.is_empty()) {
            let hour = r.initial_time.get(..HOUR_LEN).unwrap_or(&r.initial_time);
            this.hours.insert((r.session_id.as_str(), hour));
        }
        this
    }

    pub(crate) fn write(self, tx: &rusqlite::Transaction<'_>) -> rusqlite::Result<()> {
        if self.hours.is_empty() {
            return Ok(());
        }
        let mut insert = tx.prepare_cached(
            "INSERT OR IGNORE INTO session_hours (session_id, period) VALUES (?1, ?2)",
        )?;
        for (session, hour) in self.hours {
            insert.execute([session, hour])?;
        }
        Ok(())
    }
}

/// ` AND` the status filter on `column`.
fn push_status(
    status: Option<StatusFilter>,
    column: &str,
    sql: &mut String,
    values: &mut Vec<Value>,
) {
    match status {
        Some(StatusFilter::Class(class)) => {
            sql.push_str(&format!(" AND {column} BETWEEN ? AND ?"));
            values.push(Value::Integer(i64::from(class) * 100));
            values.push(Value::Integer(i64::from(class) * 100 + 99));
        }
        Some(StatusFilter::Exact(code)) => {
            sql.push_str(&format!(" AND {column} = ?"));
            values.push(Value::Integer(i64::from(code)));
        }
        None => {}
    }
}

/// The first string after every string starting with `prefix` (its last byte plus one), so
/// `[prefix, prefix_end)` is exactly the strings with that prefix; `None` unless that last
/// byte is ASCII below DEL.
fn prefix_end(prefix: &str) -> Option<String> {
    let mut bytes = prefix.as_bytes().to_vec();
    let last = bytes.last_mut().filter(|b| **b < 0x7f)?;
    *last += 1;
    String::from_utf8(bytes).ok()
}

fn periods(conn: &Connection, sql: &str, values: Vec<Value>) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt.query_map(rusqlite::params_from_iter(values), |row| row.get(0))?;
    rows.collect()
}

fn rows(conn: &Connection, sql: &str, values: Vec<Value>) -> rusqlite::Result<Vec<RequestLog>> {
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt.query_map(rusqlite::params_from_iter(values), row_to_log)?;
    rows.collect()
}

impl LogReader {
    /// One page of `search`, newest first.
    pub fn search_logs(&self, search: &LogSearch) -> Result<LogPage, StoreError> {
        let limit = usize::try_from(search.limit).unwrap_or(usize::MAX);
        // One row more than the page, to know whether more follow.
        let want = limit.saturating_add(1);
        let mut logs = self.read(|conn| {
            // One read snapshot: the roll-ups and the rows they point at agree.
            let tx = conn.unchecked_transaction()?;
            let mut pruned = search.session_rows(&tx, want)?;
            if pruned.is_none() && search.prunable() {
                pruned = search.pruned_rows(&tx, want)?;
            }
            let logs = match pruned {
                Some(logs) => logs,
                None => {
                    let (sql, values) = search.plain_statement(want);
                    rows(&tx, &sql, values)?
                }
            };
            tx.finish()?;
            Ok(logs)
        })?;
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

    fn plan(db: &LogDb, sql: &str, values: Vec<Value>) -> String {
        let plan: Vec<String> = db
            .reader()
            .read(|conn| {
                let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))?;
                let rows = stmt.query_map(rusqlite::params_from_iter(values), |r| r.get(3))?;
                rows.collect()
            })
            .unwrap();
        plan.join("; ")
    }

    fn new_db() -> (tempfile::TempDir, LogDb) {
        let dir = tempfile::tempdir().unwrap();
        let db = LogDb::open(&dir.path().join("logs.sqlite"), OpenOptions::default()).unwrap();
        (dir, db)
    }

    #[test]
    fn the_first_page_uses_the_time_index() {
        let (_dir, db) = new_db();
        let search = LogSearch {
            after: Some(LogCursor {
                initial_time: "2026-11-21T10:00:00.000Z".into(),
                id: "x".into(),
            }),
            limit: 50,
            ..LogSearch::default()
        };
        let (sql, values) = search.plain_statement(51);
        let plan = plan(&db, &sql, values);
        assert!(plan.contains("request_log_time_id"), "{plan}");
        assert!(!plan.contains("TEMP B-TREE"), "no sort: {plan}");
    }

    #[test]
    fn a_session_search_reads_only_the_hours_of_the_session() {
        let (_dir, db) = new_db();
        let row = |id: &str, at: &str, session: &str| RequestLog {
            id: id.into(),
            status: "success".into(),
            initial_time: at.into(),
            session_id: session.into(),
            ..RequestLog::default()
        };
        db.insert_logs(&[
            row("a", "2026-11-01T08:10:00.000Z", "s-old"),
            row("b", "2026-11-01T08:20:00.000Z", "s-old"),
            row("c", "2026-11-03T23:59:00.000Z", "s-old"),
            row("d", "2026-11-05T10:00:00.000Z", "s-new"),
            row("e", "2026-11-05T11:00:00.000Z", ""),
        ])
        .unwrap();
        let hours: Vec<(String, String)> = db
            .reader()
            .read(|conn| {
                let mut stmt = conn.prepare("SELECT session_id, period FROM session_hours")?;
                let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
                rows.collect()
            })
            .unwrap();
        let expected = [
            ("s-new", "2026-11-05T10"),
            ("s-old", "2026-11-01T08"),
            ("s-old", "2026-11-03T23"),
        ];
        assert_eq!(hours, expected.map(|(s, p)| (s.to_string(), p.to_string())));
        let search = LogSearch {
            session_id: Some("s-old".into()),
            limit: 2,
            ..LogSearch::default()
        };
        let page = db.reader().search_logs(&search).unwrap();
        let ids: Vec<&str> = page.logs.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["c", "b"]);
        let rest = LogSearch {
            after: page.next,
            ..search
        };
        let page = db.reader().search_logs(&rest).unwrap();
        assert_eq!(
            page.logs.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
            ["a"]
        );
        assert!(page.next.is_none());
        let plan = plan(
            &db,
            "SELECT period FROM session_hours WHERE session_id = ? ORDER BY period DESC",
            vec![Value::Text("s-old".into())],
        );
        assert!(plan.contains("PRIMARY KEY (session_id=?)"), "{plan}");
        assert!(!plan.contains("TEMP B-TREE"), "no sort: {plan}");
    }

    #[test]
    fn an_hour_is_read_by_a_time_range_inside_it() {
        let (_dir, db) = new_db();
        let search = LogSearch {
            client_id: Some("key-1".into()),
            from: Some("2026-10-01T00:00:00.000Z".into()),
            limit: 50,
            ..LogSearch::default()
        };
        let window = Window {
            from: Some("2026-11-21T10"),
            to: Some("2026-11-21T11"),
            after_cursor: false,
        };
        let (sql, values) = search.statement(&window, 51);
        let plan = plan(&db, &sql, values);
        assert!(
            plan.contains("request_log_time_id (initial_time>? AND initial_time<?)"),
            "{plan}"
        );
        assert!(!plan.contains("TEMP B-TREE"), "no sort: {plan}");
    }

    #[test]
    fn roll_up_periods_are_read_newest_first_without_a_sort() {
        let (_dir, db) = new_db();
        let search = LogSearch {
            model: Some("m".into()),
            status: Some(StatusFilter::Class(5)),
            ..LogSearch::default()
        };
        let (filter, values) = search.roll_up_filter();
        for table in ["usage_daily_detail", "usage_hourly"] {
            let sql = format!(
                "SELECT DISTINCT period FROM {table} WHERE period < ?{filter} ORDER BY period DESC"
            );
            let mut all = vec![Value::Text("2026-11-22".into())];
            all.extend(values.iter().cloned());
            let plan = plan(&db, &sql, all);
            assert!(!plan.contains("TEMP B-TREE"), "{table}: {plan}");
        }
    }

    #[test]
    fn prefix_ends_bound_exactly_the_strings_with_the_prefix() {
        let end = prefix_end("2026-11-21T09").unwrap();
        assert_eq!(end, "2026-11-21T0:");
        for inside in [
            "2026-11-21T09",
            "2026-11-21T09:59:59.999Z",
            "2026-11-21T09\u{10ffff}",
        ] {
            assert!(
                inside >= "2026-11-21T09" && inside < end.as_str(),
                "{inside}"
            );
        }
        assert!("2026-11-21T10:00:00.000Z" >= end.as_str());
        assert_eq!(prefix_end(""), None);
    }
}
