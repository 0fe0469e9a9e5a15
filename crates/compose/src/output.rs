//! Writing results so that a failure loses nothing: the bytes go to a
//! temporary file beside the target, which replaces the target only once
//! complete.

use crate::error::Error;
use std::io::Write;
use std::path::Path;

/// Writes `bytes` to `path` atomically: either the whole new content is
/// there afterwards, or the old file (if any) is untouched. A new file is
/// readable by all (0644), a replaced one keeps its permissions.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let mode = std::fs::metadata(path).map(|m| m.permissions()).ok();
    write(path, bytes, mode.or_else(readable_by_all))
}

/// Like [`write_atomically`], but the file is readable by its owner only
/// (0600), whatever it was before: for credentials.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    write(path, bytes, None)
}

#[cfg(unix)]
fn readable_by_all() -> Option<std::fs::Permissions> {
    use std::os::unix::fs::PermissionsExt;
    Some(std::fs::Permissions::from_mode(0o644))
}

#[cfg(not(unix))]
fn readable_by_all() -> Option<std::fs::Permissions> {
    None
}

/// Writes through a temporary file, which is created owner-only; `mode`,
/// if given, is applied before it takes the target's place.
fn write(path: &Path, bytes: &[u8], mode: Option<std::fs::Permissions>) -> Result<(), Error> {
    let error = |source| Error::Write {
        path: path.to_path_buf(),
        source,
    };
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let mut temp = tempfile::Builder::new()
        .prefix(".pwchain-")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(error)?;
    temp.write_all(bytes).map_err(error)?;
    if let Some(mode) = mode {
        temp.as_file().set_permissions(mode).map_err(error)?;
    }
    temp.as_file().sync_all().map_err(error)?;
    temp.persist(path).map_err(|e| error(e.error))?;
    Ok(())
}
