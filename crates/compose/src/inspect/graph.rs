//! A composite's chain drawn for an operator (`pwchain inspect --graph`):
//! stages in request order, each stage's route match as a decision, fused
//! runs grouped, the terminator last, each stage's side-call policy, and
//! (in text) which stages are timed.
//! Drawn from the chain record alone, so it works on any composite
//! pwchain wrote, as text, Graphviz `dot` or Mermaid.

use crate::inspect::record::{ChainRecord, StageRecord};
use std::fmt::Write as _;

/// How to draw the graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GraphFormat {
    /// Lines for a terminal.
    Text,
    /// Graphviz `dot`.
    Dot,
    /// A Mermaid `flowchart`, which renders in a README or a browser.
    Mermaid,
}

/// One node of the drawing.
struct Node {
    id: String,
    label: Vec<String>,
    shape: Shape,
    /// The fused run it stands in, if any.
    run: Option<String>,
}

#[derive(PartialEq)]
enum Shape {
    /// Where requests come from.
    Client,
    Stage,
    /// A route match: which way a request goes.
    Decision,
    /// What answers after the last plugin.
    Terminator,
}

struct Edge {
    from: String,
    to: String,
    label: Option<String>,
    /// The way around a plugin that does not apply.
    skip: bool,
}

/// The chain of `record` drawn as `format`.
pub fn draw(record: &ChainRecord, format: GraphFormat) -> String {
    let (nodes, edges) = layout(record);
    match format {
        GraphFormat::Text => text(record, &nodes, &edges),
        GraphFormat::Dot => dot(record, &nodes, &edges),
        GraphFormat::Mermaid => mermaid(&nodes, &edges),
    }
}

fn stage_label(stage: &StageRecord) -> Vec<String> {
    let mut label = vec![stage.name.clone(), stage.role.clone()];
    if stage.side_calls != crate::policy::SideCalls::Allow {
        label.push(format!("side calls: {}", stage.side_calls));
    }
    label
}

/// The nodes and edges: `client`, then per stage its decision (if it has
/// a match) and itself, then the terminator.
fn layout(record: &ChainRecord) -> (Vec<Node>, Vec<Edge>) {
    let mut nodes = vec![Node {
        id: "client".into(),
        label: vec!["request".into()],
        shape: Shape::Client,
        run: None,
    }];
    // Edges that still wait for the next node's entry.
    let mut open: Vec<(String, Option<String>, bool)> = vec![("client".into(), None, false)];
    let mut edges = Vec::new();
    let close =
        |open: &mut Vec<(String, Option<String>, bool)>, edges: &mut Vec<Edge>, to: &str| {
            for (from, label, skip) in open.drain(..) {
                edges.push(Edge {
                    from,
                    to: to.to_string(),
                    label,
                    skip,
                });
            }
        };
    for (i, stage) in record.plugins.iter().enumerate() {
        let id = format!("s{}", i + 1);
        let run = stage.run.clone().filter(|run| run.contains('+'));
        if let Some(route) = &stage.route {
            let decision = format!("m{}", i + 1);
            nodes.push(Node {
                id: decision.clone(),
                label: vec![format!("match? {route}")],
                shape: Shape::Decision,
                run: None,
            });
            close(&mut open, &mut edges, &decision);
            open.push((decision.clone(), Some("matches".into()), false));
            close(&mut open, &mut edges, &id);
            open.push((decision, Some("otherwise".into()), true));
        } else {
            close(&mut open, &mut edges, &id);
        }
        nodes.push(Node {
            id: id.clone(),
            label: stage_label(stage),
            shape: Shape::Stage,
            run,
        });
        open.push((id, None, false));
    }
    let terminator = match (record.origin.as_str(), &record.upstream) {
        ("upstream", Some(url)) => Some(format!("upstream {url} (built-in)")),
        ("forward", _) => Some("forward to the request's authority (built-in)".into()),
        ("host", _) => Some("the host's next hop".into()),
        // A service origin is the last stage already; `none`: the last
        // plugin is a service.
        _ => None,
    };
    match terminator {
        Some(label) => {
            close(&mut open, &mut edges, "origin");
            nodes.push(Node {
                id: "origin".into(),
                label: vec![label],
                shape: Shape::Terminator,
                run: None,
            });
        }
        // A skip around the last stage has nowhere to go: it cannot happen
        // (a service takes no match), so the open edges end here.
        None => open.clear(),
    }
    (nodes, edges)
}

