//! Errors of the library. Each names the culprit (file, plugin, import or
//! export), what was expected and what was found, and where useful a hint;
//! errors about a manifest entry carry its line and column.

mod cache;
mod graph;
mod registry;
mod signing;
mod wrap;

pub use cache::CacheError;
pub use graph::{Cause, GraphError};
pub use registry::RegistryError;
pub use signing::{KeyError, Rejection};
pub use wrap::{ModuleError, WrapProblem};

use miette::{Diagnostic, NamedSource, SourceSpan};
use std::ops::Range;
use std::path::{Path, PathBuf};

/// A text file errors can point into (a manifest or a WAC document).
#[derive(Debug)]
pub struct SourceFile {
    /// The file as named.
    pub path: PathBuf,
    /// Its whole text.
    pub text: String,
}

impl SourceFile {
    /// A file read into `text`, for errors that point into it.
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
    /// What is wrong.
    pub message: String,
    /// The file.
    pub path: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    #[source_code]
    src: NamedSource<String>,
    #[label("here")]
    span: SourceSpan,
    /// What to do about it.
    #[help]
    pub help: Option<String>,
}

/// Everything that can go wrong between a manifest and a written composite.
#[derive(Debug, thiserror::Error, Diagnostic)]
pub enum Error {
    /// An error at a line and column of a manifest or WAC file.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Located(Box<LocatedError>),

    /// Files to import from that hold nothing importable.
    #[error("no {looked_for} in the files given")]
    NothingToImport {
        /// What was looked for.
        looked_for: &'static str,
    },

    /// A file that cannot be read.
    #[error("cannot read `{}`", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },

    /// A plugin that cannot stand where the chain puts it.
    #[error("plugin `{plugin}`: {problem}")]
    Plugin {
        /// The plugin's name in the chain.
        plugin: String,
        /// What is wrong with it.
        problem: PluginProblem,
    },

    /// Two neighbours whose next hop and handler do not fit.
    #[error(
        "cannot link plugin `{from}` to `{to}`: its import `{import}` does not accept `{to}`'s export `{export}`"
    )]
    #[diagnostic(help(
        "the two plugins were built against WASI versions that cannot be reconciled; rebuild them against the same wasi:http 0.3 release"
    ))]
    Link {
        /// The plugin whose next hop is linked.
        from: String,
        /// The stage it is linked to.
        to: String,
        /// The next-hop import.
        import: String,
        /// The export it was given.
        export: String,
        /// What wac-graph said.
        #[source]
        source: Cause,
    },

    /// Building the composition graph failed.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Graph(#[from] GraphError),

    /// A legacy proxy-wasm module `wrap` cannot take.
    #[error("cannot wrap `{module}`: {problem}")]
    Wrap {
        /// The module, by name or digest.
        module: String,
        /// Why it cannot be wrapped.
        problem: WrapProblem,
        /// What to do about it (the problem's own hint).
        #[help]
        help: Option<&'static str>,
    },

    /// A registry operation failed.
    #[error(transparent)]
    Registry(#[from] RegistryError),

    /// The cache failed.
    #[error(transparent)]
    Cache(#[from] CacheError),

    /// A registry plugin is needed but `--offline` forbids fetching it.
    #[error("`{reference}` is not in the cache, and --offline forbids fetching it")]
    #[diagnostic(help("compose once without --offline to fill the cache"))]
    Offline {
        /// The plugin's reference.
        reference: String,
    },

    /// The registry served other bytes than `pwchain.lock` pins.
    #[error(
        "`{reference}` is pinned to layer {locked} in pwchain.lock, but the registry served {found}"
    )]
    #[diagnostic(help(
        "if the change is expected, delete the plugin's entry from pwchain.lock and compose again"
    ))]
    LockMismatch {
        /// The plugin's reference.
        reference: String,
        /// The layer digest the lock holds.
        locked: String,
        /// The layer digest the registry served.
        found: String,
    },

    /// `pwchain.lock` that does not parse.
    #[error("`{}` is not a valid lock file", path.display())]
    #[diagnostic(help("delete it and compose again; it is rewritten from the registries"))]
    BadLock {
        /// The lock file.
        path: PathBuf,
        /// What the TOML parser said.
        #[source]
        source: toml::de::Error,
    },

    /// `what` is `plugin `NAME`` in a chain, else the artifact or key pair.
    #[error("{what}: cannot use the key")]
    Key {
        /// What the key was for.
        what: String,
        /// What went wrong with it.
        #[source]
        source: KeyError,
    },

    /// No trusted key signed a plugin the chain says must be signed.
    #[error(
        "plugin `{plugin}` (`{reference}`, manifest {digest}) is not trusted: {rejection}; trusted keys: {}",
        keys.join(", ")
    )]
    #[diagnostic(help(
        "sign it with `pwchain sign {reference} --key KEY.key` (or `pwchain publish --sign`), or add its publisher's public key to `trust`"
    ))]
    Untrusted {
        /// The plugin's name in the chain.
        plugin: String,
        /// Its reference.
        reference: String,
        /// The manifest digest checked.
        digest: String,
        /// The trusted keys, each with its fingerprint.
        keys: Vec<String>,
        /// Why none of them vouches for it.
        rejection: Box<Rejection>,
    },

    /// `--locked` and a lock that would change.
    #[error("`{}` would change, and --locked forbids it", path.display())]
    #[diagnostic(help("compose without --locked to update it, and commit the result"))]
    LockWouldChange {
        /// The lock file.
        path: PathBuf,
    },

    /// A result that cannot be written (nothing is left half-written).
    #[error("cannot write `{}`", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// `module` refused by `wrap` for `problem`, with the problem's hint.
    pub fn wrap(module: impl Into<String>, problem: WrapProblem) -> Error {
        Error::Wrap {
            module: module.into(),
            help: problem.help(),
            problem,
        }
    }

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
                file.error(span, error_chain(&other), help)
            }
        }
    }
}

