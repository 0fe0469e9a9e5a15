//! The real Envoy as the oracle. Each case is one Envoy bootstrap: Envoy
//! 1.40 (V8) serves it, and so does pwchain (`pwchain import envoy`, then
//! compose and serve), each in front of the same loopback backend and the
//! same `httpbin` cluster. Both get the same requests, and the test
//! compares what the client gets (status, headers, body) and what the
//! backend and the side-call cluster receive, less the headers each proxy
//! adds by itself ([`PROXY_OWN`]; the table "Checked against the real
//! Envoy" in docs/proxy-wasm.md says why each differs).

use crate::support::{
    Envoy, Pairs, Peer, Received, Reply, Response, Served, TrailerPeer, Workspace, exchange,
    fixture, legacy_plugins, plugins, run, send, stderr,
};
use std::net::SocketAddr;
use std::path::PathBuf;

/// Headers one proxy adds or sets on its own, left out of the comparison:
/// `(name, where, why)`. "request" is what reaches the backend and what a
/// filter's `proxy_http_call` sends (the Go SDK's `http_auth_random` sends
/// the request's own headers, so the proxy's additions travel with them).
const PROXY_OWN: &[(&str, &str, &str)] = &[
    ("date", "response", "each server stamps its own"),
    ("server", "response", "Envoy says `envoy`"),
    (
        "x-envoy-upstream-service-time",
        "response",
        "Envoy's own timing",
    ),
    ("x-request-id", "request", "Envoy's own request id"),
    (
        "x-envoy-expected-rq-timeout-ms",
        "request",
        "Envoy's route and call timeouts",
    ),
    ("x-envoy-internal", "request", "Envoy marks its own calls"),
    (
        "x-forwarded-proto",
        "request",
        "Envoy and the terminator each set it",
    ),
    (
        "x-forwarded-for",
        "request",
        "pwchain serve records the client",
    ),
    (
        "x-forwarded-host",
        "request",
        "the terminator records the client's host",
    ),
    (
        "via",
        "request",
        "the terminator marks requests against loops",
    ),
    (
        "host",
        "request",
        "pwchain names the upstream or the cluster's address (wasi:http forbids a `host` apart from the authority), Envoy keeps the client's",
    ),
];

/// One `envoy.filters.http.wasm` entry of a bootstrap.
#[derive(Clone, Default)]
struct Wasm {
    name: &'static str,
    file: PathBuf,
    root_id: Option<&'static str>,
    configuration: Option<String>,
    vm_id: Option<&'static str>,
    /// Wrapped in an `xds.type.v3.TypedStruct`, as Istio writes it.
    typed_struct: bool,
    /// The code as `inline_bytes` instead of `local.filename`.
    inline: bool,
    /// The configuration as a `BytesValue` instead of a `StringValue`.
    bytes_configuration: bool,
    /// The HTTP filter's own name (routes' `typed_per_filter_config` key),
    /// instead of `envoy.filters.http.wasm`.
    filter_name: Option<&'static str>,
    /// `disabled: true`: off unless a route enables it.
    disabled: bool,
}

impl Wasm {
    fn new(name: &'static str, file: PathBuf) -> Wasm {
        Wasm {
            name,
            file,
            ..Wasm::default()
        }
    }

    fn yaml(&self) -> String {
        let pad = |text: &str, by: usize| {
            text.lines()
                .map(|l| format!("{}{l}\n", " ".repeat(by)))
                .collect::<String>()
        };
        let code = match self.inline {
            true => {
                use base64::Engine as _;
                let bytes = std::fs::read(&self.file).unwrap();
                format!(
                    "code:\n  local:\n    inline_bytes: {}\n",
                    base64::engine::general_purpose::STANDARD.encode(bytes)
                )
            }
            false => format!("code:\n  local:\n    filename: {}\n", self.file.display()),
        };
        let mut vm = String::from("runtime: envoy.wasm.runtime.v8\n");
        if let Some(id) = self.vm_id {
            vm.push_str(&format!("vm_id: {id}\n"));
        }
        vm.push_str(&code);
        let mut config = format!("name: {}\n", self.name);
        if let Some(root) = self.root_id {
            config.push_str(&format!("root_id: {root}\n"));
        }
        match (self.configuration.as_deref(), self.bytes_configuration) {
            (Some(text), false) => config.push_str(&format!(
                "configuration:\n  \"@type\": type.googleapis.com/google.protobuf.StringValue\n  value: {text:?}\n"
            )),
            (Some(text), true) => {
                use base64::Engine as _;
                config.push_str(&format!(
                    "configuration:\n  \"@type\": type.googleapis.com/google.protobuf.BytesValue\n  value: {}\n",
                    base64::engine::general_purpose::STANDARD.encode(text)
                ));
            }
            (None, _) => {}
        }
        config.push_str("vm_config:\n");
        config.push_str(&pad(&vm, 2));
        let wasm_type = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm";
        let typed = match self.typed_struct {
            true => format!(
                "\"@type\": type.googleapis.com/xds.type.v3.TypedStruct\ntype_url: {wasm_type}\nvalue:\n  config:\n{}",
                pad(&config, 4)
            ),
            false => format!("\"@type\": {wasm_type}\nconfig:\n{}", pad(&config, 2)),
        };
        format!(
            "- name: {}\n{}  typed_config:\n{}",
            self.filter_name.unwrap_or("envoy.filters.http.wasm"),
            if self.disabled {
                "  disabled: true\n"
            } else {
                ""
            },
            pad(&typed, 4)
        )
    }
}

