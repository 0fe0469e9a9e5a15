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
use pwchain_guest::wasi::clocks::monotonic_clock;
use pwchain_guest::{ErrorCode, Request, Response};
use std::sync::OnceLock;
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
        // wasi:clocks 0.3's `now`, a plain host call: std's `Instant` goes
        // through wasi:clocks 0.2, whose host functions are async in wasmtime
        // and cost more per call.
        let start = monotonic_clock::now();
        let answer = handler::handle(request).await;
        let nanos = monotonic_clock::now().saturating_sub(start);
        stage_timing::report(*STAGE.get_or_init(stage), nanos);
        answer
    }
}

export!(StageTimer);
