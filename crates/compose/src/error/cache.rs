//! What can go wrong in the local cache of pulled plugins.

use std::path::PathBuf;

/// What can go wrong in the cache.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("`{0}` is not a sha256 digest")]
    BadDigest(String),
    #[error("cache entry {expected} was corrupt (its bytes hash to {found}); it has been removed")]
    Corrupt { expected: String, found: String },
    #[error("cache at `{}`: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}
