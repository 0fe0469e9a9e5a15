//! `pwchain serve`: a wasi:http host for composed chains. Instances are
//! reused across requests and serve several at once (p3 allows it), through
//! wasmtime-wasi-http's `ProxyHandler`, as `wasmtime serve` does; a trap or
//! a timeout costs the instance, never the server.

pub(crate) mod engine;
pub mod lanes;
mod worker;

use rewrite::as_reverse_proxy;
use worker::{Instances, Lane, instance_concurrency};
mod options;
pub mod reload;
mod rewrite;
pub mod tls;
pub mod upstream;

use engine::{Engines, EpochTicker, pooled_pre, serve_linker};
pub use options::{ServeOptions, defaults};

use crate::observe::metrics::{Answers, Metrics};
use crate::serve::tls::Tls;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full, combinators::UnsyncBoxBody};
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use wasmtime::component::Component;
use wasmtime_wasi_http::handler::{ExpirationError, ProxyHandler, TrapOrPanicError};
use wasmtime_wasi_http::p3::bindings::ServicePre;

type Body = UnsyncBoxBody<Bytes, wasmtime_wasi_http::Error>;

/// How often the epoch ticks: a guest that never yields is preempted (and,
/// past the request timeout, cut off) at this granularity.
const EPOCH_TICK: Duration = Duration::from_millis(10);

/// A server for one chain at a time: the chain can be swapped for another
/// while it serves ([`Server::prepare`], then [`Server::swap`]); requests
/// that started on the old chain finish on it.
#[derive(Clone)]
pub struct Server {
    current: Arc<std::sync::RwLock<Arc<Generation>>>,
    options: Arc<ServeOptions>,
    /// Which of the generation's handlers this copy's requests go to.
    lane: usize,
    /// Open connections (`max_connections`), across lanes.
    connections: Arc<tokio::sync::Semaphore>,
    /// Turns for requests in the chain (`max_requests`), across swaps.
    admission: Arc<tokio::sync::Semaphore>,
    /// Requests answered 503 for want of a turn, and when that was last
    /// logged.
    shed: Arc<std::sync::Mutex<RateLimited>>,
    /// Where this chain's answers are counted.
    answers: Arc<Answers>,
}

/// One compiled composite and its instances.
struct Generation {
    chain: Arc<Instances>,
    /// One handler (its own instances and queue) per lane.
    lanes: Vec<ProxyHandler<Lane>>,
    /// `sha256:…` of the composite's bytes.
    digest: String,
}

/// A composite compiled, linked and instantiated once, ready to be swapped
/// in; see [`Server::prepare`].
pub struct Prepared(Generation);

impl Prepared {
    /// `sha256:…` of the composite.
    pub fn digest(&self) -> &str {
        &self.0.digest
    }
}

impl Server {
    /// Compiles `component` and links it with the `wasmtime serve -Scli`
    /// import set, plus the next hop when `options.upstream` is set.
    pub fn new(component: &[u8], options: ServeOptions) -> anyhow::Result<Server> {
        let options = Arc::new(options);
        let generation = Generation::compile(component, &options)?;
        Ok(Server {
            current: Arc::new(std::sync::RwLock::new(Arc::new(generation))),
            lane: 0,
            connections: Arc::new(tokio::sync::Semaphore::new(options.max_connections)),
            admission: Arc::new(tokio::sync::Semaphore::new(options.max_requests)),
            shed: Arc::new(std::sync::Mutex::new(RateLimited::new(
                Duration::from_secs(5),
            ))),
            answers: Arc::new(options.metrics.answers(&options.name)),
            options,
        })
    }

    /// Compiles and links `component` as [`Server::new`] would, off the
    /// request path (on a blocking thread), and instantiates it once, so
    /// that a composite that fails to compile, link or start is refused
    /// here and never served.
    pub async fn prepare(&self, component: Vec<u8>) -> anyhow::Result<Prepared> {
        let options = self.options.clone();
        let generation =
            tokio::task::spawn_blocking(move || Generation::compile(&component, &options))
                .await??;
        let trial = generation.chain.instance().await?;
        drop(trial);
        Ok(Prepared(generation))
    }

    /// Serves `prepared` from now on; returns the digest it replaced.
    pub fn swap(&self, prepared: Prepared) -> String {
        let mut current = self.current.write().unwrap_or_else(|e| e.into_inner());
        let old = std::mem::replace(&mut *current, Arc::new(prepared.0));
        old.digest.clone()
    }

