//! What `pwchain serve` counts, in the Prometheus text format (through the
//! `prometheus-client` crate), and what the admin endpoint reports about
//! the chain being served.

use crate::observe::filter_metrics::FilterMetrics;
use crate::observe::stage_timing::StageTimes;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::{Arc, RwLock};
use std::time::Duration;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Answered {
    chain: String,
    /// `2xx`, `4xx`, …
    class: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OfChain {
    chain: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OfStage {
    chain: String,
    /// The stage's name, or a fused run's (`a+b`).
    stage: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Served {
    chain: String,
    digest: String,
    version: String,
}

/// The chain being served, as `/chain` reports it.
#[derive(Clone, Debug)]
pub struct ChainInfo {
    /// The chain's name, from its record.
    pub name: String,
    /// `sha256:…` of the composite.
    pub digest: String,
    /// The chain's record (plugins, digests, settings), as JSON, if the
    /// composite carries one.
    pub record: Option<serde_json::Value>,
    /// Each stage's latency, when the chain was composed with stage timing.
    pub stages: Option<Arc<StageTimes>>,
}

/// The server's counters; cheap to clone (every clone counts into the
/// same registry).
#[derive(Clone)]
pub struct Metrics(Arc<Inner>);

struct Inner {
    registry: Registry,
    requests: Family<Answered, Counter>,
    latency: Family<OfChain, Histogram, fn() -> Histogram>,
    stage_seconds: Family<OfStage, Histogram, fn() -> Histogram>,
    in_flight: Gauge,
    instances_created: Counter,
    instances_reused: Counter,
    traps: Counter,
    timeouts: Counter,
    memory_kills: Counter,
    shed: Counter,
    reloads: Counter,
    reload_failures: Counter,
    store_failures: Counter,
    info: Family<Served, Gauge>,
    serving: RwLock<Option<ChainInfo>>,
    /// What wrapped proxy-wasm filters define, under their own names.
    filters: Arc<FilterMetrics>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        fn latency() -> Histogram {
            // 50 µs to about 13 s.
            Histogram::new(exponential_buckets(50e-6, 2.0, 19))
        }
        fn stage_seconds() -> Histogram {
            // 1 µs to about 4 s: a stage's own share can be a few µs.
            Histogram::new(exponential_buckets(1e-6, 2.0, 23))
        }
        let mut inner = Inner {
            requests: Family::default(),
            latency: Family::new_with_constructor(latency),
            stage_seconds: Family::new_with_constructor(stage_seconds),
            in_flight: Gauge::default(),
            instances_created: Counter::default(),
            instances_reused: Counter::default(),
            traps: Counter::default(),
            timeouts: Counter::default(),
            memory_kills: Counter::default(),
            shed: Counter::default(),
            reloads: Counter::default(),
            reload_failures: Counter::default(),
            store_failures: Counter::default(),
            info: Family::default(),
            serving: RwLock::new(None),
            filters: Arc::default(),
            registry: Registry::default(),
        };
        inner
            .registry
            .register_collector(Box::new(inner.filters.clone()));
        let registry = inner.registry.sub_registry_with_prefix("pwchain");
        registry.register(
            "requests",
            "Requests answered, by chain and status class",
            inner.requests.clone(),
        );
        registry.register(
            "request_duration_seconds",
            "Time from a request's arrival to its response's head",
            inner.latency.clone(),
        );
        registry.register(
            "stage_seconds",
            "Time from a request's arrival at a stage to the response's head leaving it: the stage and every stage after it (chains composed with stage timing)",
            inner.stage_seconds.clone(),
        );
        registry.register(
            "requests_in_flight",
            "Requests in the chain now",
            inner.in_flight.clone(),
        );
        let counters = [
            (
                "instances_created",
                "Chain instances created",
                &inner.instances_created,
            ),
            (
                "instances_reused",
                "Requests served by an instance that had served one before",
                &inner.instances_reused,
            ),
            (
                "traps",
                "Requests failed by a trap or a panic in a plugin",
                &inner.traps,
            ),
            (
                "timeouts",
                "Requests that ran past the request timeout",
                &inner.timeouts,
            ),
            (
                "memory_limit_kills",
                "Instances stopped for growing a memory past the limit",
                &inner.memory_kills,
            ),
            (
                "shed",
                "Requests answered 503 because every turn stayed busy",
                &inner.shed,
            ),
            ("reloads", "Chains swapped in", &inner.reloads),
            (
                "reload_failures",
                "New chains refused (did not compose, compile, link or start)",
                &inner.reload_failures,
            ),
            (
                "store_failures",
                "Calls to the state store (--store) that failed: it did not answer in time",
                &inner.store_failures,
            ),
        ];
        for (name, help, counter) in counters {
            registry.register(name, help, counter.clone());
        }
        registry.register(
            "chain_info",
            "The chain being served (1), with its digest and pwchain's version",
            inner.info.clone(),
        );
        Metrics(Arc::new(inner))
    }
}

impl Metrics {
    /// The registry in the Prometheus text exposition format.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.0.registry);
        text
    }

    /// Records that `chain` is now the one served.
    pub fn serving(&self, chain: ChainInfo) {
        let mut serving = self.0.serving.write().unwrap_or_else(|e| e.into_inner());
        if let Some(old) = serving.take() {
            self.0.info.remove(&Served::from(&old));
        }
        self.0.info.get_or_create(&Served::from(&chain)).set(1);
        *serving = Some(chain);
    }

    /// The chain being served, if one is.
    pub fn chain(&self) -> Option<ChainInfo> {
        self.0
            .serving
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The series a chain's answers go to, looked up once (not per
    /// request): one counter per status class, and the latency histogram.
    pub(crate) fn answers(&self, chain: &str) -> Answers {
        let class = |class: u16| {
            self.0
                .requests
                .get_or_create(&Answered {
                    chain: chain.to_string(),
                    class: format!("{class}xx"),
                })
                .clone()
        };
        Answers {
            by_class: [class(1), class(2), class(3), class(4), class(5)],
            latency: self
                .0
                .latency
                .get_or_create(&OfChain {
                    chain: chain.to_string(),
                })
                .clone(),
        }
    }

    /// The per-stage series of `chain`, whose timed stages are `stages`.
    pub(crate) fn stage_times(&self, chain: &str, stages: &[String]) -> Arc<StageTimes> {
        Arc::new(StageTimes::new(stages, |stage| {
            self.0
                .stage_seconds
                .get_or_create(&OfStage {
                    chain: chain.to_string(),
                    stage: stage.to_string(),
                })
                .clone()
        }))
    }

    /// The count of failed store calls, for [`StateStore`](crate::store::StateStore) to add to.
    pub fn store_failures(&self) -> Counter {
        self.0.store_failures.clone()
    }

    pub(crate) fn filters(&self) -> Arc<FilterMetrics> {
        self.0.filters.clone()
    }

    pub(crate) fn in_flight(&self) -> &Gauge {
        &self.0.in_flight
    }
    pub(crate) fn instance_created(&self) {
        self.0.instances_created.inc();
    }
    pub(crate) fn instance_reused(&self) {
        self.0.instances_reused.inc();
    }
    pub(crate) fn trap(&self) {
        self.0.traps.inc();
    }
    pub(crate) fn timeout(&self) {
        self.0.timeouts.inc();
    }
    pub(crate) fn memory_kill(&self) {
        self.0.memory_kills.inc();
    }
    pub(crate) fn shed(&self) {
        self.0.shed.inc();
    }
    /// A new chain was swapped in (`true`) or refused.
    pub fn reloaded(&self, swapped: bool) {
        match swapped {
            true => self.0.reloads.inc(),
            false => self.0.reload_failures.inc(),
        };
    }
}

/// One chain's answer counters; see [`Metrics::answers`].
pub(crate) struct Answers {
    by_class: [Counter; 5],
    latency: Histogram,
}

impl Answers {
    pub(crate) fn record(&self, status: u16, took: Duration) {
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        self.by_class[class].inc();
        self.latency.observe(took.as_secs_f64());
    }
}

impl From<&ChainInfo> for Served {
    fn from(chain: &ChainInfo) -> Served {
        Served {
            chain: chain.name.clone(),
            digest: chain.digest.clone(),
            version: env!("CARGO_PKG_VERSION").to_string(),
        }
    }
}
