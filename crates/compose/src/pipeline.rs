//! The whole way from a chain file to a composite, in one call: a
//! `chain.toml` is loaded, its registry plugins resolved through the lock
//! and the cache, the chain composed and its `pwchain.lock` settled; a
//! `.wac` file is composed; a `.wasm` is read as it is. `pwchain compose`,
//! `validate`, `serve` and a server reloading its chain all go through
//! [`load`], so there is one orchestration of these steps, not one per
//! caller.

use crate::error::Error;
use crate::inspect::record::ChainRecord;
use crate::link::Composite;
use crate::link::wac::Wac;
use crate::manifest::{Manifest, Source};
use crate::model::Origin;
use crate::oci::registry::{OciRef, Registry};
use crate::output::write_atomically;
use crate::resolve::cache::{Cache, RefEntry};
use crate::resolve::lock::Lock;
use crate::resolve::packages::Registries;
use crate::resolve::{Resolver, Step};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// How registry plugins are resolved and the lock treated.
#[derive(Clone, Default)]
pub struct Options {
    /// The component cache (`None`: the default under the user's cache
    /// directory).
    pub cache_dir: Option<PathBuf>,
    /// A registry for `namespace:name` packages, over the configured ones.
    pub registry: Option<String>,
    /// Resolve from the lock and the cache only.
    pub offline: bool,
    /// Fail instead of changing `pwchain.lock`.
    pub locked: bool,
    /// Reports registry transfers (name, bytes done, bytes in all).
    pub progress: Option<crate::oci::registry::Progress>,
    /// For a `.wac` file: where its packages are (`name` → file), and a
    /// folder to look for the rest.
    pub wac_deps: BTreeMap<String, PathBuf>,
    /// Where a `.wac` chain's packages are found (default: `deps/` beside it).
    pub wac_deps_dir: Option<PathBuf>,
}

/// A composite, and what went into it.
pub struct Loaded {
    /// The chain's name: the manifest's, else the file's stem.
    pub name: String,
    /// The component to run.
    pub bytes: Vec<u8>,
    /// For a `chain.toml`: the chain's record and the inputs' total size.
    pub composed: Option<Composed>,
    /// The files the composite was made from: the chain file and each
    /// plugin it names by path (what a watcher watches).
    pub inputs: Vec<PathBuf>,
    /// For a composite pulled from a registry: the manifest digest it was
    /// pulled at.
    pub pulled: Option<String>,
}

/// What composing a `chain.toml` found out beside the bytes.
pub struct Composed {
    /// What it records of its chain.
    pub record: ChainRecord,
    /// The total size of the components that went in.
    pub input_bytes: usize,
    /// How each registry plugin resolved.
    pub steps: Vec<Step>,
    /// Worth saying, not worth failing.
    pub warnings: Vec<String>,
}

/// Loads the chain at `path` (`.toml`, `.wac`, a component, or
/// `oci://…` for a composite in a registry), composing it if it is a chain;
/// for a `chain.toml`, writes its `pwchain.lock` (or, with
/// [`Options::locked`], fails if the lock would change).
pub fn load(path: &Path, options: &Options) -> Result<Loaded, Error> {
    if let Some(reference) = registry_reference(path) {
        return pull(reference, options);
    }
    let stem = path
        .file_stem()
        .map_or_else(|| "chain".into(), |s| s.to_string_lossy().into_owned());
    match path.extension().and_then(|e| e.to_str()) {
        Some("toml") => compose_toml(path, options),
        Some("wac") => Ok(Loaded {
            name: stem,
            bytes: crate::link::wac::compose_wac(
                path,
                &options.wac_deps,
                options.wac_deps_dir.as_deref(),
            )?,
            composed: None,
            inputs: vec![path.to_path_buf()],
            pulled: None,
        }),
        _ => Ok(Loaded {
            name: stem,
            bytes: std::fs::read(path).map_err(|source| Error::Read {
                path: path.to_path_buf(),
                source,
            })?,
            composed: None,
            inputs: vec![path.to_path_buf()],
            pulled: None,
        }),
    }
}

/// A resolver for the registry plugins of the manifest at `path`, and the
/// lock it starts from.
pub fn resolver(path: &Path, options: &Options) -> Result<(Resolver, Lock), Error> {
    let lock = Lock::load(&Lock::path_for(path))?;
    let resolver = Resolver::new(
        Cache::open(options.cache_dir.clone()),
        Registries::load(options.registry.clone()),
        lock.clone(),
        options.offline,
    )
    .with_progress(options.progress.clone());
    Ok((resolver, lock))
}

fn compose_toml(path: &Path, options: &Options) -> Result<Loaded, Error> {
    let manifest = Manifest::load(path)?;
    let (mut resolver, locked) = resolver(path, options)?;
    let Composite {
        bytes,
        record,
        input_bytes,
    } = compose_manifest(&manifest, &mut resolver)?;
    settle_lock(path, &locked, &resolver.resolved(), options.locked)?;
    let specs = manifest.plugins.iter().chain(match &manifest.origin {
        Some(Origin::Service(spec)) => Some(spec.as_ref()),
        _ => None,
    });
    let inputs = std::iter::once(path.to_path_buf())
        .chain(specs.filter_map(|spec| match &spec.source {
            Source::Path { path, .. } => Some(manifest.dir().join(path)),
            _ => None,
        }))
        .collect();
    let warnings = resolver
        .warnings()
        .iter()
        .cloned()
        .chain(record.sync_note())
        .collect();
    Ok(Loaded {
        name: manifest.name.clone(),
        bytes,
        composed: Some(Composed {
            record,
            input_bytes,
            steps: resolver.steps().to_vec(),
            warnings,
        }),
        inputs,
        pulled: None,
    })
}

