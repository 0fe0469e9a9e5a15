//! Reloading a served chain without dropping a request: on `SIGHUP`, when
//! a file it was made from changes (`--watch`), or when the registry tag it
//! came from moves (`--poll`). A new chain is composed through the same
//! library call as `pwchain compose`, compiled off the request path, and
//! swapped in only once it has compiled, linked and started; otherwise the
//! old one keeps serving. Signals and changes that arrive during a reload
//! are folded into the next one.

use crate::observe::metrics::{ChainInfo, Metrics};
use crate::serve::Server;
use crate::serve::tls::Tls;
use pwchain_compose::pipeline;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// What `/chain` and the `chain_info` metric say about the served chain.
pub fn chain_info(name: &str, server: &Server, bytes: &[u8]) -> ChainInfo {
    ChainInfo {
        name: name.to_string(),
        digest: server.digest(),
        record: pwchain_compose::inspect::record::read(bytes)
            .and_then(|r| serde_json::to_value(r).ok()),
        stages: server.stage_times(),
    }
}

/// What swaps the served chain, one reload at a time: signals and file
/// changes that arrive during a reload are folded into the next one.
pub struct Reloads {
    server: Server,
    metrics: Metrics,
    chain: PathBuf,
    resolve: pipeline::Options,
    watched: Option<Watched>,
    /// Read again on `SIGHUP`.
    tls: Option<Tls>,
    polled: Option<Polled>,
}

/// A registry tag followed with `--poll`.
struct Polled {
    every: Duration,
    reference: String,
    /// The manifest digest served (or last refused).
    seen: Option<String>,
}

impl Reloads {
    /// Reloads of `chain` (a file, a `chain.toml` or `oci://…`, loaded with
    /// `resolve`) into `server`, counted in `metrics`, on `SIGHUP` alone.
    pub fn new(
        server: Server,
        metrics: Metrics,
        chain: PathBuf,
        resolve: pipeline::Options,
    ) -> Reloads {
        Reloads {
            server,
            metrics,
            chain,
            resolve,
            watched: None,
            tls: None,
            polled: None,
        }
    }

    /// Also when one of `inputs` (the files the chain was made from)
    /// changes.
    pub fn watching(mut self, inputs: Vec<PathBuf>) -> Reloads {
        self.watched = Some(Watched::new(inputs));
        self
    }

    /// Also when the registry tag `reference` points away from `seen` (the
    /// manifest digest served), asked `every` so often.
    pub fn polling(mut self, every: Duration, reference: String, seen: Option<String>) -> Reloads {
        self.polled = Some(Polled {
            every,
            reference,
            seen,
        });
        self
    }

    /// Reads `tls`'s certificate and key again on `SIGHUP`.
    pub fn with_tls(mut self, tls: Option<Tls>) -> Reloads {
        self.tls = tls;
        self
    }

