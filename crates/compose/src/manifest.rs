//! `chain.toml`: the ordered plugins of a chain and what answers after them.
//!
//! Parsing is two steps: serde reads a raw, span-carrying form (so unknown
//! keys and wrong types get toml's own positions), then [`Manifest::parse`]
//! checks what serde cannot (one source per plugin, unique names, a sane
//! `[origin]`) and builds types in which those mistakes cannot be expressed.

use crate::error::{Error, SourceFile};
use serde::Deserialize;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use toml::Spanned;

/// A parsed chain manifest.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// The chain's name (`[chain] name`, else the file's stem).
    pub name: String,
    /// Plugins in request order, outermost first.
    pub plugins: Vec<PluginSpec>,
    /// What stands after the last plugin; `None` when the last plugin is a
    /// service itself.
    pub origin: Option<Origin>,
    /// The manifest's text, for errors found after parsing.
    pub file: Arc<SourceFile>,
}

/// One `[[plugin]]` table.
#[derive(Debug, Clone)]
pub struct PluginSpec {
    /// Unique within the chain; a WIT identifier (`kebab-case`).
    pub name: String,
    pub source: Source,
    /// `digest = "sha256:…"`: the component's bytes must hash to this,
    /// wherever they come from.
    pub digest: Option<Spanned<String>>,
    /// Where the plugin's table is, for errors that concern it.
    pub span: Range<usize>,
}

/// Where a component comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A file, relative to the manifest's directory.
    Path { path: PathBuf, span: Range<usize> },
    /// An OCI reference, `oci://host/ns/name:tag`.
    Oci {
        reference: String,
        span: Range<usize>,
    },
    /// A registry package name with a version requirement, `ns:name@^1.2`.
    Package { spec: String, span: Range<usize> },
}

impl Source {
    /// Where the source value is written in the manifest.
    pub fn span(&self) -> Range<usize> {
        match self {
            Source::Path { span, .. } | Source::Oci { span, .. } | Source::Package { span, .. } => {
                span.clone()
            }
        }
    }
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Path { path, .. } => write!(f, "{}", path.display()),
            Source::Oci { reference, .. } => f.write_str(reference),
            Source::Package { spec, .. } => f.write_str(spec),
        }
    }
}

/// The `[origin]` table: what answers after the last plugin.
#[derive(Debug, Clone)]
pub enum Origin {
    /// A service component.
    Service(PluginSpec),
    /// pwchain's built-in terminator: send the request on to its authority
    /// through the host's `wasi:http/client`.
    Forward,
    /// Leave the next-hop import open for the host to provide.
    Host,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    chain: Option<RawChain>,
    #[serde(default)]
    plugin: Vec<Spanned<RawPlugin>>,
    origin: Option<Spanned<RawOrigin>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawChain {
    name: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlugin {
    name: Spanned<String>,
    path: Option<Spanned<String>>,
    source: Option<Spanned<String>>,
    package: Option<Spanned<String>>,
    digest: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOrigin {
    name: Option<Spanned<String>>,
    forward: Option<Spanned<bool>>,
    host: Option<Spanned<bool>>,
    upstream: Option<Spanned<String>>,
    path: Option<Spanned<String>>,
    source: Option<Spanned<String>>,
    package: Option<Spanned<String>>,
    digest: Option<Spanned<String>>,
}

impl Manifest {
    /// Reads and parses the manifest at `path`.
    pub fn load(path: &Path) -> Result<Manifest, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Manifest::parse(path, text)
    }

    /// Parses manifest `text`; `path` names it in errors and anchors relative
    /// plugin paths.
    pub fn parse(path: &Path, text: String) -> Result<Manifest, Error> {
        let file = Arc::new(SourceFile::new(path, text));
        let raw: RawManifest = toml::from_str(&file.text)
            .map_err(|e| file.error(e.span().unwrap_or(0..0), e.message().to_string(), None))?;

        let name = match raw.chain.and_then(|c| c.name) {
            Some(name) => {
                check_name(&file, &name, "chain")?;
                name.into_inner()
            }
            None => path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "chain".into()),
        };

        if raw.plugin.is_empty() {
            return Err(file.error(
                0..0,
                "the chain has no plugins".into(),
                Some("add at least one `[[plugin]]` table with `name` and `path`".into()),
            ));
        }

        let mut plugins: Vec<PluginSpec> = Vec::with_capacity(raw.plugin.len());
        for table in raw.plugin {
            let span = table.span();
            let plugin = table.into_inner();
            check_name(&file, &plugin.name, "plugin")?;
            if let Some(first) = plugins.iter().find(|p| p.name == *plugin.name.get_ref()) {
                let (line, _) = file.line_col(first.span.start);
                return Err(file.error(
                    plugin.name.span(),
                    format!("duplicate plugin name `{}`", plugin.name.get_ref()),
                    Some(format!(
                        "the first plugin named so is at line {line}; give each stage its own name"
                    )),
                ));
            }
            let source = one_source(&file, &span, plugin.path, plugin.source, plugin.package)?;
            let digest = plugin.digest.map(|d| check_digest(&file, d)).transpose()?;
            plugins.push(PluginSpec {
                name: plugin.name.into_inner(),
                source,
                digest,
                span,
            });
        }

        let origin = raw.origin.map(|o| parse_origin(&file, o)).transpose()?;
        if let Some(Origin::Service(service)) = &origin
            && plugins.iter().any(|p| p.name == service.name)
        {
            return Err(file.error(
                service.span.clone(),
                format!("the origin's name `{}` is also a plugin's", service.name),
                Some("give the origin its own `name`".into()),
            ));
        }
        Ok(Manifest {
            name,
            plugins,
            origin,
            file,
        })
    }

    /// The directory relative plugin paths are resolved against.
    pub fn dir(&self) -> &Path {
        match self.file.path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        }
    }
}

