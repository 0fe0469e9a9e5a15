//! Legacy proxy-wasm filters built with the `proxy-wasm` crate: what
//! `inspect` reads from them, and that `compose` points at `wrap`.

use crate::support::{
    Peer, Reply, Served, Workspace, compose_fails, legacy_plugins, plugin, request, run,
};
use std::time::{Duration, Instant};

#[test]
fn inspect_reads_a_proxy_wasm_module_of_either_target() {
    let dir = legacy_plugins();
    for (flavour, allocator, wasi) in [
        ("unknown", "malloc", false),
        ("wasip1", "proxy_on_memory_allocate", true),
    ] {
        let file = dir.join(format!("header-filter.{flavour}.wasm"));
        let output = run(&["inspect", "--json", file.to_str().unwrap()]);
        assert!(
            output.status.success(),
            "{}",
            crate::support::stderr(&output)
        );
        let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        let module = &report["proxy_wasm"];
        assert_eq!(module["abi"], "0.2.1");
        assert_eq!(module["allocator"], allocator, "{flavour}");
        assert_eq!(module["start"], "_initialize");
        assert_eq!(!module["wasi"].as_array().unwrap().is_empty(), wasi);
        let hostcalls: Vec<&str> = module["hostcalls"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h.as_str().unwrap())
            .collect();
        for needed in [
            "proxy_log",
            "proxy_send_local_response",
            "proxy_get_header_map_value",
        ] {
            assert!(hostcalls.contains(&needed), "{flavour}: {hostcalls:?}");
        }
        assert_eq!(report["support"]["proxy_log"], "supported");
        assert_eq!(report["support"]["proxy_http_call"], "supported");
        assert_eq!(report["support"]["proxy_grpc_call"], "unimplemented");
        let text = run(&["inspect", file.to_str().unwrap()]);
        let text = String::from_utf8_lossy(&text.stdout);
        assert!(text.contains("proxy-wasm module (ABI 0.2.1)"), "{text}");
        assert!(text.contains("supported by `pwchain wrap`"), "{text}");
        assert!(text.contains("answer Unimplemented, 0 unknown"), "{text}");
        assert!(
            text.contains("stubbed    proxy_call_foreign_function"),
            "{text}"
        );
    }
}

#[test]
fn compose_sends_a_proxy_wasm_module_to_wrap() {
    let file = legacy_plugins().join("header-filter.wasip1.wasm");
    compose_fails(
        &Workspace::new(),
        &format!(
            "[[plugin]]\nname = \"legacy\"\npath = \"{}\"\n\n[origin]\npath = \"{{plugins}}/echo.wasm\"\n",
            file.display()
        ),
        &[
            "chain.toml:3:8",
            "core WebAssembly module, not a component",
            "pwchain wrap",
        ],
    );
}

/// `pwchain wrap FLAVOUR-of-header-filter` into the workspace, checked.
fn wrapped(ws: &Workspace, module: &str, args: &[&str]) -> std::path::PathBuf {
    let input = legacy_plugins().join(module);
    let output = ws.path(&format!("{module}.component.wasm"));
    let mut all = vec![
        "wrap",
        input.to_str().unwrap(),
        "-o",
        output.to_str().unwrap(),
    ];
    all.extend_from_slice(args);
    let result = run(&all);
    assert!(
        result.status.success(),
        "{}",
        crate::support::stderr(&result)
    );
    output
}

