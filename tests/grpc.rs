//! gRPC through a chain: a real server and client (Python's grpcio, the
//! standard `grpc.health.v1.Health/Check`), with `pwchain serve` speaking
//! HTTP/2 to the upstream. An unknown service's `NOT_FOUND` travels only in
//! the response's trailers, so it shows trailers surviving the chain.

use crate::support::{Served, Workspace, grpcio, plugin, repo};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// `tests/grpc/peer.py` as a server on a free port (h2c); killed when
/// dropped.
struct GrpcServer {
    child: Child,
    port: u16,
}

impl GrpcServer {
    fn start(path: &std::path::Path) -> GrpcServer {
        GrpcServer::serving(path, &[])
    }

    /// Over TLS with this certificate and key (PEM files).
    fn tls(path: &std::path::Path, cert: &std::path::Path, key: &std::path::Path) -> GrpcServer {
        GrpcServer::serving(path, &[cert, key])
    }

    fn serving(path: &std::path::Path, args: &[&std::path::Path]) -> GrpcServer {
        let mut child = Command::new("python3")
            .arg(repo().join("tests/grpc/peer.py"))
            .arg("serve")
            .args(args)
            .env("PYTHONPATH", path)
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .strip_prefix("port ")
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| panic!("the gRPC server said {line:?}"));
        GrpcServer { child, port }
    }
}

impl Drop for GrpcServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `Health/Check` for `service` through `addr`: the status, or the error's
/// code and details, as the grpcio client saw it.
fn check(path: &std::path::Path, addr: &str, service: &str) -> String {
    call(path, "check", addr, &[service])
}

