//! The instance lock: one relaybox process per data dir, held by `flock` plus a heartbeat
//! body that also records the owner's listen address for CLI commands.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{self, Read as _, Seek as _, SeekFrom};
use std::os::unix::fs::{FileExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// The lock file's name in the data dir.
pub const LOCK_FILE: &str = "instance.lock";
/// How often the holder should call [`InstanceLock::heartbeat`].
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(5);
/// A heartbeat at least this old (or this far in the future) belongs to a dead owner.
pub const STALE_AFTER: Duration = Duration::from_secs(15);

/// The body is padded with spaces to a multiple of this, so a heartbeat rewrites the same
/// number of bytes and a concurrent reader never sees the tail of a longer old body.
const BODY_BLOCK: usize = 512;

/// The JSON body of `instance.lock`: who holds the data dir.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockOwner {
    /// Random per acquisition (UUIDv7).
    pub instance_id: String,
    pub hostname: String,
    pub pid: u32,
    /// What the owner is doing: `serve`, `keys`, `backup`, …
    pub purpose: String,
    /// RFC 3339 UTC.
    pub started_at: String,
    /// RFC 3339 UTC; rewritten every [`HEARTBEAT_INTERVAL`].
    pub heartbeat_at: String,
    /// `/proc/sys/kernel/random/boot_id`: the same host kernel and boot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot_id: Option<String>,
    /// `/proc/self/ns/pid`: pids are comparable only within one pid namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid_ns: Option<String>,
    /// Start time of the process in clock ticks after boot, to tell a reused pid apart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proc_start: Option<u64>,
    /// The address the server listens on, once it does (for CLI commands to find it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
    /// Set when the owner let go of the lock cleanly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub released_at: Option<String>,
}

impl LockOwner {
    /// How long ago the last heartbeat was (negative when it is in the future).
    #[must_use]
    pub fn heartbeat_age(&self, now: OffsetDateTime) -> Option<time::Duration> {
        let at = OffsetDateTime::parse(&self.heartbeat_at, &Rfc3339).ok()?;
        Some(now - at)
    }

    /// Whether this owner is alive, judged from this process: not released, heartbeat younger
    /// than [`STALE_AFTER`], and, when it ran on this host (same hostname, boot and pid
    /// namespace), its process still exists.
    #[must_use]
    pub fn is_live(&self) -> bool {
        liveness(self, &Identity::current(), OffsetDateTime::now_utc()).is_some()
    }

    fn describe(&self) -> String {
        format!(
            "pid {} on {}, {}, since {}",
            self.pid, self.hostname, self.purpose, self.started_at
        )
    }
}

/// Why the instance lock was not taken (or was lost).
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process holds the `flock` on `instance.lock`.
    #[error("{}", held_message(data_dir, *pid, purpose.as_deref(), since.as_deref()))]
    Held {
        data_dir: PathBuf,
        pid: Option<u32>,
        purpose: Option<String>,
        since: Option<String>,
    },
    /// The `flock` was granted, but the body names another live owner: the same folder is
    /// reachable through two paths, or the file system ignores locks.
    #[error(
        "another relaybox ({}) refreshed {}/instance.lock {}s ago, but its file lock is not visible from here: the same folder is probably reached through two paths (Unraid /mnt/user/… and /mnt/cache/…) or this file system ignores locks. Stop the other relaybox first; if it is really gone, start again in {}s",
        owner.describe(), data_dir.display(), heartbeat_age.as_secs(), STALE_AFTER.saturating_sub(*heartbeat_age).as_secs().max(1)
    )]
    InUse {
        data_dir: PathBuf,
        owner: Box<LockOwner>,
        heartbeat_age: Duration,
    },
    /// While holding the lock, its body was overwritten by another process.
    #[error(
        "another relaybox ({}) has taken over {}/instance.lock: two processes are using the same data dir, probably through two paths (Unraid /mnt/user/… and /mnt/cache/…); stop one of them",
        owner.describe(), data_dir.display()
    )]
    TakenOver {
        data_dir: PathBuf,
        owner: Box<LockOwner>,
    },
    #[error("cannot use {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl LockError {
    /// For [`LockError::InUse`]: when the other owner's heartbeat will be stale, if it stops.
    /// A server restarted right after a crash (same container, new pid namespace) may wait
    /// this long and try again.
    #[must_use]
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            LockError::InUse { heartbeat_age, .. } => {
                Some(STALE_AFTER.saturating_sub(*heartbeat_age) + Duration::from_secs(1))
            }
            _ => None,
        }
    }
}

