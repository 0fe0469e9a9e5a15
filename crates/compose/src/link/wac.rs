//! The WAC way in and out: `--emit-wac` writes a chain as a WAC document
//! that `wac compose` accepts, and [`compose_wac`] composes a WAC document
//! whose packages come from `--dep` flags, a deps directory, or pwchain's
//! built-ins.

use crate::error::{Error, GraphError, SourceFile};
use crate::link::builtins;
use crate::link::{package_name, providers, runs, timing};
use crate::model::Chain;
use indexmap::IndexMap;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use wac_graph::EncodeOptions;
use wac_graph::types::BorrowedPackageKey;

/// WAC's keywords; a name that is one gets the `%` escape.
const KEYWORDS: &[&str] = &[
    "import",
    "with",
    "type",
    "tuple",
    "list",
    "option",
    "result",
    "borrow",
    "resource",
    "variant",
    "record",
    "flags",
    "enum",
    "func",
    "static",
    "constructor",
    "u8",
    "s8",
    "u16",
    "s16",
    "u32",
    "s32",
    "u64",
    "s64",
    "f32",
    "f64",
    "char",
    "bool",
    "string",
    "interface",
    "world",
    "export",
    "new",
    "let",
    "use",
    "include",
    "as",
    "package",
    "targets",
];

fn id(name: &str) -> String {
    if KEYWORDS.contains(&name) {
        format!("%{name}")
    } else {
        name.to_string()
    }
}

/// A chain as a WAC document, and the components pwchain generated for it
/// (configuration stores, side-call policies, wrapped proxy-wasm modules),
/// which the document names as packages and which must be found in a deps
/// directory.
pub struct Wac {
    /// The document.
    pub text: String,
    /// Package name and bytes of each generated component.
    pub generated: Vec<(String, Vec<u8>)>,
}

