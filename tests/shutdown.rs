//! SIGTERM with a stream whose upstream stalled: relaybox drains for at most its shutdown
//! timeout, ends the stream with an error event, commits its row and exits 0.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

mod common;

use std::io::Write as _;
use std::process::Command;
use std::time::{Duration, Instant};

use common::faults::{Peer, connect, read_until_closed, send_head, setup_with_env};
use common::relay_env::{Setup, hello};
use common::wait::{wait_for, wait_until};
use serde_json::json;

#[test]
fn sigterm_with_a_stalled_stream_exits_within_the_shutdown_timeout_and_keeps_its_row() {
    let s = setup_with_env(json!({}), &[("RELAYBOX_SHUTDOWN_TIMEOUT_SECS", "1")]);
    s.channel("messages", "stalls", "claude", Some("stall_after=2"), 1);
    let mut body = hello();
    body["stream"] = json!(true);
    let text = body.to_string();
    let mut stream = connect(&s.server.url);
    send_head(
        &mut stream,
        "POST",
        "/v1/messages",
        &[
            ("x-api-key", &s.key),
            ("content-type", "application/json"),
            ("content-length", &text.len().to_string()),
            ("connection", "close"),
        ],
    );
    stream.write_all(text.as_bytes()).unwrap();
    let client =
        std::thread::spawn(move || read_until_closed(&mut stream, Duration::from_secs(30)));
    wait_until(
        Duration::from_secs(10),
        "the stream to reach the upstream",
        || s.path_count("stall_after=2") == 1,
    );

    let data_dir = s.server.data_dir.clone();
    let Setup {
        mut server,
        mock,
        runtime: _runtime,
        ..
    } = s;
    let started = Instant::now();
    let pid = server.child.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    let status = wait_for(
        Duration::from_secs(10),
        "relaybox to exit after SIGTERM",
        || server.child.try_wait().unwrap(),
    );
    let took = started.elapsed();
    assert!(status.success(), "{status}\n{}", server.log());
    assert!(took < Duration::from_secs(5), "exit took {took:?}");

    let Peer::Closed(received) = client.join().unwrap() else {
        panic!("the client's stream was not ended");
    };
    assert!(received.contains("event: message_start"), "{received}");
    assert!(received.contains("event: error"), "{received}");
    assert!(received.contains("server_shutdown"), "{received}");

    let conn = rusqlite::Connection::open(data_dir.join("logs.sqlite")).unwrap();
    let (status, error): (String, String) = conn
        .query_row(
            "SELECT status, error FROM request_log WHERE endpoint = '/v1/messages'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(status, "error");
    assert!(error.starts_with("server_shutdown"), "{error}");
    drop(mock);
}
