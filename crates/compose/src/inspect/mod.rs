//! What a component is, read from its imports and exports (DESIGN.md §1):
//! its role in a chain, its entry, its next hop, its side calls and the
//! rest it leaves to the host.

pub mod graph;
pub mod lift;
pub mod record;

use crate::error::PluginProblem;
use crate::inspect::record::{ChainRecord, WrapRecord};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use wac_types::{ItemKind, Package, Types};

/// A component's role in a chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Exports a handler and imports a next hop.
    Middleware,
    /// Exports a handler and has no next hop: it can only stand last.
    Service,
    /// Exports `pwchain:proxy/header-filter` (`wit/filter.wit`): it reads
    /// and changes heads as plain data, behind a built-in driver.
    HeaderFilter,
    /// Exports no `wasi:http/handler@0.3.x`.
    Other,
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Role::Middleware => "middleware",
            Role::Service => "service",
            Role::HeaderFilter => "header-filter",
            Role::Other => "other",
        })
    }
}

/// How a middleware names its next hop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum HopForm {
    /// `wasi:http/handler` (world `wasi:http/middleware`).
    Handler,
    /// An `origin` interface of handler shape (the seed proposal's form).
    Origin,
}

/// The import a middleware calls the next stage through.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NextHop {
    /// Its full name, with version.
    pub import: String,
    /// `wasi:http/handler` or the seed's `origin`.
    pub form: HopForm,
}

/// The result of [`inspect`].
#[derive(Debug, Clone, Serialize)]
pub struct Inspection {
    /// Service or middleware.
    pub role: Role,
    /// The `wasi:http/handler@0.3.x` export.
    pub entry: Option<String>,
    /// How the entry's `handle` is lifted, when the component lifts it
    /// itself (a plugin; a composite's stages are in its record).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lifted: Option<crate::Lift>,
    /// What it calls the next stage through, if it is a middleware.
    pub next_hop: Option<NextHop>,
    /// The `pwchain:proxy/header-filter` export, if it is a header filter.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
    /// `wasi:http/client` (and 0.2 `outgoing-handler`) imports.
    pub side_calls: Vec<String>,
    /// Every other import, left for the host.
    pub host_imports: Vec<String>,
    /// Exports other than the entry (componentize-py's `init`, …).
    pub other_exports: Vec<String>,
    /// The language runtime built into the plugin, when its toolchain is
    /// recognised.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runtime: Option<Runtime>,
    /// What a reader should know about this component's make-up that the
    /// lists above do not say (a language runtime's extras, mostly).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// WASI packages used, with their versions.
    pub wasi: BTreeMap<String, BTreeSet<String>>,
    /// For a composite made by pwchain: the chain it was made from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chain: Option<ChainRecord>,
    /// For a proxy-wasm module wrapped by `pwchain wrap`: which one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wrapped: Option<WrapRecord>,
}

/// A language runtime that a toolchain compiles into every plugin it builds,
/// with imports and exports of its own that are not the plugin's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Runtime {
    /// CPython, from componentize-py.
    Cpython,
    /// QuickJS, from componentize-qjs.
    Quickjs,
}

impl Runtime {
    /// Told by the names each toolchain's runtime gives its own parts
    /// (they survive stripping; the producers section does not always).
    fn find(bytes: &[u8]) -> Option<Runtime> {
        [
            (Runtime::Quickjs, b"componentize-qjs:shim.js".as_slice()),
            (Runtime::Cpython, b"componentize_py_runtime".as_slice()),
        ]
        .into_iter()
        .find(|(_, mark)| memchr::memmem::find(bytes, mark).is_some())
        .map(|(runtime, _)| runtime)
    }

    /// The runtime and the toolchain that builds it in.
    pub fn describe(self) -> &'static str {
        match self {
            Runtime::Cpython => "CPython, built in by componentize-py (a Python plugin)",
            Runtime::Quickjs => "QuickJS, built in by componentize-qjs (a JavaScript plugin)",
        }
    }
}

