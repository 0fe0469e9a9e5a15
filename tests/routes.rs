//! `match` on a plugin: a request that does not match skips the plugin in
//! both directions, decided inside the composite, so pwchain serve, the
//! real `wasmtime serve` and Node answer alike. Bad `match` tables are
//! refused with their line and column.

use crate::other_hosts::{HOSTS, Host};
use crate::support::{
    Peer, Reply, Served, Workspace, compose_fails, exchange, plugins, run, stderr,
};

/// `api` (a middleware) on `/api` for GET and POST, `tenant` (a header
/// filter) for a tenant's requests to `*.example.com`, `all` everywhere.
const ROUTED: &str = r#"
[[plugin]]
name = "api"
path = "{plugins}/add-header.wasm"
config = { "request.x-api" = "in", "response.x-api" = "out" }
match = { path-prefix = ["/api"], methods = ["GET", "POST"] }

[[plugin]]
name = "tenant"
path = "{plugins}/add-header-filter.wasm"
config = { "request.x-tenant-seen" = "in", "response.x-tenant-seen" = "out" }
match = { hosts = ["*.Example.com"], headers = { "x-tenant" = "*" } }

[[plugin]]
name = "all"
path = "{plugins}/add-header.wasm"
config = { "request.x-all" = "in", "response.x-all" = "out" }

[origin]
path = "{plugins}/echo.wasm"
"#;

/// Which of `api` and `tenant` a request passed, seen from both sides:
/// what the service received, and what came back. With `host`, the
/// request is in absolute form (`GET http://HOST/path`), which every host
/// turns into the request's authority; `wasmtime serve` keeps no `host`
/// header and no authority for an origin-form request.
fn passed(
    served: &Served,
    host: Host,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
) -> (bool, bool) {
    let mut raw =
        format!("{method} {target} HTTP/1.1\r\nconnection: close\r\ncontent-length: 0\r\n");
    if !headers.iter().any(|(name, _)| *name == "host") {
        raw.push_str(&format!("host: {}\r\n", served.addr));
    }
    for (name, value) in headers {
        raw.push_str(&format!("{name}: {value}\r\n"));
    }
    raw.push_str("\r\n");
    let answer = exchange(served.addr, raw.as_bytes());
    let what = format!("{host:?} {method} {target} {headers:?}");
    assert_eq!(answer.status, 200, "{what}: {}", answer.text());
    let text = answer.text();
    // `all` runs on every request, in both directions.
    assert!(text.contains("x-all: in"), "{what}: {text}");
    assert_eq!(answer.header("x-all"), Some("out"), "{what}");
    let side = |name: &str| {
        let inward = text.contains(&format!("{name}: in"));
        let outward = answer.header(name) == Some("out");
        assert_eq!(inward, outward, "{what}: {name} ran one way only: {text}");
        inward
    };
    (side("x-api"), side("x-tenant-seen"))
}

/// A request (method, target, headers) and whether `api` and `tenant` run.
type Case<'a> = (&'a str, String, &'a [(&'a str, &'a str)], (bool, bool));

#[test]
fn a_plugin_runs_only_on_its_routes_in_every_host() {
    plugins();
    let ws = Workspace::new();
    let composite = ws.compose(ROUTED);
    for host in HOSTS {
        let Some(served) = host.serve(&composite, &[]) else {
            continue;
        };
        let shop = "http://shop.example.com";
        let cases: &[Case] = &[
            ("GET", "/api".into(), &[], (true, false)),
            ("POST", "/api/orders?x=1".into(), &[], (true, false)),
            // A prefix ends on a segment boundary; methods are exact.
            ("GET", "/apis".into(), &[], (false, false)),
            ("DELETE", "/api/orders".into(), &[], (false, false)),
            (
                "GET",
                format!("{shop}/"),
                &[("host", "shop.example.com"), ("x-tenant", "t1")],
                (false, true),
            ),
            (
                "GET",
                format!("{shop}/api/x"),
                &[("host", "shop.example.com"), ("x-tenant", "t1")],
                (true, true),
            ),
            // Hosts: names under the domain, in any case, with any port,
            // not the domain itself; the header must be there, any value.
            (
                "GET",
                "http://A.EXAMPLE.COM:8080/".into(),
                &[("host", "A.EXAMPLE.COM:8080"), ("x-tenant", "")],
                (false, true),
            ),
            (
                "GET",
                "http://example.com/".into(),
                &[("host", "example.com"), ("x-tenant", "t1")],
                (false, false),
            ),
            (
                "GET",
                format!("{shop}/"),
                &[("host", "shop.example.com")],
                (false, false),
            ),
        ];
        for (method, target, headers, expected) in cases {
            assert_eq!(
                passed(&served, host, method, target, headers),
                *expected,
                "{host:?} {method} {target} {headers:?}"
            );
        }
        // An origin-form request names its host in `host` alone: pwchain
        // and Node match it, `wasmtime serve` drops the header and has no
        // authority to match (see docs/manifest.md).
        let origin_form = passed(
            &served,
            host,
            "GET",
            "/",
            &[("host", "shop.example.com"), ("x-tenant", "t1")],
        );
        assert_eq!(origin_form, (false, host != Host::Wasmtime), "{host:?}");
    }
}

