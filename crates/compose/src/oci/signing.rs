//! Cosign-compatible, key-based signatures on registry artifacts: what a
//! `trust` list in a chain checks before a plugin's bytes are used.
//!
//! The formats are cosign's, through sigstore-rs: ECDSA P-256 keys
//! (`ENCRYPTED SIGSTORE PRIVATE KEY`, scrypt + secretbox; `PUBLIC KEY`),
//! a simple-signing JSON payload naming the manifest digest, and the
//! signature as the `dev.cosignproject.cosign/signature` annotation of a
//! layer in the manifest tagged `sha256-<hex>.sig`. No transparency log and
//! no certificate authority: the keys are the trust.

use serde::{Deserialize, Serialize};
use sigstore::cosign::SignatureLayer;
use sigstore::cosign::payload::SimpleSigning;
use sigstore::cosign::verification_constraint::{PublicKeyVerifier, VerificationConstraint};
use sigstore::crypto::signing_key::SigStoreKeyPair;
use sigstore::crypto::signing_key::ecdsa::{ECDSAKeys, EllipticCurve};
use sigstore::crypto::{SigStoreSigner, SigningScheme};
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// The media type of a cosign signature layer.
pub const MEDIA_TYPE: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// The layer annotation that carries the base64 signature.
pub const ANNOTATION: &str = "dev.cosignproject.cosign/signature";

/// What can go wrong with a key.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read the key `{}`: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("`{}` is not a public key: {reason}", path.display())]
    NotPublic { path: PathBuf, reason: String },
    #[error("cannot open the private key `{}`: {reason}", path.display())]
    NotPrivate { path: PathBuf, reason: String },
    #[error("cannot make a key pair: {0}")]
    Generate(String),
    #[error("cannot sign: {0}")]
    Sign(String),
}

/// A public key a chain trusts, with the fingerprint the lock records.
#[derive(Clone)]
pub struct PublicKey {
    pub path: PathBuf,
    /// How the chain named it (`keys/acme.pub`): what records show.
    pub label: String,
    /// `sha256:<hex>` of the key's DER (SubjectPublicKeyInfo) bytes.
    pub fingerprint: String,
    verifier: std::sync::Arc<PublicKeyVerifier>,
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
        let verifier = PublicKeyVerifier::try_from(pem).map_err(|e| not_public(e.to_string()))?;
        Ok(PublicKey {
            path: path.to_path_buf(),
            label: path.display().to_string(),
            fingerprint: crate::resolve::digest(&der),
            verifier: std::sync::Arc::new(verifier),
        })
    }
}

/// The base64 body of the PEM block labelled `label`, decoded.
fn pem_body(text: &str, label: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = text.find(&begin)? + begin.len();
    let stop = start + text[start..].find(&end)?;
    let body: String = text[start..stop]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    base64::engine::general_purpose::STANDARD.decode(body).ok()
}

/// A private key, decrypted, ready to sign.
pub struct SigningKey {
    signer: SigStoreSigner,
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
        // Decrypted first on its own, so that a wrong password is told
        // apart from a key of a kind sigstore-rs cannot use.
        let text = String::from_utf8_lossy(&pem);
        let sealed = ["ENCRYPTED SIGSTORE PRIVATE KEY", "ENCRYPTED COSIGN PRIVATE KEY"]
            .into_iter()
            .find_map(|label| pem_body(&text, label))
            .ok_or_else(|| {
                not_private("no `-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----` block (what `pwchain key generate` and `cosign generate-key-pair` write)".into())
            })?;
        sigstore::crypto::signing_key::kdf::decrypt(&sealed, password)
            .map_err(|_| not_private("wrong password (or a damaged key)".into()))?;
        let pair = SigStoreKeyPair::from_encrypted_pem(&pem, password)
            .map_err(|e| not_private(e.to_string()))?;
        let public = pair
            .public_key_to_der()
            .map_err(|e| not_private(e.to_string()))?;
        let signer = pair
            .to_sigstore_signer(&SigningScheme::ECDSA_P256_SHA256_ASN1)
            .or_else(|_| pair.to_sigstore_signer(&SigningScheme::ED25519))
            .map_err(|e| not_private(e.to_string()))?;
        Ok(SigningKey {
            signer,
            fingerprint: crate::resolve::digest(&public),
        })
    }

    /// A cosign signature of `manifest_digest` as an artifact of
    /// `repository` (`host/path`, what the payload's identity names).
    pub fn sign(&self, repository: &str, manifest_digest: &str) -> Result<Signature, KeyError> {
        use base64::Engine;
        let reference = repository
            .parse()
            .map_err(|e: sigstore::errors::SigstoreError| KeyError::Sign(e.to_string()))?;
        let payload = serde_json::to_vec(&SimpleSigning::new(&reference, manifest_digest))
            .map_err(|e| KeyError::Sign(e.to_string()))?;
        let signature = self
            .signer
            .sign(&payload)
            .map_err(|e| KeyError::Sign(e.to_string()))?;
        Ok(Signature {
            layer: crate::resolve::digest(&payload),
            signature: base64::engine::general_purpose::STANDARD.encode(signature),
            payload: String::from_utf8_lossy(&payload).into_owned(),
        })
    }
}

