//! `pwchain verify`: does a trusted key vouch for an artifact?

use crate::args::VerifyArgs;
use miette::IntoDiagnostic;
use pwchain_compose::oci::registry::{OciRef, Registry};
use pwchain_compose::oci::signing::{PublicKey, verify_artifact};
use std::process::ExitCode;

pub(crate) fn verify(args: VerifyArgs) -> miette::Result<ExitCode> {
    let reference: OciRef = args
        .reference
        .parse()
        .map_err(pwchain_compose::Error::from)?;
    let keys = args
        .key
        .iter()
        .map(|path| {
            PublicKey::load(path).map_err(|source| pwchain_compose::Error::Key {
                what: format!("`{}`", args.reference),
                source,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let registry = Registry::new().map_err(pwchain_compose::Error::from)?;
    let checked = verify_artifact(&registry, &reference, &keys)?;
    if args.json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&checked).into_diagnostic()?
        );
    } else {
        outln!(
            "verified {} ({}): signed by {} ({}), signature {}",
            checked.reference,
            checked.manifest,
            checked.verified.key_file,
            checked.verified.key,
            checked.verified.signature
        );
    }
    Ok(ExitCode::SUCCESS)
}
