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
mod cache;
mod compose;
mod import;
mod inspect;
mod key;
mod log_writer;
mod login;
mod new;
mod progress;
mod publish;
mod pull;
mod render;
mod serve;
mod sign;
mod validate;
mod verify;
mod wrap;

use args::{Cli, Command, LogFormat, ResolveArgs};
use clap::Parser;
use miette::{IntoDiagnostic, Report, WrapErr};
use pwchain_compose::pipeline;
use pwchain_compose::resolve::cache::Cache;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

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
    // Log lines are gathered in memory and written by a thread of their
    // own (see `log_writer`): a request never waits on stderr.
    let (writer, flushed) = log_writer::batched();
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
        Command::Compose(args) => compose::compose(args),
        Command::Inspect(args) => inspect::inspect(args),
        Command::Validate(args) => validate::validate(args),
        Command::New(args) => {
            let dir = new::scaffold(&args.name, args.lang, args.kind, args.dir)?;
            eprintln!(
                "created `{}`: a {} {} plugin; its README.md says how to build and run it",
                dir.display(),
                args.lang.word(),
                args.kind.word()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve(args) => serve::serve(*args),
        Command::Publish(args) => publish::publish(args),
        Command::Pull(args) => pull::pull(args),
        Command::Cache(command) => cache::cache(command),
        Command::Login(args) => login::login(args),
        Command::Wrap(args) => wrap::wrap(args),
        Command::Import(command) => import::import(command),
        Command::Key(command) => key::key(command),
        Command::Sign(args) => sign::sign(args),
        Command::Verify(args) => verify::verify(args),
    }
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
