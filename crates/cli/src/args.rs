//! The command line, as clap sees it.

use clap::{Args, Parser, Subcommand};
use pwchain_host::serve::defaults;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Link HTTP middleware plugins (WebAssembly components) into one composed
/// proxy component, inspect and validate components, and serve a chain.
///
/// A chain is a `chain.toml` (ordered `[[plugin]]` tables and an `[origin]`)
/// or a WAC document. Each plugin's next hop (`wasi:http/handler`, or an
/// `origin` interface) is linked to the next plugin's `handler` export; side
/// calls (`wasi:http/client`) and other imports are left for the host.
///
/// Exit codes: 0 success; 1 an error (bad input, a plugin that does not fit,
/// I/O); 2 wrong usage; 3 (`validate`) a valid component that `wasmtime
/// serve` cannot run as it is.
///
/// Logging follows `RUST_LOG` (e.g. `RUST_LOG=pwchain=debug`).
#[derive(Debug, Parser)]
#[command(name = "pwchain", version, max_term_width = 100)]
pub struct Cli {
    /// Log format on standard error.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    /// One JSON object per line.
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    Compose(ComposeArgs),
    Inspect(InspectArgs),
    Validate(ValidateArgs),
    Serve(Box<ServeArgs>),
    Publish(PublishArgs),
    Pull(PullArgs),
    #[command(subcommand)]
    Cache(CacheCommand),
    Login(LoginArgs),
    New(NewArgs),
    Wrap(WrapArgs),
    #[command(subcommand)]
    Import(ImportCommand),
    #[command(subcommand)]
    Key(KeyCommand),
    Sign(SignArgs),
    Verify(VerifyArgs),
}

/// Signing keys, in cosign's formats.
#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Make an ECDSA P-256 key pair: NAME.key (the private key, encrypted
    /// with a password: scrypt + secretbox, `ENCRYPTED SIGSTORE PRIVATE
    /// KEY`) and NAME.pub (PEM `PUBLIC KEY`), as `cosign generate-key-pair`
    /// does. The password comes from `PWCHAIN_PASSWORD` (or
    /// `COSIGN_PASSWORD`), else from the first line of standard input.
    Generate(KeyGenerateArgs),
}

#[derive(Debug, Args)]
pub struct KeyGenerateArgs {
    /// NAME of the pair: writes NAME.key and NAME.pub.
    #[arg(long, value_name = "NAME")]
    pub out: PathBuf,

    /// Replace an existing pair.
    #[arg(long)]
    pub force: bool,
}

/// Sign an artifact in an OCI registry, the way cosign does: a
/// simple-signing payload naming the manifest digest, signed with a key,
/// stored as a layer of the manifest tagged `sha256-<hex>.sig` beside the
/// signatures already there. A tag is signed as the digest it points at
/// now. The key's password comes from `PWCHAIN_PASSWORD` (or
/// `COSIGN_PASSWORD`), else from standard input.
#[derive(Debug, Args)]
pub struct SignArgs {
    /// `oci://HOST[:PORT]/NAMESPACE/NAME(:TAG|@sha256:…)`.
    pub reference: String,

    /// The private key (`pwchain key generate` or `cosign
    /// generate-key-pair`).
    #[arg(long, value_name = "NAME.key")]
    pub key: PathBuf,

    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Check that an artifact in an OCI registry carries a cosign signature
/// by one of the given public keys, for the manifest its reference names
/// now. Exit 0 if one verifies; 1 (with the reason) if none does.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// `oci://HOST[:PORT]/NAMESPACE/NAME(:TAG|@sha256:…)`.
    pub reference: String,

