//! pwchain's wasmtime side: check a composite against what `wasmtime serve`
//! provides ([`validate`](mod@validate), with the import sets of [`linker`]), serve it
//! over HTTP ([`serve`]: the server, lanes, the host-provided upstream,
//! TLS), keep state beyond a request for every instance and replica
//! ([`store`]: proxy-wasm shared data and queues, `wasi:keyvalue`, in
//! memory or Redis), and show an operator what it does ([`observe`]:
//! metrics, the filters' own metrics, the admin endpoint, guest logs).
//!
//! The import sets are the ones `wasmtime serve` (48) links, so a composite
//! that validates here runs there, and one that runs in `pwchain serve` runs
//! in `wasmtime serve -Scli`.

#![warn(missing_docs)]

pub mod linker;
pub mod observe;
pub mod outbound;
pub mod serve;
mod state;
pub mod store;
pub mod validate;

pub use linker::ImportSet;
pub use observe::metrics::{ChainInfo, Metrics};
pub use pwchain_forwarding::Upstream;
pub use serve::tls::Tls;
pub use serve::{ServeOptions, Server};
pub use validate::{Validation, validate};

use std::path::Path;

/// The wasmtime this host embeds.
pub const WASMTIME_VERSION: &str = "50.0.1";

/// An engine configured for p3 `wasi:http` services; see `config`.
pub fn engine(compiled: Option<&Path>) -> anyhow::Result<wasmtime::Engine> {
    Ok(wasmtime::Engine::new(&config(compiled)?)?)
}

/// The engine settings, with wasmtime's compilation cache in `compiled` if
/// given: machine code keyed by the component's bytes, the wasmtime version
/// and these settings, so a restart does not compile a big plugin again
/// (a Python plugin carries CPython: seconds of compiling).
fn config(compiled: Option<&Path>) -> anyhow::Result<wasmtime::Config> {
    let mut config = wasmtime::Config::new();
    config.wasm_component_model(true);
    config.wasm_component_model_async(true);
    if let Some(dir) = compiled {
        let mut cache = wasmtime::CacheConfig::new();
        cache.with_directory(dir);
        config.cache(Some(wasmtime::Cache::new(cache)?));
    }
    Ok(config)
}
