//! OCI registries: publishing a component as a CNCF Wasm OCI artifact and
//! pulling one back, digest-verified.
//!
//! An artifact is an OCI image manifest (media type set explicitly) with a
//! `application/vnd.wasm.config.v0+json` config and one `application/wasm`
//! layer. Plain HTTP is used only for registries on loopback or named in
//! `PWCHAIN_INSECURE_REGISTRIES`; credentials come from
//! `PWCHAIN_REGISTRY_USERNAME`/`_PASSWORD` or Docker's `config.json`.

use crate::digest::digest;
use crate::error::RegistryError;
use crate::inspect::Inspection;
use crate::oci::signing::Signature;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::manifest::{OciDescriptor, OciImageManifest};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use serde::Serialize;
use std::collections::BTreeMap;

/// The manifest type of a Wasm OCI artifact.
pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
/// The config type of a Wasm OCI artifact.
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.wasm.config.v0+json";
/// The layer type of a component.
pub const LAYER_MEDIA_TYPE: &str = "application/wasm";

/// A parsed `oci://host[:port]/repository(:tag|@digest)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OciRef(Reference);

impl std::str::FromStr for OciRef {
    type Err = RegistryError;

    fn from_str(text: &str) -> Result<OciRef, RegistryError> {
        let bad = |reason: &str| RegistryError::BadReference {
            reference: text.to_string(),
            reason: reason.to_string(),
        };
        let rest = text
            .strip_prefix("oci://")
            .ok_or_else(|| bad("it must start with `oci://`"))?;
        let host = rest.split('/').next().unwrap_or_default();
        if host.is_empty() || !rest.contains('/') {
            return Err(bad("expected oci://HOST[:PORT]/NAMESPACE/NAME:VERSION"));
        }
        let reference: Reference = rest.parse().map_err(|e| bad(&format!("{e}")))?;
        if reference.registry() != host {
            return Err(bad("the registry host must be given explicitly"));
        }
        if reference.tag().is_none() && reference.digest().is_none() {
            return Err(bad(
                "it names no version (`:1.2.0`) or digest (`@sha256:…`)",
            ));
        }
        Ok(OciRef(reference))
    }
}

impl std::fmt::Display for OciRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "oci://{}", self.0.whole())
    }
}

impl OciRef {
    /// `host[:port]`.
    pub fn registry(&self) -> &str {
        self.0.registry()
    }

    /// The path after the host.
    pub fn repository(&self) -> &str {
        self.0.repository()
    }

    /// The tag, if the reference has one.
    pub fn tag(&self) -> Option<&str> {
        self.0.tag()
    }

    /// The same repository at `tag`.
    pub fn at_tag(&self, tag: &str) -> OciRef {
        OciRef(Reference::with_tag(
            self.0.registry().to_string(),
            self.0.repository().to_string(),
            tag.to_string(),
        ))
    }

    /// The same repository, pinned to manifest `digest`.
    pub fn at_digest(&self, digest: &str) -> OciRef {
        OciRef(Reference::with_digest(
            self.0.registry().to_string(),
            self.0.repository().to_string(),
            digest.to_string(),
        ))
    }
}