    /// Runs until dropped (abort its task), one reload at a time.
    pub async fn run(mut self, mut hangup: Hangup) {
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        let mut poll = tokio::time::interval(
            self.polled
                .as_ref()
                .map_or(Duration::from_secs(3600), |p| p.every),
        );
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let why = tokio::select! {
                () = hangup.next() => {
                    self.reload_certificate();
                    "SIGHUP"
                }
                _ = tick.tick(), if self.watched.is_some() => {
                    if !self.watched.as_mut().is_some_and(Watched::changed) {
                        continue;
                    }
                    // Let the writer (an editor, a build) finish first.
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    self.watched.as_mut().map(Watched::changed);
                    "a watched file changed"
                }
                _ = poll.tick(), if self.polled.is_some() => {
                    if !self.tag_moved().await {
                        continue;
                    }
                    "the registry tag moved"
                }
            };
            self.reload(why).await;
        }
    }

    async fn reload(&mut self, why: &str) {
        // This reload reads the files as they are now: changes seen so far
        // need no reload of their own.
        if let Some(watched) = &mut self.watched {
            watched.changed();
        }
        let (chain, resolve) = (self.chain.clone(), self.resolve.clone());
        let loaded =
            match tokio::task::spawn_blocking(move || pipeline::load(&chain, &resolve)).await {
                Ok(loaded) => loaded.map_err(|e| format!("{:?}", miette::Report::new(e))),
                Err(e) => Err(e.to_string()),
            };
        let loaded = match loaded {
            Ok(loaded) => loaded,
            Err(e) => return self.refused(why, &e),
        };
        if let Some(composed) = &loaded.composed {
            for warning in &composed.warnings {
                eprintln!("warning: {warning}");
            }
        }
        if let Some(watched) = &mut self.watched {
            watched.watch(loaded.inputs);
        }
        let bytes = loaded.bytes;
        match self.server.prepare(bytes.clone()).await {
            Ok(prepared) => {
                let new = prepared.digest().to_string();
                let old = self.server.swap(prepared);
                self.metrics.reloaded(true);
                self.metrics
                    .serving(chain_info(&loaded.name, &self.server, &bytes));
                tracing::info!(
                    old = %old,
                    new = %new,
                    "reloaded `{}` ({why})",
                    self.chain.display()
                );
            }
            Err(e) => self.refused(why, &format!("{e:#}")),
        }
    }

    /// Whether the polled tag points somewhere new (remembered, so a
    /// refused chain is not tried again until the tag moves again).
    async fn tag_moved(&mut self) -> bool {
        let Some(polled) = &mut self.polled else {
            return false;
        };
        let reference = polled.reference.clone();
        let now =
            match tokio::task::spawn_blocking(move || pipeline::current_digest(&reference)).await {
                Ok(Ok(digest)) => digest,
                Ok(Err(e)) => {
                    tracing::warn!("cannot ask the registry about {}: {e}", polled.reference);
                    return false;
                }
                Err(_) => return false,
            };
        if polled.seen.as_deref() == Some(now.as_str()) {
            return false;
        }
        polled.seen = Some(now);
        true
    }

    fn reload_certificate(&self) {
        let Some(tls) = &self.tls else { return };
        match tls.reload() {
            Ok(()) => tracing::info!("reloaded the TLS certificate and key ({tls:?})"),
            Err(e) => tracing::error!("kept the old TLS certificate: {e}"),
        }
    }

    fn refused(&self, why: &str, error: &str) {
        self.metrics.reloaded(false);
        tracing::error!(
            "reload of `{}` ({why}) refused, still serving {}: {error}",
            self.chain.display(),
            self.server.digest()
        );
    }
}

/// Resolves at each SIGHUP (never where there are no signals). Signals
/// that arrive while a reload runs are kept, as one.
pub struct Hangup {
    #[cfg(unix)]
    signal: Option<tokio::signal::unix::Signal>,
}

impl Hangup {
    /// Listens from now on: a signal that arrives while the server starts
    /// is kept. (Listening also stops SIGHUP's default action, which would
    /// end the process.)
    pub fn listen() -> Hangup {
        #[cfg(unix)]
        let signal = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
            .inspect_err(|e| {
                tracing::warn!("cannot listen for SIGHUP ({e}); reloading on it is off")
            })
            .ok();
        Hangup {
            #[cfg(unix)]
            signal,
        }
    }

    async fn next(&mut self) {
        #[cfg(unix)]
        if let Some(signal) = &mut self.signal
            && signal.recv().await.is_some()
        {
            return;
        }
        std::future::pending().await
    }
}

/// The files a chain was made from, and what they looked like when last
/// looked at (modification time and size; `None`: missing).
struct Watched {
    files: Vec<(PathBuf, Option<(SystemTime, u64)>)>,
}

impl Watched {
    fn new(files: Vec<PathBuf>) -> Watched {
        let mut watched = Watched { files: Vec::new() };
        watched.watch(files);
        watched
    }

    fn watch(&mut self, files: Vec<PathBuf>) {
        self.files = files
            .into_iter()
            .map(|path| {
                let seen = stamp(&path);
                (path, seen)
            })
            .collect();
    }

    /// Whether any file changed since the last look (and remembers now).
    fn changed(&mut self) -> bool {
        let mut changed = false;
        for (path, seen) in &mut self.files {
            let now = stamp(path);
            changed |= now != *seen;
            *seen = now;
        }
        changed
    }
}

fn stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}
