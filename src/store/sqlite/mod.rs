//! `logs.sqlite`: request logs, usage roll-ups, channel quota usage, import history.
//!
//! Two seams over one file. A [`LogSink`] owns the one read-write connection, behind a mutex:
//! the background [`writer`] holds it for one group-commit transaction at a time, imports take
//! it in between. A [`LogReader`] serves admin listings, usage, quota reads and the limit
//! seeding from read-only connections of its own: in WAL mode they read the last committed
//! state without waiting for a batch, and the writer does not wait for them. With
//! `locking_mode=EXCLUSIVE`, which network and FUSE file systems need, no second connection can
//! open the file, and the reader reads through the write connection instead.
//!
//! [`LogDb`] holds both and offers every operation; [`LogDb::sink`] and [`LogDb::reader`] hand
//! out one side.

pub mod histogram;
pub mod migrate;
pub mod outbox;
mod reader;
pub mod rollup;
mod search;
mod seed;
mod sink;
mod usage_cache;
pub mod writer;

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use rusqlite::{Connection, params};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

pub use reader::LogReader;
pub use rollup::{Dimension, Figures, UsageGroup, UsageQuery, UsageReport};
pub use search::{LogCursor, LogPage, LogSearch, StatusFilter};
pub use sink::LogSink;

use super::StoreError;

impl From<rusqlite::Error> for StoreError {
    fn from(err: rusqlite::Error) -> Self {
        use rusqlite::ErrorCode;
        match err.sqlite_error_code() {
            Some(ErrorCode::DiskFull) => StoreError::DiskFull(format!("logs.sqlite: {err}")),
            Some(ErrorCode::SystemIoFailure | ErrorCode::ReadOnly | ErrorCode::CannotOpen) => {
                StoreError::Io(format!("logs.sqlite: {err}"))
            }
            Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => {
                StoreError::Damaged(format!("logs.sqlite: {err}"))
            }
            _ => StoreError::Backend(format!("logs.sqlite: {err}")),
        }
    }
}

/// `PRAGMA quick_check` (every page and index structure, without comparing index contents):
/// a damaged block is refused at start instead of failing requests later.
fn quick_check(conn: &Connection) -> Result<(), StoreError> {
    let mut statement = conn.prepare("PRAGMA quick_check(5)")?;
    let findings: Vec<String> = statement
        .query_map([], |row| row.get::<_, String>(0))?
        .collect::<Result<_, _>>()?;
    if findings.len() == 1 && findings[0] == "ok" {
        return Ok(());
    }
    Err(StoreError::Damaged(format!(
        "logs.sqlite failed its integrity check: {}",
        findings.join("; ")
    )))
}

/// One request-log row (SPEC §3). Times are RFC 3339 UTC with milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RequestLog {
    pub id: String,
    /// `success`, `error`, `client_disconnect`, `rejected`, … (static for the relay's own rows,
    /// so a request allocates no string for it)
    pub status: Cow<'static, str>,
    pub initial_time: String,
    pub first_token_time: Option<String>,
    pub complete_time: Option<String>,
    pub duration_ms: i64,
    pub provider: String,
    pub provider_name: String,
    pub model: String,
    pub response_model: String,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cache_creation_input_tokens: i64,
    pub cache_read_input_tokens: i64,
    pub total_tokens: i64,
    /// USD; the costs serialize as decimal strings ("0.0008617"), see [`crate::domain::money`].
    #[serde(
        serialize_with = "crate::domain::money::serialize_usd",
        deserialize_with = "crate::domain::money::deserialize_usd"
    )]
    pub price: f64,
    #[serde(
        serialize_with = "crate::domain::money::serialize_usd",
        deserialize_with = "crate::domain::money::deserialize_usd"
    )]
    pub input_cost: f64,
    #[serde(
        serialize_with = "crate::domain::money::serialize_usd",
        deserialize_with = "crate::domain::money::deserialize_usd"
    )]
    pub output_cost: f64,
    #[serde(
        serialize_with = "crate::domain::money::serialize_usd",
        deserialize_with = "crate::domain::money::deserialize_usd"
    )]
    pub cache_creation_cost: f64,
    #[serde(
        serialize_with = "crate::domain::money::serialize_usd",
        deserialize_with = "crate::domain::money::deserialize_usd"
    )]
    pub cache_read_cost: f64,
    pub http_status: i64,
    pub stream: bool,
    pub channel_id: String,
    pub channel_name: String,
    /// The relay endpoint's log name (static for the relay's own rows).
    pub endpoint: Cow<'static, str>,
    pub client_id: String,
    pub session_id: String,
    pub error: String,
    pub upstream_error: String,
    pub failover_info: String,
    /// Tokens were used but the model has no price anywhere: `price` 0 means "unknown" here.
    #[serde(default)]
    pub unpriced: bool,
}

