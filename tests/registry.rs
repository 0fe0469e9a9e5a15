//! Plugins through a real OCI registry (Debian's `docker-registry`, started
//! on a free loopback port): publish, pull, chains resolved by `oci://`,
//! the lock, the cache, and the faults on the way.

use crate::support::{Served, TestRegistry, Workspace, plugin, pwchain, run_in, stderr};
use std::path::Path;
use std::process::Output;

/// `pwchain` with its cache in `ws` and credentials only from the Docker
/// configuration in `docker` (none from the environment).
fn with_docker(ws: &Workspace, docker: &Path) -> std::process::Command {
    let mut command = pwchain();
    command
        .env("PWCHAIN_CACHE_DIR", ws.path("cache"))
        .env("DOCKER_CONFIG", docker)
        .env_remove("PWCHAIN_REGISTRY_USERNAME")
        .env_remove("PWCHAIN_REGISTRY_PASSWORD");
    command
}

fn publish(cache: &Path, file: &str, reference: &str) -> serde_json::Value {
    let output = run_in(
        cache,
        &[
            "publish",
            plugin(file).to_str().unwrap(),
            reference,
            "--json",
        ],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    serde_json::from_slice(&output.stdout).unwrap()
}

fn fails(output: &Output, expected: &[&str]) {
    let message = stderr(output);
    assert_eq!(output.status.code(), Some(1), "{message}");
    for piece in expected {
        assert!(message.contains(piece), "expected {piece:?} in:\n{message}");
    }
}

#[test]
fn chain_from_the_registry_runs_and_recomposes_offline() {
    let registry = TestRegistry::start();
    let ws = Workspace::new();
    let cache = ws.path("cache");
    let auth = publish(&cache, "auth", &registry.reference("acme/auth:1.0.0"));
    publish(&cache, "echo", &registry.reference("acme/echo:1.2.0"));
    assert_eq!(
        auth["layer_digest"].as_str().unwrap(),
        format!("sha256:{}", {
            use sha2::Digest;
            hex::encode(sha2::Sha256::digest(std::fs::read(plugin("auth")).unwrap()))
        })
    );

    let manifest = ws.write(
        "chain.toml",
        format!(
            "[[plugin]]\nname = \"auth\"\nsource = \"{}\"\n\n[origin]\nname = \"echo\"\nsource = \"{}\"\n",
            registry.reference("acme/auth:1.0.0"),
            registry.reference("acme/echo:1.2.0")
        ),
    );
    let out = ws.path("chain.wasm");
    let composed = run_in(
        &cache,
        &[
            "compose",
            manifest.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--json",
        ],
    );
    assert!(composed.status.success(), "{}", stderr(&composed));
    let summary: serde_json::Value = serde_json::from_slice(&composed.stdout).unwrap();
    let steps = summary["resolved"].as_array().unwrap();
    assert_eq!(steps.len(), 2, "{summary}");
    assert_eq!(steps[0]["name"], "auth");
    assert_eq!(steps[0]["manifest"], auth["manifest_digest"]);
    assert_eq!(steps[0]["from"], "registry");
    assert_eq!(steps[0]["pinned"], false);
    let lock = std::fs::read_to_string(ws.path("pwchain.lock")).unwrap();
    assert!(
        lock.contains(auth["manifest_digest"].as_str().unwrap()),
        "{lock}"
    );
    assert!(lock.contains("version = \"1.2.0\""), "{lock}");

    let served = Served::start(&out, &[]);
    let denied = served.request("GET", "/", &[], b"");
    assert_eq!(denied.status, 401);
    let answer = served.request("GET", "/x", &[("authorization", "Bearer let-me-in")], b"");
    assert_eq!(answer.status, 200);
    assert!(answer.text().starts_with("GET /x\n"));
    drop(served);

    // A composed chain is a component like any other: it publishes too.
    let chain_ref = registry.reference("acme/edge:0.1.0");
    let published = run_in(&cache, &["publish", out.to_str().unwrap(), &chain_ref]);
    assert!(published.status.success(), "{}", stderr(&published));
    let back = ws.path("edge.wasm");
    let pulled = run_in(&cache, &["pull", &chain_ref, "-o", back.to_str().unwrap()]);
    assert!(pulled.status.success(), "{}", stderr(&pulled));
    assert_eq!(std::fs::read(&back).unwrap(), std::fs::read(&out).unwrap());

    // Without the registry: the lock and the cache are enough.
    let first = std::fs::read(&out).unwrap();
    drop(registry);
    let again = run_in(
        &cache,
        &[
            "compose",
            manifest.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--offline",
            "--locked",
            "--json",
        ],
    );
    assert!(again.status.success(), "{}", stderr(&again));
    let summary: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    for step in summary["resolved"].as_array().unwrap() {
        assert_eq!(
            (&step["from"], &step["pinned"]),
            (&"cache".into(), &true.into())
        );
    }
    assert_eq!(
        std::fs::read(&out).unwrap(),
        first,
        "the same lock gives the same bytes"
    );

    // An empty cache cannot serve --offline.
    let empty = ws.path("empty-cache");
    let offline = run_in(
        &empty,
        &[
            "compose",
            manifest.to_str().unwrap(),
            "-o",
            ws.path("x.wasm").to_str().unwrap(),
            "--offline",
        ],
    );
    fails(
        &offline,
        &["chain.toml:3:10", "is not in the cache", "--offline"],
    );
    assert!(!ws.path("x.wasm").exists());
}

/// `publish --tag stable` points a channel at each version as it is
/// published; versions stay where they were.
#[test]
fn a_channel_tag_follows_each_publish() {
    let registry = TestRegistry::start();
    let ws = Workspace::new();
    let cache = ws.path("cache");
    let digest_at = |tag: &str| {
        let output = run_in(
            &cache,
            &[
                "pull",
                &registry.reference(&format!("acme/edge:{tag}")),
                "-o",
                ws.path(&format!("{tag}.wasm")).to_str().unwrap(),
                "--json",
            ],
        );
        assert!(output.status.success(), "{}", stderr(&output));
        let pulled: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        pulled["manifest_digest"].as_str().unwrap().to_string()
    };
    let publish_tagged = |file: &str, version: &str| {
        let output = run_in(
            &cache,
            &[
                "publish",
                plugin(file).to_str().unwrap(),
                &registry.reference(&format!("acme/edge:{version}")),
                "--tag",
                "stable",
                "--tag",
                "canary",
                "--json",
            ],
        );
        assert!(output.status.success(), "{}", stderr(&output));
        let published: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(published["tags"], serde_json::json!(["stable", "canary"]));
        published["manifest_digest"].as_str().unwrap().to_string()
    };
    let first = publish_tagged("add-header", "1.0.0");
    assert_eq!(digest_at("stable"), first);
    let second = publish_tagged("auth", "1.1.0");
    assert_ne!(first, second);
    assert_eq!(digest_at("stable"), second);
    assert_eq!(digest_at("canary"), second);
    assert_eq!(digest_at("1.0.0"), first);
}

#[test]
fn publish_and_pull_faults() {
    let registry = TestRegistry::start();
    let ws = Workspace::new();
    let cache = ws.path("cache");
    let reference = registry.reference("acme/tag:0.1.0");
    let published = publish(&cache, "add-header", &reference);

    // A version is not overwritten without --force.
    let again = run_in(
        &cache,
        &["publish", plugin("auth").to_str().unwrap(), &reference],
    );
    fails(&again, &["already exists", "--force"]);
    let forced = run_in(
        &cache,
        &[
            "publish",
            plugin("auth").to_str().unwrap(),
            &reference,
            "--force",
        ],
    );
    assert!(forced.status.success(), "{}", stderr(&forced));

    // Not a component, not a semver tag, not a reference.
    ws.write("core.wasm", wat::parse_str("(module)").unwrap());
    fails(
        &run_in(
            &cache,
            &[
                "publish",
                ws.path("core.wasm").to_str().unwrap(),
                &registry.reference("acme/core:1.0.0"),
            ],
        ),
        &["core WebAssembly module, not a component"],
    );
    fails(
        &run_in(
            &cache,
            &[
                "publish",
                plugin("auth").to_str().unwrap(),
                &registry.reference("acme/auth:latest"),
            ],
        ),
        &["must be a semver version", "latest", "--tag latest"],
    );
    // A channel is not a version, and a tag has a grammar.
    for (tag, expected) in [
        ("2.0.0", "is a version, and a version is not moved"),
        ("-edge", "is not a valid tag"),
        ("a/b", "is not a valid tag"),
    ] {
        fails(
            &run_in(
                &cache,
                &[
                    "publish",
                    plugin("auth").to_str().unwrap(),
                    &registry.reference("acme/auth:1.0.0"),
                    &format!("--tag={tag}"),
                ],
            ),
            &[expected],
        );
    }
    fails(
        &run_in(&cache, &["pull", "registry.example/acme/auth:1.0.0"]),
        &["must start with `oci://`"],
    );

    // Unknown tag, unknown repository, nothing listening.
    let out = ws.path("pulled.wasm");
    let out_arg = out.to_str().unwrap();
    fails(
        &run_in(
            &cache,
            &["pull", &registry.reference("acme/tag:9.9.9"), "-o", out_arg],
        ),
        &["acme/tag:9.9.9", "was not found", "it has: 0.1.0"],
    );
    fails(
        &run_in(
            &cache,
            &[
                "pull",
                &registry.reference("nobody/here:1.0.0"),
                "-o",
                out_arg,
            ],
        ),
        &["nobody/here:1.0.0", "was not found"],
    );
    let closed = crate::support::closed_port();
    fails(
        &run_in(
            &cache,
            &[
                "pull",
                &format!("oci://{closed}/acme/tag:0.1.0"),
                "-o",
                out_arg,
            ],
        ),
        &[&closed.to_string(), "is the registry running"],
    );
    // `.invalid` never resolves (RFC 2606), so this needs no network.
    fails(
        &run_in(
            &cache,
            &[
                "pull",
                "oci://no-such-registry.invalid/acme/tag:0.1.0",
                "-o",
                out_arg,
            ],
        ),
        &["no-such-registry.invalid", "does not resolve"],
    );
    assert!(!out.exists());

    // A blob whose bytes no longer match its digest is refused, and nothing
    // is written or cached.
    let old_layer = published["layer_digest"].as_str().unwrap();
    let auth = publish(&cache, "auth", &registry.reference("acme/tampered:1.0.0"));
    let layer = auth["layer_digest"].as_str().unwrap();
    assert_ne!(layer, old_layer);
    let file = registry.blob_file(layer);
    let mut bytes = std::fs::read(&file).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&file, bytes).unwrap();
    let tampered = run_in(
        &cache,
        &[
            "pull",
            &registry.reference("acme/tampered:1.0.0"),
            "-o",
            out_arg,
        ],
    );
    fails(&tampered, &["acme/tampered:1.0.0", "digest"]);
    assert!(!out.exists(), "a failed pull wrote its output");
    let listed = run_in(&cache, &["cache", "ls", "--json"]);
    let listed: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert!(
        !listed.to_string().contains(layer),
        "a failed pull left the blob in the cache"
    );

    // A good pull, by digest, verified and written.
    let by_digest = format!(
        "{}@{}",
        registry.reference("acme/tag"),
        published["manifest_digest"].as_str().unwrap()
    );
    let forced_digest = run_in(&cache, &["pull", &by_digest, "-o", out_arg]);
    assert!(forced_digest.status.success(), "{}", stderr(&forced_digest));
    assert_eq!(
        std::fs::read(&out).unwrap(),
        std::fs::read(plugin("add-header")).unwrap()
    );
}

