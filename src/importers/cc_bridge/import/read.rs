//! Reading the source: which folder holds cc-bridge's files, and each file with its SHA-256.
//! Nothing here writes.

use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::importers::cc_bridge::{ConfigFile, ImportError, find_database};

/// `dir`, or its `.config` folder when `dir` is cc-bridge's working directory.
pub(super) fn source_dir(dir: &Path) -> Result<(PathBuf, Option<String>), ImportError> {
    if !dir.is_dir() {
        return Err(ImportError::NotADirectory(dir.to_path_buf()));
    }
    let has_files = |d: &Path| {
        ConfigFile::ALL
            .iter()
            .any(|f| d.join(f.file_name()).is_file())
            || find_database(d).is_some()
    };
    if has_files(dir) {
        return Ok((dir.to_path_buf(), None));
    }
    let nested = dir.join(".config");
    if nested.is_dir() && has_files(&nested) {
        let note = format!(
            "{} holds no cc-bridge files; read its .config folder",
            dir.display()
        );
        return Ok((nested, Some(note)));
    }
    Err(ImportError::NothingToImport(dir.to_path_buf()))
}

/// The file's bytes and SHA-256, or `None` when it does not exist.
pub(super) fn read_file(
    dir: &Path,
    file: ConfigFile,
) -> Result<Option<(Vec<u8>, String)>, ImportError> {
    let path = dir.join(file.file_name());
    match std::fs::read(&path) {
        Ok(bytes) => {
            let sha = hex::encode(Sha256::digest(&bytes));
            Ok(Some((bytes, sha)))
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(ImportError::Io { path, source }),
    }
}

/// SHA-256 of a file read in pieces (the database may be large).
pub(super) fn sha256_file(path: &Path) -> Result<String, ImportError> {
    let io = |source| ImportError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buffer).map_err(io)?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}