/// (unix seconds, total tokens, cost) of one request, as the limit counters are seeded with.
pub type KeyRequest = (i64, u64, f64);

/// The page size of a newly created `logs.sqlite`.
pub const NEW_FILE_PAGE_SIZE: i64 = 16_384;

/// How the database is opened.
#[derive(Debug, Clone, Copy, Default)]
pub struct OpenOptions {
    /// WAL with `locking_mode=EXCLUSIVE` (no `-shm` file): needed on FUSE and network shares.
    pub exclusive_locking: bool,
}

/// The handle to `logs.sqlite`: its [`LogSink`] and its [`LogReader`].
#[derive(Clone)]
pub struct LogDb {
    sink: LogSink,
    reader: LogReader,
}

impl std::fmt::Debug for LogDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogDb")
            .field("reader", &self.reader)
            .finish_non_exhaustive()
    }
}

impl LogDb {
    /// Open (or create) and migrate to the latest schema; refuse a newer one, a file SQLite
    /// can only open read-only, and one that fails `PRAGMA quick_check`.
    pub fn open(path: &Path, options: OpenOptions) -> Result<Self, StoreError> {
        let mut conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        // SQLite falls back to read-only when the file cannot be opened for writing; every
        // request row would then fail, so say so now.
        if conn.is_readonly(rusqlite::MAIN_DB)? {
            return Err(StoreError::Io(format!(
                "{} can only be opened read-only",
                path.display()
            )));
        }
        if options.exclusive_locking {
            conn.pragma_update(None, "locking_mode", "EXCLUSIVE")?;
        }
        // A new file gets 16 KiB pages: the writer bench ran 5–20 % faster than with 4 KiB ones
        // (fewer page splits and WAL frames per row). An existing file keeps its page size.
        conn.pragma_update(None, "page_size", NEW_FILE_PAGE_SIZE)?;
        quick_check(&conn)?;
        let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |row| row.get(0))?;
        let wal = mode.eq_ignore_ascii_case("wal");
        if !wal {
            tracing::warn!(mode, "logs.sqlite could not switch to WAL");
        }
        // FULL + group commit: an acknowledged batch survives power loss, and batching keeps
        // it cheap (see DESIGN.md).
        conn.pragma_update(None, "synchronous", "FULL")?;
        // The roll-up upserts merge their histograms with it (the back-fill too).
        histogram::register(&conn)?;
        migrate::run(&mut conn)?;
        // The file SQLite resolved, so the readers open the same one whatever the working
        // directory.
        let file = conn
            .path()
            .filter(|p| !p.is_empty())
            .map_or_else(|| path.to_path_buf(), PathBuf::from);
        let conn = Arc::new(Mutex::new(conn));
        // Without WAL a reader would wait for the writer's file lock anyway, and could fail
        // where the mutex would just wait.
        let reader = if options.exclusive_locking || !wal {
            LogReader::shared(Arc::clone(&conn))
        } else {
            LogReader::pooled(&file).unwrap_or_else(|err| {
                tracing::warn!(error = %err, "logs.sqlite: no read-only connection; reads share the writer's");
                LogReader::shared(Arc::clone(&conn))
            })
        };
        Ok(Self {
            sink: LogSink::new(conn),
            reader,
        })
    }

    /// The write side: what the log writer and the importers write through.
    #[must_use]
    pub fn sink(&self) -> LogSink {
        self.sink.clone()
    }

    /// The read side, which does not wait for the writer (see [`LogReader`]).
    #[must_use]
    pub fn reader(&self) -> LogReader {
        self.reader.clone()
    }

    /// The write connection, for one short unit of work. Never hold it across an `.await`.
    /// Reads are better done through [`LogDb::reader`], which does not wait for a batch.
    pub fn lock(&self) -> MutexGuard<'_, Connection> {
        self.sink.lock()
    }

    /// Insert rows and update the usage roll-ups in one transaction. Rows whose `id` already
    /// exists are skipped (imports are idempotent); returns how many were new.
    pub fn insert_logs(&self, rows: &[RequestLog]) -> Result<usize, StoreError> {
        self.sink.insert_logs(rows)
    }

    pub fn count_logs(&self) -> Result<u64, StoreError> {
        self.reader.count_logs()
    }

    /// The newest rows first, at most `limit`, optionally of one client key.
    pub fn recent_logs(
        &self,
        limit: u32,
        client_id: Option<&str>,
    ) -> Result<Vec<RequestLog>, StoreError> {
        self.reader.recent_logs(limit, client_id)
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
        self.sink
            .record_import(source, item, sha256, outcome, detail)
    }

    /// The hash of the last successfully applied content of `item`, if any.
    pub fn last_applied(&self, source: &str, item: &str) -> Result<Option<String>, StoreError> {
        self.reader.last_applied(source, item)
    }

    /// Set a channel's quota counter (imports; the relay keeps its own in memory).
    pub fn put_channel_quota(
        &self,
        channel_id: &str,
        used: f64,
        last_reset_at: &str,
    ) -> Result<(), StoreError> {
        self.sink.put_channel_quota(channel_id, used, last_reset_at)
    }

    pub fn channel_quota(&self, channel_id: &str) -> Result<Option<(f64, String)>, StoreError> {
        self.reader.channel_quota(channel_id)
    }

    pub fn put_user_alias(
        &self,
        user_id: &str,
        alias: &str,
        created_at: &str,
        updated_at: &str,
    ) -> Result<bool, StoreError> {
        self.sink
            .put_user_alias(user_id, alias, created_at, updated_at)
    }

    /// Consistent online copy of the database (`VACUUM INTO`).
    pub fn backup_to(&self, target: &Path) -> Result<(), StoreError> {
        self.reader.backup_to(target)
    }

    /// The latest `applied` entry of every item of `source` whose name starts with `prefix`.
    pub fn latest_imports(
        &self,
        source: &str,
        prefix: &str,
    ) -> Result<BTreeMap<String, ImportEntry>, StoreError> {
        self.reader.latest_imports(source, prefix)
    }

    /// Record several applied items of `source` (`(item, sha256, detail)`) in one transaction.
    pub fn record_imports(
        &self,
        source: &str,
        items: &[(String, String, String)],
    ) -> Result<(), StoreError> {
        self.sink.record_imports(source, items)
    }

    /// The usage contributions of `source` recorded so far, by item.
    pub fn usage_contributions(
        &self,
        source: &str,
    ) -> Result<BTreeMap<String, UsageContribution>, StoreError> {
        self.reader.usage_contributions(source)
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
        self.sink.apply_usage_contributions(source, items)
    }

    /// `usage_daily` rows, optionally of one key, ordered by key, day and model.
    pub fn usage_daily(&self, key_id: Option<&str>) -> Result<Vec<UsageDay>, StoreError> {
        self.reader.usage_daily(key_id)
    }

    /// Per key: (cost over all time, cost on `today`), from the daily roll-ups (which also hold
    /// imported history).
    pub fn cost_totals(
        &self,
        today: time::Date,
    ) -> Result<HashMap<String, (f64, f64)>, StoreError> {
        self.reader.cost_totals(today)
    }

    /// Per client key of `keys`: its requests since its own start time.
    pub fn key_requests_since(
        &self,
        keys: &HashMap<&str, OffsetDateTime>,
    ) -> Result<HashMap<String, Vec<KeyRequest>>, StoreError> {
        self.reader.key_requests_since(keys)
    }

    /// (unix seconds, model, cost) of a channel's successful requests since `since` that
    /// relaybox itself relayed (rows imported from cc-bridge are already in its quota counters).
    pub fn channel_requests_since(
        &self,
        channel_id: &str,
        since: OffsetDateTime,
    ) -> Result<Vec<(i64, String, f64)>, StoreError> {
        self.reader.channel_requests_since(channel_id, since)
    }
}

