//! Storage faults for tests: a small tmpfs the test mounts (and always unmounts), filling it,
//! a read-only bind mount of one file, a relay environment whose data dir is on such a mount,
//! and counting rows in `logs.sqlite`. Mounting needs root: CI runs as root, and elsewhere the
//! tests fail with a message saying so (they never skip).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use relaybox_mock_upstream::{MockOptions, MockUpstream};
use serde_json::{Value, json};

use super::TestServer;

/// Fail the test unless it runs as root.
#[track_caller]
pub fn require_root(what: &str) {
    let uid = Command::new("id").arg("-u").output().expect("run id -u");
    let uid = String::from_utf8_lossy(&uid.stdout).trim().to_string();
    assert_eq!(
        uid, "0",
        "this test needs root to {what} (CI runs as root); run it with sudo or in the CI container"
    );
}

fn run(program: &str, args: &[&str]) {
    let output = Command::new(program).args(args).output().unwrap();
    assert!(
        output.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A tmpfs of `size_mib` MiB mounted at a fresh temp folder; unmounted on drop.
pub struct Tmpfs {
    pub dir: PathBuf,
    _parent: tempfile::TempDir,
}

impl Tmpfs {
    pub fn mount(size_mib: u64) -> Tmpfs {
        require_root("mount a small tmpfs");
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("mnt");
        std::fs::create_dir(&dir).unwrap();
        let size = format!("size={size_mib}m");
        run(
            "mount",
            &["-t", "tmpfs", "-o", &size, "tmpfs", dir.to_str().unwrap()],
        );
        Tmpfs {
            dir,
            _parent: parent,
        }
    }

    /// Fill the file system until a write fails; returns the filler file (remove it to free
    /// the space). Call again to take space the stores gave back meanwhile.
    pub fn fill(&self) -> PathBuf {
        let path = self.dir.join("filler");
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .unwrap();
        for chunk in [1 << 20, 4096, 512] {
            let block = vec![0xA5u8; chunk];
            while file.write_all(&block).is_ok() {}
        }
        let _ = file.sync_all();
        path
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let dir = self.dir.to_str().unwrap().to_string();
        if !Command::new("umount")
            .arg(&dir)
            .status()
            .is_ok_and(|s| s.success())
        {
            // Still busy (a server that did not exit yet): detach it now, it goes when freed.
            let _ = Command::new("umount").args(["-l", &dir]).status();
        }
    }
}

/// `file` made read-only by a read-only bind mount over itself (even root cannot write it);
/// unmounted on drop.
pub struct ReadOnlyFile {
    path: PathBuf,
}

impl ReadOnlyFile {
    pub fn bind(path: &Path) -> ReadOnlyFile {
        require_root("bind-mount a file read-only");
        let p = path.to_str().unwrap();
        run("mount", &["--bind", p, p]);
        let guard = ReadOnlyFile {
            path: path.to_path_buf(),
        };
        run("mount", &["-o", "remount,ro,bind", p, p]);
        guard
    }
}

impl Drop for ReadOnlyFile {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.path).status();
    }
}

/// Rows in `request_log` of the data dir's `logs.sqlite` (read with the server stopped).
pub fn logged_rows(data_dir: &Path) -> u64 {
    let conn = rusqlite::Connection::open(data_dir.join("logs.sqlite")).unwrap();
    let rows: i64 = conn
        .query_row("SELECT COUNT(*) FROM request_log", [], |row| row.get(0))
        .unwrap();
    u64::try_from(rows).unwrap()
}

/// The real binary serving `data_dir`, a mock upstream behind one channel, a client key and a
/// price.
pub struct RelayOn {
    // Field order: the server stops before the mock's runtime goes away.
    pub server: TestServer,
    pub mock: MockUpstream,
    pub runtime: tokio::runtime::Runtime,
    pub key: String,
}

impl RelayOn {
    pub fn start(data_dir: &Path) -> RelayOn {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let mock = runtime
            .block_on(MockUpstream::start(MockOptions::default()))
            .unwrap();
        let server = TestServer::start(data_dir, &[]);
        let (status, created) = server.admin("POST", "/keys", Some(&json!({"name": "load"})));
        assert_eq!(status, 201, "{created}");
        let key = created["plaintext"].as_str().unwrap().to_string();
        let channel = json!({"pool": "messages", "name": "mock", "serviceType": "claude",
            "baseUrl": mock.base_url(), "apiKeys": ["sk-upstream-fault-test-0001"]});
        let (status, body) = server.admin("POST", "/channels", Some(&channel));
        assert_eq!(status, 201, "{body}");
        server.admin(
            "POST",
            "/pricing",
            Some(&json!({"model": "claude-sonnet-4-5", "inputPrice": 3.0, "outputPrice": 15.0})),
        );
        RelayOn {
            server,
            mock,
            runtime,
            key,
        }
    }

    /// One relayed request; `None` when no HTTP answer came.
    pub fn message(url: &str, key: &str) -> Option<u16> {
        let body = json!({"model": "claude-sonnet-4-5", "max_tokens": 16,
            "messages": [{"role": "user", "content": "Hello there, relay"}]});
        super::request(
            "POST",
            &format!("{url}/v1/messages"),
            &[("x-api-key", key), ("anthropic-version", "2023-06-01")],
            Some(&body),
        )
        .ok()
        .map(|(status, _)| status)
        .filter(|status| *status > 0)
    }

    pub fn health(&self) -> Value {
        super::get(&format!("{}/health", self.server.url))
            .unwrap()
            .1
    }
}
