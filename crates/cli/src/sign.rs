//! `pwchain sign`: a cosign signature on an artifact in a registry.

use crate::args::SignArgs;
use miette::IntoDiagnostic;
use pwchain_compose::oci::registry::{OciRef, Registry};
use pwchain_compose::oci::signing::{SigningKey, sign_artifact};
use std::path::Path;
use std::process::ExitCode;

pub(crate) fn sign(args: SignArgs) -> miette::Result<ExitCode> {
    let reference: OciRef = args
        .reference
        .parse()
        .map_err(pwchain_compose::Error::from)?;
    let registry = Registry::new().map_err(pwchain_compose::Error::from)?;
    let key = open_key(&args.key, &reference)?;
    let signed = sign_artifact(&registry, &reference, &key)?;
    if args.json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&signed).into_diagnostic()?
        );
    } else {
        outln!("{}", signed.signature);
        eprintln!(
            "signed {} with key {} (signature at {})",
            signed.reference, signed.key, signed.signature_tag
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Opens the private key at `path` with its password, to sign `reference`.
pub(crate) fn open_key(path: &Path, reference: &OciRef) -> miette::Result<SigningKey> {
    let password = crate::key::password()?;
    Ok(
        SigningKey::load(path, &password).map_err(|source| pwchain_compose::Error::Key {
            what: format!("`{reference}`"),
            source,
        })?,
    )
}
