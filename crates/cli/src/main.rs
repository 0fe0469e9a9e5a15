//! `pwchain`: the command-line front end. Each command parses its flags,
//! calls the library (`pwchain-compose`) or the host (`pwchain-host`), and
//! prints the result; no logic of its own lives here.

/// Writes to standard output; a reader that went away (`| head`) ends
/// the output quietly instead of panicking.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        match write!(std::io::stdout().lock(), $($arg)*) {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
            other => other.into_diagnostic()?,
        }
    }};
}

macro_rules! outln {
    ($($arg:tt)*) => {{
        out!($($arg)*);
        out!("\n");
    }};
}

mod args;
mod new;
mod progress;
mod render;
mod serve;

use args::{
    CacheCommand, Cli, Command, ComposeArgs, InspectArgs, LogFormat, LoginArgs, PublishArgs,
    PullArgs, ResolveArgs, ValidateArgs, WrapArgs,
};
use clap::Parser;
use miette::{IntoDiagnostic, Report, WrapErr, miette};
use pwchain_compose::cache::Cache;
use pwchain_compose::packages::{PackageSpec, Registries};
use pwchain_compose::proxy_wasm::{self, WrapOptions};
use pwchain_compose::registry::{Contents, OciRef, Registry};
use pwchain_compose::resolve::Resolver;
use pwchain_compose::{Manifest, output::write_atomically, pipeline, resolve};
use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Wrapped messages are for people; logs and pipes get whole lines.
    if !std::io::stderr().is_terminal() {
        let _ = miette::set_hook(Box::new(|_| {
            Box::new(miette::MietteHandlerOpts::new().width(1000).build())
        }));
    }
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_log_filter(&cli)));
    // Log lines are written by a thread of their own, in batches, so that
    // a request never waits on a write to stderr (an access-log line per
    // request would otherwise cost a system call on the request's path).
    // Nothing is dropped: a full queue holds the logger back instead.
    let (writer, flushed) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .thread_name("pwchain-log")
        .finish(std::io::BufWriter::new(std::io::stderr()));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    match cli.log_format {
        LogFormat::Json => logs.json().init(),
        LogFormat::Text => logs.with_ansi(std::io::stderr().is_terminal()).init(),
    }
    let result = run(cli);
    // The logs so far come before the error that ends the run.
    drop(flushed);
    match result {
        Ok(code) => code,
        Err(report) => {
            eprintln!("{report:?}");
            ExitCode::FAILURE
        }
    }
}

fn default_log_filter(cli: &Cli) -> &'static str {
    match cli.command {
        Command::Serve(_) => "pwchain=info,pwchain_host=info",
        _ => "warn",
    }
}

