//! Shared counters, the request ring buffer and the in-flight/stream guards.
//!
//! Locks here are plain `std::sync::Mutex`es held for a few instructions and
//! never across an `.await`.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::scenario::Scenario;

/// How many requests [`crate::MockUpstream::requests`] keeps (the newest ones).
pub const RECORD_CAPACITY: usize = 256;

/// A point-in-time copy of the mock's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatsSnapshot {
    /// API requests since the last reset (control endpoints excluded).
    pub total_requests: u64,
    /// Requests per path as received (scenario prefix included, query excluded).
    pub per_path: BTreeMap<String, u64>,
    /// Requests being served now; a stream counts until its body ends or is dropped.
    pub in_flight: u64,
    /// High-water mark of `in_flight` since the last reset.
    pub max_in_flight: u64,
    /// Streamed replies begun (counted when the request is accepted).
    pub streams_started: u64,
    /// Streams whose final event was handed to the connection.
    pub streams_completed: u64,
    /// Streams dropped by the client before the final event.
    pub streams_cancelled: u64,
    /// Streams the mock cut on purpose (`cut_after=N`).
    pub streams_aborted: u64,
    /// TCP connections accepted since the last reset (shows whether a client reuses them).
    pub connections_accepted: u64,
}

/// One request as the mock received it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordedRequest {
    pub method: String,
    /// Path and query as received, scenario prefix included.
    pub path: String,
    /// Header names (lower case) and values, in arrival order.
    pub headers: Vec<(String, String)>,
    /// The JSON body; a non-JSON body is kept as a string, an empty one as null.
    pub body: Value,
    /// The scenario resolved from the path prefix.
    pub scenario: Scenario,
    /// The HTTP status the mock chose for this request.
    pub status: u16,
}

impl RecordedRequest {
    /// The first value of a header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

pub(crate) struct Shared {
    pub latency: Duration,
    pub record: bool,
    total: AtomicU64,
    in_flight: AtomicU64,
    max_in_flight: AtomicU64,
    streams_started: AtomicU64,
    streams_completed: AtomicU64,
    streams_cancelled: AtomicU64,
    streams_aborted: AtomicU64,
    connections: AtomicU64,
    seq: AtomicU64,
    per_path: Mutex<HashMap<String, u64>>,
    recorded: Mutex<VecDeque<RecordedRequest>>,
    fail_counters: Mutex<HashMap<String, u64>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    pub fn new(latency: Duration, record: bool) -> Self {
        Self {
            latency,
            record,
            total: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            max_in_flight: AtomicU64::new(0),
            streams_started: AtomicU64::new(0),
            streams_completed: AtomicU64::new(0),
            streams_cancelled: AtomicU64::new(0),
            streams_aborted: AtomicU64::new(0),
            connections: AtomicU64::new(0),
            seq: AtomicU64::new(0),
            per_path: Mutex::new(HashMap::new()),
            recorded: Mutex::new(VecDeque::with_capacity(if record {
                RECORD_CAPACITY
            } else {
                0
            })),
            fail_counters: Mutex::new(HashMap::new()),
        }
    }

    /// Counts an API request and marks it in flight until the guard drops.
    pub fn enter(self: &Arc<Self>, path: &str) -> InFlight {
        self.total.fetch_add(1, Relaxed);
        {
            let mut per_path = lock(&self.per_path);
            match per_path.get_mut(path) {
                Some(count) => *count += 1,
                None => {
                    per_path.insert(path.to_owned(), 1);
                }
            }
        }
        let now = self.in_flight.fetch_add(1, Relaxed) + 1;
        self.max_in_flight.fetch_max(now, Relaxed);
        InFlight(Arc::clone(self))
    }

    pub fn connection_accepted(&self) {
        self.connections.fetch_add(1, Relaxed);
    }

    pub fn next_seq(&self) -> u64 {
        self.seq.fetch_add(1, Relaxed) + 1
    }

    pub fn record(&self, request: RecordedRequest) {
        let mut recorded = lock(&self.recorded);
        if recorded.len() == RECORD_CAPACITY {
            recorded.pop_front();
        }
        recorded.push_back(request);
    }

    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.recorded).iter().cloned().collect()
    }

    /// Whether a `status=` scenario fails this time (`fail_times` counts per
    /// exact directive string).
    pub fn should_fail(&self, scenario: &Scenario) -> bool {
        let Some(limit) = scenario.fail_times else {
            return true;
        };
        let mut counters = lock(&self.fail_counters);
        let count = counters.entry(scenario.directives.clone()).or_insert(0);
        if *count < limit {
            *count += 1;
            true
        } else {
            false
        }
    }

    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            total_requests: self.total.load(Relaxed),
            per_path: lock(&self.per_path)
                .iter()
                .map(|(k, v)| (k.clone(), *v))
                .collect(),
            in_flight: self.in_flight.load(Relaxed),
            max_in_flight: self.max_in_flight.load(Relaxed),
            streams_started: self.streams_started.load(Relaxed),
            streams_completed: self.streams_completed.load(Relaxed),
            streams_cancelled: self.streams_cancelled.load(Relaxed),
            streams_aborted: self.streams_aborted.load(Relaxed),
            connections_accepted: self.connections.load(Relaxed),
        }
    }

    /// Zeroes the counters, forgets recorded requests and `fail_times`
    /// counters. `in_flight` is live and stays; `max_in_flight` restarts from it.
    pub fn reset(&self) {
        self.total.store(0, Relaxed);
        self.streams_started.store(0, Relaxed);
        self.streams_completed.store(0, Relaxed);
        self.streams_cancelled.store(0, Relaxed);
        self.streams_aborted.store(0, Relaxed);
        self.connections.store(0, Relaxed);
        self.max_in_flight
            .store(self.in_flight.load(Relaxed), Relaxed);
        lock(&self.per_path).clear();
        lock(&self.recorded).clear();
        lock(&self.fail_counters).clear();
    }
}

/// Marks one request in flight; dropping it ends that.
pub(crate) struct InFlight(Arc<Shared>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Relaxed);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StreamEnd {
    Running,
    Completed,
    Aborted,
}

/// Tracks one streamed reply; on drop it counts the stream as completed,
/// aborted (cut on purpose) or — if neither was marked — cancelled.
pub(crate) struct StreamGuard {
    shared: Arc<Shared>,
    end: StreamEnd,
}

impl StreamGuard {
    pub fn start(shared: &Arc<Shared>) -> Self {
        shared.streams_started.fetch_add(1, Relaxed);
        Self {
            shared: Arc::clone(shared),
            end: StreamEnd::Running,
        }
    }

    pub fn complete(&mut self) {
        self.end = StreamEnd::Completed;
    }

    pub fn abort(&mut self) {
        self.end = StreamEnd::Aborted;
    }
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        let counter = match self.end {
            StreamEnd::Running => &self.shared.streams_cancelled,
            StreamEnd::Completed => &self.shared.streams_completed,
            StreamEnd::Aborted => &self.shared.streams_aborted,
        };
        counter.fetch_add(1, Relaxed);
    }
}
