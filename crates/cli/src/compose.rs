//! `pwchain compose`: a chain (TOML or WAC) into one component, written
//! atomically; `--emit-wac` prints the chain as WAC instead.

use crate::args::ComposeArgs;
use crate::render;
use crate::warn;
use miette::IntoDiagnostic;
use miette::WrapErr;
use miette::miette;
use pwchain_compose::Manifest;
use pwchain_compose::output::write_atomically;
use pwchain_compose::pipeline;
use pwchain_compose::resolve;
use pwchain_compose::resolve::Resolver;
use std::collections::BTreeMap;
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
        let manifest = Manifest::load(&args.chain)?;
        let (mut resolver, _) = pipeline::resolver(&args.chain, &args.resolve.options())?;
        return emit_wac(&manifest, &mut resolver, args.output.as_deref());
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

fn emit_wac(
    manifest: &Manifest,
    resolver: &mut Resolver,
    output: Option<&Path>,
) -> miette::Result<ExitCode> {
    let chain = resolve::load(manifest, resolver)?;
    let deps: BTreeMap<String, PathBuf> = manifest
        .plugins
        .iter()
        .chain(match &manifest.origin {
            Some(pwchain_compose::Origin::Service(spec)) => Some(spec.as_ref()),
            _ => None,
        })
        .filter_map(|spec| match &spec.source {
            // A wrapped module's component is generated, not read.
            pwchain_compose::Source::Path { .. } if spec.legacy.is_some() => None,
            pwchain_compose::Source::Path { path, .. } => {
                Some((format!("chain:{}", spec.name), manifest.dir().join(path)))
            }
            _ => None,
        })
        .collect();
    // Generated components go beside a WAC file: `chain.wac` → `chain.deps/`.
    let deps_dir = output
        .filter(|path| *path != Path::new("-"))
        .map(|path| path.with_extension("deps"));
    let wac = chain.to_wac(&deps, deps_dir.as_deref())?;
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
