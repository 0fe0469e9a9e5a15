//! `pwchain.lock`: what each registry-sourced plugin resolved to, so a chain
//! composes the same bytes tomorrow (`--locked` enforces it, `--offline`
//! relies on it).

use crate::error::Error;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The lock file's name, beside the manifest.
pub const FILE: &str = "pwchain.lock";

/// `pwchain.lock`: what each registry plugin of a chain resolved to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lock {
    /// One entry per registry plugin, in chain order.
    #[serde(default, rename = "plugin")]
    pub plugins: Vec<Locked>,
}

/// One pinned plugin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Locked {
    /// The plugin's name in the chain.
    pub name: String,
    /// The source as the manifest wrote it (`oci://…` or `ns:name@REQ`).
    pub reference: String,
    /// The OCI reference it resolved to.
    pub resolved: String,
    /// The tag it resolved through, if any.
    pub version: Option<String>,
    /// The manifest digest.
    pub manifest: String,
    /// The component layer's digest.
    pub layer: String,
    /// The signature that vouched for it, when the chain trusts keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified: Option<crate::inspect::record::Verified>,
}

impl Lock {
    /// `pwchain.lock` beside `manifest`.
    pub fn path_for(manifest: &Path) -> PathBuf {
        manifest.with_file_name(FILE)
    }

    /// The lock at `path`; an absent file is an empty lock.
    pub fn load(path: &Path) -> Result<Lock, Error> {
        match std::fs::read_to_string(path) {
            Ok(text) => toml::from_str(&text).map_err(|source| Error::BadLock {
                path: path.to_path_buf(),
                source,
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Lock::default()),
            Err(source) => Err(Error::Read {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    /// The entry of the plugin `name`, if it was locked from `reference`.
    pub fn find(&self, name: &str, reference: &str) -> Option<&Locked> {
        self.plugins
            .iter()
            .find(|l| l.name == name && l.reference == reference)
    }

    /// The lock file's text.
    pub fn to_toml(&self) -> String {
        format!(
            "# Written by pwchain: what each registry plugin resolved to. Commit it.\n{}",
            toml::to_string(self).expect("a lock serialises")
        )
    }
}