/// An interface name `ns:pkg/iface@version`, taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceName<'a> {
    /// `ns:pkg`
    pub package: &'a str,
    /// `wasi:http/handler` (package and interface, no version).
    pub interface: &'a str,
    /// The `@x.y.z` part, if any.
    pub version: Option<semver::Version>,
}

impl<'a> InterfaceName<'a> {
    /// Splits `ns:pkg/interface@version`; `None` for a name that is not one.
    pub fn parse(name: &'a str) -> Option<InterfaceName<'a>> {
        let (path, version) = match name.split_once('@') {
            Some((path, version)) => (path, Some(semver::Version::parse(version).ok()?)),
            None => (name, None),
        };
        let (package, interface) = path.split_once('/')?;
        package.contains(':').then_some(InterfaceName {
            package,
            interface,
            version,
        })
    }

    fn is(&self, package: &str, interface: &str) -> bool {
        self.package == package && self.interface == interface
    }

    /// A `0.3.x` release (not a prerelease).
    fn is_p3_release(&self) -> bool {
        self.version
            .as_ref()
            .is_some_and(|v| v.major == 0 && v.minor == 3 && v.pre.is_empty())
    }

    fn is_prerelease(&self) -> bool {
        self.version.as_ref().is_some_and(|v| !v.pre.is_empty())
    }
}

/// Checks that `bytes` are a valid component, then classifies it.
/// `path` only names the file in errors.
pub fn inspect(bytes: &[u8], path: &Path) -> Result<Inspection, PluginProblem> {
    check_component(bytes, path)?;
    let mut types = Types::new();
    let package = Package::from_bytes("pwchain:inspected", None, bytes.to_vec(), &mut types)
        .map_err(|e| PluginProblem::Invalid {
            path: path.to_path_buf(),
            reason: format!("{e:#}"),
        })?;
    let world = &types[package.ty()];
    let mut inspection = Inspection {
        role: Role::Other,
        entry: None,
        lifted: None,
        next_hop: None,
        filter: None,
        side_calls: Vec::new(),
        host_imports: Vec::new(),
        other_exports: Vec::new(),
        runtime: Runtime::find(bytes),
        notes: Vec::new(),
        wasi: BTreeMap::new(),
        chain: crate::inspect::record::read(bytes),
        wrapped: crate::inspect::record::read_section(
            bytes,
            crate::inspect::record::WRAPPED_SECTION,
        ),
    };

    for name in world.imports.keys().chain(world.exports.keys()) {
        if let Some(parsed) = InterfaceName::parse(name)
            && let Some(("wasi", _)) = parsed.package.split_once(':')
            && let Some(version) = &parsed.version
        {
            inspection
                .wasi
                .entry(parsed.package.to_string())
                .or_default()
                .insert(version.to_string());
        }
    }

    for (name, kind) in &world.exports {
        match InterfaceName::parse(name) {
            Some(n)
                if n.is("wasi:http", "handler")
                    && n.is_p3_release()
                    && inspection.entry.is_none() =>
            {
                inspection.entry = Some(name.clone())
            }
            Some(n) if n.is("pwchain:proxy", "header-filter") && inspection.filter.is_none() => {
                filter_shape(&types, *kind).map_err(|found| PluginProblem::NotHeaderFilter {
                    export: name.clone(),
                    found,
                })?;
                inspection.filter = Some(name.clone())
            }
            _ => inspection.other_exports.push(name.clone()),
        }
    }

    for (name, kind) in &world.imports {
        let parsed = InterfaceName::parse(name);
        let next_hop_form = parsed.as_ref().and_then(|n| {
            if n.is("wasi:http", "handler") && n.is_p3_release() {
                Some(HopForm::Handler)
            } else if n.interface == "origin" && has_handler_shape(&types, *kind) {
                Some(HopForm::Origin)
            } else {
                None
            }
        });
        match (next_hop_form, &parsed) {
            (Some(form), _) if inspection.next_hop.is_none() => {
                inspection.next_hop = Some(NextHop {
                    import: name.clone(),
                    form,
                })
            }
            (_, Some(n))
                if (n.is("wasi:http", "client") && n.is_p3_release())
                    || n.is("wasi:http", "outgoing-handler") =>
            {
                inspection.side_calls.push(name.clone())
            }
            _ => inspection.host_imports.push(name.clone()),
        }
    }

    inspection.role = match (&inspection.entry, &inspection.next_hop, &inspection.filter) {
        (Some(_), Some(_), _) => Role::Middleware,
        (Some(_), None, _) => Role::Service,
        (None, _, Some(_)) => Role::HeaderFilter,
        (None, _, None) => Role::Other,
    };
    inspection.lifted = inspection
        .entry
        .as_deref()
        .and_then(|entry| crate::inspect::lift::exported_lift(bytes, entry, "handle"));
    inspection.notes = notes(&inspection);
    Ok(inspection)
}

/// Plain words for what language toolchains add to a plugin, so that a
/// reader (and `compose`) can tell it apart from what matters to a chain.
fn notes(inspection: &Inspection) -> Vec<String> {
    let mut notes = Vec::new();
    if inspection.entry.is_some() {
        for export in &inspection.other_exports {
            notes.push(
                if export == "exports" && inspection.runtime == Some(Runtime::Cpython) {
                    "export `exports` is componentize-py's `init` hook; chains ignore it"
                        .to_string()
                } else {
                    format!("export `{export}` is not part of the chain contract; chains ignore it")
                },
            );
        }
    }
    // A language runtime's WASI 0.2 imports (a Rust plugin's std imports
    // only `wasi:cli` and `wasi:io`, which every host has).
    let p2: BTreeSet<&str> = inspection
        .host_imports
        .iter()
        .filter_map(|i| InterfaceName::parse(i))
        .filter(|n| n.version.as_ref().is_some_and(|v| v.minor == 2))
        .map(|n| n.package)
        .collect();
    let extra = p2.contains("wasi:sockets") || p2.contains("wasi:filesystem");
    match inspection.runtime {
        Some(runtime) => notes.push(format!(
            "carries {}; its WASI 0.2 imports ({}) are the runtime's: the host must provide them, as `wasmtime serve -Scli` and `pwchain serve` do",
            runtime.describe(),
            p2.into_iter().collect::<Vec<_>>().join(", ")
        )),
        None if extra => {
            let runtime: Vec<&str> = p2
                .into_iter()
                .filter(|p| *p == "wasi:sockets" || *p == "wasi:filesystem")
                .collect();
            notes.push(format!(
                "imports {} (a language runtime's, e.g. CPython's): the host must provide them, as `wasmtime serve -Scli` and `pwchain serve` do",
                runtime.join(" and ")
            ))
        }
        None => {}
    }
    notes
}

impl Inspection {
    /// Why this component cannot be a chain stage at all, if it cannot.
    pub fn unusable(&self) -> Option<PluginProblem> {
        let all = || {
            self.host_imports
                .iter()
                .chain(&self.side_calls)
                .chain(&self.other_exports)
        };
        if let Some(name) = all().find(|n| {
            InterfaceName::parse(n).is_some_and(|n| n.package == "wasi:http" && n.is_prerelease())
        }) {
            return Some(PluginProblem::Prerelease { name: name.clone() });
        }
        if self.entry.is_some() || self.filter.is_some() {
            return None;
        }
        if let Some(export) = self.other_exports.iter().find(|n| {
            InterfaceName::parse(n).is_some_and(|n| n.is("wasi:http", "incoming-handler"))
        }) {
            return Some(PluginProblem::WasiHttp02 {
                export: export.clone(),
            });
        }
        Some(PluginProblem::NoEntry {
            exports: self.other_exports.clone(),
        })
    }
}

/// An instance exporting exactly one function, `handle`, of one parameter
/// and a result: `wasi:http/handler`'s shape.
fn has_handler_shape(types: &Types, kind: ItemKind) -> bool {
    let ItemKind::Instance(id) = kind else {
        return false;
    };
    let exports = &types[id].exports;
    let funcs: Vec<_> = exports
        .iter()
        .filter(|(_, k)| matches!(k, ItemKind::Func(_)))
        .collect();
    match funcs.as_slice() {
        [(name, ItemKind::Func(f))] => {
            let f = &types[*f];
            name.as_str() == "handle" && f.params.len() == 1 && f.result.is_some()
        }
        _ => false,
    }
}

/// Checks that an export named `pwchain:proxy/header-filter` has the
/// contract's functions: `on-request` and `on-response`, each taking a head
/// and returning a verdict. `Err` says what it has instead.
fn filter_shape(types: &Types, kind: ItemKind) -> Result<(), String> {
    let ItemKind::Instance(id) = kind else {
        return Err("it is not an interface".into());
    };
    let mut found = Vec::new();
    let mut fits = 0;
    for (name, kind) in &types[id].exports {
        if let ItemKind::Func(f) = kind {
            let f = &types[*f];
            let (params, result) = (f.params.len(), f.result.is_some());
            if matches!(name.as_str(), "on-request" | "on-response") && params == 1 && result {
                fits += 1;
            }
            found.push(format!(
                "`{name}` ({params} parameter{}, {})",
                if params == 1 { "" } else { "s" },
                if result { "a result" } else { "no result" }
            ));
        }
    }
    if fits == 2 && found.len() == 2 {
        Ok(())
    } else if found.is_empty() {
        Err("no functions".into())
    } else {
        Err(found.join(", "))
    }
}

/// Tells apart "not wasm", "a core module" and "a broken component".
fn check_component(bytes: &[u8], path: &Path) -> Result<(), PluginProblem> {
    if !bytes.starts_with(b"\0asm") {
        let found = match bytes.len() {
            0 => "the file is empty".to_string(),
            _ if bytes.iter().take(64).all(|b| b.is_ascii()) => format!(
                "it starts with text: {:?}",
                String::from_utf8_lossy(&bytes[..bytes.len().min(24)])
            ),
            _ => format!("it starts with bytes {:02x?}", &bytes[..bytes.len().min(8)]),
        };
        return Err(PluginProblem::NotWasm {
            path: path.to_path_buf(),
            found,
        });
    }
    if wasmparser::Parser::is_core_wasm(bytes) {
        return Err(PluginProblem::CoreModule {
            path: path.to_path_buf(),
        });
    }
    wasmparser::Validator::new_with_features(wasmparser::WasmFeatures::all())
        .validate_all(bytes)
        .map(|_| ())
        .map_err(|e| PluginProblem::Invalid {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interface_names() {
        let n = InterfaceName::parse("wasi:http/handler@0.3.2").unwrap();
        assert_eq!((n.package, n.interface), ("wasi:http", "handler"));
        assert!(n.is_p3_release() && !n.is_prerelease());
        let rc = InterfaceName::parse("wasi:http/handler@0.3.0-rc-2025-09-16").unwrap();
        assert!(!rc.is_p3_release() && rc.is_prerelease());
        assert!(
            !InterfaceName::parse("wasi:http/handler@0.2.6")
                .unwrap()
                .is_p3_release()
        );
        assert_eq!(InterfaceName::parse("local:x/y").unwrap().version, None);
        assert!(InterfaceName::parse("init").is_none());
        assert!(InterfaceName::parse("wasi:http/handler@x").is_none());
    }

    #[test]
    fn not_a_component() {
        let path = Path::new("p.wasm");
        assert!(matches!(
            inspect(b"", path),
            Err(PluginProblem::NotWasm { .. })
        ));
        assert!(matches!(
            inspect(b"\0asm\x01\0\0\0", path),
            Err(PluginProblem::CoreModule { .. })
        ));
        assert!(matches!(
            inspect(b"\0asm\x0d\0\x01\0\x01", path),
            Err(PluginProblem::Invalid { .. })
        ));
    }
}
