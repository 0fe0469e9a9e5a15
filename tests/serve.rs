//! Composed chains of real plugins, served by pwchain's wasmtime host and
//! driven over real HTTP on loopback.

use crate::support::{Peer, Served, Workspace, plugin, repo, run, stderr};

const DEMO: &str = r#"
[chain]
name = "demo"

[[plugin]]
name = "auth"
path = "{plugins}/auth.wasm"

[[plugin]]
name = "add-header"
path = "{plugins}/add-header.wasm"

[[plugin]]
name = "rewrite-body"
path = "{plugins}/rewrite-body.wasm"

[[plugin]]
name = "audit"
path = "{plugins}/audit.wasm"

[origin]
path = "{plugins}/echo.wasm"
"#;

const AUTHORIZED: (&str, &str) = ("authorization", "Bearer let-me-in");

#[test]
fn demo_chain_answers_through_every_plugin() {
    let ws = Workspace::new();
    let composite = ws.compose(DEMO);
    let collector = Peer::start("logged");
    let served = Served::start(
        &composite,
        &[(
            "AUDIT_COLLECTOR",
            format!("http://{}/audit", collector.addr),
        )],
    );

    // auth answers itself: nothing behind it runs, so nothing is audited.
    let denied = served.request("GET", "/private", &[], b"");
    assert_eq!(denied.status, 401, "{denied:?}");
    assert!(denied.text().contains("unauthorized"), "{}", denied.text());
    assert_eq!(
        denied.header("www-authenticate"),
        Some("Bearer realm=\"pwchain\"")
    );
    assert_eq!(
        denied.header("x-served-by"),
        None,
        "add-header must not have run"
    );

    let answer = served.request("POST", "/hello?x=1", &[AUTHORIZED], b"quiet body");
    assert_eq!(answer.status, 200, "{answer:?}");
    // Response side: add-header and rewrite-body both touched the response.
    assert_eq!(answer.header("x-served-by"), Some("pwchain add-header"));
    assert_eq!(answer.header("x-body-rewritten"), Some("uppercase"));
    // Request side: echo saw the header add-header added, and the body, all
    // upper-cased on the way back by rewrite-body.
    let text = answer.text();
    assert!(text.starts_with("POST /HELLO?X=1\n"), "{text}");
    assert!(text.contains("X-CHAIN-HOP: ADD-HEADER\n"), "{text}");
    assert!(text.ends_with("\n\nQUIET BODY"), "{text}");
    assert_eq!(text, text.to_uppercase());

    // audit's side call reached the collector, not the chain's next hop.
    let audited = collector.next().expect("the collector got the audit line");
    assert_eq!(audited.request_line, "POST /audit HTTP/1.1");
    assert_eq!(String::from_utf8_lossy(&audited.body), "POST /hello?x=1\n");
    assert!(
        collector.received.try_recv().is_err(),
        "one line per request"
    );
}

#[test]
fn response_body_is_rewritten_as_a_stream() {
    let ws = Workspace::new();
    let composite = ws.compose(
        r#"
[[plugin]]
name = "rewrite-body"
path = "{plugins}/rewrite-body.wasm"

[origin]
path = "{plugins}/echo.wasm"
"#,
    );
    let served = Served::start(&composite, &[]);
    // Far more than one stream chunk (16 KiB) in each direction.
    let body: Vec<u8> = (0..1_000_000u32)
        .map(|i| b"abcdefghij"[(i % 10) as usize])
        .collect();
    let answer = served.request("PUT", "/big", &[], &body);
    assert_eq!(answer.status, 200);
    let expected_tail = body.to_ascii_uppercase();
    assert!(answer.body.starts_with(b"PUT /BIG\n"));
    assert!(
        answer.body.ends_with(&expected_tail),
        "body changed in transit"
    );
}

#[test]
fn origin_world_plugin_calls_its_next_hop_through_origin() {
    let ws = Workspace::new();
    let composite = ws.compose(
        r#"
[[plugin]]
name = "request-id"
path = "{plugins}/request-id.wasm"

[origin]
path = "{plugins}/echo.wasm"
"#,
    );
    let served = Served::start(&composite, &[]);
    let answer = served.request("GET", "/", &[("x-request-id", "abc123")], b"");
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("x-request-id"), Some("abc123"));
    assert!(
        answer.text().contains("x-request-id: abc123\n"),
        "{}",
        answer.text()
    );

    let fresh = served.request("GET", "/", &[], b"");
    let id = fresh.header("x-request-id").expect("an id was made up");
    assert_eq!(id.len(), 16);
    assert!(fresh.text().contains(&format!("x-request-id: {id}\n")));
}

#[test]
fn forward_origin_sends_requests_to_a_real_upstream() {
    let ws = Workspace::new();
    let composite = ws.compose(&crate::support::repo_chain_text("forward"));
    let upstream = Peer::start("hello from upstream");
    let served = Served::start(&composite, &[]);
    let authority = upstream.addr.to_string();

    let answer = served.request("POST", "/api/v1?q=2", &[("host", &authority)], b"payload");
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.text(), "hello from upstream");
    assert_eq!(answer.header("x-upstream"), Some("yes"));
    assert_eq!(answer.header("x-served-by"), Some("pwchain add-header"));
    let id = answer
        .header("x-request-id")
        .expect("request-id tagged the response");

    let seen = upstream.next().expect("the upstream got the request");
    assert_eq!(seen.request_line, "POST /api/v1?q=2 HTTP/1.1");
    assert_eq!(seen.header("x-chain-hop"), Some("add-header"));
    assert_eq!(seen.header("x-request-id"), Some(id));
    assert_eq!(seen.header("host"), Some(authority.as_str()));
    assert_eq!(seen.body, b"payload");
}

