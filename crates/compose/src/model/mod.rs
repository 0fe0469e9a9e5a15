//! The chain as pwchain models it, apart from how it is read (`manifest`)
//! and how it is composed (`link`): the stages in order, what answers after
//! the last one, and what each stage may do (its
//! [`Settings`](crate::policy::Settings)).

use crate::inspect::Inspection;
use crate::inspect::record::Verified;
use crate::policy::{ImportPattern, Settings};
use crate::route::RouteMatch;
use pwchain_forwarding::Upstream;
use std::time::Duration;

/// A component in memory, inspected and ready to be linked.
#[derive(Debug, Clone)]
pub struct Stage {
    /// Its name in the chain.
    pub name: String,
    /// Where it came from, for the chain record.
    pub source: String,
    /// The component.
    pub bytes: Vec<u8>,
    /// `sha256:<hex>` of `bytes`.
    pub digest: String,
    /// What it is.
    pub info: Inspection,
    /// Its configuration and side-call policy, from the manifest.
    pub settings: Settings,
    /// The signature a trusted key made on it, if the chain asked for one.
    pub verified: Option<Verified>,
    /// `match`: the requests it applies to (`None`: all).
    pub route: Option<RouteMatch>,
    /// A proxy-wasm module compose wrapped: its parts, so that a run of
    /// consecutive ones can share one driver (`bytes` is the module wrapped
    /// alone).
    pub legacy: Option<LegacyParts>,
}

/// A wrapped proxy-wasm module before its parts are linked.
#[derive(Debug, Clone)]
pub struct LegacyParts {
    /// The module fused with its generated adapters (world
    /// `pwchain:proxy/legacy-plugin`).
    pub plugin: Vec<u8>,
    /// What the driver's store holds for it (`name`, `configuration`, …).
    pub settings: Vec<(String, String)>,
    /// Whether it calls `proxy_http_call`, so that the driver needs the
    /// host's `wasi:http/client`.
    pub calls: bool,
}

/// What answers after the last plugin: the manifest's `[origin]` table.
/// The service is as written in a manifest
/// (`Origin<PluginSpec>`) and loaded in a [`Chain`] (`Origin<Stage>`).
#[derive(Debug, Clone)]
pub enum Origin<S = Stage> {
    /// A service component.
    Service(Box<S>),
    /// pwchain's built-in terminator: send the request on through the
    /// host's `wasi:http/client` (`forward = true` or `upstream = "…"`).
    Forward(Forward),
    /// Leave the next-hop import open for the host to provide.
    Host,
}

/// An ordered chain, outermost plugin first.
#[derive(Debug, Clone)]
pub struct Chain {
    /// The chain's name.
    pub name: String,
    /// The stages before the origin, outermost first.
    pub plugins: Vec<Stage>,
    /// What answers after the last plugin; `None` when the last plugin is
    /// a service itself.
    pub origin: Option<Origin>,
    /// `[chain] allow-imports`; `None` allows every host import.
    pub allow_imports: Option<Vec<ImportPattern>>,
    /// `[chain] filter-metrics`: where wrapped proxy-wasm filters' metrics
    /// are kept.
    pub filter_metrics: KeptIn,
    /// `[chain] shared-data`: where wrapped proxy-wasm filters' shared data
    /// and queues are kept.
    pub shared_data: KeptIn,
    /// `[chain] fuse`: whether a run of consecutive header filters shares
    /// one driver (one rebuild of each message) or each filter has its own.
    pub fuse: bool,
    /// `[chain] stage-timing`: whether a built-in timer stands in front of
    /// every stage and reports each stage's time (see `link::timing`).
    pub stage_timing: bool,
}

/// Where state that wrapped proxy-wasm filters keep beyond one request
/// lives (their metrics, `filter-metrics`; their shared data and queues,
/// `shared-data`), decided when the chain is composed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KeptIn {
    /// Inside each composite instance (the built-in `legacy-shared`): the
    /// composite runs in any wasi:http host, and nobody outside sees it.
    #[default]
    Instance,
    /// Left to the host as an import (`pwchain:proxy/legacy-metrics` or
    /// `pwchain:proxy/legacy-shared`): `pwchain serve` keeps it for all its
    /// instances (metrics on `/metrics`; shared data in its memory or, with
    /// `--store redis://…`, in Redis for every replica); hosts that do not
    /// provide it cannot run the composite.
    Host,
}

/// Where the built-in terminator sends requests and how long it waits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forward {
    /// `upstream`: every request goes there, as to a reverse proxy's
    /// backend; `None` (`forward = true`): to the request's own authority.
    pub upstream: Option<Upstream>,
    /// `connect-timeout`: connecting (TLS included).
    pub connect_timeout: Duration,
    /// `first-byte-timeout`: from sending to the response's first byte.
    pub first_byte_timeout: Duration,
    /// `between-bytes-timeout`: the longest wait for more of the response
    /// body; `None` leaves it to the host (wasmtime's and `pwchain
    /// serve`'s: 600 s), as a stream that may idle wants.
    pub between_bytes_timeout: Option<Duration>,
}

impl Forward {
    /// `connect-timeout` when the manifest gives none.
    pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
    /// `first-byte-timeout` when the manifest gives none.
    pub const DEFAULT_FIRST_BYTE_TIMEOUT: Duration = Duration::from_secs(60);
}