/// Plugin and chain names become WIT package and instance names, so they
/// must be WIT identifiers.
fn check_name(file: &SourceFile, name: &Spanned<String>, what: &str) -> Result<(), Error> {
    let valid = name.get_ref().split('-').all(|part| {
        part.chars().next().is_some_and(|c| c.is_ascii_lowercase())
            && part
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
    });
    if valid {
        return Ok(());
    }
    Err(file.error(
        name.span(),
        format!("invalid {what} name `{}`", name.get_ref()),
        Some("names are kebab-case: lowercase words of letters and digits joined by `-`, e.g. `add-header`".into()),
    ))
}

fn check_digest(file: &SourceFile, digest: Spanned<String>) -> Result<Spanned<String>, Error> {
    let valid = digest
        .get_ref()
        .strip_prefix("sha256:")
        .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()));
    if valid {
        return Ok(digest);
    }
    Err(file.error(
        digest.span(),
        format!("`{}` is not a sha256 digest", digest.get_ref()),
        Some(
            "write it as `sha256:` and 64 hex digits (`pwchain inspect` shows a component's)"
                .into(),
        ),
    ))
}

fn one_source(
    file: &SourceFile,
    table: &Range<usize>,
    path: Option<Spanned<String>>,
    source: Option<Spanned<String>>,
    package: Option<Spanned<String>>,
) -> Result<Source, Error> {
    let given: Vec<Source> = [
        path.map(|p| Source::Path {
            span: p.span(),
            path: PathBuf::from(p.into_inner()),
        }),
        source.map(|s| Source::Oci {
            span: s.span(),
            reference: s.into_inner(),
        }),
        package.map(|s| Source::Package {
            span: s.span(),
            spec: s.into_inner(),
        }),
    ]
    .into_iter()
    .flatten()
    .collect();
    match <[Source; 1]>::try_from(given) {
        Ok([source]) => Ok(source),
        Err(given) if given.is_empty() => Err(file.error(
            table.clone(),
            "missing field `path`: a plugin needs one of `path`, `source` or `package`".into(),
            None,
        )),
        Err(given) => Err(file.error(
            given[1].span(),
            "a plugin takes only one of `path`, `source` and `package`".into(),
            Some("keep the one that says where this component comes from".into()),
        )),
    }
}

