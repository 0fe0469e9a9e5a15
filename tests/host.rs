//! `pwchain serve` as a production host: the next hop proxied to a real
//! upstream, side calls kept apart, faults contained, load, shutdown, logs.

use crate::support::{Peer, Reply, Served, Workspace, request, run, stderr};
use sha2::{Digest, Sha256};
use std::time::{Duration, Instant};

const HOST_CHAIN: &str = r#"
[chain]
name = "edge"

[[plugin]]
name = "add-header"
path = "{plugins}/add-header.wasm"

[[plugin]]
name = "audit"
path = "{plugins}/audit.wasm"

[origin]
host = true
"#;

fn digest(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[test]
fn next_hop_goes_to_the_upstream_and_side_calls_do_not() {
    let ws = Workspace::new();
    let composite = ws.compose(HOST_CHAIN);
    let upstream = Peer::replying(Reply::Echo);
    let collector = Peer::start("logged");
    let served = Served::with_args(
        &composite,
        &[
            "--upstream",
            &format!("http://{}/base/", upstream.addr),
            "--env",
            &format!("AUDIT_COLLECTOR=http://{}/audit", collector.addr),
        ],
    );

    // More than a MiB each way, streamed through the chain and back.
    let body: Vec<u8> = (0..(1 << 20) + 12345)
        .map(|i: u32| (i % 251) as u8)
        .collect();
    let answer = served.request(
        "PUT",
        "/files/a?v=2",
        &[("x-forwarded-for", "10.0.0.7")],
        &body,
    );
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.header("x-upstream"), Some("yes"));
    assert_eq!(answer.header("x-served-by"), Some("pwchain add-header"));
    assert_eq!(
        digest(&answer.body),
        digest(&body),
        "the body changed on the way"
    );

    let seen = upstream.next().expect("the upstream got the next hop");
    assert_eq!(seen.request_line, "PUT /base/files/a?v=2 HTTP/1.1");
    assert_eq!(
        seen.header("host"),
        Some(upstream.addr.to_string().as_str())
    );
    assert_eq!(seen.header("x-chain-hop"), Some("add-header"));
    assert_eq!(seen.header("x-forwarded-for"), Some("10.0.0.7, 127.0.0.1"));
    assert_eq!(
        seen.header("x-forwarded-host"),
        Some(served.addr.to_string().as_str())
    );
    assert_eq!(seen.header("x-forwarded-proto"), Some("http"));
    assert_eq!(digest(&seen.body), digest(&body));

    // The audit side call went to the collector, and only there.
    let audited = collector.next().expect("the collector got the side call");
    assert_eq!(audited.request_line, "POST /audit HTTP/1.1");
    assert_eq!(String::from_utf8_lossy(&audited.body), "PUT /files/a?v=2\n");
    assert!(
        upstream.received.try_recv().is_err(),
        "the side call must not reach the upstream"
    );
}

#[test]
fn unterminated_chain_needs_an_upstream() {
    let ws = Workspace::new();
    let composite = ws.compose(HOST_CHAIN);
    let output = run(&[
        "serve",
        composite.to_str().unwrap(),
        "--addr",
        "127.0.0.1:0",
    ]);
    assert_eq!(output.status.code(), Some(1));
    let message = stderr(&output);
    assert!(message.contains("the chain is not terminated"), "{message}");
    assert!(message.contains("--upstream URL"), "{message}");
}

#[test]
fn upstream_down_is_a_bad_gateway() {
    let ws = Workspace::new();
    let composite = ws.compose(HOST_CHAIN);
    let closed = crate::support::closed_port();
    let served = Served::with_args(&composite, &["--upstream", &format!("http://{closed}")]);
    let started = Instant::now();
    let answer = served.request("GET", "/", &[], b"");
    assert_eq!(answer.status, 502, "{}", answer.text());
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(
        served.log_line("upstream http://").is_some(),
        "the log says which upstream failed"
    );
}

#[test]
fn a_faulty_plugin_fails_only_its_own_request() {
    let ws = Workspace::new();
    let composite = ws.compose("[[plugin]]\nname = \"fault\"\npath = \"{plugins}/fault.wasm\"\n\n[origin]\npath = \"{plugins}/echo.wasm\"\n");
    let served = Served::with_args(
        &composite,
        &["--request-timeout", "2", "--max-memory", "64"],
    );
    let ok = |served: &Served| {
        let answer = served.request("GET", "/fine", &[], b"");
        assert_eq!(answer.status, 200, "{}", answer.text());
    };
    ok(&served);

    let trapped = served.request("GET", "/trap", &[], b"");
    assert_eq!(trapped.status, 500, "{}", trapped.text());
    ok(&served);

    let started = Instant::now();
    let spun = served.request("GET", "/spin", &[], b"");
    assert!(
        matches!(spun.status, 500 | 504),
        "{}: {}",
        spun.status,
        spun.text()
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the timeout did not cut it off"
    );
    ok(&served);

    let grown = served.request("GET", "/grow", &[], b"");
    assert_eq!(grown.status, 500, "{}", grown.text());
    ok(&served);
}

