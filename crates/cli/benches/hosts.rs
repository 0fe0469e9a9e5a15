//! `pwchain serve` (with its default work-stealing runtime, and with
//! `--lanes` = the CPU count) against the real `wasmtime serve -Scli` (48,
//! installed by `scripts/wasmtime-cli.sh`), all as the processes a user
//! runs, on the same composites: the bare `echo` service, and echo behind 1
//! and 10 header-rewriting `add-header` plugins. Each composite is loaded
//! over loopback with 1 and with 16 keep-alive connections, the hosts
//! alternating round by round; each host's best round counts (the machine
//! is shared, the best round is the least disturbed one). Prints requests/s,
//! p50 and the ratios pwchain / wasmtime; each server's CPU time per
//! request (user + system, from `/proc`, the least of the rounds: on a
//! shared machine it moves less than requests/s, which also depends on the
//! load generator getting a core); and each server's peak memory per
//! concurrent request: (peak RSS under 16 connections − RSS before the
//! first request) / 16.
//!
//! `cargo bench -p pwchain --bench hosts [-- SECONDS ROUNDS]`

#[path = "../../host/benches/common/built.rs"]
mod built;
#[path = "../../host/benches/common/load.rs"]
mod load;
#[path = "../../host/benches/common/process.rs"]
mod process;

use load::{Figures, load};
use process::{Host, clock_ticks, rounds};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Composes `plugins` (file names in `dist`, each as its own stage) in front
/// of echo with the pwchain under bench; returns the composite.
fn compose(pwchain: &Path, dist: &Path, dir: &Path, name: &str, plugins: &[&str]) -> PathBuf {
    if plugins.is_empty() {
        return dist.join("echo.wasm");
    }
    let mut manifest = format!("[chain]\nname = \"{name}\"\n");
    for (i, plugin) in plugins.iter().enumerate() {
        manifest += &format!(
            "\n[[plugin]]\nname = \"p{i}\"\npath = {:?}\n",
            dist.join(plugin)
        );
    }
    manifest += &format!("\n[origin]\npath = {:?}\n", dist.join("echo.wasm"));
    let toml = dir.join(format!("{name}.toml"));
    std::fs::write(&toml, manifest).expect("write chain.toml");
    let out = dir.join(format!("{name}.wasm"));
    let status = Command::new(pwchain)
        .args(["compose", "-o"])
        .arg(&out)
        .arg(&toml)
        .stdout(Stdio::null())
        .status()
        .expect("run pwchain compose");
    assert!(status.success(), "pwchain compose {name} failed");
    out
}

/// A host's best round (by requests/s) and its least CPU per request.
#[derive(Default)]
struct Best {
    round: Option<Figures>,
    cpu_per_request: f64,
}

impl Best {
    fn add(&mut self, figures: Figures, cpu_seconds: f64) {
        let cpu = cpu_seconds / figures.requests.max(1) as f64;
        if self.cpu_per_request == 0.0 || cpu < self.cpu_per_request {
            self.cpu_per_request = cpu;
        }
        if self.round.as_ref().is_none_or(|b| b.rps() < figures.rps()) {
            self.round = Some(figures);
        }
    }

    fn rps(&self) -> f64 {
        self.round.as_ref().map_or(0.0, |f| f.rps())
    }

    fn p50_us(&self) -> f64 {
        self.round
            .as_ref()
            .map_or(0.0, |f| f.p50.as_secs_f64() * 1e6)
    }

    fn print(&self, host: &str, connections: usize) {
        let Some(f) = &self.round else { return };
        println!(
            "  {host:<15} {connections:>2} conn  {:>8.0} req/s  p50 {:>7.1} µs  p99 {:>7.1} µs  CPU {:>6.1} µs/req  errors {}",
            f.rps(),
            f.p50.as_secs_f64() * 1e6,
            f.p99.as_secs_f64() * 1e6,
            self.cpu_per_request * 1e6,
            f.errors
        );
    }
}