fn held_message(
    data_dir: &Path,
    pid: Option<u32>,
    purpose: Option<&str>,
    since: Option<&str>,
) -> String {
    let mut who = Vec::new();
    if let Some(pid) = pid {
        who.push(format!("pid {pid}"));
    }
    if let Some(purpose) = purpose {
        who.push(purpose.to_owned());
    }
    if let Some(since) = since {
        who.push(format!("since {since}"));
    }
    let who = if who.is_empty() {
        String::new()
    } else {
        format!(" ({})", who.join(", "))
    };
    format!(
        "another relaybox{who} is using {}; stop it first — or, for keys/channels commands, they talk to the running server automatically",
        data_dir.display()
    )
}

/// Instance ids of the locks this process holds, to recognise our own body when the same
/// folder is reached through a second path within one process.
static HELD_HERE: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn held_here() -> MutexGuard<'static, Vec<String>> {
    HELD_HERE.lock().unwrap_or_else(PoisonError::into_inner)
}

/// An exclusive hold on a data dir. Dropping it marks the body released and unlocks; the file
/// stays.
#[derive(Debug)]
pub struct InstanceLock {
    file: File,
    data_dir: PathBuf,
    path: PathBuf,
    owner: Mutex<LockOwner>,
}

impl InstanceLock {
    /// Take `data_dir/instance.lock` (the folder must exist) for `purpose` (`serve`, `keys`,
    /// `backup`, …).
    pub fn acquire(data_dir: &Path, purpose: &str) -> Result<InstanceLock, LockError> {
        let path = data_dir.join(LOCK_FILE);
        let io_err = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(io_err)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let owner = read_body_retrying(&path);
                return Err(LockError::Held {
                    data_dir: data_dir.to_path_buf(),
                    pid: owner.as_ref().map(|o| o.pid),
                    purpose: owner.as_ref().map(|o| o.purpose.clone()),
                    since: owner.map(|o| o.started_at),
                });
            }
            Err(TryLockError::Error(err)) => {
                // Some shares refuse flock outright; the heartbeat body still protects us.
                tracing::warn!(path = %path.display(), "cannot lock instance.lock ({err}); relying on its heartbeat only");
            }
        }

        let me = Identity::current();
        let now = OffsetDateTime::now_utc();
        if let Some(previous) = read_body_retrying(&path)
            && let Some(age) = liveness(&previous, &me, now)
        {
            return Err(LockError::InUse {
                data_dir: data_dir.to_path_buf(),
                owner: Box::new(previous),
                heartbeat_age: age,
            });
        }

        let stamp = rfc3339(now);
        let owner = LockOwner {
            instance_id: uuid::Uuid::now_v7().to_string(),
            hostname: me.hostname,
            pid: me.pid,
            purpose: purpose.to_owned(),
            started_at: stamp.clone(),
            heartbeat_at: stamp,
            boot_id: me.boot_id,
            pid_ns: me.pid_ns,
            proc_start: me.proc_start,
            listen: None,
            released_at: None,
        };
        write_body(&file, &owner).map_err(io_err)?;
        file.sync_data().map_err(io_err)?;
        held_here().push(owner.instance_id.clone());
        Ok(InstanceLock {
            file,
            data_dir: data_dir.to_path_buf(),
            path,
            owner: Mutex::new(owner),
        })
    }

    /// Refresh `heartbeat_at`. Call it every [`HEARTBEAT_INTERVAL`]. Fails with
    /// [`LockError::TakenOver`] when another process has written its own body meanwhile (two
    /// processes on one data dir through alias paths): the caller should shut down.
    pub fn heartbeat(&self) -> Result<(), LockError> {
        let mut owner = self.owner();
        self.check_still_ours(&owner)?;
        owner.heartbeat_at = rfc3339(OffsetDateTime::now_utc());
        write_body(&self.file, &owner).map_err(|source| self.io_error(source))
    }

    /// Record the address the server listens on, for CLI commands that look for it with
    /// [`read_owner`].
    pub fn set_listen(&self, listen: &str) -> Result<(), LockError> {
        let mut owner = self.owner();
        self.check_still_ours(&owner)?;
        owner.listen = Some(listen.to_owned());
        owner.heartbeat_at = rfc3339(OffsetDateTime::now_utc());
        write_body(&self.file, &owner).map_err(|source| self.io_error(source))
    }

    /// The body this lock wrote.
    #[must_use]
    pub fn owner_info(&self) -> LockOwner {
        self.owner().clone()
    }

    /// `data_dir/instance.lock`.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn owner(&self) -> MutexGuard<'_, LockOwner> {
        self.owner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn io_error(&self, source: io::Error) -> LockError {
        LockError::Io {
            path: self.path.clone(),
            source,
        }
    }

    fn check_still_ours(&self, owner: &LockOwner) -> Result<(), LockError> {
        match read_body_from(&self.file) {
            Some(current) if current.instance_id != owner.instance_id => {
                Err(LockError::TakenOver {
                    data_dir: self.data_dir.clone(),
                    owner: Box::new(current),
                })
            }
            _ => Ok(()),
        }
    }
}

