//! `pwchain import istio`: Istio `WasmPlugin` and `TrafficExtension`
//! resources (`extensions.istio.io/v1alpha1`; Istio 1.30 converts the
//! first into the second) as a `chain.toml`, in the order Istio applies
//! them to a workload: by phase (AUTHN, AUTHZ, STATS, then those without
//! one, just before the router), within a phase by descending `priority`,
//! then by namespace and name. What has no meaning in a chain (selectors,
//! pull and fail policies, VM environment) becomes comments; a Lua
//! `TrafficExtension` is refused.

use crate::error::{Error, SourceFile};
use crate::import::yaml::{Doc, json, kebab, toml_string};
use std::fmt::Write as _;
use std::path::Path;

/// What the user adds to what the resources say.
#[derive(Debug, Default, Clone)]
pub struct IstioOptions {
    /// Where requests go after the plugins (the workload); without it the
    /// chain leaves its next hop to the host (`pwchain serve --upstream`).
    pub upstream: Option<String>,
}

/// One `WasmPlugin` or Wasm `TrafficExtension`, read.
struct Plugin {
    namespace: String,
    name: String,
    phase: usize,
    priority: i64,
    text: String,
}

const PHASES: [&str; 3] = ["AUTHN", "AUTHZ", "STATS"];

/// The resource kinds read; others in the files are skipped.
const KINDS: [&str; 2] = ["WasmPlugin", "TrafficExtension"];

/// The `chain.toml` text for the `WasmPlugin` and `TrafficExtension`
/// resources in `files` (path and text each; a file may hold several YAML
/// documents).
pub fn import(files: Vec<(&Path, String)>, options: &IstioOptions) -> Result<String, Error> {
    let mut plugins = Vec::new();
    for (path, text) in files {
        let file = SourceFile::new(path, text);
        for document in documents(&file.text) {
            if let Some(plugin) = read(&file, &document)? {
                plugins.push(plugin);
            }
        }
    }
    if plugins.is_empty() {
        return Err(Error::NothingToImport {
            looked_for: "`WasmPlugin` or `TrafficExtension` resources (`kind: WasmPlugin`, `kind: TrafficExtension`)",
        });
    }
    plugins.sort_by(|a, b| {
        (a.phase, -a.priority, &a.namespace, &a.name).cmp(&(
            b.phase,
            -b.priority,
            &b.namespace,
            &b.name,
        ))
    });
    let mut out = String::from(
        "# Imported by `pwchain import istio`, in the order Istio applies the\n# WasmPlugins and TrafficExtensions: by phase (AUTHN, AUTHZ, STATS, unspecified), then by\n# descending priority, then by namespace and name.\n[chain]\nname = \"istio\"\n",
    );
    for plugin in &plugins {
        out.push_str(&plugin.text);
    }
    match &options.upstream {
        Some(url) => {
            let _ = writeln!(out, "\n# The workload.\n[origin]\nupstream = {}", toml_string(url));
        }
        None => out.push_str(
            "\n# The workload: the host's next hop (`pwchain serve --upstream URL`).\n[origin]\nhost = true\n",
        ),
    }
    Ok(out)
}

/// The file's YAML documents, each with what comes before it blanked out
/// (every character a space), so that its positions are the file's.
fn documents(text: &str) -> Vec<String> {
    let lines: Vec<&str> = text.split('\n').collect();
    let blank = |lines: &[&str]| -> String {
        lines
            .iter()
            .map(|l| " ".repeat(l.chars().count()) + "\n")
            .collect()
    };
    let mut documents = Vec::new();
    let mut start = 0;
    for (i, line) in lines.iter().enumerate().chain([(lines.len(), &"---")]) {
        if line.trim_end() == "---" {
            let body = lines[start..i].join("\n");
            if !body.trim().is_empty() {
                documents.push(format!("{}{body}\n", blank(&lines[..start])));
            }
            start = i + 1;
        }
    }
    documents
}

