//! The imports a host provides, as `wasmtime serve` 48 links them.

use crate::state::Host;
use wasmtime::Engine;
use wasmtime::component::Linker;

/// Which of `wasmtime serve`'s import sets to provide.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportSet {
    /// `wasmtime serve`: wasi:http (0.2 proxy world and 0.3), with p3
    /// clocks, random and stdio.
    Serve,
    /// `wasmtime serve -Scli`: all of WASI 0.2 and 0.3 besides wasi:http.
    ServeCli,
}

impl ImportSet {
    /// The command line that provides this set, for messages.
    pub fn flag(self) -> &'static str {
        match self {
            ImportSet::Serve => "wasmtime serve",
            ImportSet::ServeCli => "wasmtime serve -Scli",
        }
    }
}

/// A linker with the imports `set` provides, as that `wasmtime serve` does.
pub fn linker(engine: &Engine, set: ImportSet) -> anyhow::Result<Linker<Host>> {
    let mut linker = Linker::new(engine);
    match set {
        ImportSet::Serve => {
            wasmtime_wasi_http::p2::add_to_linker_async(&mut linker)?;
            wasmtime_wasi_http::p3::add_to_linker(&mut linker)?;
            wasmtime_wasi::p3::clocks::add_to_linker(&mut linker)?;
            wasmtime_wasi::p3::random::add_to_linker(&mut linker)?;
            wasmtime_wasi::p3::cli::add_to_linker(&mut linker)?;
        }
        ImportSet::ServeCli => {
            wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
            wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
            wasmtime_wasi::p3::add_to_linker(&mut linker)?;
            wasmtime_wasi_http::p3::add_to_linker(&mut linker)?;
        }
    }
    Ok(linker)
}
