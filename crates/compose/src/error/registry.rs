//! What can go wrong talking to a registry.

/// What can go wrong talking to a registry.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("`{reference}` is not an OCI reference: {reason}")]
    #[allow(clippy::enum_variant_names)]
    BadReference { reference: String, reason: String },
    #[error("`{reference}`: {message}")]
    Remote { reference: String, message: String },
    #[error(
        "no published version of `{package}` satisfies `{requirement}` (it has: {})",
        list_or_none(available)
    )]
    NoMatch {
        package: String,
        requirement: String,
        available: Vec<String>,
    },
    #[error(
        "`{reference}` was not found in the registry{}",
        available_tags(available)
    )]
    NotFound {
        reference: String,
        available: Option<Vec<String>>,
    },
    #[error(
        "`{reference}` already exists in the registry (manifest {digest}); pass --force to overwrite it"
    )]
    Exists { reference: String, digest: String },
    #[error("`{reference}` is not a wasm component artifact: {found}")]
    NotWasm { reference: String, found: String },
    #[error(
        "`{reference}`: {what} digest mismatch: expected {expected}, the registry served {found}"
    )]
    DigestMismatch {
        reference: String,
        what: &'static str,
        expected: String,
        found: String,
    },
}

fn list_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "no versions".into()
    } else {
        items.join(", ")
    }
}

fn available_tags(tags: &Option<Vec<String>>) -> String {
    match tags {
        Some(tags) if !tags.is_empty() => {
            let mut tags = tags.clone();
            tags.sort_by(
                |a, b| match (semver::Version::parse(a), semver::Version::parse(b)) {
                    (Ok(a), Ok(b)) => a.cmp(&b),
                    _ => a.cmp(b),
                },
            );
            format!(" (it has: {})", tags.join(", "))
        }
        Some(_) => " (the repository has no versions)".into(),
        None => " (no such repository)".into(),
    }
}
