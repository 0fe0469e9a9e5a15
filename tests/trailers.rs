//! Trailers through every kind of stage, both ways: a native plugin built
//! on `plugins/guest`, the `content-digest` example (which adds one), a
//! wrapped proxy-wasm header filter (the `header-run` driver) and a wrapped
//! filter with trailer callbacks (the full driver: `abi-probe` reads a
//! request trailer, adds one, and rewrites the response's trailer map),
//! JavaScript and Python plugins, and each way a chain ends: the `echo`
//! service, the `upstream` terminator over HTTP/1.1 and h2c, and the
//! host's `--upstream`. The client and the backend are hyper, sending and
//! reading real trailers over HTTP/2 and HTTP/1.1.

use crate::support::{
    Served, Trailed, TrailerPeer, Workspace, first_value, js_plugins, plugin, python_plugins, send,
};

/// Every kind of stage, outermost first; `content-digest` outermost, so
/// its digest is of the body the client gets.
fn stages() -> String {
    let js = js_plugins();
    let python = python_plugins();
    format!(
        r#"
[[plugin]]
name = "digest"
path = "{digest}"

[[plugin]]
name = "native"
path = "{native}"

[[plugin]]
name = "filter"
proxy-wasm = "{{legacy}}/header-filter.unknown.wasm"

[[plugin]]
name = "js"
path = "{js}"

[[plugin]]
name = "probe"
proxy-wasm = "{{legacy}}/abi-probe.unknown.wasm"

[[plugin]]
name = "py"
path = "{py}"
"#,
        digest = plugin("content-digest").display(),
        native = plugin("add-header").display(),
        js = js.join("js-headers.wasm").display(),
        py = python.join("py-header-tag.wasm").display(),
    )
}

fn sha256_digest(body: &[u8]) -> String {
    use base64::Engine as _;
    use sha2::Digest as _;
    format!(
        "sha-256=:{}:",
        base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(body))
    )
}

/// Asserts what every stage did, both ways, to one exchange over HTTP/2.
fn passed_every_stage(answer: &Trailed, sent_body: &[u8], backend_trailers: &[&str]) {
    assert_eq!(answer.status, 200, "{answer:?}");
    // Each stage touched the response's head.
    for (name, expected) in [
        ("x-served-by", "pwchain add-header"),
        ("x-js-response", "headers"),
        ("x-python-response", "header-tag"),
        ("x-legacy-response", "legacy"),
        ("x-probe-request-trailer", "abc123"),
    ] {
        assert_eq!(
            first_value(&answer.headers, name),
            Some(expected),
            "{answer:?}"
        );
    }
    // The body as sent: the probe's body callback adds a line when it
    // hears `end_of_stream`, which, as in Envoy, it does not hear when
    // trailers follow (`envoy::trailers_through_a_filter_answer_as_in_envoy`).
    assert!(answer.body.ends_with(sent_body), "{answer:?}");
    // The trailers: what the end of the chain sent, the probe's, and the
    // digest of exactly the body that arrived.
    let names: Vec<&str> = answer.trailers.iter().map(|(k, _)| k.as_str()).collect();
    for name in backend_trailers {
        assert!(names.contains(name), "no {name} in {:?}", answer.trailers);
    }
    assert_eq!(
        first_value(&answer.trailers, "x-probe-trailers"),
        Some(backend_trailers.len().to_string().as_str()),
        "{:?}",
        answer.trailers
    );
    assert_eq!(first_value(&answer.trailers, "x-probe-tag"), Some("probe"));
    assert_eq!(
        first_value(&answer.trailers, "content-digest"),
        Some(sha256_digest(&answer.body).as_str())
    );
}

const BODY: &[u8] = b"a body with trailers after it\n";
const TRAILERS: &[(&str, &str)] = &[("x-checksum", "abc123"), ("x-client", "1")];