/// An error and all its causes on one line.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Why a component cannot stand where the chain puts it.
#[derive(Debug, thiserror::Error)]
pub enum PluginProblem {
    /// Not WebAssembly at all.
    #[error("`{}` is not WebAssembly ({found})", path.display())]
    NotWasm {
        /// The file.
        path: PathBuf,
        /// What its first bytes look like.
        found: String,
    },

    /// A core module where a component is needed.
    #[error("`{}` is a core WebAssembly module, not a component", path.display())]
    CoreModule {
        /// The file.
        path: PathBuf,
    },

    /// A component that does not validate.
    #[error("`{}` is not a valid component: {reason}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What the validator said.
        reason: String,
    },

    /// No `wasi:http/handler` 0.3 export.
    #[error("no `wasi:http/handler@0.3.x` export (it exports: {})", list(exports))]
    NoEntry {
        /// What it exports instead.
        exports: Vec<String>,
    },

    /// An export named after the header-filter contract that is not one.
    #[error(
        "it exports `{export}`, which should have `on-request` and `on-response`, each taking a head and returning a verdict; it has: {found}"
    )]
    NotHeaderFilter {
        /// The export.
        export: String,
        /// What functions it has.
        found: String,
    },

    /// A header filter last with no `[origin]`.
    #[error(
        "it is a header filter (it exports `{export}`) and stands last, but the manifest has no `[origin]` for it to pass requests on to"
    )]
    HeaderFilterLast {
        /// Its header-filter export.
        export: String,
    },

    /// A wasi:http 0.2 component.
    #[error("it is a wasi:http 0.2 component (exports `{export}`), which cannot be a middleware")]
    WasiHttp02 {
        /// Its 0.2 export.
        export: String,
    },

    /// A wasi:http 0.3 release candidate.
    #[error("it uses the prerelease `{name}`, which wasi:http 0.3 hosts do not link")]
    Prerelease {
        /// The prerelease interface.
        name: String,
    },

    /// A service that is not last.
    #[error(
        "it is a service (no next-hop import) but stands before `{next}`; a service can only stand last"
    )]
    ServiceNotLast {
        /// The stage after it.
        next: String,
    },

    /// A service last, and an `[origin]` after it.
    #[error(
        "it is a service (no next-hop import), so nothing can stand after it, but the manifest has an `[origin]`"
    )]
    ServiceBeforeOrigin,

    /// A middleware last with no `[origin]`.
    #[error(
        "it is a middleware (it imports `{import}`) and stands last, but the manifest has no `[origin]`"
    )]
    MiddlewareLast {
        /// Its next-hop import.
        import: String,
    },

    /// An `[origin]` that is a middleware.
    #[error("the origin must be a service, but it imports the next hop `{import}`")]
    OriginNotService {
        /// Its next-hop import.
        import: String,
    },

    /// An `[origin]` that is a header filter.
    #[error(
        "the origin must be a service, but it is a header filter (it exports `{export}`), which passes requests on"
    )]
    OriginIsHeaderFilter {
        /// Its header-filter export.
        export: String,
    },

    /// A host import `[chain] allow-imports` does not allow.
    #[error(
        "it imports `{import}`, which `[chain] allow-imports` does not allow (it allows: {})",
        list(allowed)
    )]
    ImportNotAllowed {
        /// The import.
        import: String,
        /// The patterns allowed.
        allowed: Vec<String>,
    },

    /// `config` for a plugin that cannot read it.
    #[error(
        "it has `config`, but it does not import `wasi:config/store`, so the configuration would be ignored"
    )]
    ConfigWithoutStore,

    /// `match` on a service, which has no stage after it to skip to.
    #[error(
        "it has `match`, but it is a service (no next-hop import): a request it does not match would have nothing to go to"
    )]
    MatchOnService,
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
            PluginProblem::NotHeaderFilter { .. } => {
                "build it against `wit/filter.wit`'s world `pwchain:proxy/header-filter-plugin` (or `configured-header-filter`), e.g. from `pwchain new NAME --kind header-filter`".into()
            }
            PluginProblem::HeaderFilterLast { .. } => {
                "add `[origin]` (a service, `upstream = \"http://host:port\"`, `forward = true` or `host = true`)".into()
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
            PluginProblem::OriginNotService { .. } | PluginProblem::OriginIsHeaderFilter { .. } => {
                "list it as a `[[plugin]]` instead, and end the chain with another origin".into()
            }
            PluginProblem::ImportNotAllowed { import, .. } => format!(
                "add a pattern that matches it to `[chain] allow-imports` (e.g. `{}`), or remove the plugin",
                import.split('@').next().unwrap_or(import)
            ),
            PluginProblem::MatchOnService => {
                "remove `match`, or put a middleware in front of the service and give it the `match`".into()
            }
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
