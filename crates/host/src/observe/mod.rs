//! What an operator sees of a served chain: Prometheus [`metrics`], the
//! metrics wrapped proxy-wasm filters define (`filter_metrics`, for
//! chains that leave them to the host), each stage's latency in chains
//! composed with stage timing ([`stage_timing`]), the [`admin`] endpoint,
//! and the guests' own output as log lines (`guest_log`).

pub mod admin;
pub(crate) mod filter_metrics;
pub(crate) mod guest_log;
pub mod metrics;
pub mod stage_timing;
