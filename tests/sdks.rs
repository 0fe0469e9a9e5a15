//! Legacy proxy-wasm filters built by other SDKs than the Rust one (Go,
//! AssemblyScript, C++: `../shared/fixtures/proxy-wasm`, built from the
//! SDKs' own examples and never rebuilt), wrapped in one chain between
//! native plugins and driven over real HTTP in `pwchain serve` and in the
//! real `wasmtime serve -Scli`. Each check is a behaviour the fixtures'
//! README gives for Envoy.

use crate::support::{
    Peer, Reply, Served, Workspace, exchange, fixture, plugins, run, wasmtime_serve,
};
use std::path::PathBuf;

/// `[native add-header, go-http-body, as-add-header, cpp-add-header,
/// native rewrite-body] + echo`.
fn sdk_chain(ws: &Workspace) -> PathBuf {
    plugins();
    ws.compose(&format!(
        r#"[chain]
name = "sdks"

[[plugin]]
name = "native"
path = "{{plugins}}/add-header.wasm"

[[plugin]]
name = "go-body"
proxy-wasm = "{go}"

[[plugin]]
name = "as-header"
proxy-wasm = "{as_}"
root-id = "add_header"
configuration = "from-chain"

[[plugin]]
name = "cpp-header"
proxy-wasm = "{cpp}"
root-id = "cpp"

[[plugin]]
name = "upper"
path = "{{plugins}}/rewrite-body.wasm"

[origin]
path = "{{plugins}}/echo.wasm"
"#,
        go = fixture("go-http-body.wasm").display(),
        as_ = fixture("as-add-header.wasm").display(),
        cpp = fixture("cpp-add-header.wasm").display(),
    ))
}

fn behaves_as_in_envoy(served: &Served, host: &str) {
    // Go: the request body is replaced (the default operation); the echo
    // shows it, upper-cased on the way back by rewrite-body.
    let answer = served.request("POST", "/x", &[], b"hello");
    assert_eq!(answer.status, 200, "{host}: {}", answer.text());
    let echoed = answer.text();
    assert!(
        echoed.ends_with("[THIS IS REPLACED BODY]"),
        "{host}: {echoed}"
    );
    // AssemblyScript and C++ both saw the request and the response.
    assert!(echoed.contains("X-AS-REQUEST: SEEN"), "{host}: {echoed}");
    assert_eq!(answer.header("hello"), Some("from-chain"), "{host}");
    assert_eq!(answer.header("x-cpp"), Some("1"), "{host}");
    assert_eq!(answer.header("x-served-by"), Some("pwchain add-header"));

    let appended = served.request("POST", "/x", &[("buffer-operation", "append")], b"hello");
    assert!(
        appended.text().ends_with("HELLO[THIS IS APPENDED BODY]"),
        "{host}: {}",
        appended.text()
    );
    let prepended = served.request("POST", "/x", &[("buffer-operation", "prepend")], b"hello");
    assert!(
        prepended.text().ends_with("[THIS IS PREPENDED BODY]HELLO"),
        "{host}: {}",
        prepended.text()
    );

    // Go: no content-length, a local 400 that the inner filters never see.
    let raw = "GET /x HTTP/1.1\r\nhost: sdks\r\nconnection: close\r\n\r\n";
    let refused = exchange(served.addr, raw.as_bytes());
    assert_eq!(refused.status, 400, "{host}: {}", refused.text());
    assert_eq!(refused.text(), "content must be provided", "{host}");
    assert_eq!(refused.header("x-cpp"), None, "{host}: not passed on");
}

#[test]
fn go_assemblyscript_and_cpp_filters_run_in_one_chain_in_pwchain_serve() {
    let ws = Workspace::new();
    let chain = sdk_chain(&ws);
    let served = Served::start(&chain, &[]);
    behaves_as_in_envoy(&served, "pwchain serve");
    // The C++ filter's log line carries its plugin name from the chain.
    let line = served
        .log_line("cpp filter: request /x")
        .expect("no log line from the C++ filter");
    assert!(line.contains("cpp-header info:"), "{line}");
}

#[test]
fn go_assemblyscript_and_cpp_filters_run_in_one_chain_in_wasmtime_serve() {
    let ws = Workspace::new();
    let chain = sdk_chain(&ws);
    let served = wasmtime_serve(&chain, &["-Scli"])
        .unwrap_or_else(|log| panic!("wasmtime serve refused it:\n{log}"));
    behaves_as_in_envoy(&served, "wasmtime serve");
}

