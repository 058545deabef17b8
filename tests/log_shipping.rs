//! Request-log shipping to PostgreSQL: the local outbox (cursor, backlog, cap), the partitioned
//! `request_log` in PostgreSQL, and the shipper loop, against a real PostgreSQL and real
//! logs.sqlite files. Also the private PostgreSQL harness the "stopped hard" stories use.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::pg_server::PgServer;
use common::postgres::connect;

/// The harness itself: a committed row survives `stop_immediate`, the server refuses
/// connections while stopped, and `start_again` brings it back on the same port.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_server_keeps_committed_rows_across_a_hard_stop() {
    let Some(mut server) = PgServer::start() else {
        return;
    };
    let client = connect(&server.target()).await;
    client
        .batch_execute("CREATE TABLE t (n int); INSERT INTO t VALUES (1), (2)")
        .await
        .unwrap();
    let port = server.port();
    server.stop_immediate();
    assert!(
        client.simple_query("SELECT 1").await.is_err(),
        "the connection survived the stop"
    );
    assert!(
        server
            .target()
            .config
            .connect(tokio_postgres::NoTls)
            .await
            .is_err(),
        "a stopped server accepted a connection"
    );
    server.start_again();
    assert_eq!(server.port(), port);
    let client = connect(&server.target()).await;
    let count: i64 = client
        .query_one("SELECT count(*) FROM t", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, 2);
}
