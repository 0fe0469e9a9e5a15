//! `pwchain wrap`: a legacy proxy-wasm module (ABI 0.2.x, any SDK, built
//! for `wasm32-unknown-unknown` or `wasm32-wasip1`) becomes a middleware
//! component that exports `wasi:http/handler` and imports it as its next
//! hop. Three parts are linked (see `wit/legacy.wit`): the module fused
//! with its generated adapters, the built-in state and the built-in
//! driver, whose store carries the configuration.

use super::hostcalls::{self, UNIMPLEMENTED};
use super::{LegacyModule, adapter, read};
use crate::error::{Error, GraphError, ModuleError, WrapProblem};
use crate::inspect::record::{self, WrapRecord};
use crate::link::{Graph, builtins, legacy, providers};
use crate::model::LegacyParts;
use wasmparser::Parser;

/// How to wrap: what Envoy would pass the plugin.
#[derive(Debug, Clone)]
pub struct WrapOptions {
    /// The plugin's name in its log lines.
    pub name: String,
    /// The plugin configuration `on_configure` reads.
    pub configuration: String,
    /// The VM configuration `on_vm_start` reads.
    pub vm_configuration: String,
    /// The plugin's root id, a name as in Envoy (`root_id: "add_header"`):
    /// the `plugin_root_id` property, by which the C++ and AssemblyScript
    /// SDKs pick the root context they registered under it. Default empty.
    pub root_id: String,
    /// Envoy cluster names and the `http(s)://host:port` each stands for
    /// (see [`crate::manifest::cluster_url`]).
    pub clusters: Vec<(String, String)>,
    /// Wrap even when the module imports hostcalls or WASI functions
    /// pwchain does not provide; they answer `Unimplemented` or `ENOSYS`.
    pub allow_unimplemented: bool,
    /// The most body a paused stream may hold (then 413 or 500, as Envoy).
    pub max_body_bytes: usize,
    /// The least level logged (proxy-wasm's 0 trace … 5 critical).
    pub log_level: u32,
    /// Leave the shared data, queues and metrics (`legacy-shared` and
    /// `legacy-metrics`) imports, for a chain to give all its wrapped
    /// plugins one (or leave the metrics to the host); else the component
    /// has its own.
    pub shared_by_chain: bool,
}

impl Default for WrapOptions {
    fn default() -> Self {
        WrapOptions {
            name: "proxy-wasm".into(),
            configuration: String::new(),
            vm_configuration: String::new(),
            root_id: String::new(),
            clusters: Vec::new(),
            allow_unimplemented: false,
            max_body_bytes: 1 << 20,
            log_level: 2,
            shared_by_chain: false,
        }
    }
}

/// A wrapped module.
#[derive(Debug)]
pub struct Wrapped {
    /// The module wrapped alone: a middleware component.
    pub bytes: Vec<u8>,
    /// Its parts, for a chain to link it in a run with its neighbours.
    pub parts: LegacyParts,
    pub module: LegacyModule,
    /// Imported hostcalls that answer `Unimplemented`.
    pub unimplemented: Vec<String>,
    /// What may not work as meant, for the user to read.
    pub warnings: Vec<String>,
}

