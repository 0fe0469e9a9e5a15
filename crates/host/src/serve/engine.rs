//! The engines chain instances run in (a pooling allocator sized for the
//! requests admitted, and an on-demand one past it), the linker and
//! pre-instantiation per chain, and the epoch ticker that preempts guests.

use super::{EPOCH_TICK, ServeOptions, upstream};
use crate::linker::{ImportSet, linker};
use crate::state::Host;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use wasmtime::Engine;
use wasmtime::component::Component;
use wasmtime_wasi_http::p3::bindings::ServicePre;

/// The engines `serve` uses, both with epoch interruption for timeouts:
/// one with a pooling allocator sized for as many chain instances as fit
/// [`MAX_POOLED_MEMORIES`] (up to `max_requests`; instances come from it
/// while it has room, which is what makes creating and reusing them cheap),
/// and one that allocates on demand, for a burst that outgrows the pool (a
/// burst may start one chain instance per admitted request before any is
/// ready for reuse) or a chain too big to pool. A request never fails for
/// want of a pool slot.
pub(super) struct Engines {
    pub(super) pooled: Option<Engine>,
    pub(super) on_demand: Engine,
}

/// The most linear memories a pool reserves address space for (each
/// reserves gigabytes).
pub(super) const MAX_POOLED_MEMORIES: u32 = 2048;

impl Engines {
    pub(super) fn new(component: &[u8], options: &ServeOptions) -> anyhow::Result<Engines> {
        let mut config = crate::config(options.compile_cache.as_deref())?;
        config.epoch_interruption(true);
        let on_demand = Engine::new(&config)?;
        let per_chain = PerChain::count(component);
        let fit = MAX_POOLED_MEMORIES / per_chain.core_instances.max(1);
        let chains = u32::try_from(options.max_requests + 2)
            .unwrap_or(u32::MAX)
            .min(fit);
        if chains == 0 {
            tracing::info!(
                "allocating instances on demand: a chain with {} core instances is too big to pool",
                per_chain.core_instances
            );
            return Ok(Engines {
                pooled: None,
                on_demand,
            });
        }
        let mut pool = wasmtime::PoolingAllocationConfig::default();
        let slots = |each: u32| each.saturating_mul(chains).max(1);
        pool.total_component_instances(slots(per_chain.components))
            .total_core_instances(slots(per_chain.core_instances))
            .total_memories(slots(per_chain.core_instances))
            .total_tables(slots(per_chain.core_instances))
            // A request holds at most one fiber per component it passes
            // through, and `max_requests` are in the chain at once.
            .total_stacks(
                u32::try_from(options.max_requests)
                    .unwrap_or(u32::MAX)
                    .saturating_mul(per_chain.components + 1)
                    .max(1000),
            );
        config.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pool));
        let pooled = match Engine::new(&config) {
            Ok(engine) => Some(engine),
            Err(e) => {
                tracing::warn!(
                    "pooling allocator unavailable ({e}); allocating instances on demand"
                );
                None
            }
        };
        tracing::debug!("pooling {chains} chain instances; more are allocated on demand");
        Ok(Engines { pooled, on_demand })
    }

    pub(super) fn all(&self) -> Vec<Engine> {
        self.pooled
            .iter()
            .chain([&self.on_demand])
            .cloned()
            .collect()
    }
}

/// `component`, compiled for the on-demand engine, linked for the pooled
/// one: the two engines differ only in how they allocate instances, so the
/// machine code is shared through serialization instead of compiling twice.
pub(super) fn pooled_pre(
    engine: &Engine,
    component: &Component,
    options: &ServeOptions,
) -> anyhow::Result<ServicePre<Host>> {
    let bytes = component.serialize()?;
    // SAFETY: the bytes were serialized just now, in this process, by an
    // engine with the same compilation settings.
    let component = unsafe { Component::deserialize(engine, bytes)? };
    let linker = serve_linker(engine, options)?;
    Ok(ServicePre::new(linker.instantiate_pre(&component)?)?)
}

/// What `serve` links: `wasmtime serve -Scli`'s imports, the next hop when
/// an upstream is set, the filters' metrics and shared data (for chains
/// composed with `filter-metrics = "host"` or `shared-data = "host"`), and
/// `wasi:keyvalue`.
pub(crate) fn serve_linker(
    engine: &Engine,
    options: &ServeOptions,
) -> anyhow::Result<wasmtime::component::Linker<Host>> {
    let mut linker = linker(engine, ImportSet::ServeCli)?;
    if let Some(upstream) = &options.upstream {
        upstream::add_to_linker(
            &mut linker,
            Arc::new(upstream.clone()),
            options.outbound.clone(),
        )?;
    }
    crate::observe::filter_metrics::add_to_linker(&mut linker, options.metrics.filters())?;
    crate::store::legacy::add_to_linker(&mut linker, &options.state)?;
    crate::store::keyvalue::add_to_linker(&mut linker)?;
    Ok(linker)
}

/// What one instance of a composite holds: components and core instances
/// (each core instance has at most one memory and one table of its own).
pub(super) struct PerChain {
    pub(super) components: u32,
    pub(super) core_instances: u32,
}

impl PerChain {
    pub(super) fn count(component: &[u8]) -> PerChain {
        let mut per = PerChain {
            components: 1,
            core_instances: 0,
        };
        for payload in wasmparser::Parser::new(0).parse_all(component).flatten() {
            match payload {
                wasmparser::Payload::InstanceSection(s) => per.core_instances += s.count(),
                wasmparser::Payload::ComponentInstanceSection(s) => per.components += s.count(),
                _ => {}
            }
        }
        per
    }
}

/// Advances the engines' epochs every [`EPOCH_TICK`] while it lives.
pub(super) struct EpochTicker {
    pub(super) stop: Arc<AtomicBool>,
}

impl EpochTicker {
    pub(super) fn start(engines: Vec<Engine>) -> EpochTicker {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        std::thread::spawn(move || {
            while !stopped.load(Ordering::Relaxed) {
                std::thread::sleep(EPOCH_TICK);
                for engine in &engines {
                    engine.increment_epoch();
                }
            }
        });
        EpochTicker { stop }
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
