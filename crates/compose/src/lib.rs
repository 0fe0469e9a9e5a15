//! pwchain's library: turn a chain manifest into one composed component.
//!
//! ```text
//! manifest ──▶ resolve ──▶ inspect ──▶ compose (wac-graph) ──▶ output
//! (chain.toml)  (read,      (roles)     (link next hops,        (atomic
//!               digest)                  encode, validate)       write)
//! ```
//!
//! [`pipeline::load`] runs all of it (and settles `pwchain.lock`) in one
//! call.
//!
//! No wasmtime here: running and validating against a host is `pwchain-host`.

pub mod builtins;
pub mod cache;
pub mod compose;
pub mod error;
pub mod import_envoy;
pub mod import_istio;
mod import_yaml;
pub mod inspect;
pub mod lift;
pub mod lock;
pub mod manifest;
pub mod output;
pub mod packages;
pub mod pipeline;
pub mod policy;
pub mod providers;
pub mod proxy_wasm;
pub mod record;
pub mod registry;
pub mod resolve;
pub mod signing;
pub mod wac;

pub use compose::{Chain, Composite, FilterMetrics, Stage, Terminal};
pub use error::{Error, PluginProblem};
pub use inspect::{Inspection, Role, inspect};
pub use lift::Lift;
pub use manifest::{Forwarding, Manifest, Origin, Source};
pub use record::ChainRecord;
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
