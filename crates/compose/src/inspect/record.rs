//! The record of a chain that pwchain stores in every composite it writes
//! (custom section `pwchain:chain`, JSON), so `inspect` can tell what went
//! into a deployed component.

use serde::{Deserialize, Serialize};

/// Custom section holding the record.
pub const SECTION: &str = "pwchain:chain";

/// What a composite records of its chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainRecord {
    /// Version of pwchain that composed it.
    pub pwchain: String,
    /// The chain's name.
    pub name: String,
    /// Stages in request order.
    pub plugins: Vec<StageRecord>,
    /// What answers after the last plugin: `forward`, `upstream`, `host`,
    /// or the service (also listed last in `plugins`), or `none` when the
    /// last plugin is a service.
    pub origin: String,
    /// Where an `upstream` origin sends requests, as composed (the
    /// terminator's `PWCHAIN_UPSTREAM` may override it where it runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream: Option<String>,
    /// With `[chain] stage-timing = true`: the timed hops in request order
    /// (a fused run under its filters' names joined by `+`), as the timing
    /// lines and `pwchain_stage_seconds` name them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage_timing: Option<Vec<String>>,
}

/// One stage of a recorded chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageRecord {
    /// Its name in the chain.
    pub name: String,
    /// Where it came from, as the manifest said.
    pub source: String,
    /// `sha256:<hex>` of the component's bytes.
    pub digest: String,
    /// `middleware`, `service` or `header-filter`.
    pub role: String,
    /// The keys of its baked-in configuration (values stay out of the
    /// record: they may be secrets).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub config: Vec<String>,
    /// Where its side calls may go.
    #[serde(default)]
    pub side_calls: crate::policy::SideCalls,
    /// How its `handle` is lifted, if known; a host that finds a `sync`
    /// stage gives each request an instance of its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifted: Option<crate::Lift>,
    /// For a header filter: the run it stands in, its filters' names
    /// joined by `+` (`auth+tag`), which one built-in driver serves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<String>,
    /// The trusted key whose signature it carried, when the chain asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified: Option<crate::inspect::record::Verified>,
    /// `match`: the requests it applies to; the others skip it.
    #[serde(rename = "match", default, skip_serializing_if = "Option::is_none")]
    pub route: Option<crate::route::RouteMatch>,
}

impl ChainRecord {
    /// Whether a stage is sync-lifted, so that an instance of the chain
    /// serves one request at a time.
    pub fn has_sync_stage(&self) -> bool {
        self.plugins
            .iter()
            .any(|p| p.lifted == Some(crate::Lift::Sync))
    }

    /// What a chain with sync-lifted stages should know: what it costs in
    /// concurrency, and that the stages behind them still stream.
    pub fn sync_note(&self) -> Option<String> {
        let sync: Vec<&str> = self
            .plugins
            .iter()
            .filter(|p| p.lifted == Some(crate::Lift::Sync))
            .map(|p| p.name.as_str())
            .collect();
        if sync.is_empty() {
            return None;
        }
        Some(format!(
            "{} sync-lifted: an instance of the chain serves one request at a time (`pwchain serve` gives each request its own), and bodies pass through by handle, so the plugins behind stream as before",
            match sync.as_slice() {
                [one] => format!("`{one}` is"),
                many => format!("`{}` are", many.join("`, `")),
            }
        ))
    }
}

/// What `pwchain wrap` stores in the component it makes (custom section
/// `pwchain:wrapped`, JSON): which module went in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WrapRecord {
    /// Version of pwchain that wrapped it.
    pub pwchain: String,
    /// `sha256:<hex>` of the module.
    pub module: String,
    /// Its proxy-wasm ABI version.
    pub abi: String,
    /// The plugin's name in its log lines.
    pub name: String,
}

/// Custom section holding a [`WrapRecord`].
pub const WRAPPED_SECTION: &str = "pwchain:wrapped";

/// Appends the record to `component` as a top-level custom section.
pub fn append(component: &mut Vec<u8>, record: &ChainRecord) {
    append_section(component, SECTION, record);
}

/// The record of a pwchain composite, if `component` carries one at its top
/// level (records of nested components are ignored).
pub fn read(component: &[u8]) -> Option<ChainRecord> {
    read_section(component, SECTION)
}

/// Appends `value` to `component` as the JSON of top-level custom section
/// `name`.
pub fn append_section(component: &mut Vec<u8>, name: &str, value: &impl Serialize) {
    use wasm_encoder::ComponentSection;
    let data = serde_json::to_vec(value).expect("a record always serialises");
    wasm_encoder::CustomSection {
        name: name.into(),
        data: data.into(),
    }
    .append_to_component(component);
}

/// The JSON of top-level custom section `name` of `component`, if it has
/// one that parses.
pub fn read_section<T: serde::de::DeserializeOwned>(component: &[u8], name: &str) -> Option<T> {
    let mut depth = 0usize;
    for payload in wasmparser::Parser::new(0).parse_all(component) {
        match payload.ok()? {
            wasmparser::Payload::ModuleSection { .. }
            | wasmparser::Payload::ComponentSection { .. } => depth += 1,
            wasmparser::Payload::End(_) => depth = depth.saturating_sub(1),
            wasmparser::Payload::CustomSection(c) if depth == 0 && c.name() == name => {
                return serde_json::from_slice(c.data()).ok();
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_through_a_component() {
        // The smallest component: header only.
        let mut component = b"\0asm\x0d\0\x01\0".to_vec();
        assert_eq!(read(&component), None);
        let record = ChainRecord {
            pwchain: "0.1.0".into(),
            name: "edge".into(),
            plugins: vec![StageRecord {
                name: "auth".into(),
                source: "auth.wasm".into(),
                digest: "sha256:00".into(),
                role: "middleware".into(),
                config: vec!["greeting".into()],
                side_calls: crate::policy::SideCalls::Deny,
                lifted: Some(crate::Lift::Sync),
                run: Some("auth+tag".into()),
                verified: Some(crate::inspect::record::Verified {
                    key: "sha256:11".into(),
                    key_file: "keys/acme.pub".into(),
                    signature: "sha256:22".into(),
                }),
                route: Some(crate::route::RouteMatch {
                    path_prefix: vec!["/api".into()],
                    headers: vec![("x-tenant".into(), None)],
                    ..Default::default()
                }),
            }],
            origin: "upstream".into(),
            upstream: Some("http://127.0.0.1:9000".into()),
            stage_timing: None,
        };
        append(&mut component, &record);
        wasmparser::Validator::new_with_features(wasmparser::WasmFeatures::all())
            .validate_all(&component)
            .unwrap();
        assert_eq!(read(&component), Some(record));
    }
}

/// What verified a plugin: recorded in the lock and the composite.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verified {
    /// The fingerprint of the key that verified it.
    pub key: String,
    /// The key's file, as the chain names it.
    pub key_file: String,
    /// The digest of the signature layer that verified.
    pub signature: String,
}
