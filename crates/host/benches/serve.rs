//! What a chain costs in `pwchain serve`: the bare `echo` service (chain0)
//! against the same service behind 10 pass-through plugins (chain10) and 10
//! header-rewriting ones, lifted async and sync (headers10, headers10sync),
//! and 10 header-rewriting ones with a `match` that every request meets
//! (matched10) or none does (skipped10), and headers10 composed with
//! `[chain] stage-timing = true` (timed10),
//! composed by pwchain and served in-process, loaded over loopback by
//! keep-alive HTTP/1.1 clients. Prints requests/s, p50 and p99 for each and
//! the ratios, all measured in this one run. A second part skips the
//! sockets: the same servers are called in-process, which isolates what a
//! hop costs inside wasmtime from what HTTP and the load generator cost.
//!
//! `cargo bench -p pwchain-host --bench serve [-- SECONDS CONNECTIONS]`

mod common;
#[path = "common/load.rs"]
mod load;

use common::{built, chain_of, compose, in_process};
use load::{Figures, load};
use pwchain_compose::route::RouteMatch;
use pwchain_compose::{Stage, link::providers};
use pwchain_host::{ServeOptions, Server};
use std::path::Path;

/// Wraps the core module `wat` as a `wasi:http/middleware` component.
fn middleware_component(wat: &str) -> Vec<u8> {
    let (resolve, http) = providers::wasi_resolve().expect("WASI WIT");
    providers::encode(resolve, http, "middleware", wat, "a pass-through").expect("component")
}

/// A pass-through whose `handle` is lifted and its next hop lowered
/// synchronously (the canonical ABI allows it for `async` functions as long
/// as nothing blocks, as with `echo` behind it): what a hop costs without
/// wasmtime's async task machinery.
fn sync_pass() -> Vec<u8> {
    middleware_component(
        r#"(module
          (import "wasi:http/handler@0.3.2" "handle" (func $next (param i32 i32)))
          (memory (export "memory") 1)
          (global $heap (mut i32) (i32.const 1024))
          ;; Room for an error-code's strings, if the next hop fails.
          (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32)
            (local $at i32)
            (local.set $at (i32.and (i32.add (global.get $heap) (i32.const 7)) (i32.const -8)))
            (global.set $heap (i32.add (local.get $at) (local.get 3)))
            (if (i32.gt_u (global.get $heap) (i32.const 65536)) (then unreachable))
            (local.get $at))
          (func (export "wasi:http/handler@0.3.2#handle") (param $request i32) (result i32)
            (global.set $heap (i32.const 1024))
            (call $next (local.get $request) (i32.const 64))
            (i32.const 64)))"#,
    )
}

