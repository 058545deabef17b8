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

/// HTTP/2 streams run in tasks of their own: a shutdown waits for them too, so the row of a
/// stream still running when SIGTERM comes is written before the log closes.
#[test]
fn sigterm_during_an_http2_stream_keeps_its_row() {
    use http_body_util::BodyExt as _;

    let s = setup_with_env(json!({}), &[("RELAYBOX_SHUTDOWN_TIMEOUT_SECS", "1")]);
    // ~1 MiB of events: far beyond HTTP/2's initial 64 KiB window.
    s.channel(
        "messages",
        "long",
        "claude",
        Some("chunks=2000,word_bytes=4096"),
        1,
    );
    let mut body = hello();
    body["stream"] = json!(true);
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .http2_only(true)
        .http2_initial_stream_window_size(65_535)
        .http2_initial_connection_window_size(65_535)
        .build_http::<http_body_util::Full<bytes::Bytes>>();
    let request = hyper::Request::post(format!("{}/v1/messages", s.server.url))
        .header("x-api-key", &s.key)
        .header("content-type", "application/json")
        .body(http_body_util::Full::new(bytes::Bytes::from(
            body.to_string(),
        )))
        .unwrap();
    // The head and the first frame are read; after that nobody reads (nor grants window).
    let unread = s.runtime.block_on(async {
        let response = client.request(request).await.unwrap();
        assert_eq!(response.status(), 200);
        let mut body = response.into_body();
        let first = body.frame().await.unwrap().unwrap();
        assert!(first.is_data());
        body
    });
    wait_until(
        Duration::from_secs(10),
        "the stream to reach the upstream",
        || s.path_count("chunks=2000,word_bytes=4096") == 1,
    );

    let data_dir = s.server.data_dir.clone();
    let Setup {
        mut server,
        mock,
        runtime,
        ..
    } = s;
    let pid = server.child.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    let status = wait_for(
        Duration::from_secs(15),
        "relaybox to exit after SIGTERM",
        || server.child.try_wait().unwrap(),
    );
    assert!(status.success(), "{status}\n{}", server.log());

    let conn = rusqlite::Connection::open(data_dir.join("logs.sqlite")).unwrap();
    let rows: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM request_log WHERE endpoint = '/v1/messages'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(rows, 1, "the unread stream's row\n{}", server.log());
    drop(unread);
    drop(runtime);
    drop(mock);
}

/// A client that stops reading (its receive buffer full) keeps its stream from ending by
/// itself: after the shutdown timeout it is ended anyway, the server exits 0, and the row is
/// kept.
#[test]
fn sigterm_with_a_client_that_stopped_reading_exits_and_keeps_its_row() {
    let s = setup_with_env(json!({}), &[("RELAYBOX_SHUTDOWN_TIMEOUT_SECS", "1")]);
    // ~8 MiB of events, far more than the two sockets' buffers hold.
    s.channel(
        "messages",
        "long",
        "claude",
        Some("chunks=2000,word_bytes=4096"),
        1,
    );
    let mut body = hello();
    body["stream"] = json!(true);
    let text = body.to_string();
    let address: std::net::SocketAddr = s.server.url.trim_start_matches("http://").parse().unwrap();
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.connect(&address.into()).unwrap();
    let mut stream: std::net::TcpStream = socket.into();
    send_head(
        &mut stream,
        "POST",
        "/v1/messages",
        &[
            ("x-api-key", &s.key),
            ("content-type", "application/json"),
            ("content-length", &text.len().to_string()),
        ],
    );
    stream.write_all(text.as_bytes()).unwrap();
    // Nothing is read from here on.
    wait_until(
        Duration::from_secs(10),
        "the stream to reach the upstream",
        || s.path_count("chunks=2000,word_bytes=4096") == 1,
    );
    std::thread::sleep(Duration::from_millis(300));

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
        Duration::from_secs(15),
        "relaybox to exit after SIGTERM",
        || server.child.try_wait().unwrap(),
    );
    let took = started.elapsed();
    assert!(status.success(), "{status}\n{}", server.log());
    assert!(
        server
            .log()
            .contains("did not finish within the shutdown timeout"),
        "the stream was still blocked at the deadline: {}",
        server.log()
    );
    assert!(took < Duration::from_secs(6), "exit took {took:?}");

    let conn = rusqlite::Connection::open(data_dir.join("logs.sqlite")).unwrap();
    let rows: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM request_log WHERE endpoint = '/v1/messages'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(rows, 1, "the unread stream's row\n{}", server.log());
    drop(stream);
    drop(mock);
}
