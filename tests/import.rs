//! `pwchain import envoy`: Envoy configurations in the shapes users write
//! (the Wasm filter's typed config directly, or wrapped in a udpa or xds
//! `TypedStruct`; configurations as StringValue or Struct), importing the
//! other SDKs' filters and the project's own, then composed, served and
//! checked against what each filter does in Envoy.

use crate::support::{
    Peer, Reply, Served, Workspace, fixture, legacy_plugins, plugins, run, stderr,
};
use std::path::Path;

/// An Envoy bootstrap as deployments write it: its filters under
/// `/etc/envoy/filters`, its clusters at names of its own network.
fn bootstrap(first_filter: &str) -> String {
    format!(
        r#"
admin:
  address:
    socket_address: {{ address: 0.0.0.0, port_value: 9901 }}
static_resources:
  listeners:
  - name: admin_side
    address:
      socket_address: {{ address: 0.0.0.0, port_value: 9000 }}
    filter_chains: []
  - name: main
    address:
      socket_address: {{ address: 0.0.0.0, port_value: 10000 }}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: ingress_http
          route_config:
            name: local_route
            virtual_hosts:
            - name: backend
              domains: ["*"]
              routes:
              - match: {{ prefix: "/" }}
                route: {{ cluster: web_service }}
          http_filters:
{first_filter}
          - name: envoy.filters.http.wasm
            typed_config:
              "@type": type.googleapis.com/udpa.type.v1.TypedStruct
              type_url: type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
              value:
                config:
                  name: header_filter
                  configuration:
                    "@type": type.googleapis.com/google.protobuf.StringValue
                    value: from-envoy
                  vm_config:
                    runtime: envoy.wasm.runtime.v8
                    code:
                      local:
                        filename: /etc/envoy/legacy/header-filter.wasip1.wasm
          - name: envoy.filters.http.wasm
            typed_config:
              "@type": type.googleapis.com/xds.type.v3.TypedStruct
              type_url: type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
              value:
                config:
                  name: http_auth_random
                  vm_config:
                    vm_id: auth
                    runtime: envoy.wasm.runtime.v8
                    configuration:
                      "@type": type.googleapis.com/google.protobuf.Struct
                      value:
                        mode: strict
                        retries: 3
                    code:
                      local:
                        filename: /etc/envoy/filters/go-http-auth-random.wasm
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
  clusters:
  - name: web_service
    type: STRICT_DNS
    load_assignment:
      cluster_name: web_service
      endpoints:
      - lb_endpoints:
        - endpoint:
            address:
              socket_address: {{ address: web, port_value: 8080 }}
  - name: httpbin
    type: STRICT_DNS
    load_assignment:
      cluster_name: httpbin
      endpoints:
      - lb_endpoints:
        - endpoint:
            address:
              socket_address: {{ address: httpbin.org, port_value: 443 }}
    transport_socket:
      name: envoy.transport_sockets.tls
"#
    )
}

/// The AssemblyScript SDK's add-header, its Wasm config given directly.
const AS_FILTER: &str = r#"          - name: envoy.filters.http.wasm
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
              config:
                name: as_add_header
                root_id: add_header
                configuration:
                  "@type": type.googleapis.com/google.protobuf.StringValue
                  value: from-as
                vm_config:
                  runtime: envoy.wasm.runtime.v8
                  code:
                    local:
                      filename: /etc/envoy/filters/as-add-header.wasm"#;

/// The C++ SDK's add-header, root id `cpp` (it answers with `x-cpp: 1`).
const CPP_FILTER: &str = r#"          - name: envoy.filters.http.wasm
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
              config:
                name: cpp_add_header
                root_id: cpp
                vm_config:
                  runtime: envoy.wasm.runtime.v8
                  code:
                    local:
                      filename: /etc/envoy/filters/cpp-add-header.wasm"#;

fn maps(legacy: &Path) -> Vec<String> {
    vec![
        "--map".into(),
        format!("/etc/envoy/filters={}", fixture("").display()),
        "--map".into(),
        format!("/etc/envoy/legacy={}", legacy.display()),
    ]
}

/// Composes the imported `chain.toml` (registry plugins through `cache`)
/// and serves it.
fn serve_imported(ws: &Workspace, cache: &Path) -> Served {
    let composed = crate::support::run_in(
        cache,
        &[
            "compose",
            ws.path("chain.toml").to_str().unwrap(),
            "-o",
            ws.path("chain.wasm").to_str().unwrap(),
        ],
    );
    assert!(composed.status.success(), "{}", stderr(&composed));
    Served::start(&ws.path("chain.wasm"), &[])
}

