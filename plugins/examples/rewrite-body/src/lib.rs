//! Middleware: upper-cases the response body as it streams back, one chunk
//! at a time, never holding the whole body.

use exports::wasi::http::handler::Guest;
use pwchain_guest::{ErrorCode, Request, Response, map_response};
use wasi::http::handler;

pwchain_guest::bindings!("wasi:http/middleware@0.3.2");

struct RewriteBody;

impl Guest for RewriteBody {
    async fn handle(request: Request) -> Result<Response, ErrorCode> {
        let response = handler::handle(request).await?;
        map_response(
            response,
            |headers| headers.append("x-body-rewritten", "uppercase"),
            Some(|chunk| chunk.make_ascii_uppercase()),
        )
    }
}

export!(RewriteBody);
