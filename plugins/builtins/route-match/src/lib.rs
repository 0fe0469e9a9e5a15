//! pwchain's built-in route match: the `wasi:http/handler` that stands in
//! front of a plugin with `match = { … }` in its chain. A request that
//! meets every condition goes to the plugin; any other goes to `skip`, the
//! stage after the plugin, untouched, so the plugin costs nothing on routes
//! it does not apply to (its response does not pass it either).
//!
//! The conditions come from its `wasi:config/store`, one value a line, as
//! pwchain wrote them after checking and normalising the manifest's `match`
//! (see `docs/manifest.md`): all given keys must hold, any value of a key.
//!
//! Built from this source and embedded in the `pwchain` binary; a test checks
//! that the committed `crates/compose/builtins/route-match.wasm` matches it.

use exports::wasi::http::handler::Guest;
use pwchain_guest::{ErrorCode, Request, Response, method_name};
use std::sync::OnceLock;
use wasi::config::store;
use wasi::http::handler;

pwchain_guest::bindings!("pwchain:proxy/route-match@0.1.0");

/// The conditions, read once per instance (the store cannot change while
/// the instance lives). An empty list is a condition not given.
#[derive(Default)]
struct Conditions {
    path_prefix: Vec<String>,
    path_exact: Vec<String>,
    methods: Vec<String>,
    hosts: Vec<String>,
    /// Lowercase names; `None` for any value.
    headers: Vec<(String, Option<Vec<u8>>)>,
}

static CONDITIONS: OnceLock<Conditions> = OnceLock::new();

fn conditions() -> Conditions {
    let mut found = Conditions::default();
    for (key, value) in store::get_all().unwrap_or_default() {
        let lines = value.lines().map(str::to_string);
        match key.as_str() {
            "path-prefix" => found.path_prefix.extend(lines),
            "path-exact" => found.path_exact.extend(lines),
            "methods" => found.methods.extend(lines),
            "hosts" => found.hosts.extend(lines),
            "headers" => found.headers.extend(value.lines().map(|line| {
                let (name, value) = line.split_once('=').unwrap_or((line, "*"));
                let value = (value != "*").then(|| value.as_bytes().to_vec());
                (name.to_string(), value)
            })),
            _ => {}
        }
    }
    found
}

impl Conditions {
    /// Whether `request` meets every condition. Only what a condition
    /// needs is read from the request: each read is a call into the host.
    fn hold(&self, request: &Request) -> bool {
        if !self.methods.is_empty() {
            let method = request.get_method();
            if !self.methods.iter().any(|m| m == method_name(&method)) {
                return false;
            }
        }
        if !(self.path_prefix.is_empty() && self.path_exact.is_empty()) {
            let target = request.get_path_with_query().unwrap_or_else(|| "/".into());
            let path = origin_form(&target);
            let path = path.split_once('?').map_or(path, |(p, _)| p);
            let exact = self.path_exact.iter().any(|p| p == path);
            if !exact && !self.path_prefix.iter().any(|p| under(path, p)) {
                return false;
            }
        }
        if !self.hosts.is_empty() {
            let authority = request
                .get_authority()
                .or_else(|| header(request, "host").map(|v| String::from_utf8_lossy(&v).into()));
            let host = authority.as_deref().map(host_name).unwrap_or_default();
            if !self
                .hosts
                .iter()
                .any(|pattern| host_matches(&host, pattern))
            {
                return false;
            }
        }
        if self.headers.is_empty() {
            return true;
        }
        let headers = request.get_headers();
        self.headers.iter().all(|(name, wanted)| {
            let values = headers.get(name);
            match wanted {
                None => !values.is_empty(),
                Some(wanted) => values.iter().any(|v| v == wanted),
            }
        })
    }
}

/// The path and query of a request target. Node through jco hands an
/// absolute-form request's whole URL on as its path (`http://host/x`).
fn origin_form(target: &str) -> &str {
    match target.split_once("://") {
        Some((scheme, rest)) if !scheme.contains('/') => {
            rest.find(['/', '?']).map_or("/", |at| &rest[at..])
        }
        _ => target,
    }
}

/// Whether `path` is `prefix` or lies under it, on a segment boundary:
/// `/api` takes `/api` and `/api/v1`, not `/apis`; `/api/` takes `/api/v1`.
fn under(path: &str, prefix: &str) -> bool {
    match path.strip_prefix(prefix) {
        Some(rest) => rest.is_empty() || prefix.ends_with('/') || rest.starts_with('/'),
        None => false,
    }
}

/// The host of an authority, lowercase, without port or final dot.
fn host_name(authority: &str) -> String {
    let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
    let host = match authority.strip_prefix('[') {
        // An IPv6 literal keeps its brackets.
        Some(rest) => rest
            .split_once(']')
            .map_or(authority, |(inner, _)| &authority[..inner.len() + 2]),
        None => authority.split_once(':').map_or(authority, |(h, _)| h),
    };
    host.trim_end_matches('.').to_ascii_lowercase()
}

/// `*` takes any host, `*.example.com` any name under `example.com` (not
/// `example.com` itself), anything else that name alone.
fn host_matches(host: &str, pattern: &str) -> bool {
    match pattern.strip_prefix('*') {
        Some("") => true,
        Some(suffix) => host.len() > suffix.len() && host.ends_with(suffix),
        None => host == pattern,
    }
}

fn header(request: &Request, name: &str) -> Option<Vec<u8>> {
    request.get_headers().get(name).into_iter().next()
}

struct RouteMatch;

impl Guest for RouteMatch {
    async fn handle(request: Request) -> Result<Response, ErrorCode> {
        if CONDITIONS.get_or_init(conditions).hold(&request) {
            handler::handle(request).await
        } else {
            skip::handle(request).await
        }
    }
}

export!(RouteMatch);
