//! The read side of `logs.sqlite`: admin log listings, usage, quota reads and the limit seeding,
//! on connections of their own so they never wait for the writer's mutex.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use super::sink::lock;
use super::{ImportEntry, LOG_COLUMNS, RequestLog, UsageContribution, UsageDay, UsageFigures};
use crate::store::StoreError;

/// How long a read waits for a lock before it fails. In WAL mode a read only waits in rare
/// cases (a checkpoint resetting the WAL, recovery after a crash); under exclusive locking it
/// waits for the writer's mutex instead, and this does not apply.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Idle read-only connections kept for the next read; more may be open at once, the extra ones
/// close when they come back.
const MAX_IDLE: usize = 4;

/// Read access to `logs.sqlite` that does not wait for the writer.
///
/// Each read checks a read-only connection (`SQLITE_OPEN_READ_ONLY`, `busy_timeout`) out of a
/// small pool and puts it back afterwards. In WAL mode such a connection reads the last
/// committed state while the writer's transaction is open, and the writer never waits for it.
/// A pool rather than a connection per call: a fresh connection must open the file and parse
/// the schema before its first query (measured in a debug build: `COUNT(*)` on an empty table
/// ~0.4 ms on a fresh connection, ~0.01 ms on a pooled one), and a kept connection also keeps
/// its prepared statements and page cache. At most four idle connections are kept (`MAX_IDLE`):
/// reads come from a few blocking threads at a time.
///
/// With `locking_mode=EXCLUSIVE` (network and FUSE file systems) the write connection holds the
/// file lock for good and no second connection can read, so the reader uses the write
/// connection, behind its mutex, with `PRAGMA query_only` set while it reads.
#[derive(Clone)]
pub struct LogReader {
    source: Source,
    /// Shared by every clone: usage figures of completed days.
    usage_cache: Arc<super::usage_cache::UsageCache>,
}

#[derive(Clone)]
enum Source {
    Pool(Arc<Pool>),
    Shared(Arc<Mutex<Connection>>),
}

struct Pool {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl std::fmt::Debug for LogReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogReader")
            .field("shares_write_connection", &self.shares_write_connection())
            .finish()
    }
}

fn open_read_only(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    Ok(conn)
}

/// A pooled connection, back into the pool when dropped.
struct Lease<'a> {
    pool: &'a Pool,
    conn: Option<Connection>,
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            let mut idle = lock_idle(&self.pool.idle);
            if idle.len() < MAX_IDLE {
                idle.push(conn);
            }
        }
    }
}

fn lock_idle(idle: &Mutex<Vec<Connection>>) -> std::sync::MutexGuard<'_, Vec<Connection>> {
    idle.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Pool {
    fn lease(&self) -> rusqlite::Result<Lease<'_>> {
        let idle = lock_idle(&self.idle).pop();
        let conn = match idle {
            Some(conn) => conn,
            None => open_read_only(&self.path)?,
        };
        Ok(Lease {
            pool: self,
            conn: Some(conn),
        })
    }
}

/// Sets `query_only` on the shared write connection for one read, and clears it again even if
/// the read panics.
struct QueryOnly<'a>(&'a Connection);

impl<'a> QueryOnly<'a> {
    fn set(conn: &'a Connection) -> rusqlite::Result<Self> {
        conn.pragma_update(None, "query_only", true)?;
        Ok(Self(conn))
    }
}

impl Drop for QueryOnly<'_> {
    fn drop(&mut self) {
        if let Err(err) = self.0.pragma_update(None, "query_only", false) {
            tracing::error!(error = %err, "logs.sqlite: could not clear query_only after a read");
        }
    }
}