/// The `echo` service ends the chain: the request's trailers, after every
/// stage, come back as the response's, through every stage again.
#[test]
fn trailers_pass_every_kind_of_stage_to_echo_and_back() {
    let ws = Workspace::new();
    let composite = ws.compose(&format!(
        "{}\n[origin]\nname = \"echo\"\npath = \"{}\"\n",
        stages(),
        plugin("echo").display()
    ));
    let served = Served::with_args(&composite, &[]);
    let answer = send(served.addr, true, BODY, TRAILERS);
    // The request's trailers as echo got them: the client's and the
    // probe's `x-checksum-seen`.
    passed_every_stage(
        &answer,
        BODY,
        &["x-checksum", "x-client", "x-checksum-seen"],
    );
    assert_eq!(
        first_value(&answer.trailers, "x-checksum-seen"),
        Some("yes")
    );
    // Echo's text shows the request's head after the stages.
    let text = String::from_utf8_lossy(&answer.body);
    assert!(text.contains("x-chain-hop: add-header\n"), "{text}");
    assert!(text.contains("x-js: headers\n"), "{text}");
    assert!(text.contains("x-python: header-tag\n"), "{text}");

    // Over HTTP/1.1 (chunked, `te: trailers`): the request's trailers
    // pass the same, and the client gets the response trailers the head
    // names, as HTTP/1.1 has it: `content-digest`, which the plugin names.
    let answer = send(served.addr, false, BODY, TRAILERS);
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(
        first_value(&answer.headers, "x-probe-request-trailer"),
        Some("abc123")
    );
    assert_eq!(
        first_value(&answer.headers, "trailer"),
        Some("content-digest")
    );
    let names: Vec<&str> = answer.trailers.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(names, ["content-digest"]);
    assert_eq!(
        first_value(&answer.trailers, "content-digest"),
        Some(sha256_digest(&answer.body).as_str())
    );
}

/// The chain's own terminator over HTTP/1.1 and h2c, and the host's next
/// hop: the backend gets the request's trailers, and its own come back.
#[test]
fn trailers_pass_every_kind_of_stage_to_an_upstream_and_back() {
    let backend = TrailerPeer::start();
    let ws = Workspace::new();
    let stages = stages();
    let terminated = |scheme: &str, name: &str| {
        ws.compose_as(
            &format!(
                "{stages}\n[origin]\nupstream = \"{scheme}://{}\"\n",
                backend.addr
            ),
            name,
        )
    };
    let host = ws.compose_as(&format!("{stages}\n[origin]\nhost = true\n"), "host.wasm");
    // Whether the hop to the backend is HTTP/2: over HTTP/1.1, hyper sends
    // only the trailers the head names (`trailer`), so the one the probe
    // adds on the way stays behind there.
    let servers = [
        (
            "upstream http://",
            false,
            Served::with_args(&terminated("http", "h1.wasm"), &[]),
        ),
        (
            "upstream h2c://",
            true,
            Served::with_args(&terminated("h2c", "h2c.wasm"), &[]),
        ),
        (
            "--upstream h2c://",
            true,
            Served::with_args(&host, &["--upstream", &format!("h2c://{}", backend.addr)]),
        ),
        (
            "--upstream http://",
            false,
            Served::with_args(&host, &["--upstream", &format!("http://{}", backend.addr)]),
        ),
    ];
    for (how, http2, served) in &servers {
        let answer = send(served.addr, true, BODY, TRAILERS);
        let arrived = backend.next();
        assert_eq!(arrived.body, BODY, "{how}");
        let mut expected = vec![("x-checksum", "abc123"), ("x-client", "1")];
        if *http2 {
            expected.push(("x-checksum-seen", "yes"));
        }
        let got: Vec<(&str, &str)> = arrived
            .trailers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(got, expected, "{how}: the trailers the backend got");
        assert_eq!(
            first_value(&arrived.headers, "x-legacy-request"),
            Some("legacy"),
            "{how}"
        );
        let mut sent_back: Vec<&str> = expected.iter().map(|(k, _)| *k).collect();
        sent_back.push("x-backend");
        passed_every_stage(&answer, BODY, &sent_back);
        assert_eq!(
            first_value(&answer.headers, "x-upstream"),
            Some("yes"),
            "{how}"
        );
        assert_eq!(
            first_value(&answer.trailers, "x-backend"),
            Some("done"),
            "{how}"
        );
    }
}
