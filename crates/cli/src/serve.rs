//! `pwchain serve`: serve a chain, and swap it for a new one on `SIGHUP` or
//! (with `--watch`) when a file it was made from changes. A new chain is
//! composed through the same library call as `pwchain compose`, compiled
//! off the request path, and swapped in only once it has compiled, linked
//! and started; otherwise the old one keeps serving.

use crate::args::ServeArgs;
use miette::{IntoDiagnostic, WrapErr, miette};
use pwchain_compose::pipeline;
use pwchain_host::Server;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

pub fn serve(args: ServeArgs) -> miette::Result<ExitCode> {
    let resolve = args.resolve.options();
    let metrics = pwchain_host::Metrics::default();
    let poll = match (args.poll, pipeline::registry_reference(&args.chain)) {
        (Some(seconds), Some(reference)) => {
            Some((Duration::from_secs(seconds), reference.to_string()))
        }
        (Some(_), None) => {
            return Err(miette!(
                help = "serve `oci://HOST/NS/NAME:TAG` to follow a tag, or use --watch for files",
                "--poll follows a registry tag, and `{}` is not `oci://…`",
                args.chain.display()
            ));
        }
        (None, _) => None,
    };
    // A certificate that cannot be used stops us before anything listens.
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(pwchain_host::Tls::load(cert, key).map_err(|e| {
            miette!(
                help = "pass the PEM certificate chain and its own private key",
                "{e}"
            )
        })?),
        _ => None,
    };
    let lanes = args.lanes.map(|n| n as usize);
    let mut options = pwchain_host::ServeOptions {
        upstream: args.upstream,
        max_memory: args.max_memory << 20,
        env: args.env,
        max_instance_reuse: args.max_instance_reuse,
        max_instance_concurrency: args.max_instance_concurrency,
        request_timeout: Duration::from_secs(args.request_timeout),
        header_timeout: Duration::from_secs(args.header_timeout),
        max_connections: args.max_connections as usize,
        max_header_bytes: args.max_header_bytes as usize,
        max_requests: args.max_requests as usize,
        queue_timeout: Duration::from_secs(args.queue_timeout),
        compile_cache: Some(crate::compiled(&args.resolve)),
        metrics: metrics.clone(),
        tls: tls.clone(),
        lanes: lanes.unwrap_or(1),
        ..Default::default()
    };
    let runtime = match lanes {
        // Requests run on the lanes' threads: this runtime only starts,
        // reloads and stops.
        Some(_) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
        None => tokio::runtime::Runtime::new(),
    }
    .into_diagnostic()?;
    runtime.block_on(async {
        // Listening for signals from the start: one that arrives while the
        // server is busy is then pending, never lost.
        // (SIGHUP too: its default action would end the process.)
        let stop = Stop::listen().into_diagnostic()?;
        let hangup = Hangup::listen();
        // The admin endpoint answers (not ready) while the chain compiles.
        let (admin_stop, admin_stopped) = tokio::sync::oneshot::channel::<()>();
        if let Some(admin) = args.admin {
            let listener = tokio::net::TcpListener::bind(admin)
                .await
                .into_diagnostic()
                .wrap_err_with(|| format!("cannot listen on the admin address {admin}"))?;
            let addr = listener.local_addr().into_diagnostic()?;
            eprintln!(
                "pwchain: admin endpoint at http://{addr}/ (/metrics, /healthz, /readyz, /chain)"
            );
            tokio::spawn(pwchain_host::observe::admin::serve_admin(
                listener,
                metrics.clone(),
                async {
                    let _ = admin_stopped.await;
                },
            ));
        }
        let chain = args.chain.clone();
        let (loaded, server) = tokio::task::spawn_blocking(move || {
            let loaded = pipeline::load(&chain, &resolve)?;
            if let Some(composed) = &loaded.composed {
                crate::warn(&composed.warnings);
            }
            options.name = loaded.name.clone();
            let server = Server::new(&loaded.bytes, options).map_err(|e| {
                miette!(
                    help = "`pwchain validate` says what the component needs",
                    "cannot serve `{}`: {e:#}",
                    chain.display()
                )
            })?;
            Ok::<_, miette::Report>((loaded, server))
        })
        .await
        .into_diagnostic()??;
        metrics.serving(chain_info(&loaded.name, &server, &loaded.bytes));
        let mut listeners = pwchain_host::serve::lanes::bind(args.addr, lanes.unwrap_or(1))
            .into_diagnostic()
            .wrap_err_with(|| format!("cannot listen on {}", args.addr))?;
        let addr = listeners[0].local_addr().into_diagnostic()?;
        eprintln!(
            "pwchain: serving `{}` ({}) on {}://{addr}/",
            args.chain.display(),
            server.digest(),
            if tls.is_some() { "https" } else { "http" }
        );
        let reloads = Reloads {
            server: server.clone(),
            metrics,
            chain: args.chain.clone(),
            resolve: args.resolve.options(),
            watched: args.watch.then(|| Watched::new(loaded.inputs)),
            tls,
            polled: poll.map(|(every, reference)| Polled {
                every,
                reference,
                seen: loaded.pulled,
            }),
        };
        let reloading = tokio::spawn(reloads.run(hangup));
        let served = match lanes {
            Some(_) => {
                let (stopping, stopped) = tokio::sync::watch::channel(false);
                tokio::spawn(async move {
                    stop.wait().await;
                    let _ = stopping.send(true);
                });
                server.run_lanes(listeners, stopped).await
            }
            None => {
                // `bind` makes one socket at least.
                let listener =
                    tokio::net::TcpListener::from_std(listeners.remove(0)).into_diagnostic()?;
                server.run(listener, stop.wait()).await
            }
        };
        reloading.abort();
        let _ = admin_stop.send(());
        served.map_err(|e| miette!("{e:#}"))
    })?;
    Ok(ExitCode::SUCCESS)
}

/// What `/chain` and the `chain_info` metric say about the served chain.
fn chain_info(name: &str, server: &Server, bytes: &[u8]) -> pwchain_host::ChainInfo {
    pwchain_host::ChainInfo {
        name: name.to_string(),
        digest: server.digest(),
        record: pwchain_compose::link::record::read(bytes)
            .and_then(|r| serde_json::to_value(r).ok()),
    }
}

/// SIGTERM or Ctrl-C: the graceful stop.
struct Stop {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
}

impl Stop {
    fn listen() -> std::io::Result<Stop> {
        Ok(Stop {
            #[cfg(unix)]
            term: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?,
        })
    }

    async fn wait(mut self) {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        tokio::select! {
            _ = ctrl_c => {}
            _ = self.term.recv() => {}
        }
        #[cfg(not(unix))]
        let _ = ctrl_c.await;
    }
}

/// What swaps the served chain, one reload at a time: signals and file
/// changes that arrive during a reload are folded into the next one.
struct Reloads {
    server: Server,
    metrics: pwchain_host::Metrics,
    chain: PathBuf,
    resolve: pipeline::Options,
    watched: Option<Watched>,
    /// Read again on `SIGHUP`.
    tls: Option<pwchain_host::Tls>,
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
    async fn run(mut self, mut hangup: Hangup) {
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
            crate::warn(&composed.warnings);
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
struct Hangup {
    #[cfg(unix)]
    signal: Option<tokio::signal::unix::Signal>,
}

impl Hangup {
    fn listen() -> Hangup {
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
