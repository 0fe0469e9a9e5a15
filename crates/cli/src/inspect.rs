//! `pwchain inspect`: what a component is, imports and exports, and the
//! chain or module it was made from.

use crate::args::InspectArgs;
use crate::print_report;
use crate::read_component;
use crate::render;
use miette::IntoDiagnostic;
use std::process::ExitCode;

pub(crate) fn inspect(args: InspectArgs) -> miette::Result<ExitCode> {
    if let Ok(bytes) = std::fs::read(&args.file)
        && let Ok(Some(module)) = pwchain_compose::proxy_wasm::detect(&bytes)
    {
        let report = render::LegacyReport::new(args.file.display().to_string(), &bytes, module);
        print_report(&report, args.json)?;
        return Ok(ExitCode::SUCCESS);
    }
    let (bytes, info) = read_component(&args.file)?;
    if args.graph {
        let Some(chain) = &info.chain else {
            return Err(miette::miette!(
                help = "`--graph` draws composites that `pwchain compose` wrote; `pwchain inspect` without it shows what this component is",
                "`{}` carries no chain record",
                args.file.display()
            ));
        };
        let drawn = pwchain_compose::inspect::graph::draw(chain, args.format.into());
        outln!("{}", drawn.trim_end());
        return Ok(ExitCode::SUCCESS);
    }
    let report = render::InspectReport {
        file: args.file.display().to_string(),
        bytes: bytes.len(),
        digest: pwchain_compose::digest(&bytes),
        info,
    };
    print_report(&report, args.json)?;
    Ok(ExitCode::SUCCESS)
}