impl LogReader {
    /// Read-only connections of its own to the database at `path`. Opens and tries one now, so
    /// a reader that cannot work fails here rather than at its first read.
    pub(super) fn pooled(path: &Path) -> rusqlite::Result<Self> {
        let first = open_read_only(path)?;
        first.query_row("PRAGMA user_version", [], |row| row.get::<_, i64>(0))?;
        Ok(Self {
            source: Source::Pool(Arc::new(Pool {
                path: path.to_path_buf(),
                idle: Mutex::new(vec![first]),
            })),
            usage_cache: Arc::default(),
        })
    }

    /// Reads on the write connection (exclusive locking).
    pub(super) fn shared(conn: Arc<Mutex<Connection>>) -> Self {
        Self {
            source: Source::Shared(conn),
            usage_cache: Arc::default(),
        }
    }

    /// True when reads go through the write connection (and so wait for the writer).
    #[must_use]
    pub fn shares_write_connection(&self) -> bool {
        matches!(self.source, Source::Shared(_))
    }

    /// Run `read` on a connection that cannot write. Keep it short: under exclusive locking it
    /// holds the writer's mutex. Never hold it across an `.await`.
    pub fn read<T>(
        &self,
        read: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        self.run(true, read)
    }

    /// `work` on a read-only connection, or on the shared write connection, with `query_only`
    /// set there if `query_only`.
    fn run<T>(
        &self,
        query_only: bool,
        work: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        match &self.source {
            Source::Pool(pool) => {
                let lease = pool.lease()?;
                let conn = lease.conn.as_ref().ok_or_else(|| {
                    StoreError::Backend("logs.sqlite: reader connection missing".into())
                })?;
                Ok(work(conn)?)
            }
            Source::Shared(conn) => {
                let conn = lock(conn);
                let _query_only = query_only.then(|| QueryOnly::set(&conn)).transpose()?;
                Ok(work(&conn)?)
            }
        }
    }

    pub fn count_logs(&self) -> Result<u64, StoreError> {
        let count: i64 =
            self.read(|conn| conn.query_row("SELECT COUNT(*) FROM request_log", [], |r| r.get(0)))?;
        Ok(u64::try_from(count).unwrap_or(0))
    }

