//! Middleware: tags the request on its way in and the response on its way
//! out, so a reader can see both directions pass through the chain.
//!
//! What it adds comes from its configuration (`wasi:config/store`, which
//! pwchain fills from the plugin's `config` table): each key
//! `request.NAME` adds header `NAME` to the request, each `response.NAME`
//! to the response. With no configuration it adds `x-chain-hop:
//! add-header` and `x-served-by: pwchain add-header`.

use exports::wasi::http::handler::Guest;
use pwchain_guest::{ErrorCode, HeaderList, Request, Response, map_request_headers, map_response};
use std::sync::OnceLock;
use wasi::config::store;
use wasi::http::handler;

/// The headers to add, read from the configuration once per instance: it
/// cannot change while the instance lives.
static HEADERS: OnceLock<(HeaderList, HeaderList)> = OnceLock::new();

pwchain_guest::bindings!("pwchain:proxy/configured-middleware@0.1.0");

struct AddHeader;

impl Guest for AddHeader {
    async fn handle(request: Request) -> Result<Response, ErrorCode> {
        let (to_request, to_response) = HEADERS.get_or_init(|| {
            pwchain_guest::configured_headers(store::get_all().unwrap_or_default(), "add-header")
        });
        let request = map_request_headers(request, |headers| headers.append_all(to_request))?;
        let response = handler::handle(request).await?;
        map_response(response, |headers| headers.append_all(to_response), None)
    }
}

export!(AddHeader);
