//! The end-to-end tests, one binary with a module per area: real plugins
//! built once per run, the real `pwchain` binary, real wasmtime, real HTTP
//! on loopback, a real OCI registry, and the real `wasmtime serve`, Node.js
//! and Envoy beside pwchain. `support` holds what the areas share.

mod support;

mod admin;
mod compose;
mod envoy;
mod filters;
mod grpc;
mod host;
mod import;
mod js;
mod legacy;
mod new;
mod other_hosts;
mod policy;
mod python;
mod registry;
mod reload;
mod routes;
mod sdks;
mod serve;
mod signing;
mod state;
mod timing;
mod tls;
mod trailers;