impl From<LogDb> for LogSink {
    fn from(db: LogDb) -> Self {
        db.sink
    }
}

pub(crate) const LOG_COLUMNS: &str = "id, status, initial_time, first_token_time, complete_time, duration_ms, provider, provider_name, model, response_model, input_tokens, output_tokens, cache_creation_input_tokens, cache_read_input_tokens, total_tokens, price, input_cost, output_cost, cache_creation_cost, cache_read_cost, http_status, stream, channel_id, channel_name, endpoint, client_id, session_id, error, upstream_error, failover_info, unpriced";

/// Add figures to one (key, model, day) row of `usage_daily`, creating it if needed.
const ADD_TO_USAGE_DAILY: &str = "INSERT INTO usage_daily (key_id, model, day, requests, input_tokens, output_tokens, cache_creation_tokens, cache_read_tokens, cost)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
     ON CONFLICT (key_id, model, day) DO UPDATE SET
       requests = requests + excluded.requests,
       input_tokens = input_tokens + excluded.input_tokens,
       output_tokens = output_tokens + excluded.output_tokens,
       cache_creation_tokens = cache_creation_tokens + excluded.cache_creation_tokens,
       cache_read_tokens = cache_read_tokens + excluded.cache_read_tokens,
       cost = cost + excluded.cost";

