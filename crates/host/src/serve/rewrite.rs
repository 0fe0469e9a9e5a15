//! What the host changes in a request before the chain sees it.

use super::Body;
use pwchain_forwarding::Forwarded;
use std::net::SocketAddr;

/// Prepares an incoming request as a reverse proxy would: wasi:http gives a
/// guest the request's authority but not its `Host` header (a forbidden
/// header), so an origin-form request gets its authority from `Host`, and
/// `scheme` (https when the server holds the certificate). The client's
/// address, which no guest can learn otherwise, is appended to
/// `x-forwarded-for`. `x-forwarded-host` and `-proto` are left to the hop
/// that replaces the authority (`--upstream`, the `forward` terminator):
/// until then the request's own authority and scheme say the same, and
/// every plugin that copies the headers would carry them for nothing
/// (the two were a tenth of the instructions of a request to the bare
/// `echo` service, measured under callgrind).
pub(super) fn as_reverse_proxy(
    mut request: http::Request<Body>,
    peer: SocketAddr,
    scheme: http::uri::Scheme,
) -> http::Request<Body> {
    Forwarded {
        client: Some(&peer.ip().to_string()),
        host: None,
        proto: None,
    }
    .record(request.headers_mut());
    if request.uri().authority().is_some() {
        return request;
    }
    // The path is kept as parsed; only the scheme and authority are added.
    let Some(authority) = request
        .headers()
        .get(http::header::HOST)
        .and_then(|host| http::uri::Authority::try_from(host.as_bytes()).ok())
    else {
        return request;
    };
    let mut parts = request.uri().clone().into_parts();
    parts.scheme = Some(scheme);
    parts.authority = Some(authority);
    if parts.path_and_query.is_none() {
        parts.path_and_query = Some(http::uri::PathAndQuery::from_static("/"));
    }
    if let Ok(uri) = http::Uri::from_parts(parts) {
        *request.uri_mut() = uri;
    }
    request
}