    /// `sha256:…` of the composite being served.
    pub fn digest(&self) -> String {
        self.generation().digest.clone()
    }

    /// Each stage's latency, if the chain being served was composed with
    /// stage timing.
    pub fn stage_times(&self) -> Option<Arc<crate::observe::stage_timing::StageTimes>> {
        self.generation().chain.timing.clone()
    }

    /// How many lanes this server's chains have handlers for.
    pub(crate) fn lanes(&self) -> usize {
        self.generation().lanes.len()
    }

    /// The same server, for requests arriving on lane `lane`.
    pub(crate) fn on_lane(&self, lane: usize) -> Server {
        Server {
            lane,
            ..self.clone()
        }
    }

    fn generation(&self) -> Arc<Generation> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Serves HTTP/1.1 and HTTP/2 (by ALPN under TLS, else with prior
    /// knowledge) on `listener` until `shutdown` resolves, then stops
    /// accepting, lets in-flight requests finish (closing idle keep-alive
    /// connections) and returns.
    pub async fn run(
        &self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> anyhow::Result<()> {
        let mut shutdown = std::pin::pin!(shutdown);
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        let options = &self.options;
        let connections = &self.connections;
        let mut builder =
            hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
        builder
            .http1()
            .timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(options.header_timeout)
            // hyper's own floor: it refuses a smaller buffer.
            .max_buf_size(options.max_header_bytes.max(8192));
        builder
            .http2()
            .timer(hyper_util::rt::TokioTimer::new())
            .max_header_list_size(options.max_header_bytes as u32);
        let builder = Arc::new(builder);
        let mut accept_errors = RateLimited::new(Duration::from_secs(5));
        loop {
            // A slot first: at the cap, connections wait in the backlog.
            let permit = tokio::select! {
                () = &mut shutdown => break,
                permit = connections.clone().acquire_owned() => permit?,
            };
            let (stream, peer) = tokio::select! {
                () = &mut shutdown => break,
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // Out of descriptors (or memory): back off instead
                        // of spinning, keep serving what is open, log
                        // once per interval.
                        accept_errors.warn(|suppressed| {
                            tracing::warn!("accept failed: {e} (and {suppressed} more since the last report); backing off")
                        });
                        tokio::select! {
                            () = &mut shutdown => break,
                            () = tokio::time::sleep(Duration::from_millis(100)) => continue,
                        }
                    }
                },
            };
            let _ = stream.set_nodelay(true);
            let server = self.clone();
            let service = hyper::service::service_fn(move |request| {
                let server = server.clone();
                async move { Ok::<_, Infallible>(server.handle(request, peer).await) }
            });
            let (builder, watcher) = (builder.clone(), graceful.watcher());
            let tls = options.tls.as_ref().map(Tls::acceptor);
            let handshake_timeout = options.header_timeout;
            tokio::spawn(async move {
                // The handshake runs here, not in the accept loop, and is
                // bounded like a request's headers.
                let io: Box<dyn Io> = match tls {
                    None => Box::new(stream),
                    Some(tls) => {
                        match tokio::time::timeout(handshake_timeout, tls.accept(stream)).await {
                            Ok(Ok(stream)) => Box::new(stream),
                            Ok(Err(e)) => {
                                return tracing::debug!("TLS handshake with {peer} failed: {e}");
                            }
                            Err(_) => {
                                return tracing::debug!("TLS handshake with {peer} timed out");
                            }
                        }
                    }
                };
                // HTTP/1.1 or HTTP/2: by ALPN under TLS, else by the
                // client's first bytes (h2c with prior knowledge).
                let connection = builder
                    .serve_connection(hyper_util::rt::TokioIo::new(io), service)
                    .into_owned();
                if let Err(e) = watcher.watch(connection).await {
                    tracing::debug!("connection from {peer}: {e}");
                }
                drop(permit);
            });
        }
        if self.lane == 0 {
            tracing::info!("shutting down: finishing in-flight requests");
        }
        graceful.shutdown().await;
        Ok(())
    }

