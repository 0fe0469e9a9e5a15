//! pwchain's built-in stage timer: the `wasi:http/handler` that stands in
//! front of each stage of a chain composed with `[chain] stage-timing =
//! true`. It times a request from its arrival at the stage to the
//! response's head coming back, which covers the stage and every stage
//! after it, and reports that to the chain's timing sink under its stage's
//! index. A stage's own time is the difference with the next stage's.
//!
//! Built from this source and embedded in the `pwchain` binary; a test checks
//! that the committed `crates/compose/builtins/stage-timer.wasm` matches it.

use exports::wasi::http::handler::Guest;
use pwchain::proxy::stage_timing;
use pwchain_guest::{ErrorCode, Request, Response};
use std::sync::OnceLock;
use std::time::Instant;
use wasi::config::store;
use wasi::http::handler;

pwchain_guest::bindings!("pwchain:proxy/stage-timer@0.1.0");

/// This timer's stage, read once per instance from its store (`stage`).
static STAGE: OnceLock<u32> = OnceLock::new();

fn stage() -> u32 {
    store::get("stage")
        .ok()
        .flatten()
        .and_then(|index| index.parse().ok())
        // pwchain always writes it; a sink ignores an index it has no name for.
        .unwrap_or(u32::MAX)
}

struct StageTimer;

impl Guest for StageTimer {
    async fn handle(request: Request) -> Result<Response, ErrorCode> {
        let start = Instant::now();
        let answer = handler::handle(request).await;
        let nanos = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        stage_timing::report(*STAGE.get_or_init(stage), nanos);
        answer
    }
}

export!(StageTimer);
