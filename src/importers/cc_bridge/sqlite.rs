//! cc-bridge's SQLite database (`request_logs.db` in JSON mode, `cc-bridge.db` in DB mode),
//! read without ever writing to it.
//!
//! Columns are looked up by name, so databases of older cc-bridge versions (which lack later
//! columns) import with defaults for what they miss.
//!
//! Opening: without a pending write-ahead log the file is opened `immutable` (no lock, no
//! `-shm`/`-wal` created next to it). With a non-empty `-wal` (cc-bridge running, or stopped
//! without a checkpoint) the database and its WAL are copied to a private temporary folder and
//! read there, so the rows still in the WAL are imported and the source stays untouched.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags, Row};
use serde_json::{Map, Value};
use time::OffsetDateTime;

use super::{ImportError, timestamp};
use crate::domain::key::{KeyAllowlists, KeyLimits, KeyStatus};
use crate::domain::{ClientKey, Pool};
use crate::store::sqlite::RequestLog;

/// The database file names, preferred first.
pub const DATABASE_FILES: [&str; 2] = ["cc-bridge.db", "request_logs.db"];

/// The cc-bridge database in `dir`, if any (`cc-bridge.db` wins when both exist).
#[must_use]
pub fn find_database(dir: &Path) -> Option<PathBuf> {
    DATABASE_FILES
        .iter()
        .map(|name| dir.join(name))
        .find(|path| path.is_file())
}

/// A source record that was not imported: `(item, reason)`.
pub type Skipped = (String, String);

/// An `api_keys` row as a relaybox key.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportedKey {
    /// Id `ccb-{id}`, hash = cc-bridge's `key_hash` (SHA-256 hex of the whole key, the same hash
    /// relaybox uses), display prefix = `key_prefix`.
    pub key: ClientKey,
    /// Allowlist entries that older cc-bridge versions stored as channel indexes (JSON numbers)
    /// rather than stable ids; resolved against `config.json` by the importer.
    pub legacy_channel_indexes: Vec<(Pool, i64)>,
}

/// A `user_aliases` row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserAlias {
    pub user_id: String,
    pub alias: String,
    pub created_at: String,
    pub updated_at: String,
}

/// What was read from the database. Request logs are streamed with
/// [`CcBridgeDb::for_each_log_batch`] (they can be millions of rows).
pub struct CcBridgeDb {
    pub path: PathBuf,
    pub keys: Vec<ImportedKey>,
    /// `api_keys` rows that cannot be imported: `(item, reason)`.
    pub skipped_keys: Vec<(String, String)>,
    pub user_aliases: Vec<UserAlias>,
    pub request_log_count: u64,
    /// Things worth telling the operator (read from a copy, DB-mode config not imported, …).
    pub notes: Vec<String>,
    log_columns: BTreeSet<String>,
    // Field order matters: the connection closes before the private copy is removed.
    conn: Connection,
    _copy: Option<TempCopy>,
}

impl std::fmt::Debug for CcBridgeDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CcBridgeDb")
            .field("path", &self.path)
            .field("keys", &self.keys.len())
            .field("user_aliases", &self.user_aliases.len())
            .field("request_log_count", &self.request_log_count)
            .finish_non_exhaustive()
    }
}

fn sqlite_error(path: &Path, err: &rusqlite::Error) -> ImportError {
    ImportError::Database {
        path: path.to_path_buf(),
        reason: err.to_string(),
    }
}

