//! Cosign-compatible, key-based signatures on registry artifacts: what a
//! `trust` list in a chain checks before a plugin's bytes are used.
//!
//! The formats are cosign's: its key files ([`keys`](super::keys)), a
//! simple-signing JSON payload naming the manifest digest, and the
//! signature as the `dev.cosignproject.cosign/signature` annotation of a
//! layer in the manifest tagged `sha256-<hex>.sig`. No transparency log and
//! no certificate authority: the keys are the trust. The tests check both
//! directions against sigstore-rs's own cosign client.

use crate::error::{KeyError, Rejection};
use crate::inspect::record::Verified;
use crate::oci::keys::{self, Signer, Verifier, pem_body};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// The media type of a cosign signature layer.
pub const MEDIA_TYPE: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// The layer annotation that carries the base64 signature.
pub const ANNOTATION: &str = "dev.cosignproject.cosign/signature";

/// A public key a chain trusts, with the fingerprint the lock records.
#[derive(Clone)]
pub struct PublicKey {
    /// The key file.
    pub path: PathBuf,
    /// How the chain named it (`keys/acme.pub`): what records show.
    pub label: String,
    /// `sha256:<hex>` of the key's DER (SubjectPublicKeyInfo) bytes.
    pub fingerprint: String,
    verifier: std::sync::Arc<Verifier>,
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.path.display(), self.fingerprint)
    }
}

impl PublicKey {
    /// Reads a PEM `PUBLIC KEY` (what `cosign generate-key-pair` and
    /// `pwchain key generate` write as `NAME.pub`).
    pub fn load(path: &Path) -> Result<PublicKey, KeyError> {
        let pem = std::fs::read(path).map_err(|source| KeyError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        PublicKey::from_pem(path, &pem)
    }

    /// `label (fingerprint)` of each key, for errors.
    pub fn describe(keys: &[PublicKey]) -> Vec<String> {
        keys.iter()
            .map(|k| format!("{} ({})", k.label, k.fingerprint))
            .collect()
    }

    fn from_pem(path: &Path, pem: &[u8]) -> Result<PublicKey, KeyError> {
        let not_public = |reason: String| KeyError::NotPublic {
            path: path.to_path_buf(),
            reason,
        };
        let text = std::str::from_utf8(pem).map_err(|_| not_public("it is not text".into()))?;
        let der = pem_body(text, "PUBLIC KEY").ok_or_else(|| {
            not_public(match text.contains("PRIVATE KEY") {
                true => "it is a private key; trust the `.pub` file beside it".into(),
                false => "no `-----BEGIN PUBLIC KEY-----` block".into(),
            })
        })?;
        // The scheme (ECDSA P-256/P-384, Ed25519, RSA) is the key's own.
        let verifier = Verifier::from_spki(&der).map_err(not_public)?;
        Ok(PublicKey {
            path: path.to_path_buf(),
            label: path.display().to_string(),
            fingerprint: crate::digest::digest(&der),
            verifier: std::sync::Arc::new(verifier),
        })
    }
}

/// A private key, decrypted, ready to sign.
pub struct SigningKey {
    signer: Signer,
    /// The fingerprint of its public half.
    pub fingerprint: String,
}

impl SigningKey {
    /// Opens the encrypted PEM at `path` with `password`.
    pub fn load(path: &Path, password: &[u8]) -> Result<SigningKey, KeyError> {
        let pem = Zeroizing::new(std::fs::read(path).map_err(|source| KeyError::Read {
            path: path.to_path_buf(),
            source,
        })?);
        let not_private = |reason: String| KeyError::NotPrivate {
            path: path.to_path_buf(),
            reason,
        };
        if pem_body(&String::from_utf8_lossy(&pem), "PUBLIC KEY").is_some() {
            return Err(not_private(
                "it is a public key; sign with the `.key` file".into(),
            ));
        }
        let text = String::from_utf8_lossy(&pem);
        let sealed = keys::sealed_private_key(&text).ok_or_else(|| {
            not_private(format!("no `-----BEGIN {}-----` block (what `pwchain key generate` and `cosign generate-key-pair` write)", keys::PRIVATE_LABEL))
        })?;
        let der = keys::open(&sealed, password).map_err(not_private)?;
        let signer = Signer::from_pkcs8(&der).map_err(not_private)?;
        Ok(SigningKey {
            fingerprint: crate::digest::digest(&signer.public_spki()),
            signer,
        })
    }