#[test]
fn wrapped_filters_of_either_target_run_between_native_plugins() {
    for flavour in ["unknown", "wasip1"] {
        let ws = Workspace::new();
        let config = ws.write("config.txt", format!("tag-{flavour}\n"));
        let component = wrapped(
            &ws,
            &format!("header-filter.{flavour}.wasm"),
            &["--config", config.to_str().unwrap(), "--name", "hf"],
        );
        let info = run(&["inspect", "--json", component.to_str().unwrap()]);
        let info: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
        assert_eq!(info["role"], "middleware", "{info}");
        assert_eq!(info["entry"], "wasi:http/handler@0.3.2");
        let module = std::fs::read(legacy_plugins().join(format!("header-filter.{flavour}.wasm")));
        let digest = format!(
            "sha256:{}",
            hex::encode(<sha2::Sha256 as sha2::Digest>::digest(module.unwrap()))
        );
        assert_eq!(info["wrapped"]["module"], digest.as_str());
        assert_eq!(info["wrapped"]["abi"], "0.2.1");
        assert_eq!(info["wrapped"]["name"], "hf");

        let composite = ws.compose(&format!(
            r#"
[[plugin]]
name = "add-header"
path = "{{plugins}}/add-header.wasm"

[[plugin]]
name = "legacy"
path = "{}"

[[plugin]]
name = "rewrite-body"
path = "{{plugins}}/rewrite-body.wasm"

[origin]
path = "{{plugins}}/echo.wasm"
"#,
            component.display()
        ));
        let served = Served::start(&composite, &[]);
        let answer = served.request("GET", "/hello", &[], b"");
        assert_eq!(answer.status, 200, "{flavour}: {}", answer.text());
        let tag = format!("tag-{flavour}");
        // The echo shows the request the legacy filter passed on, upper-cased
        // by rewrite-body on its way back.
        let echoed = answer.text();
        assert!(
            echoed.contains(&format!("X-LEGACY-REQUEST: {}", tag.to_uppercase())),
            "{flavour}: {echoed}"
        );
        assert!(echoed.contains("X-CHAIN-HOP: ADD-HEADER"), "{echoed}");
        assert_eq!(answer.header("x-legacy-response"), Some(tag.as_str()));
        assert!(answer.header("x-served-by").is_some(), "add-header outside");

        // The SDK exports every body callback; bodies it lets through stream,
        // whatever their size.
        let large = vec![b'x'; 3 << 19];
        let answer = served.request("POST", "/large", &[], &large);
        assert_eq!(answer.status, 200, "{flavour}: {}", answer.status);
        assert!(answer.body.len() > large.len(), "{}", answer.body.len());

        let denied = served.request("GET", "/legacy-deny/x", &[], b"");
        assert_eq!(denied.status, 403, "{flavour}");
        assert_eq!(denied.header("x-legacy"), Some(tag.as_str()));
        assert_eq!(
            denied.text(),
            "denied by a proxy-wasm filter\n",
            "not passed on"
        );
        assert!(
            denied.header("x-served-by").is_some(),
            "add-header still sees it"
        );
        // Wrapped as `hf`, it logs under the name the chain gives it.
        assert!(
            served
                .log_line(&format!("legacy info: configured with tag {tag}"))
                .is_some()
        );
        assert!(
            served
                .log_line("legacy info: denying /legacy-deny/x")
                .is_some()
        );
        let log = served.log.lock().unwrap().join("\n");
        assert!(!log.contains("hf info:"), "{log}");
        // The record in the composite says so too.
        let info = run(&["inspect", "--json", composite.to_str().unwrap()]);
        let info: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
        assert_eq!(info["chain"]["plugins"][1]["name"], "legacy");
    }
}

const PROBE_CHAIN: &str = r#"
[[plugin]]
name = "probe"
proxy-wasm = "{legacy}/abi-probe.FLAVOUR.wasm"
configuration = "upstream=UPSTREAM\ntag=probe-tag"
vm-configuration = "vm-settings"

[origin]
path = "{plugins}/echo.wasm"
"#;