/// A bootstrap with `filters` in front of the router, routing `/` to
/// `backend`, with a cluster `httpbin` for side calls, and `routes`
/// (YAML list items) before the catch-all route.
fn bootstrap(filters: &[Wasm], routes: &str, backend: SocketAddr, httpbin: SocketAddr) -> String {
    let filters: String = filters.iter().map(Wasm::yaml).collect();
    let indent = |text: &str, by: usize| {
        text.lines()
            .map(|l| format!("{}{l}\n", " ".repeat(by)))
            .collect::<String>()
    };
    let cluster = |name: &str, addr: SocketAddr| {
        format!(
            "  - name: {name}\n    type: STATIC\n    connect_timeout: 5s\n    load_assignment:\n      cluster_name: {name}\n      endpoints: [{{ lb_endpoints: [{{ endpoint: {{ address: {{ socket_address: {{ address: {}, port_value: {} }} }} }} }}] }}]\n",
            addr.ip(),
            addr.port()
        )
    };
    format!(
        r#"admin:
  address: {{ socket_address: {{ address: 127.0.0.1, port_value: 0 }} }}
static_resources:
  listeners:
  - name: main
    address: {{ socket_address: {{ address: 127.0.0.1, port_value: 0 }} }}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: ingress_http
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
{routes}              - match: {{ prefix: "/" }}
                route: {{ cluster: backend }}
          http_filters:
{filters}          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
  clusters:
{backend_cluster}{httpbin_cluster}"#,
        routes = indent(routes, 14),
        filters = indent(&filters, 10),
        backend_cluster = cluster("backend", backend),
        httpbin_cluster = cluster("httpbin", httpbin),
    )
}

/// A request a peer received: its line less the version, its headers less
/// [`PROXY_OWN`], and its body as [`shown`].
#[derive(Debug, PartialEq)]
struct Arrived {
    line: String,
    headers: Vec<(String, String)>,
    body: String,
}

/// What one proxy did with one request: the answer and what reached the
/// backend and the side-call cluster, less [`PROXY_OWN`].
#[derive(Debug, PartialEq)]
struct Seen {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
    upstream: Option<Arrived>,
    side_calls: Vec<Arrived>,
}

impl Seen {
    /// The `x-legacy-request` values the backend got (the header-filter
    /// fixture's tags), sorted as the comparison sorts headers.
    fn tags(&self) -> Vec<String> {
        let upstream = self.upstream.as_ref().expect("the backend got the request");
        upstream
            .headers
            .iter()
            .filter(|(k, _)| k == "x-legacy-request")
            .map(|(_, v)| v.clone())
            .collect()
    }
}

/// What the project's `abi-probe` reports that differs by the proxies' own
/// doing, left out of its comparison: `(name, where, why)`.
const PROBE_COUNTS: &[(&str, &str, &str)] = &[
    (
        "x-probe-header-count",
        "request",
        "counts the headers each proxy adds before the filters",
    ),
    (
        "x-probe-request-headers-bytes",
        "request",
        "likewise, in bytes",
    ),
    (
        "x-probe-pairs",
        "response",
        "counts the headers each proxy adds to a response",
    ),
    (
        "x-probe-ticks",
        "response",
        "Envoy ticks on a timer; pwchain when a request arrives (see the ABI table)",
    ),
];

