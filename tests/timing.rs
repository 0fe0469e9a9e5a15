//! `[chain] stage-timing = true`: a built-in timer stands in front of every
//! stage. pwchain serve turns the times into `pwchain_stage_seconds` and
//! `/chain`'s table, and under load each stage's own share is where the
//! time was spent; the same composite answers unchanged in `wasmtime
//! serve` and Node, where each request's times are a line on stderr.

use crate::admin::sample;
use crate::other_hosts::Host;
use crate::support::{
    Served, Workspace, compose_fails, legacy_plugins, plugins, request, run, stderr,
};
use std::net::SocketAddr;

/// Five plugins in front of echo: a middleware, `slow` (which waits 30 ms
/// on `/slow`), a matched middleware, and a fused run of two header
/// filters.
const TIMED: &str = r#"
[chain]
name = "timed"
stage-timing = true

[[plugin]]
name = "first"
path = "{plugins}/add-header.wasm"
config = { "request.x-first" = "in", "response.x-first" = "out" }

[[plugin]]
name = "slow"
path = "{plugins}/fault.wasm"

[[plugin]]
name = "api"
path = "{plugins}/add-header.wasm"
config = { "request.x-api" = "in" }
match = { path-prefix = ["/api"] }

[[plugin]]
name = "f1"
path = "{plugins}/add-header-filter.wasm"
config = { "request.x-f1" = "in" }

[[plugin]]
name = "f2"
path = "{plugins}/add-header-filter.wasm"
config = { "request.x-f2" = "in" }

[origin]
path = "{plugins}/echo.wasm"
"#;

/// The timed stages, in request order, as the record and the metrics name
/// them.
const STAGES: [&str; 5] = ["first", "slow", "api", "f1+f2", "origin"];

/// `pwchain_stage_seconds_{what}` of `stage` in a scrape. The `chain`
/// label is the served chain's name, as in every series of `pwchain serve`:
/// for a composite, its file's stem.
fn series(text: &str, what: &str, stage: &str) -> f64 {
    let name = format!("pwchain_stage_seconds_{what}{{chain=\"chain\",stage=\"{stage}\"}}");
    sample(text, &name).unwrap_or_else(|| panic!("no {name} in:\n{text}"))
}

