//! What a store holds for one instance of a composite.

use crate::outbound::{Hooks, Outbound};
use crate::store::StateStore;
use std::sync::Arc;
use wasmtime::StoreLimits;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

pub struct Host {
    pub table: ResourceTable,
    /// State kept beyond one request: `wasi:keyvalue` buckets.
    pub state: StateStore,
    /// Where the chain's outgoing requests go out: the server's pools.
    pub hooks: Hooks,
    pub wasi: WasiCtx,
    pub http: WasiHttpCtx,
    pub limits: StoreLimits,
}

impl Host {
    pub fn new(wasi: WasiCtx, state: StateStore, outbound: Arc<Outbound>) -> Host {
        Host {
            table: ResourceTable::new(),
            state,
            hooks: Hooks::new(outbound),
            wasi,
            http: WasiHttpCtx::new(),
            limits: StoreLimits::default(),
        }
    }
}

impl WasiView for Host {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for Host {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

/// The `view` function `ProxyHandler` wants.
pub fn http_view(host: &mut Host) -> WasiHttpCtxView<'_> {
    host.http()
}
