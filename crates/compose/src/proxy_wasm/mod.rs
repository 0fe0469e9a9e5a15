//! Legacy proxy-wasm filters: core modules built against the proxy-wasm ABI
//! (spec `abi-versions/v0.2.1`) by any SDK. This reads what such a module
//! is and uses, for `inspect` and as the first step of wrapping it.

mod adapter;
pub mod hostcalls;
mod rename;
mod wrap;

pub use adapter::wasi_provided;
pub use rename::rename;

pub use wrap::{WrapOptions, wrap};

use crate::error::ModuleError;
use serde::Serialize;
use std::collections::BTreeMap;

/// What a proxy-wasm module declares.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LegacyModule {
    /// From the `proxy_abi_version_X_Y_Z` export: `0.2.1`, `0.2.0`, `0.1.0`.
    pub abi: String,
    /// The hostcalls it imports from `env` (`proxy_log`, …).
    pub hostcalls: Vec<String>,
    /// Its WASI preview1 imports (a `wasm32-wasip1` build).
    pub wasi: Vec<String>,
    /// The module they come from: `wasi_snapshot_preview1`, or
    /// `wasi_unstable`, its pre-snapshot name (AssemblyScript builds).
    pub wasi_module: Option<String>,
    /// Imports from any other module, as `module.name`.
    pub other_imports: Vec<String>,
    /// The `proxy_on_*` callbacks it exports.
    pub callbacks: Vec<String>,
    /// How the host allocates in its memory: `proxy_on_memory_allocate`,
    /// or `malloc` (older Rust SDK builds for `wasm32-unknown-unknown`).
    pub allocator: Option<String>,
    /// What runs first: `_initialize` (a reactor), `_start`, or none.
    pub start: Option<String>,
}

impl LegacyModule {
    /// Whether this is an ABI the wrapper can take (0.2.x).
    pub fn abi_supported(&self) -> bool {
        self.abi.starts_with("0.2.")
    }
}

/// The proxy-wasm declarations of `bytes`, if it is a core module that
/// exports a `proxy_abi_version_*` marker; `Err` if it is not valid wasm.
pub fn detect(bytes: &[u8]) -> Result<Option<LegacyModule>, ModuleError> {
    Ok(read(bytes)?.map(|(module, _)| module))
}

/// What [`detect`] finds, with the types of the module's imports and
/// exports, read in one pass.
pub(crate) fn read(bytes: &[u8]) -> Result<Option<(LegacyModule, Signatures)>, ModuleError> {
    if !wasmparser::Parser::is_core_wasm(bytes) {
        return Ok(None);
    }
    let found = signatures(bytes)?;
    let exports = &found.exports;
    let Some(abi) = exports
        .keys()
        .find_map(|name| name.strip_prefix("proxy_abi_version_"))
    else {
        return Ok(None);
    };
    let mut module = LegacyModule {
        abi: abi.replace('_', "."),
        hostcalls: Vec::new(),
        wasi: Vec::new(),
        wasi_module: None,
        other_imports: Vec::new(),
        callbacks: exports
            .keys()
            .filter(|name| name.starts_with("proxy_on_") && *name != "proxy_on_memory_allocate")
            .cloned()
            .collect(),
        allocator: ["proxy_on_memory_allocate", "malloc"]
            .into_iter()
            .find(|name| exports.contains_key(*name))
            .map(str::to_string),
        start: ["_initialize", "_start"]
            .into_iter()
            .find(|name| exports.contains_key(*name))
            .map(str::to_string),
    };
    for import in &found.imports {
        let name = import.name.clone();
        match import.module.as_str() {
            "env" if name.starts_with("proxy_") => module.hostcalls.push(name),
            module_name if adapter::is_wasi(module_name) => {
                module
                    .wasi_module
                    .get_or_insert_with(|| module_name.to_string());
                module.wasi.push(name)
            }
            other => module.other_imports.push(format!("{other}.{name}")),
        }
    }
    Ok(Some((module, found)))
}

/// A function import of a core module, with its core type.
#[derive(Debug, Clone)]
pub(crate) struct Imported {
    pub module: String,
    pub name: String,
    pub params: Vec<&'static str>,
    pub results: Vec<&'static str>,
}

impl Imported {
    /// Its type as WAT: `(param i32 i32) (result i32)`.
    pub fn signature(&self) -> String {
        let mut text = String::new();
        if !self.params.is_empty() {
            text = format!("(param {})", self.params.join(" "));
        }
        if !self.results.is_empty() {
            text = format!("{text} (result {})", self.results.join(" "));
        }
        text.trim().to_string()
    }
}

/// A core function type, value types as WAT names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FuncSig {
    pub params: Vec<&'static str>,
    pub results: Vec<&'static str>,
}

/// The function imports and exports of a core module, with their types.
#[derive(Debug, Default)]
pub(crate) struct Signatures {
    pub imports: Vec<Imported>,
    pub exports: BTreeMap<String, FuncSig>,
}

