//! What can go wrong talking to a registry.

/// What can go wrong talking to a registry.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// Not an `oci://` reference.
    #[error("`{reference}` is not an OCI reference: {reason}")]
    #[allow(clippy::enum_variant_names)]
    BadReference {
        /// As given.
        reference: String,
        /// Why it does not parse.
        reason: String,
    },
    /// The registry answered with an error.
    #[error("`{reference}`: {message}")]
    Remote {
        /// What was asked for.
        reference: String,
        /// What it said.
        message: String,
    },
    /// No published version satisfies a package's version requirement.
    #[error(
        "no published version of `{package}` satisfies `{requirement}` (it has: {})",
        list_or_none(available)
    )]
    NoMatch {
        /// The package.
        package: String,
        /// The requirement.
        requirement: String,
        /// The versions published.
        available: Vec<String>,
    },
    /// No such tag or digest.
    #[error(
        "`{reference}` was not found in the registry{}",
        available_tags(available)
    )]
    NotFound {
        /// What was asked for.
        reference: String,
        /// The repository's tags, when it lists them.
        available: Option<Vec<String>>,
    },
    /// The tag exists and `--force` was not given.
    #[error(
        "`{reference}` already exists in the registry (manifest {digest}); pass --force to overwrite it"
    )]
    Exists {
        /// The tag.
        reference: String,
        /// The manifest it points at.
        digest: String,
    },
    /// An artifact that is not a wasm component.
    #[error("`{reference}` is not a wasm component artifact: {found}")]
    NotWasm {
        /// The artifact.
        reference: String,
        /// Its media type or what else is wrong.
        found: String,
    },
    /// The registry served bytes that do not hash to what was asked.
    #[error(
        "`{reference}`: {what} digest mismatch: expected {expected}, the registry served {found}"
    )]
    DigestMismatch {
        /// The artifact.
        reference: String,
        /// `manifest`, `config` or `layer`.
        what: &'static str,
        /// The digest asked for.
        expected: String,
        /// The digest of what came.
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
