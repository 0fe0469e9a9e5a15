//! Linking a chain into one component with wac-graph: each plugin's next
//! hop is given the next plugin's `handler` export, the first plugin's
//! `handler` becomes the composite's export, and every import left over
//! (side calls, clocks, cli, …) becomes an import of the composite, merged
//! across plugins.

pub mod builtins;
pub(crate) mod legacy;
pub mod providers;
pub(crate) mod runs;
pub(crate) mod timing;
pub mod wac;

use crate::error::{Cause, Error, GraphError, PluginProblem};
use crate::inspect::{Inspection, Role};
use crate::model::{Chain, Forward, KeptIn, Origin, Stage};
use crate::policy::SideCalls;
use crate::route::RouteMatch;

use crate::inspect::record::{self, ChainRecord, StageRecord};
use std::collections::HashMap;
use std::path::Path;
use wac_graph::types::Package;
use wac_graph::{CompositionGraph, EncodeOptions, NodeId, PackageId, Processor};

/// A composed chain.
#[derive(Debug, Clone)]
pub struct Composite {
    /// The component, chain record included.
    pub bytes: Vec<u8>,
    /// What it records of its chain.
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
            return Err(GraphError::Empty.into());
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
        let passes_on = last.info.next_hop.is_some() || last.info.filter.is_some();
        match (passes_on, &self.origin) {
            (false, None) | (true, Some(Origin::Forward(_) | Origin::Host)) => Ok(()),
            (false, Some(_)) => problem(last, PluginProblem::ServiceBeforeOrigin),
            (true, None) => problem(
                last,
                match (&last.info.next_hop, &last.info.filter) {
                    (Some(hop), _) => PluginProblem::MiddlewareLast {
                        import: hop.import.clone(),
                    },
                    (None, export) => PluginProblem::HeaderFilterLast {
                        export: export.clone().unwrap_or_default(),
                    },
                },
            ),
            (true, Some(Origin::Service(origin))) => {
                match (&origin.info.next_hop, &origin.info.filter) {
                    (Some(hop), _) => problem(
                        origin,
                        PluginProblem::OriginNotService {
                            import: hop.import.clone(),
                        },
                    ),
                    (None, Some(export)) => problem(
                        origin,
                        PluginProblem::OriginIsHeaderFilter {
                            export: export.clone(),
                        },
                    ),
                    (None, None) => Ok(()),
                }
            }
        }
    }

    /// Checks every import that will reach the host against
    /// `[chain] allow-imports`.
    pub fn check_imports(&self) -> Result<(), Error> {
        let Some(allowed) = &self.allow_imports else {
            return Ok(());
        };
        for (who, import) in self.host_imports()? {
            if !allowed.iter().any(|p| p.matches(&import)) {
                return Err(Error::Plugin {
                    plugin: who,
                    problem: PluginProblem::ImportNotAllowed {
                        import,
                        allowed: allowed.iter().map(|p| p.to_string()).collect(),
                    },
                });
            }
        }
        Ok(())
    }

    /// The imports the composite leaves to the host, each with the stage
    /// (or the built-in) that needs it.
    pub fn host_imports(&self) -> Result<Vec<(String, String)>, Error> {
        let stages = self.stages()?;
        let runs: Vec<_> = runs::hops(&stages, self.fuse, true)
            .into_iter()
            .filter_map(|hop| match hop {
                runs::Hop::Run(range) => Some(range),
                runs::Hop::Stage(_) | runs::Hop::Legacy(_) => None,
            })
            .collect();
        let timer = match self.stage_timing {
            true => Some(builtin_info(builtins::STAGE_TIMER, "stage-timer")?),
            false => None,
        };
        let mut found = Vec::new();
        for (i, stage) in stages.iter().enumerate() {
            let mut add =
                |who: &str, import: &String| found.push((who.to_string(), import.clone()));
            for import in &stage.info.host_imports {
                if config_import(&stage.info) != Some(import)
                    && import != builtins::LEGACY_SHARED_INTERFACE
                {
                    add(&stage.name, import);
                }
            }
            for import in &stage.info.side_calls {
                if !is_client(import) || stage.settings.side_calls == SideCalls::Allow {
                    add(&stage.name, import);
                }
            }
            if let (true, Some(Origin::Host), Some(hop)) =
                (i + 1 == stages.len(), &self.origin, &stage.info.next_hop)
            {
                add(&stage.name, &hop.import);
            }
            // A run's driver is counted with its first filter.
            if let Some(run) = runs.iter().find(|run| run.start == i) {
                let driver = builtin_info(builtins::HEADER_RUN, "header-run")?;
                let who = format!("{} (its run's built-in driver)", stage.name);
                for import in &driver.host_imports {
                    if import != builtins::HEADER_FILTER_INTERFACE {
                        add(&who, import);
                    }
                }
                if let (true, Some(Origin::Host), Some(hop)) =
                    (run.end == stages.len(), &self.origin, &driver.next_hop)
                {
                    add(&who, &hop.import);
                }
            }
            if stage.route.is_some() {
                let matcher = builtin_info(builtins::ROUTE_MATCH, "route-match")?;
                let who = format!("{} (its built-in route match)", stage.name);
                for import in &matcher.host_imports {
                    if config_import(&matcher) != Some(import)
                        && import != builtins::ROUTE_MATCH_SKIP
                    {
                        add(&who, import);
                    }
                }
            }
            if let Some(timer) = &timer {
                let who = format!("{} (its built-in stage timer)", stage.name);
                let handler = timer.next_hop.as_ref().map(|hop| hop.import.as_str());
                for import in &timer.host_imports {
                    if config_import(timer) != Some(import)
                        && import != builtins::STAGE_TIMING_INTERFACE
                        && Some(import.as_str()) != handler
                    {
                        add(&who, import);
                    }
                }
            }
            let filtered = stage.info.side_calls.iter().any(|i| is_client(i));
            if filtered && matches!(stage.settings.side_calls, SideCalls::AllowList(_)) {
                let filter = allow_calls_info()?;
                let who = format!("{} (its built-in side-call filter)", stage.name);
                for import in filter.host_imports.iter().chain(&filter.side_calls) {
                    if config_import(&filter) != Some(import) {
                        add(&who, import);
                    }
                }
            }
        }
        if self.stage_timing {
            let sink = builtin_info(builtins::STAGE_TIMING_SINK, "stage-timing-sink")?;
            for import in &sink.host_imports {
                if config_import(&sink) != Some(import) {
                    found.push(("the chain's built-in timing sink".into(), import.clone()));
                }
            }
        }
        Ok(found)
    }

    /// The record stored in the composite.
    pub fn record(&self) -> ChainRecord {
        let mut plugins: Vec<StageRecord> = self.plugins.iter().map(stage_record).collect();
        for hop in runs::hops(&self.plugins, self.fuse, true) {
            if let runs::Hop::Run(range) | runs::Hop::Legacy(range) = hop {
                let run = runs::run_name(&self.plugins[range.clone()]);
                for stage in &mut plugins[range] {
                    stage.run = Some(run.clone());
                }
            }
        }
        let mut upstream = None;
        let origin = match &self.origin {
            None => "none".to_string(),
            Some(Origin::Forward(Forward {
                upstream: Some(url),
                ..
            })) => {
                upstream = Some(url.to_string());
                "upstream".to_string()
            }
            Some(Origin::Forward(_)) => "forward".to_string(),
            Some(Origin::Host) => "host".to_string(),
            Some(Origin::Service(service)) => {
                plugins.push(stage_record(service));
                service.name.clone()
            }
        };
        ChainRecord {
            pwchain: env!("CARGO_PKG_VERSION").to_string(),
            name: self.name.clone(),
            plugins,
            origin,
            upstream,
            stage_timing: self.stage_timing.then(|| self.timing_labels()),
        }
    }

    /// Every stage in request order, the built-in terminator included.
    pub fn stages(&self) -> Result<Vec<Stage>, Error> {
        let mut stages = self.plugins.clone();
        match &self.origin {
            Some(Origin::Service(service)) => stages.push(service.as_ref().clone()),
            Some(Origin::Forward(forward)) => stages.push(forward_stage(forward)?),
            None | Some(Origin::Host) => {}
        }
        Ok(stages)
    }

    /// Links the chain into one component and validates it.
    pub fn compose(&self) -> Result<Composite, Error> {
        self.check()?;
        self.check_imports()?;
        let stages = self.stages()?;
        let mut graph = Graph::default();
        let hops = runs::hops(&stages, self.fuse, true);
        // Each stage's node: its instance, or for a wrapped module in a run
        // its state (which imports what the chain shares with it); and each
        // run's driver.
        let mut instances: Vec<NodeId> = Vec::with_capacity(stages.len());
        let mut drivers: HashMap<usize, NodeId> = HashMap::new();
        for hop in &hops {
            let range = hop.range();
            match hop {
                runs::Hop::Legacy(_) => {
                    let run = &stages[range.clone()];
                    let plugins = run
                        .iter()
                        .map(|stage| {
                            let parts = stage.legacy.as_ref().ok_or_else(|| {
                                GraphError::generated(
                                    "a run of wrapped modules",
                                    format!("`{}` has no parts", stage.name),
                                )
                            })?;
                            Ok((stage.name.as_str(), parts))
                        })
                        .collect::<Result<Vec<_>, Error>>()?;
                    let nodes = legacy::link(&mut graph, &runs::run_node(&run[0]), &plugins)?;
                    drivers.insert(range.start, nodes.driver);
                    instances.extend(nodes.states);
                }
                runs::Hop::Stage(_) | runs::Hop::Run(_) => {
                    for stage in &stages[range] {
                        instances.push(graph.instance(
                            &package_name(stage),
                            &stage.name,
                            &stage.bytes,
                        )?);
                    }
                }
            }
        }
        let handler = format!("wasi:http/handler@{}", providers::http_version());
        let mut linked: Vec<Linked> = Vec::new();
        for hop in hops {
            let (first, hop) = match hop {
                runs::Hop::Stage(i) => {
                    let info = &stages[i].info;
                    let hop = Linked {
                        name: stages[i].name.clone(),
                        entry: info.entry.clone().map(|e| (instances[i], e)),
                        onward: info
                            .next_hop
                            .iter()
                            .map(|hop| (instances[i], hop.import.clone()))
                            .collect(),
                    };
                    (i, hop)
                }
                runs::Hop::Run(range) => {
                    let filters = &stages[range.clone()];
                    let driver = runs::link(&mut graph, filters, &instances[range.clone()])?;
                    let hop = Linked {
                        name: runs::run_node(&filters[0]),
                        entry: Some((driver, handler.clone())),
                        onward: vec![(driver, handler.clone())],
                    };
                    (range.start, hop)
                }
                runs::Hop::Legacy(range) => {
                    let driver = drivers.get(&range.start).copied().ok_or_else(|| {
                        GraphError::generated("a run of wrapped modules", "it has no driver")
                    })?;
                    let hop = Linked {
                        name: runs::run_node(&stages[range.start]),
                        entry: Some((driver, handler.clone())),
                        onward: vec![(driver, handler.clone())],
                    };
                    (range.start, hop)
                }
            };
            linked.push(match &stages[first].route {
                Some(route) => route_match(&mut graph, route, hop, &handler)?,
                None => hop,
            });
        }
        if self.stage_timing {
            let labels = self.timing_labels();
            linked = timing::time(&mut graph, &self.name, &labels, linked, &handler)?;
        }
        for pair in linked.windows(2) {
            let (hop, next) = (&pair[0], &pair[1]);
            let Some((entry_node, entry)) = &next.entry else {
                continue;
            };
            for (node, import) in &hop.onward {
                graph.link((*node, &hop.name), import, (*entry_node, &next.name), entry)?;
            }
        }
        // A last hop with a route match leaves its next hop to the host
        // twice (the plugin's and the route match's way around it): one
        // import of the composite serves both.
        if let Some(last) = linked.last()
            && last.onward.len() > 1
        {
            graph
                .import_for(&last.onward)
                .map_err(|source| Error::Link {
                    from: last.name.clone(),
                    to: "the host".into(),
                    import: last.onward[0].1.clone(),
                    export: last.onward[0].1.clone(),
                    source,
                })?;
        }
        let mut nodes: HashMap<String, NodeId> = stages
            .iter()
            .map(|s| s.name.clone())
            .zip(instances.iter().copied())
            .collect();
        // Providers made so far, by node: one several stages name is
        // instantiated once (a stage of that name is a clash, which
        // `Graph::instance` refuses).
        let mut provided: HashMap<String, NodeId> = HashMap::new();
        for stage in &stages {
            // Consumers are instantiated first: the stage, then each
            // provider before the one that feeds it.
            for provider in planned_providers(stage, self)?.into_iter().rev() {
                let instance = match provided.get(&provider.node) {
                    Some(shared) => *shared,
                    None => graph.instance(&provider.package, &provider.node, &provider.bytes)?,
                };
                provided.insert(provider.node.clone(), instance);
                let consumer =
                    *nodes
                        .get(&provider.consumer)
                        .ok_or_else(|| GraphError::UnknownConsumer {
                            provider: provider.node.clone(),
                            consumer: provider.consumer.clone(),
                        })?;
                graph
                    .wire(consumer, &provider.import, instance, &provider.export)
                    .map_err(|source| GraphError::Provider {
                        plugin: stage.name.clone(),
                        provider: provider.node.clone(),
                        import: provider.import.clone(),
                        source,
                    })?;
                nodes.insert(provider.node, instance);
            }
        }
        let (node, entry) = linked[0]
            .entry
            .as_ref()
            .ok_or_else(|| GraphError::NoEntry {
                plugin: linked[0].name.clone(),
            })?;
        let mut bytes = graph.encode(*node, entry)?;
        let record = self.record();
        record::append(&mut bytes, &record);
        Ok(Composite {
            bytes,
            record,
            input_bytes: stages.iter().map(|s| s.bytes.len()).sum(),
        })
    }
}

