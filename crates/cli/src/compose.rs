//! `pwchain compose`: a chain (TOML or WAC) into one component, written
//! atomically; `--emit-wac` prints the chain as WAC instead.

use crate::args::ComposeArgs;
use crate::render;
use crate::warn;
use miette::IntoDiagnostic;
use miette::WrapErr;
use miette::miette;
use pwchain_compose::output::write_atomically;
use pwchain_compose::pipeline;
use std::io::IsTerminal;
use std::io::Write;
use std::path::Path;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

fn is_wac(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "wac")
}

pub(crate) fn compose(args: ComposeArgs) -> miette::Result<ExitCode> {
    let started = Instant::now();
    if args.output.as_deref() == Some(Path::new("-")) && std::io::stdout().is_terminal() {
        return Err(miette!(
            help = "redirect standard output to a file or a pipe, or use `-o FILE`",
            "refusing to write a binary component to a terminal"
        ));
    }
    if args.emit_wac {
        if is_wac(&args.chain) {
            return Err(miette!(
                "`--emit-wac` takes a TOML chain; this one is WAC already"
            ));
        }
        return emit_wac(&args.chain, &args.resolve.options(), args.output.as_deref());
    }
    let options = pipeline::Options {
        wac_deps: args.deps.into_iter().collect(),
        wac_deps_dir: args.deps_dir,
        ..args.resolve.options()
    };
    let loaded = pipeline::load(&args.chain, &options)?;
    let (inputs, record, resolved) = match loaded.composed {
        Some(composed) => {
            warn(&composed.warnings);
            (
                Some(composed.input_bytes),
                Some(composed.record),
                composed.steps,
            )
        }
        None => (None, None, Vec::new()),
    };
    let (bytes, name) = (loaded.bytes, loaded.name);
    let output = args
        .output
        .unwrap_or_else(|| PathBuf::from(format!("{name}.wasm")));
    if output == Path::new("-") {
        let mut stdout = std::io::stdout().lock();
        stdout
            .write_all(&bytes)
            .and_then(|()| stdout.flush())
            .into_diagnostic()
            .wrap_err("cannot write to standard output")?;
    } else {
        write_atomically(&output, &bytes)?;
    }
    let summary = render::ComposeSummary {
        output: output.display().to_string(),
        bytes: bytes.len(),
        input_bytes: inputs,
        millis: started.elapsed().as_secs_f64() * 1e3,
        chain: record,
        resolved,
    };
    if args.json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&summary).into_diagnostic()?
        );
    } else if output != Path::new("-") {
        eprintln!("{summary}");
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes the chain as WAC to `output` (standard output without one or
/// for `-`), its generated components beside it.
fn emit_wac(
    chain: &Path,
    options: &pipeline::Options,
    output: Option<&Path>,
) -> miette::Result<ExitCode> {
    // Generated components go beside a WAC file: `chain.wac` → `chain.deps/`.
    let deps_dir = output
        .filter(|path| *path != Path::new("-"))
        .map(|path| path.with_extension("deps"));
    let wac = pipeline::to_wac(chain, options, deps_dir.as_deref())?;
    if let Some(dir) = &deps_dir {
        for (package, bytes) in &wac.generated {
            let file = dir.join(format!("{}.wasm", package.replace(':', "/")));
            if let Some(parent) = file.parent() {
                std::fs::create_dir_all(parent)
                    .into_diagnostic()
                    .wrap_err_with(|| format!("cannot create `{}`", parent.display()))?;
            }
            write_atomically(&file, bytes)?;
        }
    }
    match output {
        None => out!("{}", wac.text),
        Some(path) if path == Path::new("-") => out!("{}", wac.text),
        Some(path) => write_atomically(path, wac.text.as_bytes())?,
    }
    Ok(ExitCode::SUCCESS)
}
