//! From a manifest to components in memory: read each source (a file, or a
//! registry artifact through the cache and the lock), digest it and inspect
//! it.

pub mod cache;
pub mod lock;
pub mod packages;

use crate::digest::digest;
use crate::error::Error;
use crate::error::RegistryError;
use crate::inspect::inspect;
use crate::inspect::record::Verified;
use crate::manifest::{Manifest, PluginSpec, Source};
use crate::model::{Chain, Origin, Stage};
use crate::oci::registry::{OciRef, Registry};
use crate::oci::signing::{self, PublicKey};
use crate::policy::{Settings, SideCalls};
use crate::proxy_wasm::WrapOptions;
use crate::resolve::cache::{Cache, RefEntry};
use crate::resolve::lock::{Lock, Locked};
use crate::resolve::packages::{PackageSpec, Registries, select};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// Resolves registry sources: through the lock, the cache, and (unless
/// offline) the registry; records what each resolved to.
pub struct Resolver {
    offline: bool,
    cache: Cache,
    registries: Registries,
    registry: Option<Registry>,
    locked: Lock,
    steps: Vec<Step>,
    warnings: Vec<String>,
    progress: Option<crate::oci::registry::Progress>,
}

/// How one registry-sourced plugin was resolved: what `compose --json`
/// reports, and what the lock records.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    /// What the lock records of it.
    #[serde(flatten)]
    pub locked: Locked,
    /// The lock already pinned this plugin's digests.
    pub pinned: bool,
    /// Where the bytes came from.
    pub from: Fetched,
}

/// How a plugin's bytes were found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Fetched {
    /// The local cache, verified against the digest.
    Cache,
    /// The registry (then stored in the cache).
    Registry,
}

impl Resolver {
    /// A resolver over `cache` and `registries`, pinned by `locked`; `offline` forbids the network.
    pub fn new(cache: Cache, registries: Registries, locked: Lock, offline: bool) -> Resolver {
        Resolver {
            offline,
            cache,
            registries,
            registry: None,
            locked,
            steps: Vec::new(),
            warnings: Vec::new(),
            progress: None,
        }
    }

    /// Reports registry transfers to `progress`.
    pub fn with_progress(mut self, progress: Option<crate::oci::registry::Progress>) -> Resolver {
        self.progress = progress;
        self
    }

    /// What this resolver resolved: the lock to write.
    pub fn resolved(&self) -> Lock {
        Lock {
            plugins: self.steps.iter().map(|s| s.locked.clone()).collect(),
        }
    }

    /// What loading noticed that is worth saying but not worth failing.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Each resolution, in the order the chain names its plugins.
    pub fn steps(&self) -> &[Step] {
        &self.steps
    }

    fn registry(&mut self) -> Result<&Registry, Error> {
        if self.registry.is_none() {
            self.registry = Some(Registry::new()?.with_progress(self.progress.clone()));
        }
        Ok(self.registry.as_ref().expect("just set"))
    }

    /// The component package `spec` names: the highest version that
    /// satisfies it, unless the lock already pins one.
    fn fetch_package(
        &mut self,
        name: &str,
        written: &str,
        trust: &[PublicKey],
    ) -> Result<(Vec<u8>, Option<Verified>), Error> {
        let oci = match self.locked.find(name, written) {
            Some(pin) => pin.resolved.parse()?,
            None if self.offline => {
                return Err(Error::Offline {
                    reference: written.to_string(),
                });
            }
            None => {
                let spec: PackageSpec =
                    written
                        .parse()
                        .map_err(|reason| RegistryError::BadReference {
                            reference: written.to_string(),
                            reason,
                        })?;
                let repository = self.registries.repository(&spec)?;
                // Listing tags needs only the repository; the version is a placeholder.
                let listing: OciRef = format!("{repository}:0.0.0").parse()?;
                let tags = self.registry()?.tags(&listing)?;
                select(&spec, &repository, &tags)?
            }
        };
        self.fetch(name, written, oci, trust)
    }

