//! What the importers share: YAML (and JSON) documents whose every node
//! knows its line and column, so an error points at the entry it is about,
//! and the TOML they write.

use crate::error::{Error, SourceFile};
use marked_yaml::Node;

/// A YAML document of `file`, for errors that point into it.
pub(crate) struct Doc<'a> {
    pub file: &'a SourceFile,
}

impl<'a> Doc<'a> {
    pub fn new(file: &'a SourceFile) -> Doc<'a> {
        Doc { file }
    }

    pub fn get<'n>(&self, node: &'n Node, key: &str) -> Option<&'n Node> {
        node.as_mapping()?.get_node(key)
    }

    pub fn str_at<'n>(&self, node: &'n Node, key: &str) -> Option<&'n str> {
        Some(self.get(node, key)?.as_scalar()?.as_str())
    }

    pub fn line(&self, node: &Node) -> usize {
        node.span().start().map_or(0, |m| m.line())
    }

    pub fn error_at(&self, character: usize, message: String, help: Option<String>) -> Error {
        let offset = self
            .file
            .text
            .char_indices()
            .nth(character)
            .map_or(self.file.text.len(), |(offset, _)| offset);
        self.file.error(offset..offset, message, help)
    }

    /// An error at where `key` is written in the mapping `node`.
    pub fn key_error(
        &self,
        node: &Node,
        key: &str,
        message: String,
        help: Option<String>,
    ) -> Error {
        let at = node
            .as_mapping()
            .and_then(|m| m.keys().find(|k| k.as_str() == key))
            .and_then(|k| k.span().start())
            .map_or(0, |m| m.character());
        self.error_at(at, message, help)
    }

    pub fn error(&self, node: &Node, message: String, help: Option<String>) -> Error {
        self.error_at(
            node.span().start().map_or(0, |m| m.character()),
            message,
            help,
        )
    }
}

/// A YAML node as JSON (scalars that read as numbers or booleans as such,
/// as Envoy's Struct parser takes them).
pub(crate) fn json(node: &Node) -> serde_json::Value {
    match node {
        Node::Scalar(s) => {
            let text = s.as_str();
            match serde_json::from_str::<serde_json::Value>(text) {
                Ok(
                    v @ (serde_json::Value::Number(_)
                    | serde_json::Value::Bool(_)
                    | serde_json::Value::Null),
                ) => v,
                _ => serde_json::Value::String(text.to_string()),
            }
        }
        Node::Sequence(items) => items.iter().map(json).collect(),
        Node::Mapping(map) => map
            .iter()
            .map(|(k, v)| (k.as_str().to_string(), json(v)))
            .collect::<serde_json::Map<_, _>>()
            .into(),
    }
}

/// A chain or plugin name from another proxy's: kebab-case.
pub(crate) fn kebab(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        match c {
            'a'..='z' | '0'..='9' => out.push(c),
            'A'..='Z' => out.push(c.to_ascii_lowercase()),
            _ if !out.is_empty() && !out.ends_with('-') => out.push('-'),
            _ => {}
        }
    }
    let out = out.trim_end_matches('-').to_string();
    match out.chars().next() {
        Some(c) if c.is_ascii_lowercase() => out,
        Some(_) => format!("filter-{out}"),
        None => "filter".into(),
    }
}

pub(crate) fn toml_string(text: &str) -> String {
    toml::Value::String(text.to_string()).to_string()
}

pub(crate) fn toml_key(key: &str) -> String {
    match key
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        true => key.to_string(),
        false => toml_string(key),
    }
}

pub(crate) fn list<'s>(items: impl IntoIterator<Item = &'s str>) -> String {
    let items: Vec<String> = items.into_iter().map(|i| format!("`{i}`")).collect();
    match items.is_empty() {
        true => "none".into(),
        false => items.join(", "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_kebab_case() {
        assert_eq!(kebab("my_plugin.v2"), "my-plugin-v2");
        assert_eq!(kebab("AddHeader"), "addheader");
        assert_eq!(kebab("9lives"), "filter-9lives");
        assert_eq!(kebab("__"), "filter");
    }
}
