//! OCI registries: references, the client (CNCF Wasm artifacts, auth from
//! Docker's and wkg's configuration, transfers) in [`registry`], and
//! cosign-compatible signatures in [`signing`], made and checked with the
//! key files of [`keys`].

pub mod keys;
pub mod registry;
pub mod signing;