#[test]
fn a_chain_names_a_proxy_wasm_module_and_its_abi_works() {
    let upstream = Peer::start("forty-two\n");
    for flavour in ["unknown", "wasip1"] {
        let ws = Workspace::new();
        let composite = ws.compose(
            &PROBE_CHAIN
                .replace("FLAVOUR", flavour)
                .replace("UPSTREAM", &upstream.addr.to_string()),
        );
        let served = Served::start(&composite, &[]);
        let first = served.request(
            "GET",
            "/hello?x=1",
            &[("x-replace-me", "a"), ("x-remove-me", "b")],
            b"",
        );
        assert_eq!(first.status, 200, "{flavour}: {}", first.text());
        let echoed = first.text();
        for line in [
            "x-probe-method: GET",
            "x-probe-path: /hello?x=1",
            &format!("x-probe-authority: {}", served.addr),
            "x-probe-scheme: http",
            "x-probe-request-path: /hello?x=1",
            "x-probe-request-method: GET",
            "x-probe-request-url_path: /hello",
            "x-probe-no-such-thing: <none>",
            "x-replace-me: replaced",
        ] {
            assert!(echoed.contains(line), "{flavour}: {line:?} in {echoed}");
        }
        assert!(!echoed.contains("x-remove-me"), "{echoed}");
        assert!(
            !echoed.contains("x-probe-request-headers-bytes: 0"),
            "request.headers is a map"
        );
        assert!(echoed.ends_with("-- seen by probe-tag\n"), "{echoed}");
        assert_eq!(first.header("x-probe-metric"), Some("1"));
        assert_eq!(first.header("x-probe-hits"), Some("1"));
        assert_eq!(first.header("x-probe-upstream-status"), Some("200"));
        assert_eq!(first.header("x-probe-log-level"), Some("2"), "info");
        assert_eq!(first.header("x-probe-gauge"), Some("7"));
        let pairs: usize = first.header("x-probe-pairs").unwrap().parse().unwrap();
        assert!(pairs >= 8, "{:?}", first.headers);
        assert!(
            served
                .log_line("probe info: vm started with \"vm-settings\"")
                .is_some()
        );
        assert!(
            served
                .log_line("probe info: configured: upstream")
                .is_some()
        );
        assert!(served.log_line("probe info: dequeued /hello?x=1").is_some());

        // A paused body, rewritten once complete, with content-length fixed.
        let posted = served.request("POST", "/post", &[], b"ping, ping and ping");
        let echoed = posted.text();
        assert!(echoed.contains("PONG, PONG and PONG"), "{echoed}");
        assert!(echoed.contains("content-length: 19"), "{echoed}");
        assert_eq!(posted.header("x-probe-metric"), Some("2"), "per instance");

        // proxy_http_call: the request waits for the answer, then goes on.
        let called = served.request("GET", "/call", &[], b"");
        assert!(
            called.text().contains("x-call-answer: 200 forty-two"),
            "{}",
            called.text()
        );
        let side = upstream.next().expect("the side call arrived");
        assert!(side.request_line.starts_with("GET /answer"), "{side:?}");
        assert_eq!(side.header("x-from"), Some("probe"));

        std::thread::sleep(std::time::Duration::from_millis(20));
        let ticked = served.request("GET", "/tick", &[], b"");
        let ticks: u32 = ticked.header("x-probe-ticks").unwrap().parse().unwrap();
        assert!(ticks >= 1, "ticks run as requests arrive");

        // Request trailers reach the plugin.
        let raw = format!(
            "POST /trailers HTTP/1.1\r\nhost: {}\r\nconnection: close\r\ntransfer-encoding: chunked\r\ntrailer: x-checksum\r\n\r\n5\r\nhello\r\n0\r\nx-checksum: abc123\r\n\r\n",
            served.addr
        );
        let trailed = crate::support::exchange(served.addr, raw.as_bytes());
        assert_eq!(trailed.status, 200, "{}", trailed.text());
        assert_eq!(
            trailed.header("x-probe-request-trailer"),
            Some("abc123"),
            "{flavour}: {:?}",
            trailed.headers
        );

        // A trap costs its own request; the next one gets a fresh instance.
        let trapped = served.request("GET", "/trap", &[], b"");
        assert_eq!(trapped.status, 500);
        assert!(served.log_line("probe critical: panicked").is_some());
        let after = served.request("GET", "/after", &[], b"");
        assert_eq!(after.status, 200);
        assert_eq!(
            after.header("x-probe-metric"),
            Some("1"),
            "a fresh instance"
        );
    }
}

#[test]
fn a_held_body_over_the_limit_gets_413_or_500() {
    let ws = Workspace::new();
    // The echo's answer (the request's head and body) must fit too: a
    // response body over the limit gets 500.
    let component = wrapped(&ws, "abi-probe.unknown.wasm", &["--max-body-bytes", "2000"]);
    let composite = ws.compose(&format!(
        "[[plugin]]\nname = \"probe\"\npath = \"{}\"\n\n[origin]\npath = \"{{plugins}}/echo.wasm\"\n",
        component.display()
    ));
    let served = Served::start(&composite, &[]);
    let small = served.request("POST", "/", &[], &[b'a'; 100]);
    assert_eq!(small.status, 200, "{}", small.text());
    let large = served.request("POST", "/", &[], &[b'a'; 5000]);
    assert_eq!(large.status, 413, "{}", large.text());
    // Envoy's reply (which the probe's response callbacks saw); the log
    // says why.
    assert!(
        large.text().starts_with("Payload Too Large"),
        "{}",
        large.text()
    );
    assert!(
        served
            .log_line("413 Payload Too Large: the request body passed the plugin's buffer limit")
            .is_some()
    );
    // A request under the limit whose echo is over it.
    let echoed_large = served.request("POST", "/", &[], &[b'a'; 1800]);
    assert_eq!(echoed_large.status, 500, "{}", echoed_large.text());
    assert_eq!(echoed_large.text(), "Internal Server Error");
    assert!(
        served
            .log_line("the response body passed the plugin's buffer limit")
            .is_some()
    );
}