#[test]
fn a_last_plugin_with_match_skips_to_the_host_upstream() {
    let ws = Workspace::new();
    let composite = ws.compose(
        "[[plugin]]\nname = \"tag\"\npath = \"{plugins}/add-header.wasm\"\n\
         config = { \"response.x-tag\" = \"yes\" }\nmatch = { path-exact = [\"/tagged\"] }\n\n\
         [origin]\nhost = true\n",
    );
    let upstream = Peer::replying(Reply::Echo);
    let served = Served::with_args(
        &composite,
        &["--upstream", &format!("http://{}", upstream.addr)],
    );
    let tagged = served.request("GET", "/tagged", &[], b"");
    assert_eq!(tagged.status, 200, "{}", tagged.text());
    assert_eq!(tagged.header("x-tag"), Some("yes"));
    let plain = served.request("GET", "/tagged/not", &[], b"");
    assert_eq!(plain.status, 200, "{}", plain.text());
    assert_eq!(plain.header("x-tag"), None);
    assert_eq!(plain.header("x-upstream"), Some("yes"));

    // Each stage's match is in the record `inspect` shows.
    let inspected = run(&["inspect", composite.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&inspected.stdout);
    assert!(
        text.contains("runs only for: path /tagged (other requests skip it)"),
        "{text}{}",
        stderr(&inspected)
    );
    let json = run(&["inspect", "--json", composite.to_str().unwrap()]);
    let report: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(
        report["chain"]["plugins"][0]["match"]["path-exact"][0],
        "/tagged"
    );

    // The operator's overview: the match as a decision, the way around the
    // plugin going to the host.
    let graph = |format: &str| {
        let out = run(&[
            "inspect",
            "--graph",
            "--format",
            format,
            composite.to_str().unwrap(),
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let text = graph("text");
    assert!(
        text.contains("↓ match? path /tagged; otherwise skip to the host's next hop"),
        "{text}"
    );
    let dot = graph("dot");
    assert!(
        dot.contains("m1 -> origin [label=\"otherwise\", style=dashed];"),
        "{dot}"
    );
    let mermaid = graph("mermaid");
    assert!(
        mermaid.contains("m1 -.->|\"otherwise\"| origin"),
        "{mermaid}"
    );
    // A plugin is no composite.
    let plain = run(&[
        "inspect",
        "--graph",
        crate::support::plugin("add-header").to_str().unwrap(),
    ]);
    assert_eq!(plain.status.code(), Some(1));
    assert!(
        stderr(&plain).contains("carries no chain record"),
        "{}",
        stderr(&plain)
    );
}

#[test]
fn a_wrong_match_is_refused_where_it_is_written() {
    let ws = Workspace::new();
    let plugin = |route: &str| {
        format!(
            "[[plugin]]\nname = \"tag\"\npath = \"{{plugins}}/add-header.wasm\"\nmatch = {route}\n\n[origin]\npath = \"{{plugins}}/echo.wasm\"\n"
        )
    };
    for (route, expected) in [
        (
            "{ paths = [\"/a\"] }",
            &["chain.toml:4:", "unknown field `paths`", "path-prefix"][..],
        ),
        ("{}", &["chain.toml:4:9", "an empty `match`"]),
        (
            "{ methods = [] }",
            &[
                "chain.toml:4:",
                "`match.methods` is empty",
                "remove `methods`",
            ],
        ),
        (
            "{ methods = [\"post\"] }",
            &["chain.toml:4:", "case-sensitive", "write `POST`"],
        ),
        (
            "{ methods = [\"GET POST\"] }",
            &["chain.toml:4:", "is not a method"],
        ),
        (
            "{ headers = { \"x tenant\" = \"*\" } }",
            &["chain.toml:4:", "not a header name"],
        ),
        (
            "{ path-prefix = [\"api/\"] }",
            &["chain.toml:4:", "does not start with `/`", "write `/api/`"],
        ),
        (
            "{ hosts = [\"example.com:8080\"] }",
            &["chain.toml:4:", "has a port"],
        ),
        (
            "{ hosts = [\"api.*.com\"] }",
            &["chain.toml:4:", "wildcard"],
        ),
    ] {
        compose_fails(&ws, &plugin(route), expected);
    }
    // Nothing stands after the origin, or after a service, to skip to.
    compose_fails(
        &ws,
        "[[plugin]]\nname = \"tag\"\npath = \"{plugins}/add-header.wasm\"\n\n[origin]\npath = \"{plugins}/echo.wasm\"\nmatch = { methods = [\"GET\"] }\n",
        &["chain.toml:7:9", "the origin takes no `match`"],
    );
    compose_fails(
        &ws,
        "[[plugin]]\nname = \"echo\"\npath = \"{plugins}/echo.wasm\"\nmatch = { methods = [\"GET\"] }\n",
        &[
            "chain.toml:4:9",
            "it is a service",
            "put a middleware in front",
        ],
    );
    // A match no request can meet composes, with a warning naming it.
    let out = ws.compose_to(&plugin("{ path-exact = [\"/a?b=1\"] }"), "never.wasm");
    assert!(out.status.success(), "{}", stderr(&out));
    let said = stderr(&out);
    assert!(said.contains("plugin `tag` never runs"), "{said}");
}

#[test]
fn a_header_filter_with_match_is_not_fused_with_its_neighbours() {
    let ws = Workspace::new();
    let composite = ws.compose(
        "[[plugin]]\nname = \"b\"\npath = \"{plugins}/add-header-filter.wasm\"\n\
         config = { \"response.x-b\" = \"yes\" }\n\n\
         [[plugin]]\nname = \"c\"\npath = \"{plugins}/add-header-filter.wasm\"\n\
         config = { \"response.x-c\" = \"yes\" }\nmatch = { methods = [\"POST\"] }\n\n\
         [[plugin]]\nname = \"d\"\npath = \"{plugins}/add-header-filter.wasm\"\n\
         config = { \"response.x-d\" = \"yes\" }\n\n\
         [origin]\npath = \"{plugins}/echo.wasm\"\n",
    );
    let json = run(&["inspect", "--json", composite.to_str().unwrap()]);
    let report: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let runs: Vec<&str> = report["chain"]["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["run"].as_str())
        .collect();
    assert_eq!(runs, ["b", "c", "d"]);
    let served = Served::start(&composite, &[]);
    for (method, c) in [("GET", None), ("POST", Some("yes"))] {
        let answer = served.request(method, "/", &[], b"");
        assert_eq!(answer.status, 200, "{}", answer.text());
        assert_eq!(answer.header("x-b"), Some("yes"));
        assert_eq!(answer.header("x-c"), c, "{method}");
        assert_eq!(answer.header("x-d"), Some("yes"));
    }
}

#[test]
fn emitted_wac_keeps_the_route_matches() {
    let ws = Workspace::new();
    let manifest = ws.manifest(ROUTED);
    let wac = ws.path("routed.wac");
    let emitted = crate::compose::emit_wac(&manifest, &wac);
    assert!(emitted.status.success(), "{}", stderr(&emitted));
    let text = std::fs::read_to_string(&wac).unwrap();
    assert!(
        text.contains("let api-match = new pwchain:route-match {"),
        "{text}"
    );
    let out = ws.path("from-wac.wasm");
    let composed = crate::compose::compose_as_commented(&wac, &out);
    assert!(composed.status.success(), "{}", stderr(&composed));
    let served = Served::start(&out, &[]);
    let api = served.request("GET", "/api/x", &[], b"");
    assert_eq!(api.header("x-api"), Some("out"), "{}", api.text());
    let other = served.request("GET", "/apis", &[], b"");
    assert_eq!(other.header("x-api"), None, "{}", other.text());
    assert_eq!(other.header("x-all"), Some("out"), "{}", other.text());

    // The way around a last plugin would be a second import of the host's
    // next hop, which a WAC document cannot merge with the plugin's.
    let last = ws.manifest(
        "[[plugin]]\nname = \"tag\"\npath = \"{plugins}/add-header.wasm\"\nmatch = { methods = [\"GET\"] }\n\n[origin]\nhost = true\n",
    );
    let refused = crate::compose::emit_wac(&last, &wac);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        stderr(&refused).contains("plugin `tag` has `match` and is last"),
        "{}",
        stderr(&refused)
    );
}