/// The smallest async pass-through: `handle` async-lifted (callback ABI),
/// the next hop async-lowered, the answer handed back with `task.return`;
/// no guest runtime such as wit-bindgen's. It traps if the next hop fails
/// (the bench's never does). Each task keeps its result slot (one of 64)
/// in its context.
fn async_pass() -> Vec<u8> {
    use wit_parser::abi::{FlatTypes, WasmType};
    let (resolve, _) = providers::wasi_resolve().expect("WASI WIT");
    let handle = providers::http_function(&resolve, "handler", "handle").expect("handler.handle");
    let mut storage = [WasmType::I32; wit_parser::Resolve::MAX_FLAT_PARAMS];
    let mut flat = FlatTypes::new(&mut storage);
    assert!(resolve.push_flat(handle.result.as_ref().expect("a result"), &mut flat));
    let flat = flat.to_vec();
    let core = |t: &WasmType| match t {
        WasmType::I64 | WasmType::PointerOrI64 => "i64",
        WasmType::F32 => "f32",
        WasmType::F64 => "f64",
        _ => "i32",
    };
    let params: Vec<&str> = flat.iter().map(core).collect();
    // task.return(ok(response)): tag 0, the handle, zeros for the rest.
    let args: String = params
        .iter()
        .enumerate()
        .map(|(i, t)| match i {
            1 => "(i32.load offset=8 (local.get $slot))".to_string(),
            _ => format!("({t}.const 0)"),
        })
        .collect::<Vec<_>>()
        .join(" ");
    middleware_component(&format!(
        r#"(module
          (import "wasi:http/handler@0.3.2" "[async-lower]handle" (func $next (param i32 i32) (result i32)))
          (import "[export]wasi:http/handler@0.3.2" "[task-return]handle" (func $return (param {params})))
          (import "$root" "[waitable-set-new]" (func $set_new (result i32)))
          (import "$root" "[waitable-join]" (func $join (param i32 i32)))
          (import "$root" "[waitable-set-drop]" (func $set_drop (param i32)))
          (import "$root" "[subtask-drop]" (func $subtask_drop (param i32)))
          (import "$root" "[context-get-0]" (func $context (result i32)))
          (import "$root" "[context-set-0]" (func $set_context (param i32)))
          (memory (export "memory") 1)
          ;; Result slots of 64 bytes from 4096; a stack of free ones at 0.
          (global $free (mut i32) (i32.const 64))
          (func $start
            (local $i i32)
            (loop $fill
              (i32.store (i32.shl (local.get $i) (i32.const 2))
                (i32.add (i32.const 4096) (i32.shl (local.get $i) (i32.const 6))))
              (local.set $i (i32.add (local.get $i) (i32.const 1)))
              (br_if $fill (i32.lt_u (local.get $i) (i32.const 64)))))
          (start $start)
          (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32) unreachable)
          (func $finish (param $slot i32) (result i32)
            (if (i32.load8_u (local.get $slot)) (then unreachable))
            (call $return {args})
            (i32.store (i32.shl (global.get $free) (i32.const 2)) (local.get $slot))
            (global.set $free (i32.add (global.get $free) (i32.const 1)))
            (i32.const 0))
          (func (export "[async-lift]wasi:http/handler@0.3.2#handle") (param $request i32) (result i32)
            (local $slot i32) (local $status i32) (local $set i32)
            (global.set $free (i32.sub (global.get $free) (i32.const 1)))
            (local.set $slot (i32.load (i32.shl (global.get $free) (i32.const 2))))
            (local.set $status (call $next (local.get $request) (local.get $slot)))
            ;; State 2: returned at once.
            (if (i32.eq (i32.and (local.get $status) (i32.const 15)) (i32.const 2))
              (then (return (call $finish (local.get $slot)))))
            (call $set_context (local.get $slot))
            (local.set $set (call $set_new))
            (call $join (i32.shr_u (local.get $status) (i32.const 4)) (local.get $set))
            ;; Wait on the set.
            (i32.or (i32.const 2) (i32.shl (local.get $set) (i32.const 4))))
          (func (export "[callback][async-lift]wasi:http/handler@0.3.2#handle")
            (param $event i32) (param $waitable i32) (param $state i32) (result i32)
            ;; Event 1: a subtask's state changed; 2: it returned.
            (if (i32.ne (local.get $event) (i32.const 1)) (then unreachable))
            (if (i32.ne (local.get $state) (i32.const 2)) (then unreachable))
            (call $subtask_drop (local.get $waitable))
            (call $finish (call $context))))"#,
        params = params.join(" ")
    ))
}

/// Which plugin a chain repeats.
#[derive(Clone, Copy)]
enum Pass {
    /// `plugins/fixtures/pass`, Rust with wit-bindgen's async runtime.
    WitBindgen,
    /// [`async_pass`].
    MinimalAsync,
    /// [`sync_pass`].
    Sync,
    /// `plugins/examples/add-header`: rebuilds the request and the response with a
    /// header each, async-lifted (wit-bindgen).
    Headers,
    /// `plugins/examples/add-header-sync`: the same, lifted and lowered sync.
    HeadersSync,
    /// `add-header` with a `match` every request meets: the plugin's cost
    /// and the route match's.
    HeadersMatched,
    /// `add-header` with a `match` no request meets: what a plugin that
    /// does not apply costs.
    HeadersSkipped,
    /// `add-header`, the chain composed with stage timing: a timer in front
    /// of every stage (the echo service included).
    HeadersTimed,
}