#[test]
fn composites_link_with_the_wasmtime_serve_import_set() {
    let ws = Workspace::new();
    for (toml, expected) in [
        (DEMO.to_string(), "runs in    `wasmtime serve -Scli`"),
        (
            crate::support::repo_chain_text("forward"),
            "runs in    `wasmtime serve -Scli`",
        ),
    ] {
        let composite = ws.compose(&toml);
        let output = run(&["validate", composite.to_str().unwrap()]);
        let text = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "{text}{}", stderr(&output));
        assert!(text.contains("a wasi:http 0.3 service"), "{text}");
        assert!(text.contains(expected), "{text}");
        // Rust's wasm32-wasip2 std imports wasi:cli 0.2, which plain
        // `wasmtime serve` does not provide: validate says so.
        assert!(text.contains("`wasmtime serve` refuses it"), "{text}");
    }
}

#[test]
fn unterminated_chain_is_valid_but_needs_a_host() {
    let ws = Workspace::new();
    let composite = ws.compose(
        r#"
[[plugin]]
name = "add-header"
path = "{plugins}/add-header.wasm"

[origin]
host = true
"#,
    );
    let output = run(&["validate", composite.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.contains("imports `wasi:http/handler@0.3.2`: the chain is not terminated"),
        "{text}"
    );

    let json = run(&["validate", "--json", composite.to_str().unwrap()]);
    let report: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(report["unterminated"], "wasi:http/handler@0.3.2");
    assert_eq!(report["runs_in"], serde_json::Value::Null);
}

#[test]
fn built_ins_match_their_sources() {
    for name in [
        "forward",
        "allow-calls",
        "echo",
        "legacy-state",
        "legacy-driver",
        "legacy-shared",
        "header-run",
        "header-seq",
        "route-match",
        "stage-timer",
        "stage-timing-sink",
    ] {
        let committed =
            std::fs::read(repo().join(format!("crates/compose/builtins/{name}.wasm"))).unwrap();
        let rebuilt = std::fs::read(plugin(name)).unwrap();
        assert!(
            committed == rebuilt,
            "crates/compose/builtins/{name}.wasm is stale: run plugins/build.sh and copy plugins/dist/{name}.wasm there"
        );
    }
}

#[test]
fn forward_failures_get_gateway_statuses() {
    let ws = Workspace::new();
    let composite = ws.compose("[[plugin]]\nname = \"tag\"\npath = \"{plugins}/add-header.wasm\"\n\n[origin]\nforward = true\n");
    let served = Served::start(&composite, &[]);

    // Nothing listens there any more.
    let closed = crate::support::closed_port().to_string();
    let down = served.request("GET", "/", &[("host", &closed)], b"");
    assert_eq!(down.status, 502, "{}", down.text());

    // A request addressed to the server itself comes back marked and stops.
    let own = served.addr.to_string();
    let looped = served.request("GET", "/", &[("host", &own)], b"");
    assert_eq!(looped.status, 508, "{}", looped.text());

    // The server is still fine.
    let upstream = Peer::start("still here");
    let ok = served.request("GET", "/", &[("host", &upstream.addr.to_string())], b"");
    assert_eq!(ok.text(), "still here");
}

/// Sync-lifted plugins pass bodies on by handle: 64 clients at once each
/// send 1 MiB through two of them (and an async body rewriter behind
/// them) and get 1 MiB back, rewritten as it streamed; each request gets
/// an instance of its own.
#[test]
fn bodies_stream_through_sync_lifted_plugins_under_concurrency() {
    let ws = Workspace::new();
    let chain = ws.compose(
        "[[plugin]]\nname = \"fast\"\npath = \"{plugins}/add-header-sync.wasm\"\n\n\
         [[plugin]]\nname = \"fast-configured\"\npath = \"{plugins}/add-header-sync.wasm\"\n\
         config = { \"request.x-fast\" = \"in\", \"response.x-fast\" = \"out\" }\n\n\
         [[plugin]]\nname = \"rewrite-body\"\npath = \"{plugins}/rewrite-body.wasm\"\n\n\
         [origin]\npath = \"{plugins}/echo.wasm\"\n",
    );
    let inspected = run(&["inspect", chain.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&inspected.stdout);
    assert!(
        text.lines()
            .any(|l| l.contains("fast-configured") && l.contains(" sync ")),
        "{text}"
    );
    let served = Served::start(&chain, &[]);
    assert!(
        served
            .log_line("sync-lifted: each instance serves one request at a time")
            .is_some()
    );
    let clients: Vec<_> = (0..64u32)
        .map(|client| {
            let addr = served.addr;
            std::thread::spawn(move || {
                // Lowercase letters, different for each client.
                let body: Vec<u8> = (0..1u32 << 20)
                    .map(|i| b'a' + ((i * 31 + client * 7) % 26) as u8)
                    .collect();
                let answer = crate::support::request(addr, "POST", "/bulk", &[], &body);
                (body, answer)
            })
        })
        .collect();
    for client in clients {
        let (body, answer) = client.join().unwrap();
        assert_eq!(answer.status, 200, "{}", answer.text());
        assert_eq!(answer.header("x-fast"), Some("out"));
        assert_eq!(answer.header("x-served-by"), Some("pwchain add-header"));
        let text = answer.text();
        let (head, echoed) = text.split_once("\n\n").expect("echo's blank line");
        assert!(head.contains("X-FAST: IN"), "{head}");
        assert!(head.contains("X-CHAIN-HOP: ADD-HEADER"), "{head}");
        assert!(
            echoed.as_bytes() == body.to_ascii_uppercase().as_slice(),
            "a 1 MiB body came back changed ({} bytes)",
            echoed.len()
        );
    }
}
