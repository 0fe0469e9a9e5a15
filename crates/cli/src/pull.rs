//! `pwchain pull`: a component out of an OCI registry, verified and cached.

use crate::args::PullArgs;
use crate::progress;
use crate::render;
use miette::IntoDiagnostic;
use pwchain_compose::oci::registry::OciRef;
use pwchain_compose::oci::registry::Registry;
use pwchain_compose::output::write_atomically;
use pwchain_compose::resolve::cache::Cache;
use std::path::PathBuf;
use std::process::ExitCode;

pub(crate) fn pull(args: PullArgs) -> miette::Result<ExitCode> {
    let reference: OciRef = args
        .reference
        .parse()
        .map_err(pwchain_compose::Error::from)?;
    let registry = Registry::new()
        .map_err(pwchain_compose::Error::from)?
        .with_progress(progress::bars());
    let pulled = registry
        .pull(&reference)
        .map_err(pwchain_compose::Error::from)?;
    let name = reference
        .repository()
        .rsplit('/')
        .next()
        .unwrap_or("component");
    let output = args
        .output
        .unwrap_or_else(|| PathBuf::from(format!("{name}.wasm")));
    write_atomically(&output, &pulled.bytes)?;
    Cache::open(None)
        .put(&pulled.bytes)
        .map_err(pwchain_compose::Error::from)?;
    let summary = serde_json::json!({
        "reference": reference.to_string(),
        "output": output.display().to_string(),
        "manifest_digest": pulled.manifest_digest,
        "layer_digest": pulled.layer_digest,
        "size": pulled.bytes.len(),
    });
    if args.json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&summary).into_diagnostic()?
        );
    } else {
        eprintln!(
            "pulled {reference} into {} ({}, layer {})",
            output.display(),
            render::kib(pulled.bytes.len()),
            pulled.layer_digest
        );
    }
    Ok(ExitCode::SUCCESS)
}
