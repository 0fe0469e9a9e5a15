//! Per-stage latency of a chain composed with `[chain] stage-timing =
//! true`. The composite's timing sink writes one line to stderr per
//! request (`pwchain-stage-timing chain=NAME STAGE=NANOS …`); the guest's
//! stderr hands such lines here instead of to the log, and each time lands
//! in the `pwchain_stage_seconds{chain,stage}` histogram and in the table
//! that `/chain` shows.

use prometheus_client::metrics::histogram::Histogram;
use std::sync::atomic::{AtomicU64, Ordering};

/// How every timing line starts (what `plugins/builtins/stage-timing-sink`
/// writes).
pub(crate) const LINE_START: &[u8] = b"pwchain-stage-timing ";

/// The timed stages of one served chain, in request order.
pub struct StageTimes {
    stages: Vec<Stage>,
}

/// One stage's series: what Prometheus sees, and the totals for `/chain`.
struct Stage {
    name: String,
    seconds: Histogram,
    requests: AtomicU64,
    nanos: AtomicU64,
}

impl std::fmt::Debug for StageTimes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.stages.iter().map(|s| s.name.as_str()).collect();
        f.debug_struct("StageTimes")
            .field("stages", &names)
            .finish()
    }
}

impl StageTimes {
    /// The stages `names`, each counting into the histogram `series` gives
    /// it.
    pub(crate) fn new(names: &[String], series: impl Fn(&str) -> Histogram) -> StageTimes {
        StageTimes {
            stages: names
                .iter()
                .map(|name| Stage {
                    name: name.clone(),
                    seconds: series(name),
                    requests: AtomicU64::new(0),
                    nanos: AtomicU64::new(0),
                })
                .collect(),
        }
    }

    /// Records the times of one timing line (without its end of line). A
    /// stage this chain does not have is ignored, as is a malformed field.
    pub(crate) fn read_line(&self, line: &[u8]) {
        let Some(fields) = line.strip_prefix(LINE_START) else {
            return;
        };
        let fields = String::from_utf8_lossy(fields);
        for field in fields.split_ascii_whitespace() {
            let Some((name, nanos)) = field.split_once('=') else {
                continue;
            };
            let (Some(stage), Ok(nanos)) = (
                self.stages.iter().find(|s| s.name == name),
                nanos.parse::<u64>(),
            ) else {
                continue;
            };
            stage.seconds.observe(nanos as f64 / 1e9);
            stage.requests.fetch_add(1, Ordering::Relaxed);
            stage.nanos.fetch_add(nanos, Ordering::Relaxed);
        }
    }

    /// One row a stage, in request order: requests timed, the mean time of
    /// the stage and everything after it, and the stage's own share (its
    /// mean less the next stage's).
    pub fn table(&self) -> Vec<StageRow> {
        let means: Vec<f64> = self
            .stages
            .iter()
            .map(|s| match s.requests.load(Ordering::Relaxed) {
                0 => 0.0,
                n => s.nanos.load(Ordering::Relaxed) as f64 / n as f64 / 1e9,
            })
            .collect();
        self.stages
            .iter()
            .enumerate()
            .map(|(i, s)| StageRow {
                stage: s.name.clone(),
                requests: s.requests.load(Ordering::Relaxed),
                mean_seconds: means[i],
                own_seconds: means[i] - means.get(i + 1).copied().unwrap_or(0.0),
            })
            .collect()
    }
}

/// One stage in `/chain`'s table.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StageRow {
    /// The stage, or a fused run (`a+b`).
    pub stage: String,
    /// Requests that reached the stage.
    pub requests: u64,
    /// Mean time from the request's arrival at the stage to the response's
    /// head leaving it: the stage and everything after it.
    pub mean_seconds: f64,
    /// The stage's own share: its mean less the next stage's. Approximate
    /// when the next stage saw fewer requests (some were answered early).
    pub own_seconds: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_lands_in_its_stages_and_the_table_gives_each_its_own_share() {
        let times = StageTimes::new(&["auth".into(), "a+b".into(), "forward".into()], |_| {
            Histogram::new([1e-3])
        });
        times.read_line(b"pwchain-stage-timing chain=edge auth=9000 a+b=5000 forward=1000");
        times.read_line(b"pwchain-stage-timing chain=edge auth=7000 a+b=3000 forward=1000");
        // Unknown stages, malformed fields and other lines are ignored.
        times.read_line(b"pwchain-stage-timing chain=edge other=5 auth=x auth");
        times.read_line(b"auth=1");
        let table = times.table();
        let rows: Vec<(&str, u64)> = table
            .iter()
            .map(|r| (r.stage.as_str(), r.requests))
            .collect();
        assert_eq!(rows, [("auth", 2), ("a+b", 2), ("forward", 2)]);
        let close = |a: f64, b: f64| (a - b).abs() < 1e-12;
        assert!(close(table[0].mean_seconds, 8e-6), "{table:?}");
        assert!(close(table[0].own_seconds, 4e-6), "{table:?}");
        assert!(close(table[1].own_seconds, 3e-6), "{table:?}");
        assert!(close(table[2].own_seconds, 1e-6), "{table:?}");
    }
}
