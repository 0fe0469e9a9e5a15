//! Middleware: answers 401 itself unless the request carries
//! `authorization: Bearer <token>` with the expected token; only then is the
//! next hop called.

use exports::wasi::http::handler::Guest;
use pwchain_guest::{ErrorCode, Request, Response, text_response};
use wasi::http::handler;

/// The token this example accepts. Per-plugin configuration arrives with
/// `wasi:config`; until then the demo token is fixed.
const TOKEN: &str = "let-me-in";

pwchain_guest::bindings!("wasi:http/middleware@0.3.2");

struct Auth;

impl Guest for Auth {
    async fn handle(request: Request) -> Result<Response, ErrorCode> {
        // Only the one header is read into the guest, not all of them.
        let authorization = request.get_headers().get("authorization");
        let presented = authorization
            .first()
            .and_then(|v| std::str::from_utf8(v).ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if presented == Some(TOKEN) {
            return handler::handle(request).await;
        }
        text_response(
            401,
            &[(
                "www-authenticate".into(),
                b"Bearer realm=\"pwchain\"".to_vec(),
            )],
            "unauthorized: send `authorization: Bearer <token>`\n",
        )
    }
}

export!(Auth);