#[test]
fn a_wrapped_plugin_serves_concurrent_requests_without_serialising() {
    let ws = Workspace::new();
    let upstream = Peer::replying(Reply::Slow(Duration::from_millis(800), "slow"));
    let composite = ws.compose(
        "[[plugin]]\nname = \"legacy\"\nproxy-wasm = \"{legacy}/header-filter.unknown.wasm\"\n\n[origin]\nhost = true\n",
    );
    let served = Served::with_args(
        &composite,
        &["--upstream", &format!("http://{}", upstream.addr)],
    );
    let addr = served.addr;
    // One instance up first, so the host has no reason to start another.
    assert_eq!(request(addr, "GET", "/warm", &[], b"").status, 200);
    let started = Instant::now();
    let clients: Vec<_> = (0..16)
        .map(|i| std::thread::spawn(move || request(addr, "GET", &format!("/slow/{i}"), &[], b"")))
        .collect();
    for client in clients {
        let answer = client.join().unwrap();
        assert_eq!(answer.status, 200);
        assert_eq!(answer.header("x-legacy-response"), Some("legacy"));
    }
    let took = started.elapsed();
    // wasmtime's handler may start more instances under load; each logs its
    // own `on_configure`. Were each instance to take one request at a
    // time, the busiest would need ceil(16 / instances) × 0.8 s.
    let instances = served.log_count("configured with tag");
    assert!((1..16).contains(&instances), "{instances} instances");
    let serial = Duration::from_millis(800) * 16usize.div_ceil(instances) as u32;
    assert!(
        took < serial.min(Duration::from_millis(3000)),
        "16 requests over {instances} instances took {took:?}"
    );
}

#[test]
fn wrap_refuses_what_it_cannot_run() {
    let ws = Workspace::new();
    let out = ws.path("out.wasm");
    let refuse = |input: &std::path::Path, args: &[&str], expected: &[&str]| {
        let mut all = vec!["wrap", input.to_str().unwrap(), "-o", out.to_str().unwrap()];
        all.extend_from_slice(args);
        let result = run(&all);
        let message = crate::support::stderr(&result);
        assert_eq!(result.status.code(), Some(1), "{message}");
        for piece in expected {
            assert!(message.contains(piece), "expected {piece:?} in:\n{message}");
        }
        assert!(!out.exists(), "a failed wrap wrote its output");
    };
    let plain = ws.write(
        "plain.wasm",
        wat::parse_str("(module (func (export \"_start\")))").unwrap(),
    );
    refuse(
        &plain,
        &[],
        &["not a proxy-wasm module", "proxy_abi_version_"],
    );
    let old = ws.write(
        "old.wasm",
        wat::parse_str(
            r#"(module (memory (export "memory") 1)
                (func (export "proxy_abi_version_0_1_0"))
                (func (export "malloc") (param i32) (result i32) (i32.const 0)))"#,
        )
        .unwrap(),
    );
    refuse(&old, &[], &["ABI 0.1.0", "0.2.x"]);
    let unknown = r#"(module
        (import "env" "proxy_log" (func (param i32 i32 i32) (result i32)))
        (import "env" "proxy_teleport" (func (param i32) (result i32)))
        (memory (export "memory") 1)
        (func (export "proxy_abi_version_0_2_1"))
        (func (export "proxy_on_memory_allocate") (param i32) (result i32) (i32.const 1024))
        (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
          (drop (call 1 (i32.const 7)))
          (i32.const 0)))"#;
    let unknown = ws.write("unknown.wasm", wat::parse_str(unknown).unwrap());
    refuse(&unknown, &[], &["proxy_teleport", "--allow-unimplemented"]);
    refuse(&plugin("echo"), &[], &["a component, not a core module"]);
    // A preview1 function Envoy does not give a filter either.
    let sockets = ws.write(
        "sockets.wasm",
        wat::parse_str(
            r#"(module
                (import "wasi_snapshot_preview1" "sock_open" (func (param i32 i32 i32) (result i32)))
                (memory (export "memory") 1)
                (func (export "proxy_abi_version_0_2_1"))
                (func (export "malloc") (param i32) (result i32) (i32.const 1024)))"#,
        )
        .unwrap(),
    );
    refuse(
        &sockets,
        &[],
        &["wasi_snapshot_preview1.sock_open", "--allow-unimplemented"],
    );
    let inspected = run(&["inspect", "--json", sockets.to_str().unwrap()]);
    let report: serde_json::Value = serde_json::from_slice(&inspected.stdout).unwrap();
    assert_eq!(report["wasi_unprovided"], serde_json::json!(["sock_open"]));
    let allowed = run(&[
        "wrap",
        sockets.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--allow-unimplemented",
    ]);
    assert!(
        allowed.status.success(),
        "{}",
        crate::support::stderr(&allowed)
    );
    std::fs::remove_file(&out).unwrap();
    let mismatched = ws.write(
        "mismatched.wasm",
        wat::parse_str(
            r#"(module
                (import "env" "proxy_log" (func (param i32 i32) (result i32)))
                (memory (export "memory") 1)
                (func (export "proxy_abi_version_0_2_1"))
                (func (export "malloc") (param i32) (result i32) (i32.const 0)))"#,
        )
        .unwrap(),
    );
    refuse(
        &mismatched,
        &[],
        &["env.proxy_log", "(param i32 i32 i32) (result i32)"],
    );

    // Allowed, the unknown hostcall answers Unimplemented and the module runs.
    let result = run(&[
        "wrap",
        unknown.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--allow-unimplemented",
        "--json",
    ]);
    assert!(
        result.status.success(),
        "{}",
        crate::support::stderr(&result)
    );
    let report: serde_json::Value = serde_json::from_slice(&result.stdout).unwrap();
    assert_eq!(
        report["unimplemented"],
        serde_json::json!(["proxy_teleport"])
    );
    assert_eq!(report["side_calls"], false);
    let composite = ws.compose(&format!(
        "[[plugin]]\nname = \"tiny\"\npath = \"{}\"\n\n[origin]\npath = \"{{plugins}}/echo.wasm\"\n",
        out.display()
    ));
    let served = Served::start(&composite, &[]);
    assert_eq!(served.request("GET", "/", &[], b"").status, 200);
}