/// Insert rows (skipping known ids) and add them to `usage_daily` and the statistics roll-ups
/// ([`rollup`]), inside the caller's transaction.
pub(crate) fn insert_logs_tx(
    tx: &rusqlite::Transaction<'_>,
    rows: &[RequestLog],
) -> Result<usize, StoreError> {
    insert_logs_tx_pacing(tx, rows, |_| {})
}

/// Rows per multi-row `INSERT`: one statement per slice saves SQLite's per-statement work
/// (measured: about 15 % more rows/s for the writer alone than one statement per row).
const ROWS_PER_INSERT: usize = 8;
const LOG_COLUMN_COUNT: usize = 31;

/// `INSERT OR IGNORE` of `rows` rows, with numbered parameters row after row.
fn insert_statement(rows: usize) -> String {
    let placeholders = vec!["?"; LOG_COLUMN_COUNT].join(",");
    let values = vec![format!("({placeholders})"); rows].join(",");
    format!("INSERT OR IGNORE INTO request_log ({LOG_COLUMNS}) VALUES {values}")
}

static INSERT_ONE: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| insert_statement(1));
static INSERT_SLICE: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| insert_statement(ROWS_PER_INSERT));

/// Bind one row's columns (in `LOG_COLUMNS` order) from parameter `first` on. One typed call
/// per column, not a slice of `&dyn ToSql`: the writer binds 31 values per row, and the dynamic
/// calls cost a tenth of its time.
fn bind_row(
    statement: &mut rusqlite::Statement<'_>,
    first: usize,
    r: &RequestLog,
) -> rusqlite::Result<()> {
    // Each value in `LOG_COLUMNS` order, at the next parameter.
    macro_rules! bind_in_order {
        ($($value:expr),+ $(,)?) => {{
            let mut index = first;
            $(
                statement.raw_bind_parameter(index, $value)?;
                index += 1;
            )+
            debug_assert_eq!(index - first, LOG_COLUMN_COUNT);
        }};
    }
    bind_in_order!(
        r.id.as_str(),
        &*r.status,
        r.initial_time.as_str(),
        r.first_token_time.as_deref(),
        r.complete_time.as_deref(),
        r.duration_ms,
        r.provider.as_str(),
        r.provider_name.as_str(),
        r.model.as_str(),
        r.response_model.as_str(),
        r.input_tokens,
        r.output_tokens,
        r.cache_creation_input_tokens,
        r.cache_read_input_tokens,
        r.total_tokens,
        r.price,
        r.input_cost,
        r.output_cost,
        r.cache_creation_cost,
        r.cache_read_cost,
        r.http_status,
        r.stream,
        r.channel_id.as_str(),
        r.channel_name.as_str(),
        &*r.endpoint,
        r.client_id.as_str(),
        r.session_id.as_str(),
        r.error.as_str(),
        r.upstream_error.as_str(),
        r.failover_info.as_str(),
        r.unpriced,
    );
    Ok(())
}

/// The `usage_daily` additions of one batch: one upsert per (key, model, day), not per row.
#[derive(Default)]
struct RollUp<'a> {
    /// (key, model, day) → ([requests, input, output, cache creation, cache read], cost).
    /// A fast hasher although `model` comes from clients: a batch holds at most `max_batch`
    /// rows, so even crafted collisions could only slow one batch, never grow without bound.
    sums: crate::FastMap<(&'a str, &'a str, &'a str), ([i64; 5], f64)>,
}

