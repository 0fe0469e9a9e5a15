//! The component cache: content-addressed by sha256, verified on every
//! read, written atomically, shared by all chains. Tags seen are remembered
//! so that `--offline` can resolve them.
//!
//! ```text
//! <root>/blobs/sha256/<hex>                    component bytes
//! <root>/refs/<registry>/<repository>/<tag>    {"manifest": …, "layer": …}
//! <root>/signatures/sha256-<hex>.json          the cosign signature layers of
//!                                              manifest sha256:<hex>
//! ```

use crate::digest::digest;
use crate::error::CacheError;
use crate::oci::registry::OciRef;
use crate::oci::signing::Signature;
use crate::output::write_atomically;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// What a tag pointed at when it was last pulled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefEntry {
    /// The manifest digest.
    pub manifest: String,
    /// The component layer's digest.
    pub layer: String,
}

/// One cached component.
#[derive(Debug, Clone, Serialize)]
pub struct CachedBlob {
    /// Its digest (its name in the cache).
    pub digest: String,
    /// Its size in bytes.
    pub size: u64,
    /// References last resolved to it.
    pub references: Vec<String>,
}

/// The local cache of pulled components, by digest, and of the tags they were pulled by.
pub struct Cache {
    root: PathBuf,
}

impl Cache {
    /// The cache at `dir`, else `$PWCHAIN_CACHE_DIR`, else
    /// `$XDG_CACHE_HOME/pwchain`, else `~/.cache/pwchain`.
    pub fn open(dir: Option<PathBuf>) -> Cache {
        let root = dir
            .or_else(|| std::env::var_os("PWCHAIN_CACHE_DIR").map(PathBuf::from))
            .or_else(|| std::env::var_os("XDG_CACHE_HOME").map(|d| Path::new(&d).join("pwchain")))
            .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache/pwchain")))
            .unwrap_or_else(|| PathBuf::from(".pwchain-cache"));
        Cache { root }
    }

    /// Where it is.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn blob_path(&self, digest: &str) -> Result<PathBuf, CacheError> {
        let hex = digest
            .strip_prefix("sha256:")
            .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or_else(|| CacheError::BadDigest(digest.to_string()))?;
        Ok(self.root.join("blobs/sha256").join(hex))
    }

    fn io(path: &Path) -> impl Fn(std::io::Error) -> CacheError + '_ {
        move |source| CacheError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    /// The bytes cached under `digest`, if any, after checking them.
    pub fn get(&self, expected: &str) -> Result<Option<Vec<u8>>, CacheError> {
        let path = self.blob_path(expected)?;
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Self::io(&path)(e)),
        };
        let found = digest(&bytes);
        if found != expected {
            let _ = std::fs::remove_file(&path);
            return Err(CacheError::Corrupt {
                expected: expected.to_string(),
                found,
            });
        }
        Ok(Some(bytes))
    }

    /// Stores `bytes`, returning their digest.
    pub fn put(&self, bytes: &[u8]) -> Result<String, CacheError> {
        let digest = digest(bytes);
        let path = self.blob_path(&digest)?;
        self.write(&path, bytes)?;
        Ok(digest)
    }

    fn write(&self, path: &Path, bytes: &[u8]) -> Result<(), CacheError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(Self::io(dir))?;
        }
        write_atomically(path, bytes).map_err(|e| match e {
            crate::Error::Write { path, source } => CacheError::Io { path, source },
            other => CacheError::Io {
                path: path.to_path_buf(),
                source: std::io::Error::other(other.to_string()),
            },
        })
    }

    fn signatures_path(&self, manifest_digest: &str) -> Result<PathBuf, CacheError> {
        let blob = self.blob_path(manifest_digest)?;
        let hex = blob.file_name().expect("a digest").to_string_lossy();
        Ok(self.root.join(format!("signatures/sha256-{hex}.json")))
    }

    /// Stores the signatures found for `manifest_digest`, so that an
    /// offline compose verifies what an online one did. Each is checked
    /// again on every read, like a blob.
    pub fn put_signatures(
        &self,
        manifest_digest: &str,
        signatures: &[Signature],
    ) -> Result<(), CacheError> {
        let path = self.signatures_path(manifest_digest)?;
        self.write(&path, &serde_json::to_vec(signatures).expect("serialises"))
    }

    /// The signatures cached for `manifest_digest`, if any were.
    pub fn signatures(&self, manifest_digest: &str) -> Result<Option<Vec<Signature>>, CacheError> {
        let path = self.signatures_path(manifest_digest)?;
        match std::fs::read(&path) {
            Ok(bytes) => Ok(serde_json::from_slice(&bytes).ok()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Self::io(&path)(e)),
        }
    }

    fn ref_path(&self, reference: &OciRef) -> Option<PathBuf> {
        let tag = reference.tag()?;
        let registry = reference.registry().replace(':', "_");
        Some(
            self.root
                .join("refs")
                .join(registry)
                .join(reference.repository())
                .join(tag),
        )
    }

    /// Records what `reference` resolved to.
    pub fn remember(&self, reference: &OciRef, entry: &RefEntry) -> Result<(), CacheError> {
        match self.ref_path(reference) {
            Some(path) => self.write(&path, &serde_json::to_vec(entry).expect("serialises")),
            None => Ok(()),
        }
    }

    /// What `reference` last resolved to, if it was pulled before.
    pub fn recall(&self, reference: &OciRef) -> Option<RefEntry> {
        let text = std::fs::read(self.ref_path(reference)?).ok()?;
        serde_json::from_slice(&text).ok()
    }

    /// Every cached component, with the references last resolved to it.
    pub fn list(&self) -> Result<Vec<CachedBlob>, CacheError> {
        let blobs = self.root.join("blobs/sha256");
        let mut listed = Vec::new();
        let entries = match std::fs::read_dir(&blobs) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(listed),
            Err(e) => return Err(Self::io(&blobs)(e)),
        };
        let refs = self.refs();
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            let digest = format!("sha256:{name}");
            listed.push(CachedBlob {
                size: entry.metadata().map(|m| m.len()).unwrap_or(0),
                references: refs
                    .iter()
                    .filter(|(_, e)| e.layer == digest)
                    .map(|(r, _)| r.clone())
                    .collect(),
                digest,
            });
        }
        listed.sort_by(|a, b| a.digest.cmp(&b.digest));
        Ok(listed)
    }

    fn refs(&self) -> Vec<(String, RefEntry)> {
        fn walk(dir: &Path, prefix: &str, out: &mut Vec<(String, RefEntry)>) {
            for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                let path = entry.path();
                if path.is_dir() {
                    walk(&path, &format!("{prefix}{name}/"), out);
                } else if let Some(e) = std::fs::read(&path)
                    .ok()
                    .and_then(|t| serde_json::from_slice(&t).ok())
                {
                    let whole = format!("{prefix}{name}");
                    if let Some((repo, tag)) = whole.rsplit_once('/') {
                        out.push((format!("oci://{}:{tag}", repo.replacen('_', ":", 1)), e));
                    }
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.root.join("refs"), "", &mut out);
        out
    }

    /// Removes every cached component and reference; returns how many
    /// components and bytes were freed.
    pub fn prune(&self) -> Result<(usize, u64), CacheError> {
        let listed = self.list()?;
        for dir in ["blobs", "refs", "signatures"] {
            let path = self.root.join(dir);
            match std::fs::remove_dir_all(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Self::io(&path)(e)),
            }
        }
        Ok((listed.len(), listed.iter().map(|b| b.size).sum()))
    }
}
