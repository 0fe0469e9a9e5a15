//! pwchain's built-in forwarding terminator (`[origin] forward = true` or
//! `[origin] upstream = "http://host:port[/base]"`).
//!
//! It ends a chain by sending the request on through the host's
//! `wasi:http/client`, so the composite is a plain `wasi:http/service` that
//! any wasi:http 0.3 host runs. With an `upstream` in its store it is a
//! reverse proxy: every request goes there whatever its `Host`, by the rules
//! of `pwchain-forwarding` (base path joined, hop-by-hop headers dropped,
//! `x-forwarded-host`/`-proto` recorded). `PWCHAIN_UPSTREAM` in the
//! environment (`wasmtime serve --env`, `pwchain serve --env`) points it
//! elsewhere without recomposing. Without an upstream the request goes to
//! its own authority (or its `Host`, where the host passes that on).
//!
//! The upstream's failure is answered here, 502 or 504 with a line naming
//! the upstream, so every host gives the client the same answer.
//!
//! A chain that forwards to itself would loop until something breaks, so
//! the terminator marks what it sends with `via: 1.1 pwchain` and answers
//! 508 to a request that already carries the mark.
//!
//! Built from this source and embedded in the `pwchain` binary; a test checks
//! that the committed `crates/compose/builtins/forward.wasm` matches it.

use exports::wasi::http::handler::Guest;
use pwchain_forwarding::{Forwarded, Headers, Upstream, strip_hop_by_hop};
use pwchain_guest::wasi::http::client;
use pwchain_guest::wasi::http::types::RequestOptions;
use pwchain_guest::{ErrorCode, HeaderList, Request, Response, Scheme, body_done, fields};
use pwchain_guest::{method_name, text_response};
use wasi::cli::environment;
use wasi::config::store;

pwchain_guest::bindings!("pwchain:proxy/forward@0.1.0");

const VIA: &str = "1.1 pwchain";

/// The environment variable that overrides a composed `upstream`.
const UPSTREAM_VAR: &str = "PWCHAIN_UPSTREAM";

struct Forward;

/// Where requests go and how long to wait, from the store and the
/// environment.
struct Settings {
    upstream: Option<Upstream>,
    connect_timeout_ns: Option<u64>,
    first_byte_timeout_ns: Option<u64>,
    between_bytes_timeout_ns: Option<u64>,
}

impl Settings {
    fn load() -> Result<Settings, String> {
        let config = store::get_all().map_err(|e| format!("cannot read its store: {e:?}"))?;
        let get = |key: &str| {
            config
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.as_str())
        };
        let millis = |key: &str| {
            get(key)
                .map(|v| {
                    v.parse::<u64>()
                        .map(|ms| ms.saturating_mul(1_000_000))
                        .map_err(|_| format!("`{key}` = `{v}` is not a number of milliseconds"))
                })
                .transpose()
        };
        let upstream = match get("upstream") {
            None => None,
            Some(composed) => {
                let overridden = environment::get_environment()
                    .into_iter()
                    .find(|(k, _)| k == UPSTREAM_VAR)
                    .map(|(_, v)| v);
                let (url, whence) = match &overridden {
                    Some(url) => (url.as_str(), UPSTREAM_VAR),
                    None => (composed, "its `upstream`"),
                };
                Some(
                    url.parse::<Upstream>()
                        .map_err(|e| format!("{whence} `{url}` is not an upstream: {e}"))?,
                )
            }
        };
        Ok(Settings {
            upstream,
            connect_timeout_ns: millis("connect-timeout-ms")?,
            first_byte_timeout_ns: millis("first-byte-timeout-ms")?,
            between_bytes_timeout_ns: millis("between-bytes-timeout-ms")?,
        })
    }

    fn options(&self) -> Result<RequestOptions, ErrorCode> {
        let options = RequestOptions::new();
        let refused = |what: &str| ErrorCode::InternalError(Some(format!("cannot set {what}")));
        options
            .set_connect_timeout(self.connect_timeout_ns)
            .map_err(|_| refused("the connect timeout"))?;
        options
            .set_first_byte_timeout(self.first_byte_timeout_ns)
            .map_err(|_| refused("the first-byte timeout"))?;
        options
            .set_between_bytes_timeout(self.between_bytes_timeout_ns)
            .map_err(|_| refused("the between-bytes timeout"))?;
        Ok(options)
    }
}

