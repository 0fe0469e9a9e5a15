//! `pwchain import envoy`: an Envoy v3 bootstrap's Wasm filter chain as a
//! `chain.toml`. The chosen listener's HTTP connection manager lists its
//! `http_filters` in order: each `envoy.filters.http.wasm` becomes a
//! `[[plugin]]` with `proxy-wasm`, its router becomes `[origin] upstream`
//! (the route's cluster), and the other clusters become the chain's
//! `clusters` for `proxy_http_call`. Errors point into the YAML.

use crate::error::{Error, SourceFile};
use crate::import::yaml::{Doc, kebab, list, toml_key, toml_string};
use crate::route::RouteMatch;
use marked_yaml::Node;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// What the user adds to what the file says.
#[derive(Debug, Default, Clone)]
pub struct EnvoyOptions {
    /// The listener to import (default: the first with HTTP filters).
    pub listener: Option<String>,
    /// `FROM=TO` path prefixes: Envoy's file names as this machine has them.
    pub maps: Vec<(String, String)>,
    /// `NAME=URL`: where a cluster really is.
    pub clusters: Vec<(String, String)>,
    /// Drop HTTP filters pwchain cannot run, with a comment, instead of
    /// failing.
    pub skip_unsupported: bool,
}

const WASM_FILTER: &str = "envoy.filters.http.wasm";
const WASM_TYPE: &str = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm";
const ROUTER_TYPE: &str = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router";
const HCM: &str = "envoy.filters.network.http_connection_manager";
const TYPED_STRUCTS: [&str; 2] = [
    "type.googleapis.com/udpa.type.v1.TypedStruct",
    "type.googleapis.com/xds.type.v3.TypedStruct",
];

/// What an import makes: the chain, and the modules the bootstrap held
/// inline, which go beside it.
#[derive(Debug)]
pub struct Imported {
    /// The `chain.toml` text.
    pub chain: String,
    /// Each module given as `inline_bytes` or `inline_string`; the chain
    /// names them relative to itself.
    pub modules: Vec<InlineModule>,
}

/// A module a bootstrap held inline: its file name beside the chain, and
/// its bytes.
pub type InlineModule = (String, Vec<u8>);

/// What Envoy accepts in the Wasm filter's messages (its protos' field
/// names, `envoy.extensions.wasm.v3` and `envoy.config.core.v3`): a field
/// not listed makes Envoy refuse the bootstrap, and so does the import.
const WASM_FIELDS: &[&str] = &["config"];
const PLUGIN_FIELDS: &[&str] = &[
    "name",
    "root_id",
    "vm_config",
    "configuration",
    "fail_open",
    "failure_policy",
    "reload_config",
    "capability_restriction_config",
    "allow_on_headers_stop_iteration",
];
const VM_FIELDS: &[&str] = &[
    "vm_id",
    "runtime",
    "code",
    "configuration",
    "allow_precompiled",
    "nack_on_code_cache_miss",
    "environment_variables",
];
const CODE_FIELDS: &[&str] = &["local", "remote"];
const LOCAL_FIELDS: &[&str] = &[
    "filename",
    "inline_bytes",
    "inline_string",
    "environment_variable",
    "watched_directory",
];

