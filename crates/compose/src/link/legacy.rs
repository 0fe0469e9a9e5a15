//! Runs of wrapped proxy-wasm modules (`wit/legacy.wit`): one built-in
//! driver for up to [`SLOTS`] consecutive wrapped plugins, each its module
//! and its own state. The driver takes each request and response apart
//! once and rebuilds them once, as Envoy's filters share one header map, so
//! a wrapped filter in a run costs its callbacks, not a rebuilt request and
//! response. `pwchain wrap` links a run of one.

use super::{Graph, builtins, providers};
use crate::error::{Error, GraphError};
use crate::model::{LegacyParts, Stage};
use crate::policy::SideCalls;
use wac_graph::NodeId;
use wasmparser::Parser;

/// How many plugins one driver takes (its `p0`…`p7` imports); a longer
/// run is split.
pub const SLOTS: usize = 8;

const CONFIG: &str = "wasi:config/store@0.2.0-rc.1";
const CALLBACKS: &str = "pwchain:proxy/legacy-callbacks@0.1.0";
const CONTROL: &str = "pwchain:proxy/legacy-control@0.1.0";
const HOST: &str = "pwchain:proxy/legacy-host@0.1.0";

/// Whether `stage` can share a driver with its wrapped neighbours: a
/// module compose wrapped, with no route match of its own (which stands in
/// front of one hop) and no side-call policy (which filters one client).
pub(crate) fn fusable(stage: &Stage) -> bool {
    stage.route.is_none()
        && stage
            .legacy
            .as_ref()
            .is_some_and(|parts| !parts.calls || stage.settings.side_calls == SideCalls::Allow)
}

/// The nodes of a linked run.
pub(crate) struct RunNodes {
    /// The driver: its `wasi:http/handler` export is the run's entry and
    /// its import the run's next hop; its client import is left open when
    /// a module calls `proxy_http_call`.
    pub driver: NodeId,
    /// Each plugin's state, in order: their `legacy-shared` and
    /// `legacy-metrics` imports are left open.
    pub states: Vec<NodeId>,
}

/// Adds a run to `graph`: the driver as `driver_node`, with its store, and
/// for each `(name, parts)` the module as `{name}-module` and its state as
/// `name`.
pub(crate) fn link(
    graph: &mut Graph,
    driver_node: &str,
    plugins: &[(&str, &LegacyParts)],
) -> Result<RunNodes, Error> {
    if plugins.is_empty() || plugins.len() > SLOTS {
        return Err(GraphError::generated(
            "a run of wrapped modules",
            format!("it has {} plugins (1 to {SLOTS} fit)", plugins.len()),
        )
        .into());
    }
    let wire = |graph: &mut Graph, to, import: &str, from, export: &str| {
        graph
            .wire(to, import, from, export)
            .map_err(|e| GraphError::generated(format!("the wrapper's link of `{import}`"), e))
    };
    let mut entries = vec![("plugins".to_string(), plugins.len().to_string())];
    for (i, (_, parts)) in plugins.iter().enumerate() {
        entries.extend(
            parts
                .settings
                .iter()
                .map(|(key, value)| (format!("{i}.{key}"), value.clone())),
        );
    }
    let driver = graph.instance(
        builtins::LEGACY_DRIVER_PACKAGE,
        driver_node,
        builtins::LEGACY_DRIVER,
    )?;
    let mut slots = Vec::with_capacity(plugins.len());
    for (name, parts) in plugins {
        let node = format!("{name}-module");
        let module = graph.instance(&format!("pwchain:{node}"), &node, &parts.plugin)?;
        let state = graph.instance(builtins::LEGACY_STATE_PACKAGE, name, builtins::LEGACY_STATE)?;
        // A module that makes no hostcall at all leaves its state unused.
        if imports(&parts.plugin).iter().any(|i| i == HOST) {
            wire(graph, module, HOST, state, HOST)?;
        }
        slots.push((module, state));
    }
    // Slots past the run's end are never called; the first plugin's parts
    // fill them, as the driver's type-only `legacy-control` import.
    for slot in 0..SLOTS {
        let (module, state) = slots.get(slot).unwrap_or(&slots[0]);
        wire(
            graph,
            driver,
            &format!("p{slot}-callbacks"),
            *module,
            CALLBACKS,
        )?;
        wire(graph, driver, &format!("p{slot}-control"), *state, CONTROL)?;
    }
    wire(graph, driver, CONTROL, slots[0].1, CONTROL)?;
    let config = format!("{driver_node}-config");
    let store = graph.instance(
        &format!("pwchain:{config}"),
        &config,
        &providers::config_store("0.2.0-rc.1", &entries)?,
    )?;
    wire(graph, driver, CONFIG, store, CONFIG)?;
    if !plugins.iter().any(|(_, parts)| parts.calls) {
        let client = format!("wasi:http/client@{}", providers::http_version());
        let node = format!("{driver_node}-deny-calls");
        let deny = graph.instance(
            &format!("pwchain:{node}"),
            &node,
            &providers::deny_calls(&client)?,
        )?;
        wire(graph, driver, &client, deny, &client)?;
    }
    Ok(RunNodes {
        driver,
        states: slots.into_iter().map(|(_, state)| state).collect(),
    })
}

/// The names a component imports.
fn imports(component: &[u8]) -> Vec<String> {
    let mut names = Vec::new();
    for payload in Parser::new(0).parse_all(component).flatten() {
        if let wasmparser::Payload::ComponentImportSection(section) = payload {
            for import in section.into_iter().flatten() {
                names.push(import.name.name.to_string());
            }
        }
    }
    names
}