fn run(cli: Cli) -> miette::Result<ExitCode> {
    match cli.command {
        Command::Compose(args) => compose(args),
        Command::Inspect(args) => inspect(args),
        Command::Validate(args) => validate(args),
        Command::New(args) => {
            let dir = new::scaffold(&args.name, args.lang, args.kind, args.dir)?;
            eprintln!(
                "created `{}`: a {:?} {} plugin; its README.md says how to build and run it",
                dir.display(),
                args.lang,
                args.kind.word()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve(args) => serve::serve(args),
        Command::Publish(args) => publish(args),
        Command::Pull(args) => pull(args),
        Command::Cache(command) => cache(command),
        Command::Login(args) => login(args),
        Command::Wrap(args) => wrap(args),
    }
}

fn wrap(args: WrapArgs) -> miette::Result<ExitCode> {
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
        digest: resolve::digest(&wrapped.bytes),
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

fn is_wac(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "wac")
}

fn compose(args: ComposeArgs) -> miette::Result<ExitCode> {
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

pub(crate) fn stem(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "chain".into())
}

/// Reads the component at `path` and classifies it.
fn read_component(path: &Path) -> miette::Result<(Vec<u8>, pwchain_compose::Inspection)> {
    let bytes = std::fs::read(path)
        .into_diagnostic()
        .wrap_err_with(|| format!("cannot read `{}`", path.display()))?;
    let info = pwchain_compose::inspect(&bytes, path).map_err(|problem| {
        Report::new(pwchain_compose::Error::Plugin {
            plugin: stem(path),
            problem,
        })
    })?;
    Ok((bytes, info))
}

fn inspect(args: InspectArgs) -> miette::Result<ExitCode> {
    if let Ok(bytes) = std::fs::read(&args.file)
        && let Ok(Some(module)) = pwchain_compose::proxy_wasm::detect(&bytes)
    {
        let report = render::LegacyReport::new(args.file.display().to_string(), &bytes, module);
        print_report(&report, args.json)?;
        return Ok(ExitCode::SUCCESS);
    }
    let (bytes, info) = read_component(&args.file)?;
    let report = render::InspectReport {
        file: args.file.display().to_string(),
        bytes: bytes.len(),
        digest: resolve::digest(&bytes),
        info,
    };
    print_report(&report, args.json)?;
    Ok(ExitCode::SUCCESS)
}

/// Prints `report` for people, or as JSON.
fn print_report(
    report: &(impl serde::Serialize + std::fmt::Display),
    json: bool,
) -> miette::Result<()> {
    if json {
        outln!(
            "{}",
            serde_json::to_string_pretty(report).into_diagnostic()?
        );
    } else {
        out!("{report}");
    }
    Ok(())
}

/// A composite from a `.wasm` file, or composed in memory from a chain.
/// The component at `path`, composed first if it is a chain.
fn load_composite(path: &Path, args: &ResolveArgs) -> miette::Result<Vec<u8>> {
    let loaded = pipeline::load(path, &args.options())?;
    if let Some(composed) = &loaded.composed {
        warn(&composed.warnings);
    }
    Ok(loaded.bytes)
}

pub(crate) fn warn(warnings: &[String]) {
    for warning in warnings {
        eprintln!("warning: {warning}");
    }
}

/// wasmtime's compilation cache, beside the component cache.
pub(crate) fn compiled(args: &ResolveArgs) -> PathBuf {
    Cache::open(args.cache_dir.clone()).root().join("compiled")
}

fn validate(args: ValidateArgs) -> miette::Result<ExitCode> {
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

/// `oci://…:VERSION` as it is, or `ns:name@VERSION` through the registry
/// configuration.
fn publish_reference(text: &str, registry: Option<String>) -> miette::Result<OciRef> {
    if text.starts_with("oci://") {
        return Ok(text.parse().map_err(pwchain_compose::Error::from)?);
    }
    let (package, version) = text.split_once('@').ok_or_else(|| {
        miette!(
            help = "e.g. oci://HOST/acme/auth:1.2.0 or acme:auth@1.2.0",
            "`{text}` names no version"
        )
    })?;
    let spec: PackageSpec = package.parse().map_err(|e: String| miette!("{e}"))?;
    let repository = Registries::load(registry)
        .repository(&spec)
        .map_err(pwchain_compose::Error::from)?;
    Ok(format!("{repository}:{version}")
        .parse()
        .map_err(pwchain_compose::Error::from)?)
}

fn publish(args: PublishArgs) -> miette::Result<ExitCode> {
    let reference = publish_reference(&args.reference, args.registry.clone())?;
    let version = reference.tag().unwrap_or_default().to_string();
    if semver::Version::parse(&version).is_err() {
        return Err(miette!(
            help = "publish as oci://HOST/NAMESPACE/NAME:1.2.0",
            "`{}`: the tag must be a semver version, found `{version}`",
            args.reference
        ));
    }
    let bytes = std::fs::read(&args.file)
        .into_diagnostic()
        .wrap_err_with(|| format!("cannot read `{}`", args.file.display()))?;
    let legacy = proxy_wasm::detect(&bytes).ok().flatten();
    let info;
    let contents = match &legacy {
        Some(module) => Contents::ProxyWasm(module),
        None => {
            info = read_component(&args.file)?.1;
            Contents::Component(&info)
        }
    };
    let what = match contents {
        Contents::ProxyWasm(_) => "proxy-wasm module".to_string(),
        Contents::Component(info) => info.role.to_string(),
    };
    let title = reference
        .repository()
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_string();
    let mut annotations = BTreeMap::from([
        (
            "org.opencontainers.image.created".to_string(),
            chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        ),
        ("org.opencontainers.image.version".to_string(), version),
        ("org.opencontainers.image.title".to_string(), title),
    ]);
    for (key, value) in [
        ("description", args.description),
        ("source", args.source),
        ("licenses", args.licenses),
    ] {
        if let Some(value) = value {
            annotations.insert(format!("org.opencontainers.image.{key}"), value);
        }
    }
    let registry = Registry::new()
        .map_err(pwchain_compose::Error::from)?
        .with_progress(progress::bars());
    let published = registry
        .publish(&reference, &bytes, contents, annotations, args.force)
        .map_err(pwchain_compose::Error::from)?;
    if args.json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&published).into_diagnostic()?
        );
    } else {
        outln!("{}", published.manifest_digest);
        eprintln!(
            "published {} ({} {}, layer {})",
            published.reference,
            what,
            render::kib(published.size),
            published.layer_digest
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn pull(args: PullArgs) -> miette::Result<ExitCode> {
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

fn cache(command: CacheCommand) -> miette::Result<ExitCode> {
    match command {
        CacheCommand::Ls { cache_dir, json } => {
            let cache = Cache::open(cache_dir);
            let listed = cache.list().map_err(pwchain_compose::Error::from)?;
            if json {
                outln!(
                    "{}",
                    serde_json::to_string_pretty(&listed).into_diagnostic()?
                );
            } else {
                outln!("{}", cache.root().display());
                for blob in listed {
                    outln!(
                        "  {} {:>10} {}",
                        blob.digest,
                        render::kib(blob.size as usize),
                        blob.references.join(", ")
                    );
                }
            }
        }
        CacheCommand::Prune { cache_dir } => {
            let cache = Cache::open(cache_dir);
            let (count, bytes) = cache.prune().map_err(pwchain_compose::Error::from)?;
            eprintln!(
                "removed {count} component(s), {} from {}",
                render::kib(bytes as usize),
                cache.root().display()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn login(args: LoginArgs) -> miette::Result<ExitCode> {
    let mut password = String::new();
    std::io::stdin()
        .read_line(&mut password)
        .into_diagnostic()
        .wrap_err("cannot read the password from standard input")?;
    let password = password.trim_end_matches(['\r', '\n']);
    if password.is_empty() {
        return Err(miette!("no password on standard input"));
    }
    let path = pwchain_compose::registry::login(&args.registry, &args.username, password)
        .map_err(|e| miette!("{e}"))?;
    eprintln!(
        "credentials for {} stored in {}",
        args.registry,
        path.display()
    );
    Ok(ExitCode::SUCCESS)
}
