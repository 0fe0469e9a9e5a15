//! Legacy proxy-wasm filters built with the `proxy-wasm` crate: what
//! `inspect` reads from them, and that `compose` points at `wrap`.

mod common;

use common::{Workspace, compose_fails, legacy_plugins, run};

#[test]
fn inspect_reads_a_proxy_wasm_module_of_either_target() {
    let dir = legacy_plugins();
    for (flavour, allocator, wasi) in [
        ("unknown", "malloc", false),
        ("wasip1", "proxy_on_memory_allocate", true),
    ] {
        let file = dir.join(format!("header-filter.{flavour}.wasm"));
        let output = run(&["inspect", "--json", file.to_str().unwrap()]);
        assert!(output.status.success(), "{}", common::stderr(&output));
        let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        let module = &report["proxy_wasm"];
        assert_eq!(module["abi"], "0.2.1");
        assert_eq!(module["allocator"], allocator, "{flavour}");
        assert_eq!(module["start"], "_initialize");
        assert_eq!(!module["wasi"].as_array().unwrap().is_empty(), wasi);
        let hostcalls: Vec<&str> = module["hostcalls"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h.as_str().unwrap())
            .collect();
        for needed in [
            "proxy_log",
            "proxy_send_local_response",
            "proxy_get_header_map_value",
        ] {
            assert!(hostcalls.contains(&needed), "{flavour}: {hostcalls:?}");
        }
        let text = run(&["inspect", file.to_str().unwrap()]);
        let text = String::from_utf8_lossy(&text.stdout);
        assert!(text.contains("proxy-wasm module (ABI 0.2.1)"), "{text}");
    }
}

#[test]
fn compose_sends_a_proxy_wasm_module_to_wrap() {
    let file = legacy_plugins().join("header-filter.wasip1.wasm");
    compose_fails(
        &Workspace::new(),
        &format!(
            "[[plugin]]\nname = \"legacy\"\npath = \"{}\"\n\n[origin]\npath = \"{{plugins}}/echo.wasm\"\n",
            file.display()
        ),
        &[
            "chain.toml:3:8",
            "core WebAssembly module, not a component",
            "pwchain wrap",
        ],
    );
}