#[test]
fn manifest_errors_about_proxy_wasm_keys_are_located() {
    let ws = Workspace::new();
    compose_fails(
        &ws,
        "[[plugin]]\nname = \"a\"\npath = \"{plugins}/add-header.wasm\"\nconfiguration = \"x\"\n\n[origin]\npath = \"{plugins}/echo.wasm\"\n",
        &[
            "chain.toml:4:17",
            "`configuration`, `vm-configuration`, `root-id` and `clusters` are for `proxy-wasm` plugins",
            "config = {",
        ],
    );
    compose_fails(
        &ws,
        "[[plugin]]\nname = \"a\"\npath = \"{plugins}/add-header.wasm\"\nproxy-wasm = \"{legacy}/header-filter.unknown.wasm\"\n\n[origin]\npath = \"{plugins}/echo.wasm\"\n",
        &[
            "chain.toml:4:14",
            "only one of `path`, `source`, `package` and `proxy-wasm`",
        ],
    );
    compose_fails(
        &ws,
        "[[plugin]]\nname = \"a\"\nproxy-wasm = \"{plugins}/echo.wasm\"\n\n[origin]\npath = \"{plugins}/echo.wasm\"\n",
        &[
            "chain.toml:3:14",
            "cannot wrap",
            "a component, not a core module",
        ],
    );
}

