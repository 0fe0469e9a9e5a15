//! The admin endpoint, on a listener of its own so that it never competes
//! with (or is exposed like) the chain's traffic: `/metrics` (Prometheus
//! text format), `/healthz` (the process answers), `/readyz` (a chain is
//! compiled and serving), `/chain` (the served chain's record, as JSON, and
//! for a chain composed with stage timing a table of its stages' latency).

use crate::observe::metrics::Metrics;
use bytes::Bytes;
use http_body_util::Full;
use std::convert::Infallible;
use std::future::Future;
use tokio::net::TcpListener;

/// Answers admin requests on `listener` until `shutdown` resolves.
pub async fn serve_admin(
    listener: TcpListener,
    metrics: Metrics,
    shutdown: impl Future<Output = ()>,
) {
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => return,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!("admin: accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let metrics = metrics.clone();
        let service = hyper::service::service_fn(move |request| {
            let answer = answer(&metrics, request.uri().path());
            async move { Ok::<_, Infallible>(answer) }
        });
        tokio::spawn(async move {
            let connection = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
            if let Err(e) = connection.await {
                tracing::debug!("admin connection from {peer}: {e}");
            }
        });
    }
}

fn answer(metrics: &Metrics, path: &str) -> hyper::Response<Full<Bytes>> {
    let (status, kind, body) = match path {
        "/metrics" => (
            200,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            metrics.encode(),
        ),
        "/healthz" => (200, "text/plain", "ok\n".to_string()),
        "/readyz" => match metrics.chain() {
            Some(chain) => (200, "text/plain", format!("ready: {}\n", chain.digest)),
            None => (503, "text/plain", "not ready: no chain yet\n".to_string()),
        },
        "/chain" => match metrics.chain() {
            Some(chain) => (
                200,
                "application/json",
                serde_json::json!({
                    "name": chain.name,
                    "digest": chain.digest,
                    "record": chain.record,
                    "stages": chain.stages.map(|times| times.table()),
                })
                .to_string(),
            ),
            None => (503, "application/json", "null".to_string()),
        },
        _ => (
            404,
            "text/plain",
            "not found: try /metrics, /healthz, /readyz or /chain\n".to_string(),
        ),
    };
    let mut response = hyper::Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() =
        http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(kind),
    );
    response
}
