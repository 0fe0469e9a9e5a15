//! `pwchain login`: registry credentials, stored as `docker login` does.

use crate::args::LoginArgs;
use miette::IntoDiagnostic;
use miette::WrapErr;
use miette::miette;
use std::process::ExitCode;

pub(crate) fn login(args: LoginArgs) -> miette::Result<ExitCode> {
    let mut password = String::new();
    std::io::stdin()
        .read_line(&mut password)
        .into_diagnostic()
        .wrap_err("cannot read the password from standard input")?;
    let password = password.trim_end_matches(['\r', '\n']);
    if password.is_empty() {
        return Err(miette!("no password on standard input"));
    }
    let path = pwchain_compose::oci::registry::login(&args.registry, &args.username, password)
        .map_err(|e| miette!("{e}"))?;
    eprintln!(
        "credentials for {} stored in {}",
        args.registry,
        path.display()
    );
    Ok(ExitCode::SUCCESS)
}
