//! Where a hop's instructions go: callgrind counts the instructions of one
//! request through `echo` alone and through 10 copies of each kind of hop in
//! front of it (a pass-through, `add-header` rebuilding the request and the
//! response with `plugins/lib/guest`'s helpers, `add-header-filter` doing
//! the same work as a header filter in one fused run, `add-header` with a
//! `match` no request meets (the route match skipping it), pass-throughs
//! composed with `[chain] stage-timing` (what a timed stage adds), and the
//! proxy-wasm `header-filter` wrapped by `pwchain wrap`, a driver each, and
//! wrapped by compose, two in one run sharing a driver), and splits the difference
//! per hop by where the code lives: the guest (JIT-compiled wasm, which
//! includes the fused adapters that lift and lower between two guests),
//! wasmtime's canonical ABI on the host side, wasmtime-wasi-http's resources,
//! the component-model async runtime, the allocator, and the rest.
//!
//! Instructions, not seconds: the counts repeat on a busy machine. Each
//! chain is served in-process (no sockets) in a child process run under
//! `valgrind --tool=callgrind`, collecting only inside the measured
//! requests, one at a time, after a warm-up; the composites are compiled
//! once outside valgrind and loaded from wasmtime's cache.
//!
//! `cargo bench -p pwchain-host --bench profile [-- REQUESTS]`

mod common;

use bytes::Bytes;
use common::{built, chain_of, compose, in_process};
use http_body_util::{BodyExt, Full};
use pwchain_compose::Stage;
use pwchain_compose::policy::Settings;
use pwchain_compose::proxy_wasm::{WrapOptions, wrap};
use pwchain_compose::route::RouteMatch;
use pwchain_host::{ServeOptions, Server};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Hops of each kind in front of `echo`.
const HOPS: usize = 10;
/// Wrapped hops: each brings four linear memories, and valgrind's address
/// space holds only so many of wasmtime's reservations.
const WRAPPED_HOPS: usize = 2;

/// Header filters in one fused run: each brings a pair (`header-seq`) and
/// its own memory, as many as valgrind's address space holds (the
/// per-filter cost is then read from this run against a run of one).
const FUSED_HOPS: usize = 4;
/// Skipped plugins: each brings four instances (the plugin, its store, the
/// route match and its store), as many as valgrind's address space holds.
const SKIPPED_HOPS: usize = 3;
/// Pass-through hops of the timed chain (`[chain] stage-timing`): each
/// stage, `echo` included, brings a timer and its store, and the chain a
/// sink and its store.
const TIMED_HOPS: usize = 3;
/// The timed chain's label; the one chain composed with stage timing.
const TIMED: &str = "pass-through, timed";
/// Seconds of requests before collecting: instances made, caches filled.
const WARM_UP: f64 = 2.0;

/// Where an instruction's function lives.
const CATEGORIES: [&str; 6] = [
    "guest (JIT wasm, adapters included)",
    "canonical ABI (host side)",
    "wasi-http resources",
    "async runtime (tasks, futures, streams)",
    "allocator",
    "other (hyper, tokio, wasmtime, pwchain)",
];

fn category(object: &str, function: &str) -> usize {
    let function = own_path(function);
    let any = |parts: &[&str]| parts.iter().any(|p| function.contains(p));
    if function.starts_with("0x") || object == "???" {
        0
    } else if object.contains("libc.so")
        && (any(&["malloc", "free", "realloc", "calloc", "memalign", "_int_"])
            || any(&["tcache", "unlink_chunk", "arena"]))
        || any(&["__rust_alloc", "__rust_dealloc", "__rust_realloc", "__rdl_"])
    {
        4
    } else if any(&["wasmtime_wasi_http", "wasmtime_wasi::", "resource_table"]) {
        2
    } else if any(&[
        "concurrent",
        "futures_and_streams",
        "wasmtime_fiber",
        "fiber::",
    ]) {
        3
    } else if any(&[
        "component::func",
        "typed::",
        "::values::",
        "ComponentType",
        "Lower",
        "Lift",
        "lower",
        "lift",
    ]) {
        1
    } else {
        5
    }
}

