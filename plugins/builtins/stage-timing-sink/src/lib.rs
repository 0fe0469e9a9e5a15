//! pwchain's built-in timing sink: one per chain composed with `[chain]
//! stage-timing = true`. The stage timers report each stage's time here;
//! when the first stage's time arrives (the request's response head is on
//! its way out), the times gathered so far go to stderr as one line:
//!
//! ```text
//! pwchain-stage-timing chain=NAME STAGE=NANOS STAGE=NANOS …
//! ```
//!
//! in request order. `pwchain serve` reads the line into its
//! `pwchain_stage_seconds` histograms instead of logging it; other hosts
//! log it as the chain's stderr. A stage a request did not reach (one
//! before it answered) is absent from that request's line.
//!
//! Built from this source and embedded in the `pwchain` binary; a test checks
//! that the committed `crates/compose/builtins/stage-timing-sink.wasm` matches it.

use exports::pwchain::proxy::stage_timing::Guest;
use std::cell::RefCell;
use std::io::Write;
use wasi::config::store;

wit_bindgen::generate!({
    path: "../../../wit",
    world: "pwchain:proxy/stage-timing-sink@0.1.0",
    generate_all,
});

/// What the sink knows of its chain (read once per instance from its
/// store), and the times reported since the last line.
struct Sink {
    /// `pwchain-stage-timing chain=NAME`, the start of every line.
    head: String,
    /// The stages' names, by index.
    stages: Vec<String>,
    /// Times reported since the last line, by stage index.
    pending: Vec<(u32, u64)>,
}

thread_local! {
    static SINK: RefCell<Option<Sink>> = const { RefCell::new(None) };
}

fn read_store() -> Sink {
    let get = |key: &str| store::get(key).ok().flatten().unwrap_or_default();
    Sink {
        head: format!("pwchain-stage-timing chain={}", get("chain")),
        stages: get("stages").lines().map(str::to_string).collect(),
        pending: Vec::new(),
    }
}

impl Sink {
    /// The times gathered so far, as one line written in one write so that
    /// lines of concurrent requests do not interleave.
    fn flush(&mut self) {
        self.pending.sort_unstable();
        let mut line = self.head.clone();
        for (stage, nanos) in self.pending.drain(..) {
            if let Some(name) = self.stages.get(stage as usize) {
                line.push_str(&format!(" {name}={nanos}"));
            }
        }
        line.push('\n');
        let _ = std::io::stderr().write_all(line.as_bytes());
    }
}

struct StageTimingSink;

impl Guest for StageTimingSink {
    fn report(stage: u32, nanos: u64) {
        SINK.with_borrow_mut(|sink| {
            let sink = sink.get_or_insert_with(read_store);
            sink.pending.push((stage, nanos));
            // The first stage answers last: its request is done.
            if stage == 0 {
                sink.flush();
            }
        });
    }
}

export!(StageTimingSink);
