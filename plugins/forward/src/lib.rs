//! pwchain's built-in `forward` terminator (`[origin] forward = true`).
//!
//! It ends a chain by sending the request on through the host's
//! `wasi:http/client`, so the composite is a plain `wasi:http/service`. The
//! request goes to its own authority (the scheme defaults to `http`); a host
//! that passes `Host` through but no authority gets it from there.
//!
//! A chain that forwards to itself would loop until something breaks, so
//! the terminator marks what it sends with `via: 1.1 pwchain` and refuses a
//! request that already carries the mark.
//!
//! Built from this source and embedded in the `pwchain` binary; a test checks
//! that the committed `crates/compose/builtins/forward.wasm` matches it.

use exports::wasi::http::handler::Guest;
use pwchain_guest::wasi::http::client;
use pwchain_guest::{ErrorCode, Request, Response, Scheme, header, map_request_headers};

pwchain_guest::bindings!("wasi:http/service@0.3.2");

const VIA: &str = "1.1 pwchain";

struct Forward;

impl Guest for Forward {
    async fn handle(request: Request) -> Result<Response, ErrorCode> {
        let mut host = None;
        let mut looped = false;
        let request = map_request_headers(request, |headers| {
            looped = headers.iter().any(|(k, v)| {
                k.eq_ignore_ascii_case("via") && v.windows(VIA.len()).any(|w| w == VIA.as_bytes())
            });
            host = header(headers, "host").map(str::to_string);
            headers.push(("via".into(), VIA.as_bytes().to_vec()));
        })?;
        if looped {
            return Err(ErrorCode::LoopDetected);
        }
        if request.get_authority().is_none() {
            let host = host.ok_or(ErrorCode::HttpRequestUriInvalid)?;
            request
                .set_authority(Some(&host))
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