/// `headers` less [`PROXY_OWN`]'s (and `also`'s) for `place`, sorted. Two `content-length`s
/// count as absent: `0` on a message without a body (wasmtime's client
/// writes it where Envoy writes none), and one the body never fulfilled
/// (Envoy sends a filter's side call so; pwchain sends the body's length).
fn comparable(
    headers: &[(String, String)],
    place: &str,
    body: &[u8],
    also: &[(&str, &str, &str)],
) -> Vec<(String, String)> {
    let mut kept: Vec<(String, String)> = headers
        .iter()
        .filter(|(k, _)| {
            !PROXY_OWN
                .iter()
                .chain(also)
                .any(|(name, at, _)| *at == place && k.eq_ignore_ascii_case(name))
        })
        .filter(|(k, v)| {
            !(k.eq_ignore_ascii_case("content-length")
                && (v == "0" || v.parse::<usize>() != Ok(body.len())))
        })
        .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
        .collect();
    kept.sort();
    kept
}

/// A body as text, or its length and a digest when it is long.
fn shown(body: &[u8]) -> String {
    match body.len() {
        0..=512 => String::from_utf8_lossy(body).into_owned(),
        n => {
            use sha2::Digest as _;
            format!(
                "{n} bytes, sha256 {}",
                hex::encode(sha2::Sha256::digest(body))
            )
        }
    }
}

fn received(peer: &Peer, place: &str, also: &[(&str, &str, &str)]) -> Vec<Arrived> {
    std::iter::from_fn(|| peer.received.try_recv().ok())
        .map(|r: Received| {
            let line = r
                .request_line
                .rsplit_once(' ')
                .map_or(r.request_line.clone(), |(l, _)| l.to_string());
            Arrived {
                line,
                headers: comparable(&r.headers, place, &r.body, also),
                body: shown(&r.body),
            }
        })
        .collect()
}

/// The two proxies of one bootstrap and the peers behind them.
struct Pair {
    envoy: Envoy,
    pwchain: Served,
    backend: Peer,
    httpbin: Peer,
    ws: Workspace,
    /// Headers left out beside [`PROXY_OWN`].
    also: &'static [(&'static str, &'static str, &'static str)],
}

impl Pair {
    /// Envoy and pwchain on the bootstrap `filters` and `routes` make, in
    /// front of an echoing backend and an `httpbin` answering `httpbin`;
    /// `None` when Envoy cannot be installed.
    fn start(filters: &[Wasm], routes: &str, httpbin: Reply) -> Option<Pair> {
        let backend = Peer::replying(Reply::Echo);
        let httpbin = Peer::replying(httpbin);
        let yaml = bootstrap(filters, routes, backend.addr, httpbin.addr);
        let envoy =
            Envoy::start(&yaml)?.unwrap_or_else(|log| panic!("Envoy refused:\n{yaml}\n{log}"));
        let ws = Workspace::new();
        let pwchain = serve_imported(&ws, &yaml);
        Some(Pair {
            envoy,
            pwchain,
            backend,
            httpbin,
            ws,
            also: &[],
        })
    }

    /// Asserts that the `chain.toml` the import wrote has every piece.
    fn imported_has(&self, pieces: &[&str]) {
        let chain = std::fs::read_to_string(self.ws.path("chain.toml")).unwrap();
        for piece in pieces {
            assert!(chain.contains(piece), "no {piece:?} in:\n{chain}");
        }
    }

    /// Sends `raw` to both and asserts that they answer alike.
    fn same(&self, what: &str, raw: &[u8]) -> Seen {
        let envoy = self.seen(self.envoy.addr, raw);
        let pwchain = self.seen(self.pwchain.addr, raw);
        assert_eq!(
            envoy,
            pwchain,
            "{what}: Envoy (left) and pwchain (right) differ\nEnvoy's log:\n{}",
            self.envoy.log()
        );
        envoy
    }

    fn seen(&self, addr: SocketAddr, raw: &[u8]) -> Seen {
        let answer: Response = exchange(addr, raw);
        Seen {
            status: answer.status,
            headers: comparable(&answer.headers, "response", &answer.body, self.also),
            body: shown(&answer.body),
            upstream: received(&self.backend, "request", self.also).pop(),
            side_calls: received(&self.httpbin, "request", self.also),
        }
    }
}

/// `pwchain import envoy` of `yaml`, composed and served.
fn serve_imported(ws: &Workspace, yaml: &str) -> Served {
    plugins();
    let file = ws.write("envoy.yaml", yaml);
    let imported = run(&[
        "import",
        "envoy",
        file.to_str().unwrap(),
        "-o",
        ws.path("chain.toml").to_str().unwrap(),
    ]);
    assert!(imported.status.success(), "{}", stderr(&imported));
    let composed = crate::support::run_in(
        &ws.path("cache"),
        &[
            "compose",
            ws.path("chain.toml").to_str().unwrap(),
            "-o",
            ws.path("chain.wasm").to_str().unwrap(),
        ],
    );
    assert!(
        composed.status.success(),
        "{}\n{}",
        stderr(&composed),
        std::fs::read_to_string(ws.path("chain.toml")).unwrap()
    );
    Served::start(&ws.path("chain.wasm"), &[])
}

