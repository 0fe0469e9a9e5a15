//! Writing results so that a failure loses nothing: the bytes go to a
//! temporary file beside the target, which replaces the target only once
//! complete.

use crate::error::Error;
use std::io::Write;
use std::path::Path;

/// Writes `bytes` to `path` atomically: either the whole new content is
/// there afterwards, or the old file (if any) is untouched.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), Error> {
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
    temp.as_file().sync_all().map_err(error)?;
    temp.persist(path).map_err(|e| error(e.error))?;
    Ok(())
}