/// This process's CPU time so far, user and system (Linux: from
/// `/proc/self/stat`, in clock ticks of 10 ms), or `None` elsewhere: time
/// in the kernel (page faults, mapping memory) tells instantiation and
/// memory growth apart from the chain's own work.
fn cpu_times() -> Option<(std::time::Duration, std::time::Duration)> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The fields after the command name (which may hold spaces), from the
    // third on: utime and stime, the 14th and 15th, are the 12th and 13th.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = |at: usize| -> Option<std::time::Duration> {
        let ticks: u64 = fields.get(at)?.parse().ok()?;
        Some(std::time::Duration::from_millis(ticks * 10))
    };
    Some((ticks(11)?, ticks(12)?))
}

fn chain(dir: &Path, passes: usize, pass: Pass) -> Vec<u8> {
    let stage = |name: String, file: &str| {
        let path = dir.join(file);
        Stage::read(&name, &path, path.display().to_string()).expect("read plugin")
    };
    let mut plugins: Vec<Stage> = (0..passes)
        .map(|i| {
            let generated = match pass {
                Pass::WitBindgen => return stage(format!("pass{i}"), "pass.wasm"),
                Pass::Headers | Pass::HeadersTimed => {
                    return stage(format!("headers{i}"), "add-header.wasm");
                }
                Pass::HeadersSync => {
                    return stage(format!("headers{i}"), "add-header-sync.wasm");
                }
                Pass::HeadersMatched | Pass::HeadersSkipped => {
                    let mut routed = stage(format!("headers{i}"), "add-header.wasm");
                    let prefix = match pass {
                        Pass::HeadersMatched => "/bench",
                        _ => "/elsewhere",
                    };
                    routed.route = Some(RouteMatch {
                        path_prefix: vec![prefix.into()],
                        ..RouteMatch::default()
                    });
                    return routed;
                }
                Pass::MinimalAsync => async_pass(),
                Pass::Sync => sync_pass(),
            };
            Stage::from_bytes(
                &format!("pass{i}"),
                generated,
                "generated pass-through".into(),
                Path::new("generated"),
            )
            .expect("generated pass-through")
        })
        .collect();
    plugins.push(stage("echo".into(), "echo.wasm"));
    let name = format!("chain{passes}");
    match pass {
        Pass::HeadersTimed => {
            let mut chain = chain_of(&name, plugins);
            chain.stage_timing = true;
            chain.compose().expect("compose").bytes
        }
        _ => compose(&name, plugins),
    }
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let seconds: f64 = args.first().and_then(|s| s.parse().ok()).unwrap_or(4.0);
    let connections: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(16);
    let dir = built("plugins/build.sh", "plugins/dist");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut best: Vec<(&str, Figures)> = Vec::new();
    runtime.block_on(async {
        let mut servers = Vec::new();
        for (label, passes, pass) in [
            ("chain0", 0, Pass::WitBindgen),
            ("chain10", 10, Pass::WitBindgen),
            ("chain10async", 10, Pass::MinimalAsync),
            ("chain10sync", 10, Pass::Sync),
            ("headers10", 10, Pass::Headers),
            ("headers10sync", 10, Pass::HeadersSync),
            ("matched10", 10, Pass::HeadersMatched),
            ("skipped10", 10, Pass::HeadersSkipped),
            ("timed10", 10, Pass::HeadersTimed),
        ] {
            let component = chain(&dir, passes, pass);
            // A pool sized for this bench's load, not the default 256
            // requests: every server here stays up for the whole run, and
            // pools sized for the default run out of address space after a
            // few chains, which then allocate on demand and pay the kernel
            // for every instance made (which would be measured as the
            // chain's cost).
            let options = ServeOptions {
                max_requests: 2 * connections,
                ..ServeOptions::default()
            };
            let server = Server::new(&component, options).expect("server");
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let serving = server.clone();
            tokio::spawn(async move { serving.run(listener, std::future::pending()).await });
            load(addr, 0.5, connections).await; // warm up: instances, caches
            servers.push((label, addr, server));
        }
        // Alternate, twice, and keep each chain's best round: the machine is
        // shared, so the best round is the least disturbed one.
        for _round in 0..2 {
            for &(label, addr, _) in &servers {
                let figures = load(addr, seconds, connections).await;
                println!(
                    "{label:<12} {:>8.0} req/s  p50 {:>7.1} µs  p99 {:>7.1} µs  errors {}",
                    figures.rps(),
                    figures.p50.as_secs_f64() * 1e6,
                    figures.p99.as_secs_f64() * 1e6,
                    figures.errors
                );
                match best.iter_mut().find(|(l, _)| *l == label) {
                    Some((_, b)) if b.rps() >= figures.rps() => {}
                    Some(slot) => slot.1 = figures,
                    None => best.push((label, figures)),
                }
            }
        }
        // In-process: one request at a time gives the CPU cost per request,
        // so the difference over 10 hops is the cost of one hop.
        let mut serial = Vec::new();
        for (label, _, server) in &servers {
            let before = cpu_times();
            let rps = in_process(server, seconds / 2.0, 1, b"").await;
            let split = match (before, cpu_times()) {
                (Some((user, system)), Some((user_after, system_after))) => {
                    let requests = rps * seconds / 2.0;
                    format!(
                        "; CPU {:.1} µs user + {:.1} µs system each",
                        (user_after - user).as_secs_f64() * 1e6 / requests,
                        (system_after - system).as_secs_f64() * 1e6 / requests
                    )
                }
                _ => String::new(),
            };
            let concurrent = in_process(server, seconds / 2.0, connections, b"").await;
            println!(
                "{label:<12} in-process: {:>8.0} req/s one at a time ({:.1} µs each{split}), {:>8.0} req/s with {connections} at once",
                rps,
                1e6 / rps,
                concurrent
            );
            serial.push(rps);
        }
        for (i, kind) in [
            (1, "async (wit-bindgen)"),
            (2, "minimal async (hand-written)"),
            (3, "sync-lifted"),
            (4, "header-rewriting async (wit-bindgen)"),
            (5, "header-rewriting sync-lifted (wit-bindgen)"),
        ] {
            println!(
                "in-process: {}/chain0 {:.3}x; one {kind} pass-through hop costs {:.2} µs",
                servers[i].0,
                serial[i] / serial[0],
                (1e6 / serial[i] - 1e6 / serial[0]) / 10.0
            );
        }
        let hop = |i: usize| (1e6 / serial[i] - 1e6 / serial[0]) / 10.0;
        println!(
            "in-process: a header-rewriting hop costs {:.2} µs async and {:.2} µs sync-lifted: sync is {:.1}x cheaper",
            hop(4),
            hop(5),
            hop(4) / hop(5)
        );
        println!(
            "in-process: with `match`, a header-rewriting plugin costs {:.2} µs where it applies (the route match adds {:.2} µs) and {:.2} µs where it does not: {:.0} % of the plugin",
            hop(6),
            hop(6) - hop(4),
            hop(7),
            100.0 * hop(7) / hop(4)
        );
        // Eleven stages are timed: the ten plugins and echo.
        let timing = (1e6 / serial[8] - 1e6 / serial[4]) / 11.0;
        println!(
            "in-process: stage timing costs {timing:.2} µs per timed stage ({:.0} % of a header-rewriting hop); off, it adds nothing (no timer is composed in)",
            100.0 * timing / hop(4)
        );
    });
    let chain0 = &best[0].1;
    for (label, figures) in &best[1..] {
        println!(
            "{label}/chain0: throughput {:.3}x, p50 +{:.1} µs ({:.2} µs per plugin), p99 +{:.1} µs  ({connections} connections, {seconds} s rounds)",
            figures.rps() / chain0.rps(),
            (figures.p50.as_secs_f64() - chain0.p50.as_secs_f64()) * 1e6,
            (figures.p50.as_secs_f64() - chain0.p50.as_secs_f64()) * 1e6 / 10.0,
            (figures.p99.as_secs_f64() - chain0.p99.as_secs_f64()) * 1e6,
        );
    }
}
