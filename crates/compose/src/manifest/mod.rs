//! `chain.toml`: the ordered plugins of a chain and what answers after them.
//!
//! Parsing is two steps: serde reads a raw, span-carrying form (so unknown
//! keys and wrong types get toml's own positions), then [`Manifest::parse`]
//! checks what serde cannot (one source per plugin, unique names, a sane
//! `[origin]`) and builds types in which those mistakes cannot be expressed.

mod route;

use crate::error::{Error, SourceFile};
use crate::model::{Forward, KeptIn, Origin};
use crate::policy::{AuthorityPattern, ImportPattern, Settings, SideCalls};
use crate::route::RouteMatch;
use pwchain_forwarding::Upstream;
use serde::Deserialize;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
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
    pub origin: Option<Origin<PluginSpec>>,
    /// `[chain] allow-imports`: the host imports the chain may use (`None`:
    /// any), and where the list is written.
    pub allow_imports: Option<(Vec<ImportPattern>, Range<usize>)>,
    /// `[chain] filter-metrics`: where wrapped filters' metrics are kept.
    pub filter_metrics: KeptIn,
    /// `[chain] shared-data`: where wrapped filters' shared data and queues
    /// are kept.
    pub shared_data: KeptIn,
    /// `[chain] fuse` (default true): consecutive header filters share one
    /// driver.
    pub fuse: bool,
    /// `[chain] stage-timing` (default false): a timer in front of every
    /// stage.
    pub stage_timing: bool,
    /// The manifest's text, for errors found after parsing.
    pub file: Arc<SourceFile>,
}

/// One `[[plugin]]` table.
#[derive(Debug, Clone)]
pub struct PluginSpec {
    /// Unique within the chain; a WIT identifier (`kebab-case`).
    pub name: String,
    /// Where its bytes come from.
    pub source: Source,
    /// `digest = "sha256:…"`: the component's bytes must hash to this,
    /// wherever they come from.
    pub digest: Option<Spanned<String>>,
    /// `config` and `side-calls`.
    pub settings: Settings,
    /// Where `config` and `side-calls` are written, if they are.
    pub config_span: Option<Range<usize>>,
    /// Where `side-calls` is written, for errors.
    pub side_calls_span: Option<Range<usize>>,
    /// Where the plugin's table is, for errors that concern it.
    pub span: Range<usize>,
    /// Set when the source is a legacy proxy-wasm module, wrapped as the
    /// chain is composed.
    pub legacy: Option<Legacy>,
    /// The keys a registry source's signature must verify against: the
    /// plugin's own `trust`, else the chain's.
    pub trust: Vec<TrustKey>,
    /// Where the plugin set `trust` itself, if it did.
    pub own_trust_span: Option<Range<usize>>,
    /// `match`: the requests it applies to, and where it is written.
    pub route: Option<(RouteMatch, Range<usize>)>,
}

/// A public key named in a `trust` list.
#[derive(Debug, Clone)]
pub struct TrustKey {
    /// As written: relative paths are relative to the manifest.
    pub path: PathBuf,
    /// Where the entry is written, for errors.
    pub span: Range<usize>,
}

/// `proxy-wasm = "…"`: what Envoy would pass the module, as strings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Legacy {
    /// `configuration`, read in `on_configure`.
    pub configuration: String,
    /// `vm-configuration`, read in `on_vm_start`.
    pub vm_configuration: String,
    /// `root-id`, the root context's name, as Envoy's `root_id`.
    pub root_id: String,
    /// `clusters` (the chain's, then the plugin's over them): where a
    /// `proxy_http_call` naming each Envoy cluster goes, `scheme://authority`.
    pub clusters: Vec<(String, String)>,
}