/// What an artifact holds, described in its config blob.
#[derive(Debug, Clone, Copy)]
pub enum Contents<'a> {
    /// A component, with what it is.
    Component(&'a Inspection),
    /// A legacy proxy-wasm module, for `proxy-wasm = "oci://…"`.
    ProxyWasm(&'a crate::proxy_wasm::LegacyModule),
}

/// A component fetched from a registry.
#[derive(Debug, Clone)]
pub struct Pulled {
    /// The digest of the manifest pulled.
    pub manifest_digest: String,
    /// The digest of the component layer.
    pub layer_digest: String,
    /// The component.
    pub bytes: Vec<u8>,
}

/// Digests of a published artifact.
#[derive(Debug, Clone, Serialize)]
pub struct Published {
    /// Where it was published.
    pub reference: String,
    /// The manifest's digest.
    pub manifest_digest: String,
    /// The component layer's digest.
    pub layer_digest: String,
    /// The component's size in bytes.
    pub size: usize,
    /// The channel tags (`stable`, …) now pointing at it too.
    pub tags: Vec<String>,
}

/// Reports a transfer's progress: what, bytes done, bytes in all.
pub type Progress = std::sync::Arc<dyn Fn(&str, u64, u64) + Send + Sync>;

/// A registry client, with its own small runtime so callers stay sync.
pub struct Registry {
    insecure: Vec<String>,
    runtime: tokio::runtime::Runtime,
    progress: Option<Progress>,
}

impl Registry {
    /// A client with credentials from the environment and Docker's configuration.
    pub fn new() -> Result<Registry, RegistryError> {
        let insecure: Vec<String> = std::env::var("PWCHAIN_INSECURE_REGISTRIES")
            .map(|v| {
                v.split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| RegistryError::Remote {
                reference: String::new(),
                message: format!("cannot start a runtime: {e}"),
            })?;
        Ok(Registry {
            insecure,
            runtime,
            progress: None,
        })
    }

    /// Reports blob transfers to `progress`.
    pub fn with_progress(mut self, progress: Option<Progress>) -> Registry {
        self.progress = progress;
        self
    }

    /// Uploads `blob`, in chunks that are reported when there is a reporter.
    async fn push_blob(
        &self,
        client: &Client,
        reference: &OciRef,
        blob: Vec<u8>,
        digest: &str,
        what: &str,
    ) -> Result<(), oci_client::errors::OciDistributionError> {
        let Some(progress) = self.progress.clone() else {
            return client.push_blob(&reference.0, blob, digest).await.map(drop);
        };
        const CHUNK: usize = 1 << 20;
        let total = blob.len() as u64;
        let blob = bytes::Bytes::from(blob);
        let label = format!("{what} {reference}");
        let chunks = (0..blob.len()).step_by(CHUNK).map(move |start| {
            let end = (start + CHUNK).min(blob.len());
            progress(&label, end as u64, total);
            Ok(blob.slice(start..end))
        });
        client
            .push_blob_stream(&reference.0, futures_util::stream::iter(chunks), digest)
            .await
            .map(drop)
    }

    /// A client for `registry`: plain HTTP only on loopback or when the
    /// registry is listed in `PWCHAIN_INSECURE_REGISTRIES`.
    fn client(&self, registry: &str) -> Client {
        let host = registry.rsplit_once(':').map_or(registry, |(host, _)| host);
        let plain = matches!(host, "localhost" | "127.0.0.1" | "[::1]")
            || self.insecure.iter().any(|i| i == registry || i == host);
        let protocol = if plain {
            ClientProtocol::HttpsExcept(vec![registry.to_string()])
        } else {
            ClientProtocol::Https
        };
        // The TLS stack's crypto is ring's, for the whole process; an
        // embedder that installed another keeps it.
        let _ = rustls::crypto::ring::default_provider().install_default();
        Client::new(ClientConfig {
            protocol,
            ..Default::default()
        })
    }

    /// Publishes `component` at `reference` (which must carry a tag), then
    /// points each of `channels` (other tags of the repository) at the same
    /// manifest, wherever they pointed before.
    pub fn publish(
        &self,
        reference: &OciRef,
        component: &[u8],
        contents: Contents<'_>,
        annotations: BTreeMap<String, String>,
        force: bool,
        channels: &[String],
    ) -> Result<Published, RegistryError> {
        let remote = remote_error(reference);
        let auth = credentials(reference.registry());
        let client = self.client(reference.registry());
        self.runtime.block_on(async {
            client.store_auth_if_needed(reference.registry(), &auth).await;
            if !force
                && let Ok(existing) = client.fetch_manifest_digest(&reference.0, &auth).await
            {
                return Err(RegistryError::Exists {
                    reference: reference.to_string(),
                    digest: existing,
                });
            }
            let layer_digest = digest(component);
            let mut config = serde_json::json!({
                "created": annotations.get("org.opencontainers.image.created"),
                "architecture": "wasm",
                "layerDigests": [layer_digest],
            });
            match contents {
                Contents::Component(info) => {
                    config["os"] = "wasip2".into();
                    config["component"] = serde_json::json!({
                        "exports": info.other_exports.iter().chain(&info.entry).collect::<Vec<_>>(),
                        "imports": info.host_imports.iter().chain(&info.side_calls).chain(info.next_hop.iter().map(|h| &h.import)).collect::<Vec<_>>(),
                        "role": info.role,
                    });
                }
                Contents::ProxyWasm(module) => {
                    config["os"] = if module.wasi.is_empty() { "unknown" } else { "wasip1" }.into();
                    config["proxyWasm"] = serde_json::json!({
                        "abi": module.abi,
                        "hostcalls": module.hostcalls,
                        "callbacks": module.callbacks,
                    });
                }
            }
            let config = serde_json::to_vec(&config).expect("config serialises");
            let config_digest = digest(&config);
            let manifest = OciImageManifest {
                schema_version: 2,
                media_type: Some(MANIFEST_MEDIA_TYPE.to_string()),
                artifact_type: None,
                config: OciDescriptor {
                    media_type: CONFIG_MEDIA_TYPE.to_string(),
                    digest: config_digest.clone(),
                    size: config.len() as i64,
                    ..Default::default()
                },
                layers: vec![OciDescriptor {
                    media_type: LAYER_MEDIA_TYPE.to_string(),
                    digest: layer_digest.clone(),
                    size: component.len() as i64,
                    ..Default::default()
                }],
                subject: None,
                annotations: Some(annotations.into_iter().collect()),
            };
            let manifest_bytes = serde_json::to_vec(&manifest).expect("manifest serialises");
            self.push_blob(&client, reference, component.to_vec(), &layer_digest, "push")
                .await
                .map_err(&remote)?;
            client
                .push_blob(&reference.0, config, &config_digest)
                .await
                .map_err(&remote)?;
            for at in std::iter::once(reference.clone())
                .chain(channels.iter().map(|channel| reference.at_tag(channel)))
            {
                client
                    .push_manifest_raw(
                        &at.0,
                        manifest_bytes.clone(),
                        http::HeaderValue::from_static(MANIFEST_MEDIA_TYPE),
                    )
                    .await
                    .map_err(remote_error(&at))?;
            }
            Ok(Published {
                reference: reference.to_string(),
                manifest_digest: digest(&manifest_bytes),
                layer_digest,
                size: component.len(),
                tags: channels.to_vec(),
            })
        })
    }

    /// Fetches the component at `reference`, checking that the manifest
    /// (when pulled by digest) and the layer match their digests.
    pub fn pull(&self, reference: &OciRef) -> Result<Pulled, RegistryError> {
        let remote = remote_error(reference);
        let auth = credentials(reference.registry());
        let client = self.client(reference.registry());
        self.runtime.block_on(async {
            let (raw, _) = match client
                .pull_manifest_raw(&reference.0, &auth, &[MANIFEST_MEDIA_TYPE])
                .await
            {
                Ok(found) => found,
                Err(e) if is_unknown(&e) => {
                    let available = client
                        .list_tags(&reference.0, &auth, None, None)
                        .await
                        .ok()
                        .map(|t| t.tags);
                    return Err(RegistryError::NotFound {
                        reference: reference.to_string(),
                        available,
                    });
                }
                Err(e) => return Err(remote(e)),
            };
            let computed = digest(&raw);
            if let Some(expected) = reference.0.digest()
                && expected != computed
            {
                return Err(RegistryError::DigestMismatch {
                    reference: reference.to_string(),
                    what: "manifest",
                    expected: expected.to_string(),
                    found: computed,
                });
            }
            let manifest: OciImageManifest =
                serde_json::from_slice(&raw).map_err(|e| RegistryError::NotWasm {
                    reference: reference.to_string(),
                    found: format!("its manifest is not an OCI image manifest ({e})"),
                })?;
            let layer = match manifest.layers.as_slice() {
                [layer] if layer.media_type == LAYER_MEDIA_TYPE => layer,
                layers => {
                    let found: Vec<&str> = layers.iter().map(|l| l.media_type.as_str()).collect();
                    return Err(RegistryError::NotWasm {
                        reference: reference.to_string(),
                        found: format!(
                            "expected one `{LAYER_MEDIA_TYPE}` layer, found [{}]",
                            found.join(", ")
                        ),
                    });
                }
            };
            let mut sink = Counting {
                bytes: Vec::with_capacity(layer.size.max(0) as usize),
                report: self
                    .progress
                    .clone()
                    .map(|p| (p, format!("pull {reference}"), layer.size.max(0) as u64)),
            };
            client
                .pull_blob(&reference.0, layer, &mut sink)
                .await
                .map_err(&remote)?;
            let bytes = sink.bytes;
            let found = digest(&bytes);
            if found != layer.digest {
                return Err(RegistryError::DigestMismatch {
                    reference: reference.to_string(),
                    what: "layer",
                    expected: layer.digest.clone(),
                    found,
                });
            }
            Ok(Pulled {
                manifest_digest: computed,
                layer_digest: layer.digest.clone(),
                bytes,
            })
        })
    }

    /// The cosign signatures of manifest `manifest_digest` in `reference`'s
    /// repository (the layers of the `sha256-<hex>.sig` tag); none when the
    /// tag does not exist. A payload is kept as served: verification checks
    /// it against its layer digest.
    pub fn signatures(
        &self,
        reference: &OciRef,
        manifest_digest: &str,
    ) -> Result<Vec<Signature>, RegistryError> {
        let tag = reference.at_tag(&crate::oci::signing::signature_tag(manifest_digest));
        let remote = remote_error(&tag);
        let auth = credentials(reference.registry());
        let client = self.client(reference.registry());
        self.runtime.block_on(async {
            let raw = match client
                .pull_manifest_raw(&tag.0, &auth, &[MANIFEST_MEDIA_TYPE])
                .await
            {
                Ok((raw, _)) => raw,
                Err(e) if is_unknown(&e) => return Ok(Vec::new()),
                Err(e) => return Err(remote(e)),
            };
            let manifest: OciImageManifest =
                serde_json::from_slice(&raw).map_err(|e| RegistryError::NotWasm {
                    reference: tag.to_string(),
                    found: format!("its manifest is not an OCI image manifest ({e})"),
                })?;
            let mut signatures = Vec::new();
            for layer in manifest
                .layers
                .iter()
                .filter(|l| l.media_type == crate::oci::signing::MEDIA_TYPE)
            {
                let Some(signature) = layer
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(crate::oci::signing::ANNOTATION))
                else {
                    continue;
                };
                let mut payload = Vec::new();
                match client.pull_blob(&tag.0, layer, &mut payload).await {
                    Ok(()) => {}
                    // A layer whose bytes are not what its digest says is
                    // a signature that cannot verify, not a failed fetch:
                    // another layer may still vouch for the artifact.
                    Err(oci_client::errors::OciDistributionError::DigestError(_)) => {
                        payload.clear();
                    }
                    Err(e) => return Err(remote(e)),
                }
                signatures.push(Signature {
                    layer: layer.digest.clone(),
                    payload: String::from_utf8_lossy(&payload).into_owned(),
                    signature: signature.clone(),
                });
            }
            Ok(signatures)
        })
    }

    /// Adds `signature` to the signatures of `manifest_digest`, keeping
    /// those already there (as cosign does); returns the new signature
    /// manifest's digest.
    pub fn attach(
        &self,
        reference: &OciRef,
        manifest_digest: &str,
        signature: &Signature,
    ) -> Result<String, RegistryError> {
        let mut all = self.signatures(reference, manifest_digest)?;
        all.retain(|s| s != signature);
        all.push(signature.clone());
        let tag = reference.at_tag(&crate::oci::signing::signature_tag(manifest_digest));
        let remote = remote_error(&tag);
        let auth = credentials(reference.registry());
        let client = self.client(reference.registry());
        self.runtime.block_on(async {
            client
                .store_auth_if_needed(reference.registry(), &auth)
                .await;
            // cosign's config: an empty JSON object.
            let config = b"{}".to_vec();
            let config_digest = digest(&config);
            let mut layers = Vec::with_capacity(all.len());
            for signature in &all {
                client
                    .push_blob(
                        &tag.0,
                        signature.payload.as_bytes().to_vec(),
                        &signature.layer,
                    )
                    .await
                    .map_err(&remote)?;
                layers.push(OciDescriptor {
                    media_type: crate::oci::signing::MEDIA_TYPE.to_string(),
                    digest: signature.layer.clone(),
                    size: signature.payload.len() as i64,
                    annotations: Some(
                        [(
                            crate::oci::signing::ANNOTATION.to_string(),
                            signature.signature.clone(),
                        )]
                        .into(),
                    ),
                    ..Default::default()
                });
            }
            client
                .push_blob(&tag.0, config.clone(), &config_digest)
                .await
                .map_err(&remote)?;
            let manifest = OciImageManifest {
                schema_version: 2,
                media_type: Some(MANIFEST_MEDIA_TYPE.to_string()),
                artifact_type: None,
                config: OciDescriptor {
                    media_type: "application/vnd.oci.image.config.v1+json".to_string(),
                    digest: config_digest,
                    size: config.len() as i64,
                    ..Default::default()
                },
                layers,
                subject: None,
                annotations: None,
            };
            let bytes = serde_json::to_vec(&manifest).expect("manifest serialises");
            client
                .push_manifest_raw(
                    &tag.0,
                    bytes.clone(),
                    http::HeaderValue::from_static(MANIFEST_MEDIA_TYPE),
                )
                .await
                .map_err(&remote)?;
            Ok(digest(&bytes))
        })
    }

    /// The digest of the manifest `reference` names now (for a tag, what
    /// it points to at this moment), without pulling anything.
    pub fn manifest_digest(&self, reference: &OciRef) -> Result<String, RegistryError> {
        let auth = credentials(reference.registry());
        let client = self.client(reference.registry());
        self.runtime.block_on(async {
            client
                .fetch_manifest_digest(&reference.0, &auth)
                .await
                .map_err(|e| match is_unknown(&e) {
                    true => RegistryError::NotFound {
                        reference: reference.to_string(),
                        available: None,
                    },
                    false => remote_error(reference)(e),
                })
        })
    }

    /// The tags of `reference`'s repository.
    pub fn tags(&self, reference: &OciRef) -> Result<Vec<String>, RegistryError> {
        let auth = credentials(reference.registry());
        let client = self.client(reference.registry());
        self.runtime.block_on(async {
            let response = client
                .list_tags(&reference.0, &auth, None, None)
                .await
                .map_err(remote_error(reference))?;
            Ok(response.tags)
        })
    }
}

fn remote_error(
    reference: &OciRef,
) -> impl Fn(oci_client::errors::OciDistributionError) -> RegistryError + '_ {
    move |e| RegistryError::Remote {
        reference: reference.to_string(),
        message: describe(&e),
    }
}