fn text(record: &ChainRecord, nodes: &[Node], edges: &[Edge]) -> String {
    let mut out = format!(
        "chain `{}` (composed by pwchain {}), in request order; responses go back the same way\n",
        record.name, record.pwchain
    );
    let mut run: Option<&str> = None;
    let name_of = |id: &str| {
        nodes
            .iter()
            .find(|n| n.id == id)
            .map_or(id.to_string(), |n| n.label[0].clone())
    };
    for node in nodes {
        if run.is_some() && node.run.as_deref() != run {
            let _ = writeln!(out, "  └─");
        }
        if node.run.is_some() && node.run.as_deref() != run {
            let _ = writeln!(
                out,
                "  ┌─ fused run {}: one driver, one rebuild of each message",
                node.run.as_deref().unwrap_or_default()
            );
        }
        run = node.run.as_deref();
        let bar = if run.is_some() { "  │ " } else { "  " };
        match node.shape {
            Shape::Client => {
                let _ = writeln!(out, "{bar}request");
            }
            Shape::Decision => {
                let skip = edges
                    .iter()
                    .find(|e| e.from == node.id && e.skip)
                    .map(|e| name_of(&e.to))
                    .unwrap_or_default();
                let _ = writeln!(out, "{bar}  ↓ {}; otherwise skip to {skip}", node.label[0]);
            }
            Shape::Stage => {
                let _ = writeln!(out, "{bar}  ↓");
                let _ = writeln!(out, "{bar}{}", node.label.join("  ·  "));
            }
            Shape::Terminator => {
                let _ = writeln!(out, "{bar}  ↓");
                let _ = writeln!(out, "{bar}{}", node.label[0]);
            }
        }
    }
    if run.is_some() {
        let _ = writeln!(out, "  └─");
    }
    if let Some(timed) = &record.stage_timing {
        let _ = writeln!(
            out,
            "each of {} timed by a built-in timer in front of it ([chain] stage-timing)",
            timed.join(", ")
        );
    }
    out
}

/// `"` and `\` escaped for a quoted dot or Mermaid string.
fn quoted(text: &str) -> String {
    text.replace('\\', "\\\\").replace('"', "'")
}

fn dot(record: &ChainRecord, nodes: &[Node], edges: &[Edge]) -> String {
    let mut out = format!(
        "digraph \"{}\" {{\n  rankdir=LR;\n  node [shape=box, fontname=\"sans-serif\"];\n",
        quoted(&record.name)
    );
    let mut runs: Vec<&str> = Vec::new();
    for node in nodes {
        if let Some(run) = &node.run
            && !runs.contains(&run.as_str())
        {
            runs.push(run);
        }
    }
    let line = |node: &Node| {
        let shape = match node.shape {
            Shape::Client => "plaintext",
            Shape::Stage => "box",
            Shape::Decision => "diamond",
            Shape::Terminator => "box, style=rounded",
        };
        format!(
            "{} [shape={shape}, label=\"{}\"];\n",
            node.id,
            quoted(&node.label.join("\\n"))
        )
    };
    for node in nodes.iter().filter(|n| n.run.is_none()) {
        out.push_str("  ");
        out.push_str(&line(node));
    }
    for (i, run) in runs.iter().enumerate() {
        let _ = writeln!(
            out,
            "  subgraph cluster_{i} {{\n    label=\"fused run {}\";\n    style=dashed;",
            quoted(run)
        );
        for node in nodes.iter().filter(|n| n.run.as_deref() == Some(run)) {
            out.push_str("    ");
            out.push_str(&line(node));
        }
        out.push_str("  }\n");
    }
    for edge in edges {
        let mut attributes = Vec::new();
        if let Some(label) = &edge.label {
            attributes.push(format!("label=\"{}\"", quoted(label)));
        }
        if edge.skip {
            attributes.push("style=dashed".into());
        }
        let attributes = match attributes.is_empty() {
            true => String::new(),
            false => format!(" [{}]", attributes.join(", ")),
        };
        let _ = writeln!(out, "  {} -> {}{attributes};", edge.from, edge.to);
    }
    out.push_str("}\n");
    out
}