/// Where a component comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A file, relative to the manifest's directory.
    /// `path = "…"`, relative to the manifest.
    Path {
        /// The path, resolved against the manifest's folder.
        path: PathBuf,
        /// Where it is written.
        span: Range<usize>,
    },
    /// An OCI reference, `oci://host/ns/name:tag`.
    Oci {
        /// The `oci://` reference.
        reference: String,
        /// Where it is written.
        span: Range<usize>,
    },
    /// A registry package name with a version requirement, `ns:name@^1.2`.
    /// `package = "ns:name@req"`, resolved through the configured registries.
    Package {
        /// As written.
        spec: String,
        /// Where it is written.
        span: Range<usize>,
    },
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    chain: Option<RawChain>,
    #[serde(default)]
    plugin: Vec<Spanned<RawPlugin>>,
    origin: Option<Spanned<RawOrigin>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawChain {
    name: Option<Spanned<String>>,
    #[serde(rename = "allow-imports")]
    allow_imports: Option<Spanned<Vec<Spanned<String>>>>,
    clusters: Option<RawClusters>,
    #[serde(rename = "filter-metrics", default)]
    filter_metrics: KeptIn,
    #[serde(rename = "shared-data", default)]
    shared_data: KeptIn,
    fuse: Option<bool>,
    #[serde(rename = "stage-timing", default)]
    stage_timing: bool,
    trust: Option<RawTrust>,
}

/// `trust = ["keys/acme.pub", …]`.
type RawTrust = Spanned<Vec<Spanned<String>>>;

