//! Linking a chain into one component with wac-graph: each plugin's next
//! hop is given the next plugin's `handler` export, the first plugin's
//! `handler` becomes the composite's export, and every import left over
//! (side calls, clocks, cli, …) becomes an import of the composite, merged
//! across plugins.

use crate::builtins;
use crate::error::{Error, PluginProblem};
use crate::inspect::{Inspection, Role};
use crate::record::{self, ChainRecord, StageRecord};
use std::collections::HashMap;
use std::path::Path;
use wac_graph::types::Package;
use wac_graph::{CompositionGraph, EncodeOptions, NodeId, PackageId, Processor};

/// A component in memory, inspected and ready to be linked.
#[derive(Debug, Clone)]
pub struct Stage {
    pub name: String,
    /// Where it came from, for the chain record.
    pub source: String,
    pub bytes: Vec<u8>,
    /// `sha256:<hex>` of `bytes`.
    pub digest: String,
    pub info: Inspection,
}

/// What answers after the last plugin.
#[derive(Debug, Clone)]
pub enum Terminal {
    /// Nothing: the last plugin is a service.
    None,
    /// A service component.
    Service(Box<Stage>),
    /// The built-in forwarding terminator.
    Forward,
    /// The host provides the next hop.
    Host,
}

/// An ordered chain, outermost plugin first.
#[derive(Debug, Clone)]
pub struct Chain {
    pub name: String,
    pub plugins: Vec<Stage>,
    pub terminal: Terminal,
}

/// A composed chain.
#[derive(Debug, Clone)]
pub struct Composite {
    /// The component, chain record included.
    pub bytes: Vec<u8>,
    pub record: ChainRecord,
    /// Total size of the components that went in.
    pub input_bytes: usize,
}

impl Chain {
    /// Checks that every stage can stand where it stands.
    pub fn check(&self) -> Result<(), Error> {
        let problem = |stage: &Stage, problem| {
            Err(Error::Plugin {
                plugin: stage.name.clone(),
                problem,
            })
        };
        let Some(last) = self.plugins.last() else {
            return Err(Error::Compose("the chain has no plugins".into()));
        };
        for (stage, next) in self.plugins.iter().zip(self.plugins.iter().skip(1)) {
            if stage.info.role == Role::Service {
                return problem(
                    stage,
                    PluginProblem::ServiceNotLast {
                        next: next.name.clone(),
                    },
                );
            }
        }
        match (&last.info.next_hop, &self.terminal) {
            (None, Terminal::None) | (Some(_), Terminal::Forward | Terminal::Host) => Ok(()),
            (None, _) => problem(last, PluginProblem::ServiceBeforeOrigin),
            (Some(hop), Terminal::None) => problem(
                last,
                PluginProblem::MiddlewareLast {
                    import: hop.import.clone(),
                },
            ),
            (Some(_), Terminal::Service(origin)) => match &origin.info.next_hop {
                Some(hop) => problem(
                    origin,
                    PluginProblem::OriginNotService {
                        import: hop.import.clone(),
                    },
                ),
                None => Ok(()),
            },
        }
    }

    /// The record stored in the composite.
    pub fn record(&self) -> ChainRecord {
        let mut plugins: Vec<StageRecord> = self.plugins.iter().map(stage_record).collect();
        let origin = match &self.terminal {
            Terminal::None => "none".to_string(),
            Terminal::Forward => "forward".to_string(),
            Terminal::Host => "host".to_string(),
            Terminal::Service(service) => {
                plugins.push(stage_record(service));
                service.name.clone()
            }
        };
        ChainRecord {
            pwchain: env!("CARGO_PKG_VERSION").to_string(),
            name: self.name.clone(),
            plugins,
            origin,
        }
    }

