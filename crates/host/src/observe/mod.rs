//! What an operator sees of a served chain: Prometheus [`metrics`], the
//! metrics wrapped proxy-wasm filters define (`filter_metrics`, for
//! chains that leave them to the host), the [`admin`] endpoint, and the
//! guests' own output as log lines (`guest_log`).

pub mod admin;
pub(crate) mod filter_metrics;
pub(crate) mod guest_log;
pub mod metrics;
