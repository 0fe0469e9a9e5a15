//! `pwchain new`: every template builds with its own instructions, composes
//! with its example chain and answers over real HTTP.

use crate::support::{
    Served, Workspace, first_value, js_plugins, pwchain, python_plugins, repo, send, stderr,
};
use std::path::Path;
use std::process::Command;

fn scaffold(ws: &Workspace, name: &str, lang: &str, kind: &str) -> std::path::PathBuf {
    let dir = ws.path(name);
    let output = pwchain()
        .args(["new", name, "--lang", lang, "--kind", kind, "--dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    dir
}

/// Composes the project's `chain.toml`, serves it and checks one answer;
/// a middleware or header filter in front of `echo` also passes a
/// request's trailers there and the answer's back (over HTTP/2).
fn answers(project: &Path, header: &str, value: &str) {
    let composite = project.join("chain.wasm");
    let output = pwchain()
        .arg("compose")
        .arg(project.join("chain.toml"))
        .arg("-o")
        .arg(&composite)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let served = Served::start(&composite, &[]);
    let answer = served.request("GET", "/from-test", &[], b"");
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.header(header), Some(value));
    if project.join("echo.wasm").exists() {
        let trailed = send(served.addr, true, b"body", &[("x-sum", "42")]);
        assert_eq!(first_value(&trailed.headers, header), Some(value));
        assert!(trailed.body.ends_with(b"\n\nbody"), "{trailed:?}");
        assert_eq!(trailed.trailers, [("x-sum".to_string(), "42".to_string())]);
    }
    // A header filter tags the request too, and answers one path itself.
    if value == "response" {
        let text = answer.text();
        assert!(text.contains(&format!("{header}: request\n")), "{text}");
        let name = header.trim_start_matches("x-");
        let refused = served.request("GET", &format!("/{name}-says-no"), &[], b"");
        assert_eq!(refused.status, 403, "{}", refused.text());
        assert_eq!(refused.text(), format!("{name} says no\n"));
    }
}

#[test]
fn rust_templates_build_and_answer() {
    let ws = Workspace::new();
    // Share the example plugins' target directory: the same dependencies,
    // built once (plugins/build.sh uses it too).
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| repo().join("plugins/target"));
    for (name, kind, header, value) in [
        ("tag-it", "middleware", "x-tag-it", "passed"),
        ("say-hi", "service", "x-say-hi", "answered"),
        ("tag-head", "header-filter", "x-tag-head", "response"),
    ] {
        let project = scaffold(&ws, name, "rust", kind);
        let status = Command::new("cargo")
            .args(["build", "--release", "--quiet", "--target", "wasm32-wasip2"])
            .current_dir(&project)
            .env("CARGO_TARGET_DIR", &target)
            .status()
            .unwrap();
        assert!(status.success(), "the {kind} template does not build");
        // Where its chain.toml expects it (the project's own target dir).
        let file = format!("{}.wasm", name.replace('-', "_"));
        let expected = project.join("target/wasm32-wasip2/release");
        std::fs::create_dir_all(&expected).unwrap();
        std::fs::copy(
            target.join("wasm32-wasip2/release").join(&file),
            expected.join(&file),
        )
        .unwrap();
        answers(&project, header, value);
    }
}

#[test]
fn python_templates_build_and_answer() {
    let componentize = python_plugins().join("../examples/python/.venv/bin/componentize-py");
    let ws = Workspace::new();
    for (name, kind, header, value) in [
        ("py-tag", "middleware", "x-py-tag", "passed"),
        ("py-hi", "service", "x-py-hi", "answered"),
        ("py-head", "header-filter", "x-py-head", "response"),
    ] {
        let project = scaffold(&ws, name, "python", kind);
        let status = Command::new("bash")
            .arg(project.join("build.sh"))
            .env("COMPONENTIZE_PY", &componentize)
            .status()
            .unwrap();
        assert!(
            status.success(),
            "the python {kind} template does not build"
        );
        answers(&project, header, value);
    }
}

#[test]
fn js_templates_build_and_answer() {
    // The repository's plugins install componentize-qjs into the tools
    // cache; the generated `componentize-qjs.sh` finds it there.
    js_plugins();
    let ws = Workspace::new();
    for (name, kind, header, value) in [
        ("js-tag", "middleware", "x-js-tag", "passed"),
        ("js-hi", "service", "x-js-hi", "answered"),
        ("js-head", "header-filter", "x-js-head", "response"),
    ] {
        let project = scaffold(&ws, name, "js", kind);
        let output = Command::new("bash")
            .arg(project.join("build.sh"))
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "the js {kind} template does not build:\n{}",
            stderr(&output)
        );
        answers(&project, header, value);
    }
}

#[test]
fn new_refuses_what_it_cannot_do() {
    let ws = Workspace::new();
    std::fs::create_dir(ws.path("taken")).unwrap();
    ws.write("taken/keep.txt", "");
    let refuse = |args: &[&str], expected: &[&str]| {
        let output = pwchain()
            .current_dir(ws.path(""))
            .args(args)
            .output()
            .unwrap();
        let message = stderr(&output);
        assert!(!output.status.success(), "{message}");
        for piece in expected {
            assert!(message.contains(piece), "expected {piece:?} in:\n{message}");
        }
    };
    refuse(
        &["new", "taken", "--lang", "rust"],
        &["`taken` exists and is not empty"],
    );
    refuse(
        &["new", "taken", "--lang", "js", "--kind", "service"],
        &["`taken` exists and is not empty"],
    );
    assert_eq!(std::fs::read_dir(ws.path("taken")).unwrap().count(), 1);
    refuse(
        &["new", "Not_Kebab", "--lang", "rust"],
        &["`Not_Kebab` is not a valid plugin name", "kebab-case"],
    );
    refuse(
        &["new", "x", "--lang", "go"],
        &["possible values: rust, python, js"],
    );
    assert!(!ws.path("x").exists() && !ws.path("Not_Kebab").exists());
}
