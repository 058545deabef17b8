//! File modes of the data dir: every store file holds secrets or what clients did, so it is
//! readable by its owner only (0600), and a data dir relaybox creates is 0700.

use std::io;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::Path;

/// Bits that let anyone but the owner in.
const NOT_OWNER: u32 = 0o077;

/// Create `dir` (and its missing parents) as 0700; an existing folder keeps its mode.
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// Create `path` empty as 0600 when it does not exist, so the engine that opens it next keeps
/// that mode (SQLite also gives its `-wal` and `-shm` files the mode of the database).
pub fn create_private_file(path: &Path) -> io::Result<()> {
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(err) if err.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(err) => Err(err),
    }
}

/// When `path` exists and others may read or write it, make it 0600 and return its old mode.
/// These are relaybox's own files: tightening them is safe, and the caller says it did.
pub fn tighten(path: &Path) -> io::Result<Option<u32>> {
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(err),
    };
    let mode = meta.permissions().mode() & 0o777;
    if !meta.is_file() || mode & NOT_OWNER == 0 {
        return Ok(None);
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(Some(mode))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail loudly")]

    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn files_are_created_private_and_open_ones_are_tightened() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("a/b");
        create_private_dir(&data).unwrap();
        assert_eq!(mode(&data), 0o700);
        let file = data.join("f");
        create_private_file(&file).unwrap();
        assert_eq!(mode(&file), 0o600);
        assert_eq!(tighten(&file).unwrap(), None);
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(tighten(&file).unwrap(), Some(0o644));
        assert_eq!(mode(&file), 0o600);
        assert_eq!(tighten(&data.join("missing")).unwrap(), None);
    }
}
