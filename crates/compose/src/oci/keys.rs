//! Key files as cosign writes them, and the signatures their keys make,
//! on `ring` (the crypto the TLS stack already builds):
//!
//! - a public key is a PEM `PUBLIC KEY`: DER SubjectPublicKeyInfo, ECDSA
//!   P-256 or P-384, Ed25519 or RSA;
//! - a private key is a PEM `ENCRYPTED SIGSTORE PRIVATE KEY` (or cosign's
//!   older `ENCRYPTED COSIGN PRIVATE KEY`): JSON naming an scrypt key
//!   derivation and a NaCl secretbox, which seals a PKCS#8 DER key.
//!
//! ECDSA signatures are ASN.1 DER, over SHA-256 (P-256) or SHA-384 (P-384);
//! RSA ones PKCS#1 v1.5 over SHA-256: what cosign verifies.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{self, KeyPair};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// The PEM label pwchain and cosign write an encrypted private key under.
pub const PRIVATE_LABEL: &str = "ENCRYPTED SIGSTORE PRIVATE KEY";
/// The label older cosign releases used: read, never written.
const OLD_PRIVATE_LABEL: &str = "ENCRYPTED COSIGN PRIVATE KEY";
/// The PEM label of a public key.
pub const PUBLIC_LABEL: &str = "PUBLIC KEY";

/// cosign's key derivation: scrypt with N = 2^15 (or 2^16 when reading),
/// r = 8, p = 1, a 32-byte salt; a secretbox key of 32 bytes, its nonce
/// of 24.
const SCRYPT_LOG_N: u8 = 15;
const SCRYPT_R: u32 = 8;
const SCRYPT_P: u32 = 1;
const SALT_LEN: usize = 32;
const NONCE_LEN: usize = 24;

// DER object identifiers (contents octets only).
const OID_EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const OID_P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const OID_P384: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22];
const OID_ED25519: &[u8] = &[0x2b, 0x65, 0x70];
const OID_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];

/// The base64 body of the PEM block labelled `label`, decoded.
pub fn pem_body(text: &str, label: &str) -> Option<Vec<u8>> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = text.find(&begin)? + begin.len();
    let stop = start + text[start..].find(&end)?;
    let body: String = text[start..stop]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    BASE64.decode(body).ok()
}

/// `der` as a PEM block labelled `label`, in lines of 64 characters.
fn pem(label: &str, der: &[u8]) -> String {
    let body = BASE64.encode(der);
    let mut text = format!("-----BEGIN {label}-----\n");
    for line in body.as_bytes().chunks(64) {
        text.push_str(&String::from_utf8_lossy(line));
        text.push('\n');
    }
    text.push_str(&format!("-----END {label}-----\n"));
    text
}

/// The sealed body of an encrypted private key PEM, under either label.
pub fn sealed_private_key(text: &str) -> Option<Vec<u8>> {
    [PRIVATE_LABEL, OLD_PRIVATE_LABEL]
        .into_iter()
        .find_map(|label| pem_body(text, label))
}

/// A public key, ready to check signatures.
pub struct Verifier {
    algorithm: &'static dyn signature::VerificationAlgorithm,
    key: Vec<u8>,
}

impl Verifier {
    /// From DER SubjectPublicKeyInfo; the key's own scheme decides how
    /// signatures are checked.
    pub fn from_spki(der: &[u8]) -> Result<Verifier, String> {
        let ((algorithm, parameters), key) = read_spki(der).ok_or("it is not a DER public key")?;
        let algorithm: &'static dyn signature::VerificationAlgorithm = match (algorithm, parameters)
        {
            (OID_EC_PUBLIC_KEY, Some(OID_P256)) => &signature::ECDSA_P256_SHA256_ASN1,
            (OID_EC_PUBLIC_KEY, Some(OID_P384)) => &signature::ECDSA_P384_SHA384_ASN1,
            (OID_EC_PUBLIC_KEY, _) => {
                return Err("an ECDSA key on a curve other than P-256 or P-384".into());
            }
            (OID_ED25519, _) => &signature::ED25519,
            (OID_RSA, _) => &signature::RSA_PKCS1_2048_8192_SHA256,
            _ => return Err("a key of a kind cosign does not sign with".into()),
        };
        Ok(Verifier {
            algorithm,
            key: key.to_vec(),
        })
    }

