//! pwchain's built-in `forward` terminator (`[origin] forward = true`).
//!
//! It ends a chain by sending the request on through the host's
//! `wasi:http/client`, so the composite is a plain `wasi:http/service`. An
//! incoming request usually has no authority (HTTP/1.1 origin form), and the
//! host refuses to send one without it, so the authority is taken from the
//! `Host` header and the scheme defaults to `http`.
//!
//! Built from this source and embedded in the `pwchain` binary; a test checks
//! that the committed `crates/compose/builtins/forward.wasm` matches it.

use exports::wasi::http::handler::Guest;
use pwchain_guest::wasi::http::client;
use pwchain_guest::{ErrorCode, Request, Response, Scheme, header};

pwchain_guest::bindings!("wasi:http/service@0.3.2");

struct Forward;

impl Guest for Forward {
    async fn handle(request: Request) -> Result<Response, ErrorCode> {
        if request.get_authority().is_none() {
            let headers = request.get_headers().copy_all();
            let host = header(&headers, "host").ok_or(ErrorCode::HttpRequestUriInvalid)?;
            request
                .set_authority(Some(host))
                .map_err(|()| ErrorCode::HttpRequestUriInvalid)?;
        }
        if request.get_scheme().is_none() {
            request
                .set_scheme(Some(&Scheme::Http))
                .map_err(|()| ErrorCode::HttpRequestUriInvalid)?;
        }
        client::send(request).await
    }
}

export!(Forward);
