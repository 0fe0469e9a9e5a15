//! What can go wrong with keys and signatures.

use std::path::PathBuf;

/// What can go wrong with a key.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// A key file that cannot be read.
    #[error("cannot read the key `{}`: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Not a public key.
    #[error("`{}` is not a public key: {reason}", path.display())]
    NotPublic {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A private key that cannot be opened (a wrong password among others).
    #[error("cannot open the private key `{}`: {reason}", path.display())]
    NotPrivate {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A key pair cannot be made.
    #[error("cannot make a key pair: {0}")]
    Generate(String),
    /// A signature cannot be made.
    #[error("cannot sign: {0}")]
    Sign(String),
}

/// Why no signature vouches for an artifact.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// No signature at all.
    #[error("it is not signed (no signature at the tag `{tag}`)")]
    Unsigned {
        /// The tag where cosign keeps them.
        tag: String,
    },
    /// Signatures, none by a trusted key.
    #[error(
        "none of its {found} signature(s) was made by a trusted key{}",
        tampered_note(*tampered)
    )]
    OtherKeys {
        /// How many there are.
        found: usize,
        /// How many of them do not verify their own payload.
        tampered: usize,
    },
    /// The signatures cannot be fetched or read.
    #[error("its signatures cannot be read: {0}")]
    Unreadable(String),
    /// A trusted key's signature, but for another manifest.
    #[error(
        "its signature by a trusted key is for {signed}, not for this manifest ({digest}): a signature replayed from another artifact"
    )]
    Replayed {
        /// The digest it names.
        signed: String,
        /// The digest of this manifest.
        digest: String,
    },
}

fn tampered_note(tampered: usize) -> String {
    match tampered {
        0 => String::new(),
        n => format!(" ({n} of them damaged or tampered with: the payload is not what was signed)"),
    }
}