    /// Whether `signature` is this key's over `message`.
    pub fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        signature::UnparsedPublicKey::new(self.algorithm, &self.key)
            .verify(message, signature)
            .is_ok()
    }
}

/// A decrypted private key.
pub enum Signer {
    /// ECDSA P-256 or P-384.
    Ecdsa(signature::EcdsaKeyPair),
    /// Ed25519.
    Ed25519(signature::Ed25519KeyPair),
    /// RSA, signing PKCS#1 v1.5 with SHA-256.
    Rsa(signature::RsaKeyPair),
}

impl Signer {
    /// From a PKCS#8 DER private key (what cosign's PEM seals).
    pub fn from_pkcs8(der: &[u8]) -> Result<Signer, String> {
        let (algorithm, parameters) = read_pkcs8_algorithm(der).ok_or("it is not a PKCS#8 key")?;
        let rejected = |e: ring::error::KeyRejected| format!("the key is rejected: {e}");
        let ecdsa = |curve: &'static signature::EcdsaSigningAlgorithm| {
            signature::EcdsaKeyPair::from_pkcs8(curve, der, &SystemRandom::new())
                .map(Signer::Ecdsa)
                .map_err(rejected)
        };
        Ok(match (algorithm, parameters) {
            (OID_EC_PUBLIC_KEY, Some(OID_P256)) => {
                ecdsa(&signature::ECDSA_P256_SHA256_ASN1_SIGNING)?
            }
            (OID_EC_PUBLIC_KEY, Some(OID_P384)) => {
                ecdsa(&signature::ECDSA_P384_SHA384_ASN1_SIGNING)?
            }
            (OID_ED25519, _) => Signer::Ed25519(
                signature::Ed25519KeyPair::from_pkcs8_maybe_unchecked(der).map_err(rejected)?,
            ),
            (OID_RSA, _) => Signer::Rsa(signature::RsaKeyPair::from_pkcs8(der).map_err(rejected)?),
            (OID_EC_PUBLIC_KEY, _) => {
                return Err("an ECDSA key on a curve other than P-256 or P-384".into());
            }
            _ => return Err("a key of a kind cosign does not sign with".into()),
        })
    }

    /// The DER SubjectPublicKeyInfo of the public half.
    pub fn public_spki(&self) -> Vec<u8> {
        match self {
            Signer::Ecdsa(pair) => {
                let curve = match pair.public_key().as_ref().len() {
                    65 => OID_P256,
                    _ => OID_P384,
                };
                spki(
                    OID_EC_PUBLIC_KEY,
                    &tlv(0x06, curve),
                    pair.public_key().as_ref(),
                )
            }
            Signer::Ed25519(pair) => spki(OID_ED25519, &[], pair.public_key().as_ref()),
            Signer::Rsa(pair) => spki(OID_RSA, &tlv(0x05, &[]), pair.public_key().as_ref()),
        }
    }

    /// This key's signature over `message`.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, String> {
        let rng = SystemRandom::new();
        let failed = |_| "the signing primitive failed".to_string();
        Ok(match self {
            Signer::Ecdsa(pair) => pair.sign(&rng, message).map_err(failed)?.as_ref().to_vec(),
            Signer::Ed25519(pair) => pair.sign(message).as_ref().to_vec(),
            Signer::Rsa(pair) => {
                let mut out = vec![0; pair.public().modulus_len()];
                pair.sign(&signature::RSA_PKCS1_SHA256, &rng, message, &mut out)
                    .map_err(failed)?;
                out
            }
        })
    }
}

/// A new ECDSA P-256 key pair (what `cosign generate-key-pair` makes): the
/// private key sealed with `password` as PEM, and the public key as PEM.
pub fn generate(password: &[u8]) -> Result<(Zeroizing<String>, String), String> {
    let rng = SystemRandom::new();
    let pkcs8 =
        signature::EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_ASN1_SIGNING, &rng)
            .map_err(|_| "the system's random source failed".to_string())?;
    let signer = Signer::from_pkcs8(pkcs8.as_ref())?;
    let sealed = seal(pkcs8.as_ref(), password)?;
    Ok((
        Zeroizing::new(pem(PRIVATE_LABEL, &sealed)),
        pem(PUBLIC_LABEL, &signer.public_spki()),
    ))
}

