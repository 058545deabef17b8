//! Storage faults: a full disk while serving, damaged or unwritable store files at start, and
//! the modes of the store files. Each test checks the clear answer and that nothing
//! acknowledged was lost. The tmpfs and bind-mount tests need root (CI runs as root).

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

mod common;

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use common::disk_faults::{ReadOnlyFile, RelayOn, Tmpfs, logged_rows};
use common::wait::{wait_for, wait_until};
use common::{TestServer, run_cli};
use serde_json::{Value, json};

#[test]
fn a_full_disk_answers_507_keeps_relaying_and_loses_no_answered_row() {
    let disk = Tmpfs::mount(24);
    let data = disk.dir.join("data");
    let relay = RelayOn::start(&data);
    let url = relay.server.url.clone();

    // Load: clients relaying all along; every answered request must end up as a row.
    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicU64::new(0));
    let ok = Arc::new(AtomicU64::new(0));
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let (url, key) = (url.clone(), relay.key.clone());
            let (stop, answered, ok) = (Arc::clone(&stop), Arc::clone(&answered), Arc::clone(&ok));
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if let Some(status) = RelayOn::message(&url, &key) {
                        answered.fetch_add(1, Ordering::Relaxed);
                        if status == 200 {
                            ok.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            })
        })
        .collect();
    wait_until(Duration::from_secs(10), "relayed requests", || {
        ok.load(Ordering::Relaxed) > 50
    });

    let filler = disk.fill();
    let (status, body) =
        relay
            .server
            .admin("POST", "/keys", Some(&json!({"name": "on-a-full-disk"})));
    assert_eq!(status, 507, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("disk") && message.contains("full"),
        "{message}"
    );
    assert_eq!(body["error"]["code"], "disk_full");

    // /health probes the config store with a tiny write, which may fit in space redb already
    // holds; the log writer meets the full disk for sure (its WAL must grow) and keeps the rows.
    let health = wait_for(
        Duration::from_secs(20),
        "the log writer to fail on the full disk",
        || {
            let health = relay.health();
            (health["storage"]["logs"]["writer"]["commitFailures"].as_u64() > Some(0))
                .then_some(health)
        },
    );
    assert_eq!(health["status"], "degraded", "{health}");
    assert!(health["problems"].to_string().contains("full"), "{health}");
    assert!(
        health["storage"]["logs"]["writerFault"]["diskFull"] == true,
        "{health}"
    );
    // The relay keeps answering during the episode.
    let ok_before = ok.load(Ordering::Relaxed);
    wait_until(
        Duration::from_secs(10),
        "relayed requests on a full disk",
        || ok.load(Ordering::Relaxed) > ok_before + 50,
    );

    // Space returns: no restart, writes work again, /health turns ok.
    std::fs::remove_file(&filler).unwrap();
    let health = wait_for(Duration::from_secs(20), "/health ok after recovery", || {
        let health = relay.health();
        (health["status"] == "ok").then_some(health)
    });
    let (status, body) =
        relay
            .server
            .admin("POST", "/keys", Some(&json!({"name": "after-recovery"})));
    assert_eq!(status, 201, "{body}");
    let key_id = body["key"]["id"].as_str().unwrap().to_string();

    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.join().unwrap();
    }
    let writer_before_stop = relay.health()["storage"]["logs"]["writer"].clone();
    let RelayOn { server, .. } = relay;
    assert!(server.stop().success());
    let answered = answered.load(Ordering::Relaxed);
    let written = logged_rows(&data);
    println!(
        "disk-full run: rows answered {answered}, rows written {written}, rows dropped {}, commit failures {}",
        writer_before_stop["dropped"], health["storage"]["logs"]["writer"]["commitFailures"]
    );
    assert_eq!(written, answered, "every answered request has its row");
    assert_eq!(writer_before_stop["dropped"], 0, "{writer_before_stop}");
    // The change acknowledged after recovery is in the file; the refused one is not.
    let keys = keys_offline(&data);
    assert!(keys.iter().any(|k| k["id"] == key_id.as_str()));
    assert!(!keys.iter().any(|k| k["name"] == "on-a-full-disk"));
}

