//! kill -9 the server at random moments while admin writes are in flight: every acknowledged
//! change is there afterwards and the stores open cleanly; and kill -9 under relay load loses at
//! most ~100 ms of request rows.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{ADMIN_KEY, TestServer, request, run_cli};
use serde_json::{Value, json};

/// A tiny xorshift so the kill moments differ between runs without a rand dependency.
fn next_random(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

#[test]
fn acknowledged_changes_survive_kill_9() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mut seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    let mut acknowledged_total = 0;

    for round in 0..6 {
        let server = TestServer::start(&data, &[]);
        let url = server.url.clone();
        let acknowledged: Arc<Mutex<Vec<(String, u64)>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let writers: Vec<_> = (0..3)
            .map(|writer| {
                let (url, acknowledged, stop) =
                    (url.clone(), Arc::clone(&acknowledged), Arc::clone(&stop));
                std::thread::spawn(move || {
                    let auth = format!("Bearer {ADMIN_KEY}");
                    let mut n = 0;
                    while !stop.load(Ordering::Relaxed) {
                        n += 1;
                        let body = json!({"name": format!("r{round}-w{writer}-{n}")});
                        let Ok((201, created)) = request(
                            "POST",
                            &format!("{url}/admin/api/keys"),
                            &[("authorization", &auth)],
                            Some(&body),
                        ) else {
                            break;
                        };
                        let id = created["key"]["id"].as_str().unwrap().to_string();
                        acknowledged.lock().unwrap().push((id.clone(), 1));
                        // An update too: its acknowledged version must survive as well.
                        let patch = json!({"description": format!("edited {n}")});
                        if let Ok((200, patched)) = request(
                            "PATCH",
                            &format!("{url}/admin/api/keys/{id}"),
                            &[("authorization", &auth)],
                            Some(&patch),
                        ) {
                            let mut list = acknowledged.lock().unwrap();
                            if let Some(entry) = list.iter_mut().find(|(k, _)| *k == id) {
                                entry.1 = patched["version"].as_u64().unwrap();
                            }
                        }
                    }
                })
            })
            .collect();
        let wait = 80 + next_random(&mut seed) % 400;
        std::thread::sleep(Duration::from_millis(wait));
        server.kill9();
        stop.store(true, Ordering::Relaxed);
        for writer in writers {
            writer.join().unwrap();
        }

        // Reopen offline (integrity check at open) and compare.
        let output = run_cli(&data, &["keys", "list", "--json"]);
        assert!(
            output.status.success(),
            "round {round}: stores must open after kill -9: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let keys: Vec<Value> = serde_json::from_slice(&output.stdout).unwrap();
        let acknowledged = acknowledged.lock().unwrap();
        assert!(
            !acknowledged.is_empty(),
            "round {round}: no write was acknowledged in {wait} ms"
        );
        for (id, version) in acknowledged.iter() {
            let key = keys.iter().find(|k| k["id"] == id.as_str());
            let key = key.unwrap_or_else(|| panic!("round {round}: acknowledged key {id} is lost"));
            assert!(
                key["version"].as_u64().unwrap() >= *version,
                "round {round}: acknowledged update of {id} is lost"
            );
        }
        acknowledged_total += acknowledged.len();
    }
    assert!(
        acknowledged_total > 12,
        "the test wrote too little to mean anything ({acknowledged_total})"
    );
}

/// The nearest-rank percentile of sorted `values`.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// kill -9 under relay load, 20 times: how much of what clients were answered is missing from
/// `logs.sqlite` afterwards.
///
/// The lost window of one kill: rows are committed in the order they were answered, so the
/// `missing = answered − new rows` rows are the last `missing` answers; the window is the time
/// from the earliest of them to the kill (0 when none is missing). A row written for an answer
/// the client never received makes `missing` smaller, never the window larger.
#[test]
fn a_kill_9_under_load_loses_at_most_100_ms_of_rows_at_the_99th_percentile() {
    const KILLS: usize = 20;
    const CLIENTS: usize = 8;
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let relay = common::disk_faults::RelayOn::start(&data);
    let key = relay.key.clone();
    let common::disk_faults::RelayOn {
        server,
        mock: _mock,
        runtime: _runtime,
        ..
    } = relay;
    assert!(server.stop().success());
    let mut seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;

    let mut windows_ms = Vec::new();
    let (mut answered_total, mut lost_total, mut rows_per_commit) = (0, 0, Vec::new());
    for round in 0..KILLS {
        let before = common::disk_faults::logged_rows(&data);
        let server = TestServer::start(&data, &[]);
        let url = server.url.clone();
        let stop = Arc::new(AtomicBool::new(false));
        let answers: Arc<Mutex<Vec<Instant>>> = Arc::default();
        let clients: Vec<_> = (0..CLIENTS)
            .map(|_| {
                let (url, key, stop, answers) = (
                    url.clone(),
                    key.clone(),
                    Arc::clone(&stop),
                    Arc::clone(&answers),
                );
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        if common::disk_faults::RelayOn::message(&url, &key).is_some() {
                            answers.lock().unwrap().push(Instant::now());
                        }
                    }
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(400 + next_random(&mut seed) % 400));
        let writer =
            common::get(&format!("{url}/health")).unwrap().1["storage"]["logs"]["writer"].clone();
        let killed_at = Instant::now();
        server.kill9();
        stop.store(true, Ordering::Relaxed);
        for client in clients {
            client.join().unwrap();
        }
        let mut answers: Vec<Instant> = answers
            .lock()
            .unwrap()
            .iter()
            .copied()
            .filter(|at| *at <= killed_at)
            .collect();
        answers.sort();
        let written = common::disk_faults::logged_rows(&data) - before;
        let missing = (answers.len() as u64).saturating_sub(written) as usize;
        let window = if missing == 0 {
            Duration::ZERO
        } else {
            killed_at - answers[answers.len() - missing]
        };
        assert!(
            answers.len() > 20,
            "round {round}: too little load ({})",
            answers.len()
        );
        windows_ms.push(window.as_secs_f64() * 1000.0);
        answered_total += answers.len();
        lost_total += missing;
        if let (Some(rows), Some(commits)) =
            (writer["written"].as_u64(), writer["batches"].as_u64())
            && commits > 0
        {
            rows_per_commit.push(rows as f64 / commits as f64);
        }
    }
    let mut sorted = windows_ms.clone();
    sorted.sort_by(f64::total_cmp);
    let (p50, p90, p99, max) = (
        percentile(&sorted, 50.0),
        percentile(&sorted, 90.0),
        percentile(&sorted, 99.0),
        sorted[sorted.len() - 1],
    );
    let mean_rows_per_commit =
        rows_per_commit.iter().sum::<f64>() / rows_per_commit.len().max(1) as f64;
    println!(
        "kill -9 lost window over {KILLS} kills ({CLIENTS} clients): p50 {p50:.1} ms, p90 {p90:.1} ms, p99 {p99:.1} ms, max {max:.1} ms; rows answered {answered_total}, lost {lost_total}; rows per commit {mean_rows_per_commit:.1}; windows {windows_ms:.0?}"
    );
    // The promise is 100 ms; CI machines are shared, so the assertion leaves room (see README).
    assert!(
        p99 <= KILL_WINDOW_BOUND_MS,
        "p99 lost window {p99:.1} ms > {KILL_WINDOW_BOUND_MS} ms: {windows_ms:.0?}"
    );
}

/// The p99 lost window the CI asserts.
const KILL_WINDOW_BOUND_MS: f64 = 100.0;