/// Wraps the module `bytes`; `module` names it in errors.
pub fn wrap(module: &str, bytes: &[u8], options: &WrapOptions) -> Result<Wrapped, Error> {
    let refuse = |problem| Error::wrap(module, problem);
    if Parser::is_component(bytes) {
        return Err(refuse(WrapProblem::IsComponent));
    }
    let (info, signatures) = read(bytes)
        .map_err(|e| refuse(e.into()))?
        .ok_or_else(|| refuse(WrapProblem::NotProxyWasm))?;
    if !info.abi_supported() {
        return Err(refuse(WrapProblem::OldAbi {
            abi: info.abi.to_string(),
        }));
    }
    let allocator = info
        .allocator
        .clone()
        .ok_or_else(|| refuse(WrapProblem::NoAllocator))?;
    // `env` imports that are no hostcall are classified with the hostcalls.
    if let Some(other) = info.other_imports.iter().find(|i| !i.starts_with("env.")) {
        return Err(refuse(WrapProblem::ForeignImport {
            import: other.clone(),
        }));
    }
    let mut unknown = Vec::new();
    let mut unimplemented = Vec::new();
    for import in signatures.imports.iter().filter(|i| i.module == "env") {
        match hostcalls::supported(&import.name) {
            Some(call) => {
                if import.params != call.params() || import.results != ["i32"] {
                    return Err(refuse(WrapProblem::HostcallType {
                        name: import.name.clone(),
                        found: import.signature(),
                        expected: format!("(param {}) (result i32)", call.params().join(" ")),
                    }));
                }
            }
            None if hostcalls::TRAPS.contains(&import.name.as_str()) => {}
            None if hostcalls::NO_OPS.contains(&import.name.as_str()) => {}
            None if UNIMPLEMENTED.contains(&import.name.as_str()) => {
                unimplemented.push(import.name.clone())
            }
            None => unknown.push(import.name.clone()),
        }
    }
    // Preview1 functions Envoy does not give a filter either.
    for import in signatures
        .imports
        .iter()
        .filter(|i| adapter::is_wasi(&i.module))
    {
        if !adapter::wasi_provided(&import.name) {
            unknown.push(format!("{}.{}", import.module, import.name));
        }
    }
    if !unknown.is_empty() {
        if !options.allow_unimplemented {
            return Err(refuse(WrapProblem::Unimplemented { unknown }));
        }
        unimplemented.extend(unknown);
    }
    let module_named =
        named(bytes, &options.name).map_err(|e| refuse(ModuleError::from(e).into()))?;
    let parts = LegacyParts {
        plugin: adapter::fuse(module, &module_named, &signatures, &allocator)?,
        settings: settings(&info, options),
        calls: info.hostcalls.iter().any(|h| h == "proxy_http_call"),
    };
    let mut wrapped = link(&parts, options)?;
    let record = WrapRecord {
        pwchain: env!("CARGO_PKG_VERSION").into(),
        module: crate::digest::digest(bytes),
        abi: info.abi.clone(),
        name: options.name.clone(),
    };
    record::append_section(&mut wrapped, record::WRAPPED_SECTION, &record);
    let mut warnings = Vec::new();
    if !options.root_id.is_empty()
        && !data_holds(bytes, options.root_id.as_bytes())
        && !data_holds(bytes, &utf16_stem(&options.root_id))
    {
        warnings.push(format!(
            "root id `{}`: the module's data holds no such name, so an SDK that picks its root context by name (C++, AssemblyScript) will find none and run its fallback (a no-op context, or an abort)",
            options.root_id
        ));
    }
    Ok(Wrapped {
        bytes: wrapped,
        parts,
        module: info,
        unimplemented,
        warnings,
    })
}

/// `module` with its name section naming the module `name` (the plugin's),
/// so that a trap in it, `_initialize` included, says whose it is in the
/// host's backtrace (`name!function`).
fn named(module: &[u8], name: &str) -> Result<Vec<u8>, wasmparser::BinaryReaderError> {
    let mut out = wasm_encoder::Module::new();
    let mut names = wasm_encoder::NameSection::new();
    names.module(name);
    for payload in Parser::new(0).parse_all(module) {
        let payload = payload?;
        if let wasmparser::Payload::CustomSection(custom) = &payload
            && custom.name() == "name"
        {
            // Keep the other subsections (functions, locals, …) as they are.
            let mut reader = wasmparser::BinaryReader::new(custom.data(), custom.data_offset());
            while !reader.eof() {
                let id = reader.read_u8()?;
                let len = reader.read_var_u32()?;
                let data = reader.read_bytes(len as usize)?;
                if id != 0 {
                    names.raw(id, data);
                }
            }
        } else if let Some((id, range)) = payload.as_section() {
            out.section(&wasm_encoder::RawSection {
                id,
                data: &module[range.start as usize..range.end as usize],
            });
        }
    }
    out.section(&names);
    Ok(out.finish())
}

/// `text` as AssemblyScript keeps a string (UTF-16LE), less its last byte:
/// optimizers trim a segment's trailing zeros, and an ASCII string's last
/// UTF-16 byte is one.
fn utf16_stem(text: &str) -> Vec<u8> {
    let mut bytes: Vec<u8> = text.encode_utf16().flat_map(u16::to_le_bytes).collect();
    bytes.pop();
    bytes
}

/// Whether any data segment of `module` contains `needle` (where SDKs keep
/// the names they register root contexts under).
fn data_holds(module: &[u8], needle: &[u8]) -> bool {
    Parser::new(0).parse_all(module).any(|payload| {
        let Ok(wasmparser::Payload::DataSection(reader)) = payload else {
            return false;
        };
        reader.into_iter().flatten().any(|data| {
            data.data
                .windows(needle.len())
                .any(|window| window == needle)
        })
    })
}