    /// The component at `oci`, pinned by the lock if it has `reference`
    /// (the source as the manifest wrote it); with `trust`, only if one of
    /// those keys signed its manifest.
    fn fetch(
        &mut self,
        name: &str,
        reference: &str,
        oci: OciRef,
        trust: &[PublicKey],
    ) -> Result<(Vec<u8>, Option<Verified>), Error> {
        let pinned = self.locked.find(name, reference).cloned();
        let was_pinned = pinned.is_some();
        let (entry, bytes, from) = match (pinned, self.offline) {
            (Some(pin), offline) => {
                let entry = RefEntry {
                    manifest: pin.manifest.clone(),
                    layer: pin.layer.clone(),
                };
                match self.cache.get(&pin.layer)? {
                    Some(bytes) => (entry, bytes, Fetched::Cache),
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
                        (entry, pulled.bytes, Fetched::Registry)
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
                (entry, bytes, Fetched::Cache)
            }
            (None, false) => {
                let pulled = self.registry()?.pull(&oci)?;
                let entry = RefEntry {
                    manifest: pulled.manifest_digest,
                    layer: pulled.layer_digest,
                };
                self.cache.put(&pulled.bytes)?;
                self.cache.remember(&oci, &entry)?;
                (entry, pulled.bytes, Fetched::Registry)
            }
        };
        let verified = match trust {
            [] => None,
            keys => Some(self.verify(name, reference, &oci, &entry.manifest, keys)?),
        };
        self.steps.push(Step {
            locked: Locked {
                name: name.to_string(),
                reference: reference.to_string(),
                resolved: oci.to_string(),
                version: oci.tag().map(str::to_string),
                manifest: entry.manifest,
                layer: entry.layer,
                verified: verified.clone(),
            },
            pinned: was_pinned,
            from,
        });
        Ok((bytes, verified))
    }

    /// Verifies the signatures of `manifest` against `keys`: those cached
    /// first (what an earlier resolve fetched), then, unless offline, those
    /// the registry holds now, which are cached in turn.
    fn verify(
        &mut self,
        name: &str,
        reference: &str,
        oci: &OciRef,
        manifest: &str,
        keys: &[PublicKey],
    ) -> Result<Verified, Error> {
        let untrusted = |rejection| Error::Untrusted {
            plugin: name.to_string(),
            reference: reference.to_string(),
            digest: manifest.to_string(),
            keys: PublicKey::describe(keys),
            rejection: Box::new(rejection),
        };
        match self.cache.signatures(manifest)? {
            Some(cached) => match signing::verify(&cached, manifest, keys) {
                Ok(verified) => return Ok(verified),
                Err(rejection) if self.offline => return Err(untrusted(rejection)),
                Err(_) => {}
            },
            None if self.offline => {
                return Err(Error::Offline {
                    reference: format!("{reference} (its signatures)"),
                });
            }
            None => {}
        }
        // Signatures that cannot be read vouch for nothing: the plugin is
        // refused under its name, whatever the registry did wrong.
        let found = self
            .registry()?
            .signatures(oci, manifest)
            .map_err(|e| untrusted(crate::error::Rejection::Unreadable(e.to_string())))?;
        self.cache.put_signatures(manifest, &found)?;
        signing::verify(&found, manifest, keys).map_err(untrusted)
    }
}

/// Loads and inspects every component `manifest` names. Errors point at the
/// plugin's entry in the manifest.
pub fn load(manifest: &Manifest, resolver: &mut Resolver) -> Result<Chain, Error> {
    let plugins = manifest
        .plugins
        .iter()
        .map(|spec| {
            let stage = load_stage(manifest, spec, resolver)?;
            settle(manifest, spec, stage, resolver)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let origin = match &manifest.origin {
        None => None,
        Some(Origin::Forward(forward)) => Some(Origin::Forward(forward.clone())),
        Some(Origin::Host) => Some(Origin::Host),
        Some(Origin::Service(spec)) => {
            let stage = load_stage(manifest, spec, resolver)?;
            Some(Origin::Service(Box::new(settle(
                manifest, spec, stage, resolver,
            )?)))
        }
    };
    let chain = Chain {
        name: manifest.name.clone(),
        plugins,
        origin,
        allow_imports: manifest
            .allow_imports
            .as_ref()
            .map(|(list, _)| list.clone()),
        filter_metrics: manifest.filter_metrics,
        shared_data: manifest.shared_data,
        fuse: manifest.fuse,
        stage_timing: manifest.stage_timing,
    };
    if let Some((_, span)) = &manifest.allow_imports {
        chain
            .check_imports()
            .map_err(|e| e.at(&manifest.file, span.clone()))?;
    }
    Ok(chain)
}

/// Gives `stage` its settings from `spec`, refusing configuration it could
/// never read and noting a policy that has nothing to act on.
fn settle(
    manifest: &Manifest,
    spec: &PluginSpec,
    mut stage: Stage,
    resolver: &mut Resolver,
) -> Result<Stage, Error> {
    if let Some(span) = &spec.config_span
        && crate::link::config_import(&stage.info).is_none()
    {
        return Err(Error::Plugin {
            plugin: spec.name.clone(),
            problem: crate::error::PluginProblem::ConfigWithoutStore,
        }
        .at(&manifest.file, span.clone()));
    }
    if spec.settings.side_calls != SideCalls::Allow
        && !stage
            .info
            .side_calls
            .iter()
            .any(|i| i.starts_with("wasi:http/client@"))
    {
        let (line, column) = spec
            .side_calls_span
            .as_ref()
            .map_or((0, 0), |s| manifest.file.line_col(s.start));
        resolver.warnings.push(format!(
            "{}:{line}:{column}: plugin `{}` makes no side calls (it does not import `wasi:http/client`), so its `side-calls` policy has nothing to act on",
            manifest.file.path.display(),
            spec.name
        ));
    }
    if let Some((route, span)) = &spec.route {
        if stage.info.role == crate::inspect::Role::Service {
            return Err(Error::Plugin {
                plugin: spec.name.clone(),
                problem: crate::error::PluginProblem::MatchOnService,
            }
            .at(&manifest.file, span.clone()));
        }
        if let Some(why) = route.never_matches() {
            let (line, column) = manifest.file.line_col(span.start);
            resolver.warnings.push(format!(
                "{}:{line}:{column}: plugin `{}` never runs: no request can match its `match`: {why}",
                manifest.file.path.display(),
                spec.name
            ));
        }
    }
    stage.settings = spec.settings.clone();
    stage.route = spec.route.as_ref().map(|(route, _)| route.clone());
    Ok(stage)
}

fn load_stage(
    manifest: &Manifest,
    spec: &PluginSpec,
    resolver: &mut Resolver,
) -> Result<Stage, Error> {
    let at = |e: Error| e.at(&manifest.file, spec.source.span());
    let trust = match &spec.source {
        Source::Path { .. } => {
            if let Some(span) = &spec.own_trust_span {
                let (line, column) = manifest.file.line_col(span.start);
                resolver.warnings.push(format!(
                    "{}:{line}:{column}: plugin `{}` is a local file, so its `trust` is not checked: signatures vouch for registry artifacts, and a file on this machine is already yours (pin it with `digest` instead)",
                    manifest.file.path.display(),
                    spec.name
                ));
            }
            Vec::new()
        }
        _ => trusted_keys(manifest, spec)?,
    };
    let mut verified = None;
    let (written, bytes, path) = match &spec.source {
        Source::Path { path, .. } => {
            let path = manifest.dir().join(path);
            let bytes = std::fs::read(&path).map_err(|source| {
                at(Error::Read {
                    path: path.clone(),
                    source,
                })
            })?;
            (spec.source.to_string(), bytes, path)
        }
        Source::Oci { reference, .. } => {
            let oci = reference.parse().map_err(|e: RegistryError| at(e.into()))?;
            let (bytes, by) = resolver
                .fetch(&spec.name, reference, oci, &trust)
                .map_err(at)?;
            verified = by;
            (reference.clone(), bytes, PathBuf::from(reference))
        }
        Source::Package { spec: package, .. } => {
            let (bytes, by) = resolver
                .fetch_package(&spec.name, package, &trust)
                .map_err(at)?;
            verified = by;
            (package.clone(), bytes, PathBuf::from(package))
        }
    };
    // A `digest` pin is on the bytes the user has: the module, not what
    // wrapping makes of it.
    check_pin(spec, manifest, &digest(&bytes))?;
    let (bytes, parts) = match &spec.legacy {
        Some(legacy) => {
            let options = WrapOptions {
                name: spec.name.clone(),
                configuration: legacy.configuration.clone(),
                vm_configuration: legacy.vm_configuration.clone(),
                root_id: legacy.root_id.clone(),
                clusters: legacy.clusters.clone(),
                shared_by_chain: true,
                ..WrapOptions::default()
            };
            let wrapped = crate::proxy_wasm::wrap(&written, &bytes, &options).map_err(at)?;
            let (line, column) = manifest.file.line_col(spec.span.start);
            resolver
                .warnings
                .extend(wrapped.warnings.iter().map(|warning| {
                    format!(
                        "{}:{line}:{column}: plugin `{}`: {warning}",
                        manifest.file.path.display(),
                        spec.name
                    )
                }));
            (wrapped.bytes, Some(wrapped.parts))
        }
        // A component `pwchain wrap` made logs under the plugin's name here.
        None => {
            let bytes = match crate::inspect::record::read_section::<
                crate::inspect::record::WrapRecord,
            >(&bytes, crate::inspect::record::WRAPPED_SECTION)
            {
                Some(record) if record.name != spec.name => {
                    crate::proxy_wasm::rename(&bytes, &spec.name)
                        .map_err(at)?
                        .unwrap_or(bytes)
                }
                _ => bytes,
            };
            (bytes, None)
        }
    };
    let source = match &spec.legacy {
        Some(_) => format!("{WRAPPED}{written}"),
        None => written,
    };
    let mut stage = Stage::from_bytes(&spec.name, bytes, source, &path).map_err(at)?;
    stage.verified = verified;
    stage.legacy = parts;
    Ok(stage)
}

/// The public keys `spec` trusts, read now; a bad one is an error at its
/// entry in the manifest.
fn trusted_keys(manifest: &Manifest, spec: &PluginSpec) -> Result<Vec<PublicKey>, Error> {
    spec.trust
        .iter()
        .map(|key| {
            let mut loaded =
                PublicKey::load(&manifest.dir().join(&key.path)).map_err(|source| {
                    Error::Key {
                        what: format!("plugin `{}`", spec.name),
                        source,
                    }
                    .at(&manifest.file, key.span.clone())
                })?;
            loaded.label = key.path.display().to_string();
            Ok(loaded)
        })
        .collect()
}

/// How a stage's `source` starts when pwchain wrapped a proxy-wasm module
/// for it: its bytes are made here, not read from where the source says.
pub const WRAPPED: &str = "proxy-wasm:";

/// Checks `found` against the manifest's `digest` pin, if it has one.
fn check_pin(spec: &PluginSpec, manifest: &Manifest, found: &str) -> Result<(), Error> {
    match &spec.digest {
        Some(pin) if pin.get_ref() != found => Err(manifest.file.error(
            pin.span(),
            format!(
                "plugin `{}` is pinned to {}, but `{}` hashes to {}",
                spec.name,
                pin.get_ref(),
                spec.source,
                found
            ),
            Some("if the new component is expected, update the `digest`".into()),
        )),
        _ => Ok(()),
    }
}

impl Stage {
    /// Whether this stage is a proxy-wasm module pwchain wrapped.
    pub fn is_wrapped(&self) -> bool {
        self.source.starts_with(WRAPPED)
    }

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
            settings: Settings::default(),
            verified: None,
            route: None,
            legacy: None,
        })
    }
}
