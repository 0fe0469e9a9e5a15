//! Signed plugins against a real registry (Debian's `docker-registry`):
//! keys, `sign`, `publish --sign`, `verify`, `trust` in a chain, the lock
//! and the offline cache; sigstore-rs's own cosign client checks what
//! pwchain signs and signs what pwchain checks; and the attacks a `trust`
//! list exists to stop.

use crate::support::{TestRegistry, Workspace, plugin, pwchain, stderr};
use std::path::{Path, PathBuf};
use std::process::Output;

const PASSWORD: &str = "correct horse";

/// `pwchain ARGS` with its cache in `ws/cache` and the key password set.
fn pw(ws: &Workspace, args: &[&str]) -> Output {
    pw_with(ws, PASSWORD, args)
}

fn pw_with(ws: &Workspace, password: &str, args: &[&str]) -> Output {
    pwchain()
        .env("PWCHAIN_CACHE_DIR", ws.path("cache"))
        .env("PWCHAIN_PASSWORD", password)
        .env_remove("COSIGN_PASSWORD")
        .args(args)
        .output()
        .expect("run pwchain")
}

fn ok(output: Output) -> Output {
    assert!(output.status.success(), "{}", stderr(&output));
    output
}

fn json(output: Output) -> serde_json::Value {
    serde_json::from_slice(&ok(output).stdout).expect("JSON on stdout")
}

/// Expects a failure whose message holds every piece of `expected`.
fn refused(output: &Output, expected: &[&str]) -> String {
    let message = stderr(output);
    assert_eq!(output.status.code(), Some(1), "{message}");
    for piece in expected {
        assert!(message.contains(piece), "expected {piece:?} in:\n{message}");
    }
    message
}

/// `pwchain key generate --out ws/keys/NAME`; returns the fingerprint.
fn keypair(ws: &Workspace, name: &str) -> String {
    std::fs::create_dir_all(ws.path("keys")).unwrap();
    let out = ws.path("keys").join(name);
    let made = ok(pw(ws, &["key", "generate", "--out", out.to_str().unwrap()]));
    String::from_utf8(made.stdout).unwrap().trim().to_string()
}

fn key(ws: &Workspace, file: &str) -> PathBuf {
    ws.path("keys").join(file)
}

fn publish(ws: &Workspace, name: &str, reference: &str, sign: Option<&str>) -> serde_json::Value {
    let file = plugin(name);
    let mut args = vec!["publish", file.to_str().unwrap(), reference, "--json"];
    let key = sign.map(|k| key(ws, k));
    if let Some(key) = &key {
        args.extend(["--sign", key.to_str().unwrap()]);
    }
    json(pw(ws, &args))
}

/// A chain of `auth` from `reference` in front of the local `echo`, with
/// `trust` as given (TOML, e.g. `["keys/acme.pub"]`).
fn chain(ws: &Workspace, reference: &str, trust: &str) -> PathBuf {
    ws.write(
        "chain.toml",
        format!(
            "[chain]\nname = \"signed\"\ntrust = {trust}\n\n[[plugin]]\nname = \"auth\"\nsource = \"{reference}\"\n\n[origin]\npath = \"{}\"\n",
            plugin("echo").display()
        ),
    )
}

fn compose(ws: &Workspace, manifest: &Path, extra: &[&str]) -> Output {
    let out = ws.path("chain.wasm");
    let mut args = vec![
        "compose",
        manifest.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--json",
    ];
    args.extend(extra);
    pw(ws, &args)
}