fn import(ws: &Workspace, envoy: &str, extra: &[String]) -> std::process::Output {
    let file = ws.write("envoy.yaml", envoy);
    let mut args = vec![
        "import".to_string(),
        "envoy".into(),
        file.display().to_string(),
        "-o".into(),
        ws.path("chain.toml").display().to_string(),
    ];
    args.extend(extra.iter().cloned());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run(&args)
}

#[test]
fn an_envoy_wasm_chain_imports_composes_and_answers_as_in_envoy() {
    plugins();
    let legacy = legacy_plugins();
    // The auth filter lets a request through when the FNV-32a hash of what
    // its cluster answers is even: "yes" is.
    let httpbin = Peer::replying(Reply::Text("yes"));
    let web = Peer::replying(Reply::Echo);
    let ws = Workspace::new();
    let mut extra = maps(legacy);
    extra.extend([
        "--cluster".into(),
        format!("httpbin=http://{}", httpbin.addr),
        "--cluster".into(),
        format!("web_service=http://{}", web.addr),
    ]);
    let filters = format!("{AS_FILTER}\n{CPP_FILTER}");
    let output = import(&ws, &bootstrap(&filters), &extra);
    assert!(output.status.success(), "{}", stderr(&output));
    let chain = std::fs::read_to_string(ws.path("chain.toml")).unwrap();
    // Commented, each entry naming the filter it came from.
    assert!(chain.contains("listener `main`"), "{chain}");
    assert!(
        chain.contains("http_filters[0] `envoy.filters.http.wasm`"),
        "{chain}"
    );
    assert!(chain.contains("root-id = \"add_header\""), "{chain}");
    assert!(chain.contains("configuration = \"from-as\""), "{chain}");
    assert!(
        chain.contains(r#"vm-configuration = '{"mode":"strict","retries":3}'"#),
        "a Struct is the JSON Envoy hands the filter:\n{chain}"
    );
    assert!(chain.contains("httpbin = "), "{chain}");
    assert!(chain.contains("(address from --cluster)"), "{chain}");

    let served = serve_imported(&ws, &ws.path("cache"));
    let answer = served.request("POST", "/orders?id=7", &[], b"order body");
    assert_eq!(answer.status, 200, "{}", answer.text());
    // As in Envoy: each filter's response header, the route's upstream
    // answering (echoing the body), the auth call made to its cluster.
    assert_eq!(answer.header("hello"), Some("from-as"));
    assert_eq!(answer.header("x-cpp"), Some("1"));
    assert_eq!(answer.header("x-legacy-response"), Some("from-envoy"));
    assert_eq!(answer.header("x-upstream"), Some("yes"));
    assert_eq!(answer.text(), "order body");
    let upstream = web.next().expect("the route's upstream got the request");
    assert!(
        upstream.request_line.starts_with("POST /orders?id=7 "),
        "{}",
        upstream.request_line
    );
    let header = |name: &str| {
        upstream
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(header("x-as-request"), Some("seen"));
    assert_eq!(header("x-legacy-request"), Some("from-envoy"));
    assert!(
        httpbin.next().is_some(),
        "the auth filter's proxy_http_call did not reach its cluster"
    );
}

#[test]
fn envoy_imports_refuse_what_they_cannot_map() {
    let legacy = legacy_plugins();
    let ws = Workspace::new();
    let fails = |envoy: &str, extra: &[String], expected: &[&str]| {
        let _ = std::fs::remove_file(ws.path("chain.toml"));
        let output = import(&ws, envoy, extra);
        let said = stderr(&output);
        assert!(!output.status.success(), "imported:\n{said}");
        for piece in expected {
            assert!(said.contains(piece), "expected {piece:?} in:\n{said}");
        }
        assert!(
            !ws.path("chain.toml").exists(),
            "a failed import wrote chain.toml"
        );
    };
    let good = bootstrap(AS_FILTER);
    fails(
        "apiVersion: extensions.istio.io/v1alpha1\nkind: WasmPlugin\n",
        &[],
        &[
            "not an Envoy bootstrap",
            "static_resources",
            "pwchain import istio",
        ],
    );
    fails(
        &good,
        &["--listener".into(), "edge".into()],
        &["no listener is named `edge`", "`admin_side`, `main`"],
    );
    // Unmapped, the filters' paths are Envoy's, which do not exist here.
    fails(
        &good,
        &[],
        &[
            "envoy.yaml:42:33:",
            "`/etc/envoy/filters/as-add-header.wasm` is not here",
            "--map FROM=TO",
        ],
    );
    fails(
        &good.replace("cluster: web_service", "cluster: nowhere"),
        &maps(legacy),
        &[
            "cluster `nowhere`",
            "does not define",
            "`web_service`, `httpbin`",
        ],
    );
    let cors = "          - name: envoy.filters.http.cors\n            typed_config:\n              \"@type\": type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors";
    fails(
        &bootstrap(cors),
        &maps(legacy),
        &[
            "envoy.yaml:29:",
            "http_filters[0] `envoy.filters.http.cors` is not a Wasm filter",
            "--skip-unsupported",
        ],
    );
    // A remote module becomes a digest pin and a hint; a BytesValue its text.
    let remote = AS_FILTER
        .replace(
            "local:\n                      filename: /etc/envoy/filters/as-add-header.wasm",
            "remote:\n                      http_uri: { uri: \"https://cdn.example/f/as.wasm\", cluster: cdn, timeout: 10s }\n                      sha256: 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        )
        .replace(
            "google.protobuf.StringValue\n                  value: from-as",
            "google.protobuf.BytesValue\n                  value: ZnJvbS1ieXRlcw==",
        );
    let output = import(&ws, &bootstrap(&remote), &maps(legacy));
    assert!(output.status.success(), "{}", stderr(&output));
    let chain = std::fs::read_to_string(ws.path("chain.toml")).unwrap();
    for piece in [
        "# Envoy fetches it from https://cdn.example/f/as.wasm: download it to this path.",
        "proxy-wasm = \"as.wasm\"",
        "digest = \"sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\"",
        "configuration = \"from-bytes\"",
    ] {
        assert!(chain.contains(piece), "no {piece:?} in:\n{chain}");
    }
    // JSON, as `envoy -c envoy.json` takes it.
    let json = format!(
        r#"{{"static_resources": {{
  "listeners": [{{"name": "json", "filter_chains": [{{"filters": [{{
    "name": "envoy.filters.network.http_connection_manager",
    "typed_config": {{
      "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
      "route_config": {{"virtual_hosts": [{{"routes": [{{"route": {{"cluster": "web"}}}}]}}]}},
      "http_filters": [
        {{"name": "envoy.filters.http.wasm", "typed_config": {{
          "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
          "config": {{"name": "from_json", "root_id": "add_header",
            "vm_config": {{"code": {{"local": {{"filename": "{}"}}}}}}}}}}}},
        {{"name": "envoy.filters.http.router"}}]}}}}]}}]}}],
  "clusters": [{{"name": "web", "load_assignment": {{"endpoints": [{{"lb_endpoints": [{{"endpoint": {{"address": {{"socket_address": {{"address": "127.0.0.1", "port_value": 8080}}}}}}}}]}}]}}}}]}}}}"#,
        fixture("as-add-header.wasm").display()
    );
    let output = import(&ws, &json, &[]);
    assert!(output.status.success(), "{}", stderr(&output));
    let chain = std::fs::read_to_string(ws.path("chain.toml")).unwrap();
    assert!(chain.contains("name = \"from-json\""), "{chain}");
    assert!(
        chain.contains("upstream = \"http://127.0.0.1:8080\""),
        "{chain}"
    );

    let mut skip = maps(legacy);
    skip.push("--skip-unsupported".into());
    let output = import(&ws, &bootstrap(cors), &skip);
    assert!(output.status.success(), "{}", stderr(&output));
    let chain = std::fs::read_to_string(ws.path("chain.toml")).unwrap();
    assert!(
        chain.contains("# Dropped http_filters[0] `envoy.filters.http.cors` (line 29)"),
        "{chain}"
    );
}

