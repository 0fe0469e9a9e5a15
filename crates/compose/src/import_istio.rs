//! `pwchain import istio`: Istio `WasmPlugin` resources
//! (`extensions.istio.io/v1alpha1`) as a `chain.toml`, in the order Istio
//! applies them to a workload: by phase (AUTHN, AUTHZ, STATS, then those
//! without one, just before the router), within a phase by descending
//! `priority`, then by namespace and name. What has no meaning in a chain
//! (selectors, pull and fail policies, VM environment) becomes comments.

use crate::error::{Error, SourceFile};
use crate::import_yaml::{Doc, json, kebab, toml_string};
use std::fmt::Write as _;
use std::path::Path;

/// What the user adds to what the resources say.
#[derive(Debug, Default, Clone)]
pub struct IstioOptions {
    /// Where requests go after the plugins (the workload); without it the
    /// chain leaves its next hop to the host (`pwchain serve --upstream`).
    pub upstream: Option<String>,
}

/// One `WasmPlugin`, read.
struct Plugin {
    namespace: String,
    name: String,
    phase: usize,
    priority: i64,
    text: String,
}

const PHASES: [&str; 3] = ["AUTHN", "AUTHZ", "STATS"];

/// The `chain.toml` text for the `WasmPlugin` resources in `files` (path
/// and text each; a file may hold several YAML documents).
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
        return Err(Error::Import(
            "no `WasmPlugin` resources (`kind: WasmPlugin`) in the files given".into(),
        ));
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
        "# Imported by `pwchain import istio`, in the order Istio applies the\n# WasmPlugins: by phase (AUTHN, AUTHZ, STATS, unspecified), then by\n# descending priority, then by namespace and name.\n[chain]\nname = \"istio\"\n",
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

/// A `WasmPlugin` document as a `[[plugin]]` entry; `None` for other kinds.
fn read(file: &SourceFile, document: &str) -> Result<Option<Plugin>, Error> {
    let doc = Doc::new(file);
    let root = marked_yaml::parse_yaml(0, document)
        .map_err(|e| doc.error_at(0, format!("not YAML: {e}"), None))?;
    if doc.str_at(&root, "kind") != Some("WasmPlugin") {
        return Ok(None);
    }
    let metadata = doc.get(&root, "metadata");
    let name = metadata
        .and_then(|m| doc.str_at(m, "name"))
        .unwrap_or("wasm-plugin");
    let namespace = metadata
        .and_then(|m| doc.str_at(m, "namespace"))
        .unwrap_or("default");
    let spec = doc
        .get(&root, "spec")
        .ok_or_else(|| doc.error(&root, format!("WasmPlugin `{name}` has no `spec`"), None))?;
    let url = doc.str_at(spec, "url").ok_or_else(|| {
        doc.error(
            spec,
            format!("WasmPlugin `{name}` has no `spec.url`, so nothing says which module to run"),
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
                doc.get(spec, "url").unwrap_or(spec),
                format!("WasmPlugin `{name}`: `{scheme}://` URLs are not fetched by pwchain"),
                Some("publish the module to an OCI registry (`pwchain publish`), or download it and give `file://PATH`".into()),
            ));
        }
    };
    let phase_name = doc.str_at(spec, "phase").unwrap_or("UNSPECIFIED_PHASE");
    let phase = PHASES
        .iter()
        .position(|p| *p == phase_name)
        .unwrap_or(PHASES.len());
    let priority = match doc.str_at(spec, "priority") {
        None => 0,
        Some(text) => text.parse().map_err(|_| {
            doc.error(
                doc.get(spec, "priority").unwrap_or(spec),
                format!("WasmPlugin `{name}`: `priority` `{text}` is not an integer"),
                None,
            )
        })?,
    };
    let mut text = format!(
        "\n# WasmPlugin {namespace}/{name} ({}, line {}): phase {phase_name}, priority {priority}.\n",
        file.path.display(),
        doc.line(&root)
    );
    for key in [
        "selector",
        "targetRef",
        "targetRefs",
        "match",
        "imagePullPolicy",
        "imagePullSecret",
        "failStrategy",
        "vmConfig",
        "type",
    ] {
        if let Some(node) = doc.get(spec, key) {
            let _ = writeln!(
                text,
                "# Not used in a chain: {key} = {}",
                json(node).to_string().replace('\n', " ")
            );
        }
    }
    let _ = writeln!(text, "[[plugin]]\nname = {}", toml_string(&kebab(name)));
    let _ = writeln!(text, "proxy-wasm = {}", toml_string(&source));
    if let Some(sha) = doc.str_at(spec, "sha256") {
        let _ = writeln!(text, "digest = {}", toml_string(&format!("sha256:{sha}")));
    }
    if let Some(config) = doc.get(spec, "pluginConfig") {
        let _ = writeln!(
            text,
            "configuration = {}",
            toml_string(&json(config).to_string())
        );
    }
    if let Some(root_id) = doc.str_at(spec, "pluginName") {
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
