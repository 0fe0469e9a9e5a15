//! Guest stdout and stderr, each line prefixed with the chain's name so that
//! plugin output can be told from the host's own log; on stderr, the lines
//! of a timed chain's timing sink go to its stage series instead.

use crate::observe::stage_timing::{LINE_START, StageTimes};
use bytes::Bytes;
use std::io::Write;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError, StreamResult};

/// One of the guest's output streams.
#[derive(Clone)]
pub struct GuestLog {
    prefix: Arc<str>,
    timing: Option<Arc<StageTimes>>,
}

impl GuestLog {
    /// Output prefixed with `[name stdout]` or `[name stderr]`.
    pub fn new(name: &str, stream: &str) -> GuestLog {
        GuestLog {
            prefix: format!("[{name} {stream}] ").into(),
            timing: None,
        }
    }

    /// Hands the timing sink's lines to `timing`, if given, instead of
    /// writing them.
    pub fn timing(self, timing: Option<Arc<StageTimes>>) -> GuestLog {
        GuestLog { timing, ..self }
    }
}

impl IsTerminal for GuestLog {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestLog {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.lines())
    }

    /// Written in place. The default wraps [`Self::async_stream`] in a
    /// stream with a worker task of its own, made afresh for every
    /// `get-stderr` (which Rust's std calls for every write): a task
    /// spawned, and a thread woken, per line.
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.lines())
    }
}

impl GuestLog {
    fn lines(&self) -> Lines {
        Lines {
            prefix: self.prefix.clone(),
            timing: self.timing.clone(),
            at_line_start: true,
        }
    }
}

/// Writes to the host's stderr, starting each line with the prefix.
struct Lines {
    prefix: Arc<str>,
    timing: Option<Arc<StageTimes>>,
    at_line_start: bool,
}

/// The most a guest may write at once (what `check-write` grants).
const WRITE_BUDGET: usize = 64 * 1024;

impl Lines {
    fn write_lines(&mut self, buf: &[u8]) -> std::io::Result<()> {
        let mut out = Vec::with_capacity(buf.len() + self.prefix.len());
        for line in buf.split_inclusive(|b| *b == b'\n') {
            // The sink writes each line whole, in one write.
            if let Some(timing) = &self.timing
                && self.at_line_start
                && line.starts_with(LINE_START)
                && let Some(line) = line.strip_suffix(b"\n")
            {
                timing.read_line(line);
                continue;
            }
            if self.at_line_start {
                out.extend_from_slice(self.prefix.as_bytes());
            }
            out.extend_from_slice(line);
            self.at_line_start = line.ends_with(b"\n");
        }
        if out.is_empty() {
            return Ok(());
        }
        std::io::stderr().lock().write_all(&out)
    }
}

impl AsyncWrite for Lines {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Poll::Ready(self.write_lines(buf).map(|()| buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(std::io::stderr().flush())
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.poll_flush(cx)
    }
}

impl OutputStream for Lines {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        if bytes.len() > WRITE_BUDGET {
            return Err(StreamError::trap("write exceeded budget"));
        }
        self.write_lines(&bytes)
            .map_err(|e| StreamError::LastOperationFailed(e.into()))
    }

    fn flush(&mut self) -> StreamResult<()> {
        std::io::stderr()
            .flush()
            .map_err(|e| StreamError::LastOperationFailed(e.into()))
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(WRITE_BUDGET)
    }
}

/// Always ready: a write goes out before `write` returns.
impl Pollable for Lines {
    fn ready<'a, 'b>(&'a mut self) -> Pin<Box<dyn Future<Output = ()> + Send + 'b>>
    where
        'a: 'b,
        Self: 'b,
    {
        Box::pin(std::future::ready(()))
    }
}
