//! Runs: consecutive stages linked behind one built-in driver, which takes
//! each message apart once and rebuilds it once, so a stage costs calls
//! between components, not a rebuilt request and response.
//!
//! - Header filters (`wit/filter.wit`): stages that export
//!   `pwchain:proxy/header-filter`, paired by the built-in `header-seq`
//!   behind `header-run` ([`link`]).
//! - Wrapped proxy-wasm modules (`wit/legacy.wit`): up to eight behind one
//!   `legacy-driver` ([`super::legacy`]).

use super::{Graph, builtins, legacy};
use crate::error::{Error, GraphError};
use crate::inspect::Role;
use crate::model::Stage;
use std::ops::Range;
use wac_graph::NodeId;

/// A hop of the composed chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Hop {
    /// A stage that is a hop of its own: `stages[i]`.
    Stage(usize),
    /// Header filters `stages[range]`, behind one driver.
    Run(Range<usize>),
    /// Two or more wrapped proxy-wasm modules `stages[range]`, behind one
    /// driver.
    Legacy(Range<usize>),
}

impl Hop {
    /// The stages of the hop.
    pub(crate) fn range(&self) -> Range<usize> {
        match self {
            Hop::Stage(i) => *i..*i + 1,
            Hop::Run(range) | Hop::Legacy(range) => range.clone(),
        }
    }
}

/// The hops of `stages` in request order: with `fuse`, each run of
/// consecutive header filters is one hop (a filter with `match` is a run
/// of its own), and so is each run of consecutive wrapped modules that can
/// share a driver, when `wrapped` too (up to eight a driver; a module
/// alone is a stage); without, each filter has a driver of its own.
pub(crate) fn hops(stages: &[Stage], fuse: bool, wrapped: bool) -> Vec<Hop> {
    let mut hops: Vec<Hop> = Vec::new();
    for (i, stage) in stages.iter().enumerate() {
        if fuse && wrapped && legacy::fusable(stage) {
            let joins = match hops.last() {
                Some(Hop::Legacy(run)) => run.end == i && run.len() < legacy::SLOTS,
                Some(Hop::Stage(last)) => last + 1 == i && legacy::fusable(&stages[*last]),
                _ => false,
            };
            match hops.pop() {
                Some(hop) if joins => hops.push(Hop::Legacy(hop.range().start..i + 1)),
                last => hops.extend(last.into_iter().chain([Hop::Stage(i)])),
            }
            continue;
        }
        if stage.info.role != Role::HeaderFilter {
            hops.push(Hop::Stage(i));
            continue;
        }
        // A filter with `match` has a run of its own: the route match
        // stands in front of the whole run.
        let alone = |at: usize| stages[at].route.is_some();
        match hops.last_mut() {
            Some(Hop::Run(run)) if fuse && run.end == i && !alone(run.start) && !alone(i) => {
                run.end = i + 1
            }
            _ => hops.push(Hop::Run(i..i + 1)),
        }
    }
    hops
}

/// The driver's node name for a run: its first filter's, `-run` added.
pub(crate) fn run_node(first: &Stage) -> String {
    format!("{}-run", first.name)
}

/// The names of a run's filters, as its record and `inspect` show it.
pub(crate) fn run_name(filters: &[Stage]) -> String {
    filters
        .iter()
        .map(|s| s.name.as_str())
        .collect::<Vec<_>>()
        .join("+")
}

/// Adds the driver of `filters` (instances already in `nodes`, in order)
/// and the pairs between them to `graph`; returns the driver's node, whose
/// `wasi:http/handler` export is the run's entry and import its next hop.
pub(crate) fn link(
    graph: &mut Graph,
    filters: &[Stage],
    nodes: &[NodeId],
) -> Result<NodeId, Error> {
    let (Some(first), Some(&last)) = (filters.first(), nodes.last()) else {
        return Err(GraphError::generated("a run of header filters", "it is empty").into());
    };
    let driver = graph.instance(
        builtins::HEADER_RUN_PACKAGE,
        &run_node(first),
        builtins::HEADER_RUN,
    )?;
    let export = |stage: &Stage| -> Result<String, Error> {
        stage.info.filter.clone().ok_or_else(|| {
            GraphError::generated("a run of header filters", "a stage is no header filter").into()
        })
    };
    // From the last filter back: each pair takes a filter first and the
    // rest of the run after it.
    let mut rest = (last, export(&filters[filters.len() - 1])?);
    for (stage, &node) in filters.iter().zip(nodes).rev().skip(1) {
        let pair = graph.instance(
            builtins::HEADER_SEQ_PACKAGE,
            &format!("{}-pair", stage.name),
            builtins::HEADER_SEQ,
        )?;
        let wire = |graph: &mut Graph, import: &str, from: NodeId, export: &str| {
            graph
                .wire(pair, import, from, export)
                .map_err(|source| Error::Link {
                    from: format!("{} (its pair)", stage.name),
                    to: stage.name.clone(),
                    import: import.to_string(),
                    export: export.to_string(),
                    source,
                })
        };
        wire(
            graph,
            builtins::HEADER_FILTER_INTERFACE,
            node,
            &export(stage)?,
        )?;
        wire(graph, builtins::HEADER_SEQ_REST, rest.0, &rest.1)?;
        rest = (pair, builtins::HEADER_SEQ_EXPORT.to_string());
    }
    graph
        .wire(driver, builtins::HEADER_FILTER_INTERFACE, rest.0, &rest.1)
        .map_err(|source| Error::Link {
            from: run_node(first),
            to: first.name.clone(),
            import: builtins::HEADER_FILTER_INTERFACE.to_string(),
            export: rest.1.clone(),
            source,
        })?;
    Ok(driver)
}