#[test]
fn the_example_legacy_chain_composes() {
    crate::support::plugins();
    legacy_plugins();
    let ws = Workspace::new();
    let out = ws.path("legacy.wasm");
    let chain = crate::support::repo().join("chains/legacy.toml");
    let result = run(&[
        "compose",
        chain.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(
        result.status.success(),
        "{}",
        crate::support::stderr(&result)
    );
    let served = Served::start(&out, &[]);
    let answer = served.request("GET", "/", &[], b"");
    assert_eq!(answer.header("x-legacy-response"), Some("from-chain-toml"));
}

#[test]
fn a_proxy_wasm_module_comes_from_a_registry_too() {
    let registry = crate::support::TestRegistry::start();
    let ws = Workspace::new();
    let module = legacy_plugins().join("header-filter.wasip1.wasm");
    let reference = registry.reference("filters/header-filter:1.0.0");
    let cache = ws.path("cache");
    let published =
        crate::support::run_in(&cache, &["publish", module.to_str().unwrap(), &reference]);
    let message = crate::support::stderr(&published);
    assert!(published.status.success(), "{message}");
    assert!(message.contains("proxy-wasm module"), "{message}");
    let manifest = ws.manifest(&format!(
        "[[plugin]]\nname = \"filter\"\nproxy-wasm = \"{reference}\"\nconfiguration = \"from-oci\"\n\n[origin]\npath = \"{{plugins}}/echo.wasm\"\n"
    ));
    let out = ws.path("chain.wasm");
    let composed = crate::support::run_in(
        &cache,
        &[
            "compose",
            manifest.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ],
    );
    assert!(
        composed.status.success(),
        "{}",
        crate::support::stderr(&composed)
    );
    let lock = std::fs::read_to_string(ws.path("pwchain.lock")).unwrap();
    assert!(lock.contains("filters/header-filter:1.0.0"), "{lock}");
    let served = Served::start(&out, &[]);
    let answer = served.request("GET", "/", &[], b"");
    assert_eq!(answer.header("x-legacy-response"), Some("from-oci"));
}

#[test]
fn a_side_call_past_its_timeout_is_answered_as_failed() {
    let upstream = Peer::replying(Reply::Slow(Duration::from_millis(2500), "late"));
    let ws = Workspace::new();
    let composite = ws.compose(
        &PROBE_CHAIN
            .replace("FLAVOUR", "unknown")
            .replace("UPSTREAM", &upstream.addr.to_string())
            .replace("tag=probe-tag", "tag=probe-tag\\ntimeout-ms=300"),
    );
    let served = Served::start(&composite, &[]);
    let started = Instant::now();
    let called = served.request("GET", "/call", &[], b"");
    assert_eq!(called.status, 200);
    // The call failed: the plugin saw no `:status` and no body.
    assert!(
        called.text().contains("x-call-answer:"),
        "{}",
        called.text()
    );
    assert!(!called.text().contains("late"), "{}", called.text());
    assert!(
        started.elapsed() < Duration::from_millis(2000),
        "{:?}",
        started.elapsed()
    );
    assert!(served.log_line("proxy_http_call to").is_some());
}

#[test]
fn wrapped_plugins_of_one_chain_share_data_and_queues() {
    let ws = Workspace::new();
    let composite = ws.compose(
        r#"
[[plugin]]
name = "outer"
proxy-wasm = "{legacy}/abi-probe.unknown.wasm"
configuration = "tag=outer"

[[plugin]]
name = "inner"
proxy-wasm = "{legacy}/abi-probe.wasip1.wasm"
configuration = "tag=inner"

[origin]
path = "{plugins}/echo.wasm"
"#,
    );
    let served = Served::start(&composite, &[]);
    for round in 0..2 {
        let answer = served.request("GET", &format!("/round{round}"), &[], b"");
        assert_eq!(answer.status, 200, "{}", answer.text());
        // Both count every request in the same `hits` entry, outer first.
        let (outer, inner) = (2 * round + 1, 2 * round + 2);
        assert_eq!(
            answer.header("x-probe-hits-outer"),
            Some(outer.to_string().as_str())
        );
        assert_eq!(
            answer.header("x-probe-hits-inner"),
            Some(inner.to_string().as_str())
        );
        // A metric is one per name, as in Envoy: both count into
        // `probe_requests`.
        assert_eq!(
            answer.header("x-probe-metric"),
            Some((2 * round + 2).to_string().as_str())
        );
    }
    // Both enqueue each path on the queue `paths` they both registered;
    // each of the 4 items is dequeued once, by whichever plugin heard first.
    let dequeued = || {
        let log = served.log.lock().unwrap();
        log.iter()
            .filter(|l| l.contains("info: dequeued /round"))
            .count()
    };
    let waited = Instant::now();
    while dequeued() < 4 && waited.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(100));
    let dequeued = dequeued();
    assert_eq!(dequeued, 4);
}

#[test]
fn a_side_call_policy_applies_to_a_wrapped_plugin() {
    let upstream = Peer::start("forty-two\n");
    let ws = Workspace::new();
    let composite = ws.compose(
        &PROBE_CHAIN
            .replace("FLAVOUR", "unknown")
            .replace("UPSTREAM", &upstream.addr.to_string())
            .replace(
                "vm-configuration",
                "side-calls = \"deny\"\nvm-configuration",
            ),
    );
    let served = Served::start(&composite, &[]);
    let called = served.request("GET", "/call", &[], b"");
    assert_eq!(called.status, 200);
    assert!(!called.text().contains("forty-two"), "{}", called.text());
    assert!(served.log_line("HttpRequestDenied").is_some());
    assert!(
        upstream.received.try_recv().is_err(),
        "nothing reached the upstream"
    );
}

#[test]
fn a_local_response_from_a_side_call_answer_short_circuits() {
    let upstream = Peer::replying(Reply::Status(403, "no"));
    let ws = Workspace::new();
    let composite = ws.compose(
        &PROBE_CHAIN
            .replace("FLAVOUR", "wasip1")
            .replace("UPSTREAM", &upstream.addr.to_string()),
    );
    let served = Served::start(&composite, &[]);
    let denied = served.request("GET", "/call-deny", &[], b"");
    assert_eq!(denied.status, 403, "{}", denied.text());
    assert_eq!(denied.header("x-call-status"), Some("403"));
    // The echo never answered; the probe's own response callbacks saw its
    // reply, as Envoy passes a local reply through the filter that sent it
    // (tests/envoy.rs).
    assert_eq!(
        denied.text(),
        "the upstream said no\n-- seen by probe-tag\n",
        "the echo never answered"
    );
}

#[test]
fn a_module_whose_initialize_traps_fails_its_request_and_names_itself() {
    let ws = Workspace::new();
    ws.write(
        "broken.wasm",
        wat::parse_str(
            r#"(module
                (import "env" "proxy_log" (func (param i32 i32 i32) (result i32)))
                (memory (export "memory") 1)
                (func (export "proxy_abi_version_0_2_1"))
                (func (export "malloc") (param i32) (result i32) (i32.const 1024))
                (func (export "_initialize") unreachable))"#,
        )
        .unwrap(),
    );
    let composite = ws.compose(&format!(
        "[[plugin]]\nname = \"broken-init\"\nproxy-wasm = \"{}\"\n\n[origin]\npath = \"{{plugins}}/echo.wasm\"\n",
        ws.path("broken.wasm").display()
    ));
    let served = Served::start(&composite, &[]);
    for _ in 0..2 {
        let answer = served.request("GET", "/", &[], b"");
        assert_eq!(answer.status, 500, "{}", answer.text());
    }
    let line = served
        .log_line("broken-init!")
        .expect("no log line names the plugin");
    assert!(
        line.contains("_initialize") || line.contains("wasm"),
        "{line}"
    );
    // The server stays up for the rest of the chain's life.
    let again = served.request("GET", "/", &[], b"");
    assert_eq!(again.status, 500);
}

