//! Servers the benches run as the processes a user runs: started, waited
//! for, and measured from `/proc` (CPU time, memory).

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A server process, its address, and its memory before the first request.
pub struct Host {
    pub name: String,
    pub child: Child,
    pub addr: SocketAddr,
    pub idle_rss_kib: u64,
}

impl Host {
    /// Starts `command`, its stderr going to `log` (so that a full pipe
    /// never blocks the server's access log), and waits until it accepts
    /// connections on `listening` (Envoy) or, without one, until it logs
    /// `on http://ADDR/` (`pwchain serve`, `wasmtime serve`).
    pub fn start(
        name: &str,
        mut command: Command,
        log: &Path,
        listening: Option<SocketAddr>,
    ) -> Host {
        let stderr = std::fs::File::create(log).expect("log file");
        let child = command
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        let deadline = Instant::now() + Duration::from_secs(120);
        let addr = loop {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            let found = match listening {
                None => text.split("on http://").nth(1).and_then(|rest| {
                    rest.split(|c: char| c == '/' || c.is_whitespace())
                        .next()?
                        .parse()
                        .ok()
                }),
                Some(addr) => std::net::TcpStream::connect(addr).ok().map(|_| addr),
            };
            if let Some(addr) = found {
                break addr;
            }
            assert!(Instant::now() < deadline, "{name} did not start:\n{text}");
            std::thread::sleep(Duration::from_millis(50));
        };
        let mut host = Host {
            name: name.to_string(),
            child,
            addr,
            idle_rss_kib: 0,
        };
        host.idle_rss_kib = host.status("VmRSS:");
        host
    }

    /// A field of `/proc/PID/status`, in KiB.
    pub fn status(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("/proc/PID/status");
        status
            .lines()
            .find_map(|line| line.strip_prefix(field))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no {field} in /proc/PID/status"))
    }

    /// CPU time the process has used (user + system), in seconds.
    pub fn cpu_seconds(&self, ticks_per_second: f64) -> f64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id()))
            .expect("/proc/PID/stat");
        // The fields after the command name, which is in parentheses and
        // may hold spaces: utime and stime are the 12th and 13th of them.
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map_or("", |(_, rest)| rest)
            .split_whitespace()
            .collect();
        let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok());
        match (ticks(11), ticks(12)) {
            (Some(user), Some(system)) => (user + system) / ticks_per_second,
            _ => panic!("no utime/stime in /proc/PID/stat: {stat}"),
        }
    }

    /// Forgets the peak so far (`VmHWM` restarts from the current RSS).
    pub fn reset_peak(&self) {
        std::fs::write(format!("/proc/{}/clear_refs", self.child.id()), "5")
            .expect("reset the peak RSS");
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The kernel's clock ticks per second, the unit of `/proc/PID/stat`'s
/// CPU times.
pub fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8_lossy(&out.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// `[SECONDS ROUNDS]` from the bench's command line (default 3 s, 3
/// rounds): how long each load round lasts and how many each server gets.
pub fn rounds() -> (f64, usize) {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let seconds = args.first().and_then(|s| s.parse().ok()).unwrap_or(3.0);
    let rounds = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(3);
    (seconds, rounds)
}