/// What the driver's store holds for the module (see `wit/legacy.wit`).
fn settings(info: &LegacyModule, options: &WrapOptions) -> Vec<(String, String)> {
    [
        ("name", options.name.clone()),
        ("root-id", options.root_id.clone()),
        (
            "clusters",
            options
                .clusters
                .iter()
                .map(|(name, url)| format!("{name}={url}\n"))
                .collect(),
        ),
        ("configuration", options.configuration.clone()),
        ("vm-configuration", options.vm_configuration.clone()),
        ("callbacks", info.callbacks.join("\n")),
        ("max-body-bytes", options.max_body_bytes.to_string()),
        ("log-level", options.log_level.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// Links the module's parts as a run of one, with its own shared data,
/// queues and metrics unless a chain gives them.
fn link(parts: &LegacyParts, options: &WrapOptions) -> Result<Vec<u8>, Error> {
    let mut graph = Graph::default();
    let run = legacy::link(&mut graph, "driver", &[(options.name.as_str(), parts)])?;
    if !options.shared_by_chain {
        let shared = graph.instance(
            builtins::LEGACY_SHARED_PACKAGE,
            "shared",
            builtins::LEGACY_SHARED,
        )?;
        for interface in [
            builtins::LEGACY_SHARED_INTERFACE,
            builtins::LEGACY_METRICS_INTERFACE,
        ] {
            for &state in &run.states {
                graph
                    .wire(state, interface, shared, interface)
                    .map_err(|e| {
                        GraphError::generated(format!("the wrapper's link of `{interface}`"), e)
                    })?;
            }
        }
    }
    graph.encode(
        run.driver,
        &format!("wasi:http/handler@{}", providers::http_version()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_holds_finds_what_the_data_segments_hold() {
        let module =
            wat::parse_str(r#"(module (memory 1) (data (i32.const 8) "a\00d\00d\00_\00cpp"))"#)
                .unwrap();
        assert!(data_holds(&module, b"cpp"));
        assert!(data_holds(&module, &[b'a', 0, b'd', 0, b'd', 0]));
        assert!(!data_holds(&module, b"add"));
        let fixture = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/fixtures/proxy-wasm/as-add-header.wasm"
        ));
        if let Ok(fixture) = fixture {
            assert!(data_holds(&fixture, &utf16_stem("add_header")));
        }
    }

    fn module(imports: &str) -> Vec<u8> {
        wat::parse_str(format!(
            r#"(module {imports}
                (memory (export "memory") 1)
                (func (export "proxy_abi_version_0_2_1"))
                (func (export "malloc") (param i32) (result i32) (i32.const 1024)))"#
        ))
        .unwrap()
    }

    #[test]
    fn a_module_without_hostcalls_or_calls_is_a_middleware() {
        let wrapped = wrap("m", &module(""), &WrapOptions::default()).unwrap();
        let info = crate::inspect(&wrapped.bytes, std::path::Path::new("m")).unwrap();
        assert_eq!(info.role, crate::Role::Middleware, "{info:?}");
        assert!(info.side_calls.is_empty(), "a refusing client is linked in");
        assert!(wrapped.unimplemented.is_empty());
    }

    #[test]
    fn proxy_http_call_leaves_the_client_to_the_host() {
        let imports = r#"(import "env" "proxy_http_call"
            (func (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))"#;
        let wrapped = wrap("m", &module(imports), &WrapOptions::default()).unwrap();
        let info = crate::inspect(&wrapped.bytes, std::path::Path::new("m")).unwrap();
        assert_eq!(
            info.side_calls,
            [format!("wasi:http/client@{}", providers::http_version())]
        );
    }

    #[test]
    fn assemblyscript_abort_traps_without_a_flag() {
        let imports = r#"(import "env" "abort" (func (param i32 i32 i32 i32)))"#;
        let wrapped = wrap("m", &module(imports), &WrapOptions::default()).unwrap();
        assert!(wrapped.unimplemented.is_empty());
    }

    #[test]
    fn known_unimplemented_hostcalls_need_no_flag() {
        let imports = r#"(import "env" "proxy_grpc_cancel" (func (param i32) (result i32)))"#;
        let wrapped = wrap("m", &module(imports), &WrapOptions::default()).unwrap();
        assert_eq!(wrapped.unimplemented, ["proxy_grpc_cancel"]);
    }
}
