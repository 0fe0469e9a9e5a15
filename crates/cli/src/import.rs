//! `pwchain import`: another proxy's Wasm filter configuration as a
//! `chain.toml`.

use crate::args::{ImportCommand, ImportEnvoyArgs};
use miette::{IntoDiagnostic, WrapErr};
use pwchain_compose::import_envoy::{self, EnvoyOptions};
use pwchain_compose::output::write_atomically;
use std::process::ExitCode;

pub(crate) fn import(command: ImportCommand) -> miette::Result<ExitCode> {
    match command {
        ImportCommand::Envoy(args) => envoy(args),
    }
}

fn envoy(args: ImportEnvoyArgs) -> miette::Result<ExitCode> {
    let text = std::fs::read_to_string(&args.file)
        .into_diagnostic()
        .wrap_err_with(|| format!("cannot read `{}`", args.file.display()))?;
    let options = EnvoyOptions {
        listener: args.listener,
        maps: args.maps,
        clusters: args.clusters,
        skip_unsupported: args.skip_unsupported,
    };
    let chain = import_envoy::import(&args.file, text, &options)?;
    match &args.output {
        Some(path) => {
            write_atomically(path, chain.as_bytes())?;
            eprintln!(
                "imported `{}` into {}; compose it with `pwchain compose {}`",
                args.file.display(),
                path.display(),
                path.display()
            );
        }
        None => print!("{chain}"),
    }
    Ok(ExitCode::SUCCESS)
}
