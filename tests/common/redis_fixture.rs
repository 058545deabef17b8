//! A throwaway `redis-server` loaded from the claude-relay-service fixture's RDB file (the
//! same data as its `redis-dump.json`). tests/run.sh installs redis-server.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::wait::wait_until;

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/claude-relay-service")
}

pub struct FixtureRedis {
    child: Child,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl FixtureRedis {
    pub fn start() -> FixtureRedis {
        let dir = tempfile::tempdir().unwrap();
        std::fs::copy(
            fixtures().join("redis-dump.rdb"),
            dir.path().join("redis-dump.rdb"),
        )
        .unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--dir"])
            .arg(dir.path())
            .args([
                "--dbfilename",
                "redis-dump.rdb",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (tests/run.sh installs it)");
        let redis = FixtureRedis {
            child,
            port,
            _dir: dir,
        };
        wait_until(
            Duration::from_secs(20),
            "redis-server to answer PING",
            || redis.ping().as_deref() == Some("+PONG"),
        );
        redis
    }

    /// `+PONG` once the data is loaded (`-LOADING …` before).
    fn ping(&self) -> Option<String> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        stream.write_all(b"PING\r\n").ok()?;
        let mut buf = [0u8; 64];
        let n = stream.read(&mut buf).ok()?;
        Some(String::from_utf8_lossy(&buf[..n]).trim().to_string())
    }
}

impl Drop for FixtureRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
