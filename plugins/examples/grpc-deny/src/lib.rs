//! Middleware for gRPC: refuses calls to the methods its configuration
//! lists (`methods`: `/package.Service/Method` names, separated by commas
//! or new lines) with `PERMISSION_DENIED`, the way a gRPC client expects a
//! refusal: HTTP 200, `content-type: application/grpc`, and the status in
//! a trailers-only answer (`grpc-status: 7`, `grpc-message`). Other calls,
//! and requests that are not gRPC, go on.

use exports::wasi::http::handler::Guest;
use pwchain_guest::{ErrorCode, Request, Response, body_stream, fields, no_trailers};
use std::sync::OnceLock;
use wasi::config::store;
use wasi::http::handler;

pwchain_guest::bindings!("pwchain:proxy/configured-middleware@0.1.0");

/// gRPC's status code for a call the caller may not make.
const PERMISSION_DENIED: &str = "7";

static DENIED: OnceLock<Vec<String>> = OnceLock::new();

fn denied() -> &'static [String] {
    DENIED.get_or_init(|| {
        let listed = store::get("methods").ok().flatten().unwrap_or_default();
        listed
            .split([',', '\n'])
            .map(str::trim)
            .filter(|m| !m.is_empty())
            .map(str::to_string)
            .collect()
    })
}

fn is_grpc(request: &Request) -> bool {
    let types = request.get_headers().get("content-type");
    types
        .first()
        .is_some_and(|t| t.starts_with(b"application/grpc"))
}

struct GrpcDeny;

impl Guest for GrpcDeny {
    async fn handle(request: Request) -> Result<Response, ErrorCode> {
        let path = request.get_path_with_query().unwrap_or_default();
        let method = path.split('?').next().unwrap_or_default();
        if !is_grpc(&request) || !denied().iter().any(|m| m == method) {
            return handler::handle(request).await;
        }
        let head = [
            ("content-type".to_string(), b"application/grpc".to_vec()),
            ("grpc-status".into(), PERMISSION_DENIED.as_bytes().to_vec()),
            (
                "grpc-message".into(),
                format!("{method} is not allowed here").into_bytes(),
            ),
        ];
        let (response, _) = Response::new(
            fields(&head)?,
            Some(body_stream(Vec::new(), None)),
            no_trailers(),
        );
        Ok(response)
    }
}

export!(GrpcDeny);
