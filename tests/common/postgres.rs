//! A throwaway database on the test PostgreSQL (`RELAYBOX_TEST_PG_URL`, exported by
//! tests/services.sh, which tests/run.sh sources). Without it the PostgreSQL tests fail in CI
//! (`CI=true`) and skip elsewhere, saying why.

use std::time::{Duration, Instant};

use relaybox::store::postgres::Target;

pub const URL_VAR: &str = "RELAYBOX_TEST_PG_URL";

/// The test server's URL; see the module docs for when it is `None`.
pub fn server_url() -> Option<String> {
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

/// A database of its own, dropped with this value.
pub struct TestDb {
    server: Target,
    pub target: Target,
    name: String,
}

impl TestDb {
    pub async fn create() -> Option<Self> {
        let server = Target::parse(&server_url()?).unwrap();
        let name = format!("relaybox_it_{}", uuid_like());
        admin(&server, &format!("CREATE DATABASE {name}")).await;
        let target = server.with_dbname(&name);
        Some(Self {
            server,
            target,
            name,
        })
    }

    /// A plain connection of its own (driven by a task that ends with the client).
    pub async fn raw(&self) -> tokio_postgres::Client {
        connect(&self.target).await
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        // Drop runs inside the test's runtime: use a thread with a runtime of its own.
        let server = self.server.clone();
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        let dropped = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(admin(&server, &sql));
        })
        .join();
        if dropped.is_err() && !std::thread::panicking() {
            panic!("dropping the test database failed");
        }
    }
}

#[allow(
    clippy::disallowed_methods,
    reason = "a test connection's driver; it ends with the client"
)]
pub async fn connect(target: &Target) -> tokio_postgres::Client {
    let (client, connection) = target.config.connect(tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    client
}

async fn admin(server: &Target, sql: &str) {
    connect(server).await.batch_execute(sql).await.unwrap();
}

fn uuid_like() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{}_{nanos:x}", std::process::id())
}

/// Poll `probe` every 20 ms until it returns `Some`, or panic after `timeout` naming `what`.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