/// Checks a `trust` list: each entry names a file (read when the chain
/// resolves, so that the error can say which plugin needed it).
fn parse_trust(file: &SourceFile, raw: Option<RawTrust>) -> Result<Option<Vec<TrustKey>>, Error> {
    let Some(raw) = raw else { return Ok(None) };
    raw.into_inner()
        .into_iter()
        .map(|entry| {
            let span = entry.span();
            match entry.into_inner() {
                path if path.trim().is_empty() => Err(file.error(
                    span,
                    "an empty `trust` entry".into(),
                    Some("name a public key file, e.g. `keys/acme.pub`".into()),
                )),
                path => Ok(TrustKey {
                    path: PathBuf::from(path),
                    span,
                }),
            }
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// `clusters = { NAME = "http://host:port", … }`.
type RawClusters = Spanned<indexmap::IndexMap<String, Spanned<String>>>;

/// The keys that set what a plugin may have and do.
struct RawSettings {
    config: Option<Spanned<toml::Value>>,
    side_calls: Option<Spanned<toml::Value>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlugin {
    name: Spanned<String>,
    path: Option<Spanned<String>>,
    source: Option<Spanned<String>>,
    package: Option<Spanned<String>>,
    digest: Option<Spanned<String>>,
    config: Option<Spanned<toml::Value>>,
    #[serde(rename = "side-calls")]
    side_calls: Option<Spanned<toml::Value>>,
    #[serde(rename = "proxy-wasm")]
    proxy_wasm: Option<Spanned<String>>,
    configuration: Option<Spanned<String>>,
    #[serde(rename = "vm-configuration")]
    vm_configuration: Option<Spanned<String>>,
    #[serde(rename = "root-id")]
    root_id: Option<Spanned<String>>,
    clusters: Option<RawClusters>,
    trust: Option<RawTrust>,
    #[serde(rename = "match")]
    route: Option<Spanned<route::RawMatch>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOrigin {
    name: Option<Spanned<String>>,
    forward: Option<Spanned<bool>>,
    host: Option<Spanned<bool>>,
    upstream: Option<Spanned<String>>,
    #[serde(rename = "connect-timeout")]
    connect_timeout: Option<Spanned<String>>,
    #[serde(rename = "first-byte-timeout")]
    first_byte_timeout: Option<Spanned<String>>,
    #[serde(rename = "between-bytes-timeout")]
    between_bytes_timeout: Option<Spanned<String>>,
    path: Option<Spanned<String>>,
    source: Option<Spanned<String>>,
    package: Option<Spanned<String>>,
    digest: Option<Spanned<String>>,
    config: Option<Spanned<toml::Value>>,
    #[serde(rename = "side-calls")]
    side_calls: Option<Spanned<toml::Value>>,
    trust: Option<RawTrust>,
    /// Refused with a hint: nothing stands after the origin to skip to.
    #[serde(rename = "match")]
    route: Option<Spanned<toml::Value>>,
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

        let RawChain {
            name,
            allow_imports,
            clusters: chain_clusters,
            filter_metrics,
            shared_data,
            fuse,
            stage_timing,
            trust: chain_trust,
        } = raw.chain.unwrap_or_default();
        let chain_trust = parse_trust(&file, chain_trust)?.unwrap_or_default();
        let chain_clusters = chain_clusters
            .map(|c| parse_clusters(&file, c))
            .transpose()?
            .unwrap_or_default();
        let allow_imports = allow_imports
            .map(|list| {
                let span = list.span();
                let patterns = list
                    .into_inner()
                    .into_iter()
                    .map(|p| {
                        p.get_ref().parse().map_err(|why| {
                            file.error(
                                p.span(),
                                format!("`{}` is not an import pattern", p.get_ref()),
                                Some(why),
                            )
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Ok::<_, Error>((patterns, span))
            })
            .transpose()?;
        let name = match name {
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
            let legacy = legacy(
                &file,
                &plugin.proxy_wasm,
                RawLegacy {
                    configuration: plugin.configuration,
                    vm_configuration: plugin.vm_configuration,
                    root_id: plugin.root_id,
                    clusters: plugin.clusters,
                },
                &chain_clusters,
            )?;
            let proxy_wasm = plugin.proxy_wasm.map(|p| {
                let span = p.span();
                let text = p.into_inner();
                match text.starts_with("oci://") {
                    true => Source::Oci {
                        reference: text,
                        span,
                    },
                    false => Source::Path {
                        path: PathBuf::from(text),
                        span,
                    },
                }
            });
            let source = one_source(
                &file,
                &span,
                plugin.path,
                plugin.source,
                plugin.package,
                proxy_wasm,
                "`path`, `source`, `package` and `proxy-wasm`",
            )?;
            let digest = plugin.digest.map(|d| check_digest(&file, d)).transpose()?;
            let (settings, config_span, side_calls_span) = parse_settings(
                &file,
                RawSettings {
                    config: plugin.config,
                    side_calls: plugin.side_calls,
                },
            )?;
            let own_trust_span = plugin.trust.as_ref().map(|t| t.span());
            let route = plugin
                .route
                .map(|raw| route::parse(&file, raw))
                .transpose()?;
            plugins.push(PluginSpec {
                name: plugin.name.into_inner(),
                source,
                digest,
                settings,
                config_span,
                side_calls_span,
                span,
                legacy,
                trust: parse_trust(&file, plugin.trust)?.unwrap_or_else(|| chain_trust.clone()),
                own_trust_span,
                route,
            });
        }

        let origin = raw
            .origin
            .map(|o| parse_origin(&file, o, &chain_trust))
            .transpose()?;
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
            allow_imports,
            filter_metrics,
            shared_data,
            fuse: fuse.unwrap_or(true),
            stage_timing,
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
    if is_valid_name(name.get_ref()) {
        return Ok(());
    }
    Err(file.error(
        name.span(),
        format!("invalid {what} name `{}`", name.get_ref()),
        Some("names are kebab-case: lowercase words of letters and digits joined by `-`, e.g. `add-header`".into()),
    ))
}

/// Whether `name` is kebab-case (lowercase words of letters and digits
/// joined by `-`), as WIT identifiers and plugin names must be.
pub fn is_valid_name(name: &str) -> bool {
    name.split('-').all(|part| {
        part.chars().next().is_some_and(|c| c.is_ascii_lowercase())
            && part
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
    })
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

/// The keys only a `proxy-wasm` plugin reads.
struct RawLegacy {
    configuration: Option<Spanned<String>>,
    vm_configuration: Option<Spanned<String>>,
    root_id: Option<Spanned<String>>,
    clusters: Option<RawClusters>,
}

/// A `proxy-wasm` plugin's settings; the chain's `clusters` under its own.
fn legacy(
    file: &SourceFile,
    proxy_wasm: &Option<Spanned<String>>,
    raw: RawLegacy,
    chain_clusters: &[(String, String)],
) -> Result<Option<Legacy>, Error> {
    if proxy_wasm.is_none() {
        let given = [&raw.configuration, &raw.vm_configuration, &raw.root_id]
            .into_iter()
            .flatten()
            .map(|key| key.span())
            .chain(raw.clusters.as_ref().map(|c| c.span()))
            .next();
        if let Some(span) = given {
            return Err(file.error(
                span,
                "`configuration`, `vm-configuration`, `root-id` and `clusters` are for `proxy-wasm` plugins"
                    .into(),
                Some("a component plugin reads its settings from `config = { … }`".into()),
            ));
        }
        return Ok(None);
    }
    let text = |key: Option<Spanned<String>>| key.map(Spanned::into_inner).unwrap_or_default();
    let own = raw
        .clusters
        .map(|c| parse_clusters(file, c))
        .transpose()?
        .unwrap_or_default();
    let mut clusters: Vec<(String, String)> = chain_clusters
        .iter()
        .filter(|(name, _)| !own.iter().any(|(n, _)| n == name))
        .cloned()
        .collect();
    clusters.extend(own);
    Ok(Some(Legacy {
        configuration: text(raw.configuration),
        vm_configuration: text(raw.vm_configuration),
        root_id: text(raw.root_id),
        clusters,
    }))
}

/// `clusters = { httpbin = "http://127.0.0.1:9000" }`: each name an Envoy
/// cluster, each value where calls to it go.
fn parse_clusters(file: &SourceFile, raw: RawClusters) -> Result<Vec<(String, String)>, Error> {
    raw.into_inner()
        .into_iter()
        .map(|(name, url)| {
            let mapped = cluster_url(url.get_ref()).map_err(|why| {
                file.error(
                    url.span(),
                    format!(
                        "cluster `{name}` = `{}` is not an upstream URL: {why}",
                        url.get_ref()
                    ),
                    Some("map a cluster to `http://host:port` or `https://host:port`".into()),
                )
            })?;
            Ok((name, mapped))
        })
        .collect()
}

fn one_source(
    file: &SourceFile,
    table: &Range<usize>,
    path: Option<Spanned<String>>,
    source: Option<Spanned<String>>,
    package: Option<Spanned<String>>,
    proxy_wasm: Option<Source>,
    keys: &str,
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
        proxy_wasm,
    ]
    .into_iter()
    .flatten()
    .collect();
    match <[Source; 1]>::try_from(given) {
        Ok([source]) => Ok(source),
        Err(given) if given.is_empty() => Err(file.error(
            table.clone(),
            format!("missing field `path`: a plugin needs one of {keys}"),
            None,
        )),
        Err(given) => Err(file.error(
            given[1].span(),
            format!("a plugin takes only one of {keys}"),
            Some("keep the one that says where this component comes from".into()),
        )),
    }
}

fn parse_origin(
    file: &SourceFile,
    origin: Spanned<RawOrigin>,
    chain_trust: &[TrustKey],
) -> Result<Origin<PluginSpec>, Error> {
    let span = origin.span();
    let raw = origin.into_inner();
    if let Some(route) = &raw.route {
        return Err(file.error(
            route.span(),
            "the origin takes no `match`: every request that passes the plugins reaches it".into(),
            Some("put `match` on the plugin it is for".into()),
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
    let upstream = raw
        .upstream
        .map(|text| {
            let parsed = text.get_ref().parse::<Upstream>().map_err(|e| {
                file.error(
                    text.span(),
                    format!(
                        "`upstream` = `{}` is not an upstream URL: {e}",
                        text.get_ref()
                    ),
                    Some(e.hint().into()),
                )
            })?;
            Ok::<_, Error>((text.span(), parsed))
        })
        .transpose()?;
    if let Some((span, _)) = &upstream {
        chosen.push((span.clone(), "upstream"));
    }
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
    let service = chosen.first().is_some_and(|c| c.1 == "a service component");
    let (settings, config_span, side_calls_span) = parse_settings(
        file,
        RawSettings {
            config: raw.config,
            side_calls: raw.side_calls,
        },
    )?;
    if !service && let Some(span) = config_span.clone().or(side_calls_span.clone()) {
        return Err(file.error(
            span,
            "only a service `[origin]` takes `config` or `side-calls`".into(),
            Some("set them on the plugin they are for".into()),
        ));
    }
    let forwards = matches!(chosen.first().map(|c| c.1), Some("forward" | "upstream"));
    let timeout = |key: Option<Spanned<String>>, name: &str, default: Duration| match key {
        None => Ok(default),
        Some(text) if !forwards => Err(file.error(
            text.span(),
            format!("`{name}` is for an origin that forwards"),
            Some(
                "only `forward = true` or `upstream = \"…\"` sends requests on and waits for them"
                    .into(),
            ),
        )),
        Some(text) => parse_duration(text.get_ref()).ok_or_else(|| {
            file.error(
                text.span(),
                format!("`{name}` = `{}` is not a duration", text.get_ref()),
                Some("write a number and a unit: `250ms`, `5s` or `2m`".into()),
            )
        }),
    };
    let connect_timeout = timeout(
        raw.connect_timeout,
        "connect-timeout",
        Forward::DEFAULT_CONNECT_TIMEOUT,
    )?;
    let first_byte_timeout = timeout(
        raw.first_byte_timeout,
        "first-byte-timeout",
        Forward::DEFAULT_FIRST_BYTE_TIMEOUT,
    )?;
    let between_bytes_timeout = raw
        .between_bytes_timeout
        .map(|text| timeout(Some(text), "between-bytes-timeout", Duration::ZERO))
        .transpose()?;
    let forward = |upstream| {
        Origin::Forward(Forward {
            upstream,
            connect_timeout,
            first_byte_timeout,
            between_bytes_timeout,
        })
    };
    if let (Some(trust), Some((_, what))) = (&raw.trust, chosen.first())
        && *what != "a service component"
    {
        return Err(file.error(
            trust.span(),
            format!("`trust` means nothing for an origin that is `{what}`"),
            Some(
                "`trust` checks the signature of a service component pulled from a registry".into(),
            ),
        ));
    }
    match chosen.first().map(|c| c.1) {
        Some("forward") => Ok(forward(None)),
        Some("upstream") => Ok(forward(upstream.map(|(_, upstream)| upstream))),
        Some("host") => Ok(Origin::Host),
        Some(_) => Ok(Origin::Service(Box::new(PluginSpec {
            name: match raw.name {
                Some(name) => {
                    check_name(file, &name, "origin")?;
                    name.into_inner()
                }
                None => "origin".into(),
            },
            source: one_source(
                file,
                &span,
                raw.path,
                raw.source,
                raw.package,
                None,
                "`path`, `source` and `package`",
            )?,
            digest: raw.digest.map(|d| check_digest(file, d)).transpose()?,
            settings,
            config_span,
            side_calls_span,
            span,
            legacy: None,
            own_trust_span: raw.trust.as_ref().map(|t| t.span()),
            route: None,
            trust: parse_trust(file, raw.trust)?.unwrap_or_else(|| chain_trust.to_vec()),
        }))),
        None => Err(file.error(
            span,
            "`[origin]` says nothing".into(),
            Some("set `upstream = \"http://host:port\"`, `forward = true`, `host = true`, or `path = \"service.wasm\"`".into()),
        )),
    }
}

/// `250ms`, `5s`, `2m`: a whole number and a unit.
fn parse_duration(text: &str) -> Option<Duration> {
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().ok()?;
    match unit.trim() {
        "ms" => Some(Duration::from_millis(number)),
        "s" => Some(Duration::from_secs(number)),
        "m" => Some(Duration::from_secs(number.checked_mul(60)?)),
        _ => None,
    }
}

type ParsedSettings = (Settings, Option<Range<usize>>, Option<Range<usize>>);

/// `config` becomes string entries (other TOML values as their JSON text);
/// `side-calls` is `"allow"`, `"deny"` or `{ allow = ["host:port", …] }`.
fn parse_settings(file: &SourceFile, raw: RawSettings) -> Result<ParsedSettings, Error> {
    let config_span = raw.config.as_ref().map(|c| c.span());
    let config = match raw.config {
        None => None,
        Some(table) => {
            let span = table.span();
            let toml::Value::Table(table) = table.into_inner() else {
                return Err(file.error(
                    span,
                    "`config` must be a table of keys and values".into(),
                    Some("write it as `config = { key = \"value\" }`".into()),
                ));
            };
            let entries = table
                .into_iter()
                .map(|(key, value)| {
                    if key.is_empty() {
                        return Err(file.error(
                            span.clone(),
                            "a `config` key is empty".into(),
                            Some("give every entry a name".into()),
                        ));
                    }
                    let text = match value {
                        toml::Value::String(text) => text,
                        toml::Value::Datetime(when) => when.to_string(),
                        other => serde_json::to_string(&other).unwrap_or_default(),
                    };
                    Ok((key, text))
                })
                .collect::<Result<Vec<_>, _>>()?;
            Some(entries)
        }
    };
    let side_calls_span = raw.side_calls.as_ref().map(|c| c.span());
    let side_calls = match raw.side_calls {
        None => SideCalls::Allow,
        Some(value) => {
            let span = value.span();
            let wrong = || {
                file.error(
                    span.clone(),
                    "`side-calls` must be \"allow\", \"deny\" or { allow = [\"host:port\", …] }".into(),
                    Some("e.g. `side-calls = { allow = [\"collector.internal:9000\", \"*.example.internal\"] }`".into()),
                )
            };
            match value.into_inner() {
                toml::Value::String(mode) if mode == "allow" => SideCalls::Allow,
                toml::Value::String(mode) if mode == "deny" => SideCalls::Deny,
                toml::Value::Table(table) if table.len() == 1 => {
                    let Some(toml::Value::Array(list)) = table.get("allow") else {
                        return Err(wrong());
                    };
                    let patterns = list
                        .iter()
                        .map(|item| {
                            let text = item.as_str().ok_or_else(wrong)?;
                            text.parse::<AuthorityPattern>().map_err(|why| {
                                file.error(
                                    span.clone(),
                                    format!("`{text}` is not an authority pattern: {why}"),
                                    Some("patterns are `host`, `host:port`, `*.domain` or `*.domain:port`".into()),
                                )
                            })
                        })
                        .collect::<Result<Vec<_>, _>>()?;
                    SideCalls::AllowList(patterns)
                }
                _ => return Err(wrong()),
            }
        }
    };
    Ok((
        Settings { config, side_calls },
        config_span,
        side_calls_span,
    ))
}

/// The `scheme://authority` an Envoy cluster name stands for, from a URL
/// `http(s)://host:port`: what `proxy_http_call`s to that cluster reach.
/// The call keeps its own `:path`, so the URL takes none.
pub fn cluster_url(url: &str) -> Result<String, String> {
    let upstream: pwchain_forwarding::Upstream = url.parse().map_err(|e| format!("{e}"))?;
    if !upstream.base_path().is_empty() {
        return Err(format!(
            "it has a path (`{}`); a call keeps its own `:path`, so a cluster is only `http(s)://host:port`",
            upstream.base_path()
        ));
    }
    Ok(upstream.to_string())
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
        assert_eq!(
            m.origin.and_then(|o| match o {
                Origin::Forward(f) => Some(f),
                _ => None,
            }),
            Some(Forward {
                upstream: None,
                connect_timeout: Forward::DEFAULT_CONNECT_TIMEOUT,
                first_byte_timeout: Forward::DEFAULT_FIRST_BYTE_TIMEOUT,
                between_bytes_timeout: None,
            })
        );
    }

    #[test]
    fn name_defaults_to_the_file_stem() {
        let m = parse("[[plugin]]\nname = \"a\"\npath = \"a.wasm\"\n").unwrap();
        assert_eq!(m.name, "chain");
        assert!(m.origin.is_none());
    }

    fn origin(table: &str) -> Result<Manifest, Error> {
        parse(&format!(
            "[[plugin]]\nname = \"a\"\npath = \"a\"\n[origin]\n{table}"
        ))
    }

    fn origin_message(table: &str) -> String {
        message(&format!(
            "[[plugin]]\nname = \"a\"\npath = \"a\"\n[origin]\n{table}"
        ))
    }

    #[test]
    fn upstream_origin() {
        let m = origin("upstream = \"http://127.0.0.1:9000/api/\"\nconnect-timeout = \"250ms\"\nfirst-byte-timeout = \"2m\"\nbetween-bytes-timeout = \"30s\"\n").unwrap();
        let Some(Origin::Forward(forward)) = m.origin else {
            panic!("expected a `forward` or `upstream` origin");
        };
        assert_eq!(
            forward.upstream.map(|u| u.to_string()).as_deref(),
            Some("http://127.0.0.1:9000/api")
        );
        assert_eq!(forward.connect_timeout, Duration::from_millis(250));
        assert_eq!(forward.first_byte_timeout, Duration::from_secs(120));
        assert_eq!(forward.between_bytes_timeout, Some(Duration::from_secs(30)));
        let Some(Origin::Forward(forward)) = origin("forward = true\nconnect-timeout = \"1s\"\n")
            .unwrap()
            .origin
        else {
            panic!("expected a `forward` or `upstream` origin");
        };
        assert_eq!(forward.upstream, None);
        assert_eq!(forward.connect_timeout, Duration::from_secs(1));
        assert_eq!(
            forward.first_byte_timeout,
            Forward::DEFAULT_FIRST_BYTE_TIMEOUT
        );
        assert_eq!(forward.between_bytes_timeout, None);
    }

    #[test]
    fn bad_upstreams_are_located() {
        for (table, expected) in [
            (
                "upstream = \"127.0.0.1:9000\"\n",
                "5:12: `upstream` = `127.0.0.1:9000` is not an upstream URL: it is not an absolute URL",
            ),
            (
                "upstream = \"ftp://x\"\n",
                "5:12: `upstream` = `ftp://x` is not an upstream URL: scheme `ftp` is not http, https or h2c",
            ),
            (
                "upstream = \"http://x/#a\"\n",
                "5:12: `upstream` = `http://x/#a` is not an upstream URL: it has a fragment (`#…`)",
            ),
            (
                "upstream = \"http://u:p@x\"\n",
                "5:12: `upstream` = `http://u:p@x` is not an upstream URL: it carries user information (`user@`)",
            ),
            (
                "upstream = \"http://x:70000\"\n",
                "5:12: `upstream` = `http://x:70000` is not an upstream URL: port `70000` is not a number from 1 to 65535",
            ),
            (
                "forward = true\nupstream = \"http://x\"\n",
                "6:12: `[origin]` can be only one thing, found forward and upstream",
            ),
            (
                "host = true\nupstream = \"http://x\"\n",
                "6:12: `[origin]` can be only one thing, found host and upstream",
            ),
            (
                "upstream = \"http://x\"\npath = \"b.wasm\"\n",
                "6:8: `[origin]` can be only one thing, found upstream and a service component",
            ),
            (
                "upstream = \"http://x\"\nconnect-timeout = \"soon\"\n",
                "6:19: `connect-timeout` = `soon` is not a duration",
            ),
            (
                "upstream = \"http://x\"\nfirst-byte-timeout = \"5\"\n",
                "6:22: `first-byte-timeout` = `5` is not a duration",
            ),
            (
                "host = true\nconnect-timeout = \"5s\"\n",
                "6:19: `connect-timeout` is for an origin that forwards",
            ),
            (
                "upstream = \"http://x\"\nconfig = { a = \"b\" }\n",
                "6:10: only a service `[origin]` takes `config` or `side-calls`",
            ),
        ] {
            assert_eq!(origin_message(table), expected, "{table}");
        }
        let Err(Error::Located(e)) = origin("upstream = \"http://u:p@x\"\n") else {
            panic!("expected a located error");
        };
        assert!(
            e.help.as_deref().is_some_and(|h| h.contains("credentials")),
            "{:?}",
            e.help
        );
    }

    #[test]
    fn errors_carry_line_and_column() {
        assert_eq!(message(""), "1:1: the chain has no plugins");
        assert_eq!(
            message("[[plugin]]\nname = \"a\"\npath = \"a\"\npackage = \"x:y@1\"\n"),
            "4:11: a plugin takes only one of `path`, `source`, `package` and `proxy-wasm`"
        );
        assert_eq!(
            message("[[plugin]]\nname = \"a-\"\npath = \"a\"\n"),
            "2:8: invalid plugin name `a-`"
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
