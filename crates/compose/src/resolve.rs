//! From a manifest to components in memory: read each source (a file, or a
//! registry artifact through the cache and the lock), digest it and inspect
//! it.

use crate::cache::{Cache, RefEntry};
use crate::compose::{Chain, Stage, Terminal};
use crate::error::{Error, PluginProblem};
use crate::inspect::inspect;
use crate::lock::{Lock, Locked};
use crate::manifest::{Manifest, Origin, PluginSpec, Source};
use crate::registry::{OciRef, Registry};
use sha2::{Digest, Sha256};
use std::path::Path;

/// Resolves registry sources: through the lock, the cache, and (unless
/// offline) the registry; records what each resolved to.
pub struct Resolver {
    offline: bool,
    cache: Cache,
    registry: Option<Registry>,
    locked: Lock,
    resolved: Lock,
}

impl Resolver {
    pub fn new(cache: Cache, locked: Lock, offline: bool) -> Resolver {
        Resolver {
            offline,
            cache,
            registry: None,
            locked,
            resolved: Lock::default(),
        }
    }

    /// What this resolver resolved: the lock to write.
    pub fn resolved(&self) -> &Lock {
        &self.resolved
    }

    fn registry(&mut self) -> Result<&Registry, Error> {
        if self.registry.is_none() {
            self.registry = Some(Registry::new()?);
        }
        Ok(self.registry.as_ref().expect("just set"))
    }

    /// The component `reference` names, pinned by the lock if it has it.
    fn fetch(&mut self, name: &str, reference: &str) -> Result<Vec<u8>, Error> {
        let oci: OciRef = reference.parse()?;
        let pinned = self.locked.find(name, reference).cloned();
        let (entry, bytes) = match (pinned, self.offline) {
            (Some(pin), offline) => {
                let entry = RefEntry {
                    manifest: pin.manifest.clone(),
                    layer: pin.layer.clone(),
                };
                match self.cache.get(&pin.layer)? {
                    Some(bytes) => (entry, bytes),
                    None if offline => {
                        return Err(Error::Offline {
                            reference: reference.to_string(),
                        });
                    }
                    None => {
                        let pulled = self.registry()?.pull(&oci.at_digest(&pin.manifest))?;
                        if pulled.layer_digest != pin.layer {
                            return Err(Error::LockMismatch {
                                reference: reference.to_string(),
                                locked: pin.layer,
                                found: pulled.layer_digest,
                            });
                        }
                        self.cache.put(&pulled.bytes)?;
                        (entry, pulled.bytes)
                    }
                }
            }
            (None, true) => {
                let entry = self.cache.recall(&oci).ok_or_else(|| Error::Offline {
                    reference: reference.to_string(),
                })?;
                let bytes = self
                    .cache
                    .get(&entry.layer)?
                    .ok_or_else(|| Error::Offline {
                        reference: reference.to_string(),
                    })?;
                (entry, bytes)
            }
            (None, false) => {
                let pulled = self.registry()?.pull(&oci)?;
                let entry = RefEntry {
                    manifest: pulled.manifest_digest,
                    layer: pulled.layer_digest,
                };
                self.cache.put(&pulled.bytes)?;
                self.cache.remember(&oci, &entry)?;
                (entry, pulled.bytes)
            }
        };
        self.resolved.plugins.push(Locked {
            name: name.to_string(),
            reference: reference.to_string(),
            version: oci.tag().map(str::to_string),
            manifest: entry.manifest,
            layer: entry.layer,
        });
        Ok(bytes)
    }
}

/// `sha256:<hex>` of `bytes`, the digest form OCI registries use.
pub fn digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// Loads and inspects every component `manifest` names. Errors point at the
/// plugin's entry in the manifest.
pub fn load(manifest: &Manifest, resolver: &mut Resolver) -> Result<Chain, Error> {
    let plugins = manifest
        .plugins
        .iter()
        .map(|spec| load_stage(manifest, spec, resolver))
        .collect::<Result<Vec<_>, _>>()?;
    let terminal = match &manifest.origin {
        None => Terminal::None,
        Some(Origin::Forward) => Terminal::Forward,
        Some(Origin::Host) => Terminal::Host,
        Some(Origin::Service(spec)) => {
            Terminal::Service(Box::new(load_stage(manifest, spec, resolver)?))
        }
    };
    Ok(Chain {
        name: manifest.name.clone(),
        plugins,
        terminal,
    })
}

fn load_stage(
    manifest: &Manifest,
    spec: &PluginSpec,
    resolver: &mut Resolver,
) -> Result<Stage, Error> {
    let at = |e: Error| e.at(&manifest.file, spec.source.span());
    let path = match &spec.source {
        Source::Path { path, .. } => manifest.dir().join(path),
        Source::Oci { reference, .. } => {
            let bytes = resolver.fetch(&spec.name, reference).map_err(at)?;
            return Stage::from_bytes(&spec.name, bytes, reference.clone(), Path::new(reference))
                .map_err(at);
        }
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
