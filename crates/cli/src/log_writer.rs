//! Where log lines go: into a buffer in memory that a thread of its own
//! writes to stderr every 50 ms, or as soon as 64 KiB wait. A request's
//! access-log line then costs a copy, not a system call, and not a wake-up
//! of the writer thread either (a wake-up per line, as a channel to a
//! logging thread does, cost about as much CPU as the write it saved).
//! Nothing is dropped: past 8 MiB waiting (stderr blocked), loggers wait
//! for the writer.

use std::io::Write;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

const FLUSH_EVERY: Duration = Duration::from_millis(50);
const FLUSH_AT: usize = 64 << 10;
const HOLD_AT: usize = 8 << 20;

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    /// Signalled when the buffer is worth writing, or on stop.
    full: Condvar,
    /// Signalled when the writer has taken the buffer.
    drained: Condvar,
}

#[derive(Default)]
struct State {
    buffer: Vec<u8>,
    stopping: bool,
}

/// The `MakeWriter` for tracing-subscriber; cheap to clone.
#[derive(Clone)]
pub struct Batched(Arc<Shared>);

/// Writes what is left and stops the writer thread when dropped.
pub struct Flushed {
    shared: Arc<Shared>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Starts the writer thread.
pub fn batched() -> (Batched, Flushed) {
    let shared = Arc::new(Shared::default());
    let writer = shared.clone();
    let thread = std::thread::Builder::new()
        .name("pwchain-log".into())
        .spawn(move || write_out(&writer))
        .ok();
    (Batched(shared.clone()), Flushed { shared, thread })
}

fn write_out(shared: &Shared) {
    let mut spare = Vec::new();
    loop {
        let stopping = {
            let Ok(mut state) = shared.state.lock() else {
                return;
            };
            if state.buffer.len() < FLUSH_AT && !state.stopping {
                state = match shared.full.wait_timeout(state, FLUSH_EVERY) {
                    Ok((state, _)) => state,
                    Err(_) => return,
                };
            }
            std::mem::swap(&mut state.buffer, &mut spare);
            shared.drained.notify_all();
            state.stopping
        };
        if !spare.is_empty() {
            let mut stderr = std::io::stderr().lock();
            let _ = stderr.write_all(&spare);
            let _ = stderr.flush();
            spare.clear();
        }
        if stopping {
            return;
        }
    }
}

impl Drop for Flushed {
    fn drop(&mut self) {
        if let Ok(mut state) = self.shared.state.lock() {
            state.stopping = true;
        }
        self.shared.full.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Write for Batched {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let Ok(mut state) = self.0.state.lock() else {
            // A logger panicked mid-line; write straight through.
            return std::io::stderr().write(bytes);
        };
        while state.buffer.len() >= HOLD_AT && !state.stopping {
            self.0.full.notify_one();
            state = match self.0.drained.wait(state) {
                Ok(state) => state,
                Err(_) => return std::io::stderr().write(bytes),
            };
        }
        if state.stopping {
            // After the last flush (a line logged while exiting).
            drop(state);
            return std::io::stderr().write(bytes);
        }
        state.buffer.extend_from_slice(bytes);
        if state.buffer.len() >= FLUSH_AT {
            self.0.full.notify_one();
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Batched {
    type Writer = Batched;

    fn make_writer(&'a self) -> Batched {
        self.clone()
    }
}
