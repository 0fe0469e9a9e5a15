//! The metrics wrapped proxy-wasm filters define, kept by the host: the
//! `pwchain:proxy/legacy-metrics` import of a chain composed with
//! `filter-metrics = "host"`. As in Envoy, there is one counter, gauge or
//! histogram per name for every instance of every filter (Envoy keeps one
//! per name across its workers), and `/metrics` shows each under its own
//! name (made a valid Prometheus name).

use crate::state::Host;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use std::sync::{Arc, RwLock};
use wasmtime::component::Linker;

/// The interface a chain imports for them.
pub const INTERFACE: &str = "pwchain:proxy/legacy-metrics@0.1.0";

/// The ABI's statuses.
const OK: u32 = 0;
const NOT_FOUND: u32 = 1;
const BAD_ARGUMENT: u32 = 2;

/// Envoy's default histogram buckets (milliseconds, as filters record).
const BUCKETS: [f64; 19] = [
    0.5, 1.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0, 30000.0,
    60000.0, 300000.0, 600000.0, 1800000.0, 3600000.0,
];

#[derive(Debug)]
enum Value {
    Counter(Counter),
    Gauge(Gauge),
    Histogram(Histogram),
}

/// Every metric the filters defined; id `n` is at `n - 1`.
#[derive(Debug, Default)]
pub(crate) struct FilterMetrics {
    defined: RwLock<Vec<(String, Value)>>,
}

impl FilterMetrics {
    fn define(&self, kind: u32, name: String) -> Result<u32, u32> {
        let mut defined = self.defined.write().unwrap_or_else(|e| e.into_inner());
        if let Some(index) = defined.iter().position(|(n, _)| *n == name) {
            return Ok(index as u32 + 1);
        }
        let value = match kind {
            0 => Value::Counter(Counter::default()),
            1 => Value::Gauge(Gauge::default()),
            2 => Value::Histogram(Histogram::new(BUCKETS)),
            _ => return Err(BAD_ARGUMENT),
        };
        defined.push((name, value));
        Ok(defined.len() as u32)
    }

    fn with<T>(&self, id: u32, f: impl FnOnce(&Value) -> Result<T, u32>) -> Result<T, u32> {
        let defined = self.defined.read().unwrap_or_else(|e| e.into_inner());
        match defined.get((id as usize).wrapping_sub(1)) {
            Some((_, value)) => f(value),
            None => Err(NOT_FOUND),
        }
    }

    fn increment(&self, id: u32, delta: i64) -> u32 {
        status(self.with(id, |value| {
            match value {
                Value::Counter(c) if delta >= 0 => {
                    c.inc_by(delta as u64);
                }
                Value::Gauge(g) => {
                    g.inc_by(delta);
                }
                _ => return Err(BAD_ARGUMENT),
            }
            Ok(())
        }))
    }

    fn record(&self, id: u32, recorded: u64) -> u32 {
        status(self.with(id, |value| {
            match value {
                // A counter only grows: recording a value moves it there.
                Value::Counter(c) => {
                    let now = c.get();
                    if recorded > now {
                        c.inc_by(recorded - now);
                    }
                }
                Value::Gauge(g) => {
                    g.set(recorded as i64);
                }
                Value::Histogram(h) => h.observe(recorded as f64),
            }
            Ok(())
        }))
    }

    fn get(&self, id: u32) -> Result<u64, u32> {
        self.with(id, |value| match value {
            Value::Counter(c) => Ok(c.get()),
            Value::Gauge(g) => Ok(g.get() as u64),
            Value::Histogram(_) => Err(BAD_ARGUMENT),
        })
    }
}

fn status(result: Result<(), u32>) -> u32 {
    result.err().unwrap_or(OK)
}

/// A metric name as Prometheus accepts it: `[a-zA-Z_:][a-zA-Z0-9_:]*`
/// (Envoy's dots and the rest become `_`).
fn prometheus_name(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '_' | ':' => c,
            _ => '_',
        })
        .collect();
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

impl prometheus_client::collector::Collector for FilterMetrics {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let defined = self.defined.read().unwrap_or_else(|e| e.into_inner());
        for (name, value) in defined.iter() {
            let name = prometheus_name(name);
            let metric: &dyn EncodeMetric = match value {
                Value::Counter(c) => c,
                Value::Gauge(g) => g,
                Value::Histogram(h) => h,
            };
            let help = "defined by a wrapped proxy-wasm filter";
            let descriptor = encoder.encode_descriptor(&name, help, None, metric.metric_type())?;
            metric.encode(descriptor)?;
        }
        Ok(())
    }
}

/// Provides `legacy-metrics` to the chain, counting into `metrics`.
pub(crate) fn add_to_linker(
    linker: &mut Linker<Host>,
    metrics: Arc<FilterMetrics>,
) -> wasmtime::Result<()> {
    let mut instance = linker.instance(INTERFACE)?;
    let m = metrics.clone();
    instance.func_wrap("define", move |_, (kind, name): (u32, String)| {
        Ok((m.define(kind, name),))
    })?;
    let m = metrics.clone();
    instance.func_wrap("increment", move |_, (id, delta): (u32, i64)| {
        Ok((m.increment(id, delta),))
    })?;
    let m = metrics.clone();
    instance.func_wrap("record", move |_, (id, value): (u32, u64)| {
        Ok((m.record(id, value),))
    })?;
    instance.func_wrap("get", move |_, (id,): (u32,)| Ok((metrics.get(id),)))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_as_envoy_does() {
        let m = FilterMetrics::default();
        let requests = m.define(0, "filter.requests".into()).unwrap();
        assert_eq!(m.define(0, "filter.requests".into()), Ok(requests));
        assert_eq!(m.increment(requests, 2), OK);
        assert_eq!(m.increment(requests, -1), BAD_ARGUMENT);
        assert_eq!(m.record(requests, 5), OK);
        assert_eq!(m.get(requests), Ok(5));
        let level = m.define(1, "filter.level".into()).unwrap();
        assert_eq!(m.increment(level, -3), OK);
        assert_eq!(m.get(level), Ok(-3i64 as u64));
        let took = m.define(2, "filter.took".into()).unwrap();
        assert_eq!(m.record(took, 7), OK);
        assert_eq!(m.get(took), Err(BAD_ARGUMENT));
        assert_eq!(m.increment(took, 1), BAD_ARGUMENT);
        assert_eq!(m.get(99), Err(NOT_FOUND));
        assert_eq!(m.define(7, "x".into()), Err(BAD_ARGUMENT));
        assert_eq!(
            prometheus_name("envoy.wasm-filter.7"),
            "envoy_wasm_filter_7"
        );
        assert_eq!(prometheus_name("7up"), "_7up");
    }
}
