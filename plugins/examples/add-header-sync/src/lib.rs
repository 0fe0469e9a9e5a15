//! `add-header`, lifted and lowered synchronously: the same headers, from
//! the same configuration, at the cost of a plain call per hop. The
//! instance is busy until `handle` returns, so a host gives each request
//! its own; bodies pass through by handle, untouched.

use exports::wasi::http::handler::Guest;
use pwchain_guest::{
    ErrorCode, HeaderList, Request, Response, map_request_headers_sync, map_response_headers_sync,
};
use std::sync::OnceLock;
use wasi::config::store;
use wasi::http::handler;

/// The headers to add, read from the configuration once per instance.
static HEADERS: OnceLock<(HeaderList, HeaderList)> = OnceLock::new();

pwchain_guest::bindings!("pwchain:proxy/configured-middleware@0.1.0", sync);

struct AddHeader;

impl Guest for AddHeader {
    fn handle(request: Request) -> Result<Response, ErrorCode> {
        let (to_request, to_response) = HEADERS.get_or_init(|| {
            pwchain_guest::configured_headers(store::get_all().unwrap_or_default(), "add-header")
        });
        let request = map_request_headers_sync(request, |headers| headers.append_all(to_request))?;
        let response = handler::handle(request)?;
        map_response_headers_sync(response, |headers| headers.append_all(to_response))
    }
}

export!(AddHeader);
