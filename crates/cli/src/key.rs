//! `pwchain key generate`: a cosign-compatible key pair.

use crate::args::{KeyCommand, KeyGenerateArgs};
use miette::{IntoDiagnostic, miette};
use pwchain_compose::output::{write_atomically, write_private};
use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;
use std::process::ExitCode;
use zeroize::Zeroizing;

pub(crate) fn key(command: KeyCommand) -> miette::Result<ExitCode> {
    match command {
        KeyCommand::Generate(args) => generate(args),
    }
}

/// The password of a private key: `PWCHAIN_PASSWORD`, else cosign's
/// `COSIGN_PASSWORD`, else the first line of standard input (never a
/// terminal, where it would be echoed).
pub(crate) fn password() -> miette::Result<Zeroizing<Vec<u8>>> {
    for name in ["PWCHAIN_PASSWORD", "COSIGN_PASSWORD"] {
        if let Some(value) = std::env::var_os(name) {
            return Ok(Zeroizing::new(value.into_encoded_bytes()));
        }
    }
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        return Err(miette!(
            help = "e.g. `PWCHAIN_PASSWORD=… pwchain …`, or `pwchain … < password-file`",
            "the key's password comes from `PWCHAIN_PASSWORD` (or `COSIGN_PASSWORD`) or from standard input, and standard input is a terminal"
        ));
    }
    let mut line = Zeroizing::new(String::new());
    stdin.lock().read_line(&mut line).into_diagnostic()?;
    let password = line.trim_end_matches(['\n', '\r']);
    Ok(Zeroizing::new(password.as_bytes().to_vec()))
}

fn generate(args: KeyGenerateArgs) -> miette::Result<ExitCode> {
    let with = |extension: &str| {
        let mut path = args.out.clone().into_os_string();
        path.push(format!(".{extension}"));
        PathBuf::from(path)
    };
    let (private, public) = (with("key"), with("pub"));
    if !args.force
        && let Some(existing) = [&private, &public].into_iter().find(|p| p.exists())
    {
        return Err(miette!(
            help = "choose another NAME, or pass --force to replace the pair",
            "`{}` exists",
            existing.display()
        ));
    }
    let password = password()?;
    let (private_pem, public_pem) =
        pwchain_compose::oci::signing::generate(&password).map_err(|source| {
            pwchain_compose::Error::Key {
                what: format!("`{}`", args.out.display()),
                source,
            }
        })?;
    write_private(&private, private_pem.as_bytes())?;
    write_atomically(&public, public_pem.as_bytes())?;
    let fingerprint = pwchain_compose::oci::signing::PublicKey::load(&public)
        .map_err(|source| pwchain_compose::Error::Key {
            what: format!("`{}`", args.out.display()),
            source,
        })?
        .fingerprint;
    outln!("{fingerprint}");
    eprintln!(
        "wrote {} (private, encrypted; keep it secret) and {} (public: what a chain's `trust` names)",
        private.display(),
        public.display()
    );
    Ok(ExitCode::SUCCESS)
}
