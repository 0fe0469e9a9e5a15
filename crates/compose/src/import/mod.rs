//! Other proxies' Wasm filter configurations as a `chain.toml`: an Envoy
//! bootstrap ([`envoy`]) or Istio `WasmPlugin` and `TrafficExtension`
//! resources ([`istio`]), read through `yaml` so that every error points
//! into the file.

pub mod envoy;
pub mod istio;
mod yaml;
