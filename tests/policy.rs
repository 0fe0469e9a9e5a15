//! Per-plugin configuration, side-call policies and the chain's import
//! allow-list, baked into real composites and driven over real HTTP.

use crate::support::{Peer, Served, Workspace, compose_fails, run, stderr};
use std::time::Duration;

/// Composes `toml` in a fresh workspace and expects failure with every
/// piece of `expected` in the message.
fn refused(toml: &str, expected: &[&str]) {
    compose_fails(&Workspace::new(), toml, expected);
}

#[test]
fn two_instances_of_one_plugin_read_their_own_config() {
    let ws = Workspace::new();
    let composite = ws.compose(
        "[[plugin]]\nname = \"blue\"\npath = \"{plugins}/add-header.wasm\"\nconfig = { \"request.x-tenant\" = \"blue\", \"response.x-tenant\" = \"blue\", \"response.x-limit\" = 5 }\n\n\
         [[plugin]]\nname = \"green\"\npath = \"{plugins}/add-header.wasm\"\nconfig = { \"response.x-tenant\" = \"green\", \"response.x-flags\" = [1, \"two\"] }\n\n\
         [[plugin]]\nname = \"plain\"\npath = \"{plugins}/add-header.wasm\"\n\n\
         [origin]\npath = \"{plugins}/echo.wasm\"\n",
    );
    let served = Served::start(&composite, &[]);
    let answer = served.request("GET", "/who", &[], b"");
    assert_eq!(answer.status, 200, "{}", answer.text());
    let tenants: Vec<&str> = answer
        .headers
        .iter()
        .filter(|(k, _)| k == "x-tenant")
        .map(|(_, v)| v.as_str())
        .collect();
    // Responses pass back outwards: green adds its header before blue.
    assert_eq!(tenants, ["green", "blue"]);
    assert_eq!(answer.header("x-limit"), Some("5"), "numbers as JSON text");
    assert_eq!(answer.header("x-flags"), Some("[1,\"two\"]"));
    // The unconfigured instance got an empty store, so its defaults.
    assert_eq!(answer.header("x-served-by"), Some("pwchain add-header"));
    let echoed = answer.text();
    assert!(echoed.contains("x-tenant: blue"), "{echoed}");
    assert!(echoed.contains("x-chain-hop: add-header"), "{echoed}");

    let output = run(&["inspect", "--json", composite.to_str().unwrap()]);
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        report["chain"]["plugins"][0]["config"],
        serde_json::json!(["request.x-tenant", "response.x-limit", "response.x-tenant"])
    );
    assert_eq!(
        report["host_imports"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|i| i.as_str().unwrap().starts_with("wasi:config"))
            .count(),
        0,
        "the store is no host import"
    );
}

