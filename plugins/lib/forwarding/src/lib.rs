//! The reverse-proxy rules pwchain applies wherever it sends a request on
//! to an upstream, kept in one place because three parts apply them: the
//! manifest (checking `[origin] upstream`), the built-in forwarding
//! terminator (a guest, `plugins/builtins/forward`), and `pwchain serve` (its
//! `--upstream` next hop and the `x-forwarded-*` it records on the way in).
//!
//! The rules are those of common reverse proxies (nginx, Envoy): the
//! request's scheme and authority become the upstream's, the upstream's base
//! path prefixes the request's path, `Host` names the upstream, hop-by-hop
//! headers stay behind, and `x-forwarded-for`/`-host`/`-proto` tell the
//! upstream who asked for what.
//!
//! No dependencies unless the `http` feature asks for them, so the
//! terminator stays small.

use std::fmt;

/// An upstream URL, `http(s)://host[:port][/base]` or `h2c://…` (HTTP/2
/// with prior knowledge over plain TCP, as gRPC servers speak), checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    scheme: Scheme,
    authority: String,
    /// Empty, or a path starting with `/` and not ending with one.
    base_path: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
    /// HTTP/2 with prior knowledge, without TLS: the host's client must
    /// know the scheme (`pwchain serve` does; see the README for others).
    H2c,
}

impl Scheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
            Scheme::H2c => "h2c",
        }
    }
}

/// Why a text is not an upstream URL. Its `Display` says what was found;
/// [`UpstreamError::hint`] says what to write instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpstreamError {
    /// No `scheme://`, or a scheme other than http and https.
    Scheme(String),
    NoHost,
    /// `user:password@`: credentials do not belong in a chain.
    UserInfo,
    Query,
    Fragment,
    /// A port that is not a number from 1 to 65535.
    Port(String),
    /// A character a URL cannot hold unescaped.
    Character(char),
}

impl fmt::Display for UpstreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UpstreamError::Scheme(found) if found.is_empty() => {
                f.write_str("it is not an absolute URL")
            }
            UpstreamError::Scheme(found) => {
                write!(f, "scheme `{found}` is not http, https or h2c")
            }
            UpstreamError::NoHost => f.write_str("it names no host"),
            UpstreamError::UserInfo => f.write_str("it carries user information (`user@`)"),
            UpstreamError::Query => f.write_str("it has a query (`?…`)"),
            UpstreamError::Fragment => f.write_str("it has a fragment (`#…`)"),
            UpstreamError::Port(port) => write!(f, "port `{port}` is not a number from 1 to 65535"),
            UpstreamError::Character(c) => write!(f, "it contains {c:?}"),
        }
    }
}

impl std::error::Error for UpstreamError {}

impl UpstreamError {
    /// What to write instead.
    pub fn hint(&self) -> &'static str {
        match self {
            UpstreamError::UserInfo => {
                "write `http://host:port[/base]`; credentials belong in a header a plugin adds, not in the URL"
            }
            UpstreamError::Query | UpstreamError::Fragment => {
                "write `http://host:port[/base]`: every request keeps its own path and query, joined to the base"
            }
            _ => {
                "write an absolute URL such as `http://127.0.0.1:9000`, `https://api.example.com/v1` or `h2c://127.0.0.1:50051`"
            }
        }
    }
}

impl std::str::FromStr for Upstream {
    type Err = UpstreamError;

    fn from_str(url: &str) -> Result<Upstream, UpstreamError> {
        if let Some(c) = url.chars().find(|c| c.is_whitespace() || c.is_control()) {
            return Err(UpstreamError::Character(c));
        }
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| UpstreamError::Scheme(String::new()))?;
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "http" => Scheme::Http,
            "https" => Scheme::Https,
            "h2c" => Scheme::H2c,
            _ => return Err(UpstreamError::Scheme(scheme.to_string())),
        };
        if rest.contains('#') {
            return Err(UpstreamError::Fragment);
        }
        if rest.contains('?') {
            return Err(UpstreamError::Query);
        }
        let (authority, path) = match rest.find('/') {
            Some(at) => rest.split_at(at),
            None => (rest, ""),
        };
        if authority.contains('@') {
            return Err(UpstreamError::UserInfo);
        }
        check_authority(authority)?;
        Ok(Upstream {
            scheme,
            authority: authority.to_ascii_lowercase(),
            base_path: path.trim_end_matches('/').to_string(),
        })
    }
}

