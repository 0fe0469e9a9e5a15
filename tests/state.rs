//! State that outlives one request and one replica: shared data kept by
//! `pwchain serve` (`shared-data = "host"`), in Redis with `--store`, seen
//! by every replica that names the same server.

use crate::support::{Served, TestRedis, Workspace, closed_port, run, stderr};

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
    let composite = ws.compose(
        r#"
[chain]
shared-data = "host"

[[plugin]]
name = "probe"
proxy-wasm = "{legacy}/abi-probe.unknown.wasm"

[origin]
path = "{plugins}/echo.wasm"
"#,
    );
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
    let composite = ws.compose(
        r#"
[chain]
shared-data = "host"

[[plugin]]
name = "probe"
proxy-wasm = "{legacy}/abi-probe.unknown.wasm"

[origin]
path = "{plugins}/echo.wasm"
"#,
    );
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
