//! Startup guard for the data dir (DESIGN.md "Startup guard").
//!
//! Two independent protections, both taken before any store is opened:
//!
//! 1. [`check_data_dir`]: which file system holds the data dir. SQLite's WAL and `flock` are
//!    unreliable on network shares and FUSE unions (Unraid's `/mnt/user` is the FUSE file
//!    system `shfs`), so those are refused unless the operator allows them, in which case SQLite
//!    must run WAL with `locking_mode=EXCLUSIVE`. A data dir inside a container's writable
//!    layer (overlayfs) is allowed with a warning. The crate forbids `unsafe`, so instead of
//!    `statfs(2)` this reads `/proc/self/mountinfo` and picks the mount with the longest
//!    mount-point prefix of the canonical path.
//!
//! 2. [`InstanceLock`]: one relaybox process per data dir. An exclusive `flock` on
//!    `instance.lock` (std's [`File::try_lock`]) plus a JSON body naming the owner, with a
//!    heartbeat rewritten every [`HEARTBEAT_INTERVAL`]. The body catches what `flock` cannot
//!    see: the same folder reached through two paths (Unraid `/mnt/user/...` vs
//!    `/mnt/cache/...`), or a file system that ignores locks. A body whose owner is alive
//!    (heartbeat younger than [`STALE_AFTER`], not released, and — when it is on this very
//!    host — its process still exists) refuses the start even when the `flock` was granted.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{self, Read as _, Seek as _, SeekFrom};
use std::os::unix::fs::{FileExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

const MOUNTINFO: &str = "/proc/self/mountinfo";

/// The override flag and its env twin, as named in every refusal.
pub const ALLOW_FLAG: &str = "--allow-network-fs";
pub const ALLOW_ENV: &str = "RELAYBOX_ALLOW_NETWORK_FS=true";

// ---------------------------------------------------------------------------------------------
// Mounts
// ---------------------------------------------------------------------------------------------

/// One line of `/proc/self/mountinfo`, unescaped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountInfo {
    /// Where it is mounted in this process's mount namespace.
    pub mount_point: PathBuf,
    /// The folder of the mounted file system that appears at `mount_point` (`/` unless it is a
    /// bind mount; inside a container, the host folder relative to its file system).
    pub root: PathBuf,
    /// Kernel type: `ext4`, `overlay`, `fuse.shfs`, `nfs4`, …
    pub fs_type: String,
    /// Mount source: a device, `server:/export`, `//server/share`, `shfs`, …
    pub source: String,
}

/// Parse the text of `/proc/<pid>/mountinfo`. Malformed lines are skipped.
///
/// Line format (proc_pid_mountinfo(5)): `id parent major:minor root mount-point options
/// [optional-fields…] - fs-type source super-options`. Space, tab, newline and backslash in
/// paths are written as `\040`, `\011`, `\012`, `\134`.
#[must_use]
pub fn parse_mountinfo(text: &str) -> Vec<MountInfo> {
    text.lines().filter_map(parse_mountinfo_line).collect()
}

fn parse_mountinfo_line(line: &str) -> Option<MountInfo> {
    let mut fields = line.split(' ');
    let _mount_id = fields.next()?;
    let _parent_id = fields.next()?;
    let _dev = fields.next()?;
    let root = fields.next()?;
    let mount_point = fields.next()?;
    let _options = fields.next()?;
    // Zero or more optional fields (`shared:1`, `master:2`, …), ended by a lone `-`.
    loop {
        if fields.next()? == "-" {
            break;
        }
    }
    let fs_type = fields.next()?;
    let source = fields.next().unwrap_or_default();
    if fs_type.is_empty() || !mount_point.starts_with('/') {
        return None;
    }
    Some(MountInfo {
        mount_point: PathBuf::from(unescape_octal(mount_point)),
        root: PathBuf::from(unescape_octal(root)),
        fs_type: unescape_octal(fs_type),
        source: unescape_octal(source),
    })
}