impl Drop for InstanceLock {
    fn drop(&mut self) {
        let mut owner = self.owner().clone();
        held_here().retain(|id| *id != owner.instance_id);
        if self.check_still_ours(&owner).is_ok() {
            owner.released_at = Some(rfc3339(OffsetDateTime::now_utc()));
            if let Err(err) = write_body(&self.file, &owner) {
                tracing::warn!(path = %self.path.display(), "cannot mark instance.lock released: {err}");
            }
        }
        // Unlock explicitly rather than rely on the close: a child process forked by another
        // thread shares this open file description until it execs, and would keep the lock.
        if let Err(err) = self.file.unlock() {
            tracing::warn!(path = %self.path.display(), "cannot unlock instance.lock: {err}");
        }
    }
}

/// The live owner of `data_dir`, if any: what CLI commands use to find a running server.
/// `None` when there is no lock file, it was released, or its owner is gone.
#[must_use]
pub fn read_owner(data_dir: &Path) -> Option<LockOwner> {
    let owner = read_body_retrying(&data_dir.join(LOCK_FILE))?;
    owner.is_live().then_some(owner)
}

/// Who this process is, for the liveness test.
#[derive(Debug, Clone)]
struct Identity {
    hostname: String,
    pid: u32,
    boot_id: Option<String>,
    pid_ns: Option<String>,
    proc_start: Option<u64>,
}

impl Identity {
    fn current() -> Identity {
        let hostname = read_trimmed("/proc/sys/kernel/hostname")
            .or_else(|| read_trimmed("/etc/hostname"))
            .unwrap_or_else(|| "unknown".to_owned());
        Identity {
            hostname,
            pid: std::process::id(),
            boot_id: read_trimmed("/proc/sys/kernel/random/boot_id"),
            pid_ns: std::fs::read_link("/proc/self/ns/pid")
                .ok()
                .map(|target| target.to_string_lossy().into_owned()),
            proc_start: proc_start_time("self"),
        }
    }

