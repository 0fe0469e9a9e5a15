//! Errors of the library. Each names the culprit (file, plugin, import or
//! export), what was expected and what was found, and where useful a hint;
//! errors about a manifest entry carry its line and column.

mod cache;
mod registry;
mod signing;

pub use cache::CacheError;
pub use registry::RegistryError;
pub use signing::{KeyError, Rejection};

use miette::{Diagnostic, NamedSource, SourceSpan};
use std::ops::Range;
use std::path::{Path, PathBuf};

/// A text file errors can point into (a manifest or a WAC document).
#[derive(Debug)]
pub struct SourceFile {
    pub path: PathBuf,
    pub text: String,
}

impl SourceFile {
    pub fn new(path: &Path, text: String) -> SourceFile {
        SourceFile {
            path: path.to_path_buf(),
            text,
        }
    }

    /// 1-based line and column of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let before = &self.text[..offset.min(self.text.len())];
        let line = before.matches('\n').count() + 1;
        let column = before
            .rfind('\n')
            .map_or(before.len(), |nl| before.len() - nl - 1)
            + 1;
        (line, column)
    }

    /// An error located at `span` of this file.
    pub fn error(&self, span: Range<usize>, message: String, help: Option<String>) -> Error {
        let (line, column) = self.line_col(span.start);
        Error::Located(Box::new(LocatedError {
            message,
            path: self.path.clone(),
            line,
            column,
            src: NamedSource::new(self.path.display().to_string(), self.text.clone()),
            span: span.into(),
            help,
        }))
    }
}

/// An error at a line and column of a manifest or WAC file.
#[derive(Debug, thiserror::Error, Diagnostic)]
#[error("{}:{line}:{column}: {message}", path.display())]
pub struct LocatedError {
    pub message: String,
    pub path: PathBuf,
    pub line: usize,
    pub column: usize,
    #[source_code]
    src: NamedSource<String>,
    #[label("here")]
    span: SourceSpan,
    #[help]
    pub help: Option<String>,
}

/// Everything that can go wrong between a manifest and a written composite.
#[derive(Debug, thiserror::Error, Diagnostic)]
pub enum Error {
    #[error(transparent)]
    #[diagnostic(transparent)]
    Located(Box<LocatedError>),

    /// Nothing to import, said plainly.
    #[error("{0}")]
    Import(String),

    #[error("cannot read `{}`", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("plugin `{plugin}`: {problem}")]
    Plugin {
        plugin: String,
        problem: PluginProblem,
    },

    #[error(
        "cannot link plugin `{from}` to `{to}`: its import `{import}` does not accept `{to}`'s export `{export}`: {reason}"
    )]
    #[diagnostic(help(
        "the two plugins were built against WASI versions that cannot be reconciled; rebuild them against the same wasi:http 0.3 release"
    ))]
    Link {
        from: String,
        to: String,
        import: String,
        export: String,
        reason: String,
    },

    #[error("composition failed: {0}")]
    Compose(String),

    /// A legacy proxy-wasm module `wrap` cannot take.
    #[error("cannot wrap `{module}`: {problem}")]
    Wrap {
        module: String,
        problem: String,
        #[help]
        help: Option<String>,
    },

    #[error("the composed component is invalid: {0}")]
    Encode(String),

    #[error(transparent)]
    Registry(#[from] RegistryError),

    #[error(transparent)]
    Cache(#[from] CacheError),

    #[error("`{reference}` is not in the cache, and --offline forbids fetching it")]
    #[diagnostic(help("compose once without --offline to fill the cache"))]
    Offline { reference: String },

    #[error(
        "`{reference}` is pinned to layer {locked} in pwchain.lock, but the registry served {found}"
    )]
    #[diagnostic(help(
        "if the change is expected, delete the plugin's entry from pwchain.lock and compose again"
    ))]
    LockMismatch {
        reference: String,
        locked: String,
        found: String,
    },

    #[error("{0}")]
    Lock(String),

    /// `what` is `plugin `NAME`` in a chain, else the artifact or key pair.
    #[error("{what}: cannot use the key")]
    Key {
        what: String,
        #[source]
        source: KeyError,
    },

    #[error(
        "plugin `{plugin}` (`{reference}`, manifest {digest}) is not trusted: {rejection}; trusted keys: {}",
        keys.join(", ")
    )]
    #[diagnostic(help(
        "sign it with `pwchain sign {reference} --key KEY.key` (or `pwchain publish --sign`), or add its publisher's public key to `trust`"
    ))]
    Untrusted {
        plugin: String,
        reference: String,
        digest: String,
        keys: Vec<String>,
        rejection: Box<Rejection>,
    },

    #[error("`{}` would change, and --locked forbids it", path.display())]
    #[diagnostic(help("compose without --locked to update it, and commit the result"))]
    LockWouldChange { path: PathBuf },

    #[error("cannot write `{}`", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// The hint to show under the error, if there is one.
    pub fn help(&self) -> Option<String> {
        match self {
            Error::Located(e) => e.help.clone(),
            Error::Plugin { problem, .. } => problem.help(),
            other => Diagnostic::help(other).map(|h| h.to_string()),
        }
    }

    /// Ties an error about a manifest entry to that entry's position.
    pub(crate) fn at(self, file: &SourceFile, span: Range<usize>) -> Error {
        match self {
            Error::Located(_) => self,
            other => {
                let help = other.help();
                let message = match std::error::Error::source(&other) {
                    Some(source) => format!("{other}: {source}"),
                    None => other.to_string(),
                };
                file.error(span, message, help)
            }
        }
    }
}

