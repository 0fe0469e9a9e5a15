//! The instances of a served chain and wasmtime-wasi-http's handler around
//! them: how many requests an instance takes on, a store per instance, the
//! workers that run requests, and when an instance is retired.

use super::{EpochTicker, RateLimited, ServeOptions};
use crate::observe::guest_log::GuestLog;
use crate::observe::metrics::Metrics;
use crate::observe::stage_timing::StageTimes;
use crate::state::{Host, http_view};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::time::Sleep;
use wasmtime::component::{Component, TaskGroupId};
use wasmtime::{Engine, Store, StoreContextMut, StoreLimitsBuilder};
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi_http::handler::{
    HandlerState, Instance, Proxy, ShouldAccept, WorkerExpiration, WorkerState, WorkerStatus,
};
use wasmtime_wasi_http::p3::bindings::ServicePre;

/// The instances of one compiled chain, and how they are made.
pub(super) struct Instances {
    /// Instances from the pool (fast to create and to reuse), while it has
    /// room.
    pub(super) pooled: Option<ServicePre<Host>>,
    /// Instances allocated on demand, when the pool is full (a burst) or
    /// unavailable.
    pub(super) on_demand: ServicePre<Host>,
    /// Instances that did not fit the pool, and when that was last logged.
    pub(super) overflow: std::sync::Mutex<RateLimited>,
    pub(super) options: Arc<ServeOptions>,
    /// Requests one instance serves at once; see [`instance_concurrency`].
    pub(super) max_concurrency: usize,
    /// Where the chain's stage timing lines go, if it was composed with
    /// stage timing.
    pub(super) timing: Option<Arc<StageTimes>>,
    pub(super) _ticker: EpochTicker,
}

/// Requests one instance serves at once: `--max-instance-concurrency`, or
/// one when a stage of the chain (by the composite's record, or the
/// component itself) is sync-lifted. Such a stage holds its instance until
/// `handle` returns, so further requests would only queue inside it; with
/// one each, they get instances of their own and run side by side.
pub(super) fn instance_concurrency(
    bytes: &[u8],
    component: &Component,
    engine: &Engine,
    options: &ServeOptions,
) -> usize {
    let sync = match pwchain_compose::inspect::record::read(bytes) {
        Some(record) => record.has_sync_stage(),
        None => component
            .component_type()
            .exports(engine)
            .map(|(name, _)| name)
            .filter(|name| name.starts_with("wasi:http/handler@0.3."))
            .any(|entry| {
                pwchain_compose::inspect::lift::exported_lift(bytes, entry, "handle")
                    == Some(pwchain_compose::Lift::Sync)
            }),
    };
    if sync {
        tracing::info!(
            "a stage of the chain is sync-lifted: each instance serves one request at a time"
        );
        1
    } else {
        options.max_instance_concurrency
    }
}

impl Instances {
    /// A store for one chain instance: its WASI context, memory limit and
    /// epoch deadline.
    pub(super) fn store(&self, engine: &Engine) -> Store<Host> {
        let mut wasi = WasiCtxBuilder::new();
        wasi.stdout(GuestLog::new(&self.options.name, "stdout"))
            .stderr(GuestLog::new(&self.options.name, "stderr").timing(self.timing.clone()));
        for (key, value) in &self.options.env {
            wasi.env(key, value);
        }
        let mut host = Host::new(
            wasi.build(),
            self.options.state.clone(),
            self.options.outbound.clone(),
        );
        host.limits = StoreLimitsBuilder::new()
            .memory_size(self.options.max_memory)
            .trap_on_grow_failure(true)
            .build();
        let mut store = Store::new(engine, host);
        store.limiter(|host| &mut host.limits);
        // Yield to the event loop at every tick, so that expirations are
        // noticed even while a guest spins.
        store.epoch_deadline_async_yield_and_update(1);
        store
    }

    async fn instantiate_on_demand(
        &self,
    ) -> wasmtime::Result<(Store<Host>, wasmtime_wasi_http::p3::bindings::Service)> {
        let mut store = self.store(self.on_demand.engine());
        let instance = self.on_demand.instantiate_async(&mut store).await?;
        Ok((store, instance))
    }
}

/// The chain as one lane's handler sees it: its workers are spawned on,
/// and stay on, the lane's own runtime.
pub(super) struct Lane(pub(super) Arc<Instances>);

