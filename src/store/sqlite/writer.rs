//! The request-log writer: one OS thread, group commit.
//!
//! The request path calls [`LogWriter::submit`], which never blocks and never waits for a disk:
//! a full queue drops the row and counts it. The thread commits whatever queued while its
//! previous commit ran (`synchronous=FULL`), together with the usage roll-ups, in transactions
//! of at most `max_batch` rows. There is no fixed tick: a kill -9 loses only the rows of the
//! commit in flight and of the one queuing behind it (about two commit times), while under
//! load each commit still carries many rows. Commits start at least `min_interval` apart, so a
//! steady trickle of requests does not cost one fsync per row.
//!
//! A batch that fails to commit (disk full, I/O error) is kept and retried every
//! `retry_delay`; up to `retain_limit` rows are held, later ones are dropped and counted, so a
//! short disk-full episode loses nothing and a long one cannot exhaust memory. While commits
//! fail, [`LogWriter::fault`] says why (`/health` shows it). [`LogWriter::close`] drains the
//! queue and commits the rest, so a graceful stop loses no row.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::{LogSink, RequestLog};

#[derive(Debug, Clone, Copy)]
pub struct WriterConfig {
    /// Rows per transaction at most.
    pub max_batch: usize,
    /// The shortest time between the starts of two commits.
    pub min_interval: Duration,
    /// The queue between the request path and the thread (rows).
    pub capacity: usize,
    /// Rows held for retry after failed commits; past it, new rows are dropped and counted.
    pub retain_limit: usize,
    /// How long to wait before retrying a failed commit.
    pub retry_delay: Duration,
    /// How long [`LogWriter::close`] keeps retrying a failing commit before giving up.
    pub close_deadline: Duration,
}

impl Default for WriterConfig {
    fn default() -> Self {
        Self {
            max_batch: 2000,
            min_interval: Duration::from_millis(25),
            capacity: 65_536,
            // About 60 MiB of typical rows: a minute and a half of 1,000 requests/s.
            retain_limit: 100_000,
            retry_delay: Duration::from_millis(500),
            close_deadline: Duration::from_secs(5),
        }
    }
}

enum Message {
    Row(Box<RequestLog>),
    /// Reply once everything sent before this is committed (or its commit was tried).
    Flush(SyncSender<()>),
}

#[derive(Debug, Default)]
struct Counters {
    submitted: AtomicU64,
    written: AtomicU64,
    /// Refused at submit (queue full, writer closed).
    refused: AtomicU64,
    /// Accepted, then dropped: past `retain_limit`, or still failing at close.
    discarded: AtomicU64,
    batches: AtomicU64,
    commit_failures: AtomicU64,
    /// Rows held after a failed commit (gauge).
    retrying: AtomicU64,
    /// Unix milliseconds of the last dropped row (0: never).
    last_drop_ms: AtomicU64,
    /// Why commits fail, since when; `None` while they work.
    fault: Mutex<Option<WriterFault>>,
}

impl Counters {
    fn note_drop(&self, rows: u64, counter: &AtomicU64) {
        counter.fetch_add(rows, Ordering::Relaxed);
        self.last_drop_ms.store(unix_ms(), Ordering::Relaxed);
    }

    fn set_fault(&self, fault: Option<WriterFault>) {
        *self
            .fault
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = fault;
    }
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Figures for `/metrics` and `/health`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WriterStats {
    /// Accepted and not yet committed (held rows included).
    pub queued: u64,
    pub written: u64,
    /// Rows lost: refused by a full queue, or past the retry bound.
    pub dropped: u64,
    /// Rows held after a failed commit, waiting for the retry.
    pub retrying: u64,
    pub commit_failures: u64,
    pub batches: u64,
    /// Unix milliseconds of the last dropped row, 0 when none was.
    pub last_drop_ms: u64,
}

/// Why the writer cannot commit.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WriterFault {
    /// Unix milliseconds of the first failure of this episode.
    pub since_ms: u64,
    pub error: String,
    pub disk_full: bool,
}

pub struct LogWriter {
    sender: Mutex<Option<SyncSender<Message>>>,
    counters: Arc<Counters>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for LogWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogWriter")
            .field("stats", &self.stats())
            .finish()
    }
}