/// Open cc-bridge's database read-only and read its keys and user aliases.
pub fn read_sqlite(path: &Path) -> Result<CcBridgeDb, ImportError> {
    let (conn, copy) = open_read_only(path)?;
    let fail = |err: rusqlite::Error| sqlite_error(path, &err);
    let mut notes = Vec::new();
    if copy.is_some() {
        notes.push(format!(
            "{} had a pending write-ahead log (is cc-bridge still running?); it was read from a private copy. Stop cc-bridge first for a consistent snapshot.",
            path.display()
        ));
    }
    let tables = table_columns(&conn).map_err(fail)?;

    let (keys, skipped_keys) = match tables.get("api_keys") {
        Some(columns) => read_keys(&conn, columns).map_err(fail)?,
        None => {
            notes.push("the database has no api_keys table (cc-bridge before API keys): no client keys imported".into());
            (Vec::new(), Vec::new())
        }
    };
    let user_aliases = match tables.get("user_aliases") {
        Some(columns) => read_user_aliases(&conn, columns).map_err(fail)?,
        None => Vec::new(),
    };
    let (log_columns, request_log_count) = match tables.get("request_logs") {
        Some(columns) => {
            let count: i64 = conn
                .query_row("SELECT COUNT(*) FROM request_logs", [], |row| row.get(0))
                .map_err(fail)?;
            (columns.clone(), u64::try_from(count).unwrap_or(0))
        }
        None => (BTreeSet::new(), 0),
    };
    if tables.contains_key("channels") {
        let channels: i64 = conn
            .query_row("SELECT COUNT(*) FROM channels", [], |row| row.get(0))
            .unwrap_or(0);
        if channels > 0 {
            notes.push(format!(
                "the database holds {channels} channel(s): cc-bridge ran in database mode, where config.json may be stale. Only config.json was imported; export a fresh config.json from cc-bridge (backup) if they differ."
            ));
        }
    }
    Ok(CcBridgeDb {
        path: path.to_path_buf(),
        keys,
        skipped_keys,
        user_aliases,
        request_log_count,
        notes,
        log_columns,
        conn,
        _copy: copy,
    })
}

impl CcBridgeDb {
    /// Read `request_logs` in batches of `batch_size` rows (in insertion order) and hand each
    /// batch to `handle`. Returns the rows that could not be read: `(item, reason)`.
    pub fn for_each_log_batch(
        &self,
        batch_size: usize,
        mut handle: impl FnMut(Vec<RequestLog>) -> Result<(), ImportError>,
    ) -> Result<Vec<(String, String)>, ImportError> {
        let mut skipped = Vec::new();
        if self.log_columns.is_empty() {
            return Ok(skipped);
        }
        let fail = |err: rusqlite::Error| sqlite_error(&self.path, &err);
        let columns: Vec<&str> = self.log_columns.iter().map(String::as_str).collect();
        let quoted: Vec<String> = columns
            .iter()
            .map(|c| format!("\"{}\"", c.replace('"', "\"\"")))
            .collect();
        let sql = format!(
            "SELECT {} FROM request_logs ORDER BY rowid",
            quoted.join(", ")
        );
        let mut stmt = self.conn.prepare(&sql).map_err(fail)?;
        let index: HashMap<&str, usize> =
            columns.iter().enumerate().map(|(i, c)| (*c, i)).collect();
        let mut rows = stmt.query([]).map_err(fail)?;
        let mut batch = Vec::with_capacity(batch_size);
        let mut position: u64 = 0;
        while let Some(row) = rows.next().map_err(fail)? {
            position += 1;
            let cols = Cols { row, index: &index };
            match log_from_row(&cols) {
                Some(log) => batch.push(log),
                None => skipped.push((
                    format!("request_logs row {position}"),
                    "it has no id".to_string(),
                )),
            }
            if batch.len() >= batch_size {
                handle(std::mem::replace(
                    &mut batch,
                    Vec::with_capacity(batch_size),
                ))?;
            }
        }
        if !batch.is_empty() {
            handle(batch)?;
        }
        Ok(skipped)
    }

    /// All request-log rows at once (small databases and tests).
    pub fn request_logs(&self) -> Result<Vec<RequestLog>, ImportError> {
        let mut all = Vec::new();
        self.for_each_log_batch(1000, |batch| {
            all.extend(batch);
            Ok(())
        })?;
        Ok(all)
    }
}

/// A private temporary folder holding a copy of the database; removed on drop.
struct TempCopy {
    dir: PathBuf,
}