/// A new ECDSA P-256 key pair: the private key encrypted with `password`
/// (PEM), and the public key (PEM), as cosign writes them.
pub fn generate(password: &[u8]) -> Result<(Zeroizing<String>, String), KeyError> {
    let error = |e: sigstore::errors::SigstoreError| KeyError::Generate(e.to_string());
    let pair = SigStoreKeyPair::ECDSA(ECDSAKeys::new(EllipticCurve::P256).map_err(error)?);
    Ok((
        pair.private_key_to_encrypted_pem(password).map_err(error)?,
        pair.public_key_to_pem().map_err(error)?,
    ))
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

/// What verified a plugin: recorded in the lock and the composite.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verified {
    /// The fingerprint of the key that verified it.
    pub key: String,
    /// The key's file, as the chain names it.
    pub key_file: String,
    /// The digest of the signature layer that verified.
    pub signature: String,
}

/// Why no signature vouches for an artifact.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("it is not signed (no signature at the tag `{tag}`)")]
    Unsigned { tag: String },
    #[error(
        "none of its {found} signature(s) was made by a trusted key{}",
        tampered_note(*tampered)
    )]
    OtherKeys { found: usize, tampered: usize },
    #[error("its signatures cannot be read: {0}")]
    Unreadable(String),
    #[error(
        "its signature by a trusted key is for {signed}, not for this manifest ({digest}): a signature replayed from another artifact"
    )]
    Replayed { signed: String, digest: String },
}

fn tampered_note(tampered: usize) -> String {
    match tampered {
        0 => String::new(),
        n => format!(" ({n} of them damaged or tampered with: the payload is not what was signed)"),
    }
}

/// The tag cosign stores the signatures of `manifest_digest` under.
pub fn signature_tag(manifest_digest: &str) -> String {
    format!("{}.sig", manifest_digest.replacen(':', "-", 1))
}

/// Checks `signatures` (all the layers found for `manifest_digest`) against
/// `keys`: the first layer that names this digest and verifies against a
/// key wins. Verification is sigstore-rs's own ([`PublicKeyVerifier`]).
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
            (parsed, crate::resolve::digest(payload) == signature.layer)
        else {
            tampered += 1;
            continue;
        };
        let layer = SignatureLayer {
            simple_signing,
            oci_digest: signature.layer.clone(),
            certificate_signature: None,
            bundle: None,
            signature: Some(signature.signature.clone()),
            raw_data: payload.to_vec(),
        };
        let Some(key) = keys
            .iter()
            .find(|key| key.verifier.verify(&layer).unwrap_or(false))
        else {
            continue;
        };
        if !layer
            .simple_signing
            .satisfies_manifest_digest(manifest_digest)
        {
            replayed.get_or_insert_with(|| {
                layer
                    .simple_signing
                    .critical
                    .image
                    .docker_manifest_digest
                    .clone()
            });
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
    pub reference: String,
    pub manifest: String,
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