impl LogWriter {
    /// Start the writer thread on `sink` (a [`LogSink`], or the [`LogDb`](super::LogDb) whose
    /// sink it is).
    pub fn start(sink: impl Into<LogSink>, config: WriterConfig) -> std::io::Result<Self> {
        let sink = sink.into();
        let (sender, receiver) = sync_channel(config.capacity);
        let counters = Arc::new(Counters::default());
        let thread_counters = Arc::clone(&counters);
        let thread = std::thread::Builder::new()
            .name("log-writer".into())
            .spawn(move || run(&sink, &receiver, config, &thread_counters))?;
        Ok(Self {
            sender: Mutex::new(Some(sender)),
            counters,
            thread: Mutex::new(Some(thread)),
        })
    }

    fn sender(&self) -> Option<SyncSender<Message>> {
        self.sender
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Queue a row; never blocks. Returns false (and counts a drop) when the queue is full or
    /// the writer is closed.
    pub fn submit(&self, row: impl Into<Box<RequestLog>>) -> bool {
        let Some(sender) = self.sender() else {
            self.counters.note_drop(1, &self.counters.refused);
            return false;
        };
        match sender.try_send(Message::Row(row.into())) {
            Ok(()) => {
                self.counters.submitted.fetch_add(1, Ordering::Relaxed);
                true
            }
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.counters.note_drop(1, &self.counters.refused);
                tracing::warn!("request-log queue full: a log row was dropped");
                false
            }
        }
    }

    /// Block until every row submitted before this call is committed (or its commit was tried
    /// and failed; it is then held for retry).
    pub fn flush(&self) {
        let Some(sender) = self.sender() else { return };
        let (done_tx, done_rx) = sync_channel(1);
        if sender.send(Message::Flush(done_tx)).is_ok() {
            let _ = done_rx.recv();
        }
    }

    /// Commit everything queued, stop the thread. Later submits are counted as drops.
    pub fn close(&self) {
        let sender = self
            .sender
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        drop(sender);
        let thread = self
            .thread
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(thread) = thread
            && thread.join().is_err()
        {
            tracing::error!("the log writer thread panicked");
        }
    }

    #[must_use]
    pub fn stats(&self) -> WriterStats {
        let c = &self.counters;
        let submitted = c.submitted.load(Ordering::Relaxed);
        let written = c.written.load(Ordering::Relaxed);
        let discarded = c.discarded.load(Ordering::Relaxed);
        WriterStats {
            queued: submitted.saturating_sub(written + discarded),
            written,
            dropped: c.refused.load(Ordering::Relaxed) + discarded,
            retrying: c.retrying.load(Ordering::Relaxed),
            commit_failures: c.commit_failures.load(Ordering::Relaxed),
            batches: c.batches.load(Ordering::Relaxed),
            last_drop_ms: c.last_drop_ms.load(Ordering::Relaxed),
        }
    }

