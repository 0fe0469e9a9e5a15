//! What a chain lets each plugin have and do: its own configuration, where
//! its side calls may go, and which host imports the whole chain may use.
//! A composite's imports are merged across plugins, so none of this can be
//! left to the host: pwchain bakes it in at compose time.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A plugin's settings from its manifest entry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    /// `config = { … }`: what the plugin's `wasi:config/store` holds.
    /// `None` when the manifest gives no table (the store is then empty).
    pub config: Option<Vec<(String, String)>>,
    /// Where its side calls go.
    pub side_calls: SideCalls,
}

/// Where a plugin's `wasi:http/client` calls go.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SideCalls {
    /// To the host's client, wherever the plugin aims them.
    #[default]
    Allow,
    /// Nowhere: every call fails with `HTTP-request-denied`.
    Deny,
    /// To the host's client if the authority matches one of these, else
    /// they fail with `HTTP-request-denied`.
    AllowList(Vec<AuthorityPattern>),
}

impl fmt::Display for SideCalls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SideCalls::Allow => f.write_str("allow"),
            SideCalls::Deny => f.write_str("deny"),
            SideCalls::AllowList(list) => {
                let list: Vec<&str> = list.iter().map(|p| p.0.as_str()).collect();
                write!(f, "allow only {}", list.join(", "))
            }
        }
    }
}

/// `host`, `host:port`, `*.domain` or `*.domain:port`: a pattern without a
/// port allows every port; `*.domain` matches names under `domain`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AuthorityPattern(String);

impl AuthorityPattern {
    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for AuthorityPattern {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let (host, port) = match text.rsplit_once(':') {
            Some((host, port)) if !host.contains(':') || host.ends_with(']') => (host, Some(port)),
            _ => (text, None),
        };
        if let Some(port) = port
            && !port.parse::<u16>().is_ok_and(|p| p > 0)
        {
            return Err(format!("`{port}` is not a port (1-65535)"));
        }
        let name = host.strip_prefix("*.").unwrap_or(host);
        let ipv6 = name.starts_with('[')
            && name.ends_with(']')
            && name[1..name.len() - 1]
                .parse::<std::net::Ipv6Addr>()
                .is_ok();
        let dns = !name.is_empty()
            && name.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                    && !label.starts_with('-')
                    && !label.ends_with('-')
            });
        if !(dns || (ipv6 && name == host)) {
            return Err(if name.contains('*') {
                "`*` may only stand as the first label, as in `*.example.internal`".into()
            } else {
                format!("`{host}` is not a host name or address")
            });
        }
        Ok(AuthorityPattern(text.to_ascii_lowercase()))
    }
}

/// An entry of `[chain] allow-imports`: an interface name such as
/// `wasi:http/types@0.3.2`, where `*` stands for any run of characters
/// (`wasi:*/*`, `wasi:http/*@0.3.*`) and a pattern without `@` matches
/// every version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportPattern(String);

impl ImportPattern {
    /// Whether `import` (`ns:pkg/iface@ver`) is allowed by this pattern.
    pub fn matches(&self, import: &str) -> bool {
        let subject = match self.0.contains('@') {
            true => import,
            false => import.split('@').next().unwrap_or(import),
        };
        glob(self.0.as_bytes(), subject.as_bytes())
    }
}

impl fmt::Display for ImportPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for ImportPattern {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let (name, version) = match text.split_once('@') {
            Some((name, version)) => (name, Some(version)),
            None => (text, None),
        };
        let word = |w: &str| {
            !w.is_empty()
                && w.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'*')
        };
        let shaped = name
            .split_once(':')
            .and_then(|(namespace, rest)| Some((namespace, rest.split_once('/')?)))
            .is_some_and(|(namespace, (package, interface))| {
                word(namespace) && word(package) && word(interface)
            });
        if !shaped {
            return Err("write an interface as `namespace:package/interface[@version]`, with `*` for any part (e.g. `wasi:http/*`)".into());
        }
        if let Some(version) = version
            && (version.is_empty()
                || !version
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-.+*".contains(&b)))
        {
            return Err(format!("`{version}` is not a version or a version pattern"));
        }
        Ok(ImportPattern(text.to_string()))
    }
}

/// Whether `text` matches `pattern`, where `*` matches any run of bytes.
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    match pattern.split_first() {
        None => text.is_empty(),
        Some((b'*', rest)) => (0..=text.len()).any(|i| glob(rest, &text[i..])),
        Some((c, rest)) => text.first() == Some(c) && glob(rest, &text[1..]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authority_patterns() {
        for good in [
            "example.com",
            "example.com:8080",
            "*.example.internal",
            "127.0.0.1:9",
            "[::1]:80",
        ] {
            assert!(good.parse::<AuthorityPattern>().is_ok(), "{good}");
        }
        for bad in [
            "",
            "a..b",
            "ex*ample.com",
            "host:0",
            "host:http",
            "*",
            "a b",
        ] {
            assert!(bad.parse::<AuthorityPattern>().is_err(), "{bad}");
        }
    }

    #[test]
    fn import_patterns() {
        let p = |s: &str| s.parse::<ImportPattern>().unwrap();
        assert!(p("wasi:http/*").matches("wasi:http/types@0.3.2"));
        assert!(p("wasi:*/*@0.2.*").matches("wasi:cli/stdout@0.2.6"));
        assert!(!p("wasi:*/*@0.2.*").matches("wasi:cli/stdout@0.3.2"));
        assert!(p("*:*/*").matches("acme:kv/store@1.0.0"));
        assert!(!p("wasi:http/client").matches("wasi:http/types@0.3.2"));
        for bad in [
            "wasi",
            "wasi:http",
            "Wasi:http/x",
            "wasi:http/x@",
            "wasi:http/x@1 2",
        ] {
            assert!(bad.parse::<ImportPattern>().is_err(), "{bad}");
        }
    }
}