/// A `WasmPlugin` or `TrafficExtension` document as a `[[plugin]]` entry;
/// `None` for other kinds.
fn read(file: &SourceFile, document: &str) -> Result<Option<Plugin>, Error> {
    let doc = Doc::new(file);
    let root = marked_yaml::parse_yaml(0, document)
        .map_err(|e| doc.error_at(0, format!("not YAML: {e}"), None))?;
    let Some(kind) = doc.str_at(&root, "kind").filter(|k| KINDS.contains(k)) else {
        return Ok(None);
    };
    let metadata = doc.get(&root, "metadata");
    let name = metadata
        .and_then(|m| doc.str_at(m, "name"))
        .unwrap_or("wasm-plugin");
    let namespace = metadata
        .and_then(|m| doc.str_at(m, "namespace"))
        .unwrap_or("default");
    let spec = doc
        .get(&root, "spec")
        .ok_or_else(|| doc.error(&root, format!("{kind} `{name}` has no `spec`"), None))?;
    // A WasmPlugin's module settings are in its spec; a TrafficExtension's
    // in `spec.wasm`, beside `spec.lua`, which a chain cannot run.
    let (wasm, url_key) = match kind {
        "TrafficExtension" => {
            if doc.get(spec, "lua").is_some() {
                return Err(doc.key_error(
                    spec,
                    "lua",
                    format!("TrafficExtension {namespace}/{name} is a Lua extension: pwchain runs Wasm filters only"),
                    Some("rewrite it as a plugin (`pwchain new`), or leave it out of the files given".into()),
                ));
            }
            let wasm = doc.get(spec, "wasm").ok_or_else(|| {
                doc.error(
                    spec,
                    format!(
                        "TrafficExtension {namespace}/{name} has neither `spec.wasm` nor `spec.lua`"
                    ),
                    None,
                )
            })?;
            (wasm, "spec.wasm.url")
        }
        _ => (spec, "spec.url"),
    };
    let url = doc.str_at(wasm, "url").ok_or_else(|| {
        doc.error(
            wasm,
            format!("{kind} `{name}` has no `{url_key}`, so nothing says which module to run"),
            Some(
                "Istio's `url`: `oci://REGISTRY/NAME:TAG` (or without a scheme), or `file://PATH`"
                    .into(),
            ),
        )
    })?;
    let source = match url.split_once("://") {
        None => format!("oci://{url}"),
        Some(("oci", _)) => url.to_string(),
        Some(("file", path)) => path.to_string(),
        Some((scheme, _)) => {
            return Err(doc.error(
                doc.get(wasm, "url").unwrap_or(wasm),
                format!("{kind} `{name}`: `{scheme}://` URLs are not fetched by pwchain"),
                Some("publish the module to an OCI registry (`pwchain publish`), or download it and give `file://PATH`".into()),
            ));
        }
    };
    // TrafficExtension's enum also has the long spelling.
    let phase_name = doc.str_at(spec, "phase").unwrap_or("UNSPECIFIED_PHASE");
    let phase = PHASES
        .iter()
        .position(|p| *p == phase_name.trim_start_matches("EXECUTION_PHASE_"))
        .unwrap_or(PHASES.len());
    let priority = match doc.str_at(spec, "priority") {
        None => 0,
        Some(text) => text.parse().map_err(|_| {
            doc.error(
                doc.get(spec, "priority").unwrap_or(spec),
                format!("{kind} `{name}`: `priority` `{text}` is not an integer"),
                None,
            )
        })?,
    };
    let mut text = format!(
        "\n# {kind} {namespace}/{name} ({}, line {}): phase {phase_name}, priority {priority}.\n",
        file.path.display(),
        doc.line(&root)
    );
    let unused = [
        (spec, "selector"),
        (spec, "targetRef"),
        (spec, "targetRefs"),
        (wasm, "imagePullPolicy"),
        (wasm, "imagePullSecret"),
        (wasm, "failStrategy"),
        (wasm, "vmConfig"),
        (wasm, "type"),
    ];
    for (parent, key) in unused {
        if let Some(node) = doc.get(parent, key) {
            let _ = writeln!(
                text,
                "# Not used in a chain: {key} = {}",
                json(node).to_string().replace('\n', " ")
            );
        }
    }
    if let Some(selectors) = doc.get(spec, "match") {
        let _ = writeln!(
            text,
            "# Dropped match = {}: it selects traffic by direction (mode) and workload port, which a chain does not have (one server, one port, every request inbound), so the plugin runs on every request here; `match` in a chain selects by path, method, host and header instead.",
            json(selectors).to_string().replace('\n', " ")
        );
    }
    let _ = writeln!(text, "[[plugin]]\nname = {}", toml_string(&kebab(name)));
    let _ = writeln!(text, "proxy-wasm = {}", toml_string(&source));
    if let Some(sha) = doc.str_at(wasm, "sha256") {
        let _ = writeln!(text, "digest = {}", toml_string(&format!("sha256:{sha}")));
    }
    if let Some(config) = doc.get(wasm, "pluginConfig") {
        let _ = writeln!(
            text,
            "configuration = {}",
            toml_string(&json(config).to_string())
        );
    }
    if let Some(root_id) = doc.str_at(wasm, "pluginName") {
        let _ = writeln!(text, "root-id = {}", toml_string(root_id));
    }
    Ok(Some(Plugin {
        namespace: namespace.into(),
        name: name.into(),
        phase,
        priority,
        text,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_keep_their_lines() {
        let docs = documents("a: 1\n---\n\nkind: WasmPlugin\n---\n");
        assert_eq!(docs.len(), 2);
        assert_eq!(
            docs[1].lines().position(|l| l == "kind: WasmPlugin"),
            Some(3)
        );
    }
}
