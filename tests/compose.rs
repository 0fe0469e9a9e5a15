//! `pwchain compose`, `inspect` and `--emit-wac` on real plugins, and every
//! kind of bad input: each must fail with a message that names the culprit,
//! exit non-zero, and leave no output file (nor touch an existing one).

use crate::support::{Workspace, compose_fails, plugin, plugins, run, stderr};
use sha2::{Digest, Sha256};

fn one_plugin(path: &str) -> String {
    format!("[[plugin]]\nname = \"bad\"\npath = \"{path}\"\n\n[origin]\nforward = true\n")
}

#[test]
fn empty_chain() {
    let ws = Workspace::new();
    compose_fails(
        &ws,
        "[chain]\nname = \"x\"\n",
        &["chain.toml:1:1", "the chain has no plugins"],
    );
}

#[test]
fn duplicate_plugin_names() {
    let ws = Workspace::new();
    let toml = "[[plugin]]\nname = \"a\"\npath = \"{plugins}/add-header.wasm\"\n\n[[plugin]]\nname = \"a\"\npath = \"{plugins}/echo.wasm\"\n";
    compose_fails(
        &ws,
        toml,
        &["chain.toml:6:8", "duplicate plugin name `a`", "line 1"],
    );
}

#[test]
fn unknown_keys_missing_fields_and_wrong_types_have_positions() {
    let ws = Workspace::new();
    compose_fails(
        &ws,
        "[[plugin]]\nname = \"a\"\npaht = \"x.wasm\"\n",
        &["chain.toml:3:1", "unknown field `paht`"],
    );
    compose_fails(
        &ws,
        "[[plugin]]\npath = \"x.wasm\"\n",
        &["chain.toml:1:1", "missing field `name`"],
    );
    compose_fails(
        &ws,
        "[[plugin]]\nname = \"a\"\n",
        &["chain.toml:1:1", "missing field `path`"],
    );
    compose_fails(
        &ws,
        "[[plugin]]\nname = 3\npath = \"x\"\n",
        &["chain.toml:2:8", "invalid type"],
    );
    compose_fails(
        &ws,
        "[[plugin]]\nname = \"Bad Name\"\npath = \"x\"\n",
        &["chain.toml:2:8", "invalid plugin name"],
    );
    compose_fails(
        &ws,
        "[[plugin]]\nname = \"a\"\npath = \"{plugins}/add-header.wasm\"\n[origin]\nforward = true\nhost = true\n",
        &["chain.toml:6:8", "`[origin]` can be only one thing"],
    );
    compose_fails(&ws, "[[plugin]\nname = \"a\"\n", &["chain.toml:1:"]);
}

