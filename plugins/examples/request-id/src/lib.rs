//! Middleware in the seed proposal's form: it targets the `pwchain:proxy/proxy`
//! world and calls its next hop through the `origin` import. It gives each
//! request an `x-request-id` (keeping one the client sent) and echoes it on
//! the response.

use exports::wasi::http::handler::Guest;
use pwchain::proxy::origin;
use pwchain_guest::wasi::random::random::get_random_u64;
use pwchain_guest::{ErrorCode, Request, Response, map_request_headers, map_response};

pwchain_guest::bindings!("pwchain:proxy/proxy@0.1.0");

struct RequestId;

impl Guest for RequestId {
    async fn handle(request: Request) -> Result<Response, ErrorCode> {
        let mut id = String::new();
        let request = map_request_headers(request, |headers| {
            match headers.get("x-request-id") {
                Some(existing) => id = existing,
                None => {
                    id = format!("{:016x}", get_random_u64());
                    headers.append("x-request-id", &id)?;
                }
            }
            Ok(())
        })?;
        let response = origin::handle(request).await?;
        map_response(
            response,
            |headers| headers.append("x-request-id", &id),
            None,
        )
    }
}

export!(RequestId);
