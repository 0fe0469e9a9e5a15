//! What can go wrong building the composition graph: adding components,
//! wiring them, generating pwchain's own, and encoding the composite.

/// An error of another library, kept as the cause.
pub type Cause = Box<dyn std::error::Error + Send + Sync>;

/// What can go wrong building the composition graph.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum GraphError {
    /// A chain of no stages.
    #[error("the chain has no plugins")]
    Empty,

    /// A component wac-graph cannot read or register.
    #[error("`{package}` cannot be added to the composition")]
    Package {
        /// Its package name in the graph.
        package: String,
        /// What wac-graph said.
        #[source]
        source: Cause,
    },

    /// A generated or built-in component that does not fit the import it
    /// was planned for.
    #[error("plugin `{plugin}`: cannot link `{provider}` to its import `{import}`")]
    Provider {
        /// The stage (or wrapped module) whose import it is.
        plugin: String,
        /// The component given to it.
        provider: String,
        /// The import.
        import: String,
        /// What wac-graph said.
        #[source]
        source: Cause,
    },

    /// A planned component whose consumer is not in the graph.
    #[error("`{provider}` is planned for `{consumer}`, which is not in the graph (a pwchain bug)")]
    UnknownConsumer {
        /// The planned component.
        provider: String,
        /// The stage it was planned for.
        consumer: String,
    },

    /// The first stage has no `handler` export to enter the chain by.
    #[error("plugin `{plugin}` exports no handler to enter the chain by")]
    NoEntry {
        /// The first stage.
        plugin: String,
    },

    /// The entry cannot be exported from the composite.
    #[error("cannot export `{export}` from the composite")]
    Export {
        /// The export.
        export: String,
        /// What wac-graph said.
        #[source]
        source: Cause,
    },

    /// The composed component does not encode or validate.
    #[error("the composed component is invalid")]
    Invalid(#[source] Cause),

    /// A component pwchain generates failed to build: pwchain's bug, not
    /// the user's.
    #[error("generating {what} failed (a pwchain bug)")]
    Generated {
        /// Which component.
        what: String,
        /// What the generator said.
        #[source]
        source: Cause,
    },

    /// A `side-calls` policy for a `wasi:http/client` of another version.
    #[error("`side-calls` policies apply to `{expected}`; this plugin imports `{found}`")]
    SideCallVersion {
        /// The client interface pwchain can deny.
        expected: String,
        /// The one the plugin imports.
        found: String,
    },

    /// `--emit-wac` for a chain with generated components and nowhere to
    /// write them.
    #[error(
        "this chain needs components pwchain generates (configuration stores, side-call policies, wrapped proxy-wasm modules, the settings of an `upstream` or `forward` origin)"
    )]
    #[diagnostic(help("write the WAC to a file with `-o`, and they are written beside it"))]
    NeedsDepsDir,

    /// `--emit-wac` for a chain whose last plugin has `match` and whose
    /// origin is the host: both ways on would be one import of the
    /// composite, which the document cannot say.
    #[error(
        "plugin `{plugin}` has `match` and is last before `[origin] host = true`: a WAC document cannot give its route match and the plugin one import"
    )]
    #[diagnostic(help(
        "compose the chain with `pwchain compose` (without `--emit-wac`), or move `match` to another plugin"
    ))]
    MatchBeforeHost {
        /// The plugin.
        plugin: String,
    },

    /// A plugin named like a part pwchain adds for another plugin (its
    /// store, route match, timer, run driver): both would be one node.
    #[error("two parts of the chain would both be named `{node}`")]
    #[diagnostic(help(
        "rename the plugin: pwchain names the parts it adds after their plugin (`NAME-config`, `NAME-match`, `NAME-timer`, `NAME-run`, `NAME-pair`, `NAME-allow-calls`, `NAME-deny-calls`) and takes `stage-timing` (the timing sink) and `legacy-shared` (wrapped filters' shared data)"
    ))]
    NodeNameTaken {
        /// The name both would have.
        node: String,
    },
}

impl GraphError {
    /// A generator's failure, named by what it was generating.
    pub(crate) fn generated(what: impl Into<String>, source: impl Into<Cause>) -> GraphError {
        GraphError::Generated {
            what: what.into(),
            source: source.into(),
        }
    }
}
