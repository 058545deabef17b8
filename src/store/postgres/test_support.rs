//! A throwaway database on the test PostgreSQL (`RELAYBOX_TEST_PG_URL`, exported by
//! tests/services.sh). Without it the PostgreSQL tests fail in CI and skip elsewhere, saying why.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

use std::sync::Arc;

use super::{PgStore, Target};

pub(crate) const URL_VAR: &str = "RELAYBOX_TEST_PG_URL";

/// The test server's URL. Panics in CI (`CI=true`) when it is missing; elsewhere prints why the
/// test is skipped and returns `None`.
pub(crate) fn server_url() -> Option<String> {
    if let Ok(url) = std::env::var(URL_VAR)
        && !url.is_empty()
    {
        return Some(url);
    }
    let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
    assert!(
        !ci,
        "{URL_VAR} is not set: the PostgreSQL tests need the throwaway server of tests/services.sh (tests/run.sh starts it)"
    );
    eprintln!(
        "skipped: {URL_VAR} is not set (run `. tests/services.sh; services_up` or tests/run.sh for the PostgreSQL tests)"
    );
    None
}

/// A database of its own (dropped with this value) and a runtime for the stores opened on it.
pub(crate) struct TestDatabase {
    pub runtime: Arc<tokio::runtime::Runtime>,
    server: Target,
    pub target: Target,
    name: String,
}

impl TestDatabase {
    pub(crate) fn create() -> Option<Self> {
        let server = Target::parse(&server_url()?).unwrap();
        let runtime = Arc::new(
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap(),
        );
        let name = format!("relaybox_test_{}", uuid::Uuid::now_v7().simple());
        runtime.block_on(admin(&server, &format!("CREATE DATABASE {name}")));
        let target = server.with_dbname(&name);
        Some(Self {
            runtime,
            server,
            target,
            name,
        })
    }

    /// Connect a store (migrating the schema), as an instance start does.
    pub(crate) fn open(&self) -> PgStore {
        self.runtime
            .block_on(PgStore::connect(&self.target))
            .unwrap()
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        self.runtime.block_on(admin(&self.server, &sql));
    }
}

async fn admin(server: &Target, sql: &str) {
    let (client, connection) = server.config.connect(tokio_postgres::NoTls).await.unwrap();
    // The connection ends when the client is dropped.
    let work = async move {
        client.batch_execute(sql).await.unwrap();
    };
    let ((), _) = tokio::join!(work, connection);
}