    /// Why commits fail, while they do.
    #[must_use]
    pub fn fault(&self) -> Option<WriterFault> {
        self.counters
            .fault
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

impl Drop for LogWriter {
    fn drop(&mut self) {
        self.close();
    }
}

/// The thread's state: rows taken off the queue and not yet committed, and who waits for them.
struct Pending {
    rows: Vec<RequestLog>,
    waiters: Vec<SyncSender<()>>,
    /// The queue is closed: commit what is left and stop.
    closed: bool,
}

impl Pending {
    /// Take one message. Rows past `retain_limit` (only reached while commits fail) are dropped
    /// and counted.
    fn take(&mut self, message: Message, config: &WriterConfig, counters: &Counters) {
        match message {
            Message::Row(row) => {
                if self.rows.len() >= config.retain_limit.max(config.max_batch) {
                    counters.note_drop(1, &counters.discarded);
                } else {
                    self.rows.push(*row);
                }
            }
            Message::Flush(waiter) => self.waiters.push(waiter),
        }
    }

    /// Take everything queued now, without waiting.
    fn drain(&mut self, receiver: &Receiver<Message>, config: &WriterConfig, counters: &Counters) {
        loop {
            match receiver.try_recv() {
                Ok(message) => self.take(message, config, counters),
                Err(std::sync::mpsc::TryRecvError::Empty) => return,
                Err(std::sync::mpsc::TryRecvError::Disconnected) => {
                    self.closed = true;
                    return;
                }
            }
        }
    }

    /// Take messages until `deadline`; returns early when the queue closes or a flush waits.
    fn gather_until(
        &mut self,
        deadline: Instant,
        receiver: &Receiver<Message>,
        config: &WriterConfig,
        counters: &Counters,
    ) {
        while !self.closed && self.waiters.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            match receiver.recv_timeout(left) {
                Ok(message) => self.take(message, config, counters),
                Err(RecvTimeoutError::Timeout) => return,
                Err(RecvTimeoutError::Disconnected) => self.closed = true,
            }
        }
    }
}

fn run(sink: &LogSink, receiver: &Receiver<Message>, config: WriterConfig, counters: &Counters) {
    let mut pending = Pending {
        rows: Vec::with_capacity(config.max_batch),
        waiters: Vec::new(),
        closed: false,
    };
    let mut last_start: Option<Instant> = None;
    let mut failing = false;
    let mut closing_since: Option<Instant> = None;
    loop {
        if pending.rows.is_empty() && pending.waiters.is_empty() {
            if pending.closed {
                return;
            }
            // Idle: block for the first message.
            match receiver.recv() {
                Ok(message) => pending.take(message, &config, counters),
                Err(_) => return,
            }
        }
        // Space the commits: right after a commit, wait out `min_interval` from its start (rows
        // arriving meanwhile join this batch); after a failure, wait `retry_delay`.
        let wait = if failing {
            config.retry_delay
        } else {
            last_start.map_or(Duration::ZERO, |start| {
                config.min_interval.saturating_sub(start.elapsed())
            })
        };
        pending.gather_until(Instant::now() + wait, receiver, &config, counters);
        pending.drain(receiver, &config, counters);
        if pending.closed && closing_since.is_none() {
            closing_since = Some(Instant::now());
        }
        last_start = Some(Instant::now());
        failing = !commit_all(sink, &mut pending.rows, &config, counters);
        for waiter in pending.waiters.drain(..) {
            let _ = waiter.send(());
        }
        if failing
            && let Some(since) = closing_since
            && since.elapsed() >= config.close_deadline
        {
            let lost = pending.rows.len() as u64;
            counters.note_drop(lost, &counters.discarded);
            counters.retrying.store(0, Ordering::Relaxed);
            tracing::error!(
                rows = lost,
                "request-log rows could not be written before the writer closed; they are lost"
            );
            return;
        }
    }
}

/// Commit every pending row in transactions of at most `max_batch`; true when all were
/// written. On failure the rows not written stay in `rows` (a failed transaction wrote none of
/// its rows), in order, for the retry.
fn commit_all(
    sink: &LogSink,
    rows: &mut Vec<RequestLog>,
    config: &WriterConfig,
    counters: &Counters,
) -> bool {
    let mut done = 0;
    let mut ok = true;
    while done < rows.len() {
        let end = rows.len().min(done + config.max_batch);
        let batch = &rows[done..end];
        // Step aside between slices of rows (one multi-row INSERT each): a request thread that
        // wakes on this core then waits for one slice (~40 µs), not for the whole batch.
        let result = sink.insert_logs_pacing(batch, |sliced| {
            if sliced > 0 {
                std::thread::yield_now();
            }
        });
        match result {
            Ok(_) => {
                counters
                    .written
                    .fetch_add(batch.len() as u64, Ordering::Relaxed);
                counters.batches.fetch_add(1, Ordering::Relaxed);
                done = end;
            }
            Err(err) => {
                counters.commit_failures.fetch_add(1, Ordering::Relaxed);
                let mut fault = counters
                    .fault
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                if fault.is_none() {
                    tracing::error!(error = %err, rows = rows.len() - done, "request-log rows could not be written; they are kept and retried");
                }
                *fault = Some(WriterFault {
                    since_ms: fault.as_ref().map_or_else(unix_ms, |f| f.since_ms),
                    disk_full: matches!(err, crate::store::StoreError::DiskFull(_)),
                    error: err.to_string(),
                });
                ok = false;
                break;
            }
        }
    }
    rows.drain(..done);
    counters
        .retrying
        .store(if ok { 0 } else { rows.len() as u64 }, Ordering::Relaxed);
    if ok && counters.fault.lock().is_ok_and(|f| f.is_some()) {
        tracing::info!("request-log rows are written again");
        counters.set_fault(None);
    }
    ok
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail loudly")]

    use super::*;
    use crate::store::sqlite::{LogDb, OpenOptions};

    fn row(id: usize) -> RequestLog {
        RequestLog {
            id: format!("r{id}"),
            status: "success".into(),
            initial_time: "2026-11-21T10:00:00.000Z".into(),
            client_id: "k1".into(),
            model: "m".into(),
            ..RequestLog::default()
        }
    }

    /// Make every commit fail (as a full disk would) until the switch is cleared.
    fn set_failing(db: &LogDb, on: bool) {
        let conn = db.lock();
        if on {
            conn.execute_batch(
                "CREATE TRIGGER IF NOT EXISTS fail_insert BEFORE INSERT ON request_log
                 BEGIN SELECT RAISE(ABORT, 'simulated write failure'); END;",
            )
            .unwrap();
        } else {
            conn.execute_batch("DROP TRIGGER IF EXISTS fail_insert")
                .unwrap();
        }
    }

    fn config(retain_limit: usize) -> WriterConfig {
        WriterConfig {
            retain_limit,
            max_batch: 16,
            retry_delay: Duration::from_millis(20),
            ..WriterConfig::default()
        }
    }

    #[test]
    fn rows_of_failed_commits_are_kept_and_written_once_commits_work_again() {
        let dir = tempfile::tempdir().unwrap();
        let db = LogDb::open(&dir.path().join("logs.sqlite"), OpenOptions::default()).unwrap();
        set_failing(&db, true);
        let writer = LogWriter::start(db.clone(), config(1000)).unwrap();
        for i in 0..100 {
            assert!(writer.submit(row(i)));
        }
        writer.flush();
        let stats = writer.stats();
        assert_eq!(stats.written, 0);
        assert_eq!(stats.retrying, 100, "{stats:?}");
        assert!(stats.commit_failures > 0);
        let fault = writer.fault().unwrap();
        assert!(fault.error.contains("simulated write failure"), "{fault:?}");

        set_failing(&db, false);
        let deadline = Instant::now() + Duration::from_secs(10);
        while writer.stats().written < 100 {
            assert!(Instant::now() < deadline, "{:?}", writer.stats());
            writer.flush();
        }
        assert_eq!(db.count_logs().unwrap(), 100);
        let stats = writer.stats();
        assert_eq!((stats.dropped, stats.retrying, stats.queued), (0, 0, 0));
        assert!(writer.fault().is_none());
    }

    #[test]
    fn past_the_retry_bound_rows_are_dropped_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let db = LogDb::open(&dir.path().join("logs.sqlite"), OpenOptions::default()).unwrap();
        set_failing(&db, true);
        let writer = LogWriter::start(db.clone(), config(50)).unwrap();
        for i in 0..80 {
            writer.submit(row(i));
        }
        writer.flush();
        let stats = writer.stats();
        assert_eq!(stats.retrying, 50, "{stats:?}");
        assert_eq!(stats.dropped, 30, "{stats:?}");
        assert!(stats.last_drop_ms > 0);
        set_failing(&db, false);
        writer.close();
        assert_eq!(db.count_logs().unwrap(), 50);
        assert_eq!(writer.stats().written, 50);
    }

