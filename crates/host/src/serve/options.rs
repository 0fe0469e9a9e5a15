//! How the server runs instances: [`ServeOptions`], and their
//! [`defaults`], the one place those are written.

use crate::observe::metrics::Metrics;
use crate::outbound::Outbound;
use crate::serve::tls::Tls;
use crate::store::StateStore;
use pwchain_forwarding::Upstream;
use std::sync::Arc;
use std::time::Duration;

/// The defaults of [`ServeOptions`], in the units `pwchain serve`'s flags
/// take: the one place they are written (the CLI's flags read them).
/// wasmtime serve's p3 defaults, where it has them.
pub mod defaults {
    /// Requests one instance serves before it is replaced.
    pub const MAX_INSTANCE_REUSE: usize = 128;
    /// Requests one instance serves at the same time.
    pub const MAX_INSTANCE_CONCURRENCY: usize = 16;
    /// Seconds an idle instance is kept for reuse.
    pub const IDLE_TIMEOUT_SECS: u64 = 1;
    /// Seconds a request may take to produce a response.
    pub const REQUEST_TIMEOUT_SECS: u64 = 60;
    /// MiB one linear memory of an instance may grow to.
    pub const MAX_MEMORY_MIB: usize = 256;
    /// Seconds a client may take to send a request's headers.
    pub const HEADER_TIMEOUT_SECS: u64 = 10;
    /// Connections served at once.
    pub const MAX_CONNECTIONS: u64 = 4096;
    /// Bytes of a request head read at the most.
    pub const MAX_HEADER_BYTES: u64 = 64 << 10;
    /// Requests in the chain at once.
    pub const MAX_REQUESTS: u64 = 256;
    /// Seconds a request past `MAX_REQUESTS` waits for a turn.
    pub const QUEUE_TIMEOUT_SECS: u64 = 5;
}

/// How the server runs instances.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Prefixes the guests' output and names the chain in logs.
    pub name: String,
    /// Where the next hop goes when the chain leaves it to the host.
    pub upstream: Option<Upstream>,
    /// Environment variables every instance sees.
    pub env: Vec<(String, String)>,
    /// Requests one instance serves before it is replaced.
    pub max_instance_reuse: usize,
    /// Requests one instance serves at the same time.
    pub max_instance_concurrency: usize,
    /// How long an idle instance is kept for reuse.
    pub idle_timeout: Duration,
    /// How long a request may take to produce a response.
    pub request_timeout: Duration,
    /// Bytes one linear memory of an instance may grow to.
    pub max_memory: usize,
    /// wasmtime's compilation cache (none: compile every time).
    pub compile_cache: Option<std::path::PathBuf>,
    /// How long a client may take to send a request's headers; a slower
    /// (or idle keep-alive) connection is closed, so slow clients cannot
    /// hold descriptors forever.
    pub header_timeout: Duration,
    /// Connections served at once; past it the server stops accepting
    /// (new clients wait in the kernel's backlog) until one closes.
    pub max_connections: usize,
    /// The largest request head (request line and headers) read; a larger
    /// one is answered 431 (or 414 for a long request line).
    pub max_header_bytes: usize,
    /// Requests in the chain at once; the instance pool is sized for them.
    pub max_requests: usize,
    /// How long a request past `max_requests` waits for a turn before it
    /// is answered 503 with `retry-after`.
    pub queue_timeout: Duration,
    /// Where requests, instances, failures and reloads are counted.
    pub metrics: Metrics,
    /// Where wrapped filters' shared data and queues (for chains composed
    /// with `shared-data = "host"`) and plugins' `wasi:keyvalue` buckets
    /// are kept: this server's memory, or Redis (`--store`).
    pub state: StateStore,
    /// The pooled connections the chain's next hop and side calls go out
    /// on (HTTP/1.1, h2c, and TLS with ALPN).
    pub outbound: Arc<Outbound>,
    /// Serve HTTPS with this certificate (HTTP/2 and HTTP/1.1 by ALPN).
    pub tls: Option<Tls>,
    /// Lanes: threads that each run their own event loop and instances of
    /// the chain, so that a request never crosses threads (see
    /// [`Server::run_lanes`](super::Server::run_lanes)). [`Server::run`](super::Server::run) serves on lane 0.
    pub lanes: usize,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            name: "chain".into(),
            upstream: None,
            env: Vec::new(),
            max_instance_reuse: defaults::MAX_INSTANCE_REUSE,
            max_instance_concurrency: defaults::MAX_INSTANCE_CONCURRENCY,
            idle_timeout: Duration::from_secs(defaults::IDLE_TIMEOUT_SECS),
            request_timeout: Duration::from_secs(defaults::REQUEST_TIMEOUT_SECS),
            max_memory: defaults::MAX_MEMORY_MIB << 20,
            compile_cache: None,
            header_timeout: Duration::from_secs(defaults::HEADER_TIMEOUT_SECS),
            max_connections: defaults::MAX_CONNECTIONS as usize,
            max_header_bytes: defaults::MAX_HEADER_BYTES as usize,
            max_requests: defaults::MAX_REQUESTS as usize,
            queue_timeout: Duration::from_secs(defaults::QUEUE_TIMEOUT_SECS),
            metrics: Metrics::default(),
            state: StateStore::memory(),
            outbound: Arc::default(),
            tls: None,
            lanes: 1,
        }
    }
}