/// `host[:port]`, where host is a name, an IPv4 address or `[IPv6]`.
fn check_authority(authority: &str) -> Result<(), UpstreamError> {
    let port = match authority.strip_prefix('[') {
        Some(v6) => {
            let (address, after) = v6.split_once(']').ok_or(UpstreamError::NoHost)?;
            let address_like = |c: char| c.is_ascii_hexdigit() || c == ':' || c == '.';
            if address.is_empty() || !address.chars().all(address_like) {
                return Err(UpstreamError::NoHost);
            }
            match after {
                "" => None,
                _ => Some(after.strip_prefix(':').ok_or(UpstreamError::NoHost)?),
            }
        }
        None => {
            let (host, port) = match authority.split_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            };
            if host.is_empty() {
                return Err(UpstreamError::NoHost);
            }
            let name_like = |c: &char| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_');
            if let Some(c) = host.chars().find(|c| !name_like(c)) {
                return Err(UpstreamError::Character(c));
            }
            port
        }
    };
    if let Some(port) = port
        && !matches!(port.parse::<u16>(), Ok(1..))
    {
        return Err(UpstreamError::Port(port.to_string()));
    }
    Ok(())
}

impl fmt::Display for Upstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}://{}{}",
            self.scheme.as_str(),
            self.authority,
            self.base_path
        )
    }
}

impl Upstream {
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// `host[:port]`, also what `Host` says to the upstream.
    pub fn authority(&self) -> &str {
        &self.authority
    }

    /// The base path every request's path is joined to (empty, or
    /// `/segments` without a trailing `/`).
    pub fn base_path(&self) -> &str {
        &self.base_path
    }

    /// The path and query to ask the upstream for: the base path joined
    /// with the request's own (`/` when it has none).
    pub fn target(&self, path_with_query: Option<&str>) -> String {
        let path = match path_with_query {
            Some(p) if p.starts_with('/') => p.to_string(),
            Some(p) if !p.is_empty() => format!("/{p}"),
            _ => "/".to_string(),
        };
        format!("{}{path}", self.base_path)
    }
}

/// Headers that concern one connection only, never passed on (RFC 9110
/// §7.6.1, and the non-standard ones proxies also drop). `trailer` is not
/// one: it names the trailers that follow the body, end to end, and Envoy
/// passes it on (`tests/envoy.rs`).
pub const HOP_BY_HOP: [&str; 7] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "upgrade",
];

/// A header map, whatever the representation (hyper's on the host, a list
/// of pairs in a guest). Names are lower-case.
pub trait Headers {
    /// The values of `name`, joined with `, ` if there are several.
    fn value(&self, name: &str) -> Option<String>;
    /// Replaces every value of `name`.
    fn replace(&mut self, name: &str, value: String);
    fn remove_all(&mut self, name: &str);
}

/// Drops the hop-by-hop headers, and those the `connection` header names.
/// (`transfer-encoding` is left to the HTTP stack that reframes the body.)
/// `te: trailers` is passed on, as Envoy does (`tests/envoy.rs`): gRPC
/// requires it, and it is the one `te` HTTP/2 allows.
pub fn strip_hop_by_hop(headers: &mut impl Headers) {
    let trailers = headers.value("te").is_some_and(|te| {
        te.split(',')
            .any(|t| t.trim().eq_ignore_ascii_case("trailers"))
    });
    let named: Vec<String> = headers
        .value("connection")
        .map(|list| {
            list.split(',')
                .map(|t| t.trim().to_ascii_lowercase())
                .filter(|t| !t.is_empty())
                .collect()
        })
        .unwrap_or_default();
    for name in HOP_BY_HOP
        .iter()
        .copied()
        .chain(named.iter().map(String::as_str))
    {
        headers.remove_all(name);
    }
    if trailers {
        headers.replace("te", "trailers".into());
    }
}

/// What a proxy knows of the request it passes on, recorded in
/// `x-forwarded-*`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Forwarded<'a> {
    /// The client's address, appended to `x-forwarded-for`.
    pub client: Option<&'a str>,
    /// The host the client asked for, kept in `x-forwarded-host` unless an
    /// earlier proxy recorded one.
    pub host: Option<&'a str>,
    /// The scheme the client used, kept in `x-forwarded-proto` likewise.
    pub proto: Option<&'a str>,
}

impl Forwarded<'_> {
    pub fn record(&self, headers: &mut impl Headers) {
        if let Some(client) = self.client {
            let list = match headers.value("x-forwarded-for") {
                Some(earlier) if !earlier.trim().is_empty() => format!("{earlier}, {client}"),
                _ => client.to_string(),
            };
            headers.replace("x-forwarded-for", list);
        }
        for (name, value) in [
            ("x-forwarded-host", self.host),
            ("x-forwarded-proto", self.proto),
        ] {
            if let Some(value) = value.filter(|v| !v.is_empty())
                && headers.value(name).is_none()
            {
                headers.replace(name, value.to_string());
            }
        }
    }
}

/// A list of name and value pairs, as a guest's `fields.copy-all` gives it.
impl Headers for Vec<(String, Vec<u8>)> {
    fn value(&self, name: &str) -> Option<String> {
        let values: Vec<String> = self
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
            .collect();
        (!values.is_empty()).then(|| values.join(", "))
    }