#[test]
fn signed_plugins_compose_are_recorded_and_recompose_offline() {
    let registry = TestRegistry::start();
    let ws = Workspace::new();
    let acme = keypair(&ws, "acme");
    assert!(acme.starts_with("sha256:") && acme.len() == 71, "{acme}");
    let private = std::fs::read_to_string(key(&ws, "acme.key")).unwrap();
    assert!(private.starts_with("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(key(&ws, "acme.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "the private key is the owner's only");
    }
    // A pair is not replaced by accident.
    refused(
        &pw(
            &ws,
            &[
                "key",
                "generate",
                "--out",
                ws.path("keys/acme").to_str().unwrap(),
            ],
        ),
        &["acme.key` exists", "--force"],
    );

    let reference = registry.reference("acme/auth:1.0.0");
    let published = publish(&ws, "auth", &reference, Some("acme.key"));
    let manifest = published["manifest_digest"].as_str().unwrap().to_string();
    assert_eq!(published["signed"]["key"], acme.as_str());

    let checked = json(pw(
        &ws,
        &[
            "verify",
            &reference,
            "--key",
            key(&ws, "acme.pub").to_str().unwrap(),
            "--json",
        ],
    ));
    assert_eq!(checked["manifest"], manifest.as_str());
    assert_eq!(checked["verified"]["key"], acme.as_str());

    let toml = chain(&ws, &reference, "[\"keys/acme.pub\"]");
    let composed = json(compose(&ws, &toml, &[]));
    assert_eq!(composed["resolved"][0]["verified"]["key"], acme.as_str());
    let lock = std::fs::read_to_string(ws.path("pwchain.lock")).unwrap();
    assert!(lock.contains(&format!("key = \"{acme}\"")), "{lock}");
    assert!(lock.contains("key_file = \"keys/acme.pub\""), "{lock}");

    // The composite says which plugin a key vouched for.
    let chain_wasm = ws.path("chain.wasm");
    let inspected = json(pw(
        &ws,
        &["inspect", chain_wasm.to_str().unwrap(), "--json"],
    ));
    let stage = &inspected["chain"]["plugins"][0];
    assert_eq!(stage["name"], "auth");
    assert_eq!(stage["verified"]["key"], acme.as_str());
    let text = ok(pw(&ws, &["inspect", chain_wasm.to_str().unwrap()]));
    assert!(
        String::from_utf8_lossy(&text.stdout)
            .contains(&format!("signed by keys/acme.pub ({acme})")),
        "{}",
        String::from_utf8_lossy(&text.stdout)
    );

    // The registry gone: the lock, the blobs and the cached signatures are
    // enough, and verification still runs.
    let first = std::fs::read(&chain_wasm).unwrap();
    drop(registry);
    let again = json(compose(&ws, &toml, &["--offline", "--locked"]));
    assert_eq!(again["resolved"][0]["verified"]["key"], acme.as_str());
    assert_eq!(std::fs::read(&chain_wasm).unwrap(), first);

    // A cached signature someone edited no longer verifies offline.
    let cached = ws
        .path("cache/signatures")
        .join(format!("{}.json", manifest.replacen(':', "-", 1)));
    let text = std::fs::read_to_string(&cached).unwrap();
    std::fs::write(&cached, text.replace("auth", "aut0")).unwrap();
    let message = refused(
        &compose(&ws, &toml, &["--offline", "--locked"]),
        &[
            "plugin `auth`",
            "is not trusted",
            "keys/acme.pub",
            "tampered",
        ],
    );
    assert!(message.contains("chain.toml:"), "{message}");
    std::fs::remove_file(&cached).unwrap();
    refused(
        &compose(&ws, &toml, &["--offline", "--locked"]),
        &["(its signatures)", "--offline"],
    );
    assert_eq!(
        std::fs::read(&chain_wasm).unwrap(),
        first,
        "nothing written"
    );
}