impl<'a> RollUp<'a> {
    fn add(&mut self, r: &'a RequestLog) {
        if r.client_id.is_empty() {
            return;
        }
        let day = r.initial_time.get(..10).unwrap_or("");
        let (sums, cost) = self
            .sums
            .entry((r.client_id.as_str(), r.model.as_str(), day))
            .or_insert(([0; 5], 0.0));
        sums[0] += 1;
        sums[1] += r.input_tokens;
        sums[2] += r.output_tokens;
        sums[3] += r.cache_creation_input_tokens;
        sums[4] += r.cache_read_input_tokens;
        *cost += r.price;
    }

    fn write(self, tx: &rusqlite::Transaction<'_>) -> rusqlite::Result<()> {
        let mut upsert = tx.prepare_cached(ADD_TO_USAGE_DAILY)?;
        for ((key_id, model, day), (sums, cost)) in self.sums {
            upsert.execute(params![
                key_id, model, day, sums[0], sums[1], sums[2], sums[3], sums[4], cost
            ])?;
        }
        Ok(())
    }
}

/// [`insert_logs_tx`], calling `pace` before each slice of rows (one multi-row `INSERT`) with
/// the number of rows handled so far.
pub(crate) fn insert_logs_tx_pacing(
    tx: &rusqlite::Transaction<'_>,
    rows: &[RequestLog],
    mut pace: impl FnMut(usize),
) -> Result<usize, StoreError> {
    // Rows this batch adds get a `seq` above every existing one (`INTEGER PRIMARY KEY`).
    let mut last_seq: i64 =
        tx.query_row("SELECT COALESCE(MAX(seq), 0) FROM request_log", [], |row| {
            row.get(0)
        })?;
    let mut roll_up = RollUp::default();
    let mut roll_ups = rollup::RollUps::default();
    let mut inserted = 0;
    // Prepared once per batch: handing a statement back to the cache resets it and clears all
    // of its 240 parameters, which cost as much again as binding a row.
    let mut insert_slice = tx.prepare_cached(&INSERT_SLICE)?;
    for (slice_index, slice) in rows.chunks(ROWS_PER_INSERT).enumerate() {
        pace(slice_index * ROWS_PER_INSERT);
        let added = if slice.len() == ROWS_PER_INSERT {
            for (i, r) in slice.iter().enumerate() {
                bind_row(&mut insert_slice, 1 + i * LOG_COLUMN_COUNT, r)?;
            }
            insert_slice.raw_execute()?
        } else {
            let mut insert = tx.prepare_cached(&INSERT_ONE)?;
            let mut added = 0;
            for r in slice {
                bind_row(&mut insert, 1, r)?;
                added += insert.raw_execute()?;
            }
            added
        };
        if added == slice.len() {
            slice.iter().for_each(|r| {
                roll_up.add(r);
                roll_ups.add(r);
            });
        } else if added > 0 {
            // Some ids were known already (a repeated import): count only the rows added now.
            let mut find = tx.prepare_cached("SELECT seq FROM request_log WHERE id = ?1")?;
            let mut counted = std::collections::HashSet::new();
            for r in slice {
                let seq: i64 = find.query_row([&r.id], |row| row.get(0))?;
                if seq > last_seq && counted.insert(r.id.as_str()) {
                    roll_up.add(r);
                    roll_ups.add(r);
                }
            }
        }
        if added > 0 {
            last_seq = tx.last_insert_rowid();
        }
        inserted += added;
    }
    roll_up.write(tx)?;
    roll_ups.write(tx)?;
    search::SessionHours::of(rows).write(tx)?;
    Ok(inserted)
}

// ---- import ledger and usage history (claude-relay-service import) -----------------------------

/// Usage figures of one key, model and day: a `usage_daily` row, or what an import contributed
/// to one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UsageFigures {
    pub requests: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cache_creation_tokens: i64,
    pub cache_read_tokens: i64,
    /// USD.
    pub cost: f64,
}

impl UsageFigures {
    fn negated(self) -> Self {
        Self {
            requests: -self.requests,
            input_tokens: -self.input_tokens,
            output_tokens: -self.output_tokens,
            cache_creation_tokens: -self.cache_creation_tokens,
            cache_read_tokens: -self.cache_read_tokens,
            cost: -self.cost,
        }
    }
}

/// One `usage_daily` row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UsageDay {
    pub key_id: String,
    pub model: String,
    /// `YYYY-MM-DD` (UTC).
    pub day: String,
    #[serde(flatten)]
    pub usage: UsageFigures,
}

