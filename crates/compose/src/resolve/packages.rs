//! Package sources (`package = "ns:name@^1.2"`): which registry serves a
//! namespace, and which published version satisfies a requirement.
//!
//! The registry for a namespace comes from, in order: `--registry` (or
//! `PWCHAIN_REGISTRY`), then the wkg configuration users already have
//! (`$WKG_CONFIG_FILE`, else `$XDG_CONFIG_HOME/wasm-pkg/config.toml`:
//! `[namespace_registries]`, then `default_registry`). Package `ns:name` lives
//! in repository `ns/name` there.

use crate::error::RegistryError;
use crate::oci::registry::OciRef;
use semver::{Version, VersionReq};
use std::path::PathBuf;

/// `ns:name@REQ` (a missing `@REQ` means any release).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageSpec {
    /// The package's namespace (`ns` in `ns:name`).
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// The versions it may be.
    pub requirement: VersionReq,
}

impl std::str::FromStr for PackageSpec {
    type Err = String;

    fn from_str(text: &str) -> Result<PackageSpec, String> {
        let (package, requirement) = match text.split_once('@') {
            Some((package, req)) => (
                package,
                VersionReq::parse(req)
                    .map_err(|e| format!("`{req}` is not a semver requirement: {e}"))?,
            ),
            None => (text, VersionReq::STAR),
        };
        let (namespace, name) = package
            .split_once(':')
            .filter(|(ns, name)| !ns.is_empty() && !name.is_empty() && !name.contains(':'))
            .ok_or_else(|| format!("`{package}` is not a package name (`namespace:name`)"))?;
        Ok(PackageSpec {
            namespace: namespace.to_string(),
            name: name.to_string(),
            requirement,
        })
    }
}

/// Which registry serves which namespace.
#[derive(Debug, Clone, Default)]
pub struct Registries {
    /// `--registry` / `PWCHAIN_REGISTRY`: serves every namespace.
    pub overriding: Option<String>,
    namespaces: Vec<(String, String)>,
    default: Option<String>,
}

impl Registries {
    /// The override, then the wkg configuration, if there is one.
    pub fn load(overriding: Option<String>) -> Registries {
        let mut registries = Registries {
            overriding: overriding.or_else(|| std::env::var("PWCHAIN_REGISTRY").ok()),
            ..Default::default()
        };
        let file = std::env::var_os("WKG_CONFIG_FILE")
            .map(PathBuf::from)
            .or_else(|| {
                let config = std::env::var_os("XDG_CONFIG_HOME")
                    .map(PathBuf::from)
                    .or_else(|| {
                        std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config"))
                    })?;
                Some(config.join("wasm-pkg/config.toml"))
            });
        let Some(config) = file
            .and_then(|f| std::fs::read_to_string(f).ok())
            .and_then(|text| text.parse::<toml::Table>().ok())
        else {
            return registries;
        };
        registries.default = config
            .get("default_registry")
            .and_then(|v| v.as_str())
            .map(str::to_string);
        if let Some(table) = config
            .get("namespace_registries")
            .and_then(|v| v.as_table())
        {
            for (namespace, value) in table {
                let registry = value
                    .as_str()
                    .or_else(|| value.get("registry").and_then(|r| r.as_str()));
                if let Some(registry) = registry {
                    registries
                        .namespaces
                        .push((namespace.clone(), registry.to_string()));
                }
            }
        }
        registries
    }

    /// The registry serving `namespace`.
    pub fn for_namespace(&self, namespace: &str) -> Option<&str> {
        self.overriding
            .as_deref()
            .or_else(|| {
                self.namespaces
                    .iter()
                    .find(|(ns, _)| ns == namespace)
                    .map(|(_, r)| r.as_str())
            })
            .or(self.default.as_deref())
    }

    /// The repository of `spec`, at no particular version.
    pub fn repository(&self, spec: &PackageSpec) -> Result<String, RegistryError> {
        let registry = self.for_namespace(&spec.namespace).ok_or_else(|| RegistryError::BadReference {
            reference: format!("{}:{}", spec.namespace, spec.name),
            reason: "no registry is configured for its namespace: pass --registry HOST, set PWCHAIN_REGISTRY, or add it to the wkg config's [namespace_registries]".into(),
        })?;
        Ok(format!("oci://{registry}/{}/{}", spec.namespace, spec.name))
    }
}

/// The highest of `tags` that satisfies `spec`, as a reference into
/// `repository`; or an error listing what exists.
pub fn select(
    spec: &PackageSpec,
    repository: &str,
    tags: &[String],
) -> Result<OciRef, RegistryError> {
    let mut versions: Vec<Version> = tags.iter().filter_map(|t| Version::parse(t).ok()).collect();
    versions.sort();
    match versions.iter().rev().find(|v| spec.requirement.matches(v)) {
        Some(version) => format!("{repository}:{version}").parse(),
        None => Err(RegistryError::NoMatch {
            package: format!("{}:{}", spec.namespace, spec.name),
            requirement: spec.requirement.to_string(),
            available: versions.iter().map(Version::to_string).collect(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs() {
        let spec: PackageSpec = "acme:auth@^1.2".parse().unwrap();
        assert_eq!(
            (spec.namespace.as_str(), spec.name.as_str()),
            ("acme", "auth")
        );
        assert!(spec.requirement.matches(&Version::new(1, 9, 0)));
        assert_eq!(
            "acme:auth".parse::<PackageSpec>().unwrap().requirement,
            VersionReq::STAR
        );
        assert!("auth@1".parse::<PackageSpec>().is_err());
        assert!("acme:auth@not-a-req".parse::<PackageSpec>().is_err());
    }

    #[test]
    fn selects_the_highest_match() {
        let spec: PackageSpec = "acme:auth@^1.2".parse().unwrap();
        let tags: Vec<String> = ["1.1.0", "1.2.0", "1.10.1", "2.0.0", "latest", "1.11.0-rc.1"]
            .iter()
            .map(|t| t.to_string())
            .collect();
        let chosen = select(&spec, "oci://r.example/acme/auth", &tags).unwrap();
        assert_eq!(chosen.to_string(), "oci://r.example/acme/auth:1.10.1");
        let none: PackageSpec = "acme:auth@^3".parse().unwrap();
        let error = select(&none, "oci://r.example/acme/auth", &tags)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("(it has: 1.1.0, 1.2.0, 1.10.1, 1.11.0-rc.1, 2.0.0)"),
            "{error}"
        );
    }
}
