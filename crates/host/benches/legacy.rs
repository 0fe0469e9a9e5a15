//! What a wrapped proxy-wasm plugin costs against the native middleware
//! that does the same: `plugins/fixtures/legacy/header-filter` (adds a request
//! header, sets a response header) wrapped by `pwchain wrap`, and
//! `plugins/examples/add-header` configured to add the same two headers, each in
//! front of `echo`, beside `echo` alone. The servers are called
//! in-process, one request at a time (CPU cost per request) and 16 at a
//! time; the plugin's own cost is the difference from `echo` alone. Then
//! filters of two SDKs side by side on a POST with a small body: the Rust
//! SDK's `header-filter` and the Go SDK's `http_body` example
//! (`../shared/fixtures/proxy-wasm/go-http-body.wasm`, which replaces the
//! body). All figures and ratios come from this one run.
//!
//! `cargo bench -p pwchain-host --bench legacy [-- SECONDS]`

mod common;

use common::{built, compose, in_process};
use pwchain_compose::Stage;
use pwchain_compose::policy::Settings;
use pwchain_compose::proxy_wasm::{WrapOptions, wrap};
use pwchain_host::{ServeOptions, Server};
use std::path::Path;

fn stage(name: &str, bytes: Vec<u8>) -> Stage {
    Stage::from_bytes(name, bytes, name.into(), Path::new(name)).expect("a plugin")
}

fn chain(name: &str, mut plugins: Vec<Stage>, echo: &Stage) -> Vec<u8> {
    plugins.push(echo.clone());
    compose(name, plugins)
}

fn main() {
    let seconds: f64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(3.0);
    let dist = built("plugins/build.sh", "plugins/dist");
    let legacy = built("plugins/fixtures/legacy/build.sh", "plugins/dist/legacy");
    let read = |path: &Path| std::fs::read(path).expect("read a plugin");
    let echo = stage("echo", read(&dist.join("echo.wasm")));

    let module = read(&legacy.join("header-filter.unknown.wasm"));
    let wrapped = wrap("header-filter", &module, &WrapOptions::default()).expect("wrap");
    let mut native = stage("add-header", read(&dist.join("add-header.wasm")));
    native.settings = Settings {
        config: Some(vec![
            ("request.x-legacy-request".into(), "legacy".into()),
            ("response.x-legacy-response".into(), "legacy".into()),
        ]),
        ..Settings::default()
    };
    let chains = [
        ("echo", chain("bare", vec![], &echo)),
        ("native", chain("native", vec![native], &echo)),
        (
            "wrapped",
            chain("wrapped", vec![stage("legacy", wrapped.bytes)], &echo),
        ),
    ];

    let go = read(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/fixtures/proxy-wasm/go-http-body.wasm"),
    );
    let go = wrap("go-http-body", &go, &WrapOptions::default()).expect("wrap the Go filter");
    let go_chain = ("go-sdk", chain("go", vec![stage("go", go.bytes)], &echo));

    let runtime = tokio::runtime::Runtime::new().expect("tokio");
    runtime.block_on(async {
        let mut serial = Vec::new();
        let mut concurrent = Vec::new();
        for (label, component) in &chains {
            let server = Server::new(component, ServeOptions::default()).expect("server");
            in_process(&server, 0.5, 4, b"").await; // warm up: instances, caches
            let one = in_process(&server, seconds, 1, b"").await;
            let many = in_process(&server, seconds, 16, b"").await;
            println!(
                "{label:<8} {one:>8.0} req/s one at a time ({:.1} µs each), {many:>8.0} req/s with 16 at once",
                1e6 / one
            );
            serial.push(1e6 / one);
            concurrent.push(many);
        }
        let (echo, native, wrapped) = (serial[0], serial[1], serial[2]);
        println!(
            "plugin cost per request: native add-header {:.1} µs, wrapped header-filter {:.1} µs: wrapped/native {:.2}x",
            native - echo,
            wrapped - echo,
            (wrapped - echo) / (native - echo)
        );
        println!(
            "whole chain, one at a time: wrapped/native {:.2}x; 16 at once: throughput wrapped/native {:.2}x",
            wrapped / native,
            concurrent[2] / concurrent[1]
        );

        let body: &'static [u8] = b"a small request body";
        let mut each = Vec::new();
        for (label, component) in [&chains[0], &chains[2], &go_chain] {
            let server = Server::new(component, ServeOptions::default()).expect("server");
            in_process(&server, 0.5, 4, body).await;
            let one = in_process(&server, seconds, 1, body).await;
            println!(
                "POST {label:<8} {one:>8.0} req/s one at a time ({:.1} µs each)",
                1e6 / one
            );
            each.push(1e6 / one);
        }
        let (echo, rust, go) = (each[0], each[1], each[2]);
        println!(
            "SDK filter cost per POST: Rust SDK header-filter {:.1} µs, Go SDK http_body {:.1} µs: go/rust {:.2}x",
            rust - echo,
            go - echo,
            (go - echo) / (rust - echo)
        );
    });
}