impl Guest for Forward {
    async fn handle(request: Request) -> Result<Response, ErrorCode> {
        // Store and environment are fixed for an instance's life: read once.
        static SETTINGS: std::sync::OnceLock<Result<Settings, String>> = std::sync::OnceLock::new();
        let settings = match SETTINGS.get_or_init(Settings::load) {
            Ok(settings) => settings,
            Err(why) => {
                return text_response(
                    500,
                    &[],
                    format!("500 Internal Server Error: pwchain's forward terminator: {why}\n"),
                );
            }
        };
        let method = request.get_method();
        let scheme = request.get_scheme();
        let path = request.get_path_with_query();
        let mut headers: HeaderList = request.get_headers().copy_all();
        if headers.value("via").is_some_and(|via| via.contains(VIA)) {
            return text_response(
                508,
                &[],
                "508 Loop Detected: the chain forwarded to itself\n",
            );
        }
        // What the client asked for: the authority, else `Host` where the
        // host passes it on (it is a forbidden header for a guest to send).
        let asked = request.get_authority().or_else(|| headers.value("host"));
        headers.remove_all("host");
        strip_hop_by_hop(&mut headers);
        let proto = match &scheme {
            Some(Scheme::Https) => "https",
            _ => "http",
        };
        let (scheme, authority, target) = match &settings.upstream {
            Some(up) => {
                Forwarded {
                    client: None,
                    host: asked.as_deref(),
                    proto: Some(proto),
                }
                .record(&mut headers);
                let scheme = match up.scheme() {
                    pwchain_forwarding::Scheme::Http => Scheme::Http,
                    pwchain_forwarding::Scheme::Https => Scheme::Https,
                    pwchain_forwarding::Scheme::H2c => {
                        Scheme::Other(pwchain_forwarding::Scheme::H2c.as_str().into())
                    }
                };
                (
                    scheme,
                    up.authority().to_string(),
                    up.target(path.as_deref()),
                )
            }
            None => {
                let Some(authority) = asked else {
                    return text_response(
                        400,
                        &[],
                        "400 Bad Request: the request names no host to forward it to \
                         (the chain's origin is `forward = true`; compose it with \
                         `upstream = \"http://…\"` to send every request to one place)\n",
                    );
                };
                (
                    scheme.unwrap_or(Scheme::Http),
                    authority,
                    path.unwrap_or_else(|| "/".into()),
                )
            }
        };
        headers.push(("via".into(), VIA.as_bytes().to_vec()));
        let (body, trailers) = Request::consume_body(request, body_done());
        let (outgoing, _) = Request::new(
            fields(&headers)?,
            Some(body),
            trailers,
            Some(settings.options()?),
        );
        let invalid = |what: &str| ErrorCode::InternalError(Some(format!("invalid {what}")));
        outgoing
            .set_method(&method)
            .map_err(|()| invalid("method"))?;
        outgoing
            .set_scheme(Some(&scheme))
            .map_err(|()| invalid("scheme"))?;
        outgoing
            .set_authority(Some(&authority))
            .map_err(|()| invalid("authority"))?;
        outgoing
            .set_path_with_query(Some(&target))
            .map_err(|()| invalid("path"))?;
        let name = match &settings.upstream {
            Some(up) => format!("upstream {up}"),
            None => authority.clone(),
        };
        match client::send(outgoing).await {
            Ok(response) => Ok(response),
            Err(error) => {
                let (status, reason) = gateway_status(&error);
                text_response(
                    status,
                    &[],
                    format!(
                        "{status} {reason}: {name} ({} {target}): {error:?}\n",
                        method_name(&method)
                    ),
                )
            }
        }
    }
}

/// 504 when the upstream was too slow, 502 for any other failure to get
/// an answer from it.
fn gateway_status(error: &ErrorCode) -> (u16, &'static str) {
    match error {
        ErrorCode::ConnectionTimeout
        | ErrorCode::ConnectionReadTimeout
        | ErrorCode::ConnectionWriteTimeout
        | ErrorCode::HttpResponseTimeout
        | ErrorCode::DnsTimeout => (504, "Gateway Timeout"),
        _ => (502, "Bad Gateway"),
    }
}

export!(Forward);
