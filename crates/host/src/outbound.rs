//! What the host sends for a chain: the next hop of an unterminated chain
//! (`--upstream`) and what plugins send through `wasi:http/client` (side
//! calls, and the `forward` terminator's requests). Connections are pooled
//! per authority and reused, not opened per request:
//!
//! - `http://`: HTTP/1.1 with keep-alive;
//! - `h2c://`: HTTP/2 with prior knowledge (the operator's word that the
//!   upstream speaks it, as gRPC servers do), one multiplexed connection;
//! - `https://`: TLS with ALPN offering h2 and http/1.1, so an HTTP/2
//!   server gets HTTP/2.

use http_body_util::BodyExt;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::sync::Arc;
use std::time::Duration;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

/// The scheme that asks for HTTP/2 with prior knowledge over plain TCP.
pub const H2C: &str = "h2c";

/// How long connecting, the response head and each wait for more of the
/// body may take when the request does not say (`wasmtime serve` waits
/// 600 s for each).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

/// How long an unused pooled connection is kept.
const POOL_IDLE: Duration = Duration::from_secs(90);

/// The pooled clients, one per way of speaking.
pub struct Outbound {
    http1: Client<HttpConnector, WasiBody>,
    h2c: Client<HttpConnector, WasiBody>,
    tls: Client<HttpsConnector<HttpConnector>, WasiBody>,
}

impl std::fmt::Debug for Outbound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Outbound")
    }
}

impl Default for Outbound {
    fn default() -> Self {
        Outbound::trusting(rustls::RootCertStore::empty())
    }
}

impl Outbound {
    /// A client that trusts, for `https://`, webpki's roots and the CA
    /// certificates in `path` (PEM; `pwchain serve --upstream-ca`), as for
    /// upstreams behind a private CA.
    pub fn with_ca(path: &std::path::Path) -> Result<Outbound, crate::serve::tls::TlsError> {
        let mut extra = rustls::RootCertStore::empty();
        for certificate in crate::serve::tls::certificates(path)? {
            extra
                .add(certificate)
                .map_err(|e| crate::serve::tls::TlsError::Certificate {
                    path: path.to_path_buf(),
                    reason: e.to_string(),
                })?;
        }
        Ok(Outbound::trusting(extra))
    }

    fn trusting(mut roots: rustls::RootCertStore) -> Outbound {
        let mut tcp = HttpConnector::new();
        tcp.set_nodelay(true);
        // `https` goes through the TLS connector, `h2c` is rewritten.
        tcp.enforce_http(false);
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        let ring = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(ring)
            .with_safe_default_protocol_versions()
            .map(|config| config.with_root_certificates(roots).with_no_client_auth());
        // ring supports the safe default versions: this cannot fail.
        let Ok(tls) = tls else {
            unreachable!("ring lacks the default TLS versions")
        };
        let tls = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_only()
            .enable_all_versions()
            .wrap_connector(tcp.clone());
        let builder = || {
            let mut builder = Client::builder(TokioExecutor::new());
            builder.pool_idle_timeout(POOL_IDLE);
            builder
        };
        Outbound {
            http1: builder().build(tcp.clone()),
            h2c: builder().http2_only(true).build(tcp),
            tls: builder().build(tls),
        }
    }

    /// Sends `request` to the authority its URI names, over the pooled
    /// connection its scheme calls for.
    pub async fn send(
        &self,
        mut request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
    ) -> Result<http::Response<WasiBody>, Error> {
        let connect = options
            .and_then(|o| o.connect_timeout)
            .unwrap_or(DEFAULT_TIMEOUT);
        let first_byte = options
            .and_then(|o| o.first_byte_timeout)
            .unwrap_or(DEFAULT_TIMEOUT);
        let between_bytes = options
            .and_then(|o| o.between_bytes_timeout)
            .unwrap_or(DEFAULT_TIMEOUT);
        let scheme = request.uri().scheme_str().unwrap_or("http").to_string();
        let sent = match scheme.as_str() {
            "https" => self.tls.request(request),
            H2C => {
                let mut parts = request.uri().clone().into_parts();
                parts.scheme = Some(http::uri::Scheme::HTTP);
                *request.uri_mut() =
                    http::Uri::from_parts(parts).map_err(|_| Error::HttpRequestUriInvalid)?;
                // HTTP/2 names the authority in `:authority`.
                request.headers_mut().remove(http::header::HOST);
                self.h2c.request(request)
            }
            _ => self.http1.request(request),
        };
        let response = tokio::time::timeout(connect + first_byte, sent)
            .await
            .map_err(|_| Error::ConnectionReadTimeout)?
            .map_err(failed)?;
        Ok(response
            .map(|body| BetweenBytes::new(body.map_err(Error::from), between_bytes).boxed_unsync()))
    }
}

/// A response body that fails with `ConnectionReadTimeout` when no frame
/// arrives for its timeout (the request's `between-bytes-timeout`), as
/// wasmtime's own client does.
struct BetweenBytes<B> {
    body: B,
    timeout: Duration,
    timer: std::pin::Pin<Box<tokio::time::Sleep>>,
}

impl<B> BetweenBytes<B> {
    fn new(body: B, timeout: Duration) -> Self {
        BetweenBytes {
            body,
            timeout,
            timer: Box::pin(tokio::time::sleep(timeout)),
        }
    }
}

impl<B> http_body::Body for BetweenBytes<B>
where
    B: http_body::Body<Error = Error> + Unpin,
{
    type Data = B::Data;
    type Error = Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<B::Data>, Error>>> {
        use std::task::Poll;
        match std::pin::Pin::new(&mut self.body).poll_frame(cx) {
            Poll::Ready(frame) => {
                let next = tokio::time::Instant::now() + self.timeout;
                self.timer.as_mut().reset(next);
                Poll::Ready(frame)
            }
            Poll::Pending => match self.timer.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(Error::ConnectionReadTimeout))),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// What a failed request becomes for the guest: a connection error that
/// keeps the kind of the I/O error underneath (refused, reset, …).
fn failed(error: hyper_util::client::legacy::Error) -> Error {
    let mut kind = std::io::ErrorKind::Other;
    let mut source = std::error::Error::source(&error);
    let mut detail = error.to_string();
    while let Some(cause) = source {
        detail = format!("{detail}: {cause}");
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            kind = io.kind();
        }
        source = cause.source();
    }
    Error::Connect(std::io::Error::new(kind, detail))
}

/// The hooks every instance's `wasi:http` context uses: requests go out
/// through the server's [`Outbound`], and `h2c` is a scheme a plugin may
/// send to.
pub struct Hooks {
    outbound: Arc<Outbound>,
}

impl Hooks {
    /// Hooks that send through `outbound`.
    pub fn new(outbound: Arc<Outbound>) -> Hooks {
        Hooks { outbound }
    }
}

impl WasiHttpHooks for Hooks {
    fn is_supported_scheme(&mut self, scheme: &http::uri::Scheme) -> bool {
        matches!(scheme.as_str(), "http" | "https" | H2C)
    }

    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> Box<
        dyn Future<
                Output = Result<
                    (
                        http::Response<WasiBody>,
                        Box<dyn Future<Output = Result<(), Error>> + Send>,
                    ),
                    Error,
                >,
            > + Send,
    > {
        let outbound = self.outbound.clone();
        Box::new(async move {
            let response = outbound.send(request, options).await?;
            let done: Box<dyn Future<Output = Result<(), Error>> + Send> =
                Box::new(async { Ok(()) });
            Ok((response, done))
        })
    }
}