#[test]
fn locked_fails_when_the_lock_would_change() {
    let registry = TestRegistry::start();
    let ws = Workspace::new();
    let cache = ws.path("cache");
    publish(&cache, "echo", &registry.reference("acme/echo:1.0.0"));
    publish(&cache, "echo", &registry.reference("acme/echo:1.1.0"));
    let write = |tag: &str| {
        ws.write(
            "chain.toml",
            format!(
                "[[plugin]]\nname = \"echo\"\nsource = \"{}\"\n",
                registry.reference(&format!("acme/echo:{tag}"))
            ),
        )
    };
    let manifest = write("1.0.0");
    let out = ws.path("c.wasm");
    let args = [
        "compose",
        manifest.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ];
    assert!(run_in(&cache, &args).status.success());
    write("1.1.0");
    let locked = run_in(&cache, &[&args[..], &["--locked"]].concat());
    fails(&locked, &["pwchain.lock", "would change", "--locked"]);
    assert!(run_in(&cache, &args).status.success());
    assert!(
        std::fs::read_to_string(ws.path("pwchain.lock"))
            .unwrap()
            .contains("1.1.0")
    );
}

#[test]
fn package_sources_pick_the_highest_matching_version() {
    let registry = TestRegistry::start();
    let ws = Workspace::new();
    let cache = ws.path("cache");
    let host = registry.addr.to_string();
    for version in ["1.0.0", "1.2.0", "2.0.0"] {
        let output = run_in(
            &cache,
            &[
                "publish",
                plugin("echo").to_str().unwrap(),
                &format!("acme:echo@{version}"),
                "--registry",
                &host,
            ],
        );
        assert!(output.status.success(), "{}", stderr(&output));
    }
    // The namespace's registry comes from the wkg configuration here.
    let wkg = ws.write(
        "wkg.toml",
        format!("[namespace_registries]\nacme = \"{host}\"\n"),
    );
    let compose = |requirement: &str| {
        let manifest = ws.write(
            "chain.toml",
            format!("[[plugin]]\nname = \"echo\"\npackage = \"acme:echo@{requirement}\"\n"),
        );
        pwchain()
            .env("PWCHAIN_CACHE_DIR", &cache)
            .env("WKG_CONFIG_FILE", &wkg)
            .env_remove("PWCHAIN_REGISTRY")
            .args([
                "compose",
                manifest.to_str().unwrap(),
                "-o",
                ws.path("c.wasm").to_str().unwrap(),
            ])
            .output()
            .unwrap()
    };
    let ok = compose("^1");
    assert!(ok.status.success(), "{}", stderr(&ok));
    let lock = std::fs::read_to_string(ws.path("pwchain.lock")).unwrap();
    assert!(lock.contains("version = \"1.2.0\""), "{lock}");
    assert!(
        lock.contains(&format!("resolved = \"oci://{host}/acme/echo:1.2.0\"")),
        "{lock}"
    );

    std::fs::remove_file(ws.path("pwchain.lock")).unwrap();
    let none = compose("^3");
    fails(
        &none,
        &[
            "chain.toml:3:11",
            "no published version of `acme:echo` satisfies `^3`",
            "1.0.0, 1.2.0, 2.0.0",
        ],
    );
}