    #[test]
    fn close_gives_up_on_a_commit_that_keeps_failing() {
        let dir = tempfile::tempdir().unwrap();
        let db = LogDb::open(&dir.path().join("logs.sqlite"), OpenOptions::default()).unwrap();
        set_failing(&db, true);
        let writer = LogWriter::start(
            db.clone(),
            WriterConfig {
                close_deadline: Duration::from_millis(200),
                ..config(1000)
            },
        )
        .unwrap();
        for i in 0..10 {
            writer.submit(row(i));
        }
        let started = Instant::now();
        writer.close();
        assert!(started.elapsed() < Duration::from_secs(3));
        assert_eq!(writer.stats().dropped, 10);
    }

    #[test]
    fn rows_queued_during_a_commit_make_the_next_batch() {
        let dir = tempfile::tempdir().unwrap();
        let db = LogDb::open(&dir.path().join("logs.sqlite"), OpenOptions::default()).unwrap();
        let writer = LogWriter::start(db.clone(), WriterConfig::default()).unwrap();
        for i in 0..5000 {
            writer.submit(row(i));
        }
        writer.flush();
        let stats = writer.stats();
        assert_eq!(stats.written, 5000);
        // Many rows per commit, not one commit per row.
        assert!(stats.batches < 50, "{stats:?}");
    }
}
