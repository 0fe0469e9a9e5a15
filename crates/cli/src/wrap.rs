//! `pwchain wrap`: a legacy proxy-wasm module into a middleware component.

use crate::args::WrapArgs;
use crate::print_report;
use crate::render;
use miette::IntoDiagnostic;
use miette::WrapErr;
use pwchain_compose::output::write_atomically;
use pwchain_compose::proxy_wasm;
use pwchain_compose::proxy_wasm::WrapOptions;
use std::process::ExitCode;

pub(crate) fn wrap(args: WrapArgs) -> miette::Result<ExitCode> {
    let bytes = std::fs::read(&args.file)
        .into_diagnostic()
        .wrap_err_with(|| format!("cannot read `{}`", args.file.display()))?;
    let configuration = match (&args.config, args.config_string) {
        (Some(path), _) => std::fs::read_to_string(path)
            .into_diagnostic()
            .wrap_err_with(|| format!("cannot read `{}`", path.display()))?,
        (None, text) => text.unwrap_or_default(),
    };
    let stem = args
        .file
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned());
    let options = WrapOptions {
        name: args.name.or(stem).unwrap_or_else(|| "proxy-wasm".into()),
        configuration,
        vm_configuration: args.vm_config,
        root_id: args.root_id.clone(),
        clusters: args.clusters.clone(),
        allow_unimplemented: args.allow_unimplemented,
        max_body_bytes: args.max_body_bytes,
        ..WrapOptions::default()
    };
    let wrapped = proxy_wasm::wrap(&args.file.display().to_string(), &bytes, &options)?;
    write_atomically(&args.output, &wrapped.bytes)?;
    let report = render::WrapReport {
        file: args.file.display().to_string(),
        output: args.output.display().to_string(),
        bytes: wrapped.bytes.len(),
        digest: pwchain_compose::digest(&wrapped.bytes),
        abi: wrapped.module.abi.clone(),
        side_calls: wrapped
            .module
            .hostcalls
            .iter()
            .any(|h| h == "proxy_http_call"),
        unimplemented: wrapped.unimplemented,
    };
    for warning in &wrapped.warnings {
        eprintln!("warning: {warning}");
    }
    print_report(&report, args.json)?;
    Ok(ExitCode::SUCCESS)
}
