//! `pwchain serve`: the flags become [`pwchain_host::ServeOptions`], then
//! the chain is loaded, served, and reloaded by
//! [`pwchain_host::serve::reload`] (on `SIGHUP`, `--watch`, `--poll`) until
//! SIGTERM or Ctrl-C.

use crate::args::ServeArgs;
use miette::{IntoDiagnostic, WrapErr, miette};
use pwchain_compose::pipeline;
use pwchain_host::Server;
use pwchain_host::serve::reload::{Hangup, Reloads, chain_info};
use pwchain_host::store::{ConnectError, StateStore};
use std::process::ExitCode;
use std::time::Duration;

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
    let outbound = match &args.upstream_ca {
        Some(path) => pwchain_host::outbound::Outbound::with_ca(path).map_err(|e| {
            miette!(
                help = "pass a PEM file of the CA certificates that sign the upstreams",
                "{e}"
            )
        })?,
        None => Default::default(),
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
        outbound: std::sync::Arc::new(outbound),
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
        if let Some(url) = &args.store {
            options.state = StateStore::connect(url, metrics.store_failures())
                .await
                .map_err(|e| {
                    let help = match e {
                        ConnectError::BadUrl { .. } => "write it as redis://HOST:PORT[/DB]",
                        ConnectError::Unreachable { .. } => {
                            "start Redis there, or leave out --store to keep state in this server's memory"
                        }
                    };
                    miette!(help = help, "{e}")
                })?;
            eprintln!("pwchain: keeping shared state in {}", options.state.location());
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
        let mut reloads = Reloads::new(
            server.clone(),
            metrics,
            args.chain.clone(),
            args.resolve.options(),
        )
        .with_tls(tls);
        if args.watch {
            reloads = reloads.watching(loaded.inputs);
        }
        if let Some((every, reference)) = poll {
            reloads = reloads.polling(every, reference, loaded.pulled);
        }
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
