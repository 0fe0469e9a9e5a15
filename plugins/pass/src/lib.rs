//! Middleware that does nothing but call its next hop: the unit of cost of
//! a chain, used by the serve benchmark.

use exports::wasi::http::handler::Guest;
use pwchain_guest::{ErrorCode, Request, Response};
use wasi::http::handler;

pwchain_guest::bindings!("wasi:http/middleware@0.3.2");

struct Pass;

impl Guest for Pass {
    async fn handle(request: Request) -> Result<Response, ErrorCode> {
        handler::handle(request).await
    }
}

export!(Pass);