#[test]
fn bounded_concurrent_load_has_no_errors() {
    let ws = Workspace::new();
    let composite = ws.compose("[[plugin]]\nname = \"tag\"\npath = \"{plugins}/add-header.wasm\"\n\n[[plugin]]\nname = \"upper\"\npath = \"{plugins}/rewrite-body.wasm\"\n\n[origin]\npath = \"{plugins}/echo.wasm\"\n");
    let served = Served::start(&composite, &[]);
    let addr = served.addr;
    const CLIENTS: usize = 64;
    const EACH: usize = 40;
    let started = Instant::now();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|client| {
            std::thread::spawn(move || {
                let mut failures = Vec::new();
                for i in 0..EACH {
                    let body = format!("client {client} request {i}");
                    let answer = request(addr, "POST", "/load", &[], body.as_bytes());
                    let text = answer.text();
                    if answer.status != 200 || !text.ends_with(&body.to_uppercase()) {
                        failures.push(format!("{}: {text}", answer.status));
                    }
                }
                failures
            })
        })
        .collect();
    let failures: Vec<String> = clients
        .into_iter()
        .flat_map(|c| c.join().unwrap())
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} failed, e.g. {:?}",
        failures.len(),
        CLIENTS * EACH,
        failures.first()
    );
    eprintln!(
        "{} requests from {CLIENTS} clients in {:?}",
        CLIENTS * EACH,
        started.elapsed()
    );
}

#[test]
fn shutdown_finishes_in_flight_requests() {
    let ws = Workspace::new();
    let composite = ws.compose(HOST_CHAIN);
    let upstream = Peer::replying(Reply::Slow(Duration::from_millis(1500), "slow answer"));
    let mut served = Served::with_args(
        &composite,
        &["--upstream", &format!("http://{}", upstream.addr)],
    );
    let addr = served.addr;
    let in_flight = std::thread::spawn(move || request(addr, "GET", "/slow", &[], b""));
    std::thread::sleep(Duration::from_millis(500));
    served.signal("TERM");
    let answer = in_flight.join().unwrap();
    assert_eq!(answer.status, 200);
    assert_eq!(answer.text(), "slow answer");
    let status = served.exited();
    assert!(status.success(), "{status:?}");
    // Instances dropped with the runtime are not reported as failures.
    assert_eq!(served.log_count("worker panicked"), 0);
    assert_eq!(served.log_count("dropped after an error"), 0);
}

#[test]
fn json_access_log_and_prefixed_guest_output() {
    let ws = Workspace::new();
    let composite = ws.compose(HOST_CHAIN);
    let closed = crate::support::closed_port();
    let upstream = Peer::start("ok");
    let served = Served::with_args(
        &composite,
        &[
            "--log-format",
            "json",
            "--upstream",
            &format!("http://{}", upstream.addr),
            "--env",
            &format!("AUDIT_COLLECTOR=http://{closed}/audit"),
        ],
    );
    let answer = served.request("GET", "/logged", &[], b"");
    assert_eq!(answer.status, 200);
    let line = served
        .log_line("pwchain::access")
        .expect("an access-log line");
    let entry: serde_json::Value = serde_json::from_str(&line).expect("the access log is JSON");
    assert_eq!(entry["fields"]["status"], 200);
    assert_eq!(entry["fields"]["path"], "/logged");
    assert_eq!(entry["fields"]["method"], "GET");
    // audit's failed side call is reported on its stderr, prefixed.
    let guest = served.log_line("audit: side call").expect("guest stderr");
    assert!(guest.starts_with("[chain stderr] "), "{guest}");
}

#[test]
fn http2_with_prior_knowledge() {
    use http_body_util::BodyExt;
    let ws = Workspace::new();
    let composite = ws.compose("[[plugin]]\nname = \"tag\"\npath = \"{plugins}/add-header.wasm\"\n\n[origin]\npath = \"{plugins}/echo.wasm\"\n");
    let served = Served::start(&composite, &[]);
    let addr = served.addr;
    let (status, tag, body) = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(async move {
            let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
            let (mut sender, connection) = hyper::client::conn::http2::handshake(
                hyper_util::rt::TokioExecutor::new(),
                hyper_util::rt::TokioIo::new(stream),
            )
            .await
            .unwrap();
            tokio::spawn(connection);
            let request = hyper::Request::post(format!("http://{addr}/over-h2"))
                .body(http_body_util::Full::new(bytes::Bytes::from_static(
                    b"h2 body",
                )))
                .unwrap();
            let response = sender.send_request(request).await.unwrap();
            let status = response.status().as_u16();
            let tag = response
                .headers()
                .get("x-served-by")
                .map(|v| v.to_str().unwrap().to_string());
            let body = response.into_body().collect().await.unwrap().to_bytes();
            (status, tag, String::from_utf8_lossy(&body).into_owned())
        });
    assert_eq!(status, 200, "{body}");
    assert_eq!(tag.as_deref(), Some("pwchain add-header"));
    assert!(body.starts_with("POST /over-h2\n"), "{body}");
    assert!(body.ends_with("\n\nh2 body"), "{body}");
}