fn keys_offline(data: &Path) -> Vec<Value> {
    let output = run_cli(data, &["keys", "list", "--json"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// A data dir in use: a key created, and request rows in `logs.sqlite` (checkpointed by a
/// clean stop). Returns the key's id.
fn data_dir_in_use(data: &Path) -> String {
    let relay = RelayOn::start(data);
    for _ in 0..40 {
        assert_eq!(RelayOn::message(&relay.server.url, &relay.key), Some(200));
    }
    let (_, body) = relay
        .server
        .admin("POST", "/keys", Some(&json!({"name": "precious"})));
    let id = body["key"]["id"].as_str().unwrap().to_string();
    let RelayOn { server, .. } = relay;
    assert!(server.stop().success());
    assert_eq!(logged_rows(data), 40);
    id
}

fn refused_start(data: &Path) -> String {
    let server = TestServer::try_start(data, &[]);
    let log = server.err().expect("the server must refuse to start");
    assert!(log.contains("exited with"), "it must exit, not hang: {log}");
    assert!(!log.contains("exit status: 0"), "non-zero exit: {log}");
    log
}

#[test]
fn a_zero_byte_config_store_is_refused_with_what_to_do() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let key_id = data_dir_in_use(&data);
    let store = data.join("relaybox.redb");
    let saved = std::fs::read(&store).unwrap();
    std::fs::write(&store, b"").unwrap();

    let log = refused_start(&data);
    assert!(log.contains("relaybox.redb"), "{log}");
    assert!(log.contains("restore") && log.contains("backup"), "{log}");
    assert!(log.contains("move it away"), "{log}");
    // The offline CLI refuses too, and nothing wrote over the empty file.
    assert!(!run_cli(&data, &["keys", "list"]).status.success());
    assert_eq!(std::fs::metadata(&store).unwrap().len(), 0);

    // Restored from the backup: everything is there.
    std::fs::write(&store, &saved).unwrap();
    assert!(
        keys_offline(&data)
            .iter()
            .any(|k| k["id"] == key_id.as_str())
    );
}

#[test]
fn a_zero_byte_log_store_is_refused_with_what_to_do() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    data_dir_in_use(&data);
    let logs = data.join("logs.sqlite");
    let saved = std::fs::read(&logs).unwrap();
    std::fs::write(&logs, b"").unwrap();

    let log = refused_start(&data);
    assert!(log.contains("logs.sqlite"), "{log}");
    assert!(log.contains("restore") && log.contains("backup"), "{log}");
    assert_eq!(std::fs::metadata(&logs).unwrap().len(), 0);

    std::fs::write(&logs, &saved).unwrap();
    assert_eq!(logged_rows(&data), 40);
}

#[test]
fn a_damaged_block_in_logs_sqlite_is_refused_by_quick_check() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    data_dir_in_use(&data);
    let logs = data.join("logs.sqlite");
    let mut bytes = std::fs::read(&logs).unwrap();
    let page = 16_384;
    assert!(bytes.len() >= 3 * page, "{} bytes", bytes.len());
    // The middle of the last page (request rows): garbage over a b-tree page's cells.
    let start = bytes.len() - page / 2 - 512;
    for b in &mut bytes[start..start + 1024] {
        *b = 0x5A;
    }
    // …and over the page header of the second page.
    for b in &mut bytes[page..page + 64] {
        *b = 0xFF;
    }
    std::fs::write(&logs, &bytes).unwrap();

    let log = refused_start(&data);
    assert!(log.contains("logs.sqlite"), "{log}");
    assert!(log.contains("damaged"), "{log}");
    assert!(log.contains("restore") && log.contains("backup"), "{log}");
    assert_eq!(
        std::fs::read(&logs).unwrap(),
        bytes,
        "the refusal changes nothing"
    );
}

#[test]
fn a_read_only_logs_sqlite_is_refused_at_start() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    data_dir_in_use(&data);
    let logs = data.join("logs.sqlite");
    let read_only = ReadOnlyFile::bind(&logs);

    let log = refused_start(&data);
    assert!(log.contains("logs.sqlite"), "{log}");
    assert!(log.contains("cannot be written"), "{log}");
    drop(read_only);
    assert_eq!(logged_rows(&data), 40, "nothing was lost");
    let server = TestServer::start(&data, &[]);
    assert!(server.stop().success());
}

#[test]
fn store_files_are_private() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("fresh/data");
    // The first `serve` creates the data dir (this one stops at once: its port is taken).
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = taken.local_addr().unwrap().to_string();
    assert!(
        !run_cli(&data, &["serve", "--listen", &taken])
            .status
            .success()
    );
    let server = TestServer::start(&data, &[]);
    let mode = |name: &str| {
        std::fs::metadata(data.join(name))
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode(""), 0o700, "the data dir relaybox created");
    for name in [
        "relaybox.redb",
        "logs.sqlite",
        "logs.sqlite-wal",
        "logs.sqlite-shm",
        "secret.key",
        "control.json",
        "instance.lock",
    ] {
        assert_eq!(mode(name), 0o600, "{name}");
    }
    assert!(server.stop().success());

    // A store file opened up by hand is made private again at the next start, with a warning.
    std::fs::set_permissions(
        data.join("relaybox.redb"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let server = TestServer::start(&data, &[]);
    assert_eq!(mode("relaybox.redb"), 0o600);
    assert!(server.log().contains("made it private"), "{}", server.log());
    assert!(server.stop().success());
}
