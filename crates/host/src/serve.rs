//! `pwchain serve`: a wasi:http host for composed chains. Instances are
//! reused across requests and serve several at once (p3 allows it), through
//! wasmtime-wasi-http's `ProxyHandler`, as `wasmtime serve` does.

use crate::linker::{ImportSet, linker};
use crate::state::{Host, http_view};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, combinators::UnsyncBoxBody};
use hyper::body::Incoming;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::time::Sleep;
use wasmtime::component::{Component, GuestTaskId};
use wasmtime::{Engine, Store, StoreContextMut};
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi_http::handler::{
    HandlerState, Instance, Proxy, ProxyHandler, ShouldAccept, WorkerExpiration, WorkerState,
    WorkerStatus,
};
use wasmtime_wasi_http::p3::bindings::ServicePre;

/// How the server runs instances.
#[derive(Debug, Clone)]
pub struct ServeOptions {
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
}

impl Default for ServeOptions {
    fn default() -> Self {
        // wasmtime serve's p3 defaults.
        ServeOptions {
            env: Vec::new(),
            max_instance_reuse: 128,
            max_instance_concurrency: 16,
            idle_timeout: Duration::from_secs(1),
            request_timeout: Duration::from_secs(60),
        }
    }
}

type Body = UnsyncBoxBody<Bytes, wasmtime_wasi_http::Error>;

/// A compiled composite, ready to answer requests.
#[derive(Clone)]
pub struct Server {
    handler: ProxyHandler<Chain>,
}

struct Chain {
    engine: Engine,
    pre: ServicePre<Host>,
    options: ServeOptions,
}

impl Server {
    /// Compiles `component` and links it with the `wasmtime serve -Scli`
    /// import set.
    pub fn new(component: &[u8], options: ServeOptions) -> anyhow::Result<Server> {
        let engine = crate::engine()?;
        let component = Component::new(&engine, component)?;
        let pre = linker(&engine, ImportSet::ServeCli)?.instantiate_pre(&component)?;
        let pre = ServicePre::new(pre)?;
        Ok(Server {
            handler: ProxyHandler::new(Chain {
                engine,
                pre,
                options,
            }),
        })
    }

    /// Serves HTTP/1.1 on `listener` until `shutdown` resolves, then stops
    /// accepting and waits for open connections to finish.
    pub async fn run(
        &self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> anyhow::Result<()> {
        let mut shutdown = std::pin::pin!(shutdown);
        let mut connections = tokio::task::JoinSet::new();
        loop {
            let (stream, peer) = tokio::select! {
                () = &mut shutdown => break,
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        tracing::warn!("accept failed: {e}");
                        continue;
                    }
                },
            };
            let _ = stream.set_nodelay(true);
            let server = self.clone();
            connections.spawn(async move {
                let service = hyper::service::service_fn(move |request| {
                    let server = server.clone();
                    async move { Ok::<_, Infallible>(server.handle(request, peer).await) }
                });
                if let Err(e) = hyper::server::conn::http1::Builder::new()
                    .keep_alive(true)
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await
                {
                    tracing::debug!("connection from {peer}: {e}");
                }
            });
        }
        tracing::info!(
            "shutting down: waiting for {} open connection(s)",
            connections.len()
        );
        while connections.join_next().await.is_some() {}
        Ok(())
    }

    /// Runs one request through the chain.
    pub async fn handle(
        &self,
        request: hyper::Request<Incoming>,
        peer: SocketAddr,
    ) -> hyper::Response<Body> {
        let started = Instant::now();
        let method = request.method().clone();
        let path = request.uri().path().to_string();
        let request = with_authority(request.map(|body| body.map_err(Into::into).boxed_unsync()));
        let response = match self.handler.handle((), request).await {
            Ok(response) => response,
            Err(e) => {
                let (status, body) = failure_status(&e);
                tracing::error!("{method} {path}: {status}: {e:#}");
                text(status, body)
            }
        };
        tracing::info!(
            target: "pwchain::access",
            "{peer} {method} {path} {} {:.1}ms",
            response.status().as_u16(),
            started.elapsed().as_secs_f64() * 1e3
        );
        response
    }
}