#[test]
fn bad_upstreams_are_located_and_leave_nothing() {
    let ws = Workspace::new();
    let chain = |origin: &str| {
        format!(
            "[[plugin]]\nname = \"a\"\npath = \"{{plugins}}/add-header.wasm\"\n[origin]\n{origin}\n"
        )
    };
    ws.write("out.wasm", "an earlier build");
    for (origin, expected) in [
        (
            "upstream = \"http://admin:secret@10.0.0.1\"",
            &[
                "chain.toml:5:12",
                "user information",
                "credentials belong in a header",
            ][..],
        ),
        (
            "upstream = \"10.0.0.1:8080\"",
            &[
                "chain.toml:5:12",
                "not an absolute URL",
                "http://127.0.0.1:9000",
            ],
        ),
        (
            "upstream = \"http://up/#frag\"",
            &["chain.toml:5:12", "has a fragment"],
        ),
        (
            "path = \"{plugins}/echo.wasm\"\nupstream = \"http://up\"",
            &["chain.toml:5:8", "found upstream and a service component"],
        ),
        (
            "upstream = \"http://up\"\nfirst-byte-timeout = \"soon\"",
            &["chain.toml:6:22", "not a duration", "`250ms`, `5s` or `2m`"],
        ),
    ] {
        compose_fails(&ws, &chain(origin), expected);
        assert_eq!(
            std::fs::read_to_string(ws.path("out.wasm")).unwrap(),
            "an earlier build"
        );
    }
    // And a good one says where it goes.
    let composite = ws.compose(&chain("upstream = \"http://127.0.0.1:9000/api\""));
    let text = run(&["inspect", composite.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("a → upstream http://127.0.0.1:9000/api"),
        "{text}"
    );
    assert!(
        text.contains("`PWCHAIN_UPSTREAM` in the host's environment overrides it"),
        "{text}"
    );
}

#[test]
fn missing_path_is_named_relative_to_the_manifest() {
    let ws = Workspace::new();
    let message = compose_fails(
        &ws,
        &one_plugin("nowhere/missing.wasm"),
        &["chain.toml:3:8", "nowhere/missing.wasm"],
    );
    assert!(
        message.contains(
            &ws.dir
                .path()
                .join("nowhere/missing.wasm")
                .display()
                .to_string()
        ),
        "{message}"
    );
}

#[test]
fn not_wasm_core_module_and_truncated_component() {
    let ws = Workspace::new();
    ws.write("text.wasm", "hello, I am text");
    compose_fails(
        &ws,
        &one_plugin("text.wasm"),
        &["plugin `bad`", "is not WebAssembly", "starts with text"],
    );

    ws.write(
        "core.wasm",
        wat::parse_str("(module (func (export \"f\")))").unwrap(),
    );
    compose_fails(
        &ws,
        &one_plugin("core.wasm"),
        &[
            "plugin `bad`",
            "core WebAssembly module, not a component",
            "pwchain wrap",
        ],
    );

    let echo = std::fs::read(plugin("add-header")).unwrap();
    ws.write("truncated.wasm", &echo[..echo.len() / 2]);
    compose_fails(
        &ws,
        &one_plugin("truncated.wasm"),
        &["plugin `bad`", "is not a valid component"],
    );
}

#[test]
fn component_without_a_handler_export() {
    let ws = Workspace::new();
    ws.write("empty.wasm", wat::parse_str("(component)").unwrap());
    compose_fails(
        &ws,
        &one_plugin("empty.wasm"),
        &[
            "plugin `bad`",
            "no `wasi:http/handler@0.3.x` export",
            "it exports: nothing",
        ],
    );
}

#[test]
fn wasi_http_02_component_is_explained() {
    let ws = Workspace::new();
    ws.write(
        "p2.wasm",
        wat::parse_str(
            "(component (instance $i) (export \"wasi:http/incoming-handler@0.2.6\" (instance $i)))",
        )
        .unwrap(),
    );
    compose_fails(
        &ws,
        &one_plugin("p2.wasm"),
        &[
            "wasi:http 0.2 component",
            "wasi:http/incoming-handler@0.2.6",
            "cannot build an `incoming-request`",
        ],
    );
}

#[test]
fn prerelease_wasi_http_is_refused() {
    let ws = Workspace::new();
    ws.write(
        "rc.wasm",
        wat::parse_str("(component (instance $i) (export \"wasi:http/handler@0.3.0-rc-2025-09-16\" (instance $i)))").unwrap(),
    );
    compose_fails(
        &ws,
        &one_plugin("rc.wasm"),
        &[
            "prerelease",
            "wasi:http/handler@0.3.0-rc-2025-09-16",
            "match only exactly",
        ],
    );
}

#[test]
fn stages_in_the_wrong_place() {
    let ws = Workspace::new();
    compose_fails(
        &ws,
        "[[plugin]]\nname = \"echo\"\npath = \"{plugins}/echo.wasm\"\n\n[[plugin]]\nname = \"tag\"\npath = \"{plugins}/add-header.wasm\"\n\n[origin]\nforward = true\n",
        &[
            "chain.toml:1:1",
            "plugin `echo`",
            "service",
            "stands before `tag`",
        ],
    );
    compose_fails(
        &ws,
        "[[plugin]]\nname = \"tag\"\npath = \"{plugins}/add-header.wasm\"\n",
        &[
            "plugin `tag`",
            "middleware",
            "no `[origin]`",
            "forward = true",
        ],
    );
    compose_fails(
        &ws,
        "[[plugin]]\nname = \"echo\"\npath = \"{plugins}/echo.wasm\"\n\n[origin]\nforward = true\n",
        &["plugin `echo`", "nothing can stand after it"],
    );
    compose_fails(
        &ws,
        "[[plugin]]\nname = \"tag\"\npath = \"{plugins}/add-header.wasm\"\n\n[origin]\npath = \"{plugins}/auth.wasm\"\n",
        &["chain.toml:5:1", "the origin must be a service"],
    );
}

#[test]
fn plugins_that_cannot_be_linked() {
    // A "handler" whose `handle` has nothing of wasi:http's shape.
    let ws = Workspace::new();
    ws.write(
        "odd.wasm",
        wat::parse_str(
            r#"(component
                 (core module $m (func (export "f") (param i32) (result i32) local.get 0))
                 (core instance $i (instantiate $m))
                 (func $f (param "x" u32) (result u32) (canon lift (core func $i "f")))
                 (instance $h (export "handle" (func $f)))
                 (export "wasi:http/handler@0.3.2" (instance $h)))"#,
        )
        .unwrap(),
    );
    compose_fails(
        &ws,
        "[[plugin]]\nname = \"tag\"\npath = \"{plugins}/add-header.wasm\"\n\n[origin]\npath = \"odd.wasm\"\n",
        &[
            "chain.toml:1:1",
            "cannot link plugin `tag` to `origin`",
            "wasi:http/handler@0.3.2",
        ],
    );
}

