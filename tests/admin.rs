//! `pwchain serve --admin`: the admin endpoint answers while the chain
//! compiles (not ready), then reports it; `/metrics` is scraped and its
//! counts match the requests sent.

use crate::support::*;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::Stdio;

/// The value of the sample `name` (labels included, as written) in a
/// Prometheus text exposition.
pub(crate) fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

pub(crate) fn address_after(line: &str, marker: &str) -> Option<SocketAddr> {
    let rest = line.split(marker).nth(1)?;
    rest.split('/').next()?.parse().ok()
}

#[test]
fn admin_reports_readiness_metrics_and_the_chain() {
    python_plugins();
    let ws = Workspace::new();
    // CPython inside: compiling takes a while, long enough to see the
    // endpoint answer "not ready" first.
    let manifest = ws.manifest(
        "[chain]\nname = \"watched\"\n\n\
         [[plugin]]\nname = \"tag\"\npath = \"{plugins}/py-header-tag.wasm\"\n\n\
         [origin]\npath = \"{plugins}/echo.wasm\"\n",
    );
    let mut child = pwchain()
        .args(["serve", manifest.to_str().unwrap(), "--addr", "127.0.0.1:0"])
        .args(["--admin", "127.0.0.1:0", "--cache-dir"])
        .arg(ws.path("cold-cache"))
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("start pwchain serve");
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut next_line = || {
        lines
            .next()
            .and_then(Result::ok)
            .expect("pwchain serve stopped")
    };
    let admin = loop {
        if let Some(addr) = address_after(&next_line(), "admin endpoint at http://") {
            break addr;
        }
    };
    let ready = request(admin, "GET", "/readyz", &[], b"");
    assert_eq!(ready.status, 503, "{}", ready.text());
    assert_eq!(request(admin, "GET", "/healthz", &[], b"").status, 200);
    let (addr, digest) = loop {
        let line = next_line();
        if let Some(addr) = address_after(&line, " on http://") {
            let digest = line
                .split("(sha256:")
                .nth(1)
                .and_then(|rest| rest.split(')').next())
                .map(|hex| format!("sha256:{hex}"))
                .expect("the digest on the serving line");
            break (addr, digest);
        }
    };
    std::thread::spawn(move || for _ in lines.map_while(Result::ok) {});
    let ready = request(admin, "GET", "/readyz", &[], b"");
    assert_eq!(ready.status, 200);
    assert!(ready.text().contains(&digest), "{}", ready.text());

    for _ in 0..20 {
        assert_eq!(request(addr, "GET", "/", &[], b"").status, 200);
    }
    let scraped = request(admin, "GET", "/metrics", &[], b"");
    assert_eq!(scraped.status, 200);
    let text = scraped.text();
    let chain = "chain=\"watched\"";
    assert_eq!(
        sample(
            &text,
            &format!("pwchain_requests_total{{{chain},class=\"2xx\"}}")
        ),
        Some(20.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            &format!("pwchain_request_duration_seconds_count{{{chain}}}")
        ),
        Some(20.0),
        "{text}"
    );
    assert_eq!(sample(&text, "pwchain_requests_in_flight"), Some(0.0));
    let created = sample(&text, "pwchain_instances_created_total").unwrap_or_default();
    let reused = sample(&text, "pwchain_instances_reused_total").unwrap_or_default();
    assert!(created >= 1.0 && created + reused >= 20.0, "{text}");
    assert_eq!(sample(&text, "pwchain_traps_total"), Some(0.0));
    let info = format!(
        "pwchain_chain_info{{chain=\"watched\",digest=\"{digest}\",version=\"{}\"}}",
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(sample(&text, &info), Some(1.0), "{text}");

    let about = request(admin, "GET", "/chain", &[], b"");
    let about: serde_json::Value = serde_json::from_slice(&about.body).expect("JSON");
    assert_eq!(about["digest"], digest.as_str());
    assert_eq!(about["name"], "watched");
    assert!(
        about["record"].to_string().contains("py-header-tag"),
        "{about}"
    );
    assert_eq!(request(admin, "GET", "/nope", &[], b"").status, 404);

    // An admin address already taken is a clear error at start.
    let taken = run(&[
        "serve",
        manifest.to_str().unwrap(),
        "--addr",
        "127.0.0.1:0",
        "--admin",
        &admin.to_string(),
    ]);
    assert_eq!(taken.status.code(), Some(1));
    assert!(
        stderr(&taken).contains(&format!("cannot listen on the admin address {admin}")),
        "{}",
        stderr(&taken)
    );
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn wrapped_filters_metrics_reach_the_operator() {
    let ws = Workspace::new();
    let chain = |metrics: &str| {
        format!(
            "[chain]\nname = \"probed\"\n{metrics}\n\
             [[plugin]]\nname = \"outer\"\nproxy-wasm = \"{{legacy}}/abi-probe.unknown.wasm\"\n\n\
             [[plugin]]\nname = \"inner\"\nproxy-wasm = \"{{legacy}}/abi-probe.wasip1.wasm\"\n\n\
             [origin]\npath = \"{{plugins}}/echo.wasm\"\n"
        )
    };
    // Left to the host: only `pwchain serve` runs it, and says so.
    let composite = ws.compose(&chain("filter-metrics = \"host\""));
    let checked = run(&["validate", composite.to_str().unwrap()]);
    assert_eq!(checked.status.code(), Some(3), "{}", stderr(&checked));
    let said = String::from_utf8_lossy(&checked.stdout).to_string() + &stderr(&checked);
    assert!(said.contains("pwchain:proxy/legacy-metrics"), "{said}");
    // Each instance serves 5 requests at most, so 20 take at least 4: the
    // counts are summed across them, as Envoy sums its workers'.
    let served = Served::with_args(
        &composite,
        &["--admin", "127.0.0.1:0", "--max-instance-reuse", "5"],
    );
    let addr = served.addr;
    let clients: Vec<_> = (0..4)
        .map(|_| {
            std::thread::spawn(move || {
                (0..5)
                    .map(|_| request(addr, "GET", "/", &[], b"").status)
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    for client in clients {
        assert!(client.join().unwrap().iter().all(|s| *s == 200));
    }
    let admin: SocketAddr = served.admin();
    let text = request(admin, "GET", "/metrics", &[], b"").text();
    // Both plugins count each of the 20 requests into `probe_requests`.
    assert_eq!(sample(&text, "probe_requests_total"), Some(40.0), "{text}");
    let created = sample(&text, "pwchain_instances_created_total").unwrap_or_default();
    assert!(created >= 4.0, "{text}");

    // Kept in the instance (the default), the same chain runs anywhere.
    let portable = ws.compose(&chain(""));
    let checked = run(&["validate", portable.to_str().unwrap()]);
    assert_eq!(checked.status.code(), Some(0), "{}", stderr(&checked));
    // A value that is neither is named, with its place.
    let refused = ws.compose_to(&chain("filter-metrics = \"envoy\""), "bad.wasm");
    assert_eq!(refused.status.code(), Some(1));
    let message = stderr(&refused);
    assert!(
        message.contains("filter-metrics") || message.contains("envoy"),
        "{message}"
    );
    assert!(
        message.contains("instance") && message.contains("host"),
        "{message}"
    );
}
