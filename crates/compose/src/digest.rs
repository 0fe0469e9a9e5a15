//! Content addresses: how pwchain names bytes (a plugin, a layer, a key, a
//! composite), in the `sha256:<hex>` form OCI registries use.

use sha2::{Digest, Sha256};

/// `sha256:<hex>` of `bytes`.
pub fn digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}
