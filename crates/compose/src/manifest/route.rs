//! A plugin's `match = { … }`: read with spans, checked, and normalised
//! into a [`RouteMatch`]. Every mistake names its line and column.

use crate::error::{Error, SourceFile};
use crate::route::RouteMatch;
use serde::Deserialize;
use std::ops::Range;
use toml::Spanned;

/// `match = { path-prefix = [...], path-exact = [...], methods = [...],
/// hosts = [...], headers = { NAME = "VALUE" | "*" } }`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawMatch {
    path_prefix: Option<RawList>,
    path_exact: Option<RawList>,
    methods: Option<RawList>,
    hosts: Option<RawList>,
    headers: Option<Spanned<indexmap::IndexMap<String, Spanned<String>>>>,
}

type RawList = Spanned<Vec<Spanned<String>>>;

/// The methods RFC 9110 and RFC 5789 define: a lowercase spelling of one
/// of them is almost surely a mistake (methods are case-sensitive).
const STANDARD_METHODS: &[&str] = &[
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
];

/// Checks and normalises `raw`; returns it with where it is written.
pub(super) fn parse(
    file: &SourceFile,
    raw: Spanned<RawMatch>,
) -> Result<(RouteMatch, Range<usize>), Error> {
    let span = raw.span();
    let raw = raw.into_inner();
    let given = [&raw.path_prefix, &raw.path_exact, &raw.methods, &raw.hosts]
        .iter()
        .any(|l| l.is_some())
        || raw.headers.is_some();
    if !given {
        return Err(file.error(
            span,
            "an empty `match` applies to every request".into(),
            Some("remove `match`, or give `path-prefix`, `path-exact`, `methods`, `hosts` or `headers`".into()),
        ));
    }
    let route = RouteMatch {
        path_prefix: list(file, raw.path_prefix, "path-prefix", path)?,
        path_exact: list(file, raw.path_exact, "path-exact", path)?,
        methods: list(file, raw.methods, "methods", method)?,
        hosts: list(file, raw.hosts, "hosts", host)?,
        headers: match raw.headers {
            None => Vec::new(),
            Some(headers) if headers.get_ref().is_empty() => {
                return Err(empty(file, headers.span(), "headers"));
            }
            Some(headers) => headers
                .into_inner()
                .into_iter()
                .map(|(name, value)| header(file, name, value))
                .collect::<Result<_, _>>()?,
        },
    };
    Ok((route, span))
}

/// A list's values, each checked by `check` (which returns its normal
/// form, or the problem and a hint), without repeats.
fn list(
    file: &SourceFile,
    raw: Option<RawList>,
    key: &str,
    check: fn(&str) -> Result<String, (String, String)>,
) -> Result<Vec<String>, Error> {
    let Some(raw) = raw else {
        return Ok(Vec::new());
    };
    if raw.get_ref().is_empty() {
        return Err(empty(file, raw.span(), key));
    }
    let mut values: Vec<String> = Vec::new();
    for entry in raw.into_inner() {
        let value = check(entry.get_ref()).map_err(|(problem, hint)| {
            file.error(
                entry.span(),
                format!("`match.{key}`: `{}` {problem}", entry.get_ref()),
                Some(hint),
            )
        })?;
        if !values.contains(&value) {
            values.push(value);
        }
    }
    Ok(values)
}

fn empty(file: &SourceFile, span: Range<usize>, key: &str) -> Error {
    file.error(
        span,
        format!("`match.{key}` is empty, so no request could match"),
        Some(format!(
            "name at least one value, or remove `{key}` to let every request through on it"
        )),
    )
}

fn path(value: &str) -> Result<String, (String, String)> {
    if !value.starts_with('/') {
        return Err((
            "does not start with `/`".into(),
            format!("paths are matched from the start: write `/{value}`"),
        ));
    }
    Ok(value.to_string())
}

fn method(value: &str) -> Result<String, (String, String)> {
    if !is_token(value) {
        return Err((
            "is not a method (a token: letters, digits and `!#$%&'*+-.^_`|~`)".into(),
            "write a method as sent, e.g. `GET` or `POST`".into(),
        ));
    }
    let upper = value.to_ascii_uppercase();
    if upper != value && STANDARD_METHODS.contains(&upper.as_str()) {
        return Err((
            "is not the method it looks like: methods are case-sensitive".into(),
            format!("write `{upper}`"),
        ));
    }
    Ok(value.to_string())
}

fn host(value: &str) -> Result<String, (String, String)> {
    let host = value.trim_end_matches('.').to_ascii_lowercase();
    let name = host.strip_prefix("*.").unwrap_or(&host);
    if host == "*" {
        return Ok(host);
    }
    if host.contains('*') && !host.starts_with("*.") || name.contains('*') {
        return Err((
            "has a wildcard that is not its first label".into(),
            "a wildcard stands alone first, as in `*.example.com`, or is the whole pattern `*`"
                .into(),
        ));
    }
    let bracketed = name.starts_with('[') && name.ends_with(']');
    if !bracketed && name.contains(':') {
        return Err((
            "has a port".into(),
            "hosts are matched by name, without the port: remove `:PORT`".into(),
        ));
    }
    let valid = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_');
    if name.is_empty() || !(bracketed || name.chars().all(valid)) {
        return Err((
            "is not a host name".into(),
            "write a name such as `api.example.com`, a pattern such as `*.example.com`, or `*`"
                .into(),
        ));
    }
    Ok(host)
}

fn header(
    file: &SourceFile,
    name: String,
    value: Spanned<String>,
) -> Result<(String, Option<String>), Error> {
    if !is_token(&name) {
        return Err(file.error(
            value.span(),
            format!("`match.headers`: `{name}` is not a header name"),
            Some("a header name is a token (letters, digits and `!#$%&'*+-.^_`|~`); pseudo-headers such as `:path` have keys of their own".into()),
        ));
    }
    let wanted = match value.get_ref().as_str() {
        "*" => None,
        text if text.chars().any(|c| c.is_control() && c != '\t') => {
            return Err(file.error(
                value.span(),
                format!("`match.headers`: the value for `{name}` has a control character"),
                Some("header values are text on one line; `*` matches any value".into()),
            ));
        }
        text => Some(text.to_string()),
    };
    Ok((name.to_ascii_lowercase(), wanted))
}

/// An HTTP token (RFC 9110 §5.6.2).
fn is_token(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}