/// Undo the kernel's `\ooo` escapes (three octal digits).
fn unescape_octal(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 3 < bytes.len() {
            let digits = &bytes[i + 1..i + 4];
            if digits.iter().all(|d| (b'0'..=b'7').contains(d)) {
                let value = digits
                    .iter()
                    .fold(0u32, |acc, d| acc * 8 + u32::from(d - b'0'));
                if let Ok(byte) = u8::try_from(value) {
                    out.push(byte);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The mount that holds `path` (absolute, already resolved): the longest mount point that is
/// a component-wise prefix of it. Among mounts stacked on the same point the last listed (the
/// top-most) wins.
#[must_use]
pub fn find_mount<'a>(mounts: &'a [MountInfo], path: &Path) -> Option<&'a MountInfo> {
    let mut best: Option<(&MountInfo, usize)> = None;
    for mount in mounts {
        if !path.starts_with(&mount.mount_point) {
            continue;
        }
        let depth = mount.mount_point.components().count();
        if best.is_none_or(|(_, best_depth)| depth >= best_depth) {
            best = Some((mount, depth));
        }
    }
    best.map(|(mount, _)| mount)
}

/// Make `path` absolute and canonical. When it does not exist yet, its nearest existing
/// ancestor is canonicalized and the missing rest appended.
fn resolve(path: &Path) -> io::Result<PathBuf> {
    let absolute = std::path::absolute(path)?;
    let mut missing = Vec::new();
    let mut current = absolute.as_path();
    loop {
        match current.canonicalize() {
            Ok(mut found) => {
                for part in missing.iter().rev() {
                    found.push(part);
                }
                return Ok(found);
            }
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                let (Some(parent), Some(name)) = (current.parent(), current.file_name()) else {
                    return Err(err);
                };
                missing.push(name.to_os_string());
                current = parent;
            }
            Err(err) => return Err(err),
        }
    }
}

fn read_mountinfo() -> io::Result<Vec<MountInfo>> {
    let bytes = std::fs::read(MOUNTINFO)?;
    Ok(parse_mountinfo(&String::from_utf8_lossy(&bytes)))
}

/// The mount that holds `path` (or, when it does not exist yet, its nearest existing
/// ancestor), from `/proc/self/mountinfo`.
pub fn filesystem_of(path: &Path) -> io::Result<MountInfo> {
    let resolved = resolve(path)?;
    let mounts = read_mountinfo()?;
    find_mount(&mounts, &resolved).cloned().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            format!("no mount in {MOUNTINFO} contains {}", resolved.display()),
        )
    })
}

// ---------------------------------------------------------------------------------------------
// Classification and the data-dir check
// ---------------------------------------------------------------------------------------------

/// What a file system type means for the stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsKind {
    /// A local disk file system (ext4, xfs, btrfs, zfs, tmpfs, …): everything works.
    Local,
    /// overlayfs: the container's writable layer, lost when the container is recreated.
    Overlay,
    /// NFS, SMB/CIFS, 9P, Ceph, GlusterFS, AFS: locks and shared memory are unreliable.
    Network,
    /// FUSE (`fuse`, `fuse.*`, `fuseblk`): Unraid's shfs, mergerfs, sshfs, rclone, NTFS-3G.
    Fuse,
    /// The file system could not be determined (no `/proc/self/mountinfo`, or no mount matched).
    Unknown,
}

impl FsKind {
    fn describe(self) -> &'static str {
        match self {
            FsKind::Local => "a local file system",
            FsKind::Overlay => "the container's overlay file system",
            FsKind::Network => "a network file system",
            FsKind::Fuse => "a FUSE file system",
            FsKind::Unknown => "an unknown file system",
        }
    }
}

const NETWORK_TYPES: &[&str] = &[
    "nfs",
    "nfs4",
    "cifs",
    "smb3",
    "smbfs",
    "9p",
    "ceph",
    "glusterfs",
    "afs",
    "ncpfs",
    "lustre",
];

/// Classify a kernel file-system type (the `fs_type` of [`MountInfo`]).
#[must_use]
pub fn classify(fs_type: &str) -> FsKind {
    let fs_type = fs_type.trim().to_ascii_lowercase();
    if fs_type == "fuse" || fs_type == "fuseblk" || fs_type.starts_with("fuse.") {
        FsKind::Fuse
    } else if NETWORK_TYPES.contains(&fs_type.as_str()) {
        FsKind::Network
    } else if fs_type == "overlay" || fs_type == "overlayfs" || fs_type == "aufs" {
        FsKind::Overlay
    } else {
        FsKind::Local
    }
}

/// The outcome of a passed [`check_data_dir`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FsVerdict {
    pub kind: FsKind,
    /// Kernel type, e.g. `ext4`; empty when [`FsKind::Unknown`].
    pub fs_type: String,
    /// The mount point that holds the data dir, when known.
    pub mount_point: Option<PathBuf>,
    /// SQLite must open `logs.sqlite` with WAL + `locking_mode=EXCLUSIVE` (network or FUSE file
    /// system allowed by the operator): no `-shm` file, one process only.
    pub exclusive_locking: bool,
    /// A warning to log at startup (and show in `relaybox doctor`).
    pub warning: Option<String>,
}