#[test]
fn failed_compose_keeps_the_existing_output() {
    let ws = Workspace::new();
    let manifest = ws.manifest(&one_plugin("missing.wasm"));
    let output = ws.write("chain.wasm", "previous build");
    let result = run(&[
        "compose",
        manifest.to_str().unwrap(),
        "-o",
        output.to_str().unwrap(),
    ]);
    assert_eq!(result.status.code(), Some(1));
    assert_eq!(std::fs::read_to_string(&output).unwrap(), "previous build");
    assert_eq!(ws.files(), ["chain.toml", "chain.wasm"]);
}

const CHAIN: &str = "[chain]\nname = \"edge\"\n\n[[plugin]]\nname = \"auth\"\npath = \"{plugins}/auth.wasm\"\n\n[[plugin]]\nname = \"request-id\"\npath = \"{plugins}/request-id.wasm\"\n\n[origin]\npath = \"{plugins}/echo.wasm\"\n";

#[test]
fn composite_records_its_chain() {
    let ws = Workspace::new();
    let composite = ws.compose(CHAIN);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&composite).unwrap().permissions().mode();
        assert_eq!(
            mode & 0o777,
            0o644,
            "a composite is readable by all, like any build output"
        );
    }
    let output = run(&["inspect", "--json", composite.to_str().unwrap()]);
    assert!(output.status.success(), "{}", stderr(&output));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["role"], "service");
    assert_eq!(report["entry"], "wasi:http/handler@0.3.2");
    assert_eq!(report["next_hop"], serde_json::Value::Null);
    let chain = &report["chain"];
    assert_eq!(chain["name"], "edge");
    assert_eq!(chain["pwchain"], env!("CARGO_PKG_VERSION"));
    let names: Vec<&str> = chain["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["auth", "request-id", "origin"]);
    for (stage, file) in
        chain["plugins"]
            .as_array()
            .unwrap()
            .iter()
            .zip(["auth", "request-id", "echo"])
    {
        let digest = format!(
            "sha256:{}",
            hex::encode(Sha256::digest(std::fs::read(plugin(file)).unwrap()))
        );
        assert_eq!(stage["digest"], digest.as_str());
        assert!(
            stage["source"]
                .as_str()
                .unwrap()
                .ends_with(&format!("{file}.wasm"))
        );
    }
    let text = String::from_utf8_lossy(&run(&["inspect", composite.to_str().unwrap()]).stdout)
        .into_owned();
    assert!(text.contains("`edge` composed by pwchain"), "{text}");
}