#[test]
fn credentials_from_the_environment_or_docker_config() {
    let registry = TestRegistry::with_auth(Some(("ci", "s3cret-pass")));
    let ws = Workspace::new();
    let reference = registry.reference("acme/auth:1.0.0");
    let publish_with = |env: &[(&str, &str)]| {
        let mut command = with_docker(&ws, &ws.path("no-docker"));
        for (key, value) in env {
            command.env(key, value);
        }
        command
            .args(["publish", plugin("auth").to_str().unwrap(), &reference])
            .output()
            .unwrap()
    };

    let anonymous = publish_with(&[]);
    fails(
        &anonymous,
        &[
            "acme/auth:1.0.0",
            "401 Unauthorized",
            "PWCHAIN_REGISTRY_USERNAME",
        ],
    );
    let wrong = publish_with(&[
        ("PWCHAIN_REGISTRY_USERNAME", "ci"),
        ("PWCHAIN_REGISTRY_PASSWORD", "wrong-pass"),
    ]);
    fails(&wrong, &["acme/auth:1.0.0", "401 Unauthorized"]);
    assert!(
        !stderr(&wrong).contains("wrong-pass"),
        "a secret was printed"
    );

    let right = publish_with(&[
        ("PWCHAIN_REGISTRY_USERNAME", "ci"),
        ("PWCHAIN_REGISTRY_PASSWORD", "s3cret-pass"),
    ]);
    assert!(right.status.success(), "{}", stderr(&right));

    // Docker's config.json, as `docker login` leaves it.
    use base64::Engine as _;
    let docker = ws.path("docker");
    std::fs::create_dir_all(&docker).unwrap();
    let auth = base64::engine::general_purpose::STANDARD.encode("ci:s3cret-pass");
    std::fs::write(
        docker.join("config.json"),
        format!(
            "{{\"auths\":{{\"{}\":{{\"auth\":\"{auth}\"}}}}}}",
            registry.addr
        ),
    )
    .unwrap();
    let pulled = with_docker(&ws, &docker)
        .args([
            "pull",
            &reference,
            "-o",
            ws.path("auth.wasm").to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(pulled.status.success(), "{}", stderr(&pulled));
    assert!(!stderr(&pulled).contains("s3cret"), "a secret was printed");
}

#[test]
fn login_stores_credentials_where_docker_would() {
    use std::io::Write;
    let registry = TestRegistry::with_auth(Some(("ci", "an0ther-pass")));
    let ws = Workspace::new();
    let docker = ws.path("docker");
    let mut child = pwchain()
        .env("DOCKER_CONFIG", &docker)
        .args([
            "login",
            &registry.addr.to_string(),
            "-u",
            "ci",
            "--password-stdin",
        ])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"an0ther-pass\n")
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(!stderr(&output).contains("an0ther-pass"));

    let published = with_docker(&ws, &docker)
        .args([
            "publish",
            plugin("echo").to_str().unwrap(),
            &registry.reference("acme/echo:1.0.0"),
        ])
        .output()
        .unwrap();
    assert!(published.status.success(), "{}", stderr(&published));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(docker.join("config.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(
            mode & 0o077,
            0,
            "config.json must be readable by its owner only"
        );
    }
}

#[test]
fn an_artifact_that_is_not_wasm_is_refused() {
    use oci_client::client::{ClientConfig, ClientProtocol, Config, ImageLayer};
    let registry = TestRegistry::start();
    let ws = Workspace::new();
    // A container image layer, pushed by another tool.
    let reference: oci_client::Reference = format!("{}/acme/image:1.0.0", registry.addr)
        .parse()
        .unwrap();
    let client = oci_client::Client::new(ClientConfig {
        protocol: ClientProtocol::Http,
        ..Default::default()
    });
    let layer = ImageLayer::new(
        b"not wasm".to_vec(),
        "application/vnd.oci.image.layer.v1.tar".into(),
        None,
    );
    let config = Config::new(
        b"{}".to_vec(),
        "application/vnd.oci.image.config.v1+json".into(),
        None,
    );
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(client.push(
            &reference,
            &[layer],
            config,
            &oci_client::secrets::RegistryAuth::Anonymous,
            None,
        ))
        .unwrap();

    let out = ws.path("image.wasm");
    let cache = ws.path("cache");
    let pulled = run_in(
        &cache,
        &[
            "pull",
            &registry.reference("acme/image:1.0.0"),
            "-o",
            out.to_str().unwrap(),
        ],
    );
    fails(
        &pulled,
        &[
            "is not a wasm component artifact",
            "application/vnd.oci.image.layer.v1.tar",
        ],
    );
    assert!(!out.exists());
    let manifest = ws.write(
        "chain.toml",
        format!(
            "[[plugin]]\nname = \"x\"\nsource = \"{}\"\n",
            registry.reference("acme/image:1.0.0")
        ),
    );
    let composed = run_in(
        &cache,
        &[
            "compose",
            manifest.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ],
    );
    fails(
        &composed,
        &["chain.toml:3:10", "is not a wasm component artifact"],
    );
}

#[test]
fn docker_credential_helpers_are_asked() {
    let registry = TestRegistry::with_auth(Some(("helped", "from-helper")));
    let ws = Workspace::new();
    // A credential helper speaking Docker's protocol.
    let bin = ws.path("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let helper = bin.join("docker-credential-pwtest");
    std::fs::write(
        &helper,
        format!(
            "#!/bin/sh\n[ \"$1\" = get ] || exit 1\nread host\n[ \"$host\" = \"{}\" ] || exit 1\necho '{{\"ServerURL\":\"'$host'\",\"Username\":\"helped\",\"Secret\":\"from-helper\"}}'\n",
            registry.addr
        ),
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let docker = ws.path("docker");
    std::fs::create_dir_all(&docker).unwrap();
    std::fs::write(
        docker.join("config.json"),
        format!("{{\"credHelpers\":{{\"{}\":\"pwtest\"}}}}", registry.addr),
    )
    .unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let published = with_docker(&ws, &docker)
        .env("PATH", path)
        .args([
            "publish",
            plugin("echo").to_str().unwrap(),
            &registry.reference("acme/echo:1.0.0"),
        ])
        .output()
        .unwrap();
    assert!(published.status.success(), "{}", stderr(&published));
}

/// What pwchain publishes, wasm-pkg-client (the library behind `wkg`) reads,
/// and what wasm-pkg-client publishes, pwchain resolves and runs.
#[test]
fn artifacts_interoperate_with_wasm_pkg_client() {
    use futures_util::TryStreamExt;
    use wasm_pkg_client::{Client, Config, PackageRef, PublishOpts, Version};
    let registry = TestRegistry::start();
    let ws = Workspace::new();
    let cache = ws.path("cache");
    let host = registry.addr.to_string();
    let wkg = Client::new(
        Config::from_toml(&format!(
            "default_registry = \"{host}\"\n[registry.\"{host}\"]\ntype = \"oci\"\n[registry.\"{host}\".oci]\nprotocol = \"http\"\n"
        ))
        .unwrap(),
    );
    let runtime = tokio::runtime::Runtime::new().unwrap();

    // pwchain → wkg
    let output = run_in(
        &cache,
        &[
            "publish",
            plugin("echo").to_str().unwrap(),
            "interop:echo@1.0.0",
            "--registry",
            &host,
        ],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let echo: PackageRef = "interop:echo".parse().unwrap();
    let read = runtime.block_on(async {
        let versions = wkg.list_all_versions(&echo).await.unwrap();
        let listed: Vec<String> = versions.iter().map(|v| v.version.to_string()).collect();
        assert_eq!(listed, ["1.0.0"]);
        let release = wkg
            .get_release(&echo, &Version::new(1, 0, 0))
            .await
            .unwrap();
        let chunks: Vec<_> = wkg
            .stream_content(&echo, &release)
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        chunks.concat()
    });
    assert_eq!(read, std::fs::read(plugin("echo")).unwrap());

    // wkg → pwchain. `Client::publish_release_file` (wasm-pkg-client
    // 0.16.1) reads the package version from the component's WIT before it
    // applies `PublishOpts::package`, so it refuses every component built
    // from a world of another package (all of ours, and wit-bindgen's
    // usual output). This pushes the way its OCI backend does: oci-wasm's
    // config and layer, pushed by oci-wasm's client.
    let pass = std::fs::read(plugin("pass")).unwrap();
    let (config, layer) = oci_wasm::WasmConfig::from_raw_component(pass.clone(), None).unwrap();
    let oci =
        oci_wasm::WasmClient::new(oci_client::Client::new(oci_client::client::ClientConfig {
            protocol: oci_client::client::ClientProtocol::Http,
            ..Default::default()
        }));
    let reference: oci_client::Reference = format!("{host}/interop/pass:2.1.0").parse().unwrap();
    runtime
        .block_on(oci.push(
            &reference,
            &oci_client::secrets::RegistryAuth::Anonymous,
            layer,
            config,
            None,
        ))
        .unwrap();
    let refused = runtime.block_on(wkg.publish_release_file(
        plugin("pass"),
        PublishOpts {
            package: Some(("interop:pass".parse().unwrap(), Version::new(2, 2, 0))),
            ..Default::default()
        },
    ));
    assert!(
        refused.is_err(),
        "wasm-pkg-client now publishes plain components: push with it instead of oci-wasm"
    );
    let pulled = ws.path("pass.wasm");
    let output = run_in(
        &cache,
        &[
            "pull",
            &registry.reference("interop/pass:2.1.0"),
            "-o",
            pulled.to_str().unwrap(),
        ],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(std::fs::read(&pulled).unwrap(), pass);
    let manifest = ws.write(
        "chain.toml",
        "[[plugin]]\nname = \"pass\"\npackage = \"interop:pass@^2\"\n\n[origin]\nname = \"echo\"\npackage = \"interop:echo@1\"\n",
    );
    let composite = ws.path("chain.wasm");
    let output = pwchain()
        .env("PWCHAIN_CACHE_DIR", &cache)
        .env("PWCHAIN_REGISTRY", &host)
        .args([
            "compose",
            manifest.to_str().unwrap(),
            "-o",
            composite.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let served = Served::start(&composite, &[]);
    let response = served.request("GET", "/interop", &[], b"");
    assert_eq!(response.status, 200, "{}", response.text());
}

/// The registry dies while the layer is on the wire: the pull fails with a
/// clear error, and neither the output nor the cache holds a partial file.
#[test]
fn a_registry_killed_mid_pull_leaves_nothing_behind() {
    use std::io::{Read, Write};
    use std::net::{Shutdown, TcpListener, TcpStream};
    let registry = TestRegistry::start();
    let ws = Workspace::new();
    let cache = ws.path("cache");
    publish(
        &cache,
        "rewrite-body",
        &registry.reference("acme/body:1.0.0"),
    );
    let _ = std::fs::remove_dir_all(&cache);

    // A relay in front of the registry: it passes traffic through until a
    // blob response has sent its first 4 KiB, then kills the registry and
    // drops the connection.
    let relay = TcpListener::bind("127.0.0.1:0").unwrap();
    let relay_addr = relay.local_addr().unwrap();
    let (upstream, pid) = (registry.addr, registry.pid());
    std::thread::spawn(move || {
        for client in relay.incoming() {
            let Ok(mut client) = client else { return };
            let Ok(mut server) = TcpStream::connect(upstream) else {
                return;
            };
            let blob = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            let (mut to_server, seen) = (client.try_clone().unwrap(), blob.clone());
            let mut from_client = server.try_clone().unwrap();
            std::thread::spawn(move || {
                let mut buf = [0u8; 8192];
                while let Ok(n @ 1..) = to_server.read(&mut buf) {
                    if String::from_utf8_lossy(&buf[..n]).contains("/blobs/sha256:") {
                        seen.store(true, std::sync::atomic::Ordering::SeqCst);
                    }
                    if from_client.write_all(&buf[..n]).is_err() {
                        return;
                    }
                }
            });
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n @ 1..) = server.read(&mut buf) {
                    if client.write_all(&buf[..n]).is_err() {
                        return;
                    }
                    if blob.load(std::sync::atomic::Ordering::SeqCst) {
                        let _ = std::process::Command::new("kill")
                            .args(["-9", &pid.to_string()])
                            .status();
                        let _ = client.shutdown(Shutdown::Both);
                        return;
                    }
                }
            });
        }
    });

    let out = ws.path("body.wasm");
    let output = run_in(
        &cache,
        &[
            "pull",
            &format!("oci://{relay_addr}/acme/body:1.0.0"),
            "-o",
            out.to_str().unwrap(),
        ],
    );
    let message = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{message}");
    assert!(message.contains(&relay_addr.to_string()), "{message}");
    assert!(message.contains("retrying is safe"), "{message}");
    assert!(!out.exists());
    assert!(ws.files().iter().all(|f| f == "cache"), "{:?}", ws.files());
    let cached: Vec<_> = walk(&cache);
    assert!(cached.is_empty(), "cache holds {cached:?}");
}

/// Every file under `dir` (none if it does not exist).
fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .flat_map(|e| {
            let path = e.path();
            if path.is_dir() {
                walk(&path)
            } else {
                vec![path]
            }
        })
        .collect()
}