    /// Same hostname, same kernel boot and same pid namespace: pids are comparable.
    fn same_host(&self, owner: &LockOwner) -> bool {
        self.hostname == owner.hostname
            && self.boot_id.is_some()
            && self.boot_id == owner.boot_id
            && self.pid_ns.is_some()
            && self.pid_ns == owner.pid_ns
    }
}

fn read_trimmed(path: &str) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

/// Field 22 (`starttime`) of `/proc/<pid>/stat`. The command name (field 2) may hold spaces
/// and parentheses, so fields are counted after its last `)`.
fn proc_start_time(pid: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(19)?.parse().ok()
}

/// `Some(heartbeat age)` when `owner` is alive as seen by `me` at `now`.
fn liveness(owner: &LockOwner, me: &Identity, now: OffsetDateTime) -> Option<Duration> {
    if owner.released_at.is_some() {
        return None;
    }
    let age = owner.heartbeat_age(now)?;
    let stale = time::Duration::try_from(STALE_AFTER).ok()?;
    if age.abs() >= stale {
        return None;
    }
    if me.same_host(owner) {
        let alive = if owner.pid == me.pid {
            // This very process (or an earlier one that had our pid): alive only if it is one
            // of our own current locks, reached through another path.
            held_here().contains(&owner.instance_id)
        } else {
            let pid = owner.pid.to_string();
            Path::new("/proc").join(&pid).exists()
                && owner
                    .proc_start
                    .is_none_or(|start| proc_start_time(&pid) == Some(start))
        };
        if !alive {
            return None;
        }
    }
    Some(Duration::try_from(age.abs()).unwrap_or_default())
}

fn rfc3339(at: OffsetDateTime) -> String {
    let whole_seconds = at.replace_nanosecond(0).unwrap_or(at);
    whole_seconds
        .format(&Rfc3339)
        .unwrap_or_else(|_| at.unix_timestamp().to_string())
}

fn write_body(file: &File, owner: &LockOwner) -> io::Result<()> {
    let mut body = serde_json::to_vec(owner).map_err(io::Error::other)?;
    let padded = (body.len() + 1).div_ceil(BODY_BLOCK) * BODY_BLOCK;
    body.resize(padded - 1, b' ');
    body.push(b'\n');
    file.write_all_at(&body, 0)?;
    file.set_len(body.len() as u64)
}

fn parse_body(text: &str) -> Option<LockOwner> {
    serde_json::from_str(text.trim()).ok()
}

fn read_body_from(file: &File) -> Option<LockOwner> {
    let mut reader = file;
    let mut text = String::new();
    reader.seek(SeekFrom::Start(0)).ok()?;
    reader.read_to_string(&mut text).ok()?;
    parse_body(&text)
}

