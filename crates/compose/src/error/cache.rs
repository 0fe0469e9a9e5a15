//! What can go wrong in the local cache of pulled plugins.

use std::path::PathBuf;

/// What can go wrong in the cache.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// A name in the cache that is not a digest.
    #[error("`{0}` is not a sha256 digest")]
    BadDigest(String),
    /// An entry whose bytes no longer hash to its name (it is removed).
    #[error("cache entry {expected} was corrupt (its bytes hash to {found}); it has been removed")]
    Corrupt {
        /// Its name.
        expected: String,
        /// What its bytes hash to.
        found: String,
    },
    /// The cache's files cannot be read or written.
    #[error("cache at `{}`: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}