    /// A trusted public key; repeat for several (any one will do).
    #[arg(long, value_name = "NAME.pub", required = true)]
    pub key: Vec<PathBuf>,

    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Turn another proxy's Wasm filter configuration into a `chain.toml`.
#[derive(Debug, Subcommand)]
pub enum ImportCommand {
    /// An Envoy v3 bootstrap (YAML or JSON, `static_resources`): the
    /// listener's `envoy.filters.http.wasm` filters in order become
    /// `[[plugin]]` entries (`proxy-wasm`, `configuration`,
    /// `vm-configuration`, `root-id`), its router's cluster the `[origin]
    /// upstream`, and the other clusters the chain's `clusters` for
    /// `proxy_http_call`.
    Envoy(ImportEnvoyArgs),
    /// Istio `WasmPlugin` and Wasm `TrafficExtension` resources
    /// (`extensions.istio.io/v1alpha1`, any number of files and YAML
    /// documents): each becomes a `[[plugin]]` (`url` as `proxy-wasm =
    /// "oci://…"`, `sha256` as `digest`, `pluginConfig` as JSON
    /// `configuration`, `pluginName` as `root-id`), ordered as Istio
    /// applies them: by `phase` (AUTHN, AUTHZ, STATS, unspecified), then by
    /// descending `priority`. A Lua `TrafficExtension` is refused.
    Istio(ImportIstioArgs),
}

#[derive(Debug, Args)]
pub struct ImportIstioArgs {
    /// Files of `WasmPlugin` or `TrafficExtension` resources (other kinds
    /// are skipped).
    #[arg(value_name = "RESOURCES.yaml", required = true)]
    pub files: Vec<PathBuf>,

    /// Where to write the chain (atomically); standard output without it.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// The workload the plugins stand in front of, `http://host:port`
    /// (default: the host's next hop, `pwchain serve --upstream`).
    #[arg(long, value_name = "URL")]
    pub upstream: Option<String>,
}

#[derive(Debug, Args)]
pub struct ImportEnvoyArgs {
    /// The Envoy configuration (`envoy -c FILE`).
    #[arg(value_name = "ENVOY.yaml")]
    pub file: PathBuf,

    /// Where to write the chain (atomically); standard output without it.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// The listener to import (default: the first with HTTP filters).
    #[arg(long, value_name = "NAME")]
    pub listener: Option<String>,

    /// Rewrite a path prefix of the filters' `vm_config.code.local.filename`
    /// (where Envoy's container has them) to where they are here.
    #[arg(long = "map", value_name = "FROM=TO", value_parser = parse_map)]
    pub maps: Vec<(String, String)>,

    /// Where a cluster really is (Envoy configurations often name hosts of
    /// their own network).
    #[arg(long = "cluster", value_name = "NAME=URL", value_parser = parse_cluster)]
    pub clusters: Vec<(String, String)>,

    /// Drop HTTP filters that are not Wasm filters (with a comment in the
    /// output) instead of failing.
    #[arg(long)]
    pub skip_unsupported: bool,
}

/// Turn a legacy proxy-wasm module (ABI 0.2.x, from any SDK, built for
/// `wasm32-unknown-unknown` or `wasm32-wasip1`) into a middleware component
/// that exports `wasi:http/handler` and imports it as its next hop, so it
/// runs in any chain and any wasi:http 0.3 host without being rebuilt.
///
/// The configuration is baked in: `on_configure` reads `--config`,
/// `on_vm_start` reads `--vm-config`, as Envoy passes them. A chain can
/// also name the module directly (`proxy-wasm = "filter.wasm"`).
#[derive(Debug, Args)]
pub struct WrapArgs {
    /// The proxy-wasm module (`.wasm`, a core module).
    #[arg(value_name = "MODULE")]
    pub file: PathBuf,

    /// Where to write the component.
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,

    /// A file whose contents (UTF-8 text) are the plugin configuration.
    #[arg(long, value_name = "FILE", conflicts_with = "config_string")]
    pub config: Option<PathBuf>,

    /// The plugin configuration, given inline.
    #[arg(long, value_name = "TEXT")]
    pub config_string: Option<String>,

    /// The VM configuration (`on_vm_start`), given inline.
    #[arg(long, value_name = "TEXT", default_value = "")]
    pub vm_config: String,

    /// The plugin's root id, a name as in Envoy's `root_id` (the C++ and
    /// AssemblyScript SDKs pick the root context registered under it).
    #[arg(long, value_name = "NAME", default_value = "")]
    pub root_id: String,

    /// Where `proxy_http_call`s to an Envoy cluster go, as
    /// `NAME=http://host:port` (repeatable). A call to a cluster with no
    /// mapping fails with BadArgument, as in Envoy, unless it names a
    /// literal `host:port`.
    #[arg(long = "cluster", value_name = "NAME=URL", value_parser = parse_cluster)]
    pub clusters: Vec<(String, String)>,