impl HandlerState for Lane {
    type StoreData = Host;
    type WorkerExpiration = Expiry;
    type WorkerState = Worker;

    async fn instantiate(&self) -> wasmtime::Result<Instance<Host, Expiry, Worker>> {
        self.0.instance().await
    }
}

impl Instances {
    /// A new instance of the chain, from the pool while it has room.
    pub(super) async fn instance(&self) -> wasmtime::Result<Instance<Host, Expiry, Worker>> {
        let (store, instance) = match &self.pooled {
            Some(pooled) => {
                let mut store = self.store(pooled.engine());
                match pooled.instantiate_async(&mut store).await {
                    Ok(instance) => (store, instance),
                    Err(e)
                        if e.downcast_ref::<wasmtime::PoolConcurrencyLimitError>()
                            .is_some() =>
                    {
                        if let Ok(mut overflow) = self.overflow.lock() {
                            overflow.warn(|before| {
                                tracing::info!(
                                    "the instance pool is full; allocating on demand ({e}; {before} more since the last report)"
                                )
                            });
                        }
                        self.instantiate_on_demand().await?
                    }
                    Err(e) => return Err(e),
                }
            }
            None => self.instantiate_on_demand().await?,
        };
        self.options.metrics.instance_created();
        let proxy = Proxy::P3(instance);
        Ok(Instance {
            store,
            proxy,
            view: http_view,
            expiration: Expiry {
                idle: self.options.idle_timeout,
                request: self.options.request_timeout,
                timer: None,
            },
            state: Worker {
                max_reuse: self.options.max_instance_reuse,
                max_concurrency: self.max_concurrency,
                request_timeout: self.options.request_timeout,
                served: AtomicUsize::new(0),
                metrics: self.options.metrics.clone(),
            },
        })
    }
}

/// Decides how much one instance takes on.
pub(super) struct Worker {
    pub(super) max_reuse: usize,
    pub(super) max_concurrency: usize,
    pub(super) request_timeout: Duration,
    /// Requests this instance has started.
    pub(super) served: AtomicUsize,
    pub(super) metrics: Metrics,
}

impl WorkerState for Worker {
    type StoreData = Host;
    type RequestData = ();

    fn should_accept_request(&self, concurrent: usize, total: usize) -> ShouldAccept {
        if total >= self.max_reuse {
            ShouldAccept::Never
        } else if concurrent >= self.max_concurrency {
            ShouldAccept::No
        } else {
            ShouldAccept::Yes
        }
    }

    fn on_request_start(
        &self,
        _store: StoreContextMut<'_, Host>,
        (): (),
        _task: TaskGroupId,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + Sync>> {
        if self.served.fetch_add(1, Ordering::Relaxed) > 0 {
            self.metrics.instance_reused();
        }
        Box::pin(tokio::time::sleep(self.request_timeout))
    }

    fn drop(&self, _store: Store<Host>, result: wasmtime::Result<()>) {
        if let Err(e) = result {
            // wasmtime-wasi-http says "worker panicked" for any worker whose
            // future was dropped; unless a panic is unwinding, it was
            // cancelled (the runtime stopping after a graceful shutdown),
            // which is no fault of the chain.
            if !std::thread::panicking() && e.to_string() == "worker panicked" {
                return tracing::debug!("an idle instance of the chain was dropped at shutdown");
            }
            let chain = format!("{e:?}");
            if chain.contains("forcing trap when growing memory")
                || chain.contains("forcing a memory growth failure")
            {
                self.metrics.memory_kill();
            }
            tracing::warn!(
                "an instance of the chain was dropped after an error (the next request gets a fresh one): {e:#}"
            );
        }
    }
}

/// Retires an instance that has idled, or a request that has run, too long.
pub(super) struct Expiry {
    pub(super) idle: Duration,
    pub(super) request: Duration,
    pub(super) timer: Option<Pin<Box<Sleep>>>,
}

impl WorkerExpiration for Expiry {
    fn poll(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        status: WorkerStatus,
        start: Instant,
    ) -> Poll<()> {
        let this = self.get_mut();
        let limit = match status {
            WorkerStatus::Idle => this.idle,
            WorkerStatus::Requests | WorkerStatus::PostReturn => this.request,
        };
        let deadline = tokio::time::Instant::from_std(start + limit);
        let timer = this
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if timer.deadline() != deadline {
            timer.as_mut().reset(deadline);
        }
        timer.as_mut().poll(cx)
    }
}