/// Reads the types of `bytes`' function imports and exports.
pub(crate) fn signatures(bytes: &[u8]) -> Result<Signatures, ModuleError> {
    use wasmparser::{CompositeInnerType, ExternalKind, Parser, Payload, TypeRef, ValType};
    // Hostcalls and callbacks take numbers only; other types are named so
    // that a mismatch can be reported.
    fn name(ty: &ValType) -> &'static str {
        match ty {
            ValType::I32 => "i32",
            ValType::I64 => "i64",
            ValType::F32 => "f32",
            ValType::F64 => "f64",
            ValType::V128 => "v128",
            ValType::Ref(_) => "ref",
        }
    }
    let mut types: Vec<Option<FuncSig>> = Vec::new();
    let mut funcs: Vec<u32> = Vec::new();
    let mut found = Signatures::default();
    let sig = |types: &[Option<FuncSig>], index: u32| {
        types
            .get(index as usize)
            .cloned()
            .flatten()
            .ok_or(ModuleError::NotFunctionType(index))
    };
    for payload in Parser::new(0).parse_all(bytes) {
        match payload? {
            Payload::TypeSection(section) => {
                for group in section {
                    for sub in group?.into_types() {
                        types.push(match &sub.composite_type.inner {
                            CompositeInnerType::Func(f) => Some(FuncSig {
                                params: f.params().iter().map(name).collect(),
                                results: f.results().iter().map(name).collect(),
                            }),
                            _ => None,
                        });
                    }
                }
            }
            Payload::ImportSection(imports) => {
                for import in imports.into_imports() {
                    let import = import?;
                    if let TypeRef::Func(index) = import.ty {
                        let ty = sig(&types, index)?;
                        funcs.push(index);
                        found.imports.push(Imported {
                            module: import.module.to_string(),
                            name: import.name.to_string(),
                            params: ty.params,
                            results: ty.results,
                        });
                    }
                }
            }
            Payload::FunctionSection(section) => {
                for index in section {
                    funcs.push(index?);
                }
            }
            Payload::ExportSection(exports) => {
                for export in exports {
                    let export = export?;
                    if export.kind == ExternalKind::Func {
                        let index = funcs
                            .get(export.index as usize)
                            .ok_or_else(|| ModuleError::NoFunction(export.name.to_string()))?;
                        found
                            .exports
                            .insert(export.name.to_string(), sig(&types, *index)?);
                    }
                }
            }
            _ => {}
        }
    }
    Ok(found)
}

/// pwchain's WIT (`wit/`) with the WASI packages it uses, loaded.
pub(crate) fn legacy_resolve() -> anyhow::Result<wit_parser::Resolve> {
    let (mut resolve, _) = crate::link::providers::wasi_resolve()?;
    resolve.push_str(
        "config.wit",
        include_str!("../../../../wit/deps/config.wit"),
    )?;
    let mut map = wit_parser::SourceMap::new();
    map.push_str("proxy.wit", include_str!("../../../../wit/proxy.wit"));
    map.push_str("legacy.wit", include_str!("../../../../wit/legacy.wit"));
    map.push_str("filter.wit", crate::link::builtins::FILTER_WIT);
    let group = map.parse().map_err(|(_, e)| anyhow::anyhow!("{e}"))?;
    resolve.push_group(group)?;
    Ok(resolve)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_module_without_the_marker_is_not_proxy_wasm() {
        let plain = wat::parse_str("(module (func (export \"_start\")))").unwrap();
        assert_eq!(detect(&plain).unwrap(), None);
        assert_eq!(detect(b"\0asm\x0d\0\x01\0").unwrap(), None, "a component");
    }

    #[test]
    fn markers_imports_and_allocators_are_read() {
        let module = wat::parse_str(
            r#"(module
                (import "env" "proxy_log" (func (param i32 i32 i32) (result i32)))
                (import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32)))
                (import "env" "memcpy_big" (func))
                (memory (export "memory") 1)
                (func $f)
                (export "proxy_abi_version_0_1_0" (func $f))
                (export "proxy_on_request_headers" (func $f))
                (export "malloc" (func $f))
                (export "_initialize" (func $f)))"#,
        )
        .unwrap();
        let found = detect(&module).unwrap().unwrap();
        assert_eq!(found.abi, "0.1.0");
        assert!(!found.abi_supported());
        assert_eq!(found.hostcalls, ["proxy_log"]);
        assert_eq!(found.wasi, ["fd_write"]);
        assert_eq!(found.other_imports, ["env.memcpy_big"]);
        assert_eq!(found.callbacks, ["proxy_on_request_headers"]);
        assert_eq!(found.allocator.as_deref(), Some("malloc"));
        assert_eq!(found.start.as_deref(), Some("_initialize"));
    }
}
