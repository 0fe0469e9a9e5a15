//! How a plugin's `handle` is lifted: async (the callback ABI: one
//! instance serves many requests at once) or sync (a plain call, cheaper
//! per hop, but the instance is busy until `handle` returns, so a host
//! gives each request an instance of its own).

use serde::{Deserialize, Serialize};
use wasmparser::{
    CanonicalFunction, CanonicalOption, ComponentAlias, ComponentExternalKind, ComponentInstance,
    ComponentTypeRef, Parser, Payload,
};

/// How a component's `handler` export is lifted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lift {
    /// `async` lift: the export is an async function.
    Async,
    /// Sync lift: the export returns when the work is done.
    Sync,
}

impl std::fmt::Display for Lift {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Lift::Async => "async",
            Lift::Sync => "sync",
        })
    }
}

/// What an entry of the component's function or instance index space is.
enum Def {
    /// `canon lift`, and whether with the `async` option.
    Lift(Lift),
    /// An instance made of named items (kind, index): its exports, or the
    /// arguments of the nested component it instantiates (wit-component
    /// types an exported interface so, passing `handle` as
    /// `import-func-handle`).
    Items(Vec<(String, ComponentExternalKind, u32)>),
    /// An export of another entry of the same space.
    Same(u32),
    /// Imported or aliased: not followed.
    Opaque,
}

/// How `function` of the instance the component exports as `interface` is
/// lifted, when the component lifts it itself (as a plugin built by
/// wit-bindgen, componentize-py or componentize-qjs does); `None` when the
/// export comes from a nested component (a composite) or is absent.
pub fn exported_lift(component: &[u8], interface: &str, function: &str) -> Option<Lift> {
    let mut funcs: Vec<Def> = Vec::new();
    let mut instances: Vec<Def> = Vec::new();
    let mut exported = None;
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(component) {
        let payload = payload.ok()?;
        match payload {
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => depth += 1,
            Payload::End(_) => depth = depth.saturating_sub(1),
            _ if depth > 0 => {}
            Payload::ComponentImportSection(imports) => {
                for import in imports {
                    match import.ok()?.ty {
                        ComponentTypeRef::Func(_) => funcs.push(Def::Opaque),
                        ComponentTypeRef::Instance(_) => instances.push(Def::Opaque),
                        _ => {}
                    }
                }
            }
            Payload::ComponentAliasSection(aliases) => {
                for alias in aliases {
                    if let ComponentAlias::InstanceExport { kind, .. } = alias.ok()? {
                        match kind {
                            ComponentExternalKind::Func => funcs.push(Def::Opaque),
                            ComponentExternalKind::Instance => instances.push(Def::Opaque),
                            _ => {}
                        }
                    }
                }
            }
            Payload::ComponentCanonicalSection(canon) => {
                for function in canon {
                    if let CanonicalFunction::Lift { options, .. } = function.ok()? {
                        let sync = !options.iter().any(|o| matches!(o, CanonicalOption::Async));
                        funcs.push(Def::Lift(if sync { Lift::Sync } else { Lift::Async }));
                    }
                }
            }
            Payload::ComponentInstanceSection(section) => {
                for instance in section {
                    instances.push(match instance.ok()? {
                        ComponentInstance::FromExports(exports) => Def::Items(
                            exports
                                .iter()
                                .map(|e| (e.name.name.to_string(), e.kind, e.index))
                                .collect(),
                        ),
                        ComponentInstance::Instantiate { args, .. } => Def::Items(
                            args.iter()
                                .filter_map(|a| {
                                    let name = a.name.strip_prefix("import-func-")?;
                                    Some((name.to_string(), a.kind, a.index))
                                })
                                .collect(),
                        ),
                    });
                }
            }
            Payload::ComponentExportSection(exports) => {
                for export in exports {
                    let export = export.ok()?;
                    match export.kind {
                        ComponentExternalKind::Func => funcs.push(Def::Same(export.index)),
                        ComponentExternalKind::Instance => {
                            if export.name.name == interface {
                                exported = Some(instances.len() as u32);
                            }
                            instances.push(Def::Same(export.index));
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    let mut instance = exported?;
    let exports = loop {
        match instances.get(instance as usize)? {
            Def::Same(index) => instance = *index,
            Def::Items(items) => break items,
            _ => return None,
        }
    };
    let &(_, _, mut func) = exports
        .iter()
        .find(|(name, kind, _)| name == function && *kind == ComponentExternalKind::Func)?;
    loop {
        match funcs.get(func as usize)? {
            Def::Same(index) => func = *index,
            Def::Lift(lift) => return Some(*lift),
            _ => return None,
        }
    }
}
