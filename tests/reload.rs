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
    let admin: std::net::SocketAddr = served.admin();
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

/// A fleet: three replicas follow one channel tag (`:stable`, `--poll
/// 1`), each with its own cache, as on three machines, behind a client
/// that spreads its requests over them. A new version published with
/// `--tag stable` is served by every replica within the poll interval and
/// a compile, with no failed request; each replica's `/metrics` counts the
/// reload. Prints how long the rollout took.
#[test]
fn a_fleet_follows_one_registry_tag() {
    let registry = TestRegistry::start();
    let ws = Workspace::new();
    let reference = registry.reference("acme/fleet:stable");
    // Both builds composed first: the clock below starts at the push.
    let builds = [1, 2].map(|v| ws.compose_as(&chain(v), &format!("v{v}.wasm")));
    let publish = |version: usize| {
        let at = registry.reference(&format!("acme/fleet:1.0.{version}"));
        let build = builds[version - 1].to_str().unwrap();
        let args = ["publish", build, &at, "--tag", "stable"];
        let published = run_in(&ws.path("publisher"), &args);
        assert!(published.status.success(), "{}", stderr(&published));
    };
    publish(1);
    let replicas: Vec<(Served, std::net::SocketAddr)> = (0..3)
        .map(|i| {
            let mut command = pwchain();
            command
                .env("PWCHAIN_CACHE_DIR", ws.path(&format!("replica{i}")))
                .args(["serve", &reference, "--addr", "127.0.0.1:0"])
                .args(["--poll", "1", "--admin", "127.0.0.1:0"]);
            let served = Served::spawn(command).expect("pwchain serve");
            let admin = served.admin();
            until_version(&served, 1);
            (served, admin)
        })
        .collect();
    let addrs: Vec<std::net::SocketAddr> = replicas.iter().map(|(s, _)| s.addr).collect();

    // One client, many connections, spread over the replicas in turn.
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let clients: Vec<_> = (0..6)
        .map(|c| {
            let (stop, addrs) = (stop.clone(), addrs.clone());
            std::thread::spawn(move || {
                let mut seen = Vec::new();
                let mut turn = c;
                while !stop.load(Ordering::Relaxed) {
                    let replica = turn % addrs.len();
                    turn += 1;
                    let answer = request(addrs[replica], "GET", "/", &[], b"");
                    let version = answer.header("x-version").unwrap_or("").to_string();
                    seen.push((replica, answer.status, version, started.elapsed()));
                }
                seen
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let published_at = started.elapsed();
    publish(2);
    for (served, _) in &replicas {
        until_version(served, 2);
    }
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    let seen: Vec<_> = clients
        .into_iter()
        .flat_map(|c| c.join().expect("client"))
        .collect();

    let failed = seen.iter().filter(|(_, status, ..)| *status != 200).count();
    assert_eq!(failed, 0, "{failed} of {} requests failed", seen.len());
    let mut report = Vec::new();
    for replica in 0..3 {
        let first_new = seen
            .iter()
            .filter(|(r, _, version, _)| *r == replica && version == "2")
            .map(|(.., at)| *at)
            .min()
            .expect("the replica served the new build under load");
        report.push((first_new - published_at).as_secs_f64());
    }
    let slowest = report.iter().cloned().fold(0.0, f64::max);
    eprintln!(
        "fleet rollout: {} requests over 3 replicas, none failed; the new build served by each {} s after its push began (poll interval 1 s), all within {slowest:.2} s",
        seen.len(),
        report
            .iter()
            .map(|s| format!("{s:.2}"))
            .collect::<Vec<_>>()
            .join(", "),
    );
    // The poll interval, a pull and a compile, with room for a busy machine.
    assert!(slowest < 20.0, "{report:?}");
    for (served, admin) in &replicas {
        let metrics = request(*admin, "GET", "/metrics", &[], b"").text();
        assert!(
            metrics.lines().any(|l| l == "pwchain_reloads_total 1"),
            "{metrics}"
        );
        assert!(served.log_line("the registry tag moved").is_some());
    }
}