impl Drop for TempCopy {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn open_read_only(path: &Path) -> Result<(Connection, Option<TempCopy>), ImportError> {
    let io = |err: std::io::Error| ImportError::Io {
        path: path.to_path_buf(),
        source: err,
    };
    let absolute = std::path::absolute(path).map_err(io)?;
    let metadata = std::fs::metadata(&absolute).map_err(io)?;
    if !metadata.is_file() {
        return Err(ImportError::Database {
            path: path.to_path_buf(),
            reason: "not a file".into(),
        });
    }
    let mut wal = absolute.clone().into_os_string();
    wal.push("-wal");
    let wal = PathBuf::from(wal);
    let pending_wal = std::fs::metadata(&wal).is_ok_and(|m| m.len() > 0);

    if !pending_wal {
        let uri = format!("file:{}?mode=ro&immutable=1", uri_path(&absolute));
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(uri, flags).map_err(|e| sqlite_error(path, &e))?;
        check_readable(&conn, path)?;
        return Ok((conn, None));
    }

    let dir = std::env::temp_dir().join(format!("relaybox-ccb-import-{}", crate::domain::new_id()));
    std::fs::create_dir_all(&dir).map_err(|e| ImportError::Io {
        path: dir.clone(),
        source: e,
    })?;
    let copy = TempCopy { dir };
    let target = copy.dir.join("source.db");
    std::fs::copy(&absolute, &target).map_err(io)?;
    std::fs::copy(&wal, copy.dir.join("source.db-wal")).map_err(|e| ImportError::Io {
        path: wal.clone(),
        source: e,
    })?;
    let conn = Connection::open(&target).map_err(|e| sqlite_error(path, &e))?;
    check_readable(&conn, path)?;
    Ok((conn, Some(copy)))
}

/// Fail early, with the file named, when it is not a SQLite database.
fn check_readable(conn: &Connection, path: &Path) -> Result<(), ImportError> {
    conn.query_row("SELECT COUNT(*) FROM sqlite_master", [], |row| {
        row.get::<_, i64>(0)
    })
    .map(|_| ())
    .map_err(|e| ImportError::Database {
        path: path.to_path_buf(),
        reason: format!("not a readable SQLite database: {e}"),
    })
}

/// Percent-encode a path for a `file:` URI (everything but unreserved characters and `/`).
fn uri_path(path: &Path) -> String {
    let mut out = String::new();
    for &byte in path.as_os_str().as_encoded_bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'/' | b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn table_columns(conn: &Connection) -> rusqlite::Result<HashMap<String, BTreeSet<String>>> {
    let mut tables = HashMap::new();
    let names: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")?
        .query_map([], |row| row.get(0))?
        .collect::<Result<_, _>>()?;
    for name in names {
        let mut stmt = conn.prepare("SELECT name FROM pragma_table_info(?1)")?;
        let columns: BTreeSet<String> = stmt
            .query_map([&name], |row| row.get(0))?
            .collect::<Result<_, _>>()?;
        tables.insert(name, columns);
    }
    Ok(tables)
}

/// A row with its columns looked up by name; a missing column reads as NULL.
struct Cols<'r, 'i> {
    row: &'r Row<'r>,
    index: &'i HashMap<&'i str, usize>,
}

impl Cols<'_, '_> {
    fn get(&self, name: &str) -> ValueRef<'_> {
        self.index
            .get(name)
            .and_then(|&i| self.row.get_ref(i).ok())
            .unwrap_or(ValueRef::Null)
    }

    fn text(&self, name: &str) -> Option<String> {
        match self.get(name) {
            ValueRef::Null => None,
            ValueRef::Integer(i) => Some(i.to_string()),
            ValueRef::Real(f) => Some(f.to_string()),
            ValueRef::Text(t) | ValueRef::Blob(t) => Some(String::from_utf8_lossy(t).into_owned()),
        }
    }

    fn string(&self, name: &str) -> String {
        self.text(name).unwrap_or_default()
    }

    fn int_opt(&self, name: &str) -> Option<i64> {
        match self.get(name) {
            ValueRef::Integer(i) => Some(i),
            ValueRef::Real(f) => Some(f as i64),
            ValueRef::Text(t) => std::str::from_utf8(t)
                .ok()
                .and_then(|s| s.trim().parse().ok()),
            ValueRef::Null | ValueRef::Blob(_) => None,
        }
    }

    fn int(&self, name: &str) -> i64 {
        self.int_opt(name).unwrap_or(0)
    }

    fn real(&self, name: &str) -> f64 {
        match self.get(name) {
            ValueRef::Integer(i) => i as f64,
            ValueRef::Real(f) => f,
            ValueRef::Text(t) => std::str::from_utf8(t)
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .unwrap_or(0.0),
            ValueRef::Null | ValueRef::Blob(_) => 0.0,
        }
    }

    fn boolean(&self, name: &str) -> bool {
        match self.get(name) {
            ValueRef::Integer(i) => i != 0,
            ValueRef::Real(f) => f != 0.0,
            ValueRef::Text(t) => {
                matches!(
                    String::from_utf8_lossy(t)
                        .trim()
                        .to_ascii_lowercase()
                        .as_str(),
                    "1" | "true" | "t" | "yes"
                )
            }
            ValueRef::Null | ValueRef::Blob(_) => false,
        }
    }
}

fn read_keys(
    conn: &Connection,
    columns: &BTreeSet<String>,
) -> rusqlite::Result<(Vec<ImportedKey>, Vec<Skipped>)> {
    let order = if columns.contains("id") {
        " ORDER BY id"
    } else {
        ""
    };
    let mut stmt = conn.prepare(&format!("SELECT * FROM api_keys{order}"))?;
    let names: Vec<String> = stmt.column_names().map(str::to_string).collect();
    let index: HashMap<&str, usize> = names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.as_str(), i))
        .collect();
    let mut rows = stmt.query([])?;
    let mut keys = Vec::new();
    let mut skipped = Vec::new();
    while let Some(row) = rows.next()? {
        let cols = Cols { row, index: &index };
        match key_from_row(&cols) {
            Ok(key) => keys.push(key),
            Err((item, reason)) => skipped.push((item, reason)),
        }
    }
    Ok((keys, skipped))
}