fn parse_origin(file: &SourceFile, origin: Spanned<RawOrigin>) -> Result<Origin, Error> {
    let span = origin.span();
    let raw = origin.into_inner();
    if let Some(upstream) = &raw.upstream {
        return Err(file.error(
            upstream.span(),
            "`upstream` is not supported yet".into(),
            Some("use `forward = true` to send requests to their own authority, or `host = true` and let the host choose".into()),
        ));
    }
    let mut chosen = Vec::new();
    for (flag, what) in [(&raw.forward, "forward"), (&raw.host, "host")] {
        match flag {
            Some(v) if *v.get_ref() => chosen.push((v.span(), what)),
            Some(v) => {
                return Err(file.error(
                    v.span(),
                    format!("`{what} = false` means nothing here"),
                    Some(format!("remove `{what}`, or set it to true")),
                ));
            }
            None => {}
        }
    }
    let service = [&raw.path, &raw.source, &raw.package]
        .into_iter()
        .flatten()
        .next()
        .map(|s| s.span());
    if let Some(span) = service {
        chosen.push((span, "a service component"));
    }
    if chosen.len() > 1 {
        return Err(file.error(
            chosen[1].0.clone(),
            format!(
                "`[origin]` can be only one thing, found {} and {}",
                chosen[0].1, chosen[1].1
            ),
            None,
        ));
    }
    match chosen.first().map(|c| c.1) {
        Some("forward") => Ok(Origin::Forward),
        Some("host") => Ok(Origin::Host),
        Some(_) => Ok(Origin::Service(PluginSpec {
            name: match raw.name {
                Some(name) => {
                    check_name(file, &name, "origin")?;
                    name.into_inner()
                }
                None => "origin".into(),
            },
            source: one_source(file, &span, raw.path, raw.source, raw.package)?,
            digest: raw.digest.map(|d| check_digest(file, d)).transpose()?,
            span,
        })),
        None => Err(file.error(
            span,
            "`[origin]` says nothing".into(),
            Some("set `forward = true`, `host = true`, or `path = \"service.wasm\"`".into()),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Manifest, Error> {
        Manifest::parse(Path::new("dir/chain.toml"), text.to_string())
    }

    fn message(text: &str) -> String {
        match parse(text) {
            Err(Error::Located(e)) => format!("{}:{}: {}", e.line, e.column, e.message),
            other => panic!("expected a located error, got {other:?}"),
        }
    }

    #[test]
    fn full_manifest() {
        let m = parse(
            "[chain]\nname = \"edge\"\n[[plugin]]\nname = \"a\"\npath = \"a.wasm\"\n[[plugin]]\nname = \"b\"\nsource = \"oci://r/b:1\"\n[origin]\nforward = true\n",
        )
        .unwrap();
        assert_eq!(m.name, "edge");
        assert_eq!(m.dir(), Path::new("dir"));
        assert_eq!(m.plugins[0].source.to_string(), "a.wasm");
        assert!(
            matches!(&m.plugins[1].source, Source::Oci { reference, .. } if reference == "oci://r/b:1")
        );
        assert!(matches!(m.origin, Some(Origin::Forward)));
    }

    #[test]
    fn name_defaults_to_the_file_stem() {
        let m = parse("[[plugin]]\nname = \"a\"\npath = \"a.wasm\"\n").unwrap();
        assert_eq!(m.name, "chain");
        assert!(m.origin.is_none());
    }

    #[test]
    fn errors_carry_line_and_column() {
        assert_eq!(message(""), "1:1: the chain has no plugins");
        assert_eq!(
            message("[[plugin]]\nname = \"a\"\npath = \"a\"\npackage = \"x:y@1\"\n"),
            "4:11: a plugin takes only one of `path`, `source` and `package`"
        );
        assert_eq!(
            message("[[plugin]]\nname = \"a-\"\npath = \"a\"\n"),
            "2:8: invalid plugin name `a-`"
        );
        assert_eq!(
            message("[[plugin]]\nname = \"a\"\npath = \"a\"\n[origin]\nupstream = \"http://x\"\n"),
            "5:12: `upstream` is not supported yet"
        );
        assert_eq!(
            message(
                "[[plugin]]\nname = \"a\"\npath = \"a\"\n[origin]\nname = \"a\"\npath = \"b\"\n"
            ),
            "4:1: the origin's name `a` is also a plugin's"
        );
        assert_eq!(
            message("[[plugin]]\nname = \"a\"\npath = \"a\"\n[origin]\n"),
            "4:1: `[origin]` says nothing"
        );
    }
}
