//! Middleware: tags the request on its way in and the response on its way
//! out, so a reader can see both directions pass through the chain.

use exports::wasi::http::handler::Guest;
use pwchain_guest::{ErrorCode, Request, Response, map_request_headers, map_response};
use wasi::http::handler;

pwchain_guest::bindings!("wasi:http/middleware@0.3.2");

struct AddHeader;

impl Guest for AddHeader {
    async fn handle(request: Request) -> Result<Response, ErrorCode> {
        let request = map_request_headers(request, |headers| {
            headers.push(("x-chain-hop".into(), b"add-header".to_vec()));
        })?;
        let response = handler::handle(request).await?;
        map_response(
            response,
            |headers| headers.push(("x-served-by".into(), b"pwchain add-header".to_vec())),
            None,
        )
    }
}

export!(AddHeader);