fn key_from_row(cols: &Cols<'_, '_>) -> Result<ImportedKey, (String, String)> {
    let source_id = cols.string("id");
    let name = cols.string("name");
    let item = format!("api_keys id {source_id} ({name})");
    if source_id.trim().is_empty() {
        return Err((item, "it has no id".into()));
    }
    let hash = cols.string("key_hash").trim().to_ascii_lowercase();
    if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err((item, "key_hash is not a SHA-256 hex digest".into()));
    }
    let status = match cols
        .text("status")
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
        .as_str()
    {
        "" | "active" => KeyStatus::Active,
        "disabled" => KeyStatus::Disabled,
        "revoked" => KeyStatus::Revoked,
        other => return Err((item, format!("unknown status '{other}'"))),
    };
    let mut legacy = Vec::new();
    let mut list = |column: &str, pool: Option<Pool>| -> Vec<String> {
        let (strings, numbers) = json_list(cols.text(column).as_deref());
        if let Some(pool) = pool {
            legacy.extend(numbers.into_iter().map(|n| (pool, n)));
        }
        strings
    };
    let allow = KeyAllowlists {
        endpoints: list("allowed_endpoints", None),
        channels_messages: list("allowed_channels_msg", Some(Pool::Messages)),
        channels_responses: list("allowed_channels_resp", Some(Pool::Responses)),
        channels_gemini: list("allowed_channels_gemini", Some(Pool::Gemini)),
        channels_chat: list("allowed_channels_chat", Some(Pool::Chat)),
        models: list("allowed_models", None),
        user_agents: Vec::new(),
    };
    let rpm = cols.int("rate_limit_rpm");
    let created_at = key_time(cols.text("created_at"));
    let updated_at = cols
        .text("updated_at")
        .and_then(|t| timestamp::parse(&t))
        .map_or(created_at, utc);
    let mut extra = Map::new();
    extra.insert("ccBridgeId".into(), Value::String(source_id.clone()));
    if let Some(last_used) = cols
        .text("last_used_at")
        .and_then(|t| timestamp::log_time(&t))
    {
        extra.insert("lastUsedAt".into(), Value::String(last_used));
    }
    let key = ClientKey {
        id: format!("ccb-{}", source_id.trim()),
        name,
        description: cols.string("description"),
        status,
        is_admin: cols.boolean("is_admin"),
        hash,
        display_prefix: cols.string("key_prefix"),
        legacy_hash: None,
        created_at,
        updated_at,
        expiry: None,
        first_used_at: None,
        limits: KeyLimits {
            requests_per_minute: (rpm > 0).then(|| u32::try_from(rpm).unwrap_or(u32::MAX)),
            ..KeyLimits::default()
        },
        allow,
        version: 0,
        extra,
    };
    Ok(ImportedKey {
        key,
        legacy_channel_indexes: legacy,
    })
}

