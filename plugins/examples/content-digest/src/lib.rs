//! Middleware: adds a `content-digest` trailer (RFC 9530) to every
//! response, the SHA-256 of the body as it streamed by. A trailer because
//! the digest is known only once the body has passed, and nothing is held
//! to wait for it. Trailers the response already had are kept.
//!
//! The head announces it (`trailer: content-digest`): over HTTP/1.1 a
//! trailer reaches a client only so, and only if it sent `te: trailers`.

use exports::wasi::http::handler::Guest;
use pwchain_guest::{
    ErrorCode, Fields, Response, StreamReader, StreamWriter, Trailers, TrailersWriter, body_done,
    pipe, spawn, trailers_channel,
};
use sha2::{Digest, Sha256};
use wasi::http::handler;

pwchain_guest::bindings!("wasi:http/middleware@0.3.2");

/// The trailer this plugin adds.
const TRAILER: &str = "content-digest";

struct ContentDigest;

impl Guest for ContentDigest {
    async fn handle(request: pwchain_guest::Request) -> Result<Response, ErrorCode> {
        let response = handler::handle(request).await?;
        let status = response.get_status_code();
        let headers = response.get_headers().clone();
        headers
            .append("trailer", TRAILER.as_bytes())
            .map_err(|e| ErrorCode::InternalError(Some(format!("trailer: {e:?}"))))?;
        let (body, upstream_trailers) = Response::consume_body(response, body_done());
        let (to, streamed) = pwchain_guest::body_channel();
        let (trailers_to, trailers) = trailers_channel();
        spawn(digest(body, to, upstream_trailers, trailers_to));
        let (digested, _) = Response::new(headers, Some(streamed), trailers);
        digested
            .set_status_code(status)
            .map_err(|()| ErrorCode::InternalError(Some(format!("bad status {status}"))))?;
        Ok(digested)
    }
}

/// Passes `body` on while hashing it, then sends the trailers it came with
/// plus the digest. A body cut short sends no digest: the failure its
/// trailers carry goes on instead.
async fn digest(
    body: StreamReader<u8>,
    to: StreamWriter<u8>,
    upstream: Trailers,
    trailers_to: TrailersWriter,
) {
    let mut hasher = Sha256::new();
    if !pipe(body, to, |chunk| hasher.update(&chunk[..])).await {
        // The client went away: nobody waits for trailers.
        return;
    }
    let trailers = match upstream.await {
        Ok(Some(found)) => found.clone(),
        Ok(None) => Fields::new(),
        Err(failed) => {
            let _ = trailers_to.write(Err(failed)).await;
            return;
        }
    };
    use base64::Engine as _;
    let value = format!(
        "sha-256=:{}:",
        base64::engine::general_purpose::STANDARD.encode(hasher.finalize())
    );
    let added = trailers
        .append(TRAILER, value.as_bytes())
        .map(|()| Some(trailers))
        .map_err(|e| ErrorCode::InternalError(Some(format!("{TRAILER}: {e:?}"))));
    let _ = trailers_to.write(added).await;
}

export!(ContentDigest);