    fn replace(&mut self, name: &str, value: String) {
        self.remove_all(name);
        self.push((name.to_string(), value.into_bytes()));
    }

    fn remove_all(&mut self, name: &str) {
        self.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
    }
}

/// hyper's header map, for the host.
#[cfg(feature = "http")]
impl Headers for http::HeaderMap {
    fn value(&self, name: &str) -> Option<String> {
        let values: Vec<&str> = self
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        (!values.is_empty()).then(|| values.join(", "))
    }

    fn replace(&mut self, name: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(name.as_bytes()),
            http::HeaderValue::from_str(&value),
        ) {
            self.insert(name, value);
        }
    }

    fn remove_all(&mut self, name: &str) {
        self.remove(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn up(url: &str) -> Upstream {
        url.parse().unwrap()
    }

    #[test]
    fn parses_and_joins() {
        let base = up("http://127.0.0.1:9000/base/");
        assert_eq!(base.to_string(), "http://127.0.0.1:9000/base");
        assert_eq!(base.authority(), "127.0.0.1:9000");
        assert_eq!(base.target(Some("/a/b?c=1")), "/base/a/b?c=1");
        assert_eq!(base.target(None), "/base/");
        let bare = up("HTTPS://Up.Example");
        assert_eq!(bare.scheme(), Scheme::Https);
        assert_eq!(bare.to_string(), "https://up.example");
        assert_eq!(bare.target(Some("/x")), "/x");
        assert_eq!(bare.target(Some("")), "/");
        assert_eq!(up("http://[::1]:8080").authority(), "[::1]:8080");
    }

    #[test]
    fn refuses_what_is_not_an_upstream() {
        let err = |url: &str| url.parse::<Upstream>().unwrap_err();
        assert_eq!(err("ftp://x"), UpstreamError::Scheme("ftp".into()));
        assert_eq!(err("/just/a/path"), UpstreamError::Scheme(String::new()));
        assert_eq!(err("127.0.0.1:9000"), UpstreamError::Scheme(String::new()));
        assert_eq!(err("http://x/?q=1"), UpstreamError::Query);
        assert_eq!(err("http://x/#top"), UpstreamError::Fragment);
        assert_eq!(err("http://user:pw@x/"), UpstreamError::UserInfo);
        assert_eq!(err("http:///x"), UpstreamError::NoHost);
        assert_eq!(err("http://:80"), UpstreamError::NoHost);
        assert_eq!(err("http://x:0"), UpstreamError::Port("0".into()));
        assert_eq!(err("http://x:99999"), UpstreamError::Port("99999".into()));
        assert_eq!(err("http://x:"), UpstreamError::Port(String::new()));
        assert_eq!(err("http://a b"), UpstreamError::Character(' '));
        assert_eq!(err("http://a%b"), UpstreamError::Character('%'));
        assert_eq!(err("http://[::1"), UpstreamError::NoHost);
    }

    #[test]
    fn hop_by_hop_headers_stay_behind() {
        let mut headers: Vec<(String, Vec<u8>)> = vec![
            ("Connection".into(), b"close, X-Secret".into()),
            ("x-secret".into(), b"1".into()),
            ("te".into(), b"gzip".into()),
            ("accept".into(), b"*/*".into()),
        ];
        strip_hop_by_hop(&mut headers);
        assert_eq!(headers, vec![("accept".to_string(), b"*/*".to_vec())]);
        // gRPC's `te: trailers` goes on, alone, and so does `trailer`.
        let mut grpc: Vec<(String, Vec<u8>)> = vec![
            ("te".into(), b"trailers, gzip".into()),
            ("trailer".into(), b"grpc-status".into()),
        ];
        strip_hop_by_hop(&mut grpc);
        assert_eq!(
            grpc,
            vec![
                ("trailer".to_string(), b"grpc-status".to_vec()),
                ("te".to_string(), b"trailers".to_vec())
            ]
        );
    }

    #[test]
    fn forwarded_headers_append_and_keep_earlier_ones() {
        let mut headers: Vec<(String, Vec<u8>)> =
            vec![("x-forwarded-for".into(), b"10.0.0.7".into())];
        Forwarded {
            client: Some("127.0.0.1"),
            host: Some("front.example"),
            proto: Some("http"),
        }
        .record(&mut headers);
        assert_eq!(
            headers.value("x-forwarded-for").unwrap(),
            "10.0.0.7, 127.0.0.1"
        );
        assert_eq!(headers.value("x-forwarded-host").unwrap(), "front.example");
        Forwarded {
            client: None,
            host: Some("other"),
            proto: Some("https"),
        }
        .record(&mut headers);
        assert_eq!(headers.value("x-forwarded-host").unwrap(), "front.example");
        assert_eq!(headers.value("x-forwarded-proto").unwrap(), "http");
        assert_eq!(
            headers.value("x-forwarded-for").unwrap(),
            "10.0.0.7, 127.0.0.1"
        );
    }
}