/// The chain for the Envoy bootstrap `text` (read from `path`).
pub fn import(path: &Path, text: String, options: &EnvoyOptions) -> Result<Imported, Error> {
    let file = SourceFile::new(path, text);
    let doc = Doc::new(&file);
    let root = marked_yaml::parse_yaml(0, file.text.as_str()).map_err(|e| {
        doc.error_at(
            0,
            format!("not YAML or JSON: {e}"),
            Some("an Envoy bootstrap (`envoy -c FILE`), in YAML or JSON".into()),
        )
    })?;
    let Some(resources) = root
        .as_mapping()
        .and_then(|m| m.get_node("static_resources"))
    else {
        return Err(doc.error(
            &root,
            "not an Envoy bootstrap: expected a mapping with `static_resources` (listeners and clusters)".into(),
            Some("pwchain imports Envoy v3 bootstraps as `envoy -c` reads them; for Istio `WasmPlugin` resources use `pwchain import istio`".into()),
        ));
    };
    let listener = doc.listener(resources, options)?;
    let listener_name = doc.str_at(listener, "name").unwrap_or("listener");
    let manager = doc.manager(listener)?;
    let filters = doc
        .get(manager, "http_filters")
        .and_then(Node::as_sequence)
        .ok_or_else(|| {
            doc.error(
                manager,
                "the HTTP connection manager has no `http_filters`".into(),
                None,
            )
        })?;

    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Imported by `pwchain import envoy` from {} (listener `{listener_name}`).\n# Each entry says which Envoy HTTP filter it came from.",
        path.display()
    );
    let mut plugins = String::new();
    let mut names: Vec<String> = Vec::new();
    let mut modules = Vec::new();
    let mut origin = None;
    for (index, filter) in filters.iter().enumerate() {
        let name = doc.str_at(filter, "name").unwrap_or_default();
        let typed = doc.get(filter, "typed_config");
        let type_url = typed
            .and_then(|t| doc.str_at(t, "@type"))
            .unwrap_or_default();
        let line = doc.line(filter);
        if name == "envoy.filters.http.router" || type_url == ROUTER_TYPE {
            origin = Some((index, line));
            break;
        }
        let at = format!("http_filters[{index}].typed_config");
        let wasm = match typed {
            Some(typed) if type_url == WASM_TYPE => {
                doc.known_fields(typed, &at, WASM_FIELDS)?;
                doc.get(typed, "config")
                    .map(|c| (c, format!("{at}.config")))
            }
            Some(typed) if TYPED_STRUCTS.contains(&type_url) => {
                let inner = doc.str_at(typed, "type_url").unwrap_or_default();
                match (inner == WASM_TYPE, doc.get(typed, "value")) {
                    (true, Some(value)) => {
                        doc.known_fields(value, &format!("{at}.value"), WASM_FIELDS)?;
                        doc.get(value, "config")
                            .map(|c| (c, format!("{at}.value.config")))
                    }
                    _ => None,
                }
            }
            _ => None,
        };
        let Some(wasm) = wasm else {
            if options.skip_unsupported {
                let _ = writeln!(
                    plugins,
                    "\n# Dropped http_filters[{index}] `{name}` (line {line}): not a Wasm filter, and pwchain runs only those."
                );
                continue;
            }
            return Err(doc.error(
                filter,
                format!("http_filters[{index}] `{name}` is not a Wasm filter (`{WASM_FILTER}`), so pwchain cannot run it"),
                Some("`--skip-unsupported` drops it with a comment in the output".into()),
            ));
        };
        let (wasm, at) = wasm;
        let (text, inline) = doc.plugin((index, line), name, (wasm, &at), options, &mut names)?;
        match doc.placement(manager, filter, name) {
            Placement::Everywhere(notes) => {
                plugins.push_str(&notes);
                plugins.push_str(&text);
            }
            Placement::Routes(notes, route) => {
                plugins.push_str(&notes);
                plugins.push_str(&text);
                let _ = writeln!(plugins, "match = {}", route.to_toml());
            }
            // Left in, commented out, so that enabling it is one edit.
            Placement::Nowhere(notes) => {
                plugins.push_str(&notes);
                for line in text.lines() {
                    match line.is_empty() || line.starts_with('#') {
                        true => plugins.push_str(line),
                        false => plugins.push_str(&format!("# {line}")),
                    }
                    plugins.push('\n');
                }
            }
        }
        modules.extend(inline);
    }
    let Some((index, router_line)) = origin else {
        return Err(doc.error(
            manager,
            "the HTTP filters do not end with `envoy.filters.http.router`, so nothing says where requests go after the chain".into(),
            None,
        ));
    };
    let clusters = doc.clusters(resources, options)?;
    let (route_cluster, route_node) = doc.route_cluster(manager)?;
    let direct = doc.direct_responses(manager);
    let Some(upstream) = clusters.iter().find(|c| c.name == route_cluster) else {
        return Err(doc.error(
            route_node,
            format!(
                "the route sends requests to cluster `{route_cluster}`, which `static_resources.clusters` does not define (defined: {})",
                list(clusters.iter().map(|c| c.name.as_str()))
            ),
            Some("define the cluster, or pass `--cluster NAME=URL`".into()),
        ));
    };
    let others: Vec<&Cluster> = clusters
        .iter()
        .filter(|c| c.name != route_cluster)
        .collect();
    let _ = writeln!(
        out,
        "[chain]\nname = {}",
        toml_string(&kebab(listener_name))
    );
    if !others.is_empty() {
        let _ = writeln!(
            out,
            "# Envoy's other clusters, for the filters' proxy_http_call."
        );
        let entries: Vec<String> = others
            .iter()
            .map(|c| format!("{} = {}", toml_key(&c.name), toml_string(&c.url)))
            .collect();
        let _ = writeln!(out, "clusters = {{ {} }}", entries.join(", "));
    }
    out.push_str(&plugins);
    for note in direct {
        let _ = writeln!(out, "\n{note}");
    }
    let _ = writeln!(
        out,
        "\n# http_filters[{index}] envoy.filters.http.router (line {router_line}): the route's cluster `{}`{}.\n[origin]\nupstream = {}",
        upstream.name,
        match upstream.overridden {
            true => " (address from --cluster)",
            false => "",
        },
        toml_string(&upstream.url)
    );
    Ok(Imported {
        chain: out,
        modules,
    })
}