/// Collects a pulled blob, reporting its growth.
struct Counting {
    bytes: Vec<u8>,
    report: Option<(Progress, String, u64)>,
}

impl tokio::io::AsyncWrite for Counting {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        self.bytes.extend_from_slice(buf);
        if let Some((progress, label, total)) = &self.report {
            progress(label, self.bytes.len() as u64, *total);
        }
        std::task::Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

/// Whether the registry said it has no such manifest or repository.
fn is_unknown(error: &oci_client::errors::OciDistributionError) -> bool {
    use oci_client::errors::{OciDistributionError as E, OciErrorCode as C};
    match error {
        E::RegistryError { envelope, .. } => envelope
            .errors
            .iter()
            .any(|e| matches!(e.code, C::ManifestUnknown | C::NameUnknown)),
        E::ImageManifestNotFoundError(_) => true,
        _ => false,
    }
}

/// A registry error in a user's words.
fn describe(error: &oci_client::errors::OciDistributionError) -> String {
    use oci_client::errors::OciDistributionError as E;
    let mut text = match error {
        E::AuthenticationFailure(m) => format!("authentication failed: {m}"),
        E::UnauthorizedError { .. } | E::ServerError { code: 401, .. } => {
            "401 Unauthorized: the registry wants credentials and got none it accepts; set PWCHAIN_REGISTRY_USERNAME and PWCHAIN_REGISTRY_PASSWORD, or `docker login` to it".to_string()
        }
        E::ServerError { code: 403, .. } => {
            "403 Forbidden: these credentials may not do that here".to_string()
        }
        E::ImageManifestNotFoundError(m) => format!("not found: {m}"),
        other => other.to_string(),
    };
    let mut source = std::error::Error::source(error);
    let mut refused = false;
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        refused |= cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::ConnectionRefused);
        source = cause.source();
    }
    // The causes are in the text; the hint says what to check next.
    let hint = if refused {
        Some("nothing listens there: is the registry running, and is the port right?")
    } else if text.contains("dns error") {
        Some("the host name does not resolve: check the spelling of the registry")
    } else if [
        "end of file before message length",
        "connection closed before message completed",
        "connection reset",
    ]
    .iter()
    .any(|cut| text.contains(cut))
    {
        Some(
            "the registry closed the connection mid-transfer; nothing was written, so retrying is safe",
        )
    } else {
        None
    };
    if let Some(hint) = hint {
        text.push_str(" (");
        text.push_str(hint);
        text.push(')');
    }
    text
}