impl Chain {
    /// The chain as a WAC document. `deps` maps each package it names to
    /// the file it was read from, and `deps_dir` is where the generated
    /// components will be written (as `DIR/ns/name.wasm`); a comment at the
    /// top gives the matching `wac compose` flags.
    pub fn to_wac(
        &self,
        deps: &BTreeMap<String, PathBuf>,
        deps_dir: Option<&Path>,
    ) -> Result<Wac, Error> {
        let stages = self.stages()?;
        let mut generated: Vec<(String, Vec<u8>)> = Vec::new();
        let mut declared = std::collections::HashSet::new();
        let mut body = String::new();
        let handler = format!("wasi:http/handler@{}", providers::http_version());
        // The hop after the one being written: its node and entry.
        let mut next: Option<(String, String)> = None;
        // Wrapped modules stay whole components here, a hop each: a run of
        // them would need its parts written as packages of their own.
        let hops = runs::hops(&stages, self.fuse, false);
        let timing = match self.stage_timing {
            true => Some(self.write_timing_sink(&stages, &hops, &mut body, &mut generated)?),
            false => None,
        };
        for (index, hop) in hops.into_iter().enumerate().rev() {
            let first = match &hop {
                runs::Hop::Stage(i) => *i,
                runs::Hop::Run(range) | runs::Hop::Legacy(range) => range.start,
            };
            let onward = next.clone();
            match hop {
                runs::Hop::Stage(i) => {
                    let stage = &stages[i];
                    let hop = stage.info.next_hop.as_ref().map(|h| h.import.as_str());
                    self.write_stage(stage, hop, &next, &mut body, &mut generated, &mut declared)?;
                    next = stage.info.entry.clone().map(|e| (stage.name.clone(), e));
                }
                runs::Hop::Legacy(_) => {
                    return Err(GraphError::generated(
                        "the WAC document",
                        "it was given a run of wrapped modules",
                    )
                    .into());
                }
                runs::Hop::Run(range) => {
                    let filters = &stages[range];
                    for stage in filters {
                        self.write_stage(
                            stage,
                            None,
                            &None,
                            &mut body,
                            &mut generated,
                            &mut declared,
                        )?;
                    }
                    for (package, bytes) in [
                        (builtins::HEADER_SEQ_PACKAGE, builtins::HEADER_SEQ),
                        (builtins::HEADER_RUN_PACKAGE, builtins::HEADER_RUN),
                    ] {
                        if !generated.iter().any(|(name, _)| name == package) {
                            generated.push((package.to_string(), bytes.to_vec()));
                        }
                    }
                    let export =
                        |stage: &crate::model::Stage| stage.info.filter.clone().unwrap_or_default();
                    let last = &filters[filters.len() - 1];
                    let mut rest = (id(&last.name), export(last));
                    for stage in filters.iter().rev().skip(1) {
                        let pair = id(&format!("{}-pair", stage.name));
                        let _ = writeln!(
                            body,
                            "let {pair} = new {} {{ \"{}\": {}[\"{}\"], \"{}\": {}[\"{}\"], ... }};",
                            builtins::HEADER_SEQ_PACKAGE,
                            builtins::HEADER_FILTER_INTERFACE,
                            id(&stage.name),
                            export(stage),
                            builtins::HEADER_SEQ_REST,
                            rest.0,
                            rest.1
                        );
                        rest = (pair, builtins::HEADER_SEQ_EXPORT.to_string());
                    }
                    let driver = runs::run_node(&filters[0]);
                    let onward = match &next {
                        Some((node, entry)) => {
                            format!("\"{handler}\": {}[\"{entry}\"], ", id(node))
                        }
                        None => String::new(),
                    };
                    let _ = writeln!(
                        body,
                        "let {} = new {} {{ {onward}\"{}\": {}[\"{}\"], ... }};",
                        id(&driver),
                        builtins::HEADER_RUN_PACKAGE,
                        builtins::HEADER_FILTER_INTERFACE,
                        rest.0,
                        rest.1
                    );
                    next = Some((driver, handler.clone()));
                }
            }
            if let (Some(route), Some((node, entry))) = (&stages[first].route, next.clone()) {
                let Some((after, after_entry)) = onward else {
                    return Err(GraphError::MatchBeforeHost {
                        plugin: stages[first].name.clone(),
                    }
                    .into());
                };
                let crate::link::RouteMatchParts {
                    node: matcher,
                    config_node: config,
                    store,
                    config: config_bytes,
                } = crate::link::RouteMatchParts::new(&stages[first].name, route)?;
                declare_store(&config, config_bytes, &mut body, &mut generated);
                if !generated
                    .iter()
                    .any(|(name, _)| name == builtins::ROUTE_MATCH_PACKAGE)
                {
                    generated.push((
                        builtins::ROUTE_MATCH_PACKAGE.to_string(),
                        builtins::ROUTE_MATCH.to_vec(),
                    ));
                }
                let _ = writeln!(
                    body,
                    "let {} = new {} {{ \"{handler}\": {}[\"{entry}\"], \"{}\": {}[\"{after_entry}\"], \"{store}\": {}[\"{store}\"], ... }};",
                    id(&matcher),
                    builtins::ROUTE_MATCH_PACKAGE,
                    id(&node),
                    builtins::ROUTE_MATCH_SKIP,
                    id(&after),
                    id(&config),
                );
                next = Some((matcher, handler.clone()));
            }
            if let (Some(timing), Some((node, entry))) = (&timing, next.clone()) {
                let (timer, config_bytes) = &timing.timers[index];
                let config = format!("{timer}-config");
                declare_store(&config, config_bytes.clone(), &mut body, &mut generated);
                let store = &timing.store;
                let _ = writeln!(
                    body,
                    "let {} = new {} {{ \"{handler}\": {}[\"{entry}\"], \"{interface}\": {}[\"{interface}\"], \"{store}\": {}[\"{store}\"], ... }};",
                    id(timer),
                    builtins::STAGE_TIMER_PACKAGE,
                    id(&node),
                    id(timing::SINK_NODE),
                    id(&config),
                    interface = builtins::STAGE_TIMING_INTERFACE,
                );
                next = Some((timer.clone(), handler.clone()));
            }
        }
        let mut lets = std::collections::HashSet::new();
        for line in body.lines() {
            if let Some(name) = line.strip_prefix("let ").and_then(|l| l.split(' ').next())
                && !lets.insert(name)
            {
                return Err(GraphError::NodeNameTaken {
                    node: name.trim_start_matches('%').to_string(),
                }
                .into());
            }
        }
        if !generated.is_empty() && deps_dir.is_none() {
            return Err(GraphError::NeedsDepsDir.into());
        }

        let mut wac = String::new();
        let _ = writeln!(
            wac,
            "// Chain `{}`, written by pwchain {}.",
            self.name,
            env!("CARGO_PKG_VERSION")
        );
        let mut flags: Vec<String> = deps
            .iter()
            .map(|(name, path)| format!("--dep {name}={}", path.display()))
            .collect();
        if let Some(dir) = deps_dir.filter(|_| !generated.is_empty()) {
            flags.push(format!("--deps-dir {}", dir.display()));
        }
        let _ = writeln!(
            wac,
            "// wac compose {} CHAIN.wac -o chain.wasm",
            flags.join(" ")
        );
        if matches!(self.origin, Some(crate::model::Origin::Forward(_))) {
            let _ = writeln!(
                wac,
                "// `{}` is built into pwchain (`pwchain compose` resolves it itself).",
                builtins::FORWARD_PACKAGE
            );
        }
        let _ = writeln!(wac, "package pwchain:{};\n", self.name);
        wac.push_str(&body);
        let (first, entry) = next.unwrap_or_else(|| (stages[0].name.clone(), handler));
        let _ = writeln!(wac, "\nexport {}[\"{entry}\"];", id(&first));
        Ok(Wac {
            text: wac,
            generated,
        })
    }

