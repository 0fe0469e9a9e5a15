//! `pwchain validate`: compile a composite with wasmtime and say exactly
//! what a host must provide to run it.

use crate::linker::{ImportSet, linker};
use serde::Serialize;
use wasmtime::component::Component;
use wasmtime_wasi_http::p3::bindings::ServicePre;

/// What wasmtime makes of a component.
#[derive(Debug, Clone, Serialize)]
pub struct Validation {
    /// Every import of the component.
    pub imports: Vec<String>,
    /// Whether it exports `wasi:http/handler@0.3.x` as a p3 service.
    pub service: bool,
    /// The next-hop import a host would have to provide, if the chain is
    /// not terminated.
    pub unterminated: Option<String>,
    /// The smallest `wasmtime serve` setup that links it, if any.
    pub runs_in: Option<String>,
    /// Why each setup refused it (`pwchain serve` among them).
    pub refusals: Vec<Refusal>,
    /// Whether `pwchain serve` runs it (with `--upstream` when the chain
    /// is not terminated): it provides more than `wasmtime serve`
    /// (`wasi:keyvalue`, and wrapped filters' metrics and shared data for
    /// chains that leave them to the host).
    pub pwchain_serve: bool,
}

/// One host setup that cannot run the composite.
#[derive(Debug, Clone, Serialize)]
pub struct Refusal {
    /// The setup, as its command line (`wasmtime serve -Scli`).
    pub host: String,
    /// What linking or instantiating said.
    pub reason: String,
}

/// Compiles `bytes` and links them against each of `wasmtime serve`'s
/// import sets. An error means wasmtime could not compile it at all.
pub fn validate(bytes: &[u8], compiled: Option<&std::path::Path>) -> anyhow::Result<Validation> {
    let engine = crate::engine(compiled)?;
    let component = Component::new(&engine, bytes)?;
    let ty = component.component_type();
    let imports: Vec<String> = ty
        .imports(&engine)
        .map(|(name, _)| name.to_string())
        .collect();
    let unterminated = imports
        .iter()
        .find(|name| {
            name.starts_with("wasi:http/handler@")
                || name
                    .split('@')
                    .next()
                    .is_some_and(|n| n.ends_with("/origin"))
        })
        .cloned();

    let service = ty
        .exports(&engine)
        .any(|(name, _)| name.starts_with("wasi:http/handler@0.3."));
    let mut runs_in = None;
    let mut refusals = Vec::new();
    for set in [ImportSet::Serve, ImportSet::ServeCli] {
        let linked = linker(&engine, set)?
            .instantiate_pre(&component)
            .map_err(|e| format!("{e:#}"))
            .and_then(|pre| {
                ServicePre::new(pre)
                    .map(|_| ())
                    .map_err(|e| format!("{e:#}"))
            });
        match linked {
            Ok(()) => {
                runs_in = Some(set.flag().to_string());
                break;
            }
            Err(reason) => refusals.push(Refusal {
                host: set.flag().to_string(),
                reason,
            }),
        }
    }
    let pwchain_serve = match pwchain_serve(&engine, &component, unterminated.is_some()) {
        Ok(()) => true,
        Err(reason) => {
            refusals.push(Refusal {
                host: "pwchain serve".into(),
                reason,
            });
            false
        }
    };
    Ok(Validation {
        imports,
        service,
        unterminated,
        runs_in,
        refusals,
        pwchain_serve,
    })
}

/// Links `component` as `pwchain serve` would.
fn pwchain_serve(
    engine: &wasmtime::Engine,
    component: &Component,
    unterminated: bool,
) -> Result<(), String> {
    let mut options = crate::ServeOptions::default();
    if unterminated {
        // Any upstream: only the import's shape matters here.
        options.upstream = "http://127.0.0.1:1".parse().ok();
    }
    let linker =
        crate::serve::engine::serve_linker(engine, &options).map_err(|e| format!("{e:#}"))?;
    let pre = linker
        .instantiate_pre(component)
        .map_err(|e| format!("{e:#}"))?;
    ServicePre::new(pre).map(drop).map_err(|e| format!("{e:#}"))
}