/// Five wrapped filters of three SDKs in a row, in front of `echo`: one
/// run behind one driver when fused, each behind a driver of its own with
/// `fuse = false`.
fn wrapped_run(ws: &Workspace, fuse: bool) -> std::path::PathBuf {
    let fixture = |name: &str| crate::support::fixture(name).display().to_string();
    let filters = [
        (
            "outer",
            "{legacy}/abi-probe.unknown.wasm".into(),
            "configuration = \"tag=outer\"",
        ),
        (
            "hf",
            "{legacy}/header-filter.wasip1.wasm".into(),
            "configuration = \"tag-hf\"",
        ),
        ("go-body", fixture("go-http-body.wasm"), ""),
        (
            "as-header",
            fixture("as-add-header.wasm"),
            "root-id = \"add_header\"\nconfiguration = \"from-chain\"",
        ),
        (
            "inner",
            "{legacy}/abi-probe.wasip1.wasm".into(),
            "configuration = \"tag=inner\"",
        ),
    ];
    let mut text = format!("[chain]\nname = \"wrapped\"\nfuse = {fuse}\n\n");
    for (name, module, extra) in filters {
        text += &format!("[[plugin]]\nname = \"{name}\"\nproxy-wasm = \"{module}\"\n{extra}\n\n");
    }
    text += "[origin]\npath = \"{plugins}/echo.wasm\"\n";
    ws.compose_as(&text, &format!("wrapped-{fuse}.wasm"))
}

/// A request's headers, as a test gives them.
type Headers<'a> = &'a [(&'a str, &'a str)];

