//! `match = { … }` on a plugin: the requests it applies to (read in
//! `manifest`, linked in `link`, recorded by `inspect`). A request that
//! does not match skips the plugin in both directions; the built-in
//! `route-match` decides it inside the composite, so every host runs it.
//!
//! Semantics (what `docs/manifest.md` promises): every key given must
//! hold, and within one key any value; paths are compared without the
//! query, case-sensitively; a prefix matches on segment boundaries; hosts
//! are compared without port, case-insensitively; methods exactly.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The conditions of one plugin's `match`, checked and normalised. No list
/// is empty: a key not given is an empty list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct RouteMatch {
    /// Paths the request's path lies under (`/api` takes `/api` and
    /// `/api/v1`, not `/apis`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub path_prefix: Vec<String>,
    /// Paths the request's path equals.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub path_exact: Vec<String>,
    /// Methods, exactly as sent (`GET`; methods are case-sensitive).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub methods: Vec<String>,
    /// Lowercase host names, `*.domain` (names under `domain`) or `*`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
    /// Lowercase header names and the value one of theirs must equal
    /// (`None`: present, with any value).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<(String, Option<String>)>,
}

impl RouteMatch {
    /// The list conditions under the keys `match` and the store spell them
    /// with.
    fn lists(&self) -> [(&'static str, &[String]); 4] {
        [
            ("path-prefix", &self.path_prefix),
            ("path-exact", &self.path_exact),
            ("methods", &self.methods),
            ("hosts", &self.hosts),
        ]
    }

    /// What the built-in `route-match` reads from its store: one value a
    /// line, headers as `name=value` or `name=*`.
    pub fn store_entries(&self) -> Vec<(String, String)> {
        let headers = self
            .headers
            .iter()
            .map(|(name, value)| format!("{name}={}", value.as_deref().unwrap_or("*")))
            .collect::<Vec<_>>();
        self.lists()
            .into_iter()
            .chain([("headers", headers.as_slice())])
            .filter(|(_, values)| !values.is_empty())
            .map(|(key, values)| (key.to_string(), values.join("\n")))
            .collect()
    }

    /// The `match = { … }` inline table that reads back as this.
    pub fn to_toml(&self) -> String {
        let list = |values: &[String]| -> String {
            let quoted: Vec<String> = values
                .iter()
                .map(|v| toml::Value::from(v.as_str()).to_string())
                .collect();
            format!("[{}]", quoted.join(", "))
        };
        let mut keys = Vec::new();
        for (key, values) in self.lists() {
            if !values.is_empty() {
                keys.push(format!("{key} = {}", list(values)));
            }
        }
        if !self.headers.is_empty() {
            let headers: Vec<String> = self
                .headers
                .iter()
                .map(|(name, value)| {
                    format!(
                        "{} = {}",
                        toml::Value::from(name.as_str()),
                        toml::Value::from(value.as_deref().unwrap_or("*"))
                    )
                })
                .collect();
            keys.push(format!("headers = {{ {} }}", headers.join(", ")));
        }
        format!("{{ {} }}", keys.join(", "))
    }

    /// Why no request can ever match, if none can: the plugin would never
    /// run, which is worth a warning.
    pub fn never_matches(&self) -> Option<String> {
        let paths: Vec<&String> = self.path_prefix.iter().chain(&self.path_exact).collect();
        let dead = |p: &&String| p.contains(['?', '#']);
        if !paths.is_empty() && paths.iter().all(dead) {
            return Some(
                "every path it gives has a query (`?`) or a fragment (`#`), and paths are \
                 compared without them"
                    .into(),
            );
        }
        None
    }
}

impl fmt::Display for RouteMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        let mut paths: Vec<String> = self.path_prefix.iter().map(|p| format!("{p}…")).collect();
        paths.extend(self.path_exact.iter().cloned());
        if !paths.is_empty() {
            parts.push(format!("path {}", paths.join(" | ")));
        }
        if !self.methods.is_empty() {
            parts.push(format!("method {}", self.methods.join(" | ")));
        }
        if !self.hosts.is_empty() {
            parts.push(format!("host {}", self.hosts.join(" | ")));
        }
        for (name, value) in &self.headers {
            match value {
                Some(value) => parts.push(format!("{name}: {value}")),
                None => parts.push(format!("{name} present")),
            }
        }
        f.write_str(&parts.join(", "))
    }
}
