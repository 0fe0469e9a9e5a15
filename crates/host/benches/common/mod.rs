//! What the benches share: building the plugins, and calling a server
//! in-process (no sockets), which gives a request's CPU cost.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use pwchain_host::Server;
use std::time::{Duration, Instant};

mod built;
pub use built::built;

/// `plugins` as a chain named `name`, the last one answering, with the
/// manifest's defaults.
pub fn chain_of(name: &str, plugins: Vec<pwchain_compose::Stage>) -> pwchain_compose::Chain {
    pwchain_compose::Chain {
        name: name.into(),
        plugins,
        origin: None,
        allow_imports: None,
        filter_metrics: Default::default(),
        shared_data: Default::default(),
        fuse: true,
        stage_timing: false,
    }
}

/// `plugins` composed as a chain named `name`, the last one answering.
pub fn compose(name: &str, plugins: Vec<pwchain_compose::Stage>) -> Vec<u8> {
    chain_of(name, plugins).compose().expect("compose").bytes
}

/// Calls `server` in-process from `tasks` concurrent loops for `seconds`;
/// returns requests/s. Each request is a GET, or with a `body` a POST that
/// carries it (and its `content-length`).
pub async fn in_process(server: &Server, seconds: f64, tasks: usize, body: &'static [u8]) -> f64 {
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let peer: std::net::SocketAddr = ([127, 0, 0, 1], 1).into();
    let loops: Vec<_> = (0..tasks)
        .map(|_| {
            let server = server.clone();
            tokio::spawn(async move {
                let mut done = 0usize;
                while Instant::now() < deadline {
                    let request = match body {
                        [] => hyper::Request::get("http://bench/bench"),
                        _ => hyper::Request::post("http://bench/bench")
                            .header("content-length", body.len()),
                    }
                    .body(Full::new(Bytes::from_static(body)))
                    .unwrap();
                    let response = server.handle(request, peer).await;
                    let status = response.status();
                    let answer = response.into_body().collect().await;
                    assert_eq!(status, 200, "the chain answered {answer:?}");
                    done += 1;
                }
                done
            })
        })
        .collect();
    let started = Instant::now();
    let mut total = 0;
    for task in loops {
        total += task.await.unwrap();
    }
    total as f64 / started.elapsed().as_secs_f64()
}