/// A function's name without its generic arguments: wasmtime 50's symbols
/// spell them out, so that `HostResource<…wasmtime_wasi_http::…>::lift_from_index`
/// would count as wasi-http where its code is the canonical ABI's. A `<`
/// after a name or `::` opens arguments; one that starts a qualified path
/// (`<Type as Trait>::f`) stays.
fn own_path(function: &str) -> String {
    let mut out = String::with_capacity(function.len());
    let mut depth = 0usize;
    let mut previous = ' ';
    for c in function.chars() {
        match c {
            '<' if depth > 0 || previous.is_alphanumeric() || matches!(previous, '_' | ':') => {
                depth += 1
            }
            '>' if depth > 0 && previous != '-' => depth -= 1,
            _ if depth > 0 => {}
            _ => out.push(c),
        }
        previous = c;
    }
    out
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    if let [flag, component, cache, requests] = &args[..]
        && flag == "--measure"
    {
        let requests = requests.parse().expect("a request count");
        measure_child(Path::new(component), Path::new(cache), requests);
        return;
    }
    let requests: usize = args.first().and_then(|s| s.parse().ok()).unwrap_or(50);
    if Command::new("valgrind").arg("--version").output().is_err() {
        println!(
            "skipped: valgrind is not installed (`apt-get install valgrind`); this bench counts instructions with callgrind"
        );
        return;
    }
    let dist = built("plugins/build.sh", "plugins/dist");
    let legacy = built("plugins/fixtures/legacy/build.sh", "plugins/dist/legacy");
    let read = |path: &Path| std::fs::read(path).expect("read a plugin");
    let stage = |name: String, bytes: Vec<u8>| {
        Stage::from_bytes(&name, bytes, name.clone(), Path::new("bench")).expect("a plugin")
    };
    let echo = stage("echo".into(), read(&dist.join("echo.wasm")));
    let module = read(&legacy.join("header-filter.unknown.wasm"));
    let wrapped = wrap("header-filter", &module, &WrapOptions::default()).expect("wrap");
    // As compose wraps it: with its parts, so that neighbours share a driver.
    let mut in_run = stage("in-run".into(), wrapped.bytes.clone());
    in_run.legacy = Some(wrapped.parts);
    let wrapped = wrapped.bytes;
    let mut add_header = stage("add-header".into(), read(&dist.join("add-header.wasm")));
    add_header.settings = Settings {
        config: Some(vec![
            ("request.x-legacy-request".into(), "legacy".into()),
            ("response.x-legacy-response".into(), "legacy".into()),
        ]),
        ..Settings::default()
    };
    let mut filter = stage(
        "add-header-filter".into(),
        read(&dist.join("add-header-filter.wasm")),
    );
    filter.settings = add_header.settings.clone();
    let pass = read(&dist.join("pass.wasm"));
    let hops = |count: usize, make: &dyn Fn(usize) -> Stage| -> Vec<Stage> {
        let mut plugins: Vec<Stage> = (0..count).map(make).collect();
        plugins.push(echo.clone());
        plugins
    };
    // `add-header` with a `match` no request meets: the route match's look
    // at the request and its call past the plugin.
    let mut skipped = add_header.clone();
    skipped.route = Some(RouteMatch {
        path_prefix: vec!["/elsewhere".into()],
        ..RouteMatch::default()
    });
    let chains: Vec<(&str, usize, Vec<Stage>)> = vec![
        ("echo", 0, vec![echo.clone()]),
        (
            "pass-through",
            HOPS,
            hops(HOPS, &|i| stage(format!("pass{i}"), pass.clone())),
        ),
        (
            "add-header",
            HOPS,
            hops(HOPS, &|i| {
                let mut s = add_header.clone();
                s.name = format!("headers{i}");
                s
            }),
        ),
        (
            "1 header filter",
            1,
            hops(1, &|i| {
                let mut s = filter.clone();
                s.name = format!("filter{i}");
                s
            }),
        ),
        (
            "fused header filters",
            FUSED_HOPS,
            hops(FUSED_HOPS, &|i| {
                let mut s = filter.clone();
                s.name = format!("filter{i}");
                s
            }),
        ),
        (
            "skipped (match)",
            SKIPPED_HOPS,
            hops(SKIPPED_HOPS, &|i| {
                let mut s = skipped.clone();
                s.name = format!("skipped{i}");
                s
            }),
        ),
        (
            TIMED,
            TIMED_HOPS,
            hops(TIMED_HOPS, &|i| stage(format!("pass{i}"), pass.clone())),
        ),
        (
            "wrapped header-filter",
            WRAPPED_HOPS,
            hops(WRAPPED_HOPS, &|i| {
                stage(format!("legacy{i}"), wrapped.clone())
            }),
        ),
        (
            "wrapped, one run",
            WRAPPED_HOPS,
            hops(WRAPPED_HOPS, &|i| {
                let mut s = in_run.clone();
                s.name = format!("legacy{i}");
                s
            }),
        ),
    ];

    let runtime = tokio::runtime::Runtime::new().expect("tokio");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let cache = dir.path().join("compiled");
    let mut counts: Vec<(&str, usize, [f64; 6], f64)> = Vec::new();
    for (label, hops, plugins) in chains {
        let component = dir.path().join(format!("{}.wasm", label.replace(' ', "-")));
        let bytes = match label {
            TIMED => {
                let mut chain = chain_of(label, plugins);
                chain.stage_timing = true;
                chain.compose().expect("compose").bytes
            }
            _ => compose(label, plugins),
        };
        std::fs::write(&component, bytes).expect("write the composite");
        // Compiled here, natively, so that the child only loads it.
        let bytes = std::fs::read(&component).expect("the composite");
        runtime.block_on(async { Server::new(&bytes, options(&cache)).expect("compile") });
        let out = dir
            .path()
            .join(format!("{}.callgrind", label.replace(' ', "-")));
        let log = out.with_extension("log");
        let status = Command::new("valgrind")
            .arg("--tool=callgrind")
            .arg("--toggle-collect=*measured*")
            .arg(format!("--callgrind-out-file={}", out.display()))
            .arg(std::env::current_exe().expect("this bench"))
            .args([
                "--measure".as_ref(),
                component.as_os_str(),
                cache.as_os_str(),
            ])
            .arg(requests.to_string())
            .stderr(std::fs::File::create(&log).expect("a log file"))
            .status()
            .expect("run valgrind");
        if !status.success() {
            let log = std::fs::read_to_string(&log).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(30).collect();
            panic!(
                "{label}: the measured child failed:\n{}",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        let (split, total) = self_costs(&out);
        let per_request = split.map(|n| n as f64 / requests as f64);
        println!(
            "{label:<22} {:>9.0} instructions a request",
            total as f64 / requests as f64
        );
        counts.push((label, hops, per_request, total as f64 / requests as f64));
    }

    let (_, _, base, base_total) = counts[0];
    println!();
    println!(
        "instructions per hop (N hops in front of echo, less echo alone, divided by N; N = {HOPS}, skipped {SKIPPED_HOPS}, wrapped {WRAPPED_HOPS}, fused {FUSED_HOPS}, a run of one 1):"
    );
    print!("{:<42}", "");
    for (label, _, _, _) in &counts[1..] {
        print!("{label:>24}");
    }
    println!();
    for (i, name) in CATEGORIES.iter().enumerate() {
        print!("{name:<42}");
        for (_, hops, split, _) in &counts[1..] {
            print!("{:>24.0}", (split[i] - base[i]) / *hops as f64);
        }
        println!();
    }
    print!("{:<42}", "total");
    for (_, hops, _, total) in &counts[1..] {
        print!("{:>24.0}", (total - base_total) / *hops as f64);
    }
    println!();
    // The timed chain less as many untimed pass-through hops, over its
    // timed stages (the hops and echo).
    let (_, _, pass, pass_total) = counts[1];
    if let Some((_, hops, timed, timed_total)) = counts.iter().find(|c| c.0 == TIMED) {
        let stages = (*hops + 1) as f64;
        let per_stage = |timed: f64, base: f64, pass: f64| {
            (timed - base - *hops as f64 * (pass - base) / HOPS as f64) / stages
        };
        println!();
        println!("a timed stage ([chain] stage-timing) adds, per request:");
        for (i, name) in CATEGORIES.iter().enumerate() {
            println!("{name:<42}{:>12.0}", per_stage(timed[i], base[i], pass[i]));
        }
        println!(
            "{:<42}{:>12.0}",
            "total",
            per_stage(*timed_total, base_total, pass_total)
        );
    }
}

fn options(cache: &Path) -> ServeOptions {
    // Under valgrind a request runs some 50 times slower than natively.
    let slow = std::time::Duration::from_secs(3600);
    ServeOptions {
        compile_cache: Some(cache.to_path_buf()),
        request_timeout: slow,
        queue_timeout: slow,
        ..ServeOptions::default()
    }
}

/// Serves `requests` GETs one at a time inside [`measured`], after a
/// warm-up outside it.
fn measure_child(component: &Path, cache: &Path, requests: usize) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio");
    let bytes = std::fs::read(component).expect("the composite");
    let server = runtime.block_on(async { Server::new(&bytes, options(cache)).expect("server") });
    runtime.block_on(in_process(&server, WARM_UP, 1, b""));
    measured(&runtime, &server, requests);
}

/// The only code callgrind counts (`--toggle-collect=*measured*`).
#[inline(never)]
fn measured(runtime: &tokio::runtime::Runtime, server: &Server, requests: usize) {
    runtime.block_on(serve(server, requests));
}

async fn serve(server: &Server, requests: usize) {
    let peer: std::net::SocketAddr = ([127, 0, 0, 1], 1).into();
    for _ in 0..requests {
        let request = hyper::Request::get("http://bench/bench")
            .body(Full::new(Bytes::new()))
            .expect("a request");
        let response = server.handle(request, peer).await;
        assert_eq!(response.status(), 200);
        let _ = response.into_body().collect().await;
    }
}

/// Instructions by category (each function's own, not its callees'), and
/// their total, from a callgrind output file.
fn self_costs(file: &PathBuf) -> ([u64; 6], u64) {
    let text = std::fs::read_to_string(file).expect("callgrind output");
    // Names are compressed: `(id) name` the first time, `(id)` after.
    let mut names: BTreeMap<(char, String), String> = BTreeMap::new();
    let mut name = |kind: char, value: &str| -> String {
        let value = value.trim();
        match value.strip_prefix('(').and_then(|v| v.split_once(')')) {
            Some((id, rest)) if !rest.trim().is_empty() => {
                names.insert((kind, id.to_string()), rest.trim().to_string());
                rest.trim().to_string()
            }
            Some((id, _)) => names
                .get(&(kind, id.to_string()))
                .cloned()
                .unwrap_or_default(),
            None => value.to_string(),
        }
    };
    let (mut object, mut function) = (String::new(), String::new());
    let mut split = [0u64; 6];
    let mut after_call = false;
    for line in text.lines() {
        if let Some(v) = line.strip_prefix("ob=") {
            object = name('o', v);
        } else if let Some(v) = line.strip_prefix("fn=") {
            function = name('f', v);
        } else if let Some(v) = line.strip_prefix("cob=") {
            name('o', v);
        } else if let Some(v) = line.strip_prefix("cfn=") {
            name('f', v);
        } else if line.starts_with("calls=") {
            after_call = true;
        } else if line
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_digit() || c == '+' || c == '-' || c == '*')
        {
            // `position cost`; the line after `calls=` is the callee's
            // inclusive cost, which belongs to the callee.
            let cost: u64 = line
                .split_whitespace()
                .nth(1)
                .and_then(|c| c.parse().ok())
                .unwrap_or(0);
            if !after_call {
                split[category(&object, &function)] += cost;
            }
            after_call = false;
        }
    }
    let total = split.iter().sum();
    (split, total)
}