/// Read a lock file's body; a torn read (a heartbeat being written) is retried briefly.
fn read_body_retrying(path: &Path) -> Option<LockOwner> {
    for attempt in 0..3 {
        let text = std::fs::read_to_string(path).ok()?;
        if text.trim().is_empty() {
            return None;
        }
        if let Some(owner) = parse_body(&text) {
            return Some(owner);
        }
        if attempt < 2 {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn foreign_owner(hostname: &str, pid: u32, heartbeat: OffsetDateTime) -> LockOwner {
        LockOwner {
            instance_id: uuid::Uuid::now_v7().to_string(),
            hostname: hostname.to_owned(),
            pid,
            purpose: "serve".to_owned(),
            started_at: rfc3339(heartbeat - time::Duration::hours(1)),
            heartbeat_at: rfc3339(heartbeat),
            boot_id: None,
            pid_ns: None,
            proc_start: None,
            listen: None,
            released_at: None,
        }
    }

    /// An owner that ran on this host, in this pid namespace, as `pid`.
    fn local_owner(pid: u32, heartbeat: OffsetDateTime) -> LockOwner {
        let me = Identity::current();
        LockOwner {
            boot_id: me.boot_id,
            pid_ns: me.pid_ns,
            ..foreign_owner(&me.hostname, pid, heartbeat)
        }
    }

    fn write_lock_file(dir: &Path, owner: &LockOwner) {
        std::fs::write(
            dir.join(LOCK_FILE),
            serde_json::to_vec_pretty(owner).unwrap(),
        )
        .unwrap();
    }

    fn body(dir: &Path) -> LockOwner {
        parse_body(&std::fs::read_to_string(dir.join(LOCK_FILE)).unwrap()).unwrap()
    }

    #[test]
    fn second_acquire_in_one_process_conflicts_and_drop_releases() {
        let dir = tempfile::tempdir().unwrap();
        let lock = InstanceLock::acquire(dir.path(), "serve").unwrap();
        let len = std::fs::metadata(lock.path()).unwrap().len();
        assert_eq!(len % BODY_BLOCK as u64, 0);
        let owner = body(dir.path());
        assert_eq!(
            (owner.pid, owner.purpose.as_str()),
            (std::process::id(), "serve")
        );
        assert_eq!(owner.started_at, owner.heartbeat_at);
        assert!(owner.boot_id.is_some() && owner.proc_start.is_some());

        // flock belongs to the open file description: a second open in the same process is
        // refused by the kernel itself, not by the body check.
        let err = InstanceLock::acquire(dir.path(), "keys").unwrap_err();
        let LockError::Held {
            pid,
            purpose,
            since,
            ..
        } = &err
        else {
            panic!("{err:?}")
        };
        assert_eq!(*pid, Some(std::process::id()));
        assert_eq!(purpose.as_deref(), Some("serve"));
        assert_eq!(since.as_deref(), Some(owner.started_at.as_str()));
        let text = err.to_string();
        assert!(
            text.contains(&format!("(pid {}, serve, since ", std::process::id())),
            "{text}"
        );
        assert!(
            text.contains("stop it first") && text.contains("keys/channels"),
            "{text}"
        );
        assert!(err.retry_after().is_none());

        assert_eq!(
            read_owner(dir.path()).unwrap().instance_id,
            owner.instance_id
        );
        lock.set_listen("127.0.0.1:8080").unwrap();
        assert_eq!(
            read_owner(dir.path()).unwrap().listen.as_deref(),
            Some("127.0.0.1:8080")
        );
        lock.heartbeat().unwrap();

        drop(lock);
        let released = body(dir.path());
        assert!(released.released_at.is_some());
        assert!(read_owner(dir.path()).is_none());
        // A restart right away is fine: the body says released.
        let again = InstanceLock::acquire(dir.path(), "serve").unwrap();
        assert_ne!(again.owner_info().instance_id, owner.instance_id);
    }

    #[test]
    fn stale_body_of_a_dead_local_process_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead_pid = child.id();
        child.wait().unwrap();
        write_lock_file(
            dir.path(),
            &local_owner(dead_pid, OffsetDateTime::now_utc()),
        );
        assert!(read_owner(dir.path()).is_none());
        let lock = InstanceLock::acquire(dir.path(), "serve").unwrap();
        assert_eq!(body(dir.path()).pid, std::process::id());
        drop(lock);
    }

    #[test]
    fn live_local_process_with_fresh_heartbeat_refuses() {
        // A live process (pid 1 exists in every pid namespace) whose lock we cannot see.
        let dir = tempfile::tempdir().unwrap();
        let owner = local_owner(1, OffsetDateTime::now_utc());
        write_lock_file(dir.path(), &owner);
        let err = InstanceLock::acquire(dir.path(), "serve").unwrap_err();
        assert!(matches!(err, LockError::InUse { .. }), "{err:?}");

        // Same pid, but its recorded start time says the pid has been reused since.
        let reused = LockOwner {
            proc_start: Some(u64::MAX),
            ..owner
        };
        write_lock_file(dir.path(), &reused);
        drop(InstanceLock::acquire(dir.path(), "serve").unwrap());
    }

    #[test]
    fn fresh_foreign_heartbeat_refuses_and_stale_one_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let now = OffsetDateTime::now_utc();
        write_lock_file(
            dir.path(),
            &foreign_owner("other-host", 4242, now - time::Duration::seconds(3)),
        );
        let err = InstanceLock::acquire(dir.path(), "serve").unwrap_err();
        let LockError::InUse { heartbeat_age, .. } = &err else {
            panic!("{err:?}")
        };
        assert!(*heartbeat_age <= Duration::from_secs(4));
        let text = err.to_string();
        assert!(
            text.contains("pid 4242 on other-host") && text.contains("two paths"),
            "{text}"
        );
        assert!(err.retry_after().unwrap() <= STALE_AFTER);
        assert_eq!(read_owner(dir.path()).unwrap().hostname, "other-host");
        // The refused attempt left the other owner's body alone.
        assert_eq!(body(dir.path()).pid, 4242);

        write_lock_file(
            dir.path(),
            &foreign_owner("other-host", 4242, now - time::Duration::seconds(60)),
        );
        assert!(read_owner(dir.path()).is_none());
        drop(InstanceLock::acquire(dir.path(), "serve").unwrap());

        let released = LockOwner {
            released_at: Some(rfc3339(now)),
            ..foreign_owner("other-host", 4242, now)
        };
        write_lock_file(dir.path(), &released);
        drop(InstanceLock::acquire(dir.path(), "serve").unwrap());

        // A clock far ahead is treated as stale rather than blocking forever.
        write_lock_file(
            dir.path(),
            &foreign_owner("other-host", 4242, now + time::Duration::minutes(10)),
        );
        drop(InstanceLock::acquire(dir.path(), "serve").unwrap());
    }

    #[test]
    fn earlier_incarnation_with_our_pid_is_stale() {
        // A container restarted after a crash: same host, same pid (1 in the container), but
        // not a lock this process holds.
        let dir = tempfile::tempdir().unwrap();
        write_lock_file(
            dir.path(),
            &local_owner(std::process::id(), OffsetDateTime::now_utc()),
        );
        drop(InstanceLock::acquire(dir.path(), "serve").unwrap());
    }

    #[test]
    fn alias_path_in_one_process_refuses() {
        // The same lock file seen through a second path, where flock does not conflict: model
        // it with a copy of the body in another folder.
        let first = tempfile::tempdir().unwrap();
        let alias = tempfile::tempdir().unwrap();
        let lock = InstanceLock::acquire(first.path(), "serve").unwrap();
        std::fs::copy(lock.path(), alias.path().join(LOCK_FILE)).unwrap();
        let err = InstanceLock::acquire(alias.path(), "keys").unwrap_err();
        assert!(matches!(err, LockError::InUse { .. }), "{err:?}");
        drop(lock);
    }

    #[test]
    fn heartbeat_detects_a_takeover_and_drop_leaves_the_new_body() {
        let dir = tempfile::tempdir().unwrap();
        let lock = InstanceLock::acquire(dir.path(), "serve").unwrap();
        let intruder = foreign_owner("other-host", 777, OffsetDateTime::now_utc());
        write_lock_file(dir.path(), &intruder);
        let err = lock.heartbeat().unwrap_err();
        assert!(matches!(err, LockError::TakenOver { .. }), "{err:?}");
        assert!(err.to_string().contains("taken over"));
        drop(lock);
        assert_eq!(body(dir.path()), intruder);
    }

    #[test]
    fn unreadable_body_does_not_block() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(LOCK_FILE), b"{not json").unwrap();
        assert!(read_owner(dir.path()).is_none());
        drop(InstanceLock::acquire(dir.path(), "serve").unwrap());
        assert!(read_owner(tempfile::tempdir().unwrap().path()).is_none());
        let missing = InstanceLock::acquire(&dir.path().join("missing"), "serve").unwrap_err();
        assert!(matches!(missing, LockError::Io { .. }));
    }
}
