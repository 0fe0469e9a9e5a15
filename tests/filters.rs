//! Header filters (`wit/filter.wit`): consecutive ones composed into one
//! run behind the built-in driver answer exactly as the same filters each
//! behind a driver of their own (`[chain] fuse = false`), around
//! middlewares that rebuild messages and bodies; a filter that answers
//! locally, rewrites the path or traps inside a run; a plugin that claims
//! the contract without having it is refused.

use crate::support::{Response, Served, Workspace, compose_fails, plugins, run};
use std::path::PathBuf;

/// `gate` filters `a`, `b`, `c` with the middlewares `tag` (headers) and
/// `upper` (the body) among them, in front of `echo`: `a` alone, then
/// `tag`, then `b`+`c` (one run when fused), `upper`, `d`.
fn chain(ws: &Workspace, fuse: bool, replace_on: &str) -> PathBuf {
    let gate = |name: &str| {
        let replace = if name == replace_on {
            ", replace = \"true\""
        } else {
            ""
        };
        format!(
            "[[plugin]]\nname = \"{name}\"\npath = \"{{plugins}}/header-gate.wasm\"\nconfig = {{ name = \"{name}\"{replace} }}\n\n"
        )
    };
    let text = format!(
        "[chain]\nname = \"gates\"\nfuse = {fuse}\n\n{}[[plugin]]\nname = \"tag\"\npath = \"{{plugins}}/add-header.wasm\"\n\n{}{}[[plugin]]\nname = \"upper\"\npath = \"{{plugins}}/rewrite-body.wasm\"\n\n{}[origin]\nname = \"echo\"\npath = \"{{plugins}}/echo.wasm\"\n",
        gate("a"),
        gate("b"),
        gate("c"),
        gate("d"),
    );
    ws.compose_as(&text, &format!("gates-{fuse}-{replace_on}.wasm"))
}

/// What a comparison looks at: status, the headers the chain adds, body.
fn seen(answer: &Response) -> (u16, Vec<(String, String)>, String) {
    let headers = answer
        .headers
        .iter()
        .filter(|(name, _)| name.starts_with("x-"))
        .cloned()
        .collect();
    (answer.status, headers, answer.text())
}

const CASES: [(&str, &str); 7] = [
    ("", ""),
    ("x-deny", "c"),
    ("x-deny", "b"),
    ("x-deny", "a"),
    ("x-deny", "d"),
    ("x-path", "b"),
    ("x-path", "c"),
];

fn ask(served: &Served, header: &str, value: &str) -> Response {
    let headers: Vec<(&str, &str)> = if header.is_empty() {
        Vec::new()
    } else {
        vec![(header, value)]
    };
    served.request("POST", "/in", &headers, b"body")
}

#[test]
fn a_fused_run_answers_as_the_same_filters_apart() {
    plugins();
    let ws = Workspace::new();
    let fused = Served::start(&chain(&ws, true, ""), &[]);
    let apart = Served::start(&chain(&ws, false, ""), &[]);

    for (header, value) in CASES {
        let (one, other) = (ask(&fused, header, value), ask(&apart, header, value));
        assert_eq!(seen(&one), seen(&other), "{header}: {value}");
    }

    // What that answer is: request headers in chain order, response
    // headers in reverse, the body through `upper` (after the run).
    let plain = ask(&fused, "", "");
    assert_eq!(plain.status, 200, "{}", plain.text());
    let text = plain.text();
    let order: Vec<&str> = text
        .lines()
        .filter_map(|line| line.strip_prefix("X-SEEN: "))
        .collect();
    assert_eq!(order, ["A", "B", "C", "D"], "{text}");
    assert!(text.starts_with("POST /IN\n"), "{text}");
    assert!(text.ends_with("BODY"), "{text}");
    let back: Vec<&str> = plain
        .headers
        .iter()
        .filter(|(name, _)| name == "x-seen-response")
        .map(|(_, value)| value.as_str())
        .collect();
    assert_eq!(back, ["d", "c", "b", "a"]);

    // `c` answers inside the run: `b` still sees the answer, as do the
    // middleware and the filter before the run.
    let denied = ask(&fused, "x-deny", "c");
    assert_eq!(denied.status, 403);
    assert_eq!(denied.text(), "denied by c\n");
    assert_eq!(denied.header("x-denied-by"), Some("c"));
    let back: Vec<&str> = denied
        .headers
        .iter()
        .filter(|(name, _)| name == "x-seen-response")
        .map(|(_, value)| value.as_str())
        .collect();
    assert_eq!(back, ["b", "a"]);
    assert_eq!(denied.header("x-served-by"), Some("pwchain add-header"));

    // `b` rewrites the path: `c` and everything after see the new one.
    let moved = ask(&fused, "x-path", "b");
    assert!(
        moved.text().starts_with("POST /REWRITTEN-BY-B\n"),
        "{}",
        moved.text()
    );
}