    /// Runs one request through the chain. Any body will do, so that a
    /// caller in the same process (the benchmark) can skip the socket.
    pub async fn handle<B>(
        &self,
        request: hyper::Request<B>,
        peer: SocketAddr,
    ) -> hyper::Response<Body>
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<wasmtime_wasi_http::Error>,
    {
        let started = Instant::now();
        let method = request.method().clone();
        let path = request.uri().path().to_string();
        // A burst waits its turn (bounded), then is told to come back.
        let queue_timeout = self.options.queue_timeout;
        // The common case, a free turn, takes no timer.
        let turn = match self.admission.clone().try_acquire_owned() {
            Ok(turn) => Ok(Ok(turn)),
            Err(_) => {
                tokio::time::timeout(queue_timeout, self.admission.clone().acquire_owned()).await
            }
        };
        let metrics = &self.options.metrics;
        let Ok(Ok(turn)) = turn else {
            metrics.shed();
            self.answers.record(503, started.elapsed());
            if let Ok(mut shed) = self.shed.lock() {
                shed.warn(|before| {
                    tracing::warn!(
                        "{method} {path}: 503: every turn busy for {queue_timeout:?} (and {before} more shed since the last report)"
                    )
                });
            }
            let mut busy = text(
                503,
                "503 Service Unavailable: the chain is busy; retry shortly\n",
            );
            busy.headers_mut().insert(
                http::header::RETRY_AFTER,
                http::HeaderValue::from_static("1"),
            );
            return busy;
        };
        let scheme = if self.options.tls.is_some() {
            http::uri::Scheme::HTTPS
        } else {
            http::uri::Scheme::HTTP
        };
        let request = as_reverse_proxy(
            request.map(|body| body.map_err(Into::into).boxed_unsync()),
            peer,
            scheme,
        );
        let generation = self.generation();
        let in_flight = InFlight::enter(metrics);
        let response = match generation.lanes[self.lane].handle((), request).await {
            Ok(response) => response,
            Err(e) => {
                if e.downcast_ref::<ExpirationError>().is_some() {
                    metrics.timeout();
                } else if e.downcast_ref::<TrapOrPanicError>().is_some() {
                    metrics.trap();
                }
                let (status, body) = failure_status(&e);
                tracing::error!("{method} {path}: {status}: {e:#}");
                text(status, body)
            }
        };
        self.answers
            .record(response.status().as_u16(), started.elapsed());
        let bytes = http_body::Body::size_hint(response.body()).exact();
        // Fields only, no message repeating them, and whole microseconds:
        // formatting the line was a twelfth of a request to the bare echo
        // service (callgrind), the repeats and the float a fifth of that.
        tracing::info!(
            target: "pwchain::access",
            peer = %peer,
            method = %method,
            path = %path,
            status = response.status().as_u16(),
            us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
            bytes,
        );
        let response = match trailers_only(&response) {
            true => response.map(|_| Empty::new().map_err(|never| match never {}).boxed_unsync()),
            false => response,
        };
        // The turn is the request's until its body has gone out.
        response.map(|body| {
            Turned {
                body,
                _turn: turn,
                _chain: generation,
                _in_flight: in_flight,
            }
            .boxed_unsync()
        })
    }
}

impl Generation {
    fn compile(bytes: &[u8], options: &Arc<ServeOptions>) -> anyhow::Result<Generation> {
        let digest = pwchain_compose::digest(bytes);
        let engines = Engines::new(bytes, options)?;
        let component = Component::new(&engines.on_demand, bytes)?;
        let linker = serve_linker(&engines.on_demand, options)?;
        let next_hop = component
            .component_type()
            .imports(&engines.on_demand)
            .map(|(name, _)| name.to_string())
            .find(|name| name.starts_with("wasi:http/handler@0.3."));
        match (&next_hop, &options.upstream) {
            (Some(_), Some(_)) => {}
            (Some(import), None) => anyhow::bail!(
                "the chain is not terminated: it imports `{import}` for its next hop; pass `--upstream URL` to send that hop to a server"
            ),
            (None, Some(upstream)) => tracing::warn!(
                "the chain is terminated (it has no next-hop import), so `--upstream {upstream}` is not used"
            ),
            (None, None) => {}
        }
        let max_concurrency = instance_concurrency(bytes, &component, &engines.on_demand, options);
        let pre = ServicePre::new(linker.instantiate_pre(&component)?)?;
        let pooled = match &engines.pooled {
            Some(pooled) => Some(pooled_pre(pooled, &component, options)?),
            None => None,
        };
        let ticker = EpochTicker::start(engines.all());
        let timing = pwchain_compose::inspect::record::read(bytes)
            .and_then(|record| record.stage_timing)
            .map(|stages| options.metrics.stage_times(&options.name, &stages));
        let chain = Arc::new(Instances {
            pooled,
            on_demand: pre,
            overflow: std::sync::Mutex::new(RateLimited::new(Duration::from_secs(5))),
            options: options.clone(),
            max_concurrency,
            timing,
            _ticker: ticker,
        });
        Ok(Generation {
            lanes: (0..options.lanes.max(1))
                .map(|_| ProxyHandler::new(Lane(chain.clone())))
                .collect(),
            chain,
            digest,
        })
    }
}