/// The status for a request the chain did not answer: an `error-code` the
/// chain returned says whose fault it was; a trap is the chain's.
fn failure_status(error: &wasmtime::Error) -> (u16, &'static str) {
    use wasmtime_wasi_http::p3::bindings::http::types::ErrorCode as E;
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

/// wasi:http gives a guest the request's authority but not its `Host`
/// header (a forbidden header), so an origin-form request gets its
/// authority from `Host`, as a reverse proxy would read it.
fn with_authority(mut request: http::Request<Body>) -> http::Request<Body> {
    if request.uri().authority().is_some() {
        return request;
    }
    let Some(host) = request
        .headers()
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_string)
    else {
        return request;
    };
    let path = request
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_string();
    if let Ok(uri) = http::Uri::builder()
        .scheme("http")
        .authority(host)
        .path_and_query(path)
        .build()
    {
        *request.uri_mut() = uri;
    }
    request
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

impl HandlerState for Chain {
    type StoreData = Host;
    type WorkerExpiration = Expiry;
    type WorkerState = Worker;

    async fn instantiate(&self) -> wasmtime::Result<Instance<Host, Expiry, Worker>> {
        let mut wasi = WasiCtxBuilder::new();
        wasi.inherit_stdout().inherit_stderr();
        for (key, value) in &self.options.env {
            wasi.env(key, value);
        }
        let mut store = Store::new(&self.engine, Host::new(wasi.build()));
        store.limiter(|host| &mut host.limits);
        let proxy = Proxy::P3(self.pre.instantiate_async(&mut store).await?);
        Ok(Instance {
            store,
            proxy,
            view: http_view,
            expiration: Expiry {
                idle: self.options.idle_timeout,
                request: self.options.request_timeout,
                timer: None,
            },
            state: Worker {
                max_reuse: self.options.max_instance_reuse,
                max_concurrency: self.options.max_instance_concurrency,
                request_timeout: self.options.request_timeout,
            },
        })
    }
}

/// Decides how much one instance takes on.
struct Worker {
    max_reuse: usize,
    max_concurrency: usize,
    request_timeout: Duration,
}

impl WorkerState for Worker {
    type StoreData = Host;
    type RequestData = ();

    fn should_accept_request(&self, concurrent: usize, total: usize) -> ShouldAccept {
        if total >= self.max_reuse {
            ShouldAccept::Never
        } else if concurrent >= self.max_concurrency {
            ShouldAccept::No
        } else {
            ShouldAccept::Yes
        }
    }

    fn on_request_start(
        &self,
        _store: StoreContextMut<'_, Host>,
        (): (),
        _task: GuestTaskId,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + Sync>> {
        Box::pin(tokio::time::sleep(self.request_timeout))
    }

    fn drop(&self, _store: Store<Host>, result: wasmtime::Result<()>) {
        if let Err(e) = result {
            tracing::warn!("an instance of the chain ended with an error: {e:#}");
        }
    }
}

/// Retires an instance that has idled, or a request that has run, too long.
struct Expiry {
    idle: Duration,
    request: Duration,
    timer: Option<Pin<Box<Sleep>>>,
}

impl WorkerExpiration for Expiry {
    fn poll(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        status: WorkerStatus,
        start: Instant,
    ) -> Poll<()> {
        let this = self.get_mut();
        let limit = match status {
            WorkerStatus::Idle => this.idle,
            WorkerStatus::Requests | WorkerStatus::PostReturn => this.request,
        };
        let deadline = tokio::time::Instant::from_std(start + limit);
        let timer = this
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if timer.deadline() != deadline {
            timer.as_mut().reset(deadline);
        }
        timer.as_mut().poll(cx)
    }
}