/// What an encrypted private key PEM holds (cosign's JSON).
#[derive(Serialize, Deserialize)]
struct Sealed {
    kdf: Kdf,
    cipher: Cipher,
    #[serde(with = "base64_bytes")]
    ciphertext: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
struct Kdf {
    name: String,
    params: ScryptParams,
    #[serde(with = "base64_bytes")]
    salt: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
struct ScryptParams {
    #[serde(rename = "N")]
    n: u32,
    r: u32,
    p: u32,
}

#[derive(Serialize, Deserialize)]
struct Cipher {
    name: String,
    #[serde(with = "base64_bytes")]
    nonce: Vec<u8>,
}

mod base64_bytes {
    use super::BASE64;
    use base64::Engine;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&BASE64.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        BASE64.decode(text).map_err(serde::de::Error::custom)
    }
}

/// The secretbox key `password` derives with `kdf`'s salt.
fn derive(kdf: &Kdf, password: &[u8]) -> Result<Zeroizing<[u8; 32]>, String> {
    let log_n = match kdf.params.n {
        32768 => 15,
        65536 => 16,
        n => return Err(format!("unexpected scrypt parameter N = {n}")),
    };
    if kdf.name != "scrypt" || kdf.params.r != SCRYPT_R || kdf.params.p != SCRYPT_P {
        return Err(format!("unexpected key derivation `{}`", kdf.name));
    }
    let params = scrypt::Params::new(log_n, SCRYPT_R, SCRYPT_P, 32).map_err(|e| e.to_string())?;
    let mut key = Zeroizing::new([0u8; 32]);
    scrypt::scrypt(password, &kdf.salt, &params, key.as_mut()).map_err(|e| e.to_string())?;
    Ok(key)
}

/// `plaintext` sealed with `password`, as cosign's JSON.
fn seal(plaintext: &[u8], password: &[u8]) -> Result<Vec<u8>, String> {
    use crypto_secretbox::aead::{Aead, KeyInit};
    let rng = SystemRandom::new();
    let mut salt = vec![0; SALT_LEN];
    let mut nonce = [0; NONCE_LEN];
    rng.fill(&mut salt)
        .and_then(|()| rng.fill(&mut nonce))
        .map_err(|_| "the system's random source failed".to_string())?;
    let kdf = Kdf {
        name: "scrypt".into(),
        params: ScryptParams {
            n: 1 << SCRYPT_LOG_N,
            r: SCRYPT_R,
            p: SCRYPT_P,
        },
        salt,
    };
    let key = derive(&kdf, password)?;
    let ciphertext = crypto_secretbox::XSalsa20Poly1305::new(&(*key).into())
        .encrypt(&nonce.into(), plaintext)
        .map_err(|e| e.to_string())?;
    let sealed = Sealed {
        kdf,
        cipher: Cipher {
            name: "nacl/secretbox".into(),
            nonce: nonce.to_vec(),
        },
        ciphertext,
    };
    serde_json::to_vec(&sealed).map_err(|e| e.to_string())
}

/// What `sealed` (cosign's JSON) holds, opened with `password`. `Err` is
/// a wrong password or a damaged key, or a format this is not.
pub fn open(sealed: &[u8], password: &[u8]) -> Result<Zeroizing<Vec<u8>>, String> {
    use crypto_secretbox::aead::{Aead, KeyInit};
    let sealed: Sealed = serde_json::from_slice(sealed).map_err(|e| e.to_string())?;
    if sealed.cipher.name != "nacl/secretbox" {
        return Err(format!("unexpected cipher `{}`", sealed.cipher.name));
    }
    let nonce: [u8; NONCE_LEN] = sealed
        .cipher
        .nonce
        .as_slice()
        .try_into()
        .map_err(|_| "the nonce is not 24 bytes".to_string())?;
    let key = derive(&sealed.kdf, password)?;
    crypto_secretbox::XSalsa20Poly1305::new(&(*key).into())
        .decrypt(&nonce.into(), sealed.ciphertext.as_slice())
        .map(Zeroizing::new)
        .map_err(|_| "wrong password (or a damaged key)".to_string())
}

/// One DER element: `tag`, then the length of `contents`, then `contents`.
fn tlv(tag: u8, contents: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = contents.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(contents);
    out
}

/// SubjectPublicKeyInfo: the algorithm, its DER `parameters` (if any),
/// and the key as a BIT STRING.
fn spki(algorithm: &[u8], parameters: &[u8], key: &[u8]) -> Vec<u8> {
    let mut identifier = tlv(0x06, algorithm);
    identifier.extend_from_slice(parameters);
    let mut bits = vec![0];
    bits.extend_from_slice(key);
    let mut body = tlv(0x30, &identifier);
    body.extend(tlv(0x03, &bits));
    tlv(0x30, &body)
}

/// Reads one DER element: its tag, contents, and what follows it.
fn read(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = match first {
        n if n < 0x80 => (n as usize, rest),
        n => {
            let count = (n & 0x7f) as usize;
            if count == 0 || count > 4 || rest.len() < count {
                return None;
            }
            let len = rest[..count]
                .iter()
                .fold(0usize, |len, b| (len << 8) | *b as usize);
            (len, &rest[count..])
        }
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

/// An AlgorithmIdentifier: the algorithm's OID and, when it is one, its
/// parameter OID (an elliptic curve's name).
type Algorithm<'a> = (&'a [u8], Option<&'a [u8]>);

/// An AlgorithmIdentifier's OID and, when it is one, its parameter OID.
fn read_algorithm(identifier: &[u8]) -> Option<Algorithm<'_>> {
    let (0x06, oid, rest) = read(identifier)? else {
        return None;
    };
    let parameters = match read(rest) {
        Some((0x06, parameter, _)) => Some(parameter),
        _ => None,
    };
    Some((oid, parameters))
}

/// The algorithm and the key bits of a DER SubjectPublicKeyInfo.
fn read_spki(der: &[u8]) -> Option<(Algorithm<'_>, &[u8])> {
    let (0x30, body, _) = read(der)? else {
        return None;
    };
    let (0x30, identifier, rest) = read(body)? else {
        return None;
    };
    let algorithm = read_algorithm(identifier)?;
    let (0x03, bits, _) = read(rest)? else {
        return None;
    };
    let (0, key) = bits.split_first()? else {
        return None;
    };
    Some((algorithm, key))
}

/// The algorithm and its parameter OID of a PKCS#8 private key.
fn read_pkcs8_algorithm(der: &[u8]) -> Option<Algorithm<'_>> {
    let (0x30, body, _) = read(der)? else {
        return None;
    };
    let (0x02, _version, rest) = read(body)? else {
        return None;
    };
    let (0x30, identifier, _) = read(rest)? else {
        return None;
    };
    read_algorithm(identifier)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_pair_signs_and_verifies_and_the_password_matters() {
        let (private, public) = generate(b"secret").unwrap();
        let sealed = sealed_private_key(&private).unwrap();
        assert!(open(&sealed, b"wrong").is_err());
        let signer = Signer::from_pkcs8(&open(&sealed, b"secret").unwrap()).unwrap();
        let spki = pem_body(&public, PUBLIC_LABEL).unwrap();
        assert_eq!(signer.public_spki(), spki);
        let verifier = Verifier::from_spki(&spki).unwrap();
        let signature = signer.sign(b"payload").unwrap();
        assert!(verifier.verifies(b"payload", &signature));
        assert!(!verifier.verifies(b"payload!", &signature));
    }

    #[test]
    fn long_der_lengths_round_trip() {
        let contents = vec![7; 300];
        let element = tlv(0x04, &contents);
        assert_eq!(&element[..4], &[0x04, 0x82, 0x01, 0x2c]);
        assert_eq!(read(&element), Some((0x04, &contents[..], &[][..])));
    }
}