/// A `WasmPlugin` for `module` at `reference`, `extra` spec lines added.
fn wasm_plugin(name: &str, reference: &str, extra: &str) -> String {
    format!(
        "apiVersion: extensions.istio.io/v1alpha1\nkind: WasmPlugin\nmetadata:\n  name: {name}\n  namespace: shop\nspec:\n  selector:\n    matchLabels:\n      app: orders\n  url: {reference}\n  imagePullPolicy: IfNotPresent\n{extra}"
    )
}

/// `pwchain import istio FILES… --upstream WEB -o chain.toml`, asserting
/// success; the chain's text.
fn import_istio(ws: &Workspace, files: &[&Path], web: &Peer) -> String {
    let mut args = vec!["import".to_string(), "istio".into()];
    args.extend(files.iter().map(|f| f.display().to_string()));
    args.extend([
        "--upstream".into(),
        format!("http://{}", web.addr),
        "-o".into(),
        ws.path("chain.toml").display().to_string(),
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let output = run(&args);
    assert!(output.status.success(), "{}", stderr(&output));
    std::fs::read_to_string(ws.path("chain.toml")).unwrap()
}

/// `pwchain import istio FILE -o chain.toml` fails, saying every piece of
/// `expected`, and writes no chain.
fn istio_import_fails(ws: &Workspace, file: &Path, expected: &[&str]) {
    let _ = std::fs::remove_file(ws.path("chain.toml"));
    let output = run(&[
        "import",
        "istio",
        file.to_str().unwrap(),
        "-o",
        ws.path("chain.toml").to_str().unwrap(),
    ]);
    let said = stderr(&output);
    assert!(!output.status.success(), "{said}");
    for piece in expected {
        assert!(said.contains(piece), "expected {piece:?} in:\n{said}");
    }
    assert!(!ws.path("chain.toml").exists());
}

/// The names of a chain's `[chain]` and plugins, in order.
fn plugin_order(chain: &str) -> Vec<&str> {
    chain
        .lines()
        .filter_map(|l| l.strip_prefix("name = \""))
        .map(|l| l.trim_end_matches('"'))
        .collect()
}

#[test]
fn istio_wasm_plugins_import_in_istio_order_from_a_registry() {
    let registry = crate::support::TestRegistry::start();
    let ws = Workspace::new();
    let cache = ws.path("cache");
    let tagger = legacy_plugins().join("header-filter.wasip1.wasm");
    let as_filter = fixture("as-add-header.wasm");
    let tagger_ref = registry.reference("filters/tagger:1.0.0");
    let as_ref = registry.reference("filters/as-add-header:0.1.8");
    for (module, reference) in [(&tagger, &tagger_ref), (&as_filter, &as_ref)] {
        let published =
            crate::support::run_in(&cache, &["publish", module.to_str().unwrap(), reference]);
        assert!(published.status.success(), "{}", stderr(&published));
    }
    let sha = {
        use sha2::Digest;
        let bytes = std::fs::read(&as_filter).unwrap();
        sha2::Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    // Istio applies AUTHN, then AUTHZ, then STATS, then the rest; within a
    // phase the higher priority first. The files list them otherwise.
    let first = ws.write(
        "stats.yaml",
        format!(
            "{}---\n{}",
            wasm_plugin(
                "tag-stats",
                &tagger_ref,
                "  phase: STATS\n  pluginConfig:\n    tag: stats\n"
            ),
            wasm_plugin(
                "tag-authn-low",
                &tagger_ref,
                "  phase: AUTHN\n  priority: 5\n  failStrategy: FAIL_OPEN\n  pluginConfig:\n    tag: authn-low\n"
            ),
        ),
    );
    let second = ws.write(
        "more.yaml",
        format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: orders\n---\n{}---\n{}",
            wasm_plugin(
                "add-header",
                // Istio's default scheme is oci://.
                as_ref.trim_start_matches("oci://"),
                &format!(
                    "  pluginName: add_header\n  sha256: {sha}\n  pluginConfig:\n    greeting: hi\n"
                )
            ),
            wasm_plugin(
                "tag-authn-high",
                &tagger_ref,
                "  phase: AUTHN\n  priority: 10\n  pluginConfig:\n    tag: authn-high\n"
            ),
        ),
    );
    let web = Peer::replying(Reply::Echo);
    let chain = import_istio(&ws, &[&first, &second], &web);
    assert_eq!(
        plugin_order(&chain),
        [
            "istio",
            "tag-authn-high",
            "tag-authn-low",
            "tag-stats",
            "add-header"
        ],
        "{chain}"
    );
    assert!(chain.contains("root-id = \"add_header\""), "{chain}");
    assert!(
        chain.contains(&format!("digest = \"sha256:{sha}\"")),
        "{chain}"
    );
    assert!(
        chain.contains("# Not used in a chain: failStrategy = \"FAIL_OPEN\""),
        "{chain}"
    );
    assert!(
        chain.contains("# Not used in a chain: selector = "),
        "{chain}"
    );
    assert!(chain.contains("more.yaml, line 6"), "{chain}");

    let served = serve_imported(&ws, &cache);
    let answer = served.request("GET", "/orders", &[], b"");
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.header("hello"), Some(r#"{"greeting":"hi"}"#));
    let received = web.next().expect("the workload got the request");
    let tags: Vec<&str> = received
        .headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("x-legacy-request"))
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(
        tags,
        [
            r#"{"tag":"authn-high"}"#,
            r#"{"tag":"authn-low"}"#,
            r#"{"tag":"stats"}"#
        ],
        "the filters ran out of Istio's order"
    );

    // A WasmPlugin without a url names itself and its line.
    let broken = ws.write(
        "broken.yaml",
        "kind: WasmPlugin\nmetadata:\n  name: no-url\nspec:\n  phase: AUTHN\n",
    );
    istio_import_fails(
        &ws,
        &broken,
        &["broken.yaml:5:", "WasmPlugin `no-url` has no `spec.url`"],
    );
}

/// A Wasm `TrafficExtension` (Istio 1.30) in its documented shape, `extra`
/// spec lines added and `wasm` lines under `spec.wasm`.
fn traffic_extension(name: &str, extra: &str, wasm: &str) -> String {
    format!(
        "apiVersion: extensions.istio.io/v1alpha1\nkind: TrafficExtension\nmetadata:\n  name: {name}\n  namespace: istio-ingress\nspec:\n  selector:\n    matchLabels:\n      istio: ingressgateway\n  match:\n  - mode: CLIENT\n    ports:\n    - number: 8080\n{extra}  wasm:\n{wasm}"
    )
}

#[test]
fn istio_traffic_extensions_import_beside_wasm_plugins_and_lua_is_refused() {
    let ws = Workspace::new();
    let tagger = legacy_plugins().join("header-filter.wasip1.wasm");
    let as_filter = fixture("as-add-header.wasm");
    let file = ws.write(
        "extensions.yaml",
        format!(
            "{}---\n{}---\n{}",
            traffic_extension(
                "tag-stats",
                "  phase: STATS\n",
                &format!(
                    "    url: file://{}\n    pluginConfig:\n      tag: stats\n    failStrategy: FAIL_OPEN\n    vmConfig:\n      env:\n      - name: MODE\n        value: edge\n    type: HTTP\n",
                    tagger.display()
                )
            ),
            traffic_extension(
                "add-header",
                "  phase: EXECUTION_PHASE_AUTHZ\n  priority: 1000\n",
                &format!(
                    "    url: file://{}\n    pluginName: add_header\n    pluginConfig:\n      greeting: hi\n",
                    as_filter.display()
                )
            ),
            wasm_plugin(
                "tag-authn",
                &format!("file://{}", tagger.display()),
                "  phase: AUTHN\n  pluginConfig:\n    tag: authn\n"
            ),
        ),
    );
    let web = Peer::replying(Reply::Echo);
    let chain = import_istio(&ws, &[&file], &web);
    assert_eq!(
        plugin_order(&chain),
        ["istio", "tag-authn", "add-header", "tag-stats"],
        "{chain}"
    );
    for piece in [
        "# TrafficExtension istio-ingress/add-header",
        "phase EXECUTION_PHASE_AUTHZ, priority 1000",
        "root-id = \"add_header\"",
        "# Dropped match = [{\"mode\":\"CLIENT\",\"ports\":[{\"number\":8080}]}]: it selects traffic by direction",
        "# Not used in a chain: failStrategy = \"FAIL_OPEN\"",
        "# Not used in a chain: vmConfig = ",
        "# Not used in a chain: type = \"HTTP\"",
    ] {
        assert!(chain.contains(piece), "no {piece:?} in:\n{chain}");
    }
    let served = serve_imported(&ws, &ws.path("cache"));
    let answer = served.request("GET", "/orders", &[], b"");
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.header("hello"), Some(r#"{"greeting":"hi"}"#));
    let received = web.next().expect("the workload got the request");
    let tags: Vec<&str> = received
        .headers
        .iter()
        .filter(|(k, _)| k == "x-legacy-request")
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(tags, [r#"{"tag":"authn"}"#, r#"{"tag":"stats"}"#]);

    // A Lua extension is named, at its line, and nothing is written.
    let lua = ws.write(
        "lua.yaml",
        traffic_extension(
            "header-modifier",
            "  phase: AUTHN\n",
            "    url: oci://x/y:1\n",
        )
        .replace(
            "  wasm:\n    url: oci://x/y:1\n",
            "  lua:\n    inlineCode: |\n      function envoy_on_request(request_handle) end\n",
        ),
    );
    istio_import_fails(
        &ws,
        &lua,
        &[
            "lua.yaml:15:",
            "TrafficExtension istio-ingress/header-modifier is a Lua extension",
        ],
    );
}
