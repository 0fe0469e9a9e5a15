//! pwchain's built-in side-call filter, linked in front of one plugin's
//! `wasi:http/client` import when the chain gives that plugin
//! `side-calls = { allow = [...] }`.
//!
//! The patterns come from this component's own `wasi:config/store`, which
//! pwchain generates per plugin (key `allow`, one pattern a line): `host`,
//! `host:port`, `*.domain` or `*.domain:port`. A pattern without a port
//! allows every port; `*.domain` matches names under `domain`, not
//! `domain` itself. pwchain checks the patterns when it composes.
//!
//! Built from this source and embedded in the `pwchain` binary; a test checks
//! that the committed `crates/compose/builtins/allow-calls.wasm` matches it.

use exports::wasi::http::client::Guest;
use pwchain_guest::wasi::http::client;
use pwchain_guest::{ErrorCode, Request, Response};
use wasi::config::store;

wit_bindgen::generate!({
    path: "../../../wit",
    world: "pwchain:proxy/allow-calls",
    with: {
        "wasi:http/types@0.3.2": pwchain_guest::wasi::http::types,
        "wasi:http/client@0.3.2": pwchain_guest::wasi::http::client,
        "wasi:clocks/types@0.3.2": pwchain_guest::wasi::clocks::types,
    },
    generate_all,
});

struct AllowCalls;

impl Guest for AllowCalls {
    async fn send(request: Request) -> Result<Response, ErrorCode> {
        let authority = request.get_authority().unwrap_or_default();
        if patterns().iter().any(|p| allows(p, &authority)) {
            client::send(request).await
        } else {
            Err(ErrorCode::HttpRequestDenied)
        }
    }
}

fn patterns() -> Vec<String> {
    match store::get("allow") {
        Ok(Some(list)) => list.lines().map(str::to_ascii_lowercase).collect(),
        _ => Vec::new(),
    }
}

/// Whether `pattern` allows a request to `authority` (`host[:port]`).
fn allows(pattern: &str, authority: &str) -> bool {
    let (host, port) = split(authority);
    let host = host.to_ascii_lowercase();
    let (want_host, want_port) = split(pattern);
    if want_port.is_some() && want_port != port {
        return false;
    }
    match want_host.strip_prefix('*') {
        Some(suffix) => host.len() > suffix.len() && host.ends_with(suffix),
        None => host == want_host,
    }
}

/// `host` and the port, if any; bracketed IPv6 hosts keep their brackets.
fn split(authority: &str) -> (&str, Option<&str>) {
    match authority.rsplit_once(':') {
        Some((host, port))
            if !port.contains(']') && (!host.contains(':') || host.ends_with(']')) =>
        {
            (host, Some(port))
        }
        _ => (authority, None),
    }
}

export!(AllowCalls);