    /// Writes the `let` of the timing sink and its store, and lists the
    /// built-ins a timed chain needs among the generated components; the
    /// parts name each hop's timer and store.
    fn write_timing_sink(
        &self,
        stages: &[crate::model::Stage],
        hops: &[runs::Hop],
        body: &mut String,
        generated: &mut Vec<(String, Vec<u8>)>,
    ) -> Result<timing::TimingParts, Error> {
        let nodes: Vec<String> = hops
            .iter()
            .map(|hop| match hop {
                runs::Hop::Stage(i) => stages[*i].name.clone(),
                runs::Hop::Run(range) | runs::Hop::Legacy(range) => {
                    runs::run_node(&stages[range.start])
                }
            })
            .collect();
        let nodes: Vec<&str> = nodes.iter().map(String::as_str).collect();
        // The hops of the plugins: the terminator's label is added after.
        let plugins = hops.len() - usize::from(stages.len() > self.plugins.len());
        let labels = self.hop_labels(&hops[..plugins]);
        let parts = timing::TimingParts::new(&self.name, &nodes, &labels)?;
        let config = format!("{}-config", timing::SINK_NODE);
        declare_store(&config, parts.sink_config.clone(), body, generated);
        for (package, bytes) in [
            (builtins::STAGE_TIMER_PACKAGE, builtins::STAGE_TIMER),
            (
                builtins::STAGE_TIMING_SINK_PACKAGE,
                builtins::STAGE_TIMING_SINK,
            ),
        ] {
            generated.push((package.to_string(), bytes.to_vec()));
        }
        let store = &parts.store;
        let _ = writeln!(
            body,
            "let {} = new {} {{ \"{store}\": {}[\"{store}\"], ... }};",
            id(timing::SINK_NODE),
            builtins::STAGE_TIMING_SINK_PACKAGE,
            id(&config)
        );
        Ok(parts)
    }

    /// Writes the `let` of `stage` and of the providers it needs; `hop` is
    /// its next-hop import, given `next`'s entry.
    fn write_stage(
        &self,
        stage: &crate::model::Stage,
        hop: Option<&str>,
        next: &Option<(String, String)>,
        body: &mut String,
        generated: &mut Vec<(String, Vec<u8>)>,
        declared: &mut std::collections::HashSet<String>,
    ) -> Result<(), Error> {
        let providers = crate::link::planned_providers(stage, self)?;
        for provider in &providers {
            // A provider several stages name is declared once.
            if !declared.insert(provider.node.clone()) {
                continue;
            }
            if !generated.iter().any(|(name, _)| *name == provider.package) {
                generated.push((provider.package.clone(), provider.bytes.clone()));
            }
            let args: String = providers
                .iter()
                .filter(|p| p.consumer == provider.node)
                .map(|p| format!("\"{}\": {}[\"{}\"], ", p.import, id(&p.node), p.export))
                .collect();
            let _ = writeln!(
                body,
                "let {} = new {} {{ {args}... }};",
                id(&provider.node),
                provider.package
            );
        }
        let mut args: String = providers
            .iter()
            .filter(|p| p.consumer == stage.name)
            .map(|p| format!("\"{}\": {}[\"{}\"], ", p.import, id(&p.node), p.export))
            .collect();
        if let (Some(hop), Some((next, entry))) = (hop, next) {
            args.insert_str(0, &format!("\"{hop}\": {}[\"{entry}\"], ", id(next)));
        }
        if stage.is_wrapped() {
            generated.push((package_name(stage), stage.bytes.clone()));
        }
        let _ = writeln!(
            body,
            "let {} = new {} {{ {args}... }};",
            id(&stage.name),
            package_name(stage)
        );
        Ok(())
    }
}

