//! State that outlives one request and one replica: shared data kept by
//! `pwchain serve` (`shared-data = "host"`), in Redis with `--store`, seen
//! by every replica that names the same server.

use crate::support::{Served, TestRedis, Workspace, closed_port, plugin, run, stderr};

/// The `abi-probe` filter (shared data with CAS, a shared queue) in front
/// of echo, its shared data left to the host.
const PROBE_CHAIN: &str = r#"
[chain]
shared-data = "host"

[[plugin]]
name = "probe"
proxy-wasm = "{legacy}/abi-probe.unknown.wasm"

[origin]
path = "{plugins}/echo.wasm"
"#;

/// `count` replicas of `composite` on one Redis.
fn replicas(composite: &std::path::Path, redis: &TestRedis, count: usize) -> Vec<Served> {
    let url = redis.url();
    (0..count)
        .map(|_| Served::with_args(composite, &["--store", &url]))
        .collect()
}

/// The Go SDK's `shared_data` example, unchanged: each request adds one to
/// `shared_data_key` with compare-and-swap, retrying on a mismatch. Three
/// replicas on one Redis count into one value.
#[test]
fn the_go_sdk_shared_data_example_counts_across_replicas() {
    let redis = TestRedis::start();
    let ws = Workspace::new();
    let composite = ws.compose(&format!(
        r#"
[chain]
shared-data = "host"

[[plugin]]
name = "shared-data"
proxy-wasm = "{}"

[origin]
path = "{{plugins}}/echo.wasm"
"#,
        fixture_path("go-shared-data.wasm")
    ));
    let served = replicas(&composite, &redis, 3);
    // The example empties the value in `on_vm_start`, which runs once per
    // instance; one request each starts every replica's instance first.
    for replica in &served {
        assert_eq!(replica.request("GET", "/", &[], b"").status, 200);
    }
    let before = counted(&redis);
    // 100 requests to each replica at once: one client per replica.
    std::thread::scope(|scope| {
        for replica in &served {
            scope.spawn(move || {
                for i in 0..100 {
                    let answer = replica.request("GET", &format!("/{i}"), &[], b"");
                    assert_eq!(answer.status, 200, "{}", answer.text());
                }
            });
        }
    });
    assert_eq!(counted(&redis), before + 300);
    // Each count was handed out once, whichever replica made it.
    let mut counts: Vec<u64> = Vec::new();
    for replica in &served {
        let log = replica.log.lock().unwrap();
        let logged = log
            .iter()
            .filter_map(|line| line.split("shared value: ").nth(1));
        counts.extend(logged.map(|n| n.trim().parse::<u64>().unwrap()));
    }
    counts.retain(|n| *n > before);
    counts.sort_unstable();
    assert_eq!(counts, (before + 1..=before + 300).collect::<Vec<_>>());
}

/// The example's value: an 8-byte little-endian count.
fn counted(redis: &TestRedis) -> u64 {
    let value: Vec<u8> = redis.query(&[b"HGET", b"pwchain:data:shared_data_key", b"v"]);
    let bytes: [u8; 8] = value.try_into().expect("8 bytes");
    u64::from_le_bytes(bytes)
}

fn fixture_path(name: &str) -> String {
    crate::support::repo()
        .join("tests/fixtures")
        .join(name)
        .display()
        .to_string()
}

/// Two replicas race on one counter: the probe filter reads `hits`, adds
/// one and sets it with the version it read, retrying on a mismatch. 1,000
/// requests to each end at exactly 2,000, every count handed out once.
#[test]
fn replicas_racing_with_compare_and_swap_lose_no_update() {
    let redis = TestRedis::start();
    let ws = Workspace::new();
    let composite = ws.compose(PROBE_CHAIN);
    // The counter exists before the race: a set with version 0 (what a
    // filter that found nothing sends) is unconditional in proxy-wasm, so
    // first writers racing on a missing key overwrite each other, in
    // Envoy as here.
    let _: () = redis.query(&[b"HSET", b"pwchain:data:hits", b"v", b"0", b"c", b"1"]);
    let served = replicas(&composite, &redis, 2);
    let hits = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for replica in &served {
            // Four clients a replica, 250 requests each.
            for _ in 0..4 {
                let hits = &hits;
                scope.spawn(move || {
                    for _ in 0..250 {
                        let answer = replica.request("GET", "/", &[], b"");
                        assert_eq!(answer.status, 200, "{}", answer.text());
                        let n: u64 = answer.header("x-probe-hits").unwrap().parse().unwrap();
                        hits.lock().unwrap().push(n);
                    }
                });
            }
        }
    });
    let mut hits = hits.into_inner().unwrap();
    hits.sort_unstable();
    let total: String = redis.query(&[b"HGET", b"pwchain:data:hits", b"v"]);
    assert_eq!(total, "2000");
    assert_eq!(hits, (1..=2000).collect::<Vec<_>>());
}

