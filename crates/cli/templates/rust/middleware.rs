//! `{{name}}`: a middleware that passes every request on to the next hop and
//! tags the response with `x-{{name}}: passed`. Start here.

use exports::wasi::http::handler::Guest;
use wasi::http::handler;
use wasi::http::types::{ErrorCode, Fields, Response};

wit_bindgen::generate!({
    path: "wit",
    world: "plugin",
    generate_all,
});

struct Plugin;

impl Guest for Plugin {
    async fn handle(request: wasi::http::types::Request) -> Result<Response, ErrorCode> {
        // The request could be changed here (rebuilt around its body: the
        // headers of a request that arrived are immutable).
        let response = handler::handle(request).await?;

        // Rebuild the response with one more header, same status and body.
        // `clone` copies the headers inside the host; only the one added
        // crosses into the guest (cheaper than `copy-all` + `from-list`).
        let status = response.get_status_code();
        let headers: Fields = response.get_headers().clone();
        headers
            .append("x-{{name}}", b"passed")
            .map_err(|e| ErrorCode::InternalError(Some(format!("{e:?}"))))?;
        let (body, trailers) = Response::consume_body(response, wit_future::new(|| Ok(())).1);
        let (tagged, _) = Response::new(headers, Some(body), trailers);
        tagged
            .set_status_code(status)
            .map_err(|()| ErrorCode::InternalError(Some("bad status".into())))?;
        Ok(tagged)
    }
}

export!(Plugin);