#[test]
fn side_calls_follow_each_plugins_policy() {
    let collector = Peer::start("logged");
    let authority = collector.addr.to_string();
    let url = format!("http://{authority}/audit");
    let ws = Workspace::new();
    let composite = ws.compose(&format!(
        "[[plugin]]\nname = \"denied\"\npath = \"{{plugins}}/audit.wasm\"\nside-calls = \"deny\"\nconfig = {{ collector = \"{url}?from=denied\" }}\n\n\
         [[plugin]]\nname = \"listed\"\npath = \"{{plugins}}/audit.wasm\"\nside-calls = {{ allow = [\"{authority}\"] }}\nconfig = {{ collector = \"{url}?from=listed\" }}\n\n\
         [[plugin]]\nname = \"unlisted\"\npath = \"{{plugins}}/audit.wasm\"\nside-calls = {{ allow = [\"*.example.internal\", \"127.0.0.1:1\"] }}\nconfig = {{ collector = \"{url}?from=unlisted\" }}\n\n\
         [[plugin]]\nname = \"free\"\npath = \"{{plugins}}/audit.wasm\"\nconfig = {{ collector = \"{url}?from=free\" }}\n\n\
         [origin]\npath = \"{{plugins}}/echo.wasm\"\n"
    ));
    let served = Served::start(&composite, &[]);
    let answer = served.request("GET", "/x", &[], b"");
    assert_eq!(answer.status, 200, "{}", answer.text());

    let mut seen = Vec::new();
    while let Ok(call) = collector.received.recv_timeout(Duration::from_secs(2)) {
        seen.push(call.request_line);
    }
    seen.sort();
    assert_eq!(
        seen,
        [
            "POST /audit?from=free HTTP/1.1",
            "POST /audit?from=listed HTTP/1.1"
        ]
    );
    for from in ["denied", "unlisted"] {
        let line = served
            .log_line(&format!("from={from} failed"))
            .unwrap_or_else(|| panic!("no failure logged for {from}"));
        assert!(line.contains("HttpRequestDenied"), "{line}");
    }

    let output = run(&["inspect", "--json", composite.to_str().unwrap()]);
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let policies: Vec<&serde_json::Value> = report["chain"]["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| &p["side_calls"])
        .collect();
    assert_eq!(policies[0], "deny");
    assert_eq!(
        policies[1],
        &serde_json::json!({ "allow-list": [authority] })
    );
    assert_eq!(policies[3], "allow");
    let text = run(&["inspect", composite.to_str().unwrap()]);
    assert!(
        String::from_utf8_lossy(&text.stdout)
            .contains("side calls: allow only *.example.internal, 127.0.0.1:1"),
        "{}",
        String::from_utf8_lossy(&text.stdout)
    );
}

#[test]
fn allow_imports_names_the_plugin_and_the_import() {
    let chain = |allowed: &str| {
        format!(
            "[chain]\nallow-imports = [{allowed}]\n\n[[plugin]]\nname = \"audit\"\npath = \"{{plugins}}/audit.wasm\"\n\n[origin]\npath = \"{{plugins}}/echo.wasm\"\n"
        )
    };
    // Everything the Rust plugins use: wasi:http, and wasi:cli/io/clocks 0.2
    // (std; since rustc 1.97 it imports the monotonic clock).
    let ws = Workspace::new();
    ws.compose(&chain(
        "\"wasi:http/*@0.3.*\", \"wasi:cli/*\", \"wasi:io/*\", \"wasi:clocks/*\"",
    ));
    refused(
        &chain("\"wasi:http/types\", \"wasi:cli/*\", \"wasi:io/*\", \"wasi:clocks/*\""),
        &[
            "chain.toml:2:17",
            "plugin `audit`",
            "wasi:http/client@0.3.2",
            "wasi:http/types, wasi:cli/*, wasi:io/*, wasi:clocks/*",
            "help",
        ],
    );
    // Denying the side calls removes the import: now the same list holds.
    let ws = Workspace::new();
    ws.compose(
        &chain("\"wasi:http/types\", \"wasi:cli/*\", \"wasi:io/*\", \"wasi:clocks/*\"")
            .replace("audit.wasm\"\n", "audit.wasm\"\nside-calls = \"deny\"\n"),
    );
    refused(
        &chain("\"wasi:http\""),
        &[
            "chain.toml:2:18",
            "`wasi:http` is not an import pattern",
            "namespace:package/interface",
        ],
    );
}

#[test]
fn bad_settings_are_refused_where_they_are_written() {
    refused(
        "[[plugin]]\nname = \"echo\"\npath = \"{plugins}/echo.wasm\"\nconfig = { a = \"b\" }\n",
        &[
            "chain.toml:4:10",
            "plugin `echo`",
            "does not import `wasi:config/store`",
            "configuration would be ignored",
        ],
    );
    refused(
        "[[plugin]]\nname = \"a\"\npath = \"{plugins}/add-header.wasm\"\nconfig = \"x\"\n[origin]\npath = \"{plugins}/echo.wasm\"\n",
        &["chain.toml:4:10", "`config` must be a table"],
    );
    refused(
        "[[plugin]]\nname = \"a\"\npath = \"{plugins}/audit.wasm\"\nside-calls = { allow = [\"ex*ample.com\"] }\n[origin]\npath = \"{plugins}/echo.wasm\"\n",
        &[
            "chain.toml:4:14",
            "`ex*ample.com` is not an authority pattern",
        ],
    );
    refused(
        "[[plugin]]\nname = \"a\"\npath = \"{plugins}/audit.wasm\"\nside-calls = \"sometimes\"\n[origin]\npath = \"{plugins}/echo.wasm\"\n",
        &["chain.toml:4:14", "`side-calls` must be"],
    );
    refused(
        "[[plugin]]\nname = \"a\"\npath = \"{plugins}/audit.wasm\"\n[origin]\nname = \"svc\"\npath = \"{plugins}/echo.wasm\"\nconfig = { a = \"b\" }\n",
        &[
            "chain.toml:7:10",
            "plugin `svc`",
            "does not import `wasi:config/store`",
        ],
    );
    refused(
        "[[plugin]]\nname = \"a\"\npath = \"{plugins}/audit.wasm\"\n[origin]\nforward = true\nconfig = { a = \"b\" }\n",
        &["chain.toml:6:10", "only a service `[origin]`"],
    );

    // A policy with nothing to act on is a warning, not an error.
    let result = Workspace::new().compose_to(
        "[[plugin]]\nname = \"a\"\npath = \"{plugins}/add-header.wasm\"\nside-calls = \"deny\"\n[origin]\npath = \"{plugins}/echo.wasm\"\n",
        "out.wasm",
    );
    let message = stderr(&result);
    assert!(result.status.success(), "{message}");
    assert!(
        message.contains("warning: ")
            && message.contains("chain.toml:4:14: plugin `a` makes no side calls"),
        "{message}"
    );
}