/// Without `--store`, one server's instances share the data: a chain
/// composed with `shared-data = "host"` counts across instances.
#[test]
fn without_a_store_the_server_keeps_shared_data_in_memory() {
    let ws = Workspace::new();
    let composite = ws.compose(PROBE_CHAIN);
    // One request per instance: each instance is replaced after one.
    let served = Served::with_args(&composite, &["--max-instance-reuse", "1"]);
    for n in 1..=3 {
        let answer = served.request("GET", "/", &[], b"");
        assert_eq!(answer.header("x-probe-hits"), Some(n.to_string().as_str()));
    }
}

#[test]
fn a_store_that_is_not_redis_or_not_there_stops_serve() {
    let ws = Workspace::new();
    let composite = ws.compose(
        r#"
[[plugin]]
name = "add-header"
path = "{plugins}/add-header.wasm"

[origin]
path = "{plugins}/echo.wasm"
"#,
    );
    let chain = composite.to_str().unwrap();
    let nowhere = format!("redis://{}", closed_port());
    for (store, said) in [
        ("http://127.0.0.1:6379", "is not a Redis URL"),
        (
            nowhere.as_str(),
            "cannot reach the store at redis://127.0.0.1:",
        ),
    ] {
        let output = run(&["serve", chain, "--addr", "127.0.0.1:0", "--store", store]);
        assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
        assert!(stderr(&output).contains(said), "{}", stderr(&output));
    }
}

/// A chain with the global rate limit in front of the echo service.
fn rate_limited(ws: &Workspace, name: &str, config: &str) -> std::path::PathBuf {
    ws.compose_as(
        &format!(
            r#"
[[plugin]]
name = "rate-limit"
path = "{{plugins}}/rate-limit.wasm"
config = {{ limit = "100", window-seconds = "1000000000"{config} }}

[origin]
path = "{{plugins}}/echo.wasm"
"#
        ),
        name,
    )
}

/// The global rate limit holds across three replicas on one Redis: 300
/// requests from one client, spread over the replicas at once, with a
/// limit of 100: exactly 100 pass.
#[test]
fn a_global_rate_limit_holds_across_replicas() {
    let redis = TestRedis::start();
    let ws = Workspace::new();
    let composite = rate_limited(&ws, "limited.wasm", "");
    let served = replicas(&composite, &redis, 3);
    let client = [("x-forwarded-for", "203.0.113.7")];
    let statuses = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for replica in &served {
            let statuses = &statuses;
            scope.spawn(move || {
                for _ in 0..100 {
                    let answer = replica.request("GET", "/", &client, b"");
                    match answer.status {
                        200 => {
                            let left = answer.header("x-ratelimit-remaining").unwrap();
                            assert!(left.parse::<u32>().unwrap() < 100);
                        }
                        429 => {
                            assert_eq!(answer.header("x-ratelimit-remaining"), Some("0"));
                            let retry: u64 = answer.header("retry-after").unwrap().parse().unwrap();
                            assert!(retry > 0, "{retry}");
                        }
                        other => panic!("{other}: {}", answer.text()),
                    }
                    statuses.lock().unwrap().push(answer.status);
                }
            });
        }
    });
    let statuses = statuses.into_inner().unwrap();
    let passed = statuses.iter().filter(|s| **s == 200).count();
    assert_eq!((passed, statuses.len()), (100, 300));
    // Another client has its own count.
    let other = served[1].request("GET", "/", &[("x-forwarded-for", "198.51.100.1")], b"");
    assert_eq!(other.status, 200);
    assert_eq!(other.header("x-ratelimit-remaining"), Some("99"));
}