/// Why the data dir was refused.
#[derive(Debug, thiserror::Error)]
pub enum FsGuardError {
    #[error(
        "refusing to use {} as the data dir: it is on {fs_type} ({}, mounted at {}), where SQLite's write-ahead log and file locks are not reliable and the stores can be corrupted. {hint}",
        path.display(), kind.describe(), mount_point.display()
    )]
    Unsafe {
        path: PathBuf,
        fs_type: String,
        kind: FsKind,
        mount_point: PathBuf,
        /// What to do instead, including the override.
        hint: String,
    },
    #[error("cannot tell which file system holds the data dir {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Check the file system of the data dir `path` (it need not exist yet).
///
/// Network and FUSE file systems are refused unless `allow_network_fs`; then the verdict asks
/// for exclusive SQLite locking and carries a warning. Overlay is allowed with a warning.
/// Without `/proc/self/mountinfo` (not Linux) the check is skipped with a warning.
pub fn check_data_dir(path: &Path, allow_network_fs: bool) -> Result<FsVerdict, FsGuardError> {
    let resolved = resolve(path).map_err(|source| FsGuardError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mounts = match read_mountinfo() {
        Ok(mounts) => mounts,
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            return Ok(unknown_verdict(
                &resolved,
                &format!("{MOUNTINFO} does not exist"),
            ));
        }
        Err(source) => {
            return Err(FsGuardError::Io {
                path: resolved,
                source,
            });
        }
    };
    check_data_dir_with(&mounts, &resolved, allow_network_fs)
}

/// [`check_data_dir`] on a given mount table, for tests and `relaybox doctor`. `path` must be
/// absolute and already resolved (no symlinks), as [`check_data_dir`] passes it.
pub fn check_data_dir_with(
    mounts: &[MountInfo],
    path: &Path,
    allow_network_fs: bool,
) -> Result<FsVerdict, FsGuardError> {
    let Some(mount) = find_mount(mounts, path) else {
        return Ok(unknown_verdict(
            path,
            &format!("no mount in {MOUNTINFO} contains it"),
        ));
    };
    let kind = classify(&mount.fs_type);
    let shown = path.display();
    let fs_type = &mount.fs_type;
    let (exclusive_locking, warning) = match kind {
        FsKind::Local => {
            let volatile = matches!(fs_type.as_str(), "tmpfs" | "ramfs");
            let warning = volatile.then(|| {
                format!(
                    "the data dir {shown} is on {fs_type} (memory): keys, configuration and logs are lost at reboot"
                )
            });
            (false, warning)
        }
        FsKind::Overlay => (
            false,
            Some(format!(
                "the data dir {shown} is inside the container's writable layer ({fs_type}): mount a volume on it or data is lost when the container is recreated"
            )),
        ),
        FsKind::Network | FsKind::Fuse if !allow_network_fs => {
            return Err(FsGuardError::Unsafe {
                path: path.to_path_buf(),
                fs_type: fs_type.clone(),
                kind,
                mount_point: mount.mount_point.clone(),
                hint: unsafe_hint(mount),
            });
        }
        FsKind::Network | FsKind::Fuse => (
            true,
            Some(format!(
                "the data dir {shown} is on {fs_type} ({}); continuing because network file systems are allowed: logs.sqlite runs with locking_mode=EXCLUSIVE, so nothing else may open it while relaybox runs, and a local disk remains the safe place for the data dir",
                kind.describe()
            )),
        ),
        FsKind::Unknown => (false, None),
    };
    Ok(FsVerdict {
        kind,
        fs_type: fs_type.clone(),
        mount_point: Some(mount.mount_point.clone()),
        exclusive_locking,
        warning,
    })
}

fn unknown_verdict(path: &Path, reason: &str) -> FsVerdict {
    FsVerdict {
        kind: FsKind::Unknown,
        fs_type: String::new(),
        mount_point: None,
        exclusive_locking: false,
        warning: Some(format!(
            "cannot tell which file system holds the data dir {} ({reason}); the network-share check was skipped",
            path.display()
        )),
    }
}