#[test]
fn a_fused_run_of_wrapped_filters_answers_as_the_same_filters_apart() {
    let ws = Workspace::new();
    let (fused, apart) = (wrapped_run(&ws, true), wrapped_run(&ws, false));
    let info = run(&["inspect", "--json", fused.to_str().unwrap()]);
    let info: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
    for i in 0..5 {
        assert_eq!(
            info["chain"]["plugins"][i]["run"], "outer+hf+go-body+as-header+inner",
            "{info}"
        );
    }
    let info = run(&["inspect", "--json", apart.to_str().unwrap()]);
    let info: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
    assert!(info["chain"]["plugins"][0]["run"].is_null(), "{info}");

    let (fused, apart) = (Served::start(&fused, &[]), Served::start(&apart, &[]));
    let large = vec![b'x'; 2 << 20];
    // Each case: method, path, headers, body; both servers get the same
    // requests in the same order, so shared counters agree too.
    let cases: [(&str, &str, Headers, &[u8]); 7] = [
        // Every filter on the request and, in reverse, on the response;
        // Go replaces the held body in the middle of the run.
        ("POST", "/x", &[], b"hello"),
        ("POST", "/x", &[("buffer-operation", "append")], b"hello"),
        ("POST", "/x", &[("buffer-operation", "prepend")], b"hello"),
        // A local reply from the second filter: the first sees it on its
        // way out, the later ones never see the request.
        ("POST", "/legacy-deny/x", &[], b"no"),
        // The first filter traps: its request fails, the next is served.
        ("POST", "/trap", &[], b"boom"),
        ("POST", "/after-trap", &[], b"fine"),
        ("GET", "/y", &[("content-length", "0")], b""),
    ];
    // All but the date and the probe's tick count (which the clock
    // decides), and the echoed request less the server's address.
    let seen = |answer: &crate::support::Response, served: &Served| {
        let mut headers: Vec<(String, String)> = answer
            .headers
            .iter()
            .filter(|(name, _)| name != "date" && name != "x-probe-ticks")
            .cloned()
            .collect();
        headers.sort();
        let body = answer.text().replace(&served.addr.to_string(), "ADDR");
        (answer.status, headers, body)
    };
    for (method, path, headers, body) in &cases {
        let one = fused.request(method, path, headers, body);
        let other = apart.request(method, path, headers, body);
        assert_eq!(
            seen(&one, &fused),
            seen(&other, &apart),
            "{method} {path}: fused {} / apart {}",
            one.text(),
            other.text()
        );
        match *path {
            "/x" => {
                assert_eq!(one.status, 200, "{}", one.text());
                assert!(
                    one.text().to_lowercase().contains("body]"),
                    "{}",
                    one.text()
                );
                assert_eq!(one.header("x-legacy-response"), Some("tag-hf"));
                assert_eq!(one.header("hello"), Some("from-chain"));
            }
            "/legacy-deny/x" => {
                assert_eq!(one.status, 403, "{}", one.text());
                assert_eq!(one.header("hello"), None, "as-header never saw it");
            }
            "/trap" => assert_eq!(one.status, 500, "{}", one.text()),
            _ => assert_eq!(one.status, 200, "{path}: {}", one.text()),
        }
    }
    // Where a run differs, as Envoy does (envoy::a_fused_run_of_filters_
    // answers_as_in_envoy): every filter hears the headers before Go holds
    // the body, so a 413 for a body over Go's limit passes back through the
    // later filters too; apart, Go's driver holds the request first.
    let (one, other) = (
        fused.request("POST", "/large", &[], &large),
        apart.request("POST", "/large", &[], &large),
    );
    assert_eq!((one.status, other.status), (413, 413));
    assert!(one.text().contains("seen by inner"), "{}", one.text());
    assert!(!other.text().contains("seen by inner"), "{}", other.text());
}

#[test]
fn a_run_longer_than_a_driver_takes_is_split() {
    let ws = Workspace::new();
    let mut text = String::new();
    for i in 1..=9 {
        text.push_str(&format!(
            "[[plugin]]\nname = \"f{i}\"\nproxy-wasm = \"{{legacy}}/header-filter.unknown.wasm\"\nconfiguration = \"tag-{i}\"\n\n"
        ));
    }
    text.push_str("[origin]\npath = \"{plugins}/echo.wasm\"\n");
    let composite = ws.compose(&text);
    let info = run(&["inspect", "--json", composite.to_str().unwrap()]);
    let info: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
    let plugins = &info["chain"]["plugins"];
    for i in 0..8 {
        assert_eq!(plugins[i]["run"], "f1+f2+f3+f4+f5+f6+f7+f8", "{info}");
    }
    assert!(plugins[8]["run"].is_null(), "f9 alone: {info}");
    let served = Served::start(&composite, &[]);
    let answer = served.request("GET", "/", &[("content-length", "0")], b"");
    assert_eq!(answer.status, 200, "{}", answer.text());
    // Each filter adds its tag to the request, in chain order; on the way
    // back each sets the response header, the first one last.
    let echoed = answer.text();
    let tags: Vec<&str> = echoed
        .lines()
        .filter_map(|l| l.strip_prefix("x-legacy-request: "))
        .collect();
    assert_eq!(
        tags,
        (1..=9).map(|i| format!("tag-{i}")).collect::<Vec<_>>()
    );
    assert_eq!(answer.header("x-legacy-response"), Some("tag-1"));
}