    /// The newest rows first, at most `limit`, optionally of one client key.
    pub fn recent_logs(
        &self,
        limit: u32,
        client_id: Option<&str>,
    ) -> Result<Vec<RequestLog>, StoreError> {
        static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
            format!(
                "SELECT {LOG_COLUMNS} FROM request_log WHERE (?1 IS NULL OR client_id = ?1) ORDER BY seq DESC LIMIT ?2"
            )
        });
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(&SQL)?;
            let rows = stmt.query_map(params![client_id, limit], row_to_log)?;
            rows.collect()
        })
    }

    /// The hash of the last successfully applied content of `item`, if any.
    pub fn last_applied(&self, source: &str, item: &str) -> Result<Option<String>, StoreError> {
        self.read(|conn| {
            conn.prepare_cached(
                "SELECT sha256 FROM import_history WHERE source = ?1 AND item = ?2 AND outcome = 'applied' ORDER BY id DESC LIMIT 1",
            )?
            .query_row(params![source, item], |row| row.get(0))
            .optional()
        })
    }

    pub fn channel_quota(&self, channel_id: &str) -> Result<Option<(f64, String)>, StoreError> {
        self.read(|conn| {
            conn.prepare_cached(
                "SELECT used, last_reset_at FROM channel_quota_usage WHERE channel_id = ?1",
            )?
            .query_row(params![channel_id], |row| Ok((row.get(0)?, row.get(1)?)))
            .optional()
        })
    }

    /// The latest `applied` entry of every item of `source` whose name starts with `prefix`.
    pub fn latest_imports(
        &self,
        source: &str,
        prefix: &str,
    ) -> Result<BTreeMap<String, ImportEntry>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT item, sha256, detail FROM import_history WHERE id IN (
                   SELECT MAX(id) FROM import_history
                   WHERE source = ?1 AND outcome = 'applied' AND substr(item, 1, length(?2)) = ?2
                   GROUP BY item)",
            )?;
            let rows = stmt.query_map(params![source, prefix], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    ImportEntry {
                        sha256: row.get(1)?,
                        detail: row.get(2)?,
                    },
                ))
            })?;
            rows.collect()
        })
    }

    /// The usage contributions of `source` recorded so far, by item.
    pub fn usage_contributions(
        &self,
        source: &str,
    ) -> Result<BTreeMap<String, UsageContribution>, StoreError> {
        self.latest_imports(source, "usage/")?
            .into_iter()
            .map(|(item, entry)| {
                serde_json::from_str(&entry.detail)
                    .map(|c| (item.clone(), c))
                    .map_err(|e| StoreError::Backend(format!("import_history item {item}: {e}")))
            })
            .collect()
    }

    /// `usage_daily` rows, optionally of one key, ordered by key, day and model.
    pub fn usage_daily(&self, key_id: Option<&str>) -> Result<Vec<UsageDay>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT key_id, model, day, requests, input_tokens, output_tokens, cache_creation_tokens, cache_read_tokens, cost
                 FROM usage_daily WHERE (?1 IS NULL OR key_id = ?1) ORDER BY key_id, day, model",
            )?;
            let rows = stmt.query_map(params![key_id], |row| {
                Ok(UsageDay {
                    key_id: row.get(0)?,
                    model: row.get(1)?,
                    day: row.get(2)?,
                    usage: UsageFigures {
                        requests: row.get(3)?,
                        input_tokens: row.get(4)?,
                        output_tokens: row.get(5)?,
                        cache_creation_tokens: row.get(6)?,
                        cache_read_tokens: row.get(7)?,
                        cost: row.get(8)?,
                    },
                })
            })?;
            rows.collect()
        })
    }

    /// Usage figures from the roll-up tables (never `request_log`), at most `limit` groups.
    pub fn usage(
        &self,
        query: &super::UsageQuery,
        limit: usize,
    ) -> Result<super::UsageReport, StoreError> {
        self.read(|conn| super::rollup::read_usage(conn, query, limit, &self.usage_cache))
    }

    /// Consistent online copy of the database (`VACUUM INTO`), of the last committed state.
    pub fn backup_to(&self, target: &Path) -> Result<(), StoreError> {
        // A read-only connection may `VACUUM INTO` (it writes only the target), but
        // `query_only` refuses it, so on the shared connection it runs without.
        self.run(false, |conn| {
            conn.execute("VACUUM INTO ?1", params![target.to_string_lossy()])
                .map(drop)
        })
    }
}