#[test]
fn inspect_classifies_plugins() {
    let middleware = run(&["inspect", "--json", plugin("audit").to_str().unwrap()]);
    let report: serde_json::Value = serde_json::from_slice(&middleware.stdout).unwrap();
    assert_eq!(report["role"], "middleware");
    assert_eq!(report["next_hop"]["import"], "wasi:http/handler@0.3.2");
    assert_eq!(report["next_hop"]["form"], "handler");
    assert_eq!(report["side_calls"][0], "wasi:http/client@0.3.2");

    let origin = run(&["inspect", "--json", plugin("request-id").to_str().unwrap()]);
    let report: serde_json::Value = serde_json::from_slice(&origin.stdout).unwrap();
    assert_eq!(report["next_hop"]["import"], "pwchain:proxy/origin@0.1.0");
    assert_eq!(report["next_hop"]["form"], "origin");

    let service = run(&["inspect", "--json", plugin("echo").to_str().unwrap()]);
    let report: serde_json::Value = serde_json::from_slice(&service.stdout).unwrap();
    assert_eq!(report["role"], "service");
    assert!(
        report["wasi"]["wasi:http"]
            .as_array()
            .unwrap()
            .contains(&"0.3.2".into())
    );
}

#[test]
fn output_to_stdout() {
    let ws = Workspace::new();
    let manifest = ws.manifest(CHAIN);
    let output = run(&["compose", manifest.to_str().unwrap(), "-o", "-"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(output.stdout.starts_with(b"\0asm"));
    assert_eq!(ws.files(), ["chain.toml"]);
}

#[test]
fn emitted_wac_composes_to_the_same_chain() {
    let ws = Workspace::new();
    let manifest = ws.manifest(CHAIN);
    let emitted = run(&["compose", manifest.to_str().unwrap(), "--emit-wac"]);
    assert!(emitted.status.success(), "{}", stderr(&emitted));
    let wac = String::from_utf8(emitted.stdout).unwrap();
    assert!(wac.contains("package pwchain:edge;"), "{wac}");
    assert!(
        wac.contains("\"pwchain:proxy/origin@0.1.0\": origin[\"wasi:http/handler@0.3.2\"]"),
        "{wac}"
    );
    assert!(
        wac.contains("export auth[\"wasi:http/handler@0.3.2\"];"),
        "{wac}"
    );
    let path = ws.write("chain.wac", &wac);

    let composed = compose_as_commented(&path, &ws.path("from-wac.wasm"));
    assert!(composed.status.success(), "{}", stderr(&composed));
    let validated = run(&["validate", ws.path("from-wac.wasm").to_str().unwrap()]);
    assert!(
        validated.status.success(),
        "{}",
        String::from_utf8_lossy(&validated.stdout)
    );
}

#[test]
fn wac_with_an_unknown_package_points_at_it() {
    let ws = Workspace::new();
    let path = ws.write("chain.wac", "package a:b;\n\nlet x = new acme:nothing { ... };\nexport x[\"wasi:http/handler@0.3.2\"];\n");
    let output = run(&[
        "compose",
        path.to_str().unwrap(),
        "--deps",
        plugins().to_str().unwrap(),
        "-o",
        ws.path("o.wasm").to_str().unwrap(),
    ]);
    let message = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{message}");
    assert!(message.contains("chain.wac:3:13"), "{message}");
    assert!(
        message.contains("unknown package `acme:nothing`"),
        "{message}"
    );
    assert!(!ws.path("o.wasm").exists());
}

#[test]
fn digest_pins_are_checked() {
    let ws = Workspace::new();
    let bytes = std::fs::read(plugin("echo")).unwrap();
    let real = format!("sha256:{}", hex::encode(Sha256::digest(&bytes)));
    let wrong = format!("sha256:{}", "0".repeat(64));
    let toml = |digest: &str| {
        format!(
            "[[plugin]]\nname = \"echo\"\npath = \"{{plugins}}/echo.wasm\"\ndigest = \"{digest}\"\n"
        )
    };
    ws.compose(&toml(&real));
    compose_fails(
        &ws,
        &toml(&wrong),
        &["chain.toml:4:10", &format!("pinned to {wrong}"), &real],
    );
    compose_fails(
        &ws,
        &toml("sha256:xyz"),
        &["chain.toml:4:10", "is not a sha256 digest"],
    );
}

/// `pwchain compose MANIFEST --emit-wac -o WAC`.
pub(crate) fn emit_wac(manifest: &std::path::Path, wac: &std::path::Path) -> std::process::Output {
    run(&[
        "compose",
        manifest.to_str().unwrap(),
        "--emit-wac",
        "-o",
        wac.to_str().unwrap(),
    ])
}

/// Composes the WAC document at `wac` into `out` with the flags its first
/// comment gives for `wac compose` (`--deps-dir` is pwchain's `--deps`).
pub(crate) fn compose_as_commented(
    wac: &std::path::Path,
    out: &std::path::Path,
) -> std::process::Output {
    let text = std::fs::read_to_string(wac).unwrap();
    let flags: Vec<String> = text
        .lines()
        .find_map(|l| l.strip_prefix("// wac compose "))
        .unwrap()
        .split(' ')
        .map(str::to_string)
        .collect();
    let mut command = crate::support::pwchain();
    command.arg("compose").arg(wac).arg("-o").arg(out);
    for pair in flags.chunks(2) {
        match pair[0].as_str() {
            "--dep" => command.args(["--dep", &pair[1]]),
            "--deps-dir" => command.args(["--deps", &pair[1]]),
            _ => continue,
        };
    }
    command.output().unwrap()
}

#[test]
fn emitted_wac_carries_generated_and_wrapped_components() {
    let ws = Workspace::new();
    let manifest = ws.manifest(
        "[chain]\nname = \"cfg\"\n\n[[plugin]]\nname = \"tag\"\npath = \"{plugins}/add-header.wasm\"\nconfig = { \"response.x-tag\" = \"from-wac\" }\n\n[[plugin]]\nname = \"legacy\"\nproxy-wasm = \"{legacy}/header-filter.unknown.wasm\"\nconfiguration = \"wrapped-for-wac\"\n\n[[plugin]]\nname = \"audit\"\npath = \"{plugins}/audit.wasm\"\nside-calls = { allow = [\"*.internal\"] }\n\n[origin]\npath = \"{plugins}/echo.wasm\"\n",
    );
    // On standard output there is nowhere to put them.
    let printed = run(&["compose", manifest.to_str().unwrap(), "--emit-wac"]);
    assert_eq!(printed.status.code(), Some(1));
    assert!(stderr(&printed).contains("write the WAC to a file with `-o`"));

    let wac = ws.path("cfg.wac");
    let emitted = emit_wac(&manifest, &wac);
    assert!(emitted.status.success(), "{}", stderr(&emitted));
    for generated in [
        "tag-config",
        "audit-config",
        "audit-allow-calls-config",
        "allow-calls",
    ] {
        assert!(
            ws.path(&format!("cfg.deps/pwchain/{generated}.wasm"))
                .exists(),
            "{generated}"
        );
    }
    // The wrapped proxy-wasm module is generated too; its source is not a
    // component `wac` could use.
    assert!(ws.path("cfg.deps/chain/legacy.wasm").exists());
    let text = std::fs::read_to_string(&wac).unwrap();
    assert!(!text.contains("--dep chain:legacy="), "{text}");
    let out = ws.path("from-wac.wasm");
    let composed = compose_as_commented(&wac, &out);
    assert!(composed.status.success(), "{}", stderr(&composed));
    let served = crate::support::Served::start(&out, &[]);
    let answer = served.request("GET", "/", &[], b"");
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.header("x-tag"), Some("from-wac"));
    assert_eq!(answer.header("x-legacy-response"), Some("wrapped-for-wac"));
}