/// `pwchain inspect --json` of a fixture.
fn inspect(name: &str) -> serde_json::Value {
    let output = run(&["inspect", "--json", fixture(name).to_str().unwrap()]);
    serde_json::from_slice(&output.stdout).unwrap()
}

#[test]
fn inspect_names_each_sdks_wasi_module_and_what_wrap_provides() {
    let report = inspect("as-add-header.wasm");
    assert_eq!(report["proxy_wasm"]["wasi_module"], "wasi_unstable");
    assert_eq!(report["proxy_wasm"]["abi"], "0.2.0");
    let text = run(&["inspect", fixture("as-add-header.wasm").to_str().unwrap()]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("wasi_unstable: proc_exit"), "{text}");

    let report = inspect("go-http-body.wasm");
    assert_eq!(
        report["proxy_wasm"]["wasi_module"],
        "wasi_snapshot_preview1"
    );
    assert_eq!(report["proxy_wasm"]["start"], "_initialize");
    assert_eq!(report["wasi_unprovided"], serde_json::json!([]));

    let report = inspect("cpp-add-header.wasm");
    assert_eq!(
        report["support"]["emscripten_notify_memory_growth"],
        "supported"
    );
}

/// Go's `hash/fnv` New32a, which `http_auth_random` applies to the body its
/// call gets back.
fn fnv32a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(2_166_136_261u32, |h, b| {
        (h ^ u32::from(*b)).wrapping_mul(16_777_619)
    })
}

/// `go-http-auth-random` in front of echo, its cluster `httpbin` mapped as
/// `clusters` says (`[chain]`-wide, then the plugin's own).
fn auth_chain(ws: &Workspace, chain_clusters: &str, plugin_clusters: &str) -> PathBuf {
    plugins();
    ws.compose(&format!(
        "[chain]\nname = \"auth\"\n{chain_clusters}\n\n\
         [[plugin]]\nname = \"auth\"\nproxy-wasm = \"{}\"\n{plugin_clusters}\n\n\
         [origin]\npath = \"{{plugins}}/echo.wasm\"\n",
        fixture("go-http-auth-random.wasm").display()
    ))
}

#[test]
fn go_http_auth_random_asks_the_cluster_it_names_in_both_hosts() {
    // An even hash lets the request through, an odd one is refused.
    assert_eq!(fnv32a(b"yes") % 2, 0);
    assert_eq!(fnv32a(b"deny") % 2, 1);
    let grant = Peer::replying(Reply::Text("yes"));
    let deny = Peer::replying(Reply::Text("deny"));
    let ws = Workspace::new();
    // The plugin's mapping wins over the chain's.
    let granted = auth_chain(
        &ws,
        &format!("clusters = {{ httpbin = \"http://{}\" }}", deny.addr),
        &format!("clusters = {{ httpbin = \"http://{}\" }}", grant.addr),
    );
    let granted = std::fs::read(&granted).unwrap();
    let granted_path = ws.write("granted.wasm", granted);
    let denied = auth_chain(
        &ws,
        &format!("clusters = {{ httpbin = \"http://{}\" }}", deny.addr),
        "",
    );
    for host in ["pwchain serve", "wasmtime serve"] {
        let serve = |chain: &PathBuf| match host {
            "pwchain serve" => Served::start(chain, &[]),
            _ => wasmtime_serve(chain, &["-Scli"]).unwrap_or_else(|log| panic!("{log}")),
        };
        let served = serve(&granted_path);
        let answer = served.request("GET", "/x", &[], b"");
        assert_eq!(answer.status, 200, "{host}: {}", answer.text());
        assert!(
            answer.text().starts_with("GET /x\n"),
            "{host}: {}",
            answer.text()
        );
        let call = grant
            .next()
            .expect("the call never reached the mapped cluster");
        assert_eq!(call.header("host"), Some(grant.addr.to_string().as_str()));
        drop(served);

        let served = serve(&denied);
        let refused = served.request("GET", "/x", &[], b"");
        assert_eq!(refused.status, 403, "{host}: {}", refused.text());
        assert_eq!(refused.text(), "access forbidden", "{host}");
        assert_eq!(refused.header("powered-by"), Some("proxy-wasm-go-sdk!!"));
        assert!(deny.next().is_some(), "{host}: no call arrived");
    }
}

