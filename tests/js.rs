//! Plugins in JavaScript (componentize-qjs 0.5, QuickJS inside) in one chain
//! with Python, Rust and a wrapped proxy-wasm filter, composed by pwchain
//! and driven over real HTTP in `pwchain serve` and the real `wasmtime
//! serve`; a plugin that throws; a build that fails.

use crate::support::{
    Response, Served, Workspace, js_plugins, legacy_plugins, python_plugins, repo, run,
    wasmtime_serve,
};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Python rewrites headers, JavaScript rewrites headers, Rust adds one, a
/// proxy-wasm filter (never rebuilt) adds its own, JavaScript answers 429
/// when the quota is spent, and echo answers the rest.
fn three_languages(ws: &Workspace) -> PathBuf {
    js_plugins();
    python_plugins();
    legacy_plugins();
    ws.compose(
        "[chain]\nname = \"polyglot\"\n\n\
         [[plugin]]\nname = \"py-tag\"\npath = \"{plugins}/py-header-tag.wasm\"\n\n\
         [[plugin]]\nname = \"js-headers\"\npath = \"{plugins}/js-headers.wasm\"\n\n\
         [[plugin]]\nname = \"add-header\"\npath = \"{plugins}/add-header.wasm\"\n\n\
         [[plugin]]\nname = \"header-filter\"\nproxy-wasm = \"{legacy}/header-filter.wasip1.wasm\"\n\
         configuration = \"from-js-test\"\n\n\
         [[plugin]]\nname = \"js-quota\"\npath = \"{plugins}/js-quota.wasm\"\n\n\
         [origin]\npath = \"{plugins}/echo.wasm\"\n",
    )
}

/// What every host must answer for [`three_languages`]: headers both ways,
/// a 1 MiB body intact, and the JavaScript short circuit seen by the
/// plugins in front of it.
fn answers_like_the_chain_says(request: impl Fn(&str, &[(&str, &str)], &[u8]) -> Response) {
    let body: Vec<u8> = (0..1 << 20).map(|i: u32| (i * 7 % 251) as u8).collect();
    let answer = request(
        "/upload",
        &[("x-internal-debug", "secret"), ("x-keep", "me")],
        &body,
    );
    assert_eq!(answer.status, 200, "{}", answer.text());
    let (head, echoed) = split_echo(&answer.body);
    // What the service saw: a header from each language, one removed.
    assert!(head.starts_with("POST /upload\n"), "{head}");
    for header in [
        "x-python: header-tag",
        "x-js: headers",
        "x-chain-hop: add-header",
        "x-legacy-request: from-js-test",
        "x-keep: me",
    ] {
        assert!(head.contains(header), "no {header:?} in:\n{head}");
    }
    assert!(!head.contains("x-internal-debug"), "{head}");
    assert_eq!(
        hex(&Sha256::digest(echoed)),
        hex(&Sha256::digest(&body)),
        "the 1 MiB body changed on its way through the chain"
    );
    // And on the way back out, from every plugin.
    assert_eq!(answer.header("x-python-response"), Some("header-tag"));
    assert_eq!(answer.header("x-js-response"), Some("headers"));
    assert_eq!(answer.header("x-served-by"), Some("pwchain add-header"));
    assert_eq!(answer.header("x-legacy-response"), Some("from-js-test"));

    // The JavaScript quota answers by itself; the plugins in front see it.
    let spent = request("/api/items", &[("x-quota-remaining", "0")], b"");
    assert_eq!(spent.status, 429, "{}", spent.text());
    assert_eq!(spent.header("content-type"), Some("application/json"));
    assert_eq!(spent.header("retry-after"), Some("60"));
    let json: serde_json::Value = serde_json::from_slice(&spent.body).expect("a JSON body");
    assert_eq!(json["error"], "quota exhausted");
    assert_eq!(json["path"], "/api/items");
    assert_eq!(spent.header("x-python-response"), Some("header-tag"));
    assert_eq!(spent.header("x-js-response"), Some("headers"));
    assert_eq!(spent.header("x-legacy-response"), Some("from-js-test"));
    let left = request("/api/items", &[("x-quota-remaining", "3")], b"");
    assert_eq!(left.status, 200, "{}", left.text());
}