    /// Every stage in request order, the built-in terminator included.
    pub fn stages(&self) -> Result<Vec<Stage>, Error> {
        let mut stages = self.plugins.clone();
        match &self.terminal {
            Terminal::Service(service) => stages.push(service.as_ref().clone()),
            Terminal::Forward => stages.push(forward_stage()?),
            Terminal::None | Terminal::Host => {}
        }
        Ok(stages)
    }

    /// Links the chain into one component and validates it.
    pub fn compose(&self) -> Result<Composite, Error> {
        self.check()?;
        let stages = self.stages()?;
        let mut graph = CompositionGraph::new();
        let mut packages: HashMap<&str, PackageId> = HashMap::new();
        let mut instances: Vec<NodeId> = Vec::with_capacity(stages.len());
        for stage in &stages {
            let package = match packages.get(stage.digest.as_str()) {
                Some(id) => *id,
                None => {
                    let id = register(&mut graph, &package_name(stage), &stage.bytes)?;
                    packages.insert(&stage.digest, id);
                    id
                }
            };
            let instance = graph.instantiate(package);
            graph.set_node_name(instance, &stage.name);
            instances.push(instance);
        }

        for (i, pair) in stages.windows(2).enumerate() {
            let (stage, next) = (&pair[0], &pair[1]);
            let (Some(hop), Some(entry)) = (&stage.info.next_hop, &next.info.entry) else {
                continue;
            };
            let export = graph
                .alias_instance_export(instances[i + 1], entry)
                .map_err(|e| Error::Compose(format!("`{}`: {e}", next.name)))?;
            graph
                .set_instantiation_argument(instances[i], &hop.import, export)
                .map_err(|e| Error::Link {
                    from: stage.name.clone(),
                    to: next.name.clone(),
                    import: hop.import.clone(),
                    export: entry.clone(),
                    reason: error_chain(&e),
                })?;
        }

        let first = &stages[0];
        let entry = first
            .info
            .entry
            .as_ref()
            .ok_or_else(|| Error::Compose(format!("`{}` has no entry", first.name)))?;
        let export = graph
            .alias_instance_export(instances[0], entry)
            .map_err(|e| Error::Compose(e.to_string()))?;
        graph
            .export(export, entry)
            .map_err(|e| Error::Compose(e.to_string()))?;

        let mut bytes = graph
            .encode(EncodeOptions {
                define_components: true,
                validate: true,
                processor: Some(Processor {
                    name: "pwchain",
                    version: env!("CARGO_PKG_VERSION"),
                }),
            })
            .map_err(|e| Error::Encode(error_chain(&e)))?;
        let record = self.record();
        record::append(&mut bytes, &record);
        Ok(Composite {
            bytes,
            record,
            input_bytes: stages.iter().map(|s| s.bytes.len()).sum(),
        })
    }
}

/// The WAC/graph package name of a stage: `chain:<name>`, or the built-in's.
pub(crate) fn package_name(stage: &Stage) -> String {
    if stage.source == builtins::FORWARD_PACKAGE {
        stage.source.clone()
    } else {
        format!("chain:{}", stage.name)
    }
}

pub(crate) fn forward_stage() -> Result<Stage, Error> {
    Stage::from_bytes(
        "forward",
        builtins::FORWARD.to_vec(),
        builtins::FORWARD_PACKAGE.to_string(),
        Path::new("<built-in forward>"),
    )
}

fn register(graph: &mut CompositionGraph, name: &str, bytes: &[u8]) -> Result<PackageId, Error> {
    let package = Package::from_bytes(name, None, bytes.to_vec(), graph.types_mut())
        .map_err(|e| Error::Compose(format!("`{name}`: {e:#}")))?;
    graph
        .register_package(package)
        .map_err(|e| Error::Compose(format!("`{name}`: {e}")))
}

fn stage_record(stage: &Stage) -> StageRecord {
    StageRecord {
        name: stage.name.clone(),
        source: stage.source.clone(),
        digest: stage.digest.clone(),
        role: stage.info.role.to_string(),
    }
}

/// An error and all its causes on one line.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