#[tokio::test]
async fn sigstore_rs_verifies_what_pwchain_signs_and_the_reverse() {
    use sigstore::cosign::verification_constraint::{PublicKeyVerifier, VerificationConstraintVec};
    use sigstore::cosign::{ClientBuilder, Constraint, CosignCapabilities, SignatureLayer};
    use sigstore::crypto::signing_key::SigStoreKeyPair;
    use sigstore::crypto::signing_key::ecdsa::{ECDSAKeys, EllipticCurve};
    use sigstore::registry::{Auth, ClientConfig, ClientProtocol, OciReference};

    let registry = TestRegistry::start();
    let ws = Workspace::new();
    keypair(&ws, "acme");
    let reference = registry.reference("acme/auth:1.0.0");
    let published = publish(&ws, "auth", &reference, Some("acme.key"));
    let image: OciReference = reference.trim_start_matches("oci://").parse().unwrap();
    let mut client = ClientBuilder::default()
        .with_oci_client_config(ClientConfig {
            protocol: ClientProtocol::Http,
            ..Default::default()
        })
        .build()
        .unwrap();

    // What pwchain signed, sigstore-rs's cosign client finds and verifies.
    let (signature_image, digest) = client.triangulate(&image, &Auth::Anonymous).await.unwrap();
    assert_eq!(digest, published["manifest_digest"].as_str().unwrap());
    assert!(
        signature_image
            .to_string()
            .ends_with(&format!("{}.sig", digest.replacen(':', "-", 1)))
    );
    let layers = client
        .trusted_signature_layers(&Auth::Anonymous, &image)
        .await
        .unwrap();
    assert_eq!(layers.len(), 1);
    let acme = std::fs::read(key(&ws, "acme.pub")).unwrap();
    let constraints: VerificationConstraintVec =
        vec![Box::new(PublicKeyVerifier::try_from(&acme[..]).unwrap())];
    sigstore::cosign::verify_constraints(&layers, constraints.iter())
        .expect("sigstore-rs verifies pwchain's signature");

    // The reverse: a key pair and a signature made by sigstore-rs alone.
    let pair = SigStoreKeyPair::ECDSA(ECDSAKeys::new(EllipticCurve::P256).unwrap());
    ws.write(
        "keys/vendor.key",
        pair.private_key_to_encrypted_pem(PASSWORD.as_bytes())
            .unwrap()
            .as_bytes(),
    );
    ws.write("keys/vendor.pub", pair.public_key_to_pem().unwrap());
    let other = registry.reference("vendor/header:2.0.0");
    publish(&ws, "add-header", &other, None);
    let other_image: OciReference = other.trim_start_matches("oci://").parse().unwrap();
    let (other_signatures, other_digest) = client
        .triangulate(&other_image, &Auth::Anonymous)
        .await
        .unwrap();
    let mut layer = SignatureLayer::new_unsigned(&other_image, &other_digest).unwrap();
    let signer = sigstore::cosign::constraint::PrivateKeySigner::new_with_signer(
        pair.to_sigstore_signer(&sigstore::crypto::SigningScheme::ECDSA_P256_SHA256_ASN1)
            .unwrap(),
    );
    assert!(signer.add_constraint(&mut layer).unwrap());
    client
        .push_signature(None, &Auth::Anonymous, &other_signatures, vec![layer])
        .await
        .unwrap();

    let vendor_pub = key(&ws, "vendor.pub");
    let checked = json(pw(
        &ws,
        &[
            "verify",
            &other,
            "--key",
            vendor_pub.to_str().unwrap(),
            "--json",
        ],
    ));
    assert_eq!(checked["manifest"], other_digest.as_str());
    // And pwchain signs with sigstore-rs's private key file, which
    // sigstore-rs then verifies beside its own signature.
    let vendor_key = key(&ws, "vendor.key");
    ok(pw(
        &ws,
        &["sign", &reference, "--key", vendor_key.to_str().unwrap()],
    ));
    let layers = client
        .trusted_signature_layers(&Auth::Anonymous, &image)
        .await
        .unwrap();
    assert_eq!(
        layers.len(),
        2,
        "cosign's layers are kept, the new one added"
    );
    let vendor = std::fs::read(&vendor_pub).unwrap();
    let constraints: VerificationConstraintVec =
        vec![Box::new(PublicKeyVerifier::try_from(&vendor[..]).unwrap())];
    sigstore::cosign::verify_constraints(&layers, constraints.iter())
        .expect("sigstore-rs verifies pwchain's signature with its own key");
}

