//! OCI registries: references, the client (CNCF Wasm artifacts, auth from
//! Docker's and wkg's configuration, transfers) in [`registry`], and
//! cosign-compatible keys and signatures in [`signing`].

pub mod registry;
pub mod signing;
