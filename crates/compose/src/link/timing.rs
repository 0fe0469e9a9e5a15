//! Stage timing (`[chain] stage-timing = true`): a built-in timer stands in
//! front of every hop and reports, to the chain's one timing sink, how long
//! the hop and everything after it took to answer. The sink writes each
//! request's times to stderr as one line, which `pwchain serve` reads into
//! its `pwchain_stage_seconds` histograms and other hosts log.

use super::{Graph, Linked, builtin_info, builtins, config_import, providers, runs};
use crate::error::{Error, GraphError};
use crate::model::{Chain, Origin};

impl Chain {
    /// The name each hop is timed under, in request order: a stage's name
    /// (the built-in terminator's is `forward`), or a fused run's stages'
    /// names joined by `+`.
    pub fn timing_labels(&self) -> Vec<String> {
        self.hop_labels(&runs::hops(&self.plugins, self.fuse, true))
    }

    /// The labels of `hops`, the hops of the chain's plugins.
    pub(crate) fn hop_labels(&self, hops: &[runs::Hop]) -> Vec<String> {
        let stages = &self.plugins;
        let mut labels: Vec<String> = hops
            .iter()
            .map(|hop| match hop {
                runs::Hop::Stage(i) => stages[*i].name.clone(),
                runs::Hop::Run(range) | runs::Hop::Legacy(range) => {
                    runs::run_name(&stages[range.clone()])
                }
            })
            .collect();
        // The terminator is never in a run: a hop of its own.
        match &self.origin {
            Some(Origin::Service(service)) => labels.push(service.name.clone()),
            Some(Origin::Forward(_)) => labels.push(builtins::FORWARD_NAME.into()),
            None | Some(Origin::Host) => {}
        }
        labels
    }
}

/// The sink's node in the graph and in a WAC document.
pub(crate) const SINK_NODE: &str = "stage-timing";

/// What the timing of one chain is made of, as the graph and a WAC
/// document name it.
pub(crate) struct TimingParts {
    /// The `wasi:config/store` the timers and the sink import (and their
    /// stores export).
    pub store: String,
    /// The sink's store: the chain's name and its hops' labels.
    pub sink_config: Vec<u8>,
    /// Each timer's node and store (its hop's index), in request order.
    pub timers: Vec<(String, Vec<u8>)>,
}

impl TimingParts {
    /// The parts for `chain`, whose hops are `nodes` (each hop's node name,
    /// in request order) timed under `labels`.
    pub(crate) fn new(chain: &str, nodes: &[&str], labels: &[String]) -> Result<Self, Error> {
        if nodes.len() != labels.len() {
            return Err(GraphError::generated(
                "the stage timers",
                format!("{} hops but {} labels", nodes.len(), labels.len()),
            )
            .into());
        }
        let info = builtin_info(builtins::STAGE_TIMER, "stage-timer")?;
        let store = config_import(&info).map(str::to_string).ok_or_else(|| {
            GraphError::generated("the built-in stage-timer", "it lacks its store import")
        })?;
        let version = store.rsplit_once('@').map_or("", |(_, v)| v);
        let sink_config = providers::config_store(
            version,
            &[
                ("chain".into(), chain.to_string()),
                ("stages".into(), labels.join("\n")),
            ],
        )?;
        let timers = nodes
            .iter()
            .enumerate()
            .map(|(i, node)| {
                let store = providers::config_store(version, &[("stage".into(), i.to_string())])?;
                Ok((format!("{node}-timer"), store))
            })
            .collect::<Result<_, Error>>()?;
        Ok(TimingParts {
            store,
            sink_config,
            timers,
        })
    }
}

/// Puts a timer in front of each of `hops`, all reporting to one sink.
pub(super) fn time(
    graph: &mut Graph,
    chain: &str,
    labels: &[String],
    hops: Vec<Linked>,
    handler: &str,
) -> Result<Vec<Linked>, Error> {
    let nodes: Vec<&str> = hops.iter().map(|hop| hop.name.as_str()).collect();
    let parts = TimingParts::new(chain, &nodes, labels)?;
    let store = parts.store.as_str();
    let sink = graph.instance(
        builtins::STAGE_TIMING_SINK_PACKAGE,
        SINK_NODE,
        builtins::STAGE_TIMING_SINK,
    )?;
    let sink_config = format!("{SINK_NODE}-config");
    let config = graph.instance(
        &format!("pwchain:{sink_config}"),
        &sink_config,
        &parts.sink_config,
    )?;
    graph.link((sink, SINK_NODE), store, (config, &sink_config), store)?;
    hops.into_iter()
        .zip(parts.timers)
        .map(|(hop, (node, timer_config))| {
            let Some((entry_node, entry)) = &hop.entry else {
                return Err(GraphError::NoEntry { plugin: hop.name }.into());
            };
            let timer =
                graph.instance(builtins::STAGE_TIMER_PACKAGE, &node, builtins::STAGE_TIMER)?;
            let config_node = format!("{node}-config");
            let config = graph.instance(
                &format!("pwchain:{config_node}"),
                &config_node,
                &timer_config,
            )?;
            let timing = builtins::STAGE_TIMING_INTERFACE;
            graph.link((timer, &node), store, (config, &config_node), store)?;
            graph.link((timer, &node), timing, (sink, SINK_NODE), timing)?;
            graph.link((timer, &node), handler, (*entry_node, &hop.name), entry)?;
            Ok(Linked {
                name: hop.name,
                entry: Some((timer, handler.to_string())),
                onward: hop.onward,
            })
        })
        .collect()
}
