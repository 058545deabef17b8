//! Shared test harness: a temp data dir, the real `relaybox` binary started on port 0, and a
//! small blocking HTTP/1.1 client (so tests depend on nothing but std).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod bare_env;
pub mod disk_faults;
pub mod faults;
pub mod in_process;
pub mod pg_server;
pub mod postgres;
pub mod raw_http;
pub mod redis_fixture;
pub mod relay_env;
pub mod wait;

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const ADMIN_KEY: &str = "test-admin-key-0123456789abcdef";

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_relaybox")
}

/// A `relaybox` command with a clean environment pointing at `data_dir`.
pub fn relaybox(data_dir: &Path) -> Command {
    let mut cmd = Command::new(bin());
    for (name, _) in std::env::vars() {
        if name.starts_with("RELAYBOX_") {
            cmd.env_remove(name);
        }
    }
    cmd.env("RELAYBOX_DATA_DIR", data_dir)
        .env("RELAYBOX_LOG_LEVEL", "warn");
    cmd
}

/// Run a CLI command to completion.
pub fn run_cli(data_dir: &Path, args: &[&str]) -> Output {
    relaybox(data_dir)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run relaybox")
}

pub struct TestServer {
    pub child: Child,
    pub url: String,
    pub data_dir: PathBuf,
    pub stderr_path: PathBuf,
}

impl TestServer {
    /// Start `relaybox serve` on port 0 and wait until it answers /health.
    pub fn start(data_dir: &Path, extra_env: &[(&str, &str)]) -> TestServer {
        Self::try_start(data_dir, extra_env)
            .unwrap_or_else(|log| panic!("server did not start:\n{log}"))
    }

    pub fn try_start(data_dir: &Path, extra_env: &[(&str, &str)]) -> Result<TestServer, String> {
        std::fs::create_dir_all(data_dir).unwrap();
        let _ = std::fs::remove_file(data_dir.join("control.json"));
        let stderr_path = data_dir.with_extension(format!("stderr-{}.log", std::process::id()));
        let stderr = std::fs::File::create(&stderr_path).unwrap();
        let mut cmd = relaybox(data_dir);
        cmd.args(["serve", "--listen", "127.0.0.1:0"])
            .env("RELAYBOX_ADMIN_KEY", ADMIN_KEY)
            .env("RELAYBOX_LOG_LEVEL", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr);
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                let log = std::fs::read_to_string(&stderr_path).unwrap_or_default();
                return Err(format!("exited with {status}:\n{log}"));
            }
            if let Ok(text) = std::fs::read_to_string(data_dir.join("control.json"))
                && let Ok(control) = serde_json::from_str::<Value>(&text)
            {
                let url = control["url"].as_str().unwrap().to_string();
                if let Ok((200, _)) = get(&format!("{url}/health")) {
                    return Ok(TestServer {
                        child,
                        url,
                        data_dir: data_dir.to_path_buf(),
                        stderr_path,
                    });
                }
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                return Err(std::fs::read_to_string(&stderr_path).unwrap_or_default());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn admin(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        request(
            method,
            &format!("{}/admin/api{path}", self.url),
            &[("authorization", &format!("Bearer {ADMIN_KEY}"))],
            body,
        )
        .unwrap()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// SIGTERM and wait for a clean exit.
    pub fn stop(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "server did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL: no chance to clean up.
    pub fn kill9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn get(url: &str) -> std::io::Result<(u16, Value)> {
    request("GET", url, &[], None)
}

/// One HTTP/1.1 request with `Connection: close`; the body is parsed as JSON when it can be.
pub fn request(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<&Value>,
) -> std::io::Result<(u16, Value)> {
    let (status, text) = request_raw(method, url, headers, body.map(Value::to_string).as_deref())?;
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Ok((status, value))
}

pub fn request_raw(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> std::io::Result<(u16, String)> {
    let rest = url.strip_prefix("http://").expect("http url");
    let (host, path) = rest
        .split_once('/')
        .map_or((rest, "/".to_string()), |(h, p)| (h, format!("/{p}")));
    let mut stream = TcpStream::connect(host)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let body = body.unwrap_or("");
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nhost: {host}\r\nconnection: close\r\ncontent-length: {}\r\n",
        body.len()
    );
    if !body.is_empty() {
        head.push_str("content-type: application/json\r\n");
    }
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(body.as_bytes())?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_string()
    };
    Ok((status, body))
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if size == 0 || rest.len() < size {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].strip_prefix("\r\n").unwrap_or(&rest[size..]);
    }
    out
}

/// Every file's bytes under `dir`, concatenated (for "no plaintext secret on disk" checks).
pub fn all_bytes(dir: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(all_bytes(&path));
        } else if let Ok(bytes) = std::fs::read(&path) {
            out.extend(bytes);
        }
    }
    out
}

pub fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// Poll `check` until it is true or `timeout` passes.
pub fn eventually(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if check() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}
