//! pwchain's built-in shared data, shared queues and metrics for wrapped
//! proxy-wasm modules. In a chain, one instance serves every wrapped plugin
//! of the composite instance, as Envoy shares them between the plugins of
//! a VM. Its metrics are the default, kept in the composite instance; a
//! host that aggregates them (`pwchain serve`) provides `legacy-metrics`
//! itself when the chain is composed with `filter-metrics = "host"`.
//!
//! Built from this source and embedded in the `pwchain` binary; a test checks
//! that the committed `crates/compose/builtins/legacy-shared.wasm` matches it.

use exports::pwchain::proxy::legacy_metrics::Guest as Metrics;
use exports::pwchain::proxy::legacy_shared::Guest;
use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};

wit_bindgen::generate!({
    path: "../../../wit",
    world: "pwchain:proxy/legacy-shared-store",
    generate_all,
});

/// The ABI's statuses.
const OK: u32 = 0;
const NOT_FOUND: u32 = 1;
const BAD_ARGUMENT: u32 = 2;
/// The ABI's metric types.
const COUNTER: u32 = 0;
const HISTOGRAM: u32 = 2;
const EMPTY: u32 = 7;
const CAS_MISMATCH: u32 = 8;

struct Queue {
    name: Vec<u8>,
    items: VecDeque<Vec<u8>>,
    /// The plugins that registered it, and whether each has been told of
    /// its items.
    owners: Vec<(String, bool)>,
}

#[derive(Default)]
struct Shared {
    /// Values and their CAS tokens (never 0 once set).
    data: HashMap<Vec<u8>, (Vec<u8>, u32)>,
    /// Queue `id` is at `id - 1`.
    queues: Vec<Queue>,
    /// Metric `id` is at `id - 1`: name, kind, value (a histogram keeps
    /// its last value).
    metrics: Vec<(String, u32, i64)>,
}

thread_local! {
    static SHARED: RefCell<Shared> = RefCell::default();
}

fn with<T>(f: impl FnOnce(&mut Shared) -> T) -> T {
    SHARED.with(|shared| f(&mut shared.borrow_mut()))
}

fn queue(shared: &mut Shared, id: u32) -> Option<&mut Queue> {
    shared.queues.get_mut((id as usize).wrapping_sub(1))
}

struct Component;

impl Guest for Component {
    fn get_data(key: Vec<u8>) -> Result<(Vec<u8>, u32), u32> {
        with(|shared| shared.data.get(&key).cloned().ok_or(NOT_FOUND))
    }

    fn set_data(key: Vec<u8>, value: Vec<u8>, cas: u32) -> u32 {
        with(|shared| {
            let entry = shared.data.entry(key).or_insert((Vec::new(), 0));
            if cas != 0 && cas != entry.1 {
                return CAS_MISMATCH;
            }
            *entry = (value, entry.1.wrapping_add(1).max(1));
            OK
        })
    }

    fn register_queue(owner: String, name: Vec<u8>) -> u32 {
        with(|shared| {
            let id = match shared.queues.iter().position(|q| q.name == name) {
                Some(index) => index + 1,
                None => {
                    shared.queues.push(Queue {
                        name,
                        items: VecDeque::new(),
                        owners: Vec::new(),
                    });
                    shared.queues.len()
                }
            } as u32;
            if let Some(queue) = queue(shared, id)
                && !queue.owners.iter().any(|(o, _)| *o == owner)
            {
                queue.owners.push((owner, false));
            }
            id
        })
    }

    fn resolve_queue(name: Vec<u8>) -> Result<u32, u32> {
        with(|shared| {
            let found = shared.queues.iter().position(|q| q.name == name);
            found.map(|i| i as u32 + 1).ok_or(NOT_FOUND)
        })
    }

    fn enqueue(id: u32, value: Vec<u8>) -> u32 {
        with(|shared| match queue(shared, id) {
            Some(queue) => {
                queue.items.push_back(value);
                for (_, told) in &mut queue.owners {
                    *told = false;
                }
                OK
            }
            None => NOT_FOUND,
        })
    }

    fn dequeue(id: u32) -> Result<Vec<u8>, u32> {
        with(|shared| {
            let queue = queue(shared, id).ok_or(NOT_FOUND)?;
            queue.items.pop_front().ok_or(EMPTY)
        })
    }

    fn take_ready(owner: String) -> Vec<u32> {
        with(|shared| {
            let mut ready = Vec::new();
            for (index, queue) in shared.queues.iter_mut().enumerate() {
                if queue.items.is_empty() {
                    continue;
                }
                for (name, told) in &mut queue.owners {
                    if *name == owner && !*told {
                        *told = true;
                        ready.push(index as u32 + 1);
                    }
                }
            }
            ready
        })
    }
}

impl Metrics for Component {
    fn define(kind: u32, name: String) -> Result<u32, u32> {
        if kind > HISTOGRAM {
            return Err(BAD_ARGUMENT);
        }
        with(|shared| {
            let found = shared.metrics.iter().position(|(n, _, _)| *n == name);
            let index = found.unwrap_or_else(|| {
                shared.metrics.push((name, kind, 0));
                shared.metrics.len() - 1
            });
            Ok(index as u32 + 1)
        })
    }

    fn increment(metric: u32, delta: i64) -> u32 {
        with(|shared| match metric_mut(shared, metric) {
            Some((_, HISTOGRAM, _)) => BAD_ARGUMENT,
            Some((_, COUNTER, _)) if delta < 0 => BAD_ARGUMENT,
            Some((_, _, value)) => {
                *value = value.wrapping_add(delta);
                OK
            }
            None => NOT_FOUND,
        })
    }

    fn record(metric: u32, value: u64) -> u32 {
        with(|shared| match metric_mut(shared, metric) {
            Some((_, _, current)) => {
                *current = value as i64;
                OK
            }
            None => NOT_FOUND,
        })
    }

    fn get(metric: u32) -> Result<u64, u32> {
        with(|shared| match metric_mut(shared, metric) {
            Some((_, HISTOGRAM, _)) => Err(BAD_ARGUMENT),
            Some((_, _, value)) => Ok(*value as u64),
            None => Err(NOT_FOUND),
        })
    }
}

fn metric_mut(shared: &mut Shared, id: u32) -> Option<&mut (String, u32, i64)> {
    shared.metrics.get_mut((id as usize).wrapping_sub(1))
}

export!(Component);
