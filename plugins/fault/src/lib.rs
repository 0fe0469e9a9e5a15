//! Middleware that misbehaves on request, to show what a host does about it:
//! `/trap` panics (a trap), `/spin` never returns, `/grow` allocates without
//! end; any other path is passed on.

use exports::wasi::http::handler::Guest;
use pwchain_guest::{ErrorCode, Request, Response};
use wasi::http::handler;

pwchain_guest::bindings!("wasi:http/middleware@0.3.2");

struct Fault;

impl Guest for Fault {
    async fn handle(request: Request) -> Result<Response, ErrorCode> {
        match request.get_path_with_query().as_deref() {
            Some("/trap") => panic!("fault: asked to trap"),
            Some("/spin") => {
                let mut n = 0u64;
                loop {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            }
            Some("/grow") => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            _ => handler::handle(request).await,
        }
    }
}

export!(Fault);