/// Loads every plugin `manifest` names and composes the chain. Errors about
/// a plugin point at its entry in the manifest.
fn compose_manifest(manifest: &Manifest, resolver: &mut Resolver) -> Result<Composite, Error> {
    crate::resolve::load(manifest, resolver)?
        .compose()
        .map_err(|e| locate(manifest, e))
}

/// Ties an error that names a plugin to that plugin's manifest entry.
fn locate(manifest: &Manifest, error: Error) -> Error {
    let name = match &error {
        Error::Plugin { plugin, .. } => plugin,
        Error::Link { from, .. } => from,
        _ => return error,
    };
    let spec = manifest
        .plugins
        .iter()
        .find(|p| p.name == *name)
        .or(match &manifest.origin {
            Some(Origin::Service(spec)) if spec.name == *name => Some(spec),
            _ => None,
        });
    match spec {
        Some(spec) => error.at(&manifest.file, spec.span.clone()),
        None => error,
    }
}

/// The TOML chain at `path` as WAC (`--emit-wac`): the text, with its
/// plugins read from their files as `--dep chain:NAME=PATH`, and the
/// components pwchain generates for it, which go in `deps_dir` (beside a
/// WAC file: `chain.wac` → `chain.deps/`; without one the text names no
/// directory for them).
pub fn to_wac(path: &Path, options: &Options, deps_dir: Option<&Path>) -> Result<Wac, Error> {
    let manifest = Manifest::load(path)?;
    let (mut resolver, _) = resolver(path, options)?;
    let chain = crate::resolve::load(&manifest, &mut resolver)?;
    let deps: BTreeMap<String, PathBuf> = manifest
        .plugins
        .iter()
        .chain(match &manifest.origin {
            Some(Origin::Service(spec)) => Some(spec.as_ref()),
            _ => None,
        })
        .filter_map(|spec| match &spec.source {
            // A wrapped module's component is generated, not read.
            Source::Path { .. } if spec.legacy.is_some() => None,
            Source::Path { path, .. } => {
                Some((format!("chain:{}", spec.name), manifest.dir().join(path)))
            }
            _ => None,
        })
        .collect();
    chain.to_wac(&deps, deps_dir)
}

/// The registry reference `path` spells, if it is `oci://…`.
pub fn registry_reference(path: &Path) -> Option<&str> {
    path.to_str().filter(|text| text.starts_with("oci://"))
}

/// What the tag (or digest) `reference` points to in its registry now: a
/// poller compares it with [`Loaded::pulled`].
pub fn current_digest(reference: &str) -> Result<String, Error> {
    let oci: OciRef = reference.parse()?;
    Ok(Registry::new()?.manifest_digest(&oci)?)
}

/// A composite from a registry, through the cache: pulled (and verified)
/// only when the tag points to a manifest the cache does not hold.
fn pull(reference: &str, options: &Options) -> Result<Loaded, Error> {
    let oci: OciRef = reference.parse()?;
    let cache = Cache::open(options.cache_dir.clone());
    let cached = |entry: RefEntry| -> Result<Option<(RefEntry, Vec<u8>)>, Error> {
        Ok(cache.get(&entry.layer)?.map(|bytes| (entry, bytes)))
    };
    let offline = || Error::Offline {
        reference: reference.to_string(),
    };
    let (entry, bytes) = if options.offline {
        cached(cache.recall(&oci).ok_or_else(offline)?)?.ok_or_else(offline)?
    } else {
        let registry = Registry::new()?.with_progress(options.progress.clone());
        let manifest = registry.manifest_digest(&oci)?;
        let hit = match cache
            .recall(&oci)
            .filter(|entry| entry.manifest == manifest)
        {
            Some(entry) => cached(entry)?,
            None => None,
        };
        match hit {
            Some(hit) => hit,
            None => {
                let pulled = registry.pull(&oci.at_digest(&manifest))?;
                cache.put(&pulled.bytes)?;
                let entry = RefEntry {
                    manifest: pulled.manifest_digest,
                    layer: pulled.layer_digest,
                };
                cache.remember(&oci, &entry)?;
                (entry, pulled.bytes)
            }
        }
    };
    Ok(Loaded {
        name: oci
            .repository()
            .rsplit('/')
            .next()
            .unwrap_or("chain")
            .to_string(),
        bytes,
        composed: None,
        inputs: Vec::new(),
        pulled: Some(entry.manifest),
    })
}

/// Writes the lock `resolved` beside the manifest if it differs from
/// `locked`; `strict` forbids the change instead.
fn settle_lock(path: &Path, locked: &Lock, resolved: &Lock, strict: bool) -> Result<(), Error> {
    if resolved == locked {
        return Ok(());
    }
    let lock_path = Lock::path_for(path);
    if strict {
        return Err(Error::LockWouldChange { path: lock_path });
    }
    if resolved.plugins.is_empty() && !lock_path.exists() {
        return Ok(());
    }
    write_atomically(&lock_path, resolved.to_toml().as_bytes())
}