/// What an import contributes to one `usage_daily` row, under a stable ledger `item` name (kept
/// in `import_history`, so a re-import applies only what changed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UsageContribution {
    pub item: String,
    pub key_id: String,
    pub model: String,
    /// `YYYY-MM-DD` (UTC).
    pub day: String,
    #[serde(flatten)]
    pub usage: UsageFigures,
}

/// The latest `applied` entry of one `import_history` item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportEntry {
    pub sha256: String,
    pub detail: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A row with a distinct value in every column, so a column bound in the wrong place shows.
    fn row(id: &str, input_tokens: i64) -> RequestLog {
        RequestLog {
            id: id.to_string(),
            status: "success".into(),
            initial_time: "2026-11-21T10:00:00.000Z".into(),
            first_token_time: Some("2026-11-21T10:00:00.100Z".into()),
            complete_time: Some("2026-11-21T10:00:00.900Z".into()),
            duration_ms: 900,
            provider: "claude".into(),
            provider_name: "api.anthropic.com".into(),
            model: "claude-sonnet-4-5".into(),
            response_model: "claude-sonnet-4-5-20250929".into(),
            input_tokens,
            output_tokens: 2,
            cache_creation_input_tokens: 3,
            cache_read_input_tokens: 4,
            total_tokens: input_tokens + 9,
            price: 0.5,
            input_cost: 0.1,
            output_cost: 0.2,
            cache_creation_cost: 0.125,
            cache_read_cost: 0.075,
            http_status: 200,
            stream: true,
            channel_id: "c0ffee01".into(),
            channel_name: "main".into(),
            endpoint: "messages".into(),
            client_id: "key-1".into(),
            session_id: "session-9".into(),
            error: "no error".into(),
            upstream_error: "no upstream error".into(),
            failover_info: "[]".into(),
            unpriced: true,
        }
    }

    fn rows(ids: std::ops::Range<usize>) -> Vec<RequestLog> {
        ids.map(|n| row(&format!("r{n:03}"), 10)).collect()
    }

    fn usage(db: &LogDb) -> UsageFigures {
        let days = db.usage_daily(Some("key-1")).unwrap();
        assert_eq!(days.len(), 1, "one key, one model, one day");
        days[0].usage
    }

    #[test]
    fn batches_of_any_length_are_inserted_and_rolled_up() {
        let dir = tempfile::tempdir().unwrap();
        let db = LogDb::open(&dir.path().join("logs.sqlite"), OpenOptions::default()).unwrap();
        // Two full slices of ROWS_PER_INSERT and a remainder.
        let batch = rows(0..2 * ROWS_PER_INSERT + 3);
        assert_eq!(db.insert_logs(&batch).unwrap(), batch.len());
        assert_eq!(db.count_logs().unwrap(), batch.len() as u64);
        // Newest first: the rows of the full slices and of the remainder, every column as written.
        let mut stored = db
            .recent_logs(u32::try_from(batch.len()).unwrap(), None)
            .unwrap();
        stored.reverse();
        assert_eq!(stored, batch, "every column comes back as written");
        let figures = usage(&db);
        assert_eq!(figures.requests, batch.len() as i64);
        assert_eq!(figures.input_tokens, 10 * batch.len() as i64);
    }

    #[test]
    fn known_ids_are_skipped_and_not_counted_twice() {
        let dir = tempfile::tempdir().unwrap();
        let db = LogDb::open(&dir.path().join("logs.sqlite"), OpenOptions::default()).unwrap();
        let first = rows(0..5);
        assert_eq!(db.insert_logs(&first).unwrap(), 5);
        // A full slice mixing known ids, new ids and one id twice, then a remainder that is all
        // known: only the four new rows count.
        let mut again = rows(3..5);
        again.extend(rows(5..9));
        again.push(row("r006", 1000));
        again.push(row("r000", 1000));
        again.extend(rows(0..3));
        assert_eq!(again.len(), ROWS_PER_INSERT + 3);
        assert_eq!(db.insert_logs(&again).unwrap(), 4);
        assert_eq!(db.count_logs().unwrap(), 9);
        let figures = usage(&db);
        assert_eq!(figures.requests, 9);
        assert_eq!(figures.input_tokens, 90, "the repeated ids added no tokens");
        assert!((figures.cost - 4.5).abs() < 1e-9);
    }
}
