//! Plugins in Python (componentize-py) and Rust in one chain, composed by
//! pwchain and driven over real HTTP.

use crate::support::{Served, Workspace, python_plugins, run};

#[test]
fn a_mixed_python_and_rust_chain_answers() {
    python_plugins();
    let ws = Workspace::new();
    let composite = ws.compose(
        "[chain]\nname = \"mixed\"\n\n\
         [[plugin]]\nname = \"tag\"\npath = \"{plugins}/py-header-tag.wasm\"\n\n\
         [[plugin]]\nname = \"add-header\"\npath = \"{plugins}/add-header.wasm\"\n\n\
         [[plugin]]\nname = \"gate\"\npath = \"{plugins}/py-gate.wasm\"\n\n\
         [origin]\npath = \"{plugins}/echo.wasm\"\n",
    );
    let served = Served::start(&composite, &[]);

    let answer = served.request(
        "POST",
        "/hello",
        &[("x-internal-debug", "secret"), ("x-keep", "me")],
        b"body from the client",
    );
    assert_eq!(answer.status, 200, "{}", answer.text());
    let echoed = answer.text();
    // What the service saw: headers from Python and Rust, one removed.
    assert!(echoed.starts_with("POST /hello\n"), "{echoed}");
    assert!(echoed.contains("x-python: header-tag"), "{echoed}");
    assert!(echoed.contains("x-chain-hop: add-header"), "{echoed}");
    assert!(echoed.contains("x-keep: me"), "{echoed}");
    assert!(!echoed.contains("x-internal-debug"), "{echoed}");
    assert!(echoed.ends_with("body from the client"), "{echoed}");
    // And on the way back out.
    assert_eq!(answer.header("x-python-response"), Some("header-tag"));
    assert_eq!(answer.header("x-served-by"), Some("pwchain add-header"));

    // The Python gate answers by itself; the outer plugins still see it.
    let blocked = served.request("GET", "/private/keys", &[], b"");
    assert_eq!(blocked.status, 403);
    assert_eq!(
        blocked.text(),
        "blocked by the python gate: /private/keys\n"
    );
    assert_eq!(blocked.header("x-python-response"), Some("header-tag"));
    let flagged = served.request("GET", "/open", &[("x-block", "yes")], b"");
    assert_eq!(flagged.status, 403);
}

#[test]
fn componentize_py_output_is_inspected_plainly() {
    let plugins = python_plugins();
    let output = run(&["inspect", plugins.join("py-gate.wasm").to_str().unwrap()]);
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{text}");
    assert!(text.contains("middleware component"), "{text}");
    assert!(text.contains("componentize-py"), "{text}");
    assert!(text.contains("wasi:sockets"), "{text}");
}