/// Sends `count` requests for `path` from `clients` threads at once; each
/// must pass every plugin.
fn load(addr: SocketAddr, path: &'static str, clients: usize, count: usize) {
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            std::thread::spawn(move || {
                for _ in 0..count / clients {
                    let answer = request(addr, "GET", path, &[], b"");
                    assert_eq!(answer.status, 200, "{}", answer.text());
                    assert_eq!(answer.header("x-first"), Some("out"));
                    assert!(answer.text().contains("x-f2: in"), "{}", answer.text());
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("a client failed");
    }
}

#[test]
fn pwchain_serve_shows_each_stage_s_latency_under_load() {
    plugins();
    let ws = Workspace::new();
    let composite = ws.compose(TIMED);
    let inspected = run(&["inspect", "--json", composite.to_str().unwrap()]);
    let report: serde_json::Value = serde_json::from_slice(&inspected.stdout).unwrap();
    assert_eq!(report["chain"]["stage_timing"], serde_json::json!(STAGES));
    let text = run(&["inspect", composite.to_str().unwrap()]);
    assert!(
        String::from_utf8_lossy(&text.stdout)
            .contains("stage timing   first, slow, api, f1+f2, origin;"),
        "{}",
        String::from_utf8_lossy(&text.stdout)
    );

    let graph = run(&["inspect", "--graph", composite.to_str().unwrap()]);
    assert!(
        String::from_utf8_lossy(&graph.stdout)
            .contains("each of first, slow, api, f1+f2, origin timed by a built-in timer"),
        "{}",
        String::from_utf8_lossy(&graph.stdout)
    );

    let served = Served::with_args(&composite, &["--admin", "127.0.0.1:0"]);
    let admin: SocketAddr = served.admin();
    load(served.addr, "/", 8, 160);
    load(served.addr, "/api/x", 8, 40);
    let before = request(admin, "GET", "/metrics", &[], b"").text();
    for stage in STAGES {
        // Every request reaches every stage: `api`'s timer stands in front
        // of its route match.
        assert_eq!(series(&before, "count", stage), 200.0, "{stage}");
    }
    // What a stage and those after it take includes what those after it
    // take.
    let sums: Vec<f64> = STAGES.iter().map(|s| series(&before, "sum", s)).collect();
    assert!(sums.windows(2).all(|w| w[0] >= w[1]), "{sums:?}");

    // Ten requests that wait 30 ms in `slow`: the time lands in `slow`'s
    // own share, not in the stages after it.
    load(served.addr, "/slow", 2, 10);
    let after = request(admin, "GET", "/metrics", &[], b"").text();
    let added = |stage: &str| series(&after, "sum", stage) - series(&before, "sum", stage);
    assert!(added("first") >= 0.3, "{}", added("first"));
    assert!(added("slow") >= 0.3, "{}", added("slow"));
    assert!(added("api") < 0.1, "{}", added("api"));
    assert_eq!(series(&after, "count", "origin"), 210.0);

    let chain = request(admin, "GET", "/chain", &[], b"");
    let chain: serde_json::Value = serde_json::from_slice(&chain.body).expect("JSON");
    let rows = chain["stages"].as_array().expect("the stage table");
    let names: Vec<&str> = rows.iter().filter_map(|r| r["stage"].as_str()).collect();
    assert_eq!(names, STAGES);
    let own = |i: usize| rows[i]["own_seconds"].as_f64().unwrap();
    // `slow` spent 10 × 30 ms of 210 requests: about 1.4 ms each on
    // average, far more than any other stage's own share.
    assert!(own(1) > 0.001, "{chain}");
    assert!(
        (0..5).filter(|i| *i != 1).all(|i| own(i) < own(1)),
        "{chain}"
    );
    assert!(rows.iter().all(|r| r["requests"] == 210), "{chain}");
    // The timing lines went to the histograms, not to the log.
    assert_eq!(
        served.log_count("pwchain-stage-timing"),
        0,
        "{}",
        served.log.lock().unwrap().join("\n")
    );
}

#[test]
fn a_timed_chain_answers_in_other_hosts_and_logs_its_times() {
    plugins();
    let ws = Workspace::new();
    // `slow` as a plain pass-through: jco's preview3-shim (0.7) does not
    // provide `wasi:clocks/monotonic-clock.wait-for`, which `fault` imports.
    let composite = ws.compose(&TIMED.replace("fault.wasm", "pass.wasm"));
    for host in [Host::Wasmtime, Host::Node] {
        let Some(served) = host.serve(&composite, &[]) else {
            continue;
        };
        let answer = served.request("GET", "/api/x", &[], b"");
        assert_eq!(
            answer.status,
            200,
            "{host:?}: {}\n{}",
            answer.text(),
            served.log.lock().unwrap().join("\n")
        );
        assert_eq!(answer.header("x-first"), Some("out"), "{host:?}");
        assert!(answer.text().contains("x-api: in"), "{host:?}");
        let line = served
            .log_line("pwchain-stage-timing chain=timed ")
            .unwrap_or_else(|| {
                panic!(
                    "{host:?} logged no timing line:\n{}",
                    served.log.lock().unwrap().join("\n")
                )
            });
        let fields: Vec<&str> = line
            .split(' ')
            .skip_while(|f| !f.starts_with("chain="))
            .skip(1)
            .collect();
        let names: Vec<&str> = fields
            .iter()
            .filter_map(|f| f.split_once('='))
            .map(|(n, _)| n)
            .collect();
        assert_eq!(names, STAGES, "{host:?}: {line}");
        let nanos: Vec<u64> = fields
            .iter()
            .filter_map(|f| f.split_once('=')?.1.trim().parse().ok())
            .collect();
        assert!(nanos.windows(2).all(|w| w[0] >= w[1]), "{host:?}: {line}");
    }
}

#[test]
fn emitted_wac_keeps_the_timers() {
    plugins();
    let ws = Workspace::new();
    let manifest = ws.manifest(TIMED);
    let wac = ws.path("timed.wac");
    let emitted = crate::compose::emit_wac(&manifest, &wac);
    assert!(emitted.status.success(), "{}", stderr(&emitted));
    let text = std::fs::read_to_string(&wac).unwrap();
    assert!(
        text.contains("let stage-timing = new pwchain:stage-timing-sink {"),
        "{text}"
    );
    assert!(
        text.contains("let first-timer = new pwchain:stage-timer {"),
        "{text}"
    );
    let out = ws.path("from-wac.wasm");
    let composed = crate::compose::compose_as_commented(&wac, &out);
    assert!(composed.status.success(), "{}", stderr(&composed));
    // A composite from a WAC document carries no chain record, so pwchain
    // serve logs its timing lines as the chain's stderr, as other hosts do.
    let served = Served::start(&out, &[]);
    let answer = served.request("GET", "/api/x", &[], b"");
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert!(
        served
            .log_line("pwchain-stage-timing chain=timed first=")
            .is_some(),
        "{}",
        served.log.lock().unwrap().join("\n")
    );
}

#[test]
fn stage_timing_that_is_not_a_boolean_or_a_clashing_name_is_refused() {
    let ws = Workspace::new();
    compose_fails(
        &ws,
        "[chain]\nstage-timing = \"yes\"\n\n[[plugin]]\nname = \"echo\"\npath = \"{plugins}/echo.wasm\"\n",
        &["chain.toml:2:16", "invalid type", "a boolean"],
    );
    // A plugin named like the timer pwchain adds for another plugin.
    let clash = "[chain]\nstage-timing = true\n\n\
        [[plugin]]\nname = \"a\"\npath = \"{plugins}/add-header.wasm\"\n\n\
        [[plugin]]\nname = \"a-timer\"\npath = \"{plugins}/add-header.wasm\"\n\n\
        [origin]\npath = \"{plugins}/echo.wasm\"\n";
    let expected = [
        "two parts of the chain would both be named `a-timer",
        "rename the plugin",
    ];
    compose_fails(&ws, clash, &expected);
    let wac = ws.path("clash.wac");
    let emitted = crate::compose::emit_wac(&ws.manifest(clash), &wac);
    assert_eq!(emitted.status.code(), Some(1), "{}", stderr(&emitted));
    for piece in expected {
        assert!(stderr(&emitted).contains(piece), "{}", stderr(&emitted));
    }
    assert!(!wac.exists());
    // A plugin named like the wrapped filters' shared data.
    legacy_plugins();
    compose_fails(
        &ws,
        "[[plugin]]\nname = \"legacy-shared\"\npath = \"{plugins}/add-header.wasm\"\n\n\
         [[plugin]]\nname = \"f\"\nproxy-wasm = \"{legacy}/header-filter.unknown.wasm\"\n\n\
         [origin]\npath = \"{plugins}/echo.wasm\"\n",
        &["two parts of the chain would both be named `legacy-shared`"],
    );
}