#[test]
fn a_cluster_nobody_mapped_fails_the_call_as_in_envoy() {
    let ws = Workspace::new();
    let chain = auth_chain(&ws, "", "");
    let served = Served::start(&chain, &[]);
    // The example logs the failed dispatch and lets the request through.
    let answer = served.request("GET", "/x", &[], b"");
    assert_eq!(answer.status, 200, "{}", answer.text());
    let line = served
        .log_line("dipatch httpcall failed")
        .expect("no log line about the failed call");
    assert!(line.contains("bad argument"), "{line}");
    assert!(line.contains("auth critical:"), "{line}");
}

#[test]
fn bad_cluster_mappings_are_refused_where_they_are_written() {
    let ws = Workspace::new();
    for (chain_clusters, plugin_clusters, expected) in [
        (
            "clusters = { httpbin = \"127.0.0.1:80\" }",
            "",
            "chain.toml:3:24",
        ),
        (
            "",
            "clusters = { httpbin = \"ftp://x\" }",
            "chain.toml:8:24",
        ),
        (
            "",
            "clusters = { httpbin = \"http://x:1/base\" }",
            "chain.toml:8:24",
        ),
    ] {
        crate::support::compose_fails(
            &ws,
            &format!(
                "[chain]\nname = \"auth\"\n{chain_clusters}\n\n\
                 [[plugin]]\nname = \"auth\"\nproxy-wasm = \"{}\"\n{plugin_clusters}\n\n\
                 [origin]\npath = \"{{plugins}}/echo.wasm\"\n",
                fixture("go-http-auth-random.wasm").display()
            ),
            &[expected, "cluster `httpbin`", "not an upstream URL"],
        );
    }
    crate::support::compose_fails(
        &ws,
        "[[plugin]]\nname = \"a\"\npath = \"{plugins}/add-header.wasm\"\nclusters = { x = \"http://x:1\" }\n",
        &["chain.toml:4:12", "are for `proxy-wasm` plugins"],
    );
    let output = run(&[
        "wrap",
        fixture("go-http-auth-random.wasm").to_str().unwrap(),
        "-o",
        ws.path("out.wasm").to_str().unwrap(),
        "--cluster",
        "httpbin=localhost:80",
    ]);
    assert_eq!(
        output.status.code(),
        Some(2),
        "{}",
        crate::support::stderr(&output)
    );
    assert!(crate::support::stderr(&output).contains("not an absolute URL"));
}

#[test]
fn the_side_call_policy_applies_to_the_mapped_cluster() {
    let grant = Peer::replying(Reply::Text("yes"));
    let ws = Workspace::new();
    let cluster = format!("clusters = {{ httpbin = \"http://{}\" }}", grant.addr);
    for (policy, reaches) in [
        (
            format!("side-calls = {{ allow = [\"{}\"] }}", grant.addr),
            true,
        ),
        ("side-calls = { allow = [\"httpbin\"] }".to_string(), false),
    ] {
        let chain = auth_chain(&ws, "", &format!("{cluster}\n{policy}"));
        let served = Served::start(&chain, &[]);
        let _ = served.request("GET", "/x", &[], b"");
        let arrived = grant
            .received
            .recv_timeout(std::time::Duration::from_secs(2))
            .is_ok();
        assert_eq!(arrived, reaches, "{policy}");
    }
}

#[test]
fn a_root_id_no_root_context_answers_to_gets_the_sdks_own_behaviour() {
    plugins();
    let ws = Workspace::new();
    let chain = |module: &str, root_id: &str| {
        let result = ws.compose_to(
            &format!(
                "[[plugin]]\nname = \"f\"\nproxy-wasm = \"{}\"\nroot-id = \"{root_id}\"\nconfiguration = \"x\"\n\n\
                 [origin]\npath = \"{{plugins}}/echo.wasm\"\n",
                fixture(module).display()
            ),
            "chain.wasm",
        );
        let said = crate::support::stderr(&result);
        assert!(result.status.success(), "{said}");
        // The name is in neither module's data: compose says so.
        assert!(
            said.contains("warning: ") && said.contains(&format!("root id `{root_id}`")),
            "{said}"
        );
        ws.path("chain.wasm")
    };
    // C++: a no-op root context, so the request passes untouched.
    let served = Served::start(&chain("cpp-add-header.wasm", "not-cpp"), &[]);
    let answer = served.request("GET", "/", &[], b"");
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.header("x-cpp"), None);
    drop(served);
    // AssemblyScript: aborts ("Missing root context factory"), a trap.
    let served = Served::start(&chain("as-add-header.wasm", "not-add-header"), &[]);
    let answer = served.request("GET", "/", &[], b"");
    assert_eq!(answer.status, 500, "{}", answer.text());
}