/// Redis goes away mid-run and comes back. Requests are answered in time
/// meanwhile: the rate limit fails open (or, with `fail = "closed"`,
/// answers 503), the Go SDK's shared-data filter sees the ABI's failure
/// status and carries on. The log says so once, and the replicas use
/// Redis again when it returns, without a restart.
#[test]
fn replicas_ride_out_a_redis_outage() {
    let mut redis = TestRedis::start();
    let ws = Workspace::new();
    let open = ws.compose_as(
        &format!(
            r#"
[chain]
shared-data = "host"

[[plugin]]
name = "shared-data"
proxy-wasm = "{}"

[[plugin]]
name = "rate-limit"
path = "{{plugins}}/rate-limit.wasm"
config = {{ limit = "1000" }}

[origin]
path = "{{plugins}}/echo.wasm"
"#,
            fixture_path("go-shared-data.wasm")
        ),
        "open.wasm",
    );
    let closed = rate_limited(&ws, "closed.wasm", r#", fail = "closed""#);
    let url = redis.url();
    let open = Served::with_args(&open, &["--store", &url, "--admin", "127.0.0.1:0"]);
    let closed = Served::with_args(&closed, &["--store", &url]);
    let counted = |served: &Served| served.request("GET", "/", &[], b"");
    assert!(counted(&open).header("x-ratelimit-remaining").is_some());
    assert_eq!(counted(&closed).status, 200);

    redis.stop();
    for _ in 0..20 {
        let started = std::time::Instant::now();
        let answer = counted(&open);
        assert_eq!(answer.status, 200, "{}", answer.text());
        // Not counted: the store did not answer.
        assert_eq!(answer.header("x-ratelimit-remaining"), None);
        assert_eq!(counted(&closed).status, 503);
        assert!(started.elapsed() < std::time::Duration::from_secs(3));
    }
    assert!(open.log_line("error getting shared data").is_some());
    // Forty failed calls in each server, one line each.
    for served in [&open, &closed] {
        assert!(served.log_line("store calls fail").is_some());
        assert_eq!(served.log_count("store calls fail"), 1);
    }
    // And counted, every one (the filter's and the plugin's calls).
    let admin: std::net::SocketAddr = open.admin();
    let metrics = crate::support::request(admin, "GET", "/metrics", &[], b"").text();
    let failures: f64 = metrics
        .lines()
        .find_map(|l| {
            l.strip_prefix("pwchain_store_failures_total ")?
                .parse()
                .ok()
        })
        .expect("pwchain_store_failures_total");
    assert!(failures >= 40.0, "{metrics}");

    assert!(redis.start_again());
    let waited = std::time::Instant::now();
    while counted(&closed).status != 200 {
        assert!(
            waited.elapsed() < std::time::Duration::from_secs(10),
            "Redis not used again"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(counted(&open).header("x-ratelimit-remaining").is_some());
    assert!(open.log_line("store answers again").is_some());
    assert!(open.log_line("shared value: 1").is_some());
}

/// `wasi:keyvalue` through `pwchain serve`, every call of store, atomics
/// and batch, kept in memory and in Redis alike.
#[test]
fn keyvalue_calls_reach_the_store_in_memory_and_in_redis() {
    let redis = TestRedis::start();
    // A service on its own: `serve` takes any wasi:http component.
    let probe = plugin("kv-probe");
    let url = redis.url();
    for args in [vec![], vec!["--store", url.as_str()]] {
        let served = Served::with_args(&probe, &args);
        let call = |method: &str, path: &str, body: &str| {
            let answer = served.request(method, path, &[], body.as_bytes());
            (answer.status, answer.text())
        };
        assert_eq!(call("PUT", "/kv/a", "one"), (204, "".into()));
        assert_eq!(call("GET", "/kv/a", ""), (200, "one".into()));
        assert_eq!(call("GET", "/kv/missing", ""), (404, "".into()));
        assert_eq!(call("POST", "/incr/n", ""), (200, "1".into()));
        assert_eq!(call("POST", "/add/n", ""), (200, "2".into()));
        assert_eq!(call("PUT", "/batch", "b=two\nc=three"), (204, "".into()));
        assert_eq!(
            call("GET", "/batch?a,b,x", ""),
            (200, "a=one\nb=two\nx".into())
        );
        assert_eq!(call("GET", "/kv", ""), (200, "a\nb\nc\nn".into()));
        assert_eq!(call("DELETE", "/batch?b,c", ""), (204, "".into()));
        assert_eq!(call("DELETE", "/kv/n", ""), (204, "".into()));
        assert_eq!(call("GET", "/kv", ""), (200, "a".into()));
        // `increment` on text is an error the plugin sees.
        let (status, text) = call("POST", "/incr/a", "");
        assert_eq!(status, 500);
        assert!(text.contains("not a 64-bit integer"), "{text}");
        // Buckets are apart.
        let other = served.request("GET", "/kv/a", &[("x-bucket", "other")], b"");
        assert_eq!(other.status, 404);
    }
    // In Redis, as `redis-cli` shows it.
    let kept: String = redis.query(&[b"GET", b"pwchain:kv:probe:a"]);
    assert_eq!(kept, "one");
}

/// Two replicas add to one number with `wasi:keyvalue` compare-and-swap,
/// 1,000 times each: it ends at exactly 2,000.
#[test]
fn replicas_racing_with_keyvalue_compare_and_swap_lose_no_update() {
    let redis = TestRedis::start();
    // A service on its own: `serve` takes any wasi:http component.
    let probe = plugin("kv-probe");
    let served = replicas(&probe, &redis, 2);
    let (numbers, retries) = (std::sync::Mutex::new(Vec::new()), std::sync::Mutex::new(0));
    std::thread::scope(|scope| {
        for replica in &served {
            for _ in 0..4 {
                let (numbers, retries) = (&numbers, &retries);
                scope.spawn(move || {
                    for _ in 0..250 {
                        let answer = replica.request("POST", "/add/counter", &[], b"");
                        assert_eq!(answer.status, 200, "{}", answer.text());
                        numbers
                            .lock()
                            .unwrap()
                            .push(answer.text().parse::<u64>().unwrap());
                        let lost: u64 = answer.header("x-cas-retries").unwrap().parse().unwrap();
                        *retries.lock().unwrap() += lost;
                    }
                });
            }
        }
    });
    let total: String = redis.query(&[b"GET", b"pwchain:kv:probe:counter"]);
    assert_eq!(total, "2000");
    let mut numbers = numbers.into_inner().unwrap();
    numbers.sort_unstable();
    assert_eq!(numbers, (1..=2000).collect::<Vec<_>>());
    eprintln!(
        "compare-and-swap retries: {}",
        retries.into_inner().unwrap()
    );
}

/// A value larger than the Redis server takes (`proto-max-bulk-len`,
/// asked at start) fails that call with an error that says so, in a
/// native plugin; the store goes on working.
#[test]
fn a_value_over_the_store_limit_is_refused_with_the_limit() {
    let redis = TestRedis::with_args(&["--proto-max-bulk-len", "1mb"]);
    // A service on its own: `serve` takes any wasi:http component.
    let probe = plugin("kv-probe");
    let served = Served::with_args(&probe, &["--store", &redis.url()]);
    let big = vec![b'x'; 2 << 20];
    let refused = served.request("PUT", "/kv/big", &[], &big);
    assert_eq!(refused.status, 500);
    assert!(
        refused
            .text()
            .contains("a value of 2097152 bytes is over the store's limit of 1048576 bytes"),
        "{}",
        refused.text()
    );
    assert_eq!(served.request("PUT", "/kv/small", &[], b"fits").status, 204);
    assert_eq!(served.request("GET", "/kv/big", &[], b"").status, 404);
}

/// The repository's `chains/fleet.toml`, served by two replicas on one
/// Redis: each client's remaining allowance counts down across both.
#[test]
fn the_fleet_chain_counts_one_allowance_over_two_replicas() {
    let redis = TestRedis::start();
    let ws = Workspace::new();
    let composite = ws.compose(&crate::support::repo_chain_text("fleet"));
    let served = replicas(&composite, &redis, 2);
    let client = [("x-forwarded-for", "192.0.2.10")];
    let remaining: Vec<String> = (0..4)
        .map(|i| {
            let answer = served[i % 2].request("GET", "/", &client, b"");
            assert_eq!(answer.status, 200, "{}", answer.text());
            answer.header("x-ratelimit-remaining").unwrap().to_string()
        })
        .collect();
    assert_eq!(remaining, ["99", "98", "97", "96"]);
    // `wasmtime serve` has no wasi:keyvalue; validate says who runs it.
    let validated = run(&["validate", composite.to_str().unwrap()]);
    assert_eq!(validated.status.code(), Some(3), "{}", stderr(&validated));
    let said = String::from_utf8_lossy(&validated.stdout);
    assert!(said.contains("runs in    `pwchain serve`"), "{said}");
    assert!(said.contains("wasi:keyvalue/store@0.2.0-draft2"), "{said}");
}

/// A queue in Redis is one queue for every replica: an item pushed where
/// another replica pushes it (the queue's list and its count of pushes)
/// reaches the filter that registered the queue, through
/// `proxy_on_queue_ready`, on its next request.
#[test]
fn an_item_queued_elsewhere_reaches_the_filter_that_registered_the_queue() {
    let redis = TestRedis::start();
    let ws = Workspace::new();
    let composite = ws.compose(PROBE_CHAIN);
    let served = Served::with_args(&composite, &["--store", &redis.url()]);
    assert_eq!(served.request("GET", "/first", &[], b"").status, 200);
    // The probe registered `paths` at start, and dequeued its own item.
    let id: String = redis.query(&[b"HGET", b"pwchain:queues", b"paths"]);
    assert!(served.log_line("dequeued /first").is_some());
    let list = format!("pwchain:queue:{id}");
    let pushed = format!("pwchain:queue-pushed:{id}");
    let _: () = redis.query(&[b"RPUSH", list.as_bytes(), b"from-another-replica"]);
    let _: () = redis.query(&[b"INCR", pushed.as_bytes()]);
    assert_eq!(served.request("GET", "/second", &[], b"").status, 200);
    assert!(served.log_line("dequeued from-another-replica").is_some());
}