    /// The plugin's name in its log lines (default: the file's stem).
    #[arg(long)]
    pub name: Option<String>,

    /// Wrap even if the module imports hostcalls or WASI functions pwchain
    /// does not provide; they answer `Unimplemented` or `ENOSYS`.
    #[arg(long)]
    pub allow_unimplemented: bool,

    /// The most body a request or response may hold while the plugin
    /// pauses on it (then 413 or 500, as Envoy answers).
    #[arg(long, value_name = "BYTES", default_value_t = 1 << 20)]
    pub max_body_bytes: usize,

    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Start a plugin project: code that adds one header, the WIT it builds
/// against, build instructions, and a chain that composes it (in front of
/// an echo service, for a middleware or a header filter). It builds and
/// runs as generated.
#[derive(Debug, Args)]
pub struct NewArgs {
    /// The plugin's name, kebab-case (it becomes the package and crate name).
    pub name: String,

    /// The language to write it in.
    #[arg(long, value_enum)]
    pub lang: crate::new::Lang,

    /// What it is in a chain.
    #[arg(long, value_enum, default_value = "middleware")]
    pub kind: crate::new::Kind,

    /// Where to create it (default: ./NAME); must not exist, or be empty.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<std::path::PathBuf>,
}

/// Store credentials for a registry in Docker's config.json (as `docker
/// login` does), where `publish`, `pull` and `compose` find them. The
/// password is read from standard input, never from the command line.
#[derive(Debug, Args)]
pub struct LoginArgs {
    /// The registry, `host[:port]`.
    pub registry: String,

    #[arg(short, long)]
    pub username: String,

    /// Read the password from standard input (its first line).
    #[arg(long, required = true)]
    pub password_stdin: bool,
}

/// Where registry sources come from and how strictly.
#[derive(Debug, Args)]
pub struct ResolveArgs {
    /// Fail if `pwchain.lock` would change (CI).
    #[arg(long)]
    pub locked: bool,

    /// Resolve registry sources only from the cache and the lock.
    #[arg(long)]
    pub offline: bool,

    /// The component cache (default: $PWCHAIN_CACHE_DIR, else
    /// $XDG_CACHE_HOME/pwchain, else ~/.cache/pwchain). `serve` and
    /// `validate` keep compiled code in its `compiled/` folder, so a restart
    /// does not compile a big plugin again.
    #[arg(long, value_name = "DIR", env = "PWCHAIN_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,

    /// The registry (`host[:port]`) for `package = "ns:name@…"` sources,
    /// instead of the wkg configuration's.
    #[arg(long, value_name = "HOST", env = "PWCHAIN_REGISTRY")]
    pub registry: Option<String>,
}

impl ResolveArgs {
    /// How the library resolves and locks a chain, from these flags.
    pub fn options(&self) -> pwchain_compose::pipeline::Options {
        pwchain_compose::pipeline::Options {
            cache_dir: self.cache_dir.clone(),
            registry: self.registry.clone(),
            offline: self.offline,
            locked: self.locked,
            progress: crate::progress::bars(),
            ..Default::default()
        }
    }
}

/// Publish a component (a plugin or a composed chain) to an OCI registry.
///
/// REF is `oci://HOST[:PORT]/NAMESPACE/NAME:VERSION`, or `NAMESPACE:NAME@VERSION`
/// published to the registry `--registry` or the wkg configuration names
/// for the namespace (repository `NAMESPACE/NAME`); VERSION is a semver. The
/// artifact follows the CNCF Wasm OCI layout (one `application/wasm` layer,
/// a `application/vnd.wasm.config.v0+json` config). An existing version is
/// not overwritten without `--force`. Plain HTTP only for loopback or
/// `PWCHAIN_INSECURE_REGISTRIES`; credentials from
/// `PWCHAIN_REGISTRY_USERNAME`/`_PASSWORD` or ~/.docker/config.json.
#[derive(Debug, Args)]
pub struct PublishArgs {
    pub file: PathBuf,
    pub reference: String,

    /// Overwrite an existing version.
    #[arg(long)]
    pub force: bool,