#[test]
fn a_filter_answering_on_the_way_out_is_seen_by_the_filters_before_it() {
    plugins();
    let ws = Workspace::new();
    for fuse in [true, false] {
        let served = Served::start(&chain(&ws, fuse, "c"), &[]);
        let answer = ask(&served, "", "");
        assert_eq!(answer.status, 418, "fuse = {fuse}: {}", answer.text());
        assert_eq!(answer.text(), "replaced by c\n");
        let back: Vec<&str> = answer
            .headers
            .iter()
            .filter(|(name, _)| name == "x-seen-response")
            .map(|(_, value)| value.as_str())
            .collect();
        assert_eq!(back, ["b", "a"], "fuse = {fuse}");
    }
}

#[test]
fn a_filter_that_traps_in_a_run_fails_its_request_only() {
    plugins();
    let ws = Workspace::new();
    let served = Served::start(&chain(&ws, true, ""), &[]);
    for trapping in ["b", "c", "a"] {
        let failed = ask(&served, "x-trap", trapping);
        assert_eq!(failed.status, 500, "{trapping}: {}", failed.text());
        let next = ask(&served, "", "");
        assert_eq!(next.status, 200, "after {trapping}: {}", next.text());
    }
}

#[test]
fn inspect_shows_which_filters_share_a_driver() {
    plugins();
    let ws = Workspace::new();
    let composite = chain(&ws, true, "");
    let output = run(&["inspect", "--json", composite.to_str().unwrap()]);
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let runs: Vec<(String, String, serde_json::Value)> = report["chain"]["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_string(),
                p["role"].as_str().unwrap().to_string(),
                p["run"].clone(),
            )
        })
        .collect();
    let run = |name: &str| runs.iter().find(|(n, _, _)| n == name).unwrap().clone();
    assert_eq!(run("a").2, "a");
    assert_eq!(run("b").2, "b+c");
    assert_eq!(run("c").2, "b+c");
    assert_eq!(run("b").1, "header-filter");
    assert_eq!(run("tag").2, serde_json::Value::Null);

    let text = run_text(&["inspect", composite.to_str().unwrap()]);
    assert!(
        text.contains("fused: the run b+c shares one driver"),
        "{text}"
    );

    let filter = run_text(&[
        "inspect",
        plugins().join("header-gate.wasm").to_str().unwrap(),
    ]);
    assert!(filter.contains("header-filter component"), "{filter}");
    assert!(
        filter.contains("filter     pwchain:proxy/header-filter@0.1.0"),
        "{filter}"
    );
}

fn run_text(args: &[&str]) -> String {
    let output = run(args);
    assert!(
        output.status.success(),
        "{}",
        crate::support::stderr(&output)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn a_run_goes_out_as_wac_and_composes_back() {
    plugins();
    let ws = Workspace::new();
    let manifest = ws.manifest(
        "[[plugin]]\nname = \"a\"\npath = \"{plugins}/header-gate.wasm\"\nconfig = { name = \"a\" }\n\n[[plugin]]\nname = \"f\"\npath = \"{plugins}/add-header-filter.wasm\"\n\n[origin]\nname = \"echo\"\npath = \"{plugins}/echo.wasm\"\n",
    );
    let wac = ws.path("chain.wac");
    let output = crate::compose::emit_wac(&manifest, &wac);
    assert!(
        output.status.success(),
        "{}",
        crate::support::stderr(&output)
    );
    let text = std::fs::read_to_string(&wac).unwrap();
    assert!(text.contains("new pwchain:header-run"), "{text}");
    assert!(text.contains("new pwchain:header-seq"), "{text}");
    assert!(ws.path("chain.deps/pwchain/header-run.wasm").exists());

    let composite = ws.path("from-wac.wasm");
    let output = crate::compose::compose_as_commented(&wac, &composite);
    assert!(
        output.status.success(),
        "{}",
        crate::support::stderr(&output)
    );
    let served = Served::start(&composite, &[]);
    let answer = served.request("GET", "/", &[], b"");
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert!(answer.text().contains("x-seen: a\n"), "{}", answer.text());
    assert!(
        answer.text().contains("x-chain-hop: add-header-filter\n"),
        "{}",
        answer.text()
    );
    assert_eq!(answer.header("x-seen-response"), Some("a"));
}

#[test]
fn what_is_not_a_header_filter_or_stands_wrong_is_refused() {
    plugins();
    let ws = Workspace::new();
    compose_fails(
        &ws,
        "[[plugin]]\nname = \"pretender\"\npath = \"{plugins}/not-a-filter.wasm\"\n\n[origin]\nname = \"echo\"\npath = \"{plugins}/echo.wasm\"\n",
        &[
            "pretender",
            "pwchain:proxy/header-filter@0.1.0",
            "should have `on-request` and `on-response`",
            "`on-request` (1 parameter, no result)",
            "--kind header-filter",
        ],
    );
    compose_fails(
        &ws,
        "[[plugin]]\nname = \"last\"\npath = \"{plugins}/header-gate.wasm\"\n",
        &["last", "is a header filter", "no `[origin]`"],
    );
    compose_fails(
        &ws,
        "[[plugin]]\nname = \"tag\"\npath = \"{plugins}/add-header.wasm\"\n\n[origin]\nname = \"gate\"\npath = \"{plugins}/header-gate.wasm\"\n",
        &["gate", "the origin must be a service", "header filter"],
    );
}
