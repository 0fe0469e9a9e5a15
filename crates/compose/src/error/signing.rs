//! What can go wrong with keys and signatures.

use std::path::PathBuf;

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