/// A hop as linked: where requests enter it, and the imports (of its own
/// nodes) that are given the next hop's entry.
struct Linked {
    name: String,
    entry: Option<(NodeId, String)>,
    onward: Vec<(NodeId, String)>,
}

/// Puts the built-in route match, with `route` in its store, in front of
/// `hop`: requests enter at the route match, which passes those that match
/// to `hop` and the rest on to the next hop (its `skip` import).
fn route_match(
    graph: &mut Graph,
    route: &RouteMatch,
    hop: Linked,
    handler: &str,
) -> Result<Linked, Error> {
    let Some((entry_node, entry)) = &hop.entry else {
        return Err(GraphError::NoEntry { plugin: hop.name }.into());
    };
    let parts = RouteMatchParts::new(&hop.name, route)?;
    let (node, store) = (&parts.node, parts.store.as_str());
    let matcher = graph.instance(builtins::ROUTE_MATCH_PACKAGE, node, builtins::ROUTE_MATCH)?;
    let config = graph.instance(
        &format!("pwchain:{}", parts.config_node),
        &parts.config_node,
        &parts.config,
    )?;
    graph.link((matcher, node), store, (config, &parts.config_node), store)?;
    graph.link((matcher, node), handler, (*entry_node, &hop.name), entry)?;
    let mut onward = hop.onward;
    onward.push((matcher, builtins::ROUTE_MATCH_SKIP.to_string()));
    Ok(Linked {
        name: hop.name,
        entry: Some((matcher, handler.to_string())),
        onward,
    })
}