fn mermaid(nodes: &[Node], edges: &[Edge]) -> String {
    let mut out = String::from("flowchart LR\n");
    let line = |node: &Node| {
        let label = quoted(&node.label.join("<br/>"));
        match node.shape {
            Shape::Client => format!("{}([\"{label}\"])", node.id),
            Shape::Stage => format!("{}[\"{label}\"]", node.id),
            Shape::Decision => format!("{}{{\"{label}\"}}", node.id),
            Shape::Terminator => format!("{}[(\"{label}\")]", node.id),
        }
    };
    let mut i = 0;
    while i < nodes.len() {
        match &nodes[i].run {
            None => {
                let _ = writeln!(out, "  {}", line(&nodes[i]));
                i += 1;
            }
            Some(run) => {
                let _ = writeln!(out, "  subgraph run{i}[\"fused run {}\"]", quoted(run));
                while i < nodes.len() && nodes[i].run.as_ref() == Some(run) {
                    let _ = writeln!(out, "    {}", line(&nodes[i]));
                    i += 1;
                }
                out.push_str("  end\n");
            }
        }
    }
    for edge in edges {
        let arrow = if edge.skip { "-.->" } else { "-->" };
        match &edge.label {
            Some(label) => {
                let _ = writeln!(
                    out,
                    "  {} {arrow}|\"{}\"| {}",
                    edge.from,
                    quoted(label),
                    edge.to
                );
            }
            None => {
                let _ = writeln!(out, "  {} {arrow} {}", edge.from, edge.to);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::route::RouteMatch;

    fn stage(name: &str, role: &str, run: Option<&str>, route: Option<RouteMatch>) -> StageRecord {
        StageRecord {
            name: name.into(),
            source: format!("{name}.wasm"),
            digest: "sha256:00".into(),
            role: role.into(),
            config: Vec::new(),
            side_calls: Default::default(),
            lifted: None,
            run: run.map(str::to_string),
            verified: None,
            route,
        }
    }

    /// auth (matched), then the fused run b+c, then an upstream.
    fn record() -> ChainRecord {
        let api = RouteMatch {
            path_prefix: vec!["/api".into()],
            ..RouteMatch::default()
        };
        ChainRecord {
            pwchain: "0.1.0".into(),
            name: "edge".into(),
            plugins: vec![
                stage("auth", "middleware", None, Some(api)),
                stage("b", "header-filter", Some("b+c"), None),
                stage("c", "header-filter", Some("b+c"), None),
            ],
            origin: "upstream".into(),
            upstream: Some("http://127.0.0.1:9000".into()),
            stage_timing: None,
        }
    }

    #[test]
    fn a_match_is_a_decision_with_a_way_around() {
        let dot = draw(&record(), GraphFormat::Dot);
        assert!(
            dot.contains("m1 [shape=diamond, label=\"match? path /api…\"]"),
            "{dot}"
        );
        assert!(dot.contains("client -> m1;"), "{dot}");
        assert!(dot.contains("m1 -> s1 [label=\"matches\"];"), "{dot}");
        assert!(
            dot.contains("m1 -> s2 [label=\"otherwise\", style=dashed];"),
            "{dot}"
        );
        assert!(dot.contains("s1 -> s2;"), "{dot}");
        assert!(dot.contains("s3 -> origin;"), "{dot}");
        assert!(
            dot.contains("subgraph cluster_0 {\n    label=\"fused run b+c\""),
            "{dot}"
        );
    }

    #[test]
    fn mermaid_and_text_say_the_same() {
        let mermaid = draw(&record(), GraphFormat::Mermaid);
        assert!(mermaid.starts_with("flowchart LR\n"), "{mermaid}");
        assert!(mermaid.contains("  m1 -.->|\"otherwise\"| s2"), "{mermaid}");
        assert!(
            mermaid.contains("  subgraph run3[\"fused run b+c\"]\n    s2["),
            "{mermaid}"
        );
        assert!(
            mermaid.contains("origin[(\"upstream http://127.0.0.1:9000 (built-in)\")]"),
            "{mermaid}"
        );
        let text = draw(&record(), GraphFormat::Text);
        let expected = "\
chain `edge` (composed by pwchain 0.1.0), in request order; responses go back the same way
  request
    ↓ match? path /api…; otherwise skip to b
    ↓
  auth  ·  middleware
  ┌─ fused run b+c: one driver, one rebuild of each message
  │   ↓
  │ b  ·  header-filter
  │   ↓
  │ c  ·  header-filter
  └─
    ↓
  upstream http://127.0.0.1:9000 (built-in)
";
        assert_eq!(text, expected);
        let timed = ChainRecord {
            stage_timing: Some(vec!["auth".into(), "b+c".into()]),
            ..record()
        };
        assert!(
            draw(&timed, GraphFormat::Text).ends_with(
                "each of auth, b+c timed by a built-in timer in front of it ([chain] stage-timing)\n"
            ),
            "{}",
            draw(&timed, GraphFormat::Text)
        );
    }
}