    /// Also point this tag (a channel such as `stable`, not a version) at
    /// what is published, wherever it pointed before: replicas serving
    /// `oci://…:stable --poll S` then roll to it. Repeatable.
    #[arg(long = "tag", value_name = "CHANNEL")]
    pub tags: Vec<String>,

    /// The registry (`host[:port]`) for a `NAMESPACE:NAME@VERSION` REF.
    #[arg(long, value_name = "HOST", env = "PWCHAIN_REGISTRY")]
    pub registry: Option<String>,

    /// `org.opencontainers.image.description`.
    #[arg(long)]
    pub description: Option<String>,

    /// `org.opencontainers.image.source`.
    #[arg(long)]
    pub source: Option<String>,

    /// `org.opencontainers.image.licenses`.
    #[arg(long)]
    pub licenses: Option<String>,

    /// Sign what was published with this private key (as `pwchain sign`
    /// does); the password as for `pwchain sign`.
    #[arg(long, value_name = "NAME.key")]
    pub sign: Option<PathBuf>,

    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Fetch a component from an OCI registry by tag or `@sha256:` digest,
/// verify it, and write it atomically.
#[derive(Debug, Args)]
pub struct PullArgs {
    pub reference: String,

    /// Where to write it (default: NAME.wasm).
    #[arg(short, long)]
    pub output: Option<PathBuf>,

    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

/// The component cache.
#[derive(Debug, Subcommand)]
pub enum CacheCommand {
    /// List cached components and the references that resolved to them.
    Ls {
        #[arg(long, env = "PWCHAIN_CACHE_DIR")]
        cache_dir: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// Remove everything from the cache.
    Prune {
        #[arg(long, env = "PWCHAIN_CACHE_DIR")]
        cache_dir: Option<PathBuf>,
    },
}

/// Compose a chain into one component.
///
/// Reads a `chain.toml` (or, if the file ends in `.wac`, a WAC document),
/// checks that every plugin fits where it stands, links the chain with
/// wac-graph, validates the result and writes it atomically: a failed
/// compose leaves no file and does not touch an existing one.
#[derive(Debug, Args)]
pub struct ComposeArgs {
    /// The chain: `chain.toml` or `chain.wac`.
    pub chain: PathBuf,

    /// Where to write the composite; `-` for standard output (refused when
    /// it is a terminal). Default: `<chain name>.wasm` in the current
    /// directory.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Print the WAC equivalent of a TOML chain instead of composing it.
    /// `wac compose` accepts it, with the `--dep` flags its first comment
    /// lists.
    #[arg(long)]
    pub emit_wac: bool,

    /// For a WAC chain: where package NAME comes from (repeatable), e.g.
    /// `--dep chain:auth=plugins/auth.wasm`.
    #[arg(long = "dep", value_name = "NAME=PATH", value_parser = parse_dep)]
    pub deps: Vec<(String, PathBuf)>,

    /// For a WAC chain: a directory holding packages as `NS/NAME.wasm`.
    #[arg(long = "deps", value_name = "DIR")]
    pub deps_dir: Option<PathBuf>,

    /// Print a JSON summary (output path, sizes, timing, chain record).
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub resolve: ResolveArgs,
}

/// Show what a component is: its role in a chain, entry, next hop, side
/// calls, host imports, WASI versions, and for a composite its chain.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// A component (`.wasm`).
    pub file: PathBuf,

    /// Print JSON instead of text.
    #[arg(long, conflicts_with = "graph")]
    pub json: bool,

    /// Draw the chain a composite was built from: its stages in request
    /// order, each `match` as a decision with its way around the plugin,
    /// fused runs, the terminator, and side-call policies other than
    /// `allow`.
    #[arg(long)]
    pub graph: bool,