    /// A cosign signature of `manifest_digest` as an artifact of
    /// `repository` (`host/path`, what the payload's identity names).
    pub fn sign(&self, repository: &str, manifest_digest: &str) -> Result<Signature, KeyError> {
        use base64::Engine;
        let payload = serde_json::to_vec(&SimpleSigning::new(repository, manifest_digest))
            .map_err(|e| KeyError::Sign(e.to_string()))?;
        let signature = self.signer.sign(&payload).map_err(KeyError::Sign)?;
        Ok(Signature {
            layer: crate::digest::digest(&payload),
            signature: base64::engine::general_purpose::STANDARD.encode(signature),
            payload: String::from_utf8_lossy(&payload).into_owned(),
        })
    }
}

/// A new ECDSA P-256 key pair: the private key encrypted with `password`
/// (PEM), and the public key (PEM), as cosign writes them.
pub fn generate(password: &[u8]) -> Result<(Zeroizing<String>, String), KeyError> {
    keys::generate(password).map_err(KeyError::Generate)
}

/// cosign's simple-signing payload: what a signature is over.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct SimpleSigning {
    critical: Critical,
    optional: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Critical {
    identity: Identity,
    image: Image,
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct Identity {
    docker_reference: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct Image {
    docker_manifest_digest: String,
}

impl SimpleSigning {
    /// The `type` cosign gives a signature on an image or artifact.
    const KIND: &str = "cosign container image signature";

    fn new(repository: &str, manifest_digest: &str) -> SimpleSigning {
        SimpleSigning {
            critical: Critical {
                identity: Identity {
                    docker_reference: repository.to_string(),
                },
                image: Image {
                    docker_manifest_digest: manifest_digest.to_string(),
                },
                kind: SimpleSigning::KIND.to_string(),
            },
            optional: None,
        }
    }
}

/// One signature layer as the registry holds it: what is cached, and what
/// verification reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signature {
    /// `sha256:<hex>` of the payload: the layer's digest.
    pub layer: String,
    /// The simple-signing JSON, byte for byte as signed.
    pub payload: String,
    /// Base64, from the layer's annotation.
    pub signature: String,
}

/// The tag cosign stores the signatures of `manifest_digest` under.
pub fn signature_tag(manifest_digest: &str) -> String {
    format!("{}.sig", manifest_digest.replacen(':', "-", 1))
}

/// Checks `signatures` (all the layers found for `manifest_digest`) against
/// `keys`: the first layer that names this digest and verifies against a
/// key wins.
pub fn verify(
    signatures: &[Signature],
    manifest_digest: &str,
    keys: &[PublicKey],
) -> Result<Verified, Rejection> {
    if signatures.is_empty() {
        return Err(Rejection::Unsigned {
            tag: signature_tag(manifest_digest),
        });
    }
    let mut replayed = None;
    let mut tampered = 0;
    for signature in signatures {
        let payload = signature.payload.as_bytes();
        let parsed: Option<SimpleSigning> = serde_json::from_slice(payload).ok();
        let (Some(simple_signing), true) =
            (parsed, crate::digest::digest(payload) == signature.layer)
        else {
            tampered += 1;
            continue;
        };
        let Ok(raw) = base64::Engine::decode(
            &base64::engine::general_purpose::STANDARD,
            &signature.signature,
        ) else {
            tampered += 1;
            continue;
        };
        let Some(key) = keys.iter().find(|key| key.verifier.verifies(payload, &raw)) else {
            continue;
        };
        let signed = &simple_signing.critical.image.docker_manifest_digest;
        if signed != manifest_digest {
            replayed.get_or_insert_with(|| signed.clone());
            continue;
        }
        return Ok(Verified {
            key: key.fingerprint.clone(),
            key_file: key.label.clone(),
            signature: signature.layer.clone(),
        });
    }
    Err(match replayed {
        Some(signed) => Rejection::Replayed {
            signed,
            digest: manifest_digest.to_string(),
        },
        None => Rejection::OtherKeys {
            found: signatures.len(),
            tampered,
        },
    })
}

/// A signature attached to an artifact.
#[derive(Debug, Clone, Serialize)]
pub struct Signed {
    /// The artifact, pinned by digest.
    pub reference: String,
    /// Where cosign looks for its signatures.
    pub signature_tag: String,
    /// The digest of the signature manifest now at that tag.
    pub signature_manifest: String,
    /// The new signature layer's digest.
    pub signature: String,
    /// The fingerprint of the key that signed.
    pub key: String,
}

/// Signs the manifest `reference` names (a tag is resolved to the digest
/// it points at now) and attaches the signature beside the others.
pub fn sign_artifact(
    registry: &crate::oci::registry::Registry,
    reference: &crate::oci::registry::OciRef,
    key: &SigningKey,
) -> Result<Signed, crate::Error> {
    let manifest = registry.manifest_digest(reference)?;
    let repository = format!("{}/{}", reference.registry(), reference.repository());
    let signature = key
        .sign(&repository, &manifest)
        .map_err(|source| crate::Error::Key {
            what: format!("`{reference}`"),
            source,
        })?;
    let signature_manifest = registry.attach(reference, &manifest, &signature)?;
    Ok(Signed {
        reference: reference.at_digest(&manifest).to_string(),
        signature_tag: reference.at_tag(&signature_tag(&manifest)).to_string(),
        signature_manifest,
        signature: signature.layer,
        key: key.fingerprint.clone(),
    })
}

/// What `pwchain verify` found.
#[derive(Debug, Clone, Serialize)]
pub struct Checked {
    /// The artifact, as named.
    pub reference: String,
    /// The manifest digest the tag pointed at.
    pub manifest: String,
    /// What verified it.
    pub verified: Verified,
}

/// Checks that one of `keys` signed the manifest `reference` names now.
pub fn verify_artifact(
    registry: &crate::oci::registry::Registry,
    reference: &crate::oci::registry::OciRef,
    keys: &[PublicKey],
) -> Result<Checked, crate::Error> {
    let manifest = registry.manifest_digest(reference)?;
    let verified = registry
        .signatures(reference, &manifest)
        .map_err(|e| Rejection::Unreadable(e.to_string()))
        .and_then(|signatures| verify(&signatures, &manifest, keys))
        .map_err(|rejection| crate::Error::Untrusted {
            plugin: reference
                .repository()
                .rsplit('/')
                .next()
                .unwrap_or_default()
                .to_string(),
            reference: reference.to_string(),
            digest: manifest.clone(),
            keys: PublicKey::describe(keys),
            rejection: Box::new(rejection),
        })?;
    Ok(Checked {
        reference: reference.to_string(),
        manifest,
        verified,
    })
}