/// A client connection, plain or TLS.
trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Io for T {}

/// A response body that holds its request's turn (and its chain) until it
/// is done.
struct Turned {
    body: Body,
    _turn: tokio::sync::OwnedSemaphorePermit,
    /// The chain the request started on, kept until it is done.
    _chain: Arc<Generation>,
    _in_flight: InFlight,
}

/// Counts a request in flight while it lives.
struct InFlight(Metrics);

impl InFlight {
    fn enter(metrics: &Metrics) -> InFlight {
        metrics.in_flight().inc();
        InFlight(metrics.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight().dec();
    }
}

impl http_body::Body for Turned {
    type Data = Bytes;
    type Error = wasmtime_wasi_http::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// The status for a request the chain did not answer: an `error-code` the
/// chain returned says whose fault it was; a trap or a timeout is the
/// chain's.
fn failure_status(error: &wasmtime::Error) -> (u16, &'static str) {
    use wasmtime_wasi_http::p3::bindings::http::types::ErrorCode as E;
    if error.downcast_ref::<ExpirationError>().is_some() {
        return (
            504,
            "504 Gateway Timeout: the chain did not answer in time\n",
        );
    }
    if error.downcast_ref::<TrapOrPanicError>().is_some() {
        return (500, "500 Internal Server Error: a plugin failed\n");
    }
    match error.downcast_ref::<E>() {
        Some(E::HttpRequestUriInvalid | E::HttpRequestMethodInvalid) => (
            400,
            "400 Bad Request: the chain cannot send this request on\n",
        ),
        Some(E::HttpRequestDenied) => (403, "403 Forbidden: the chain denied this request\n"),
        Some(E::LoopDetected) => (508, "508 Loop Detected: the chain forwarded to itself\n"),
        Some(
            E::ConnectionTimeout
            | E::ConnectionReadTimeout
            | E::ConnectionWriteTimeout
            | E::HttpResponseTimeout
            | E::DnsTimeout,
        ) => (
            504,
            "504 Gateway Timeout: the upstream did not answer in time\n",
        ),
        Some(
            E::DnsError(_)
            | E::DestinationNotFound
            | E::DestinationUnavailable
            | E::DestinationIpProhibited
            | E::DestinationIpUnroutable
            | E::ConnectionRefused
            | E::ConnectionTerminated
            | E::ConnectionLimitReached
            | E::TlsProtocolError
            | E::TlsCertificateError
            | E::TlsAlertReceived(_)
            | E::HttpResponseIncomplete
            | E::HttpProtocolError,
        ) => (502, "502 Bad Gateway: the upstream could not be reached\n"),
        _ => (500, "500 Internal Server Error: the chain failed\n"),
    }
}

/// A warning logged at most once per interval, with how many were held
/// back meanwhile.
struct RateLimited {
    interval: Duration,
    last: Option<Instant>,
    suppressed: u64,
}

impl RateLimited {
    fn new(interval: Duration) -> RateLimited {
        RateLimited {
            interval,
            last: None,
            suppressed: 0,
        }
    }

    fn warn(&mut self, log: impl FnOnce(u64)) {
        if self.last.is_some_and(|at| at.elapsed() < self.interval) {
            self.suppressed += 1;
            return;
        }
        log(self.suppressed);
        self.suppressed = 0;
        self.last = Some(Instant::now());
    }
}

/// Whether `response` is a gRPC "trailers-only" answer (a status with no
/// message: `grpc-status` already in its head). It has no body, and a gRPC
/// client expects its one HEADERS frame to end the stream; a stage that
/// rebuilt the body stream cannot say the stream is empty, so the server
/// serves it without one (grpcio otherwise reports `UNKNOWN: Data frame
/// with END_STREAM flag received`).
fn trailers_only(response: &hyper::Response<Body>) -> bool {
    let headers = response.headers();
    let grpc = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|t| t.to_str().ok())
        .is_some_and(|t| t.starts_with("application/grpc"));
    grpc && headers.contains_key("grpc-status")
}

fn text(status: u16, body: &'static str) -> hyper::Response<Body> {
    let mut response = hyper::Response::new(
        Full::new(Bytes::from_static(body.as_bytes()))
            .map_err(|never| match never {})
            .boxed_unsync(),
    );
    *response.status_mut() =
        http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    response
}