/// Composes the WAC document at `path`. A package `ns:name` is looked up in
/// `deps` first, then as `DIR/ns/name.wasm` in `deps_dir`, then among the
/// built-ins.
pub fn compose_wac(
    path: &Path,
    deps: &BTreeMap<String, PathBuf>,
    deps_dir: Option<&Path>,
) -> Result<Vec<u8>, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let file = SourceFile::new(path, text);
    let located = |e: &dyn miette::Diagnostic, fallback: String| {
        let span = e
            .labels()
            .and_then(|mut labels| labels.next())
            .map(|l| l.offset()..l.offset() + l.len())
            .unwrap_or(0..0);
        file.error(span, fallback, e.help().map(|h| h.to_string()))
    };
    let document = wac_parser::Document::parse(&file.text)
        .map_err(|e| located(&e, format!("invalid WAC: {e}")))?;

    let mut loaded: Vec<(String, Vec<u8>)> = Vec::new();
    loop {
        let packages: IndexMap<BorrowedPackageKey, Vec<u8>> = loaded
            .iter()
            .map(|(name, bytes)| {
                (
                    BorrowedPackageKey::from_name_and_version(name, None),
                    bytes.clone(),
                )
            })
            .collect();
        let missing = match document.resolve(packages) {
            Ok(resolution) => {
                return resolution
                    .encode(EncodeOptions {
                        define_components: true,
                        validate: true,
                        processor: None,
                    })
                    .map_err(|e| GraphError::Invalid(e.into()).into());
            }
            Err(wac_parser::resolution::Error::UnknownPackage { name, span })
                if !loaded.iter().any(|(n, _)| *n == name) =>
            {
                (name, span)
            }
            Err(e) => return Err(located(&e, format!("{e}"))),
        };
        let (name, span) = missing;
        let bytes = find_package(&name, deps, deps_dir).map_err(|message| {
            file.error(
                span.offset()..span.offset() + span.len(),
                message,
                Some(format!(
                    "pass `--dep {name}=PATH`, or put it at DEPS/{}.wasm and pass `--deps DEPS`",
                    name.replace(':', "/")
                )),
            )
        })?;
        loaded.push((name, bytes));
    }
}

fn find_package(
    name: &str,
    deps: &BTreeMap<String, PathBuf>,
    deps_dir: Option<&Path>,
) -> Result<Vec<u8>, String> {
    let read = |path: &Path| {
        std::fs::read(path)
            .map_err(|e| format!("package `{name}`: cannot read `{}`: {e}", path.display()))
    };
    if let Some(path) = deps.get(name) {
        return read(path);
    }
    if let Some(dir) = deps_dir {
        let path = dir.join(format!("{}.wasm", name.replace(':', "/")));
        if path.exists() {
            return read(&path);
        }
    }
    if name == builtins::FORWARD_PACKAGE {
        return Ok(builtins::FORWARD.to_vec());
    }
    if name == builtins::ALLOW_CALLS_PACKAGE {
        return Ok(builtins::ALLOW_CALLS.to_vec());
    }
    if name == builtins::LEGACY_SHARED_PACKAGE {
        return Ok(builtins::LEGACY_SHARED.to_vec());
    }
    if name == builtins::HEADER_RUN_PACKAGE {
        return Ok(builtins::HEADER_RUN.to_vec());
    }
    if name == builtins::HEADER_SEQ_PACKAGE {
        return Ok(builtins::HEADER_SEQ.to_vec());
    }
    if name == builtins::ROUTE_MATCH_PACKAGE {
        return Ok(builtins::ROUTE_MATCH.to_vec());
    }
    Err(format!("unknown package `{name}`"))
}

/// Declares the generated store `node` (its package `pwchain:NODE`), which
/// has no imports, and lists its bytes among the generated components.
fn declare_store(
    node: &str,
    bytes: Vec<u8>,
    body: &mut String,
    generated: &mut Vec<(String, Vec<u8>)>,
) {
    generated.push((format!("pwchain:{node}"), bytes));
    let _ = writeln!(body, "let {} = new pwchain:{node} {{ ... }};", id(node));
}