/// Why a component cannot stand where the chain puts it.
#[derive(Debug, thiserror::Error)]
pub enum PluginProblem {
    #[error("`{}` is not WebAssembly ({found})", path.display())]
    NotWasm { path: PathBuf, found: String },

    #[error("`{}` is a core WebAssembly module, not a component", path.display())]
    CoreModule { path: PathBuf },

    #[error("`{}` is not a valid component: {reason}", path.display())]
    Invalid { path: PathBuf, reason: String },

    #[error("no `wasi:http/handler@0.3.x` export (it exports: {})", list(exports))]
    NoEntry { exports: Vec<String> },

    #[error("it is a wasi:http 0.2 component (exports `{export}`), which cannot be a middleware")]
    WasiHttp02 { export: String },

    #[error("it uses the prerelease `{name}`, which wasi:http 0.3 hosts do not link")]
    Prerelease { name: String },

    #[error(
        "it is a service (no next-hop import) but stands before `{next}`; a service can only stand last"
    )]
    ServiceNotLast { next: String },

    #[error(
        "it is a service (no next-hop import), so nothing can stand after it, but the manifest has an `[origin]`"
    )]
    ServiceBeforeOrigin,

    #[error(
        "it is a middleware (it imports `{import}`) and stands last, but the manifest has no `[origin]`"
    )]
    MiddlewareLast { import: String },

    #[error("the origin must be a service, but it imports the next hop `{import}`")]
    OriginNotService { import: String },

    #[error(
        "it imports `{import}`, which `[chain] allow-imports` does not allow (it allows: {})",
        list(allowed)
    )]
    ImportNotAllowed {
        import: String,
        allowed: Vec<String>,
    },

    #[error(
        "it has `config`, but it does not import `wasi:config/store`, so the configuration would be ignored"
    )]
    ConfigWithoutStore,
}

impl PluginProblem {
    fn help(&self) -> Option<String> {
        Some(match self {
            PluginProblem::NotWasm { .. } | PluginProblem::Invalid { .. } => {
                "point `path` at a component built for wasm32-wasip2 (e.g. `target/wasm32-wasip2/release/NAME.wasm`)".into()
            }
            PluginProblem::CoreModule { .. } => {
                "turn it into a component (e.g. build for `wasm32-wasip2`, or `wasm-tools component new`); a proxy-wasm filter goes in a chain as `proxy-wasm = \"FILE\"`, or through `pwchain wrap`".into()
            }
            PluginProblem::NoEntry { .. } => {
                "a plugin must export `wasi:http/handler@0.3.x` (world `wasi:http/middleware`, `wasi:http/service` or `pwchain:proxy/proxy`)".into()
            }
            PluginProblem::WasiHttp02 { .. } => {
                "in wasi:http 0.2, `incoming-handler` and `outgoing-handler` have different types and a guest cannot build an `incoming-request` or a `response-outparam`, so one 0.2 component cannot call another; rebuild it for wasi:http 0.3 (world `wasi:http/middleware`)".into()
            }
            PluginProblem::Prerelease { .. } => {
                "prerelease versions match only exactly; rebuild against a wasi:http 0.3 release (0.3.0 or later)".into()
            }
            PluginProblem::ServiceNotLast { .. } => {
                "move the service to the end of the chain, or use it as `[origin]`".into()
            }
            PluginProblem::ServiceBeforeOrigin => {
                "remove `[origin]`, or replace the last plugin with a middleware".into()
            }
            PluginProblem::MiddlewareLast { .. } => {
                "add `[origin]` with `upstream = \"http://host:port\"`, `forward = true`, `host = true`, or `path = \"service.wasm\"`".into()
            }
            PluginProblem::OriginNotService { .. } => {
                "list it as a `[[plugin]]` instead, and end the chain with another origin".into()
            }
            PluginProblem::ImportNotAllowed { import, .. } => format!(
                "add a pattern that matches it to `[chain] allow-imports` (e.g. `{}`), or remove the plugin",
                import.split('@').next().unwrap_or(import)
            ),
            PluginProblem::ConfigWithoutStore => {
                "remove `config`, or build the plugin against a world that imports `wasi:config/store` (e.g. `pwchain:proxy/configured-middleware`)".into()
            }
        })
    }
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "nothing".into()
    } else {
        items.join(", ")
    }
}
