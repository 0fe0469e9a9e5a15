//! Building the repository's plugins before a bench uses them.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Runs the build script `script` (relative to the repository) and returns
/// `repo/out`.
pub fn built(script: &str, out: &str) -> PathBuf {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let status = Command::new("bash")
        .arg(repo.join(script))
        .env("CARGO_BUILD_QUIET", "1")
        .status()
        .unwrap_or_else(|e| panic!("cannot run {script}: {e}"));
    assert!(status.success(), "{script} failed");
    repo.join(out)
}