/// What the route match in front of stage `name` is made of, as the graph
/// and a WAC document name them.
pub(crate) struct RouteMatchParts {
    /// Its node: the stage's name, `-match` added.
    pub node: String,
    /// Its store's node.
    pub config_node: String,
    /// The `wasi:config/store` it imports (and its store exports).
    pub store: String,
    /// Its store, holding the conditions.
    pub config: Vec<u8>,
}

impl RouteMatchParts {
    pub(crate) fn new(name: &str, route: &RouteMatch) -> Result<RouteMatchParts, Error> {
        let info = builtin_info(builtins::ROUTE_MATCH, "route-match")?;
        let store = config_import(&info).map(str::to_string).ok_or_else(|| {
            GraphError::generated("the built-in route-match", "it lacks its store import")
        })?;
        let version = store.rsplit_once('@').map_or("", |(_, v)| v);
        let node = format!("{name}-match");
        Ok(RouteMatchParts {
            config_node: format!("{node}-config"),
            config: providers::config_store(version, &route.store_entries())?,
            node,
            store,
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

/// The built-in terminator, its store holding where to send requests and
/// how long to wait (what `plugins/builtins/forward` reads).
pub(crate) fn forward_stage(forward: &Forward) -> Result<Stage, Error> {
    let mut stage = Stage::from_bytes(
        builtins::FORWARD_NAME,
        builtins::FORWARD.to_vec(),
        builtins::FORWARD_PACKAGE.to_string(),
        Path::new("<built-in forward>"),
    )?;
    let millis = |d: std::time::Duration| d.as_millis().to_string();
    let mut config = vec![
        (
            "connect-timeout-ms".to_string(),
            millis(forward.connect_timeout),
        ),
        (
            "first-byte-timeout-ms".to_string(),
            millis(forward.first_byte_timeout),
        ),
    ];
    if let Some(between) = forward.between_bytes_timeout {
        config.push(("between-bytes-timeout-ms".to_string(), millis(between)));
    }
    if let Some(upstream) = &forward.upstream {
        config.push(("upstream".to_string(), upstream.to_string()));
    }
    stage.settings.config = Some(config);
    Ok(stage)
}

/// A composition graph that registers each distinct component once.
#[derive(Default)]
pub(crate) struct Graph {
    graph: CompositionGraph,
    /// Registered packages by the sha256 of their bytes.
    packages: HashMap<String, PackageId>,
    /// The names of the instances so far: each is one node's.
    names: std::collections::HashSet<String>,
}

impl Graph {
    /// An instance named `node` of the component `bytes` (package `package`
    /// unless the same bytes are registered already).
    pub fn instance(&mut self, package: &str, node: &str, bytes: &[u8]) -> Result<NodeId, Error> {
        if !self.names.insert(node.to_string()) {
            return Err(GraphError::NodeNameTaken {
                node: node.to_string(),
            }
            .into());
        }
        let digest = crate::digest::digest(bytes);
        let id = match self.packages.get(&digest) {
            Some(id) => *id,
            None => {
                let unreadable = |source: Cause| GraphError::Package {
                    package: package.to_string(),
                    source,
                };
                let parsed =
                    Package::from_bytes(package, None, bytes.to_vec(), self.graph.types_mut())
                        .map_err(|e| unreadable(e.into()))?;
                let id = self
                    .graph
                    .register_package(parsed)
                    .map_err(|e| unreadable(e.into()))?;
                self.packages.insert(digest, id);
                id
            }
        };
        let instance = self.graph.instantiate(id);
        self.graph.set_node_name(instance, node);
        Ok(instance)
    }

    /// The component: `export` of instance `node` exported under its own
    /// name, every import left open an import. Validated.
    pub fn encode(self, node: NodeId, export: &str) -> Result<Vec<u8>, Error> {
        let mut graph = self.graph;
        let unexported = |source: Cause| GraphError::Export {
            export: export.to_string(),
            source,
        };
        let alias = graph
            .alias_instance_export(node, export)
            .map_err(|e| unexported(e.into()))?;
        graph
            .export(alias, export)
            .map_err(|e| unexported(e.into()))?;
        graph
            .encode(EncodeOptions {
                define_components: true,
                validate: true,
                processor: Some(Processor {
                    name: "pwchain",
                    version: env!("CARGO_PKG_VERSION"),
                }),
            })
            .map_err(|e| GraphError::Invalid(e.into()).into())
    }

    /// One import of the composite for all of `imports` (of instances in
    /// the graph), named and typed as the first.
    pub fn import_for(&mut self, imports: &[(NodeId, String)]) -> Result<(), Cause> {
        let Some((first, name)) = imports.first() else {
            return Ok(());
        };
        let kind = self.graph[*first]
            .package()
            .and_then(|package| {
                let world = &self.graph.types()[self.graph[package].ty()];
                world.imports.get(name).copied()
            })
            .ok_or_else(|| format!("no import `{name}` to share"))?;
        let import = self.graph.import(name.clone(), kind)?;
        for (node, name) in imports {
            self.graph.set_instantiation_argument(*node, name, import)?;
        }
        Ok(())
    }

    /// [`Graph::wire`], its failure named by the nodes' names: `import` of
    /// `to` gets `export` of `from`.
    pub fn link(
        &mut self,
        (to, to_name): (NodeId, &str),
        import: &str,
        (from, from_name): (NodeId, &str),
        export: &str,
    ) -> Result<(), Error> {
        self.wire(to, import, from, export)
            .map_err(|source| Error::Link {
                from: to_name.to_string(),
                to: from_name.to_string(),
                import: import.to_string(),
                export: export.to_string(),
                source,
            })
    }

    /// Gives `import` of `to` the export `export` of `from`.
    pub fn wire(
        &mut self,
        to: NodeId,
        import: &str,
        from: NodeId,
        export: &str,
    ) -> Result<(), Cause> {
        let export = self.graph.alias_instance_export(from, export)?;
        self.graph.set_instantiation_argument(to, import, export)?;
        Ok(())
    }
}

/// A component pwchain generates (or ships) for one stage, and the import
/// it satisfies.
pub(crate) struct Provider {
    /// Its instance's name in the graph or the WAC document.
    pub node: String,
    /// Its package's name.
    pub package: String,
    pub bytes: Vec<u8>,
    /// The instance whose import it satisfies (a stage, or another
    /// provider listed before it), the import, and its own export.
    pub consumer: String,
    pub import: String,
    pub export: String,
}

/// What `stage` of `chain` needs pwchain to provide: its own
/// `wasi:config/store` (empty without `config`), the shared data, queues
/// and metrics of wrapped proxy-wasm modules that the chain keeps in the
/// instance (one instance, node `legacy-shared`, for all), and the
/// side-call policy in front of its `wasi:http/client` import. Each
/// provider is listed before the provider that consumes it.
pub(crate) fn planned_providers(stage: &Stage, chain: &Chain) -> Result<Vec<Provider>, Error> {
    let mut provided = Vec::new();
    if let Some(import) = config_import(&stage.info) {
        let version = import.rsplit_once('@').map_or("", |(_, v)| v);
        let entries = stage.settings.config.as_deref().unwrap_or_default();
        let node = format!("{}-config", stage.name);
        provided.push(Provider {
            package: format!("pwchain:{node}"),
            bytes: providers::config_store(version, entries)?,
            node,
            consumer: stage.name.clone(),
            import: import.to_string(),
            export: import.to_string(),
        });
    }
    // Wrapped proxy-wasm modules share one store of shared data and queues
    // and of metrics, unless the host keeps them.
    let shared = [
        (builtins::LEGACY_SHARED_INTERFACE, chain.shared_data),
        (builtins::LEGACY_METRICS_INTERFACE, chain.filter_metrics),
    ];
    for (interface, kept) in shared {
        if kept == KeptIn::Instance && stage.info.host_imports.iter().any(|i| i == interface) {
            provided.push(Provider {
                node: "legacy-shared".into(),
                package: builtins::LEGACY_SHARED_PACKAGE.into(),
                bytes: builtins::LEGACY_SHARED.to_vec(),
                consumer: stage.name.clone(),
                import: interface.to_string(),
                export: interface.to_string(),
            });
        }
    }
    let clients = stage.info.side_calls.iter().filter(|i| is_client(i));
    for import in clients {
        match &stage.settings.side_calls {
            SideCalls::Allow => {}
            SideCalls::Deny => {
                let node = format!("{}-deny-calls", stage.name);
                provided.push(Provider {
                    package: format!("pwchain:{node}"),
                    bytes: providers::deny_calls(import)?,
                    node,
                    consumer: stage.name.clone(),
                    import: import.clone(),
                    export: import.clone(),
                });
            }
            SideCalls::AllowList(patterns) => {
                let filter = allow_calls_info()?;
                let (Some(store), Some(client)) =
                    (config_import(&filter), filter.side_calls.first())
                else {
                    return Err(GraphError::generated(
                        "the built-in allow-calls",
                        "it lacks its store or client import",
                    )
                    .into());
                };
                let node = format!("{}-allow-calls", stage.name);
                let list: Vec<&str> = patterns.iter().map(|p| p.as_str()).collect();
                let version = store.rsplit_once('@').map_or("", |(_, v)| v);
                provided.push(Provider {
                    node: format!("{node}-config"),
                    package: format!("pwchain:{node}-config"),
                    bytes: providers::config_store(version, &[("allow".into(), list.join("\n"))])?,
                    consumer: node.clone(),
                    import: store.to_string(),
                    export: store.to_string(),
                });
                provided.push(Provider {
                    package: builtins::ALLOW_CALLS_PACKAGE.to_string(),
                    bytes: builtins::ALLOW_CALLS.to_vec(),
                    node,
                    consumer: stage.name.clone(),
                    import: import.clone(),
                    export: client.clone(),
                });
            }
        }
    }
    Ok(provided)
}

/// The plugin's `wasi:config/store` import, whatever its version.
pub(crate) fn config_import(info: &Inspection) -> Option<&str> {
    info.host_imports
        .iter()
        .find(|i| i.starts_with("wasi:config/store@"))
        .map(String::as_str)
}

fn is_client(import: &str) -> bool {
    import.starts_with("wasi:http/client@")
}

/// What the built-in side-call filter imports and exports.
fn allow_calls_info() -> Result<Inspection, Error> {
    builtin_info(builtins::ALLOW_CALLS, "allow-calls")
}

/// What a built-in component imports and exports.
fn builtin_info(bytes: &[u8], name: &str) -> Result<Inspection, Error> {
    crate::inspect(bytes, Path::new(&format!("<built-in {name}>"))).map_err(|problem| {
        Error::Plugin {
            plugin: format!("{name} (built-in)"),
            problem,
        }
    })
}

fn stage_record(stage: &Stage) -> StageRecord {
    StageRecord {
        name: stage.name.clone(),
        source: stage.source.clone(),
        digest: stage.digest.clone(),
        role: stage.info.role.to_string(),
        config: stage
            .settings
            .config
            .iter()
            .flatten()
            .map(|(key, _)| key.clone())
            .collect(),
        side_calls: stage.settings.side_calls.clone(),
        lifted: stage.info.lifted,
        run: None,
        verified: stage.verified.clone(),
        route: stage.route.clone(),
    }
}
