//! `pwchain import`: another proxy's Wasm filter configuration as a
//! `chain.toml`.

use crate::args::{ImportCommand, ImportEnvoyArgs, ImportIstioArgs};
use miette::{IntoDiagnostic, WrapErr};
use pwchain_compose::import::envoy::{self, EnvoyOptions};
use pwchain_compose::import::istio::{self, IstioOptions};
use pwchain_compose::output::write_atomically;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

pub(crate) fn import(command: ImportCommand) -> miette::Result<ExitCode> {
    match command {
        ImportCommand::Envoy(args) => envoy(args),
        ImportCommand::Istio(args) => istio(args),
    }
}

fn read(path: &Path) -> miette::Result<String> {
    std::fs::read_to_string(path)
        .into_diagnostic()
        .wrap_err_with(|| format!("cannot read `{}`", path.display()))
}

/// The chain to `output` (atomically), or to standard output.
fn emit(chain: &str, output: Option<&PathBuf>, from: &str) -> miette::Result<()> {
    match output {
        Some(path) => {
            write_atomically(path, chain.as_bytes())?;
            eprintln!(
                "imported {from} into {}; compose it with `pwchain compose {}`",
                path.display(),
                path.display()
            );
        }
        None => print!("{chain}"),
    }
    Ok(())
}

fn istio(args: ImportIstioArgs) -> miette::Result<ExitCode> {
    let files = args
        .files
        .iter()
        .map(|path| Ok((path.as_path(), read(path)?)))
        .collect::<miette::Result<Vec<_>>>()?;
    let options = IstioOptions {
        upstream: args.upstream,
    };
    let chain = istio::import(files, &options)?;
    let from = format!("{} file(s) of WasmPlugins", args.files.len());
    emit(&chain, args.output.as_ref(), &from)?;
    Ok(ExitCode::SUCCESS)
}

fn envoy(args: ImportEnvoyArgs) -> miette::Result<ExitCode> {
    let text = read(&args.file)?;
    let options = EnvoyOptions {
        listener: args.listener,
        maps: args.maps,
        clusters: args.clusters,
        skip_unsupported: args.skip_unsupported,
    };
    let imported = envoy::import(&args.file, text, &options)?;
    if !imported.modules.is_empty() {
        // The chain names them relative to itself.
        let Some(output) = &args.output else {
            miette::bail!(miette::diagnostic!(
                help = "write the chain to a file (`-o chain.toml`): the modules go beside it",
                "`{}` holds filter code inline (`inline_bytes`), which must be written to files",
                args.file.display()
            ));
        };
        let dir = output.parent().unwrap_or(Path::new(""));
        for (name, bytes) in &imported.modules {
            write_atomically(&dir.join(name), bytes)?;
        }
    }
    emit(
        &imported.chain,
        args.output.as_ref(),
        &format!("`{}`", args.file.display()),
    )?;
    Ok(ExitCode::SUCCESS)
}