/// A request as bytes: `content-length` framing, or chunked in 64 KiB
/// pieces when `chunked`.
fn raw(
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
    chunked: bool,
) -> Vec<u8> {
    let mut head =
        format!("{method} {path} HTTP/1.1\r\nhost: proxied.test\r\nconnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    let mut bytes = Vec::new();
    match (body, chunked) {
        (Some(body), true) => {
            head.push_str("transfer-encoding: chunked\r\n\r\n");
            bytes.extend(head.into_bytes());
            for piece in body.chunks(64 * 1024) {
                bytes.extend(format!("{:x}\r\n", piece.len()).into_bytes());
                bytes.extend(piece);
                bytes.extend(b"\r\n");
            }
            bytes.extend(b"0\r\n\r\n");
        }
        (Some(body), false) => {
            head.push_str(&format!("content-length: {}\r\n\r\n", body.len()));
            bytes.extend(head.into_bytes());
            bytes.extend(body);
        }
        (None, _) => {
            head.push_str("\r\n");
            bytes.extend(head.into_bytes());
        }
    }
    bytes
}

/// A GET without a body, as the tests send most requests.
fn get(path: &str) -> Vec<u8> {
    raw("GET", path, &[("content-length", "0")], None, false)
}

/// The requests every filter gets: a GET, a POST with a body, large
/// headers, and a 1 MiB body streamed in chunks.
fn common_requests(pair: &Pair) {
    pair.same("GET", &get("/get?x=1"));
    pair.same(
        "POST",
        &raw(
            "POST",
            "/post",
            &[("content-type", "application/x-www-form-urlencoded")],
            Some(b"hello=abc"),
            false,
        ),
    );
    let large = "v".repeat(16 * 1024);
    let many: Vec<(String, String)> = (0..40)
        .map(|i| (format!("x-many-{i}"), format!("value {i}")))
        .collect();
    let mut headers: Vec<(&str, &str)> =
        many.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    headers.push(("x-large", &large));
    headers.push(("content-length", "0"));
    pair.same(
        "large headers",
        &raw("GET", "/large", &headers, None, false),
    );
    let mib: Vec<u8> = (0..1024 * 1024).map(|i| b'a' + (i % 26) as u8).collect();
    pair.same(
        "a streamed 1 MiB body",
        &raw("PUT", "/upload", &[], Some(&mib), true),
    );
}

#[test]
fn rust_sdk_header_filter_answers_as_in_envoy() {
    let legacy = legacy_plugins();
    for flavour in ["wasip1", "unknown"] {
        let mut filter = Wasm::new(
            "header_filter",
            legacy.join(format!("header-filter.{flavour}.wasm")),
        );
        filter.configuration = Some("from-envoy".into());
        let Some(pair) = Pair::start(&[filter], "", Reply::Text("yes")) else {
            return;
        };
        common_requests(&pair);
        let denied = pair.same("local response", &get("/legacy-deny"));
        assert_eq!(denied.status, 403);
    }
}

#[test]
fn assemblyscript_and_cpp_filters_answer_as_in_envoy() {
    let mut as_ = Wasm::new("as_add_header", fixture("as-add-header.wasm"));
    as_.root_id = Some("add_header");
    as_.configuration = Some("from-envoy".into());
    let mut cpp = Wasm::new("cpp_add_header", fixture("cpp-add-header.wasm"));
    cpp.root_id = Some("cpp");
    let Some(pair) = Pair::start(&[as_, cpp], "", Reply::Text("yes")) else {
        return;
    };
    common_requests(&pair);
}

#[test]
fn go_http_body_answers_as_in_envoy() {
    let go = Wasm::new("http_body", fixture("go-http-body.wasm"));
    let Some(pair) = Pair::start(&[go], "", Reply::Text("yes")) else {
        return;
    };
    common_requests(&pair);
    for operation in ["append", "prepend", "replace"] {
        pair.same(
            operation,
            &raw(
                "POST",
                "/op",
                &[("buffer-operation", operation)],
                Some(b"hello"),
                false,
            ),
        );
        pair.same(
            operation,
            &raw(
                "POST",
                "/op",
                &[
                    ("buffer-operation", operation),
                    ("buffer-replace-at", "response"),
                ],
                Some(b"hello"),
                false,
            ),
        );
    }
    let two_mib = vec![b'x'; 2 << 20];
    pair.same(
        "a held body over the buffer limit",
        &raw("POST", "/big", &[], Some(&two_mib), false),
    );
    let refused = pair.same(
        "no content-length: a local 400",
        &raw("GET", "/x", &[], None, false),
    );
    assert_eq!(refused.status, 400);

    // A local reply and the filters after the one that sent it.
    let mut cpp = Wasm::new("cpp_add_header", fixture("cpp-add-header.wasm"));
    cpp.root_id = Some("cpp");
    let go = Wasm::new("http_body", fixture("go-http-body.wasm"));
    let Some(pair) = Pair::start(&[go, cpp], "", Reply::Text("yes")) else {
        return;
    };
    pair.same(
        "a local 400 before another filter",
        &raw("GET", "/x", &[], None, false),
    );
}

#[test]
fn go_http_auth_random_answers_as_in_envoy() {
    let go = Wasm::new("http_auth_random", fixture("go-http-auth-random.wasm"));
    // "yes" hashes even: the request goes through.
    let Some(pair) = Pair::start(std::slice::from_ref(&go), "", Reply::Text("yes")) else {
        return;
    };
    common_requests(&pair);
    // "deny" hashes odd: a local 403.
    let Some(pair) = Pair::start(&[go], "", Reply::Text("deny")) else {
        return;
    };
    let denied = pair.same("denied", &get("/x"));
    assert_eq!(denied.status, 403);
    pair.same(
        "denied with a body",
        &raw("PUT", "/x", &[], Some(b"some body"), false),
    );
}

#[test]
fn what_envoy_refuses_pwchain_refuses() {
    let backend = Peer::replying(Reply::Echo);
    let httpbin = Peer::replying(Reply::Text("yes"));
    let ws = Workspace::new();
    // A module that exports no proxy-wasm ABI version.
    let module = ws.write(
        "no-abi.wasm",
        wat::parse_str(r#"(module (memory (export "memory") 1) (func (export "_start")))"#)
            .unwrap(),
    );
    let yaml = bootstrap(
        &[Wasm::new("no_abi", module)],
        "",
        backend.addr,
        httpbin.addr,
    );
    let Some(envoy) = Envoy::start(&yaml) else {
        return;
    };
    let Err(log) = envoy else {
        panic!("Envoy ran a module without an ABI version");
    };
    assert!(log.contains("no_abi"), "{log}");
    let file = ws.write("envoy.yaml", &yaml);
    let chain = ws.path("chain.toml");
    let imported = run(&[
        "import",
        "envoy",
        file.to_str().unwrap(),
        "-o",
        chain.to_str().unwrap(),
    ]);
    assert!(imported.status.success(), "{}", stderr(&imported));
    let composed = run(&[
        "compose",
        chain.to_str().unwrap(),
        "-o",
        ws.path("chain.wasm").to_str().unwrap(),
    ]);
    let said = stderr(&composed);
    assert!(!composed.status.success(), "{said}");
    assert!(said.contains("no-abi"), "names the filter: {said}");
    assert!(said.contains("proxy_abi_version"), "{said}");
    assert!(!ws.path("chain.wasm").exists());

    // An unknown field in the Wasm filter's typed config.
    let mut filter = Wasm::new(
        "header_filter",
        legacy_plugins().join("header-filter.wasip1.wasm"),
    );
    filter.configuration = Some("x".into());
    let yaml = bootstrap(&[filter], "", backend.addr, httpbin.addr).replace(
        "runtime: envoy.wasm.runtime.v8",
        "runtime: envoy.wasm.runtime.v8\n                  runtim: v8",
    );
    let Err(log) = Envoy::start(&yaml).unwrap() else {
        panic!("Envoy took an unknown field:\n{yaml}");
    };
    assert!(log.contains("runtim"), "{log}");
    let file = ws.write("envoy.yaml", &yaml);
    let _ = std::fs::remove_file(&chain);
    let imported = run(&[
        "import",
        "envoy",
        file.to_str().unwrap(),
        "-o",
        chain.to_str().unwrap(),
    ]);
    let said = stderr(&imported);
    assert!(!imported.status.success(), "{said}");
    assert!(
        said.contains("unknown field `http_filters[0].typed_config.config.vm_config.runtim`"),
        "{said}"
    );
    assert!(!chain.exists());
}

/// The forms `pwchain import envoy` accepts, given to Envoy as they are:
/// a plain `Wasm` config and one wrapped in a `TypedStruct`, `StringValue`
/// and `BytesValue` configurations, a `vm_id` two filters share, root ids,
/// code from `local.filename` and from `inline_bytes`, a cluster route and
/// a `direct_response` route (which a chain has no way to answer: the
/// import says so, and it is left out of the comparison).
#[test]
fn envoy_bootstraps_imported_answer_as_in_envoy() {
    let header_filter = legacy_plugins().join("header-filter.wasip1.wasm");
    let mut first = Wasm::new("tag_one", header_filter.clone());
    first.typed_struct = true;
    first.vm_id = Some("tags");
    first.configuration = Some("one".into());
    let mut second = Wasm::new("tag_two", header_filter);
    second.vm_id = Some("tags");
    second.configuration = Some("two".into());
    second.bytes_configuration = true;
    let mut as_ = Wasm::new("as_add_header", fixture("as-add-header.wasm"));
    as_.root_id = Some("add_header");
    as_.configuration = Some("inline".into());
    as_.inline = true;
    let mut cpp = Wasm::new("cpp_add_header", fixture("cpp-add-header.wasm"));
    cpp.root_id = Some("cpp");
    cpp.typed_struct = true;
    let direct = "- match: { prefix: \"/health\" }\n  direct_response: { status: 200, body: { inline_string: ok } }\n";
    let Some(pair) = Pair::start(&[first, second, as_, cpp], direct, Reply::Text("yes")) else {
        return;
    };
    pair.imported_has(&[
        "# The bootstrap's inline code, written beside this file.",
        "proxy-wasm = \"as-add-header.wasm\"",
        "configuration = \"two\"",
        "# Dropped the route {\"prefix\":\"/health\"}",
    ]);
    common_requests(&pair);
    let seen = pair.same("both tags", &get("/tags"));
    assert_eq!(seen.tags(), ["one", "two"]);
    pair.same("a local reply", &get("/legacy-deny"));
}

/// Filters per route, as Envoy sets them: `tag_api` disabled but enabled
/// on `/api/` and on `/login` exactly (by a `FilterConfig` holding an
/// `Empty`, the form Envoy's docs give for "enable, no route config"), `tag_all` everywhere but disabled
/// on `/static/` (which a chain cannot say: the import says so, and that
/// route is left out of the comparison), `tag_never` disabled everywhere,
/// `tag_admin` enabled on one route that also needs a POST and a header.
#[test]
fn filters_per_route_import_and_answer_as_in_envoy() {
    let header_filter = legacy_plugins().join("header-filter.wasip1.wasm");
    let tag = |name: &'static str, filter: &'static str, disabled: bool| {
        let mut wasm = Wasm::new(name, header_filter.clone());
        wasm.configuration = Some(name.into());
        wasm.filter_name = Some(filter);
        wasm.disabled = disabled;
        wasm
    };
    let filters = [
        tag("tag_api", "tag-api", true),
        tag("tag_all", "tag-all", false),
        tag("tag_never", "tag-never", true),
        tag("tag_admin", "tag-admin", true),
    ];
    let per_filter = |filter: &str, disabled: bool| {
        format!(
            "  typed_per_filter_config:\n    {filter}:\n      \"@type\": type.googleapis.com/envoy.config.route.v3.FilterConfig\n      config: {{ \"@type\": type.googleapis.com/google.protobuf.Empty }}\n      is_optional: true\n      disabled: {disabled}\n"
        )
    };
    let routes = format!(
        "- match: {{ prefix: \"/api/\" }}\n  route: {{ cluster: backend }}\n{}- match: {{ path: \"/login\" }}\n  route: {{ cluster: backend }}\n{}- match: {{ prefix: \"/static/\" }}\n  route: {{ cluster: backend }}\n{}- match: {{ prefix: \"/admin/\", headers: [{{ name: \":method\", string_match: {{ exact: POST }} }}, {{ name: x-tenant, present_match: true }}] }}\n  route: {{ cluster: backend }}\n{}",
        per_filter("tag-api", false),
        per_filter("tag-api", false),
        per_filter("tag-all", true),
        per_filter("tag-admin", false),
    );
    let Some(pair) = Pair::start(&filters, &routes, Reply::Text("yes")) else {
        return;
    };
    pair.imported_has(&[
        "match = { path-prefix = [\"/api/\"], path-exact = [\"/login\"] }",
        "# Not mapped: Envoy skips `tag-all` on the route {\"prefix\":\"/static/\"}",
        "# `tag-never` is `disabled` and no route enables it",
        "# name = \"tag-never\"",
        "match = { path-prefix = [\"/admin/\"], methods = [\"POST\"], headers = { \"x-tenant\" = \"*\" } }",
    ]);
    for path in ["/api/orders", "/api", "/apis", "/login", "/login/x", "/"] {
        let tags = pair.same(path, &get(path)).tags();
        let expected = match path {
            "/api/orders" | "/login" => &["tag_all", "tag_api"][..],
            _ => &["tag_all"],
        };
        assert_eq!(tags, expected, "{path}");
    }
    // `tag_admin`: a POST with `x-tenant` under `/admin/`, nothing else.
    for (method, tenant, runs) in [
        ("POST", true, true),
        ("GET", true, false),
        ("POST", false, false),
    ] {
        let headers: &[(&str, &str)] = if tenant { &[("x-tenant", "t1")] } else { &[] };
        let what = format!("{method} /admin/users tenant={tenant}");
        let tags = pair
            .same(&what, &raw(method, "/admin/users", headers, None, false))
            .tags();
        assert_eq!(
            tags.contains(&"tag_admin".to_string()),
            runs,
            "{what}: {tags:?}"
        );
    }
}

/// The project's `abi-probe` alone, its calls going to cluster `upstream`
/// (`httpbin` answers `forty-two`), compared less [`PROBE_COUNTS`].
fn probe_pair(upstream: &str) -> Option<Pair> {
    let mut probe = Wasm::new("probe", legacy_plugins().join("abi-probe.wasip1.wasm"));
    probe.configuration = Some(format!("upstream={upstream}\ntag=probe"));
    let mut pair = Pair::start(&[probe], "", Reply::Text("forty-two"))?;
    pair.also = PROBE_COUNTS;
    Some(pair)
}

#[test]
fn rust_sdk_abi_probe_answers_as_in_envoy() {
    let Some(pair) = probe_pair("httpbin") else {
        return;
    };
    pair.same(
        "GET",
        &raw(
            "GET",
            "/get?x=1",
            &[
                ("content-length", "0"),
                ("x-replace-me", "a"),
                ("x-remove-me", "b"),
            ],
            None,
            false,
        ),
    );
    pair.same(
        "POST ping",
        &raw("POST", "/post", &[], Some(b"ping ping"), false),
    );
    pair.same("call", &get("/call"));
    // A trap fails its request in both, with a status of each one's own
    // (docs/proxy-wasm.md's table says which and why).
    let trap = get("/trap");
    assert_eq!(pair.seen(pair.envoy.addr, &trap).status, 503);
    assert_eq!(pair.seen(pair.pwchain.addr, &trap).status, 500);
    // Then Envoy's VM stays failed (its default failure policy), while
    // pwchain serves the next request from a fresh instance, as Envoy's
    // `FAIL_RELOAD` would.
    let next = get("/get");
    assert_eq!(pair.seen(pair.envoy.addr, &next).status, 503);
    assert_eq!(pair.seen(pair.pwchain.addr, &next).status, 200);

    // A call to a cluster nobody defined fails as it is made.
    let Some(pair) = probe_pair("nowhere") else {
        return;
    };
    pair.same("a call to an unknown cluster", &get("/call"));
    let said = "dispatch failed: BadArgument";
    assert!(pair.envoy.log().contains(said), "{}", pair.envoy.log());
    assert!(pair.pwchain.log_line(said).is_some());
}

#[test]
fn a_fused_run_of_filters_answers_as_in_envoy() {
    // Three filters pwchain runs behind one driver: the later probe hears
    // each request's headers before Go holds the body, as in Envoy, where
    // each event goes through every filter before the next event.
    let probe = |name: &'static str| {
        let mut probe = Wasm::new(name, legacy_plugins().join("abi-probe.wasip1.wasm"));
        probe.configuration = Some(format!("upstream=httpbin\ntag={name}"));
        probe
    };
    let go = Wasm::new("http_body", fixture("go-http-body.wasm"));
    let Some(mut pair) = Pair::start(
        &[probe("outer"), go, probe("inner")],
        "",
        Reply::Text("yes"),
    ) else {
        return;
    };
    pair.also = PROBE_COUNTS;
    let chain = std::fs::read_to_string(pair.ws.path("chain.toml")).unwrap();
    assert!(chain.matches("proxy-wasm = ").count() == 3, "{chain}");
    pair.same(
        "a body Go replaces between two probes",
        &raw("POST", "/post", &[], Some(b"ping"), false),
    );
    let two_mib = vec![b'x'; 2 << 20];
    pair.same(
        "a body Go holds past its limit",
        &raw("POST", "/big", &[], Some(&two_mib), false),
    );
    // The counters show which filters heard the request before.
    pair.same(
        "the next request",
        &raw("POST", "/after", &[], Some(b"pong"), false),
    );
    pair.same(
        "a local 400 from the middle of the run",
        &raw("GET", "/x", &[], None, false),
    );
}

/// `te` is hop-by-hop, and both proxies drop it, but for `trailers`, which
/// gRPC requires end to end: the backend gets `te: trailers` from Envoy
/// and from pwchain alike. `trailer`, which names the trailers to come,
/// goes on too (HTTP/1.1 clients, hyper's among them, send only the
/// trailers it names).
#[test]
fn te_trailers_reaches_the_backend_as_in_envoy() {
    let legacy = legacy_plugins();
    let filter = Wasm::new("header_filter", legacy.join("header-filter.unknown.wasm"));
    let Some(pair) = Pair::start(&[filter], "", Reply::Text("yes")) else {
        return;
    };
    let raw = b"GET /te HTTP/1.1\r\nhost: example\r\nte: gzip, trailers\r\nconnection: te\r\ntrailer: x-checksum\r\ncontent-length: 0\r\n\r\n";
    let seen = pair.same("te: gzip, trailers", raw);
    let upstream = seen.upstream.expect("the backend got the request");
    let te: Vec<&str> = upstream
        .headers
        .iter()
        .filter(|(name, _)| name == "te")
        .map(|(_, value)| value.as_str())
        .collect();
    assert_eq!(te, ["trailers"]);
    assert!(
        upstream
            .headers
            .contains(&("trailer".to_string(), "x-checksum".to_string())),
        "{upstream:?}"
    );
}

/// The probe's trailer callbacks over HTTP/2 end to end, the backend
/// cluster asking for it (which the import makes `h2c://`): it reads a
/// request trailer into a response header, adds a request trailer, and
/// rewrites the response's trailer map. What the client and the backend
/// get, trailers included, is the same through Envoy and pwchain.
#[test]
fn trailers_through_a_filter_answer_as_in_envoy() {
    let mut probe = Wasm::new("probe", legacy_plugins().join("abi-probe.wasip1.wasm"));
    probe.configuration = Some("upstream=httpbin\ntag=probe".into());
    let backend = TrailerPeer::start();
    let httpbin = Peer::start("unused");
    let plain = "  - name: backend\n    type: STATIC\n";
    let yaml = bootstrap(&[probe], "", backend.addr, httpbin.addr).replace(
        plain,
        &format!(
            "{plain}    typed_extension_protocol_options:\n      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:\n        \"@type\": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions\n        explicit_http_config: {{ http2_protocol_options: {{}} }}\n"
        ),
    );
    let Some(envoy) = Envoy::start(&yaml) else {
        return;
    };
    let envoy = envoy.unwrap_or_else(|log| panic!("Envoy refused:\n{yaml}\n{log}"));
    let ws = Workspace::new();
    let pwchain = serve_imported(&ws, &yaml);
    let chain = std::fs::read_to_string(ws.path("chain.toml")).unwrap();
    assert!(chain.contains("upstream = \"h2c://"), "{chain}");

    let trailers = [("x-checksum", "abc123"), ("x-client", "1")];
    let sorted = |pairs: &Pairs| {
        let mut pairs = pairs.clone();
        pairs.sort();
        pairs
    };
    let seen = |addr: SocketAddr| {
        let answer = send(addr, true, b"a body with trailers", &trailers);
        let arrived = backend.next();
        (
            answer.status,
            comparable(&answer.headers, "response", &answer.body, PROBE_COUNTS),
            shown(&answer.body),
            sorted(&answer.trailers),
            comparable(&arrived.headers, "request", &arrived.body, PROBE_COUNTS),
            shown(&arrived.body),
            sorted(&arrived.trailers),
        )
    };
    let through_envoy = seen(envoy.addr);
    assert_eq!(
        through_envoy,
        seen(pwchain.addr),
        "Envoy (left) and pwchain (right) differ\nEnvoy's log:\n{}",
        envoy.log()
    );
    // What the comparison rests on: the callbacks ran in both.
    let (_, headers, _, answer_trailers, _, _, backend_trailers) = through_envoy;
    assert!(headers.contains(&("x-probe-request-trailer".into(), "abc123".into())));
    assert!(backend_trailers.contains(&("x-checksum-seen".into(), "yes".into())));
    assert!(answer_trailers.contains(&("x-probe-tag".into(), "probe".into())));
}