/// Echo's answer: the request head it saw, then the body it got.
fn split_echo(body: &[u8]) -> (String, &[u8]) {
    let end = body
        .windows(2)
        .position(|w| w == b"\n\n")
        .expect("echo's blank line");
    (
        String::from_utf8_lossy(&body[..end]).into_owned(),
        &body[end + 2..],
    )
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn a_chain_in_three_languages_and_a_legacy_filter_answers_in_pwchain_serve() {
    let ws = Workspace::new();
    let served = Served::start(&three_languages(&ws), &[]);
    answers_like_the_chain_says(|path, headers, body| served.request("POST", path, headers, body));
}

#[test]
fn a_chain_in_three_languages_and_a_legacy_filter_answers_in_wasmtime_serve() {
    let ws = Workspace::new();
    let chain = three_languages(&ws);
    let served = wasmtime_serve(&chain, &["-Scli"]).expect("wasmtime serve -Scli runs it");
    answers_like_the_chain_says(|path, headers, body| served.request("POST", path, headers, body));
}

#[test]
fn componentize_qjs_output_is_inspected_and_validated_plainly() {
    let plugins = js_plugins();
    let output = run(&["inspect", plugins.join("js-headers.wasm").to_str().unwrap()]);
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{text}");
    assert!(text.contains("middleware component"), "{text}");
    assert!(
        text.contains("QuickJS, built in by componentize-qjs"),
        "{text}"
    );
    assert!(text.contains("wasi:filesystem"), "{text}");
    let json = run(&[
        "inspect",
        "--json",
        plugins.join("js-quota.wasm").to_str().unwrap(),
    ]);
    let json: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(json["runtime"], "quickjs");
    assert_eq!(json["role"], "middleware");

    let ws = Workspace::new();
    let chain = ws.compose(
        "[[plugin]]\nname = \"js\"\npath = \"{plugins}/js-headers.wasm\"\n\n\
         [origin]\npath = \"{plugins}/echo.wasm\"\n",
    );
    let output = run(&["validate", chain.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{text}");
    assert!(text.contains("runs in    `wasmtime serve -Scli`"), "{text}");
}

/// The componentize-qjs binary (installed once per machine).
fn componentize_qjs() -> PathBuf {
    let output = Command::new("bash")
        .arg(repo().join("scripts/componentize-qjs.sh"))
        .output()
        .expect("run scripts/componentize-qjs.sh");
    assert!(
        output.status.success(),
        "{}",
        crate::support::stderr(&output)
    );
    PathBuf::from(String::from_utf8(output.stdout).unwrap().trim())
}

/// Builds `source` as a middleware; componentize-qjs's own output if it fails.
fn build_js(dir: &Path, source: &str) -> Result<PathBuf, String> {
    let js = dir.join("plugin.js");
    std::fs::write(&js, source).unwrap();
    let out = dir.join("plugin.wasm");
    let output = Command::new(componentize_qjs())
        .arg("--wit")
        .arg(repo().join("wit"))
        .args(["--world", "wasi:http/middleware@0.3.2", "--js"])
        .arg(&js)
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap();
    match output.status.success() {
        true => Ok(out),
        false => Err(crate::support::stderr(&output)),
    }
}

#[test]
fn a_javascript_plugin_that_throws_fails_only_its_request() {
    let ws = Workspace::new();
    let plugin = build_js(
        ws.dir.path(),
        "import nextHop from \"wasi:http/handler@0.3.2\";\n\
         export const handler = {\n\
           async handle(request) {\n\
             if ((request.getPathWithQuery() ?? \"\").startsWith(\"/throw\")) {\n\
               throw new Error(\"thrown on purpose\");\n\
             }\n\
             return nextHop.handle(request);\n\
           },\n\
         };\n",
    )
    .expect("a plugin that throws on /throw builds");
    let chain = ws.compose(&format!(
        "[[plugin]]\nname = \"thrower\"\npath = \"{}\"\n\n\
         [origin]\npath = \"{{plugins}}/echo.wasm\"\n",
        plugin.display()
    ));
    let served = Served::start(&chain, &[]);
    let thrown = served.request("GET", "/throw", &[], b"");
    assert_eq!(thrown.status, 500, "{}", thrown.text());
    assert!(
        served.log_line("thrown on purpose").is_some(),
        "the JavaScript error is not in the log"
    );
    for _ in 0..3 {
        let next = served.request("GET", "/fine", &[], b"");
        assert_eq!(next.status, 200, "{}", next.text());
        assert!(next.text().starts_with("GET /fine\n"), "{}", next.text());
    }
}

#[test]
fn a_javascript_file_that_does_not_compile_fails_the_build_and_writes_nothing() {
    let ws = Workspace::new();
    let project = ws.path("broken");
    let output = run(&[
        "new",
        "broken",
        "--lang",
        "js",
        "--dir",
        project.to_str().unwrap(),
    ]);
    assert!(
        output.status.success(),
        "{}",
        crate::support::stderr(&output)
    );
    std::fs::write(
        project.join("app.js"),
        "export const handler = { async handle(request) { return ( } };\n",
    )
    .unwrap();
    let output = Command::new("bash")
        .arg(project.join("build.sh"))
        .env("COMPONENTIZE_QJS", componentize_qjs())
        .output()
        .unwrap();
    let said = crate::support::stderr(&output);
    assert!(!output.status.success(), "a broken app.js built:\n{said}");
    // componentize-qjs's own words, with the place.
    assert!(said.contains("unexpected token"), "{said}");
    assert!(said.contains("/app.js:1:"), "{said}");
    let wasm: Vec<_> = std::fs::read_dir(&project)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("broken.wasm"))
        .collect();
    assert!(wasm.is_empty(), "a failed build left {wasm:?}");
}
