//! Middleware with a side call: before forwarding, it POSTs one line per
//! request (`METHOD path`) through `wasi:http/client` to its collector (an
//! `http://host:port/path` URL): the `collector` key of its configuration,
//! else the `AUDIT_COLLECTOR` environment variable. A failed side call is
//! logged, never fatal.

use exports::wasi::http::handler::Guest;
use pwchain_guest::wasi::http::client;
use pwchain_guest::{
    ErrorCode, Fields, Method, Request, Response, Scheme, body_stream, method_name, no_trailers,
};
use wasi::config::store;
use wasi::http::handler;

pwchain_guest::bindings!("pwchain:proxy/configured-middleware@0.1.0");

struct Audit;

impl Guest for Audit {
    async fn handle(request: Request) -> Result<Response, ErrorCode> {
        let configured = store::get("collector").ok().flatten();
        if let Some(collector) = configured.or_else(|| std::env::var("AUDIT_COLLECTOR").ok()) {
            let line = format!(
                "{} {}\n",
                method_name(&request.get_method()),
                request.get_path_with_query().unwrap_or_default()
            );
            if let Err(e) = post(&collector, line).await {
                eprintln!("audit: side call to {collector} failed: {e:?}");
            }
        }
        handler::handle(request).await
    }
}

/// POSTs `line` to `url` and waits for the collector's status.
async fn post(url: &str, line: String) -> Result<u16, ErrorCode> {
    let invalid = || ErrorCode::HttpRequestUriInvalid;
    let rest = url.strip_prefix("http://").ok_or_else(invalid)?;
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let path = if path.is_empty() { "/" } else { path };
    let headers = Fields::from_list(&[("content-type".into(), b"text/plain".to_vec())])
        .map_err(|_| invalid())?;
    let body = body_stream(line.into_bytes(), None);
    let (request, _) = Request::new(headers, Some(body), no_trailers(), None);
    request.set_method(&Method::Post).map_err(|()| invalid())?;
    request
        .set_scheme(Some(&Scheme::Http))
        .map_err(|()| invalid())?;
    request
        .set_authority(Some(authority))
        .map_err(|()| invalid())?;
    request
        .set_path_with_query(Some(path))
        .map_err(|()| invalid())?;
    let response = client::send(request).await?;
    Ok(response.get_status_code())
}

export!(Audit);
