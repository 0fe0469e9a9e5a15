//! `pwchain serve` swaps its chain while 64 clients keep it busy: on
//! `SIGHUP`, and with `--watch` when the manifest changes. No request
//! fails, responses switch to the new chain, and a broken chain is refused
//! while the old one keeps serving.

use crate::support::*;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The chain at version `version`: its `add-header` stamps responses with
/// `x-version`.
fn chain(version: u32) -> String {
    format!(
        r#"[chain]
name = "versioned"

[[plugin]]
name = "stamp"
path = "{{plugins}}/add-header.wasm"
config = {{ "response.x-version" = "{version}" }}

[origin]
path = "{{plugins}}/echo.wasm"
"#
    )
}

/// 64 clients sending requests one after another until stopped; each
/// records the status and `x-version` of every answer.
struct Load {
    stop: Arc<AtomicBool>,
    clients: Vec<std::thread::JoinHandle<Vec<(u16, String)>>>,
}

impl Load {
    fn start(addr: std::net::SocketAddr) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let clients = (0..64)
            .map(|_| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let mut seen = Vec::new();
                    while !stop.load(Ordering::Relaxed) {
                        let answer = request(addr, "GET", "/", &[], b"");
                        let version = answer.header("x-version").unwrap_or("").to_string();
                        seen.push((answer.status, version));
                    }
                    seen
                })
            })
            .collect();
        Load { stop, clients }
    }

    fn finish(self) -> Vec<(u16, String)> {
        self.stop.store(true, Ordering::Relaxed);
        self.clients
            .into_iter()
            .flat_map(|c| c.join().expect("client"))
            .collect()
    }
}

/// Waits until a request answers with `x-version: version`.
fn until_version(served: &Served, version: u32) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let answer = served.request("GET", "/", &[], b"");
        if answer.header("x-version") == Some(&version.to_string()) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "version {version} never served; log:\n{}",
            served.log.lock().unwrap().join("\n")
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Rewrites the manifest so that its modification time surely moves.
fn rewrite(ws: &Workspace, version: u32) {
    std::thread::sleep(Duration::from_millis(20));
    ws.manifest(&chain(version));
}

#[test]
fn chains_swap_under_load_without_a_failed_request() {
    let ws = Workspace::new();
    let manifest = ws.manifest(&chain(1));
    let served = Served::with_args(&manifest, &["--watch", "--admin", "127.0.0.1:0"]);
    until_version(&served, 1);
    let load = Load::start(served.addr);
    // Three swaps by file change, three by SIGHUP (the watcher sees the
    // file too, so SIGHUP comes first, before the watcher's next look, and
    // the two are folded into one reload or done one after the other).
    for version in 2..=4 {
        rewrite(&ws, version);
        until_version(&served, version);
    }
    for version in 5..=7 {
        rewrite(&ws, version);
        served.signal("HUP");
        until_version(&served, version);
    }
    // A broken chain is refused; version 7 keeps serving.
    ws.write("chain.toml", "[[plugin]\nname = \"broken\"\n");
    served.signal("HUP");
    let refused = served.log_line("refused, still serving");
    std::thread::sleep(Duration::from_millis(300));
    let seen = load.finish();
    assert!(refused.is_some(), "the broken chain was not refused");
    let refused = refused.unwrap_or_default();
    assert!(refused.contains("chain.toml"), "{refused}");
    let after = served.request("GET", "/", &[], b"");
    assert_eq!(after.status, 200);
    assert_eq!(after.header("x-version"), Some("7"));
    // Not one request failed, and the load saw the chain change.
    let failed: Vec<_> = seen.iter().filter(|(status, _)| *status != 200).collect();
    assert!(
        failed.is_empty(),
        "{} of {} failed",
        failed.len(),
        seen.len()
    );
    let versions: std::collections::BTreeSet<&str> =
        seen.iter().map(|(_, version)| version.as_str()).collect();
    assert!(versions.len() >= 5, "{versions:?}");
    let reloads = served.log_count("reloaded");
    assert!(reloads >= 6, "{reloads} reloads");
    // Every reload names the old and new digests.
    let line = served.log_line("reloaded").unwrap_or_default();
    assert_eq!(line.matches("sha256:").count(), 2, "{line}");
    // And is counted, as is the refused one.
    let admin: std::net::SocketAddr = served
        .log_line("admin endpoint at http://")
        .and_then(|line| {
            line.split("at http://")
                .nth(1)?
                .split('/')
                .next()?
                .parse()
                .ok()
        })
        .expect("the admin address");
    let metrics = request(admin, "GET", "/metrics", &[], b"").text();
    let count = |name: &str| {
        metrics
            .lines()
            .find_map(|line| line.strip_prefix(name)?.trim().parse::<f64>().ok())
    };
    assert_eq!(
        count("pwchain_reloads_total"),
        Some(reloads as f64),
        "{metrics}"
    );
    // The broken chain: refused once per attempt (SIGHUP, and the watcher
    // if it looked before the signal arrived).
    let refusals = served.log_count("refused, still serving");
    assert!(refusals >= 1);
    assert_eq!(
        count("pwchain_reload_failures_total"),
        Some(refusals as f64),
        "{metrics}"
    );
}

#[test]
fn a_registry_tag_that_moves_is_followed() {
    let registry = TestRegistry::start();
    let ws = Workspace::new();
    let cache = ws.path("cache");
    let reference = registry.reference("acme/edge:1.0.0");
    let publish = |version: u32| {
        let composite = ws.compose(&chain(version));
        let mut args = vec!["publish", composite.to_str().unwrap(), &reference];
        if version > 1 {
            args.push("--force");
        }
        let published = run_in(&cache, &args);
        assert!(published.status.success(), "{}", stderr(&published));
    };
    publish(1);
    let mut command = pwchain();
    command.env("PWCHAIN_CACHE_DIR", &cache).args([
        "serve",
        &reference,
        "--addr",
        "127.0.0.1:0",
        "--poll",
        "1",
    ]);
    let served = Served::spawn(command).expect("pwchain serve");
    until_version(&served, 1);
    let load = Load::start(served.addr);
    for version in 2..=3 {
        publish(version);
        until_version(&served, version);
    }
    let seen = load.finish();
    assert!(seen.iter().all(|(status, _)| *status == 200));
    let moved = served
        .log_line("the registry tag moved")
        .unwrap_or_default();
    assert!(moved.contains("reloaded"), "{moved}");

    // --poll follows a tag; a file has none.
    let refused = run(&["serve", "chain.wasm", "--poll", "5"]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        stderr(&refused).contains("--poll follows a registry tag"),
        "{}",
        stderr(&refused)
    );
}

#[test]
fn signals_during_a_reload_are_folded_into_one_more() {
    let ws = Workspace::new();
    let manifest = ws.manifest(&chain(1));
    let served = Served::with_args(&manifest, &[]);
    until_version(&served, 1);
    rewrite(&ws, 2);
    // Five SIGHUPs while the first reload composes and compiles: at most
    // one more reload follows it, and the chain is swapped whole.
    for _ in 0..5 {
        served.signal("HUP");
        std::thread::sleep(Duration::from_millis(5));
    }
    until_version(&served, 2);
    std::thread::sleep(Duration::from_secs(2));
    let reloads = served.log_count("reloaded");
    assert!(
        (1..=2).contains(&reloads),
        "{reloads} reloads for 5 signals"
    );
    assert_eq!(served.request("GET", "/", &[], b"").status, 200);
}