fn main() {
    let (seconds, rounds) = rounds();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dist = built::built("plugins/build.sh", "plugins/dist");
    let wasmtime = Command::new("bash")
        .arg(repo.join("scripts/wasmtime-cli.sh"))
        .stderr(Stdio::inherit())
        .output()
        .expect("scripts/wasmtime-cli.sh");
    assert!(wasmtime.status.success(), "cannot install wasmtime");
    let wasmtime = PathBuf::from(String::from_utf8_lossy(&wasmtime.stdout).trim());
    let pwchain = Path::new(env!("CARGO_BIN_EXE_pwchain"));
    let dir = tempfile::tempdir().expect("temp dir");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    let ticks = clock_ticks();
    let composites = [
        ("bare", vec![]),
        ("mw1", vec!["add-header.wasm"]),
        ("mw10", vec!["add-header.wasm"; 10]),
    ];
    let mut summary = Vec::new();
    for (name, plugins) in composites {
        let composite = compose(pwchain, &dist, dir.path(), name, &plugins);
        let mut pw = Command::new(pwchain);
        pw.arg("serve")
            .arg(&composite)
            .args(["--addr", "127.0.0.1:0"]);
        let mut lanes = Command::new(pwchain);
        lanes.arg("serve").arg(&composite).args([
            "--addr",
            "127.0.0.1:0",
            "--lanes",
            &cpus.to_string(),
        ]);
        let mut wt = Command::new(&wasmtime);
        wt.args(["serve", "-Scli", "--addr", "127.0.0.1:0"])
            .arg(&composite);
        // wasmtime last: the ratios are against it.
        let hosts = [
            Host::start(
                "pwchain serve",
                pw,
                &dir.path().join(format!("{name}-pw.log")),
                None,
            ),
            Host::start(
                "pwchain --lanes",
                lanes,
                &dir.path().join(format!("{name}-lanes.log")),
                None,
            ),
            Host::start(
                "wasmtime serve",
                wt,
                &dir.path().join(format!("{name}-wt.log")),
                None,
            ),
        ];
        println!("{name} ({} plugins in front of echo)", plugins.len());
        for connections in [1, 16] {
            if connections == 16 {
                for host in &hosts {
                    host.reset_peak();
                }
            }
            let mut best: [Best; 3] = Default::default();
            runtime.block_on(async {
                for host in &hosts {
                    load(host.addr, 0.5, connections).await; // warm up
                }
                for _ in 0..rounds {
                    for (host, best) in hosts.iter().zip(&mut best) {
                        let before = host.cpu_seconds(ticks);
                        let figures = load(host.addr, seconds, connections).await;
                        best.add(figures, host.cpu_seconds(ticks) - before);
                    }
                }
            });
            let [pw, lanes, wt] = &best;
            pw.print(&hosts[0].name, connections);
            lanes.print(&hosts[1].name, connections);
            wt.print(&hosts[2].name, connections);
            let (ratio, lanes_ratio) = (pw.rps() / wt.rps(), lanes.rps() / wt.rps());
            // Above 1: pwchain spends less CPU on a request than wasmtime.
            let (cpu, lanes_cpu) = (
                wt.cpu_per_request / pw.cpu_per_request,
                wt.cpu_per_request / lanes.cpu_per_request,
            );
            println!(
                "  pwchain/wasmtime {connections:>2} conn: throughput {ratio:.2}x, with --lanes {cpus} {lanes_ratio:.2}x; CPU per request (wasmtime/pwchain) {cpu:.2}x, with --lanes {lanes_cpu:.2}x"
            );
            summary.push(format!(
                "{name:<5} {connections:>2} conn: pwchain/wasmtime throughput {ratio:.2}x, --lanes {lanes_ratio:.2}x; CPU per request {:.1} µs, {:.1} µs vs {:.1} µs ({cpu:.2}x, {lanes_cpu:.2}x); p50 {:.1} µs, {:.1} µs vs {:.1} µs",
                pw.cpu_per_request * 1e6,
                lanes.cpu_per_request * 1e6,
                wt.cpu_per_request * 1e6,
                pw.p50_us(),
                lanes.p50_us(),
                wt.p50_us()
            ));
        }
        for host in &hosts {
            let peak = host.status("VmHWM:");
            println!(
                "  {:<15} memory: {:.1} MiB before the first request, peak {:.1} MiB under 16 connections: {:.2} MiB per concurrent request",
                host.name,
                host.idle_rss_kib as f64 / 1024.0,
                peak as f64 / 1024.0,
                peak.saturating_sub(host.idle_rss_kib) as f64 / 1024.0 / 16.0
            );
        }
    }
    println!("summary ({rounds} rounds of {seconds} s each, best round per host):");
    for line in summary {
        println!("  {line}");
    }
}