/// `GET / HTTP/1.1` with the headers never finished, held open.
fn partial(addr: std::net::SocketAddr) -> Option<std::net::TcpStream> {
    use std::io::Write;
    let mut stream = std::net::TcpStream::connect(addr).ok()?;
    stream.write_all(b"GET / HTTP/1.1\r\nhost: slow\r\n").ok()?;
    Some(stream)
}

#[test]
fn slow_clients_are_disconnected_and_big_heads_refused() {
    use std::io::Read;
    let ws = Workspace::new();
    let composite = ws.compose("[[plugin]]\nname = \"pass\"\npath = \"{plugins}/pass.wasm\"\n[origin]\npath = \"{plugins}/echo.wasm\"\n");
    let served = Served::with_args(&composite, &["--header-timeout", "1"]);
    let mut slow = partial(served.addr).expect("connect");
    slow.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let started = Instant::now();
    let mut rest = Vec::new();
    let _ = slow.read_to_end(&mut rest);
    let waited = started.elapsed();
    assert!(
        waited > Duration::from_millis(800) && waited < Duration::from_secs(4),
        "closed after {waited:?}"
    );
    // Others are served meanwhile and after.
    assert_eq!(served.request("GET", "/", &[], b"").status, 200);
    // A head over the limit: 431, and the server goes on.
    let big = "x".repeat(80 << 10);
    let refused = served.request("GET", "/", &[("x-big", &big)], b"");
    assert_eq!(refused.status, 431);
    assert_eq!(served.request("GET", "/", &[], b"").status, 200);
}

