//! Cluster-mode harness: a database of its own on the test PostgreSQL (driven with `psql`, as an
//! operator would) and real `relaybox serve` processes pointed at it.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::TestServer;
use super::postgres::server_url;

/// Every instance of a test cluster shares this key (64 hex digits: a random key, not a
/// passphrase).
pub const CLUSTER_KEY: &str = "6b1f0c9a2d4e8f7031a5c6d7e8f90123456789abcdef0123456789abcdef0123";

/// A throwaway database, dropped with this value.
pub struct ClusterDb {
    server: String,
    pub name: String,
    pub url: String,
}

impl ClusterDb {
    /// `None` (with the reason printed) when no test PostgreSQL is configured outside CI.
    pub fn create() -> Option<ClusterDb> {
        let server = server_url()?;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let name = format!("relaybox_cl_{}_{nanos:x}", std::process::id());
        psql(&server, &format!("CREATE DATABASE {name}"));
        let (base, _) = server.rsplit_once('/').expect("a URL with a database");
        let url = format!("{base}/{name}");
        Some(ClusterDb { server, name, url })
    }

    /// Run SQL on this database; its output in unaligned, tuples-only form.
    pub fn sql(&self, sql: &str) -> String {
        psql(&self.url, sql)
    }

    /// `relaybox serve` on `data_dir` in this cluster, with the shared key and `extra_env`.
    pub fn start(&self, data_dir: &Path, extra_env: &[(&str, &str)]) -> TestServer {
        self.try_start(data_dir, extra_env)
            .unwrap_or_else(|log| panic!("instance did not start:\n{log}"))
    }

    pub fn try_start(
        &self,
        data_dir: &Path,
        extra_env: &[(&str, &str)],
    ) -> Result<TestServer, String> {
        let mut env = vec![
            ("RELAYBOX_POSTGRES_URL", self.url.as_str()),
            ("RELAYBOX_ENCRYPTION_KEY", CLUSTER_KEY),
        ];
        env.extend_from_slice(extra_env);
        TestServer::try_start(data_dir, &env)
    }

    /// Dump this database (plain SQL) to `file`.
    pub fn dump(&self, file: &Path) {
        let status = Command::new("pg_dump")
            .args(["--no-owner", "--file"])
            .arg(file)
            .arg(&self.url)
            .status()
            .expect("pg_dump runs");
        assert!(status.success(), "pg_dump failed");
    }

    /// Replace this database with the one dumped to `file` (connections are cut).
    pub fn restore(&self, file: &Path) {
        psql(
            &self.server,
            &format!("DROP DATABASE {} WITH (FORCE)", self.name),
        );
        psql(&self.server, &format!("CREATE DATABASE {}", self.name));
        let output = Command::new("psql")
            .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-f"])
            .arg(file)
            .arg(&self.url)
            .output()
            .expect("psql runs");
        assert!(
            output.status.success(),
            "restore failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

impl Drop for ClusterDb {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .args(["-X", "-q", "-c"])
            .arg(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .arg(&self.server)
            .output();
    }
}

pub fn psql(url: &str, sql: &str) -> String {
    let output = Command::new("psql")
        .args(["-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", "-c", sql])
        .arg(url)
        .output()
        .expect("psql runs (install postgresql-client)");
    assert!(
        output.status.success(),
        "psql {sql}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// Poll every 10 ms until `check` holds; how long it took, or `None` after `timeout`.
pub fn within(timeout: Duration, mut check: impl FnMut() -> bool) -> Option<Duration> {
    let started = Instant::now();
    loop {
        if check() {
            return Some(started.elapsed());
        }
        if started.elapsed() > timeout {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The admin API's view of every entity, for comparing instances.
pub fn everything(server: &TestServer) -> Value {
    let mut all = serde_json::Map::new();
    for path in ["/keys", "/channels", "/pricing", "/aliases", "/settings"] {
        let (status, body) = server.admin("GET", path, None);
        assert_eq!(status, 200, "GET {path}: {body}");
        all.insert(path.to_string(), body);
    }
    Value::Object(all)
}

/// The mock upstream on a runtime of its own (keep the runtime as long as the mock).
pub fn mock_upstream() -> (
    tokio::runtime::Runtime,
    relaybox_mock_upstream::MockUpstream,
) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mock = runtime
        .block_on(relaybox_mock_upstream::MockUpstream::start(
            relaybox_mock_upstream::MockOptions::default(),
        ))
        .unwrap();
    (runtime, mock)
}

/// A messages-pool channel to `mock`.
pub fn mock_channel(mock: &relaybox_mock_upstream::MockUpstream) -> Value {
    serde_json::json!({"pool": "messages", "name": "mock", "serviceType": "claude",
        "baseUrl": mock.base_url(), "apiKeys": [super::relay_env::UPSTREAM_KEY]})
}