/// Stores credentials for `registry` in Docker's `config.json` (created
/// owner-only if absent; other entries kept), where `docker login` would,
/// and returns its path.
pub fn login(registry: &str, user: &str, password: &str) -> Result<std::path::PathBuf, String> {
    use base64::Engine as _;
    let dir = docker_config_dir()
        .ok_or("no home directory for Docker's config.json (set DOCKER_CONFIG)")?;
    let path = dir.join("config.json");
    let mut config: serde_json::Value = match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text)
            .map_err(|e| format!("`{}` is not JSON: {e}", path.display()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => serde_json::json!({}),
        Err(e) => return Err(format!("cannot read `{}`: {e}", path.display())),
    };
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    let root = config
        .as_object_mut()
        .ok_or_else(|| format!("`{}` is not a JSON object", path.display()))?;
    let auths = root.entry("auths").or_insert_with(|| serde_json::json!({}));
    let auths = auths
        .as_object_mut()
        .ok_or_else(|| format!("`auths` in `{}` is not an object", path.display()))?;
    auths.insert(registry.to_string(), serde_json::json!({ "auth": auth }));
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create `{}`: {e}", dir.display()))?;
    let text = serde_json::to_vec_pretty(&config).expect("JSON serialises");
    crate::output::write_private(&path, &text).map_err(|e| e.to_string())?;
    Ok(path)
}

