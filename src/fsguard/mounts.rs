//! Which file system holds the data dir, read from `/proc/self/mountinfo`, and whether the
//! stores may run there (network and FUSE mounts are refused unless allowed).

use std::io;
use std::path::{Path, PathBuf};

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
        hint.push_str(
            "This is an Unraid user share (/mnt/user, FUSE shfs). Either make the share \
             exclusive (Unraid 6.12+: Settings › Global Share Settings › Permit exclusive \
             shares: Yes; Shares › appdata: Primary storage = your pool, Secondary storage = \
             None; then restart the container), or set the host path of /data in the container \
             settings to the pool's own path, e.g. /mnt/cache/appdata/relaybox or \
             /mnt/<pool>/appdata/relaybox (your pool's name is under Main › Pool Devices). ",
        );
    } else {
        if mount.fs_type == "fuseblk" {
            hint.push_str("This is a disk mounted through FUSE (fuseblk, e.g. NTFS or exFAT). ");
        }
        hint.push_str("Put the data dir on a local disk (ext4, xfs, btrfs, zfs) instead. ");
    }
    hint.push_str("To run there anyway, accepting the risk, start with ");
    hint.push_str(ALLOW_FLAG);
    hint.push_str(" or set ");
    hint.push_str(ALLOW_ENV);
    hint.push_str(
        ": SQLite then keeps its write-ahead index in memory (locking_mode=EXCLUSIVE) and only \
         one relaybox may use the folder.",
    );
    hint
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
            "Permit exclusive shares: Yes",
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
}