/// `peer.py WHAT ADDR ARGS…`: a call, as the grpcio client saw it.
fn call(path: &std::path::Path, what: &str, addr: &str, args: &[&str]) -> String {
    let output = Command::new("python3")
        .arg(repo().join("tests/grpc/peer.py"))
        .args([what, addr])
        .args(args)
        .env("PYTHONPATH", path)
        .output()
        .expect("python3");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// The chain's plugins in front of the upstream: a native one and a
/// wrapped proxy-wasm filter.
fn plugins() -> String {
    format!(
        r#"
[[plugin]]
name = "add-header"
path = "{}"

[[plugin]]
name = "legacy"
proxy-wasm = "{{legacy}}/header-filter.unknown.wasm"
"#,
        plugin("add-header").display()
    )
}

/// Every kind of call the tests make, and what the client saw of each.
fn calls(path: &std::path::Path, addr: &str) -> Vec<String> {
    vec![
        check(path, addr, ""),
        check(path, addr, "unknown"),
        // Server streaming: 1,000 messages, counted and digested.
        call(path, "count", addr, &["1000"]),
        // Client streaming: 10 MiB in 64 KiB messages.
        call(path, "upload", addr, &["10"]),
        call(path, "slow", addr, &[]),
        // An error status with a message, in a trailers-only answer.
        call(path, "fail", addr, &[]),
    ]
}

/// Unary and streaming calls, a deadline, and statuses carried only in
/// trailers, through a native plugin and a wrapped proxy-wasm filter, over
/// h2c to the upstream: once with the host's next hop (`--upstream
/// h2c://`), once with the chain's own terminator (`[origin] upstream =
/// "h2c://…"`). The answers are the ones the server gives directly,
/// message for message.
#[test]
fn grpc_calls_pass_a_chain_over_h2c_as_they_do_directly() {
    let Some(path) = grpcio() else { return };
    let server = GrpcServer::start(path);
    let direct = format!("127.0.0.1:{}", server.port);
    let expected = calls(path, &direct);
    assert_eq!(expected[..2], ["SERVING", "NOT_FOUND"]);
    assert!(expected[2].starts_with("1000 "), "{expected:?}");
    assert_eq!(expected[3], "10485760");
    assert_eq!(expected[4], "DEADLINE_EXCEEDED Deadline Exceeded");
    assert_eq!(expected[5], "INVALID_ARGUMENT the probe refuses this call");

    let ws = Workspace::new();
    let plugins = plugins();
    let host = ws.compose_as(&format!("{plugins}\n[origin]\nhost = true\n"), "host.wasm");
    let upstream = format!("h2c://{direct}");
    let terminated = ws.compose_as(
        &format!("{plugins}\n[origin]\nupstream = \"{upstream}\"\n"),
        "terminated.wasm",
    );
    // `inspect` says who speaks h2c.
    let inspected = crate::support::run(&["inspect", terminated.to_str().unwrap()]);
    let said = String::from_utf8_lossy(&inspected.stdout);
    assert!(
        said.contains("HTTP/2 with prior knowledge: `pwchain serve` speaks it"),
        "{said}"
    );
    for served in [
        Served::with_args(&host, &["--upstream", &upstream]),
        Served::with_args(&terminated, &[]),
    ] {
        assert_eq!(calls(path, &served.addr.to_string()), expected);
    }
}

/// The `grpc-deny` example refuses the methods it is configured with as a
/// gRPC client expects (`PERMISSION_DENIED` in a trailers-only answer),
/// and lets the others through.
#[test]
fn a_plugin_refuses_grpc_methods_with_permission_denied() {
    let Some(path) = grpcio() else { return };
    let server = GrpcServer::start(path);
    let ws = Workspace::new();
    let composite = ws.compose(&format!(
        r#"
[[plugin]]
name = "grpc-deny"
path = "{}"
config = {{ methods = "/pwchain.test.Probe/Fail, /pwchain.test.Probe/Slow" }}

[origin]
upstream = "h2c://127.0.0.1:{}"
"#,
        plugin("grpc-deny").display(),
        server.port
    ));
    let served = Served::with_args(&composite, &[]);
    let addr = served.addr.to_string();
    for (what, refused) in [("fail", "Fail"), ("slow", "Slow")] {
        assert_eq!(
            call(path, what, &addr, &[]),
            format!("PERMISSION_DENIED /pwchain.test.Probe/{refused} is not allowed here")
        );
    }
    assert_eq!(check(path, &addr, ""), "SERVING");
    assert_eq!(call(path, "upload", &addr, &["1"]), "1048576");
}

/// A client that cancels a server-streaming call after ten of a million
/// messages: the chain lets the call go (the in-flight gauge returns to
/// zero, so its instance and connection are released) and goes on serving.
#[test]
fn a_stream_the_client_cancels_is_let_go() {
    let Some(path) = grpcio() else { return };
    let server = GrpcServer::start(path);
    let ws = Workspace::new();
    let composite = ws.compose(&format!(
        "{}\n[origin]\nupstream = \"h2c://127.0.0.1:{}\"\n",
        plugins(),
        server.port
    ));
    let served = Served::with_args(&composite, &["--admin", "127.0.0.1:0"]);
    let admin: std::net::SocketAddr = served.admin();
    let addr = served.addr.to_string();
    let cancelled = call(path, "cancel", &addr, &[]);
    assert!(cancelled.starts_with("CANCELLED"), "{cancelled}");
    let in_flight = || {
        let metrics = crate::support::request(admin, "GET", "/metrics", &[], b"").text();
        metrics.lines().find_map(|l| {
            l.strip_prefix("pwchain_requests_in_flight ")?
                .parse::<f64>()
                .ok()
        })
    };
    let waited = std::time::Instant::now();
    while in_flight() != Some(0.0) {
        assert!(
            waited.elapsed() < std::time::Duration::from_secs(10),
            "still in flight: {:?}",
            in_flight()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(check(path, &addr, ""), "SERVING");
}

/// An upstream that speaks only HTTP/1.1, named `h2c://`: the call fails
/// as `UNAVAILABLE`, which a gRPC client retries or reports, within the
/// request timeout, and the server goes on.
#[test]
fn an_http1_upstream_named_h2c_is_unavailable() {
    let Some(path) = grpcio() else { return };
    let http1 = crate::support::Peer::start("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
    let ws = Workspace::new();
    let composite = ws.compose(&format!(
        "[[plugin]]\nname = \"add-header\"\npath = \"{}\"\n\n[origin]\nhost = true\n",
        plugin("add-header").display()
    ));
    let upstream = format!("h2c://{}", http1.addr);
    let served = Served::with_args(&composite, &["--upstream", &upstream]);
    let addr = served.addr.to_string();
    let started = std::time::Instant::now();
    let answer = check(path, &addr, "");
    assert!(answer.starts_with("UNAVAILABLE"), "{answer}");
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    assert!(served.log_line(&format!("upstream {upstream}")).is_some());
}

/// The same calls to an upstream over TLS, where ALPN picks HTTP/2: the
/// upstream's certificate is trusted through `--upstream-ca`, and the
/// answers are the ones the server gives directly (as over h2c).
#[test]
fn grpc_calls_pass_a_chain_to_a_tls_upstream() {
    let Some(path) = grpcio() else { return };
    let ws = Workspace::new();
    let (cert, key, _) = crate::tls::certificate(&ws, "upstream");
    let server = GrpcServer::tls(path, &cert, &key);
    let plain = GrpcServer::start(path);
    let expected = calls(path, &format!("127.0.0.1:{}", plain.port));
    let upstream = format!("https://localhost:{}", server.port);
    let host = ws.compose_as(
        &format!("{}\n[origin]\nhost = true\n", plugins()),
        "host.wasm",
    );
    let terminated = ws.compose_as(
        &format!("{}\n[origin]\nupstream = \"{upstream}\"\n", plugins()),
        "terminated.wasm",
    );
    let ca = cert.to_str().unwrap();
    for served in [
        Served::with_args(&host, &["--upstream", &upstream, "--upstream-ca", ca]),
        Served::with_args(&terminated, &["--upstream-ca", ca]),
    ] {
        assert_eq!(calls(path, &served.addr.to_string()), expected);
    }
    // Without the CA, the upstream is not trusted: UNAVAILABLE.
    let untrusting = Served::with_args(&host, &["--upstream", &upstream]);
    let refused = check(path, &untrusting.addr.to_string(), "");
    assert!(refused.starts_with("UNAVAILABLE"), "{refused}");
}

/// An HTTP/2 upstream that resets every stream it is sent (RST_STREAM
/// INTERNAL_ERROR): the call fails as `UNAVAILABLE` in time, and the
/// server goes on serving.
#[test]
fn an_upstream_that_resets_the_stream_is_unavailable() {
    let Some(path) = grpcio() else { return };
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    listener.set_nonblocking(true).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.spawn(async move {
        let listener = tokio::net::TcpListener::from_std(listener).unwrap();
        while let Ok((socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Ok(mut connection) = h2::server::handshake(socket).await else {
                    return;
                };
                while let Some(Ok((_, mut respond))) = connection.accept().await {
                    respond.send_reset(h2::Reason::INTERNAL_ERROR);
                }
            });
        }
    });
    let ws = Workspace::new();
    let composite = ws.compose_as(
        &format!("{}\n[origin]\nhost = true\n", plugins()),
        "host.wasm",
    );
    let upstream = format!("h2c://{addr}");
    let served = Served::with_args(&composite, &["--upstream", &upstream]);
    for _ in 0..3 {
        let started = std::time::Instant::now();
        let answer = check(path, &served.addr.to_string(), "");
        assert!(answer.starts_with("UNAVAILABLE"), "{answer}");
        assert!(started.elapsed() < std::time::Duration::from_secs(10));
    }
}

/// The same calls through a JavaScript and a Python plugin (QuickJS and
/// CPython inside their components): streams and trailers pass them too.
#[test]
fn grpc_calls_pass_javascript_and_python_plugins() {
    let Some(path) = grpcio() else { return };
    let js = crate::support::js_plugins();
    let python = crate::support::python_plugins();
    let server = GrpcServer::start(path);
    let direct = format!("127.0.0.1:{}", server.port);
    let expected = calls(path, &direct);
    let ws = Workspace::new();
    let composite = ws.compose(&format!(
        "[[plugin]]\nname = \"js\"\npath = \"{}\"\n\n[[plugin]]\nname = \"py\"\npath = \"{}\"\n\n[origin]\nupstream = \"h2c://{direct}\"\n",
        js.join("js-headers.wasm").display(),
        python.join("py-gate.wasm").display(),
    ));
    let served = Served::with_args(&composite, &[]);
    assert_eq!(calls(path, &served.addr.to_string()), expected);
}