fn docker_config_dir() -> Option<std::path::PathBuf> {
    std::env::var_os("DOCKER_CONFIG")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".docker")))
}

/// Credentials for `registry`: the environment first, then Docker's config.
fn credentials(registry: &str) -> RegistryAuth {
    if let (Ok(user), Ok(password)) = (
        std::env::var("PWCHAIN_REGISTRY_USERNAME"),
        std::env::var("PWCHAIN_REGISTRY_PASSWORD"),
    ) {
        return RegistryAuth::Basic(user, password);
    }
    docker_credentials(registry).unwrap_or(RegistryAuth::Anonymous)
}

fn docker_credentials(registry: &str) -> Option<RegistryAuth> {
    use base64::Engine as _;
    let dir = docker_config_dir()?;
    let text = std::fs::read_to_string(dir.join("config.json")).ok()?;
    let config: serde_json::Value = serde_json::from_str(&text).ok()?;
    let helper = config
        .get("credHelpers")
        .and_then(|h| h.get(registry))
        .or_else(|| config.get("credsStore"))
        .and_then(|h| h.as_str());
    if let Some(helper) = helper
        && let Some(auth) = credential_helper(helper, registry)
    {
        return Some(auth);
    }
    let entry = config
        .get("auths")?
        .as_object()?
        .iter()
        .find_map(|(host, entry)| {
            let host = host
                .trim_start_matches("https://")
                .trim_start_matches("http://");
            (host.trim_end_matches('/') == registry).then_some(entry)
        })?;
    if let Some(auth) = entry.get("auth").and_then(|a| a.as_str()) {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(auth)
            .ok()?;
        let (user, password) = std::str::from_utf8(&decoded).ok()?.split_once(':')?;
        return Some(RegistryAuth::Basic(user.to_string(), password.to_string()));
    }
    let user = entry.get("username")?.as_str()?;
    let password = entry.get("password")?.as_str()?;
    Some(RegistryAuth::Basic(user.to_string(), password.to_string()))
}

/// Asks `docker-credential-<helper> get` for `registry`'s credentials, as
/// Docker does (the registry on stdin, `{"Username", "Secret"}` on stdout).
fn credential_helper(helper: &str, registry: &str) -> Option<RegistryAuth> {
    use std::io::Write;
    let mut child = std::process::Command::new(format!("docker-credential-{helper}"))
        .arg("get")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .ok()?;
    child.stdin.take()?.write_all(registry.as_bytes()).ok()?;
    let output = child.wait_with_output().ok()?;
    if !output.status.success() {
        return None;
    }
    let answer: serde_json::Value = serde_json::from_slice(&output.stdout).ok()?;
    let user = answer.get("Username")?.as_str()?;
    let secret = answer.get("Secret")?.as_str()?;
    Some(match user {
        "<token>" => RegistryAuth::Bearer(secret.to_string()),
        user => RegistryAuth::Basic(user.to_string(), secret.to_string()),
    })
}
