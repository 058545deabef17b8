//! The request-log writer: one OS thread, group commit.
//!
//! The request path calls [`LogWriter::submit`], which never blocks and never waits for a disk:
//! a full queue drops the row and counts it. The thread wakes for the first row of a batch,
//! sleeps out `max_delay` while rows queue up (so senders never have to wake it), then commits
//! everything queued in transactions of at most `max_batch` rows (`synchronous=FULL`), together
//! with the usage roll-ups. [`LogWriter::close`] drains the
//! queue and commits the rest, so a graceful stop loses no row.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use super::{LogSink, RequestLog};

#[derive(Debug, Clone, Copy)]
pub struct WriterConfig {
    pub max_batch: usize,
    pub max_delay: Duration,
    pub capacity: usize,
}

impl Default for WriterConfig {
    fn default() -> Self {
        Self {
            max_batch: 2000,
            max_delay: Duration::from_millis(100),
            capacity: 65_536,
        }
    }
}

enum Message {
    Row(Box<RequestLog>),
    /// Reply once everything sent before this is committed.
    Flush(SyncSender<()>),
}

#[derive(Debug, Default)]
struct Counters {
    submitted: AtomicU64,
    written: AtomicU64,
    dropped: AtomicU64,
    failed: AtomicU64,
    batches: AtomicU64,
}

/// Figures for `/metrics` and `/health`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct WriterStats {
    pub queued: u64,
    pub written: u64,
    pub dropped: u64,
    pub failed: u64,
    pub batches: u64,
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
            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            return false;
        };
        match sender.try_send(Message::Row(row.into())) {
            Ok(()) => {
                self.counters.submitted.fetch_add(1, Ordering::Relaxed);
                true
            }
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.counters.dropped.fetch_add(1, Ordering::Relaxed);
                tracing::warn!("request-log queue full: a log row was dropped");
                false
            }
        }
    }

    /// Block until every row submitted before this call is committed (or failed).
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
        let failed = c.failed.load(Ordering::Relaxed);
        WriterStats {
            queued: submitted.saturating_sub(written + failed),
            written,
            dropped: c.dropped.load(Ordering::Relaxed),
            failed,
            batches: c.batches.load(Ordering::Relaxed),
        }
    }
}

impl Drop for LogWriter {
    fn drop(&mut self) {
        self.close();
    }
}

fn run(sink: &LogSink, receiver: &Receiver<Message>, config: WriterConfig, counters: &Counters) {
    let mut batch: Vec<RequestLog> = Vec::with_capacity(config.max_batch);
    let mut waiters: Vec<SyncSender<()>> = Vec::new();
    loop {
        // Block for the first message of a batch…
        let Ok(first) = receiver.recv() else { return };
        let flush_now = take(first, &mut batch, &mut waiters);
        // …then let the batch fill without being woken for every row: sleep out the commit
        // interval (a flush request commits at once), and drain what arrived meanwhile.
        if !flush_now {
            std::thread::sleep(config.max_delay);
        }
        let mut closed = false;
        loop {
            match receiver.try_recv() {
                Ok(message) => {
                    take(message, &mut batch, &mut waiters);
                    if batch.len() >= config.max_batch {
                        commit(sink, &mut batch, counters);
                    }
                }
                Err(std::sync::mpsc::TryRecvError::Empty) => break,
                Err(std::sync::mpsc::TryRecvError::Disconnected) => {
                    closed = true;
                    break;
                }
            }
        }
        commit(sink, &mut batch, counters);
        for waiter in waiters.drain(..) {
            let _ = waiter.send(());
        }
        if closed {
            // Nothing can arrive any more; whatever was queued is committed above.
            return;
        }
    }
}

/// Add a message to the batch; true when it asks for an immediate commit.
fn take(message: Message, batch: &mut Vec<RequestLog>, waiters: &mut Vec<SyncSender<()>>) -> bool {
    match message {
        Message::Row(row) => {
            batch.push(*row);
            false
        }
        Message::Flush(waiter) => {
            waiters.push(waiter);
            true
        }
    }
}

fn commit(sink: &LogSink, batch: &mut Vec<RequestLog>, counters: &Counters) {
    if batch.is_empty() {
        return;
    }
    let count = batch.len() as u64;
    // Step aside between slices of rows (one multi-row INSERT each): a request thread that
    // wakes on this core then waits for one slice (~40 µs), not for the whole batch.
    let result = sink.insert_logs_pacing(batch, |done| {
        if done > 0 {
            std::thread::yield_now();
        }
    });
    match result {
        Ok(_) => {
            counters.written.fetch_add(count, Ordering::Relaxed);
            counters.batches.fetch_add(1, Ordering::Relaxed);
        }
        Err(err) => {
            counters.failed.fetch_add(count, Ordering::Relaxed);
            tracing::error!(error = %err, rows = count, "request-log batch could not be written");
        }
    }
    batch.clear();
}