pub(super) fn row_to_log(row: &rusqlite::Row<'_>) -> rusqlite::Result<RequestLog> {
    Ok(RequestLog {
        id: row.get(0)?,
        status: Cow::Owned(row.get(1)?),
        initial_time: row.get(2)?,
        first_token_time: row.get(3)?,
        complete_time: row.get(4)?,
        duration_ms: row.get(5)?,
        provider: row.get(6)?,
        provider_name: row.get(7)?,
        model: row.get(8)?,
        response_model: row.get(9)?,
        input_tokens: row.get(10)?,
        output_tokens: row.get(11)?,
        cache_creation_input_tokens: row.get(12)?,
        cache_read_input_tokens: row.get(13)?,
        total_tokens: row.get(14)?,
        price: row.get(15)?,
        input_cost: row.get(16)?,
        output_cost: row.get(17)?,
        cache_creation_cost: row.get(18)?,
        cache_read_cost: row.get(19)?,
        http_status: row.get(20)?,
        stream: row.get(21)?,
        channel_id: row.get(22)?,
        channel_name: row.get(23)?,
        endpoint: Cow::Owned(row.get(24)?),
        client_id: row.get(25)?,
        session_id: row.get(26)?,
        error: row.get(27)?,
        upstream_error: row.get(28)?,
        failover_info: row.get(29)?,
        unpriced: row.get(30)?,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::{MutexGuard, mpsc};
    use std::time::Duration;

    use super::*;
    use crate::store::sqlite::{LogDb, OpenOptions};

    /// How long a read may take before it counts as waiting for the writer.
    const BOUND: Duration = Duration::from_secs(5);

    fn open(dir: &tempfile::TempDir, exclusive_locking: bool) -> LogDb {
        LogDb::open(
            &dir.path().join("logs.sqlite"),
            OpenOptions { exclusive_locking },
        )
        .unwrap()
    }

    fn row(id: &str) -> RequestLog {
        RequestLog {
            id: id.into(),
            status: "success".into(),
            initial_time: "2026-11-21T10:00:00.000Z".into(),
            client_id: "key-1".into(),
            model: "m".into(),
            ..RequestLog::default()
        }
    }

    /// Insert `id` on the write connection inside an open `BEGIN IMMEDIATE` transaction, as the
    /// writer does during a batch; the transaction stays open until the guard drops.
    fn hold_write_transaction<'a>(db: &'a LogDb, id: &str) -> MutexGuard<'a, Connection> {
        let conn = db.lock();
        conn.execute_batch("BEGIN IMMEDIATE").unwrap();
        conn.execute(
            "INSERT INTO request_log (id, status, initial_time) VALUES (?1, 'success', '2026-11-21T10:00:01.000Z')",
            [id],
        )
        .unwrap();
        conn
    }

    #[test]
    fn a_reader_is_cheap_to_share() {
        fn shareable<T: Clone + Send + Sync + 'static>() {}
        shareable::<LogReader>();
        shareable::<crate::store::sqlite::LogSink>();
    }

    #[test]
    fn a_read_completes_while_the_writer_holds_a_transaction() {
        let dir = tempfile::tempdir().unwrap();
        let db = open(&dir, false);
        assert!(!db.reader().shares_write_connection());
        db.insert_logs(&[row("committed")]).unwrap();

        let write = hold_write_transaction(&db, "pending");
        let reader = db.reader();
        let (done, result) = mpsc::channel();
        let thread = std::thread::spawn(move || {
            let count = reader.count_logs().unwrap();
            let ids: Vec<String> = reader
                .recent_logs(10, None)
                .unwrap()
                .into_iter()
                .map(|r| r.id)
                .collect();
            done.send((count, ids)).unwrap();
        });
        let (count, ids) = result
            .recv_timeout(BOUND)
            .expect("the read did not wait for the writer's transaction");
        assert_eq!(count, 1, "only the committed row is visible");
        assert_eq!(ids, ["committed"]);
        write.execute_batch("COMMIT").unwrap();
        drop(write);
        thread.join().unwrap();
        assert_eq!(db.reader().count_logs().unwrap(), 2, "committed rows show");
    }

    #[test]
    fn readers_see_what_the_log_writer_committed() {
        let dir = tempfile::tempdir().unwrap();
        let db = open(&dir, false);
        let reader = db.reader();
        let writer = crate::store::sqlite::writer::LogWriter::start(
            db.sink(),
            crate::store::sqlite::writer::WriterConfig::default(),
        )
        .unwrap();
        for n in 0..3 {
            assert!(writer.submit(row(&format!("r{n}"))));
        }
        writer.flush();
        assert_eq!(reader.count_logs().unwrap(), 3);
        assert_eq!(
            reader.usage_daily(Some("key-1")).unwrap()[0].usage.requests,
            3
        );
        writer.close();
    }

    #[test]
    fn many_reads_at_once_get_connections_and_few_stay_idle() {
        let dir = tempfile::tempdir().unwrap();
        let db = open(&dir, false);
        db.insert_logs(&[row("a")]).unwrap();
        let reader = db.reader();
        // (Checked first: on the shared connection the reads below would wait for each other.)
        let Source::Pool(pool) = &reader.source else {
            panic!("a pooled reader");
        };
        let readers = MAX_IDLE * 2;
        let barrier = std::sync::Barrier::new(readers);
        std::thread::scope(|scope| {
            for _ in 0..readers {
                scope.spawn(|| {
                    reader
                        .read(|conn| {
                            // Every read holds its connection until all of them hold one.
                            barrier.wait();
                            conn.query_row("SELECT COUNT(*) FROM request_log", [], |r| {
                                r.get::<_, i64>(0)
                            })
                        })
                        .unwrap()
                });
            }
        });
        assert_eq!(lock_idle(&pool.idle).len(), MAX_IDLE);
    }

    fn assert_cannot_write(reader: &LogReader) {
        let err = reader
            .read(|conn| conn.execute("DELETE FROM request_log", []))
            .unwrap_err();
        assert!(
            err.to_string().contains("readonly"),
            "a reader cannot write: {err}"
        );
    }

    #[test]
    fn a_reader_cannot_write() {
        let dir = tempfile::tempdir().unwrap();
        let db = open(&dir, false);
        db.insert_logs(&[row("a")]).unwrap();
        assert_cannot_write(&db.reader());
        assert_eq!(db.count_logs().unwrap(), 1);
    }

    #[test]
    fn under_exclusive_locking_reads_share_the_write_connection() {
        let dir = tempfile::tempdir().unwrap();
        let db = open(&dir, true);
        let reader = db.reader();
        assert!(reader.shares_write_connection());
        db.insert_logs(&[row("a")]).unwrap();

        // Why: a connection of its own cannot even read the file.
        let own = open_read_only(&dir.path().join("logs.sqlite")).unwrap();
        own.busy_timeout(Duration::ZERO).unwrap();
        let err = own
            .query_row("SELECT COUNT(*) FROM request_log", [], |r| {
                r.get::<_, i64>(0)
            })
            .unwrap_err();
        assert_eq!(
            err.sqlite_error_code(),
            Some(rusqlite::ErrorCode::DatabaseBusy),
            "{err}"
        );

        // Reads see committed rows, cannot write, and leave the connection writable.
        assert_eq!(reader.count_logs().unwrap(), 1);
        assert_cannot_write(&reader);
        db.insert_logs(&[row("b")]).unwrap();
        assert_eq!(reader.count_logs().unwrap(), 2);

        // A read waits for the writer's transaction, and completes once it ends.
        let write = hold_write_transaction(&db, "c");
        let (done, result) = mpsc::channel();
        let thread = std::thread::spawn(move || done.send(reader.count_logs().unwrap()).unwrap());
        assert!(
            result.recv_timeout(Duration::from_millis(200)).is_err(),
            "under exclusive locking a read waits for the writer"
        );
        write.execute_batch("COMMIT").unwrap();
        drop(write);
        assert_eq!(result.recv_timeout(BOUND).unwrap(), 3);
        thread.join().unwrap();
    }

    #[test]
    fn a_read_that_panics_leaves_the_shared_connection_writable() {
        let dir = tempfile::tempdir().unwrap();
        let db = open(&dir, true);
        let reader = db.reader();
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            reader.read(|_| -> rusqlite::Result<()> { panic!("a read fails") })
        }));
        assert!(panicked.is_err());
        db.insert_logs(&[row("a")]).unwrap();
        assert_eq!(db.count_logs().unwrap(), 1);
    }

    #[test]
    fn backups_copy_the_committed_state_in_both_modes() {
        for exclusive_locking in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            let db = open(&dir, exclusive_locking);
            db.insert_logs(&[row("a"), row("b")]).unwrap();
            let target = dir.path().join("copy.sqlite");
            db.backup_to(&target)
                .unwrap_or_else(|e| panic!("{exclusive_locking}: {e}"));
            let copy = LogDb::open(&target, OpenOptions::default()).unwrap();
            assert_eq!(copy.count_logs().unwrap(), 2, "{exclusive_locking}");
            // The source stays writable.
            db.insert_logs(&[row("c")]).unwrap();
        }
    }
}