#[test]
fn running_out_of_descriptors_is_survived() {
    let ws = Workspace::new();
    let composite = ws.compose("[[plugin]]\nname = \"pass\"\npath = \"{plugins}/pass.wasm\"\n[origin]\npath = \"{plugins}/echo.wasm\"\n");
    let mut command = std::process::Command::new("bash");
    command
        .args(["-c", "ulimit -n 96 && exec \"$0\" \"$@\""])
        .arg(env!("CARGO_BIN_EXE_pwchain"))
        .args([
            "serve",
            composite.to_str().unwrap(),
            "--addr",
            "127.0.0.1:0",
        ])
        .args(["--header-timeout", "2"]);
    let mut served = Served::spawn(command).unwrap_or_else(|log| panic!("{log}"));
    // More held partial connections than the server has descriptors.
    let held: Vec<_> = (0..160).filter_map(|_| partial(served.addr)).collect();
    assert!(held.len() > 96, "only {} connections", held.len());
    std::thread::sleep(Duration::from_secs(1));
    // Once the header timeout frees descriptors, a normal client is served.
    let deadline = Instant::now() + Duration::from_secs(15);
    let answered = loop {
        let answer = std::panic::catch_unwind(|| request(served.addr, "GET", "/", &[], b""));
        match answer {
            Ok(answer) if answer.status == 200 => break true,
            _ if Instant::now() > deadline => break false,
            _ => std::thread::sleep(Duration::from_millis(250)),
        }
    };
    assert!(answered, "no answer after the slow clients timed out");
    drop(held);
    let failures = served.log_count("accept failed");
    assert!(failures < 20, "{failures} accept-failure lines");
    // One SIGTERM stops it within seconds.
    served.signal("TERM");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if served.child.try_wait().unwrap().is_some() {
            break;
        }
        assert!(Instant::now() < deadline, "SIGTERM did not stop the server");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Ten `add-header` plugins, the `[[plugin]]` part of a long chain.
fn ten_tags() -> String {
    (0..10)
        .map(|i| {
            format!("[[plugin]]\nname = \"tag{i}\"\npath = \"{{plugins}}/add-header.wasm\"\n\n")
        })
        .collect()
}

/// `clients` requests at once, each on its own connection; every one is
/// answered 200.
fn burst(served: &Served, clients: usize) {
    let addr = served.addr;
    let statuses: Vec<u16> = (0..clients)
        .map(|_| std::thread::spawn(move || request(addr, "GET", "/burst", &[], b"").status))
        .collect::<Vec<_>>()
        .into_iter()
        .map(|c| c.join().unwrap())
        .collect();
    let failed = statuses.iter().filter(|s| **s != 200).count();
    let log = served.log.lock().unwrap().clone();
    let errors: Vec<&String> = log
        .iter()
        .filter(|l| l.contains("WARN") || l.contains("ERROR"))
        .take(6)
        .collect();
    assert_eq!(failed, 0, "{failed} of {clients} failed: {errors:#?}");
}

#[test]
fn a_burst_on_a_long_chain_gets_no_5xx() {
    let ws = Workspace::new();
    let composite = ws.compose(&(ten_tags() + "[origin]\npath = \"{plugins}/echo.wasm\"\n"));
    let served = Served::with_args(&composite, &[]);
    burst(&served, 256);
}

#[test]
fn a_burst_beyond_the_instance_pool_is_served_on_demand() {
    let ws = Workspace::new();
    let composite = ws.compose(&(ten_tags() + "[origin]\nhost = true\n"));
    let upstream = Peer::replying(Reply::Slow(Duration::from_millis(500), "slow answer"));
    // One request per instance, each held half a second by the upstream:
    // 80 at once need 80 instances of this 10-plugin chain, more than the
    // pool holds (2048 memories over its core instances: about 45 chains);
    // the rest are allocated on demand, and every request is answered.
    let served = Served::with_args(
        &composite,
        &[
            "--upstream",
            &format!("http://{}", upstream.addr),
            "--max-instance-concurrency",
            "1",
        ],
    );
    burst(&served, 80);
    let overflow = served.log_line("the instance pool is full");
    assert!(overflow.is_some(), "the burst never left the pool");
}

#[test]
fn past_its_turns_a_request_waits_then_gets_503() {
    let ws = Workspace::new();
    let composite = ws.compose(HOST_CHAIN);
    let upstream = Peer::replying(Reply::Slow(Duration::from_millis(2500), "slow answer"));
    let served = Served::with_args(
        &composite,
        &[
            "--upstream",
            &format!("http://{}", upstream.addr),
            "--max-requests",
            "1",
            "--queue-timeout",
            "1",
        ],
    );
    let addr = served.addr;
    let first = std::thread::spawn(move || request(addr, "GET", "/slow", &[], b""));
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    let second = request(addr, "GET", "/next", &[], b"");
    assert_eq!(second.status, 503, "{}", second.text());
    assert_eq!(second.header("retry-after"), Some("1"));
    assert!(started.elapsed() >= Duration::from_millis(900));
    assert_eq!(first.join().unwrap().status, 200);
    assert!(served.log_line("every turn busy").is_some());
    // Nonsense limits are refused at start.
    let refused = run(&["serve", "x.wasm", "--max-requests", "0"]);
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
}

/// CPU ticks each lane thread of process `pid` has used.
#[cfg(target_os = "linux")]
fn lane_ticks(pid: u32) -> Vec<(String, u64)> {
    let mut lanes: Vec<(String, u64)> = std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .filter_map(|task| {
            let path = task.ok()?.path();
            let name = std::fs::read_to_string(path.join("comm")).ok()?;
            let name = name.trim().to_string();
            let stat = std::fs::read_to_string(path.join("stat")).ok()?;
            // utime and stime: fields 14 and 15, counted after the `(comm)`.
            let fields: Vec<&str> = stat.rsplit(')').next()?.split_whitespace().collect();
            let ticks = fields[11].parse::<u64>().ok()? + fields[12].parse::<u64>().ok()?;
            name.starts_with("pwchain-lane-").then_some((name, ticks))
        })
        .collect();
    lanes.sort();
    lanes
}

#[cfg(target_os = "linux")]
#[test]
fn lanes_share_a_burst_and_stop_on_one_sigterm() {
    let ws = Workspace::new();
    let composite = ws.compose(&(ten_tags() + "[origin]\npath = \"{plugins}/echo.wasm\"\n"));
    let mut served = Served::with_args(&composite, &["--lanes", "2"]);
    // Both lanes listen on the one address; the kernel spreads the
    // connections, and each lane serves its own with its own instances.
    burst(&served, 256);
    let ticks = lane_ticks(served.child.id());
    let names: Vec<&str> = ticks.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(names, ["pwchain-lane-0", "pwchain-lane-1"]);
    assert!(
        ticks.iter().all(|(_, ticks)| *ticks > 0),
        "a lane did no work: {ticks:?}"
    );
    served.signal("TERM");
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = served.child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "SIGTERM did not stop the lanes");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "{status:?}");
    assert_eq!(served.log_count("shutting down"), 1);
}
