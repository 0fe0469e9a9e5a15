//! `pwchain cache`: list and prune the component cache.

use crate::args::CacheCommand;
use crate::render;
use miette::IntoDiagnostic;
use pwchain_compose::resolve::cache::Cache;
use std::process::ExitCode;

pub(crate) fn cache(command: CacheCommand) -> miette::Result<ExitCode> {
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
