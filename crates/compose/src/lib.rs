//! pwchain's library: turn a chain manifest into one composed component.
//!
//! ```text
//! manifest ──▶ resolve ──────────▶ inspect ──▶ link (wac-graph) ──▶ output
//! (chain.toml)  (path | oci | pkg,  (roles,     (next hops, built-ins,  (atomic
//!               lock, cache)        lifting)    encode, validate)       write)
//! ```
//!
//! One module per stage: [`manifest`] (the chain as written, checked),
//! [`resolve`] (plugin bytes from paths, registries and packages; the lock
//! and the cache), [`oci`] (the registry client and signatures),
//! [`inspect`](mod@inspect) (what a component is), [`link`] (the chain's model and its
//! composition, generated components, `.wac`), [`proxy_wasm`] (legacy
//! filters wrapped as components) and [`import`] (Envoy and Istio
//! configurations). [`pipeline::load`] runs them in order (and settles
//! `pwchain.lock`) in one call.
//!
//! No wasmtime here: running and validating against a host is `pwchain-host`.

pub mod error;
pub mod import;
pub mod inspect;
pub mod link;
pub mod manifest;
pub mod oci;
pub mod output;
pub mod pipeline;
pub mod proxy_wasm;
pub mod resolve;

pub use error::{Error, PluginProblem};
pub use inspect::lift::Lift;
pub use inspect::{Inspection, Role, inspect};
pub use link::record::ChainRecord;
pub use link::{Chain, Composite, FilterMetrics, Stage, Terminal};
pub use manifest::{Forwarding, Manifest, Origin, Source};
pub use resolve::{Fetched, Step};

/// Loads every plugin `manifest` names and composes the chain. Errors about
/// a plugin point at its entry in the manifest.
pub fn compose_manifest(
    manifest: &Manifest,
    resolver: &mut resolve::Resolver,
) -> Result<Composite, Error> {
    resolve::load(manifest, resolver)?
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