/// What to do instead, for a refused mount.
fn unsafe_hint(mount: &MountInfo) -> String {
    let mut hint = String::new();
    if mount.fs_type == "fuse.shfs" || mount.source == "shfs" {
        hint.push_str("This is an Unraid user share (/mnt/user, FUSE shfs). ");
    } else if mount.fs_type == "fuseblk" {
        hint.push_str("This is a disk mounted through FUSE (fuseblk, e.g. NTFS or exFAT). ");
    }
    hint.push_str(
        "Put the data dir on a local disk (ext4, xfs, btrfs, zfs) instead. On Unraid use \
         /mnt/cache/appdata/relaybox or /mnt/<pool>/appdata/relaybox, not /mnt/user/… \
         (in the container settings, set the host path of /data to it). To run there anyway, \
         accepting the risk, start with ",
    );
    hint.push_str(ALLOW_FLAG);
    hint.push_str(" or set ");
    hint.push_str(ALLOW_ENV);
    hint.push_str(
        ": SQLite then keeps its write-ahead index in memory (locking_mode=EXCLUSIVE) and only \
         one relaybox may use the folder.",
    );
    hint
}

// ---------------------------------------------------------------------------------------------
// Instance lock
// ---------------------------------------------------------------------------------------------

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
            .mode(0o644)
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

    /// Lines as the kernel writes them, from the setups relaybox meets.
    const HOST: &str = "\
22 27 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw
25 24 0:23 / /dev/shm rw,nosuid,nodev shared:3 - tmpfs tmpfs rw,size=24684096k
27 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw,discard
40 27 0:40 / /mnt/cache rw,noatime shared:20 - btrfs /dev/nvme0n1p1 rw,ssd,discard=async,space_cache=v2,subvolid=5,subvol=/
41 27 9:1 / /mnt/disk1 rw,noatime shared:21 - xfs /dev/md1p1 rw,attr2,inode64,logbufs=8,logbsize=32k,noquota
45 27 0:44 / /mnt/user rw,noatime shared:25 - fuse.shfs shfs rw,user_id=0,group_id=0,default_permissions,allow_other
46 27 0:45 / /mnt/username rw,noatime shared:26 - ext4 /dev/sdc1 rw
60 27 0:52 / /mnt/storage rw,relatime shared:30 - fuse.mergerfs mergerfs rw,user_id=0,group_id=0,default_permissions,allow_other
70 27 0:55 / /mnt/nas rw,relatime shared:35 - nfs4 192.168.1.10:/export/relay rw,vers=4.2,rsize=1048576,wsize=1048576,namlen=255,hard,proto=tcp,timeo=600,retrans=2,sec=sys,clientaddr=192.168.1.20,local_lock=none,addr=192.168.1.10
71 27 0:56 / /mnt/smb\\040share rw,relatime shared:36 - cifs //nas/relay\\040data rw,vers=3.1.1,cache=strict,username=me,uid=0,noforceuid,gid=0,noforcegid,addr=192.168.1.10,file_mode=0755,dir_mode=0755,soft,nounix,serverino,mapposix,nobrl,rsize=4194304,wsize=4194304
80 27 0:60 / /mnt/c rw,noatime - 9p C:\\134 rw,dirsync,aname=drvfs;path=C:\\;uid=1000;gid=1000;symlinkroot=/mnt/,mmap,access=client,msize=65536,trans=fd,rfd=5,wfd=5
90 27 0:70 / /mnt/tank/appdata rw,noatime shared:40 - zfs tank/appdata rw,xattr,posixacl
95 27 8:17 / /media/usb rw,nosuid,nodev,relatime shared:45 - fuseblk /dev/sdb1 rw,user_id=0,group_id=0,default_permissions,allow_other,blksize=4096
96 27 0:80 / /mnt/remote rw,nosuid,nodev,relatime shared:46 master:7 - fuse.sshfs me@host:/srv rw,user_id=0,group_id=0
";

    /// Inside a Docker container on Unraid whose /data is bound from /mnt/user/appdata.
    const CONTAINER: &str = "\
1021 960 0:98 / / rw,relatime master:510 - overlay overlay rw,lowerdir=/var/lib/docker/overlay2/l/ABC:/var/lib/docker/overlay2/l/DEF,upperdir=/var/lib/docker/overlay2/xyz/diff,workdir=/var/lib/docker/overlay2/xyz/work
1022 1021 0:101 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw
1030 1021 0:44 /appdata/relaybox /data rw,noatime - fuse.shfs shfs rw,user_id=0,group_id=0,default_permissions,allow_other
1031 1021 0:40 /appdata/other /config rw,noatime - btrfs /dev/nvme0n1p1 rw,ssd,space_cache=v2,subvolid=5,subvol=/appdata/other
1032 1021 254:0 /var/lib/docker/containers/abc/hostname /etc/hostname rw,relatime - ext4 /dev/vda rw
";

    fn mounts() -> Vec<MountInfo> {
        parse_mountinfo(HOST)
    }

    fn mount_at<'a>(mounts: &'a [MountInfo], path: &str) -> &'a MountInfo {
        find_mount(mounts, Path::new(path)).unwrap()
    }

    #[test]
    fn parses_fields_escapes_and_optional_fields() {
        let mounts = mounts();
        assert_eq!(mounts.len(), 14);
        let root = mount_at(&mounts, "/");
        assert_eq!(root.fs_type, "ext4");
        assert_eq!(root.source, "/dev/vda");

        let smb = mount_at(&mounts, "/mnt/smb share/relaybox");
        assert_eq!(smb.mount_point, Path::new("/mnt/smb share"));
        assert_eq!(smb.fs_type, "cifs");
        assert_eq!(smb.source, "//nas/relay data");

        let wsl = mount_at(&mounts, "/mnt/c/Users/me");
        assert_eq!((wsl.fs_type.as_str(), wsl.source.as_str()), ("9p", "C:\\"));

        // Two optional fields before the separator.
        let sshfs = mount_at(&mounts, "/mnt/remote/x");
        assert_eq!(
            (sshfs.fs_type.as_str(), sshfs.source.as_str()),
            ("fuse.sshfs", "me@host:/srv")
        );

        let container = parse_mountinfo(CONTAINER);
        let data = mount_at(&container, "/data");
        assert_eq!(data.root, Path::new("/appdata/relaybox"));
        assert_eq!(
            (data.fs_type.as_str(), data.source.as_str()),
            ("fuse.shfs", "shfs")
        );
    }

    #[test]
    fn skips_malformed_lines() {
        let text =
            "garbage\n1 2 3 / /x rw no-separator ext4\n\n27 1 254:0 / / rw - ext4 /dev/vda rw\n";
        let mounts = parse_mountinfo(text);
        assert_eq!(mounts.len(), 1);
        assert_eq!(mounts[0].mount_point, Path::new("/"));
    }

    #[test]
    fn unescapes_only_valid_octal() {
        assert_eq!(unescape_octal("a\\040b\\011c\\134d"), "a b\tc\\d");
        assert_eq!(unescape_octal("trailing\\04"), "trailing\\04");
        assert_eq!(unescape_octal("not\\9999octal"), "not\\9999octal");
    }

    #[test]
    fn longest_prefix_is_component_wise_and_last_stacked_wins() {
        let mounts = mounts();
        assert_eq!(
            mount_at(&mounts, "/mnt/user/appdata/relaybox").fs_type,
            "fuse.shfs"
        );
        assert_eq!(mount_at(&mounts, "/mnt/username/relaybox").fs_type, "ext4");
        assert_eq!(
            mount_at(&mounts, "/mnt/cache/appdata/relaybox").fs_type,
            "btrfs"
        );
        assert_eq!(mount_at(&mounts, "/mnt").fs_type, "ext4");
        assert_eq!(
            mount_at(&mounts, "/mnt/tank/appdata/relaybox").fs_type,
            "zfs"
        );

        let stacked = parse_mountinfo(
            "1 0 8:1 / / rw - ext4 /dev/sda1 rw\n2 1 0:40 / /data rw - nfs4 nas:/a rw\n3 2 0:41 / /data rw - xfs /dev/sdb1 rw\n",
        );
        assert_eq!(mount_at(&stacked, "/data/x").fs_type, "xfs");
        assert!(find_mount(&[], Path::new("/")).is_none());
    }

    #[test]
    fn classifies_file_system_types() {
        for local in ["ext4", "xfs", "btrfs", "zfs", "tmpfs", "f2fs", "bcachefs"] {
            assert_eq!(classify(local), FsKind::Local, "{local}");
        }
        for network in [
            "nfs",
            "nfs4",
            "cifs",
            "smb3",
            "smbfs",
            "9p",
            "ceph",
            "glusterfs",
            "afs",
        ] {
            assert_eq!(classify(network), FsKind::Network, "{network}");
        }
        for fuse in [
            "fuse",
            "fuseblk",
            "fuse.shfs",
            "fuse.mergerfs",
            "fuse.sshfs",
            "fuse.rclone",
        ] {
            assert_eq!(classify(fuse), FsKind::Fuse, "{fuse}");
        }
        assert_eq!(classify("overlay"), FsKind::Overlay);
        assert_eq!(classify("aufs"), FsKind::Overlay);
    }

    #[test]
    fn refuses_unraid_user_share_with_the_fix_in_the_message() {
        let container = parse_mountinfo(CONTAINER);
        let err = check_data_dir_with(&container, Path::new("/data"), false).unwrap_err();
        assert!(
            matches!(&err, FsGuardError::Unsafe { fs_type, kind: FsKind::Fuse, .. } if fs_type == "fuse.shfs")
        );
        let text = err.to_string();
        for needle in [
            "refusing to use /data",
            "Unraid user share",
            "/mnt/cache/appdata/relaybox",
            "/mnt/<pool>/appdata/relaybox",
            "not /mnt/user/",
            "--allow-network-fs",
            "RELAYBOX_ALLOW_NETWORK_FS=true",
        ] {
            assert!(text.contains(needle), "{needle:?} missing from: {text}");
        }

        let host = mounts();
        for path in [
            "/mnt/user/appdata/relaybox",
            "/mnt/storage/relaybox",
            "/mnt/nas/relaybox",
            "/mnt/smb share/x",
            "/mnt/c/relay",
            "/media/usb/relay",
            "/mnt/remote/x",
        ] {
            let err = check_data_dir_with(&host, Path::new(path), false).unwrap_err();
            assert!(
                err.to_string().contains("--allow-network-fs"),
                "{path}: {err}"
            );
        }
    }

    #[test]
    fn allowed_network_fs_asks_for_exclusive_locking() {
        let verdict = check_data_dir_with(&mounts(), Path::new("/mnt/nas/relaybox"), true).unwrap();
        assert_eq!(verdict.kind, FsKind::Network);
        assert_eq!(verdict.fs_type, "nfs4");
        assert!(verdict.exclusive_locking);
        assert!(verdict.warning.unwrap().contains("locking_mode=EXCLUSIVE"));

        let verdict =
            check_data_dir_with(&mounts(), Path::new("/mnt/user/appdata/r"), true).unwrap();
        assert_eq!(verdict.kind, FsKind::Fuse);
        assert!(verdict.exclusive_locking);
    }

    #[test]
    fn overlay_warns_and_local_passes_quietly() {
        let container = parse_mountinfo(CONTAINER);
        let verdict = check_data_dir_with(&container, Path::new("/srv/relaybox"), false).unwrap();
        assert_eq!(verdict.kind, FsKind::Overlay);
        assert!(!verdict.exclusive_locking);
        let warning = verdict.warning.unwrap();
        assert!(
            warning.contains("writable layer") && warning.contains("mount a volume"),
            "{warning}"
        );

        let verdict = check_data_dir_with(&container, Path::new("/config"), false).unwrap();
        assert_eq!((verdict.kind, verdict.warning), (FsKind::Local, None));

        for path in [
            "/mnt/cache/appdata/relaybox",
            "/mnt/tank/appdata/relaybox",
            "/var/lib/relaybox",
        ] {
            let verdict = check_data_dir_with(&mounts(), Path::new(path), false).unwrap();
            assert_eq!(verdict.kind, FsKind::Local, "{path}");
            assert!(
                !verdict.exclusive_locking && verdict.warning.is_none(),
                "{path}"
            );
        }

        let verdict =
            check_data_dir_with(&mounts(), Path::new("/dev/shm/relaybox"), false).unwrap();
        assert_eq!(verdict.kind, FsKind::Local);
        assert!(verdict.warning.unwrap().contains("lost at reboot"));

        let verdict = check_data_dir_with(&[], Path::new("/data"), false).unwrap();
        assert_eq!(verdict.kind, FsKind::Unknown);
        assert!(verdict.warning.is_some());
    }

    #[test]
    fn real_mount_table_and_missing_paths() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("not/yet/created");
        let mount = filesystem_of(&missing).unwrap();
        let resolved = resolve(&missing).unwrap();
        assert!(resolved.ends_with("not/yet/created"));
        assert!(resolved.starts_with(&mount.mount_point));
        assert!(!mount.fs_type.is_empty());
        let verdict = check_data_dir(&missing, false).unwrap();
        assert_eq!(verdict.fs_type, mount.fs_type);
        assert!(!missing.exists(), "the check must not create the folder");
    }

    // ---- instance lock ----

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
