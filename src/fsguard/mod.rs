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
//!    `instance.lock` (std's [`std::fs::File::try_lock`]) plus a JSON body naming the owner,
//!    with a heartbeat rewritten every [`HEARTBEAT_INTERVAL`]. The body catches what `flock`
//!    cannot see: the same folder reached through two paths (Unraid `/mnt/user/...` vs
//!    `/mnt/cache/...`), or a file system that ignores locks. A body whose owner is alive
//!    (heartbeat younger than [`STALE_AFTER`], not released, and — when it is on this very
//!    host — its process still exists) refuses the start even when the `flock` was granted.
//!
//! `mounts` holds the first, `instance_lock` the second; this module only re-exports them.
//! `modes` keeps the data dir's files private (0600).

mod instance_lock;
pub mod modes;
mod mounts;

pub use instance_lock::{
    HEARTBEAT_INTERVAL, InstanceLock, LOCK_FILE, LockError, LockOwner, STALE_AFTER, read_owner,
};
pub use mounts::{
    ALLOW_ENV, ALLOW_FLAG, FsGuardError, FsKind, FsVerdict, MountInfo, check_data_dir,
    check_data_dir_with, classify, filesystem_of, find_mount, parse_mountinfo,
};