fn utc(t: OffsetDateTime) -> OffsetDateTime {
    t.to_offset(time::UtcOffset::UTC)
}

/// A key time; unreadable or missing times become the Unix epoch (deterministic, so a re-import
/// compares equal).
fn key_time(text: Option<String>) -> OffsetDateTime {
    text.and_then(|t| timestamp::parse(&t))
        .map_or(OffsetDateTime::UNIX_EPOCH, utc)
}

/// A JSON-text list column: strings, and numbers (legacy channel indexes). NULL, `""` and `null`
/// are empty; text that is not JSON is read as a comma-separated list.
fn json_list(text: Option<&str>) -> (Vec<String>, Vec<i64>) {
    let Some(text) = text.map(str::trim).filter(|t| !t.is_empty()) else {
        return (Vec::new(), Vec::new());
    };
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Array(items)) => {
            let mut strings = Vec::new();
            let mut numbers = Vec::new();
            for item in items {
                match item {
                    Value::String(s) => strings.push(s),
                    Value::Number(n) => match n.as_i64() {
                        Some(n) => numbers.push(n),
                        None => strings.push(n.to_string()),
                    },
                    Value::Null => {}
                    other => strings.push(other.to_string()),
                }
            }
            (strings, numbers)
        }
        Ok(Value::Null) => (Vec::new(), Vec::new()),
        Ok(Value::String(s)) => (vec![s], Vec::new()),
        _ => (
            text.split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect(),
            Vec::new(),
        ),
    }
}

fn read_user_aliases(
    conn: &Connection,
    columns: &BTreeSet<String>,
) -> rusqlite::Result<Vec<UserAlias>> {
    if !(columns.contains("user_id") && columns.contains("alias")) {
        return Ok(Vec::new());
    }
    let mut stmt = conn.prepare("SELECT * FROM user_aliases ORDER BY user_id")?;
    let names: Vec<String> = stmt.column_names().map(str::to_string).collect();
    let index: HashMap<&str, usize> = names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.as_str(), i))
        .collect();
    let mut rows = stmt.query([])?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let cols = Cols { row, index: &index };
        let (Some(user_id), Some(alias)) = (cols.text("user_id"), cols.text("alias")) else {
            continue;
        };
        let time_of = |column: &str| {
            cols.text(column)
                .and_then(|t| timestamp::log_time(&t))
                .unwrap_or_default()
        };
        out.push(UserAlias {
            user_id,
            alias,
            created_at: time_of("created_at"),
            updated_at: time_of("updated_at"),
        });
    }
    Ok(out)
}