    /// How `--graph` draws: `text` for a terminal, `dot` for Graphviz,
    /// `mermaid` for a README or a browser.
    #[arg(long, value_enum, default_value_t = GraphFormat::Text, requires = "graph")]
    pub format: GraphFormat,
}

/// `inspect --graph --format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum GraphFormat {
    Text,
    Dot,
    Mermaid,
}

impl From<GraphFormat> for pwchain_compose::inspect::graph::GraphFormat {
    fn from(format: GraphFormat) -> Self {
        match format {
            GraphFormat::Text => Self::Text,
            GraphFormat::Dot => Self::Dot,
            GraphFormat::Mermaid => Self::Mermaid,
        }
    }
}

/// Compile a composite with wasmtime 50 and say what a host must provide.
///
/// Checks the component against the import sets of `wasmtime serve` and
/// `wasmtime serve -Scli` and names the smallest that runs it. Exits 3 when
/// the component is valid but neither runs it (e.g. an unterminated chain).
#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// A composite `.wasm`, or a `chain.toml` (composed in memory first).
    pub file: PathBuf,

    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub resolve: ResolveArgs,
}

/// Serve a chain over HTTP/1.1 and HTTP/2 (h2c with prior knowledge, or
/// by ALPN with `--tls-cert`).
///
/// Instances are reused across requests and serve several concurrently, as
/// in `wasmtime serve`. A chain left unterminated (`[origin] host = true`)
/// gets its next hop from `--upstream`, as a reverse proxy; side calls
/// (`wasi:http/client`) go where each plugin sends them, never to the
/// upstream. A plugin that traps or runs past `--request-timeout` fails
/// only its request (500 / 504); the next request gets a fresh instance.
/// One access-log line per request (target `pwchain::access`); guest output
/// is prefixed with the chain's name. Stop with Ctrl-C or SIGTERM:
/// in-flight requests are finished first. `SIGHUP` (or, with `--watch`, a
/// changed file) swaps in the chain again, composed and compiled anew,
/// without dropping a request; `--admin` serves metrics and health.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// A composite `.wasm`, or a `chain.toml` (composed in memory first).
    pub chain: PathBuf,

    /// Address to listen on (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,

    /// Where the chain's next hop goes, if the chain leaves it to the host:
    /// `http://host:port[/base-path]`. The path is prefixed with the base
    /// path, the authority replaced; `x-forwarded-for`, `-host` and
    /// `-proto` record the original request.
    #[arg(long, value_name = "URL")]
    pub upstream: Option<pwchain_host::Upstream>,

    /// Keep state that outlives a request in Redis, shared by every replica
    /// that names the same server: wrapped filters' shared data and queues
    /// (chains composed with `shared-data = "host"`) and plugins'
    /// `wasi:keyvalue` buckets. `redis://[:PASSWORD@]HOST:PORT[/DB]`.
    /// Without it they are kept in this server's memory, shared by its
    /// instances. A server that does not answer at start stops `serve`
    /// (exit 1); one that goes away later fails only the calls made while
    /// it is gone, and is used again when it answers.
    #[arg(long, value_name = "URL")]
    pub store: Option<String>,

    /// An environment variable for the plugins (repeatable).
    #[arg(long = "env", value_name = "KEY=VALUE", value_parser = parse_env)]
    pub env: Vec<(String, String)>,

    /// Requests one instance serves before it is replaced.
    #[arg(long, default_value_t = defaults::MAX_INSTANCE_REUSE)]
    pub max_instance_reuse: usize,

    /// Requests one instance serves at the same time (always one when a
    /// stage is sync-lifted: such an instance is busy until `handle`
    /// returns, so each request gets its own).
    #[arg(long, default_value_t = defaults::MAX_INSTANCE_CONCURRENCY)]
    pub max_instance_concurrency: usize,

    /// Serve on N lanes instead of one work-stealing runtime: each lane is
    /// a thread with its own event loop, its own listening socket on the
    /// address (SO_REUSEPORT) and its own instances of the chain, so that a
    /// request never crosses threads. More requests/s under many
    /// connections, less for a lone one (a lane does all of a request on
    /// one core); see docs/performance.md (the hosts bench).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub lanes: Option<u64>,

    /// Seconds a request may take before it fails with 504.
    #[arg(long, default_value_t = defaults::REQUEST_TIMEOUT_SECS)]
    pub request_timeout: u64,

    /// MiB one linear memory of an instance may grow to; past it the
    /// instance traps (500) and is replaced.
    #[arg(long, default_value_t = defaults::MAX_MEMORY_MIB)]
    pub max_memory: usize,