#[test]
fn untrusted_plugins_are_refused_naming_the_plugin_and_the_key() {
    let registry = TestRegistry::start();
    let ws = Workspace::new();
    let acme = keypair(&ws, "acme");
    keypair(&ws, "mallory");
    let trust = "[\"keys/acme.pub\"]";
    let output = ws.path("chain.wasm");
    // Each refusal: exit 1, the plugin and the key named, nothing written.
    let refuses = |reference: &str, fresh_cache: bool, expected: &[&str]| {
        if fresh_cache {
            let _ = std::fs::remove_dir_all(ws.path("cache"));
        }
        let toml = chain(&ws, reference, trust);
        let message = refused(
            &compose(&ws, &toml, &[]),
            &[
                &["plugin `auth`", "is not trusted", "keys/acme.pub", &acme][..],
                expected,
            ]
            .concat(),
        );
        assert!(!output.exists(), "no composite after: {message}");
        assert!(
            !ws.path("pwchain.lock").exists(),
            "no lock after: {message}"
        );
    };

    // Unsigned.
    let unsigned = registry.reference("acme/auth:0.1.0");
    publish(&ws, "auth", &unsigned, None);
    refuses(&unsigned, false, &["is not signed", "pwchain sign"]);

    // Signed, by another key.
    let theirs = registry.reference("acme/auth:0.2.0");
    publish(&ws, "auth", &theirs, Some("mallory.key"));
    refuses(
        &theirs,
        false,
        &["none of its 1 signature(s) was made by a trusted key"],
    );

    // A good signature replayed onto another artifact of the repository.
    let good = registry.reference("acme/auth:1.0.0");
    let signed = publish(&ws, "auth", &good, Some("acme.key"));
    let evil = registry.reference("acme/auth:1.0.1");
    let evil_digest = publish(&ws, "add-header", &evil, None)["manifest_digest"]
        .as_str()
        .unwrap()
        .to_string();
    let signature_manifest = signed["signed"]["signature_manifest"].as_str().unwrap();
    copy_manifest(
        &registry,
        "acme/auth",
        signature_manifest,
        &format!("{}.sig", evil_digest.replacen(':', "-", 1)),
    );
    refuses(
        &evil,
        false,
        &["replayed", signed["manifest_digest"].as_str().unwrap()],
    );

    // The payload blob changed on the registry's disk.
    let tampered = registry.reference("acme/auth:1.1.0");
    let signed = publish(&ws, "auth", &tampered, Some("acme.key"));
    let payload = registry.blob_file(signed["signed"]["signature"].as_str().unwrap());
    let text = std::fs::read_to_string(&payload).unwrap();
    std::fs::write(&payload, text.replace("acme/auth", "acme/autx")).unwrap();
    let toml = chain(&ws, &tampered, trust);
    let _ = std::fs::remove_dir_all(ws.path("cache"));
    refused(
        &compose(&ws, &toml, &[]),
        &[
            "plugin `auth`",
            "1 of them damaged or tampered with",
            "keys/acme.pub",
        ],
    );
    assert!(!output.exists() && !ws.path("pwchain.lock").exists());

    // The signature itself changed on the registry's disk.
    let forged = registry.reference("acme/auth:1.2.0");
    let signed = publish(&ws, "auth", &forged, Some("acme.key"));
    let manifest = registry.blob_file(signed["signed"]["signature_manifest"].as_str().unwrap());
    let text = std::fs::read_to_string(&manifest).unwrap();
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    let signature = value["layers"][0]["annotations"]["dev.cosignproject.cosign/signature"]
        .as_str()
        .unwrap();
    let flipped = format!(
        "{}{}",
        &signature[..10],
        signature[10..].replacen(
            &signature[10..11],
            if &signature[10..11] == "A" { "B" } else { "A" },
            1,
        )
    );
    std::fs::write(&manifest, text.replace(signature, &flipped)).unwrap();
    refuses(
        &forged,
        true,
        &["its signatures cannot be read", "Invalid digest"],
    );

    // What stands in `trust` must be a public key.
    let good_toml = chain(&ws, &good, "[\"keys/acme.key\"]");
    let message = refused(
        &compose(&ws, &good_toml, &[]),
        &[
            "plugin `auth`",
            "keys/acme.key",
            "is not a public key",
            "private key",
        ],
    );
    assert!(message.contains("chain.toml:3:"), "{message}");
    let good_toml = chain(&ws, &good, "[\"keys/absent.pub\"]");
    refused(
        &compose(&ws, &good_toml, &[]),
        &["plugin `auth`", "keys/absent.pub"],
    );
    assert!(!output.exists());

    // A wrong password signs nothing.
    let fresh = registry.reference("acme/auth:2.0.0");
    publish(&ws, "auth", &fresh, None);
    let acme_key = key(&ws, "acme.key");
    refused(
        &pw_with(
            &ws,
            "wrong",
            &["sign", &fresh, "--key", acme_key.to_str().unwrap()],
        ),
        &["acme.key", "wrong password"],
    );
    let third = registry.reference("acme/auth:2.0.1");
    refused(
        &pw_with(
            &ws,
            "wrong",
            &[
                "publish",
                plugin("auth").to_str().unwrap(),
                &third,
                "--sign",
                acme_key.to_str().unwrap(),
            ],
        ),
        &["wrong password"],
    );
    let acme_pub = key(&ws, "acme.pub");
    refused(
        &pw(
            &ws,
            &["verify", &fresh, "--key", acme_pub.to_str().unwrap()],
        ),
        &["is not signed"],
    );
    refused(
        &pw(
            &ws,
            &["verify", &third, "--key", acme_pub.to_str().unwrap()],
        ),
        &["not found"],
    );

    // `trust` on a local file: said, not checked.
    let toml = ws.write(
        "chain.toml",
        format!(
            "[[plugin]]\nname = \"auth\"\npath = \"{}\"\ntrust = [\"keys/acme.pub\"]\n\n[origin]\npath = \"{}\"\n",
            plugin("auth").display(),
            plugin("echo").display()
        ),
    );
    let composed = ok(compose(&ws, &toml, &[]));
    let warned = stderr(&composed);
    assert!(
        warned.contains("plugin `auth` is a local file, so its `trust` is not checked"),
        "{warned}"
    );
}

/// Puts the manifest `digest` of `repository` under `tag` as well, as an
/// attacker with push rights would.
fn copy_manifest(registry: &TestRegistry, repository: &str, digest: &str, tag: &str) {
    use oci_client::client::{ClientConfig, ClientProtocol};
    use oci_client::secrets::RegistryAuth;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let client = oci_client::Client::new(ClientConfig {
            protocol: ClientProtocol::Http,
            ..Default::default()
        });
        let from: oci_client::Reference = format!("{}/{repository}@{digest}", registry.addr)
            .parse()
            .unwrap();
        let to: oci_client::Reference = format!("{}/{repository}:{tag}", registry.addr)
            .parse()
            .unwrap();
        let (raw, _) = client
            .pull_manifest_raw(
                &from,
                &RegistryAuth::Anonymous,
                &["application/vnd.oci.image.manifest.v1+json"],
            )
            .await
            .unwrap();
        client
            .push_manifest_raw(
                &to,
                raw,
                hyper::header::HeaderValue::from_static(
                    "application/vnd.oci.image.manifest.v1+json",
                ),
            )
            .await
            .unwrap();
    });
}
