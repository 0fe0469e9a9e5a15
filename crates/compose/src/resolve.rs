//! From a manifest to components in memory: read each source, digest it and
//! inspect it. Registry sources get their resolver in a later version; the
//! manifest already has room for them.

use crate::compose::{Chain, Stage, Terminal};
use crate::error::{Error, PluginProblem};
use crate::inspect::inspect;
use crate::manifest::{Manifest, Origin, PluginSpec, Source};
use sha2::{Digest, Sha256};
use std::path::Path;

/// `sha256:<hex>` of `bytes`, the digest form OCI registries use.
pub fn digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// Loads and inspects every component `manifest` names. Errors point at the
/// plugin's entry in the manifest.
pub fn load(manifest: &Manifest) -> Result<Chain, Error> {
    let plugins = manifest
        .plugins
        .iter()
        .map(|spec| load_stage(manifest, spec))
        .collect::<Result<Vec<_>, _>>()?;
    let terminal = match &manifest.origin {
        None => Terminal::None,
        Some(Origin::Forward) => Terminal::Forward,
        Some(Origin::Host) => Terminal::Host,
        Some(Origin::Service(spec)) => Terminal::Service(Box::new(load_stage(manifest, spec)?)),
    };
    Ok(Chain {
        name: manifest.name.clone(),
        plugins,
        terminal,
    })
}

fn load_stage(manifest: &Manifest, spec: &PluginSpec) -> Result<Stage, Error> {
    let at = |e: Error| e.at(&manifest.file, spec.source.span());
    let path = match &spec.source {
        Source::Path { path, .. } => manifest.dir().join(path),
        other => {
            return Err(at(Error::Plugin {
                plugin: spec.name.clone(),
                problem: PluginProblem::Unsupported {
                    reference: other.to_string(),
                },
            }));
        }
    };
    Stage::read(&spec.name, &path, spec.source.to_string()).map_err(at)
}

impl Stage {
    /// Reads and inspects the component at `path`; `source` is what the
    /// chain record will say it came from.
    pub fn read(name: &str, path: &Path, source: String) -> Result<Stage, Error> {
        let bytes = std::fs::read(path).map_err(|e| Error::Read {
            path: path.to_path_buf(),
            source: e,
        })?;
        Stage::from_bytes(name, bytes, source, path)
    }

    /// Inspects `bytes`; `path` only names them in errors.
    pub fn from_bytes(
        name: &str,
        bytes: Vec<u8>,
        source: String,
        path: &Path,
    ) -> Result<Stage, Error> {
        let plugin_error = |problem| Error::Plugin {
            plugin: name.to_string(),
            problem,
        };
        let info = inspect(&bytes, path).map_err(plugin_error)?;
        if let Some(problem) = info.unusable() {
            return Err(plugin_error(problem));
        }
        Ok(Stage {
            name: name.to_string(),
            source,
            digest: digest(&bytes),
            bytes,
            info,
        })
    }
}
