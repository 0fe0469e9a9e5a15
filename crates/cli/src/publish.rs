//! `pwchain publish`: a component into an OCI registry.

use crate::args::PublishArgs;
use crate::progress;
use crate::read_component;
use crate::render;
use miette::IntoDiagnostic;
use miette::WrapErr;
use miette::miette;
use pwchain_compose::oci::registry::Contents;
use pwchain_compose::oci::registry::OciRef;
use pwchain_compose::oci::registry::Registry;
use pwchain_compose::oci::signing::sign_artifact;
use pwchain_compose::proxy_wasm;
use pwchain_compose::resolve::packages::PackageSpec;
use pwchain_compose::resolve::packages::Registries;
use std::collections::BTreeMap;
use std::process::ExitCode;

/// `oci://…:VERSION` as it is, or `ns:name@VERSION` through the registry
/// configuration.
fn publish_reference(text: &str, registry: Option<String>) -> miette::Result<OciRef> {
    if text.starts_with("oci://") {
        return Ok(text.parse().map_err(pwchain_compose::Error::from)?);
    }
    let (package, version) = text.split_once('@').ok_or_else(|| {
        miette!(
            help = "e.g. oci://HOST/acme/auth:1.2.0 or acme:auth@1.2.0",
            "`{text}` names no version"
        )
    })?;
    let spec: PackageSpec = package.parse().map_err(|e: String| miette!("{e}"))?;
    let repository = Registries::load(registry)
        .repository(&spec)
        .map_err(pwchain_compose::Error::from)?;
    Ok(format!("{repository}:{version}")
        .parse()
        .map_err(pwchain_compose::Error::from)?)
}

/// The OCI distribution spec's tag grammar:
/// `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.
fn is_tag(text: &str) -> bool {
    let mut chars = text.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        && text.len() <= 128
}

pub(crate) fn publish(args: PublishArgs) -> miette::Result<ExitCode> {
    let reference = publish_reference(&args.reference, args.registry.clone())?;
    let version = reference.tag().unwrap_or_default().to_string();
    if semver::Version::parse(&version).is_err() {
        return Err(miette!(
            help = format!(
                "publish as oci://HOST/NAMESPACE/NAME:1.2.0, and add `--tag {version}` to point a channel at it"
            ),
            "`{}`: the tag must be a semver version, found `{version}`",
            args.reference
        ));
    }
    for channel in &args.tags {
        if semver::Version::parse(channel).is_ok() {
            return Err(miette!(
                help = "publish each version as the reference itself; `--tag` names a channel such as `stable`",
                "`--tag {channel}` is a version, and a version is not moved"
            ));
        }
        if !is_tag(channel) {
            return Err(miette!(
                help = "a tag is letters, digits, `_`, `.` and `-`, starting with a letter, digit or `_`, at most 128 characters",
                "`--tag {channel}` is not a valid tag"
            ));
        }
    }
    let bytes = std::fs::read(&args.file)
        .into_diagnostic()
        .wrap_err_with(|| format!("cannot read `{}`", args.file.display()))?;
    let legacy = proxy_wasm::detect(&bytes).ok().flatten();
    let info;
    let contents = match &legacy {
        Some(module) => Contents::ProxyWasm(module),
        None => {
            info = read_component(&args.file)?.1;
            Contents::Component(&info)
        }
    };
    let what = match contents {
        Contents::ProxyWasm(_) => "proxy-wasm module".to_string(),
        Contents::Component(info) => info.role.to_string(),
    };
    let title = reference
        .repository()
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_string();
    let mut annotations = BTreeMap::from([
        (
            "org.opencontainers.image.created".to_string(),
            chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        ),
        ("org.opencontainers.image.version".to_string(), version),
        ("org.opencontainers.image.title".to_string(), title),
    ]);
    for (key, value) in [
        ("description", args.description),
        ("source", args.source),
        ("licenses", args.licenses),
    ] {
        if let Some(value) = value {
            annotations.insert(format!("org.opencontainers.image.{key}"), value);
        }
    }
    let registry = Registry::new()
        .map_err(pwchain_compose::Error::from)?
        .with_progress(progress::bars());
    // The key opens before anything is pushed: a wrong password publishes
    // nothing.
    let key = args
        .sign
        .as_ref()
        .map(|path| crate::sign::open_key(path, &reference))
        .transpose()?;
    let published = registry
        .publish(
            &reference,
            &bytes,
            contents,
            annotations,
            args.force,
            &args.tags,
        )
        .map_err(pwchain_compose::Error::from)?;
    let signed = key
        .map(|key| {
            sign_artifact(
                &registry,
                &reference.at_digest(&published.manifest_digest),
                &key,
            )
        })
        .transpose()?;
    if args.json {
        let mut value = serde_json::to_value(&published).into_diagnostic()?;
        if let Some(signed) = &signed {
            value["signed"] = serde_json::to_value(signed).into_diagnostic()?;
        }
        outln!(
            "{}",
            serde_json::to_string_pretty(&value).into_diagnostic()?
        );
    } else {
        outln!("{}", published.manifest_digest);
        eprintln!(
            "published {} ({} {}, layer {})",
            published.reference,
            what,
            render::kib(published.size),
            published.layer_digest
        );
        if !published.tags.is_empty() {
            eprintln!("tagged it {} too", published.tags.join(", "));
        }
        if let Some(signed) = &signed {
            eprintln!(
                "signed it with key {} (signature {} at {})",
                signed.key, signed.signature, signed.signature_tag
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
