//! `pwchain validate`: does a component compile, and which `wasmtime serve`
//! import set runs it.

use crate::args::ValidateArgs;
use crate::compiled;
use crate::load_composite;
use crate::print_report;
use crate::render;
use miette::miette;
use std::process::ExitCode;

pub(crate) fn validate(args: ValidateArgs) -> miette::Result<ExitCode> {
    let bytes = load_composite(&args.file, &args.resolve)?;
    let validation =
        pwchain_host::validate(&bytes, Some(&compiled(&args.resolve))).map_err(|e| {
            miette!(
                "`{}` does not compile with wasmtime {}: {e:#}",
                args.file.display(),
                pwchain_host::WASMTIME_VERSION
            )
        })?;
    let runs = validation.runs_in.is_some();
    let report = render::ValidateReport {
        file: args.file.display().to_string(),
        wasmtime: pwchain_host::WASMTIME_VERSION,
        validation,
    };
    print_report(&report, args.json)?;
    Ok(if runs {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(3)
    })
}
