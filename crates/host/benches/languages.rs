//! What a plugin's language costs: the same header-rewriting middleware
//! (it rebuilds the request and the response with one header each) in Rust
//! (`add-header`, wit-bindgen), Python (`py-header-tag`, componentize-py)
//! and JavaScript (`js-headers`, componentize-qjs), each composed in front
//! of `echo` and served in-process, in one run. Prints each plugin's size,
//! its chain's first start (compiling into an empty compilation cache) and
//! warm start (the same cache), the CPU cost of its hop (one request at a
//! time, without sockets, against echo alone), and requests/s over loopback
//! HTTP with 16 connections; then the hop costs as ratios to Rust's.
//!
//! `cargo bench -p pwchain-host --bench languages [-- SECONDS]`

mod common;
#[path = "common/load.rs"]
mod load;

use common::{built, compose, in_process};
use load::load;
use pwchain_compose::Stage;
use pwchain_host::{ServeOptions, Server};
use std::path::Path;
use std::time::Instant;

/// `plugin` (none: echo alone) in front of echo.
fn chain(dir: &Path, plugin: Option<&str>) -> Vec<u8> {
    let stage = |file: &str| {
        let path = dir.join(file);
        let name = file.trim_end_matches(".wasm");
        Stage::read(name, &path, path.display().to_string()).expect("read plugin")
    };
    compose(
        "languages",
        plugin.into_iter().chain(["echo.wasm"]).map(stage).collect(),
    )
}

/// Seconds to compile, link and instantiate `component` with `cache` as
/// the compilation cache, and the server.
fn start(component: &[u8], cache: &Path) -> (f64, Server) {
    let started = Instant::now();
    let options = ServeOptions {
        compile_cache: Some(cache.to_path_buf()),
        ..ServeOptions::default()
    };
    let server = Server::new(component, options).expect("server");
    (started.elapsed().as_secs_f64(), server)
}

fn main() {
    let seconds: f64 = std::env::args()
        .skip(1)
        .find(|a| a != "--bench")
        .and_then(|s| s.parse().ok())
        .unwrap_or(3.0);
    let dir = built("plugins/build.sh", "plugins/dist");
    built("plugins/examples/python/build.sh", "plugins/dist");
    built("plugins/examples/js/build.sh", "plugins/dist");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let cache = tempfile::tempdir().expect("a compilation cache");
    let languages = [
        ("echo alone", None),
        ("Rust", Some("add-header.wasm")),
        ("Python", Some("py-header-tag.wasm")),
        ("JavaScript", Some("js-headers.wasm")),
    ];
    let mut hops = Vec::new();
    runtime.block_on(async {
        let mut bare_us = 0.0;
        for (language, plugin) in languages {
            let component = chain(&dir, plugin);
            let size = plugin.map_or(0, |p| std::fs::metadata(dir.join(p)).unwrap().len());
            let (first, _) = start(&component, cache.path());
            let (warm, server) = start(&component, cache.path());
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let serving = server.clone();
            tokio::spawn(async move { serving.run(listener, std::future::pending()).await });
            load(addr, 0.5, 16).await; // warm up: instances, caches
            let serial_us = 1e6 / in_process(&server, seconds, 1, b"").await;
            let http = load(addr, seconds, 16).await;
            let hop = match plugin {
                None => {
                    bare_us = serial_us;
                    String::from("—")
                }
                Some(_) => {
                    hops.push((language, serial_us - bare_us));
                    format!("{:.1} µs", serial_us - bare_us)
                }
            };
            println!(
                "{language:<11} plugin {:>7.0} KiB  first start {:>6.2} s  warm start {:>5.2} s  \
                 {serial_us:>6.1} µs a request, hop {hop:>9}  HTTP ×16: {:>6.0} req/s, \
                 p50 {:>6.0} µs, p99 {:>6.0} µs, {} errors",
                size as f64 / 1024.0,
                first,
                warm,
                http.rps(),
                http.p50.as_secs_f64() * 1e6,
                http.p99.as_secs_f64() * 1e6,
                http.errors,
            );
        }
    });
    let rust = hops[0].1;
    for (language, hop) in &hops[1..] {
        println!(
            "{language} hop / Rust hop: {:.1}x ({hop:.1} µs against {rust:.1} µs)",
            hop / rust
        );
    }
}