/// A `request_logs` row as a relaybox row; `None` without an id.
///
/// - `id` → `ccb-{id}` (re-imports skip rows already there).
/// - `status` `completed` → `success` (relaybox's word); the other statuses are kept.
/// - `channel_id` ← `channel_uid` (the stable id; cc-bridge's `channel_id` is a pool index that
///   changes on reorder). Rows without one are resolved by channel name by the importer.
/// - `client_id` ← the imported key (`ccb-{api_key_id}`, `ccb-master` for cc-bridge's master
///   key): relaybox's `client_id` is the client key, and its usage roll-ups are keyed by it.
fn log_from_row(cols: &Cols<'_, '_>) -> Option<RequestLog> {
    let id = cols.text("id").filter(|id| !id.trim().is_empty())?;
    let status = match cols.text("status").unwrap_or_default().trim() {
        "" | "completed" => "success".to_string(),
        other => other.to_string(),
    };
    let initial_time = cols
        .text("initial_time")
        .and_then(|t| timestamp::log_time(&t))
        .or_else(|| {
            cols.text("created_at")
                .and_then(|t| timestamp::log_time(&t))
        })
        .unwrap_or_default();
    let client_id = match cols.int_opt("api_key_id") {
        Some(0) => "ccb-master".to_string(),
        Some(n) => format!("ccb-{n}"),
        None => String::new(),
    };
    Some(RequestLog {
        id: format!("ccb-{}", id.trim()),
        status: status.into(),
        initial_time,
        first_token_time: cols
            .text("first_token_time")
            .and_then(|t| timestamp::log_time(&t)),
        complete_time: cols
            .text("complete_time")
            .and_then(|t| timestamp::log_time(&t)),
        duration_ms: cols.int("duration_ms"),
        provider: cols.string("provider"),
        provider_name: cols.string("provider_name"),
        model: cols.string("model"),
        response_model: cols.string("response_model"),
        input_tokens: cols.int("input_tokens"),
        output_tokens: cols.int("output_tokens"),
        cache_creation_input_tokens: cols.int("cache_creation_input_tokens"),
        cache_read_input_tokens: cols.int("cache_read_input_tokens"),
        total_tokens: cols.int("total_tokens"),
        price: cols.real("price"),
        input_cost: cols.real("input_cost"),
        output_cost: cols.real("output_cost"),
        cache_creation_cost: cols.real("cache_creation_cost"),
        cache_read_cost: cols.real("cache_read_cost"),
        http_status: cols.int("http_status"),
        stream: cols.boolean("stream"),
        channel_id: cols
            .text("channel_uid")
            .map(|s| s.trim().to_string())
            .unwrap_or_default(),
        channel_name: cols.string("channel_name"),
        endpoint: cols.string("endpoint").into(),
        client_id,
        session_id: cols.string("session_id"),
        error: cols.string("error"),
        upstream_error: cols.string("upstream_error"),
        failover_info: cols.string("failover_info"),
        unpriced: false,
    })
}

/// The pool a request-log endpoint belongs to.
pub(crate) fn pool_of_endpoint(endpoint: &str) -> Pool {
    if endpoint.starts_with("/v1/responses") {
        Pool::Responses
    } else if endpoint.starts_with("/v1/chat") {
        Pool::Chat
    } else if endpoint.contains("gemini") || endpoint.starts_with("/v1beta") {
        Pool::Gemini
    } else {
        Pool::Messages
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_lists_take_strings_numbers_and_junk() {
        assert_eq!(json_list(None), (vec![], vec![]));
        assert_eq!(json_list(Some("null")), (vec![], vec![]));
        assert_eq!(
            json_list(Some(r#"["a","b"]"#)),
            (vec!["a".to_string(), "b".to_string()], vec![])
        );
        assert_eq!(json_list(Some("[0, 2]")), (vec![], vec![0, 2]));
        assert_eq!(
            json_list(Some("messages, chat")),
            (vec!["messages".to_string(), "chat".to_string()], vec![])
        );
    }

    #[test]
    fn uri_paths_escape_what_sqlite_would_misread() {
        assert_eq!(
            uri_path(Path::new("/a b/c?d#e%.db")),
            "/a%20b/c%3Fd%23e%25.db"
        );
    }

    #[test]
    fn endpoints_map_to_pools() {
        assert_eq!(pool_of_endpoint("/v1/messages"), Pool::Messages);
        assert_eq!(pool_of_endpoint("/v1/responses"), Pool::Responses);
        assert_eq!(pool_of_endpoint("/v1/chat/completions"), Pool::Chat);
        assert_eq!(pool_of_endpoint("/v1/gemini"), Pool::Gemini);
    }
}