    /// Seconds a client may take to send a request's headers (also how
    /// long an idle keep-alive connection stays open); slower clients are
    /// disconnected, so they cannot hold the server's descriptors.
    #[arg(long, value_name = "SECONDS", default_value_t = defaults::HEADER_TIMEOUT_SECS,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub header_timeout: u64,

    /// Connections served at once; past it new ones wait in the kernel's
    /// backlog until one closes.
    #[arg(long, value_name = "N", default_value_t = defaults::MAX_CONNECTIONS,
          value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub max_connections: u64,

    /// Requests in the chain at once; the instance pool is sized for them.
    /// More wait their turn for `--queue-timeout`.
    #[arg(long, value_name = "N", default_value_t = defaults::MAX_REQUESTS,
          value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub max_requests: u64,

    /// Seconds a request past `--max-requests` waits for a turn before it
    /// is answered 503 with `retry-after`.
    #[arg(long, value_name = "SECONDS", default_value_t = defaults::QUEUE_TIMEOUT_SECS,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub queue_timeout: u64,

    /// The largest request head (request line and headers), in bytes; a
    /// larger one is answered 431 (414 for a long request line).
    #[arg(long, value_name = "BYTES", default_value_t = defaults::MAX_HEADER_BYTES,
          value_parser = clap::value_parser!(u64).range(8192..=16 << 20))]
    pub max_header_bytes: u64,

    /// Reload when the chain file (or, for a `chain.toml`, the manifest or
    /// a plugin file it names) changes, as on `SIGHUP`: the new chain is
    /// composed and compiled off the request path and swapped in only if
    /// it compiles, links and starts; requests already in flight finish on
    /// the old one.
    #[arg(long, conflicts_with = "poll")]
    pub watch: bool,

    /// For a chain served from a registry (`oci://HOST/NS/NAME:TAG`):
    /// every this many seconds, ask the registry where the tag points, and
    /// reload when it has moved (pulled and verified through the cache, as
    /// `pull` does).
    #[arg(long, value_name = "SECONDS",
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub poll: Option<u64>,

    /// Serve the admin endpoint on this address (off by default): `/metrics`
    /// (Prometheus), `/healthz`, `/readyz` (a chain is compiled and
    /// serving), `/chain` (the served chain's record as JSON). Keep it on
    /// loopback or a private network.
    #[arg(long, value_name = "ADDR")]
    pub admin: Option<SocketAddr>,

    /// Serve HTTPS with this certificate (PEM: the server's certificate,
    /// then any intermediates); HTTP/2 and HTTP/1.1 are offered by ALPN.
    /// `SIGHUP` reads it (and the key) again.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// The certificate's private key (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Trust the CA certificates in this PEM file, beside the public
    /// (webpki) roots, for `https://` upstreams and side calls: for
    /// upstreams behind a private CA.
    #[arg(long, value_name = "FILE")]
    pub upstream_ca: Option<PathBuf>,

    #[command(flatten)]
    pub resolve: ResolveArgs,
}

fn parse_dep(s: &str) -> Result<(String, PathBuf), String> {
    let (name, path) = s
        .split_once('=')
        .ok_or_else(|| format!("expected NAME=PATH, found `{s}`"))?;
    if !name.contains(':') {
        return Err(format!("`{name}` is not a package name (`namespace:name`)"));
    }
    Ok((name.to_string(), PathBuf::from(path)))
}

fn parse_env(s: &str) -> Result<(String, String), String> {
    let (key, value) = s
        .split_once('=')
        .ok_or_else(|| format!("expected KEY=VALUE, found `{s}`"))?;
    Ok((key.to_string(), value.to_string()))
}

fn parse_map(s: &str) -> Result<(String, String), String> {
    let (from, to) = s
        .split_once('=')
        .ok_or_else(|| format!("expected FROM=TO (path prefixes), found `{s}`"))?;
    Ok((from.to_string(), to.to_string()))
}

fn parse_cluster(s: &str) -> Result<(String, String), String> {
    let (name, url) = s
        .split_once('=')
        .ok_or_else(|| format!("expected NAME=http://host:port, found `{s}`"))?;
    if name.is_empty() {
        return Err("the cluster name is empty".into());
    }
    let url = pwchain_compose::manifest::cluster_url(url).map_err(|e| format!("`{url}`: {e}"))?;
    Ok((name.to_string(), url))
}
