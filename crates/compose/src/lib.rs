//! pwchain's library: turn a chain manifest into one composed component.
//!
//! ```text
//! manifest ──▶ resolve ──────────▶ inspect ──▶ link (wac-graph) ──▶ output
//! (chain.toml)  (path | oci | pkg,  (roles,     (next hops, built-ins,  (atomic
//!               lock, cache)        lifting)    encode, validate)       write)
//! ```
//!
//! One module per stage: [`manifest`] (the chain as written, checked),
//! [`resolve`] (plugin bytes from paths, registries and packages; the lock
//! and the cache), [`oci`] (the registry client and signatures),
//! [`inspect`](mod@inspect) (what a component is, and the records a
//! composite carries), [`link`] (composition: next hops, generated
//! components, `.wac`), [`proxy_wasm`] (legacy filters wrapped as
//! components) and [`import`] (Envoy and Istio configurations), over the
//! [`model`] they share (`Chain`, `Stage`, `Origin`) and each stage's
//! [`policy`]. [`pipeline`] is the one orchestration: [`pipeline::load`] runs
//! the stages in order (and settles `pwchain.lock`) in one call.
//!
//! A stage uses only the stages below it ([`LAYERS`], checked by a test),
//! so each can be read without the ones that call it; every error type is
//! in [`error`], by stage.
//!
//! No wasmtime here: running and validating against a host is `pwchain-host`.

#![warn(missing_docs)]

pub mod digest;
pub mod error;
pub mod import;
pub mod inspect;
pub mod link;
pub mod manifest;
pub mod model;
pub mod oci;
pub mod output;
pub mod pipeline;
pub mod policy;
pub mod proxy_wasm;
pub mod resolve;
pub mod route;

pub use digest::digest;
pub use error::{Error, PluginProblem};
pub use inspect::lift::Lift;
pub use inspect::record::ChainRecord;
pub use inspect::{Inspection, Role, inspect};
pub use link::Composite;
pub use manifest::{Manifest, Source};
pub use model::{Chain, Forward, KeptIn, Origin, Stage};
pub use resolve::{Fetched, Step};

/// The modules from the bottom up: a module uses only modules in the rows
/// above its own.
pub const LAYERS: &[&[&str]] = &[
    &["digest", "error", "policy", "route"],
    &["output"],
    &["inspect"],
    &["model"],
    &["manifest", "import"],
    &["link"],
    &["proxy_wasm"],
    &["oci"],
    &["resolve"],
    &["pipeline"],
];

#[cfg(test)]
mod layers {
    use super::LAYERS;
    use std::collections::BTreeMap;
    use std::path::Path;

    /// The crate's own code (tests left out) under `path`.
    fn sources(path: &Path, out: &mut String) {
        if path.is_dir() {
            let mut entries: Vec<_> = std::fs::read_dir(path)
                .unwrap()
                .map(|e| e.unwrap().path())
                .collect();
            entries.sort();
            for entry in entries {
                sources(&entry, out);
            }
        } else if path.is_file() && path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(path).unwrap();
            out.push_str(text.split("#[cfg(test)]").next().unwrap_or_default());
        }
    }

    /// Which module each name the crate root re-exports comes from.
    fn reexports(lib: &str) -> BTreeMap<String, String> {
        let mut names = BTreeMap::new();
        for line in lib.lines() {
            let Some(rest) = line.strip_prefix("pub use ") else {
                continue;
            };
            let module = rest.split("::").next().unwrap_or_default();
            let items = rest
                .trim_end_matches(';')
                .rsplit("::")
                .next()
                .unwrap_or_default();
            for item in items.trim_matches(['{', '}']).split(',') {
                names.insert(item.trim().to_string(), module.to_string());
            }
        }
        names
    }

    #[test]
    fn a_module_uses_only_the_layers_below_it() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let lib = std::fs::read_to_string(src.join("lib.rs")).unwrap();
        let reexported = reexports(&lib);
        let layer_of = |module: &str| LAYERS.iter().position(|row| row.contains(&module));
        let mut wrong = Vec::new();
        for (row, modules) in LAYERS.iter().enumerate() {
            for module in *modules {
                let mut text = String::new();
                sources(&src.join(module), &mut text);
                sources(&src.join(format!("{module}.rs")), &mut text);
                assert!(!text.is_empty(), "no source for the module `{module}`");
                for (at, _) in text.match_indices("crate::") {
                    let name: String = text[at + 7..]
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    let used = reexported.get(&name).cloned().unwrap_or(name);
                    if used == *module {
                        continue;
                    }
                    match layer_of(&used) {
                        Some(below) if below < row => {}
                        _ => wrong.push(format!("{module} uses {used}")),
                    }
                }
            }
        }
        wrong.sort();
        wrong.dedup();
        assert!(wrong.is_empty(), "uses across layers: {wrong:#?}");
    }
}