/// Where Envoy runs a filter, as far as a chain's `match` can say it; each
/// with comments on what it could not say.
enum Placement {
    /// On every request (the filter is enabled, perhaps disabled on routes
    /// a chain cannot leave out).
    Everywhere(String),
    /// Only on the routes that enable a filter `disabled` by default.
    Routes(String, RouteMatch),
    /// Nowhere: `disabled`, and no route enables it.
    Nowhere(String),
}

/// A route's methods and header conditions, as `match` keeps them.
type HeaderConditions = (Vec<String>, Vec<(String, Option<String>)>);

/// The route-level type that enables or disables a filter.
const FILTER_CONFIG_TYPE: &str = "type.googleapis.com/envoy.config.route.v3.FilterConfig";

/// A cluster and where it is.
struct Cluster {
    name: String,
    url: String,
    overridden: bool,
}

impl Doc<'_> {
    /// The listener `options.listener` names, else the first with an HTTP
    /// connection manager.
    fn listener<'n>(&self, resources: &'n Node, options: &EnvoyOptions) -> Result<&'n Node, Error> {
        let listeners = self
            .get(resources, "listeners")
            .and_then(Node::as_sequence)
            .filter(|l| !l.is_empty())
            .ok_or_else(|| {
                self.error(
                    resources,
                    "`static_resources` has no `listeners`".into(),
                    None,
                )
            })?;
        let names: Vec<&str> = listeners
            .iter()
            .map(|l| self.str_at(l, "name").unwrap_or("(unnamed)"))
            .collect();
        match &options.listener {
            // The first that serves HTTP.
            None => Ok(listeners
                .iter()
                .find(|l| self.manager(l).is_ok())
                .unwrap_or(&listeners[0])),
            Some(wanted) => listeners
                .iter()
                .find(|l| self.str_at(l, "name") == Some(wanted.as_str()))
                .ok_or_else(|| {
                    self.error(
                        resources,
                        format!(
                            "no listener is named `{wanted}`; the file has {}",
                            list(names)
                        ),
                        Some("pass one of them to `--listener`".into()),
                    )
                }),
        }
    }

    /// The listener's HTTP connection manager's `typed_config`.
    fn manager<'n>(&self, listener: &'n Node) -> Result<&'n Node, Error> {
        let chains = self
            .get(listener, "filter_chains")
            .and_then(Node::as_sequence);
        chains
            .into_iter()
            .flat_map(|c| c.iter())
            .filter_map(|c| self.get(c, "filters").and_then(Node::as_sequence))
            .flat_map(|f| f.iter())
            .find(|f| {
                self.str_at(f, "name") == Some(HCM)
                    || self
                        .get(f, "typed_config")
                        .and_then(|t| self.str_at(t, "@type"))
                        .is_some_and(|t| t.ends_with(".HttpConnectionManager"))
            })
            .and_then(|f| self.get(f, "typed_config"))
            .ok_or_else(|| {
                self.error(
                    listener,
                    format!("the listener has no HTTP connection manager (`{HCM}`), so it has no HTTP filters to import"),
                    None,
                )
            })
    }

    /// Refuses a field of `node` (at `path`) that is not in `known`, as
    /// Envoy refuses a typed config it cannot parse.
    fn known_fields(&self, node: &Node, path: &str, known: &[&str]) -> Result<(), Error> {
        let Some(mapping) = node.as_mapping() else {
            return Ok(());
        };
        for (key, _) in mapping.iter() {
            let key = key.as_str();
            if key != "@type" && !known.contains(&key) {
                return Err(self.key_error(
                    node,
                    key,
                    format!("unknown field `{path}.{key}`: Envoy refuses a bootstrap with it"),
                    Some(format!(
                        "the fields there are {}",
                        list(known.iter().copied())
                    )),
                ));
            }
        }
        Ok(())
    }

    /// One Wasm filter (its `PluginConfig` at `at`) as a `[[plugin]]`, and
    /// the module it holds inline, if it does.
    fn plugin(
        &self,
        (index, line): (usize, usize),
        filter_name: &str,
        (wasm, at): (&Node, &str),
        options: &EnvoyOptions,
        names: &mut Vec<String>,
    ) -> Result<(String, Option<InlineModule>), Error> {
        self.known_fields(wasm, at, PLUGIN_FIELDS)?;
        let configured = self.str_at(wasm, "name").unwrap_or(filter_name);
        let mut name = kebab(configured);
        if names.contains(&name) {
            name = format!("{name}-{index}");
        }
        names.push(name.clone());
        let vm = self
            .get(wasm, "vm_config")
            .ok_or_else(|| self.error(wasm, "the Wasm filter has no `vm_config`".into(), None))?;
        self.known_fields(vm, &format!("{at}.vm_config"), VM_FIELDS)?;
        let code = self
            .get(vm, "code")
            .ok_or_else(|| self.error(vm, "`vm_config` has no `code`".into(), None))?;
        self.known_fields(code, &format!("{at}.vm_config.code"), CODE_FIELDS)?;
        let mut inline = None;
        let mut out = format!(
            "\n# http_filters[{index}] `{filter_name}` (line {line}){}.\n[[plugin]]\nname = {}\n",
            match configured == filter_name {
                true => String::new(),
                false => format!(", Wasm name `{configured}`"),
            },
            toml_string(&name)
        );
        if let Some(local) = self.get(code, "local") {
            self.known_fields(local, &format!("{at}.vm_config.code.local"), LOCAL_FIELDS)?;
            if let Some(bytes) = self.inline_code(local)? {
                use sha2::Digest as _;
                let file = format!("{name}.wasm");
                let _ = writeln!(
                    out,
                    "# The bootstrap's inline code, written beside this file.\nproxy-wasm = {}\ndigest = {}",
                    toml_string(&file),
                    toml_string(&format!(
                        "sha256:{}",
                        hex::encode(sha2::Sha256::digest(&bytes))
                    ))
                );
                inline = Some((file, bytes));
            }
        }
        if inline.is_some() {
        } else if let Some(local) = self.get(code, "local") {
            let node = self.get(local, "filename").ok_or_else(|| {
                self.error(
                    local,
                    "`code.local` has no `filename`, `inline_bytes` or `inline_string`".into(),
                    Some("an environment variable or a watched directory is Envoy's own; give the file".into()),
                )
            })?;
            let filename = node.as_scalar().map_or("", |s| s.as_str());
            let mapped = map_path(filename, &options.maps);
            if !mapped.is_file() {
                return Err(self.error(
                    node,
                    format!(
                        "the filter's code `{filename}` is not here: `{}` does not exist",
                        mapped.display()
                    ),
                    Some("`--map FROM=TO` rewrites the path prefix Envoy sees to where the file is on this machine".into()),
                ));
            }
            // Absolute, so the chain composes wherever it is written.
            let mapped = std::path::absolute(&mapped).unwrap_or(mapped);
            let _ = writeln!(
                out,
                "proxy-wasm = {}",
                toml_string(&mapped.display().to_string())
            );
        } else if let Some(remote) = self.get(code, "remote") {
            let uri = self
                .get(remote, "http_uri")
                .and_then(|h| self.str_at(h, "uri"))
                .unwrap_or_default();
            let file = uri
                .rsplit('/')
                .next()
                .filter(|f| !f.is_empty())
                .unwrap_or("filter.wasm");
            let _ = writeln!(
                out,
                "# Envoy fetches it from {uri}: download it to this path.\nproxy-wasm = {}",
                toml_string(file)
            );
            if let Some(sha) = self.str_at(remote, "sha256") {
                let _ = writeln!(out, "digest = {}", toml_string(&format!("sha256:{sha}")));
            }
        } else {
            return Err(self.error(code, "`code` has neither `local` nor `remote`".into(), None));
        }
        if let Some(text) = self.any_text(wasm, "configuration")? {
            let _ = writeln!(out, "configuration = {}", toml_string(&text));
        }
        if let Some(text) = self.any_text(vm, "configuration")? {
            let _ = writeln!(out, "vm-configuration = {}", toml_string(&text));
        }
        if let Some(root_id) = self.str_at(wasm, "root_id") {
            let _ = writeln!(out, "root-id = {}", toml_string(root_id));
        }
        Ok((out, inline))
    }

    /// The module `code.local` holds inline: `inline_bytes` (base64, as
    /// protobuf's JSON mapping writes bytes) or `inline_string`.
    fn inline_code(&self, local: &Node) -> Result<Option<Vec<u8>>, Error> {
        if let Some(text) = self.str_at(local, "inline_string") {
            return Ok(Some(text.as_bytes().to_vec()));
        }
        let Some(node) = self.get(local, "inline_bytes") else {
            return Ok(None);
        };
        use base64::Engine as _;
        let encoded: String = node
            .as_scalar()
            .map_or("", |s| s.as_str())
            .split_whitespace()
            .collect();
        base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .map(Some)
            .map_err(|e| {
                self.error(
                    node,
                    format!("`inline_bytes` is not base64: {e}"),
                    Some("Envoy reads bytes fields as base64".into()),
                )
            })
    }

    /// A `google.protobuf.Any` configuration as the text Envoy hands the
    /// filter: a `StringValue`'s or `BytesValue`'s value, a `Struct` as JSON.
    fn any_text(&self, parent: &Node, key: &str) -> Result<Option<String>, Error> {
        let Some(any) = self.get(parent, key) else {
            return Ok(None);
        };
        let type_url = self.str_at(any, "@type").unwrap_or_default();
        let value = self.get(any, "value");
        match type_url.rsplit('/').next().unwrap_or_default() {
            "google.protobuf.StringValue" => {
                Ok(value.and_then(Node::as_scalar).map(|s| s.as_str().to_string()))
            }
            "google.protobuf.BytesValue" => {
                use base64::Engine as _;
                let encoded = value.and_then(Node::as_scalar).map_or("", |s| s.as_str());
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(encoded)
                    .map_err(|e| self.error(any, format!("`{key}` is a BytesValue that is not base64: {e}"), None))?;
                Ok(Some(String::from_utf8_lossy(&bytes).into_owned()))
            }
            "google.protobuf.Struct" => Ok(value.map(|v| crate::import::yaml::json(v).to_string())),
            other => Err(self.error(
                any,
                format!("`{key}` has type `{other}`; Envoy hands a filter a StringValue, BytesValue or Struct"),
                None,
            )),
        }
    }

    /// A comment for each route Envoy answers itself (`direct_response`):
    /// a chain has no routes, so what they match goes to the upstream.
    fn direct_responses(&self, manager: &Node) -> Vec<String> {
        self.routes(manager)
            .into_iter()
            .filter_map(|route| {
                let direct = self.get(route, "direct_response")?;
                let status = self.str_at(direct, "status").unwrap_or("?");
                Some(format!(
                    "# Dropped the route {} (line {}): Envoy answers it itself (direct_response {status}); a chain has no routes, so such requests go to the upstream.",
                    self.route_match(route),
                    self.line(route)
                ))
            })
            .collect()
    }

    /// A route's `match`, as JSON on one line, for comments.
    fn route_match(&self, route: &Node) -> String {
        self.get(route, "match")
            .map_or_else(String::new, |m| crate::import::yaml::json(m).to_string())
    }

    /// Every route of the connection manager, in the order Envoy tries
    /// them (the first that matches a request takes it).
    fn routes<'n>(&self, manager: &'n Node) -> Vec<&'n Node> {
        self.get(manager, "route_config")
            .and_then(|c| self.get(c, "virtual_hosts"))
            .and_then(Node::as_sequence)
            .into_iter()
            .flat_map(|hosts| hosts.iter())
            .filter_map(|host| self.get(host, "routes").and_then(Node::as_sequence))
            .flat_map(|routes| routes.iter())
            .collect()
    }

    /// Whether `node` (a route or a virtual host) enables (`Some(true)`) or
    /// disables the HTTP filter `name` through `typed_per_filter_config`.
    fn per_filter(&self, node: &Node, name: &str) -> Option<bool> {
        let config = self.get(self.get(node, "typed_per_filter_config")?, name)?;
        let disabled = self.str_at(config, "@type") == Some(FILTER_CONFIG_TYPE)
            && self.str_at(config, "disabled") == Some("true");
        Some(!disabled)
    }

    /// Where Envoy runs the HTTP filter `filter` (named `name`), from its
    /// `disabled` and the routes' `typed_per_filter_config`, as a chain's
    /// `match` can say it.
    fn placement(&self, manager: &Node, filter: &Node, name: &str) -> Placement {
        let mut notes = String::new();
        let shown = |route: &Node| self.route_match(route);
        let hosts = self
            .get(manager, "route_config")
            .and_then(|c| self.get(c, "virtual_hosts"))
            .and_then(Node::as_sequence)
            .into_iter()
            .flat_map(|hosts| hosts.iter());
        for host in hosts.filter(|host| self.per_filter(host, name).is_some()) {
            let _ = writeln!(
                notes,
                "# Dropped the virtual host `{}`'s `typed_per_filter_config` for `{name}` (line {}): set it on its routes, which pwchain maps.",
                self.str_at(host, "name").unwrap_or_default(),
                self.line(host)
            );
        }
        let routes = self.routes(manager);
        if self.str_at(filter, "disabled") != Some("true") {
            for route in routes
                .iter()
                .filter(|r| self.per_filter(r, name) == Some(false))
            {
                let _ = writeln!(
                    notes,
                    "# Not mapped: Envoy skips `{name}` on the route {} (line {}); a chain's `match` cannot leave routes out, so it runs there too.",
                    shown(route),
                    self.line(route)
                );
            }
            return Placement::Everywhere(notes);
        }
        let enabling: Vec<&Node> = routes
            .iter()
            .copied()
            .filter(|r| self.per_filter(r, name) == Some(true))
            .collect();
        if enabling.is_empty() {
            let _ = writeln!(
                notes,
                "# `{name}` is `disabled` and no route enables it, so Envoy never runs it: left out, commented."
            );
            return Placement::Nowhere(notes);
        }
        let mut route_match = RouteMatch::default();
        for (at, route) in routes.iter().enumerate() {
            if self.per_filter(route, name) != Some(true) {
                continue;
            }
            let Some(matched) = self.get(route, "match") else {
                continue;
            };
            let line = self.line(route);
            if let Some(prefix) = self.str_at(matched, "prefix") {
                route_match.path_prefix.push(prefix.to_string());
                if !prefix.ends_with('/') {
                    let _ = writeln!(
                        notes,
                        "# Envoy's prefix `{prefix}` (line {line}) also takes paths that go on without a `/` (`{prefix}x`); `path-prefix` stops at a `/`."
                    );
                }
                // An earlier route under this prefix takes its requests
                // first, without the filter.
                for earlier in &routes[..at] {
                    let under = self
                        .get(earlier, "match")
                        .and_then(|m| self.str_at(m, "prefix").or(self.str_at(m, "path")))
                        .is_some_and(|p| p.starts_with(prefix));
                    if under && self.per_filter(earlier, name) != Some(true) {
                        let _ = writeln!(
                            notes,
                            "# Not mapped: the route {} (line {}) comes first and does not enable `{name}`; Envoy skips it there, the chain does not.",
                            shown(earlier),
                            self.line(earlier)
                        );
                    }
                }
            } else if let Some(path) = self
                .str_at(matched, "path_separated_prefix")
                .map(|p| (p, true))
                .or(self.str_at(matched, "path").map(|p| (p, false)))
            {
                match path {
                    (prefix, true) => route_match.path_prefix.push(prefix.to_string()),
                    (exact, false) => route_match.path_exact.push(exact.to_string()),
                }
            } else {
                let _ = writeln!(
                    notes,
                    "# Not mapped: the route {} (line {line}) enables `{name}` by a path rule `match` cannot say; the chain does not run it there.",
                    shown(route)
                );
            }
            // One enabling route's header conditions are a chain's too
            // (with several, `match` could not say which paths they go with).
            let mapped = enabling.len() == 1
                && self
                    .header_conditions(matched)
                    .map(|(methods, headers)| {
                        route_match.methods.extend(methods);
                        route_match.headers.extend(headers);
                    })
                    .is_some();
            let conditions = ["headers", "query_parameters", "grpc", "runtime_fraction"];
            let unmapped = conditions
                .iter()
                .filter(|k| !(mapped && **k == "headers"))
                .find(|k| self.get(matched, k).is_some());
            if let Some(key) = unmapped {
                let _ = writeln!(
                    notes,
                    "# Not mapped: the route {} (line {line}) also matches by `{key}`; the chain runs `{name}` on its paths whatever the {key}.",
                    shown(route)
                );
            }
        }
        if route_match.path_prefix.is_empty() && route_match.path_exact.is_empty() {
            return Placement::Nowhere(notes);
        }
        let _ = writeln!(
            notes,
            "# `{name}` is `disabled` and enabled by {} route(s) (`typed_per_filter_config`): `match` runs it on their paths only.",
            enabling.len()
        );
        Placement::Routes(notes, route_match)
    }

    /// A route's `headers` matchers as a chain's `match` says them: `:method`
    /// with an exact value as methods, other names with an exact value or
    /// `present_match: true` as headers. `None` if one of them cannot be
    /// said so (a prefix, a regex, an inverted match, another pseudo-header).
    fn header_conditions(&self, matched: &Node) -> Option<HeaderConditions> {
        let mut methods = Vec::new();
        let mut headers = Vec::new();
        for matcher in self.get(matched, "headers")?.as_sequence()?.iter() {
            let name = self.str_at(matcher, "name")?.to_ascii_lowercase();
            if self.str_at(matcher, "invert_match") == Some("true") {
                return None;
            }
            let exact = self
                .get(matcher, "string_match")
                .and_then(|m| self.str_at(m, "exact"))
                .or(self.str_at(matcher, "exact_match"));
            let present = self.str_at(matcher, "present_match") == Some("true");
            match (name.as_str(), exact, present) {
                (":method", Some(method), _) => methods.push(method.to_string()),
                (pseudo, _, _) if pseudo.starts_with(':') => return None,
                (_, Some(value), _) => headers.push((name, Some(value.to_string()))),
                (_, None, true) => headers.push((name, None)),
                _ => return None,
            }
        }
        Some((methods, headers))
    }

    /// The cluster of the first route that names one.
    fn route_cluster<'n>(&self, manager: &'n Node) -> Result<(String, &'n Node), Error> {
        let config = self.get(manager, "route_config").ok_or_else(|| {
            self.error(
                manager,
                "the HTTP connection manager has no inline `route_config` (RDS is not supported)"
                    .into(),
                None,
            )
        })?;
        self.get(config, "virtual_hosts")
            .and_then(Node::as_sequence)
            .into_iter()
            .flat_map(|hosts| hosts.iter())
            .filter_map(|host| self.get(host, "routes").and_then(Node::as_sequence))
            .flat_map(|routes| routes.iter())
            .filter_map(|route| self.get(route, "route"))
            .find_map(|route| {
                let node = self.get(route, "cluster")?;
                Some((node.as_scalar()?.as_str().to_string(), node))
            })
            .ok_or_else(|| {
                self.error(
                    config,
                    "no route of `route_config` names a `cluster`".into(),
                    None,
                )
            })
    }

    /// `static_resources.clusters`, each at its first endpoint, with the
    /// `--cluster` overrides.
    fn clusters(&self, resources: &Node, options: &EnvoyOptions) -> Result<Vec<Cluster>, Error> {
        let mut clusters = Vec::new();
        for cluster in self
            .get(resources, "clusters")
            .and_then(Node::as_sequence)
            .into_iter()
            .flat_map(|c| c.iter())
        {
            let Some(name) = self.str_at(cluster, "name") else {
                continue;
            };
            if let Some((_, url)) = options.clusters.iter().find(|(n, _)| n == name) {
                clusters.push(Cluster {
                    name: name.into(),
                    url: url.clone(),
                    overridden: true,
                });
                continue;
            }
            let address = self
                .get(cluster, "load_assignment")
                .and_then(|a| self.get(a, "endpoints"))
                .and_then(Node::as_sequence)
                .and_then(|e| e.first())
                .and_then(|e| self.get(e, "lb_endpoints"))
                .and_then(Node::as_sequence)
                .and_then(|e| e.first())
                .and_then(|e| self.get(e, "endpoint"))
                .and_then(|e| self.get(e, "address"))
                .and_then(|a| self.get(a, "socket_address"))
                .ok_or_else(|| {
                    self.error(
                        cluster,
                        format!("cluster `{name}` has no endpoint address (`load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address`)"),
                        Some(format!("pass `--cluster {name}=http://HOST:PORT`")),
                    )
                })?;
            let host = self.str_at(address, "address").unwrap_or("127.0.0.1");
            let port = self.str_at(address, "port_value").unwrap_or("80");
            // TLS lets ALPN choose HTTP/2; in plain text, Envoy speaks it
            // only when the cluster says so, and so does `h2c://`.
            let scheme = match (self.get(cluster, "transport_socket"), self.http2(cluster)) {
                (Some(_), _) => "https",
                (None, true) => "h2c",
                (None, false) => "http",
            };
            clusters.push(Cluster {
                name: name.into(),
                url: format!("{scheme}://{host}:{port}"),
                overridden: false,
            });
        }
        for (name, _) in &options.clusters {
            if !clusters.iter().any(|c| &c.name == name) {
                return Err(self.error(
                    resources,
                    format!(
                        "`--cluster {name}=…` names no cluster of the file (it has {})",
                        list(clusters.iter().map(|c| c.name.as_str()))
                    ),
                    None,
                ));
            }
        }
        Ok(clusters)
    }

    /// Whether `cluster` asks for HTTP/2 to its endpoints: the v3
    /// `typed_extension_protocol_options` (`explicit_http_config`) or the
    /// older `http2_protocol_options` on the cluster itself.
    fn http2(&self, cluster: &Node) -> bool {
        let explicit = self
            .get(cluster, "typed_extension_protocol_options")
            .and_then(|o| self.get(o, HTTP_PROTOCOL_OPTIONS))
            .and_then(|o| self.get(o, "explicit_http_config"))
            .and_then(|o| self.get(o, "http2_protocol_options"));
        explicit.is_some() || self.get(cluster, "http2_protocol_options").is_some()
    }
}

/// The key of a cluster's HTTP protocol options.
const HTTP_PROTOCOL_OPTIONS: &str = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions";

/// `path` with the first matching `FROM` prefix replaced by its `TO`.
fn map_path(path: &str, maps: &[(String, String)]) -> PathBuf {
    for (from, to) in maps {
        if let Some(rest) = path.strip_prefix(from.as_str()) {
            return Path::new(to).join(rest.trim_start_matches('/'));
        }
    }
    PathBuf::from(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_mapped_by_prefix() {
        let maps = vec![("/etc/envoy".to_string(), "/tmp/f".to_string())];
        assert_eq!(
            map_path("/etc/envoy/a.wasm", &maps),
            Path::new("/tmp/f/a.wasm")
        );
        assert_eq!(map_path("/other/a.wasm", &maps), Path::new("/other/a.wasm"));
    }
}
