//! The next hop of an unterminated chain (`[origin] host = true`): the host
//! provides the composite's `wasi:http/handler` import by proxying to a fixed
//! upstream, as a reverse proxy would. Side calls (`wasi:http/client`) are a
//! different import and keep going to wherever the plugin sent them.

use crate::outbound::Outbound;
use crate::state::Host;
use pwchain_forwarding::{Forwarded, Upstream, strip_hop_by_hop};
use std::sync::Arc;
use wasmtime::component::{Accessor, Linker, Resource};
use wasmtime_wasi_http::p3::bindings::http::types::ErrorCode;
use wasmtime_wasi_http::p3::{Request, Response};
use wasmtime_wasi_http::{Error as HttpError, WasiHttpView};

/// The request's target with the upstream's scheme, authority and base
/// path in place of its own.
fn rewrite(upstream: &Upstream, uri: &http::Uri) -> Result<http::Uri, http::Error> {
    http::Uri::builder()
        .scheme(upstream.scheme().as_str())
        .authority(upstream.authority())
        .path_and_query(upstream.target(uri.path_and_query().map(|p| p.as_str())))
        .build()
}

/// Defines `wasi:http/handler@0.3.x` in `linker` as a proxy to `upstream`,
/// over `outbound`'s pooled connections.
pub fn add_to_linker(
    linker: &mut Linker<Host>,
    upstream: Arc<Upstream>,
    outbound: Arc<Outbound>,
) -> wasmtime::Result<()> {
    linker
        .instance("wasi:http/handler@0.3.0")?
        .func_wrap_concurrent(
            "handle",
            move |accessor: &Accessor<Host>, (request,): (Resource<Request>,)| {
                let (upstream, outbound) = (upstream.clone(), outbound.clone());
                Box::pin(
                    async move { Ok((forward(accessor, request, &upstream, &outbound).await,)) },
                )
            },
        )
}

async fn forward(
    accessor: &Accessor<Host>,
    request: Resource<Request>,
    upstream: &Upstream,
    outbound: &Outbound,
) -> Result<Resource<Response>, ErrorCode> {
    let internal = |e: &dyn std::fmt::Debug| ErrorCode::InternalError(Some(format!("{e:?}")));
    let (mut request, options) = accessor.with(|mut store| {
        let request = store
            .data_mut()
            .table
            .delete(request)
            .map_err(|e| internal(&e))?;
        request
            .into_http(&mut store, async { Ok(()) })
            .map_err(|e| internal(&e))
    })?;
    // What the chain asked for, before the upstream's name replaces it (an
    // earlier proxy's record is kept).
    let asked = request.uri().authority().map(|a| a.to_string());
    let proto = request.uri().scheme_str().unwrap_or("http").to_string();
    Forwarded {
        client: None,
        host: asked.as_deref(),
        proto: Some(&proto),
    }
    .record(request.headers_mut());
    *request.uri_mut() =
        rewrite(upstream, request.uri()).map_err(|_| ErrorCode::HttpRequestUriInvalid)?;
    strip_hop_by_hop(request.headers_mut());
    // The original host is in `x-forwarded-host`; the upstream is addressed
    // by its own name, as reverse proxies do by default.
    if let Ok(host) = http::HeaderValue::from_str(upstream.authority()) {
        request.headers_mut().insert(http::header::HOST, host);
    }
    tracing::debug!("next hop: {} {}", request.method(), request.uri());

    let response = outbound
        .send(request, options.as_deref().copied())
        .await
        .map_err(|e| {
            tracing::warn!("upstream {upstream}: {e}");
            to_error_code(&e)
        })?;
    accessor.with(|mut store| {
        let host = store.data_mut();
        let view = host.http();
        let (response, processed) = Response::from_http(view.hooks, response);
        tokio::spawn(processed);
        view.table.push(response).map_err(|e| internal(&e))
    })
}

/// The `error-code` a plugin sees for a failed upstream exchange.
fn to_error_code(error: &HttpError) -> ErrorCode {
    match error {
        HttpError::Connect(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            ErrorCode::ConnectionRefused
        }
        HttpError::Connect(_) | HttpError::DestinationUnavailable => {
            ErrorCode::DestinationUnavailable
        }
        HttpError::ConnectionRefused => ErrorCode::ConnectionRefused,
        HttpError::ConnectionTimeout => ErrorCode::ConnectionTimeout,
        HttpError::HttpResponseTimeout => ErrorCode::HttpResponseTimeout,
        HttpError::ConnectionTerminated => ErrorCode::ConnectionTerminated,
        HttpError::HttpRequestUriInvalid => ErrorCode::HttpRequestUriInvalid,
        other => ErrorCode::InternalError(Some(other.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrites_to_the_upstream() {
        let up: Upstream = "http://127.0.0.1:9000/base/".parse().unwrap();
        let uri: http::Uri = "http://front.example/a/b?c=1".parse().unwrap();
        assert_eq!(
            rewrite(&up, &uri).unwrap(),
            "http://127.0.0.1:9000/base/a/b?c=1"
        );
        let bare: Upstream = "https://up.example".parse().unwrap();
        assert_eq!(
            rewrite(&bare, &"/x".parse().unwrap()).unwrap(),
            "https://up.example/x"
        );
    }
}
