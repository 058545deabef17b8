//! A private PostgreSQL server for one test, which the test may stop hard and start again
//! ("PostgreSQL went away" stories). The shared server of tests/services.sh must never be
//! stopped; this one lives in a temp dir on a free loopback port and is gone with its value.
//!
//! Debian's server binaries (`/usr/lib/postgresql/<version>/bin`, the highest version) run
//! `initdb` and `pg_ctl`; as root they run as the `postgres` user (initdb refuses root). Without
//! the binaries a test fails in CI (`CI=true`) and skips elsewhere, saying why — like
//! tests/common/postgres.rs.
//!
//! The methods block (they wait for `pg_ctl`); from async tests call them on a multi-thread
//! runtime or through `spawn_blocking`, so the tasks under test keep running meanwhile.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use relaybox::store::postgres::Target;

/// A running (or stopped) PostgreSQL cluster of our own.
pub struct PgServer {
    bindir: PathBuf,
    /// Owned by the cluster's user; holds `data/`, the server log and the Unix socket.
    pg_dir: PathBuf,
    port: u16,
    running: bool,
    // Last: the directory is removed after Drop stopped the server.
    _dir: tempfile::TempDir,
}

impl PgServer {
    /// initdb + start on a free port. `None` (skip, with the reason on stderr) when the
    /// server binaries are missing outside CI.
    pub fn start() -> Option<Self> {
        let bindir = bindir()?;
        let dir = tempfile::Builder::new()
            .prefix("relaybox-pg-")
            .tempdir()
            .unwrap();
        // The postgres user must reach its directory inside.
        set_mode(dir.path(), 0o755);
        let pg_dir = dir.path().join("pg");
        std::fs::create_dir(&pg_dir).unwrap();
        if as_root() {
            chown_postgres(&pg_dir);
        }
        let mut server = Self {
            bindir,
            pg_dir,
            port: 0,
            running: false,
            _dir: dir,
        };
        let initdb = server
            .pg_command("initdb")
            .arg("-D")
            .arg(server.data_dir())
            .args([
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ])
            .output()
            .unwrap();
        assert_success("initdb", &initdb);
        // A free port can be taken by someone else before the server binds it: try a few.
        let mut last_failure = String::new();
        for _ in 0..5 {
            server.port = free_port();
            match server.pg_ctl_start() {
                Ok(()) => {
                    server.running = true;
                    return Some(server);
                }
                Err(failure) => last_failure = failure,
            }
        }
        panic!("PostgreSQL did not start:\n{last_failure}");
    }

    /// `postgres://postgres@127.0.0.1:<port>/postgres`.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// The server's `postgres` database as a relaybox target.
    pub fn target(&self) -> Target {
        Target::parse(&self.url()).unwrap()
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn is_running(&self) -> bool {
        self.running
    }

    /// `pg_ctl stop -m immediate`: every server process is killed at once (no checkpoint;
    /// clients see their connections drop). Committed transactions survive: the WAL is
    /// written at each commit and replayed by [`Self::start_again`].
    pub fn stop_immediate(&mut self) {
        assert!(self.running, "stop_immediate: the server is not running");
        let stop = self.pg_ctl(&["stop", "-m", "immediate", "-w", "-t", "30"]);
        assert_success("pg_ctl stop -m immediate", &stop);
        self.running = false;
    }

    /// Start the stopped server again: same port, same data (crash recovery replays the WAL).
    pub fn start_again(&mut self) {
        assert!(!self.running, "start_again: the server is already running");
        self.pg_ctl_start()
            .unwrap_or_else(|failure| panic!("PostgreSQL did not start again:\n{failure}"));
        self.running = true;
    }

    /// The server's log so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn data_dir(&self) -> PathBuf {
        self.pg_dir.join("data")
    }

    fn log_path(&self) -> PathBuf {
        self.pg_dir.join("postgres.log")
    }

    fn pg_ctl_start(&self) -> Result<(), String> {
        // fsync off: a stop kills processes, never the machine, so the OS keeps what was
        // written. synchronous_commit stays on: a commit the client saw must survive a hard
        // stop, which is what the stories using this server check.
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {} -c fsync=off -c full_page_writes=off",
            self.port,
            self.pg_dir.display()
        );
        let start = self.pg_ctl(&["start", "-w", "-t", "30", "-o", &options]);
        if start.status.success() {
            Ok(())
        } else {
            Err(format!("{}\n{}", describe_output(&start), self.log()))
        }
    }

    fn pg_ctl(&self, args: &[&str]) -> Output {
        self.pg_command("pg_ctl")
            .arg("-D")
            .arg(self.data_dir())
            .arg("-l")
            .arg(self.log_path())
            .args(args)
            .output()
            .unwrap()
    }

    /// A server tool, run as the cluster's owner: `postgres` when we are root, ourselves
    /// otherwise. From `/`, which the postgres user can always enter.
    fn pg_command(&self, tool: &str) -> Command {
        let program = self.bindir.join(tool);
        let mut cmd = if as_root() {
            let mut cmd = Command::new("runuser");
            cmd.args(["-u", "postgres", "--"]).arg(program);
            cmd
        } else {
            Command::new(program)
        };
        cmd.current_dir("/").stdin(Stdio::null());
        cmd
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        if self.running {
            let _ = self.pg_ctl(&["stop", "-m", "immediate", "-w", "-t", "30"]);
        }
    }
}

/// The highest installed version's bin dir; see the module docs for when it is `None`.
fn bindir() -> Option<PathBuf> {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            (bin.join("initdb").is_file() && bin.join("pg_ctl").is_file()).then_some((version, bin))
        })
        .collect();
    found.sort();
    if let Some((_, bin)) = found.pop() {
        return Some(bin);
    }
    let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
    assert!(
        !ci,
        "PostgreSQL server binaries are missing under /usr/lib/postgresql (install the postgresql package; tests/services.sh services_install does)"
    );
    eprintln!(
        "skipped: PostgreSQL server binaries are missing under /usr/lib/postgresql (install the postgresql package)"
    );
    None
}

fn as_root() -> bool {
    // The effective uid through `id -u`: the tests depend on no libc crate.
    static ROOT: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ROOT.get_or_init(|| {
        Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
    })
}

fn chown_postgres(path: &Path) {
    let out = Command::new("chown")
        .arg("postgres:")
        .arg(path)
        .output()
        .unwrap();
    assert_success(
        "chown postgres (is the postgres user missing? reinstall the postgresql package)",
        &out,
    );
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn assert_success(what: &str, out: &Output) {
    assert!(
        out.status.success(),
        "{what} failed: {}",
        describe_output(out)
    );
}

fn describe_output(out: &Output) -> String {
    format!(
        "{}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
