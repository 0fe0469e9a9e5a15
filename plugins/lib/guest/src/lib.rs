//! What every pwchain example plugin shares: bindings to the imports of the
//! `wasi:http` 0.3 worlds, and the few helpers that p3 makes necessary
//! (fetched headers are immutable, so changing them means rebuilding the
//! request or response around the same body stream).
//!
//! A plugin states its own world with [`bindings!`] (so its component
//! imports exactly what that world allows), implements the generated
//! `Guest` trait and calls the generated `export!`.

wit_bindgen::generate!({
    inline: "
        package pwchain:guest;
        world imports {
            import wasi:http/types@0.3.2;
            import wasi:http/client@0.3.2;
            import wasi:cli/types@0.3.2;
            import wasi:cli/stdout@0.3.2;
            import wasi:cli/stderr@0.3.2;
            import wasi:cli/stdin@0.3.2;
            import wasi:clocks/types@0.3.2;
            import wasi:clocks/monotonic-clock@0.3.2;
            import wasi:clocks/system-clock@0.3.2;
            import wasi:random/random@0.3.2;
            import wasi:random/insecure@0.3.2;
            import wasi:random/insecure-seed@0.3.2;
        }
    ",
    path: "../../../wit",
    world: "pwchain:guest/imports",
    generate_all,
});

/// Generates a plugin's bindings for `$world` (`"wasi:http/middleware@0.3.2"`,
/// `"wasi:http/service@0.3.2"` or `"pwchain:proxy/proxy@0.1.0"`), sharing
/// this crate's types so its helpers apply.
///
/// `bindings!(WORLD, sync)` lifts `handle` and lowers the next hop
/// synchronously: a hop then costs a plain call instead of an async task,
/// but the instance serves one request at a time and nothing may be
/// spawned (no body transforms, which must keep writing after `handle`
/// returns).
#[macro_export]
macro_rules! bindings {
    ($world:literal) => {
        $crate::bindings!(@generate $world,);
    };
    ($world:literal, sync) => {
        $crate::bindings!(@generate $world, async: ["-all"],);
    };
    (@generate $world:literal, $($options:tt)*) => {
        wit_bindgen::generate!({
            path: "../../../wit",
            world: $world,
            $($options)*
            with: {
                "wasi:http/types@0.3.2": pwchain_guest::wasi::http::types,
                "wasi:http/client@0.3.2": pwchain_guest::wasi::http::client,
                "wasi:cli/types@0.3.2": pwchain_guest::wasi::cli::types,
                "wasi:cli/stdout@0.3.2": pwchain_guest::wasi::cli::stdout,
                "wasi:cli/stderr@0.3.2": pwchain_guest::wasi::cli::stderr,
                "wasi:cli/stdin@0.3.2": pwchain_guest::wasi::cli::stdin,
                "wasi:clocks/types@0.3.2": pwchain_guest::wasi::clocks::types,
                "wasi:clocks/monotonic-clock@0.3.2": pwchain_guest::wasi::clocks::monotonic_clock,
                "wasi:clocks/system-clock@0.3.2": pwchain_guest::wasi::clocks::system_clock,
                "wasi:random/random@0.3.2": pwchain_guest::wasi::random::random,
                "wasi:random/insecure@0.3.2": pwchain_guest::wasi::random::insecure,
                "wasi:random/insecure-seed@0.3.2": pwchain_guest::wasi::random::insecure_seed,
            },
            generate_all,
        });
    };
}

pub use wasi::http::types::{ErrorCode, Fields, Method, Request, Response, Scheme};
pub use wit_bindgen::{
    FutureReader, StreamReader, StreamResult, StreamWriter, spawn_local as spawn,
};

/// Header names and values as `fields.copy-all` returns them.
pub type HeaderList = Vec<(String, Vec<u8>)>;

/// A body's trailers, as `consume-body` returns them.
pub type Trailers = FutureReader<Result<Option<Fields>, ErrorCode>>;

/// A `res` future for `consume-body` that reports success once dropped.
pub fn body_done() -> FutureReader<Result<(), ErrorCode>> {
    wit_future::new(|| Ok(())).1
}

mod sync_outcome;
pub use sync_outcome::body_done_sync;

/// Where a body's trailers (or its failure) are sent.
pub type TrailersWriter = wit_bindgen::FutureWriter<Result<Option<Fields>, ErrorCode>>;

/// A body's trailers to be written later; dropping the writer unwritten
/// means "no trailers".
pub fn trailers_channel() -> (TrailersWriter, Trailers) {
    wit_future::new(|| Ok(None))
}

/// A body stream to be written later.
pub fn body_channel() -> (StreamWriter<u8>, StreamReader<u8>) {
    wit_stream::new()
}

/// Trailers that resolve to "none".
pub fn no_trailers() -> Trailers {
    trailers(None)
}

/// Trailers that resolve to `fields`.
pub fn trailers(fields: Option<Fields>) -> Trailers {
    let (tx, rx) = wit_future::new(|| Ok(None));
    if let Some(fields) = fields {
        spawn(async move {
            let _ = tx.write(Ok(Some(fields))).await;
        });
    }
    rx
}

/// `headers` as a `fields` resource, or an error naming what was wrong.
pub fn fields(headers: &[(String, Vec<u8>)]) -> Result<Fields, ErrorCode> {
    Fields::from_list(headers)
        .map_err(|e| ErrorCode::InternalError(Some(format!("invalid header list: {e:?}"))))
}

/// A mutable copy of a message's headers, made by the host
/// (`fields.clone`): only the names and values a plugin reads or changes
/// cross into the guest and back, where `copy-all` + `from-list` would carry
/// every header both ways on every hop.
pub struct HeaderEdit(Fields);

impl HeaderEdit {
    /// The first value of header `name`, as text.
    pub fn get(&self, name: &str) -> Option<String> {
        self.0
            .get(name)
            .into_iter()
            .next()
            .and_then(|value| String::from_utf8(value).ok())
    }

    /// Adds a value for `name`, after any it has.
    pub fn append(&self, name: &str, value: impl AsRef<[u8]>) -> Result<(), ErrorCode> {
        let value = value.as_ref();
        self.0
            .append(name, value)
            .map_err(|e| invalid_header(name, e))
    }

    /// Appends every pair of `headers`.
    pub fn append_all(&self, headers: &[(String, Vec<u8>)]) -> Result<(), ErrorCode> {
        headers
            .iter()
            .try_for_each(|(name, value)| self.append(name, value))
    }

    /// Replaces every value of `name` with `value`.
    pub fn set(&self, name: &str, value: impl AsRef<[u8]>) -> Result<(), ErrorCode> {
        self.0
            .set(name, &[value.as_ref().to_vec()])
            .map_err(|e| invalid_header(name, e))
    }

    /// Removes every value of `name`.
    pub fn remove(&self, name: &str) -> Result<(), ErrorCode> {
        self.0.delete(name).map_err(|e| invalid_header(name, e))
    }
}

fn invalid_header(name: &str, error: wasi::http::types::HeaderError) -> ErrorCode {
    ErrorCode::InternalError(Some(format!("header `{name}`: {error:?}")))
}

/// Rebuilds `request` with its headers changed by `edit`; method, target,
/// options and the body stream are carried over untouched.
pub fn map_request_headers(
    request: Request,
    edit: impl FnOnce(&HeaderEdit) -> Result<(), ErrorCode>,
) -> Result<Request, ErrorCode> {
    rebuild_request(request, edit, body_done())
}

/// [`map_request_headers`] for a sync-lifted `handle`.
pub fn map_request_headers_sync(
    request: Request,
    edit: impl FnOnce(&HeaderEdit) -> Result<(), ErrorCode>,
) -> Result<Request, ErrorCode> {
    rebuild_request(request, edit, body_done_sync())
}

fn rebuild_request(
    request: Request,
    edit: impl FnOnce(&HeaderEdit) -> Result<(), ErrorCode>,
    done: FutureReader<Result<(), ErrorCode>>,
) -> Result<Request, ErrorCode> {
    let method = request.get_method();
    let scheme = request.get_scheme();
    let path = request.get_path_with_query();
    let authority = request.get_authority();
    let options = request.get_options().map(|o| o.clone());
    let headers = HeaderEdit(request.get_headers().clone());
    edit(&headers)?;
    let (body, trailers) = Request::consume_body(request, done);
    let (rebuilt, _) = Request::new(headers.0, Some(body), trailers, options);
    let invalid = |what: &str| ErrorCode::InternalError(Some(format!("cannot carry over {what}")));
    rebuilt
        .set_method(&method)
        .map_err(|()| invalid("method"))?;
    rebuilt
        .set_scheme(scheme.as_ref())
        .map_err(|()| invalid("scheme"))?;
    rebuilt
        .set_path_with_query(path.as_deref())
        .map_err(|()| invalid("path"))?;
    rebuilt
        .set_authority(authority.as_deref())
        .map_err(|()| invalid("authority"))?;
    Ok(rebuilt)
}

/// Rebuilds `response` with its headers changed by `edit_headers` and, if
/// given, every body chunk passed through `edit_body` as it streams by.
pub fn map_response(
    response: Response,
    edit_headers: impl FnOnce(&HeaderEdit) -> Result<(), ErrorCode>,
    edit_body: Option<fn(&mut Vec<u8>)>,
) -> Result<Response, ErrorCode> {
    rebuild_response(response, edit_headers, edit_body, body_done())
}

/// [`map_response`] for a sync-lifted `handle`: headers only, as nothing
/// could edit the body after `handle` returns.
pub fn map_response_headers_sync(
    response: Response,
    edit_headers: impl FnOnce(&HeaderEdit) -> Result<(), ErrorCode>,
) -> Result<Response, ErrorCode> {
    rebuild_response(response, edit_headers, None, body_done_sync())
}

fn rebuild_response(
    response: Response,
    edit_headers: impl FnOnce(&HeaderEdit) -> Result<(), ErrorCode>,
    edit_body: Option<fn(&mut Vec<u8>)>,
    done: FutureReader<Result<(), ErrorCode>>,
) -> Result<Response, ErrorCode> {
    let status = response.get_status_code();
    let headers = HeaderEdit(response.get_headers().clone());
    edit_headers(&headers)?;
    let (mut body, trailers) = Response::consume_body(response, done);
    if let Some(edit) = edit_body {
        let (tx, rx) = wit_stream::new();
        spawn(async move {
            pipe(body, tx, edit).await;
        });
        body = rx;
    }
    let (rebuilt, _) = Response::new(headers.0, Some(body), trailers);
    rebuilt
        .set_status_code(status)
        .map_err(|()| ErrorCode::InternalError(Some(format!("bad status {status}"))))?;
    Ok(rebuilt)
}

/// Copies `from` into `to` chunk by chunk, letting `edit` change (or look
/// at) each chunk; stops when either side is gone. Nothing is buffered
/// beyond one chunk. Says whether `from` was read to its end, as opposed
/// to `to` going away first.
pub async fn pipe(
    mut from: StreamReader<u8>,
    mut to: StreamWriter<u8>,
    mut edit: impl FnMut(&mut Vec<u8>),
) -> bool {
    const CHUNK: usize = 16 * 1024;
    let mut chunk = Vec::with_capacity(CHUNK);
    loop {
        let (status, read) = from.read(chunk).await;
        chunk = read;
        if !chunk.is_empty() {
            edit(&mut chunk);
            if !to.write_all(std::mem::take(&mut chunk)).await.is_empty() {
                return false;
            }
            chunk.reserve(CHUNK);
        }
        if !matches!(status, StreamResult::Complete(_)) {
            return true;
        }
    }
}

/// A body stream that yields `prefix` and then, if given, all of `rest`.
pub fn body_stream(prefix: Vec<u8>, rest: Option<StreamReader<u8>>) -> StreamReader<u8> {
    let (mut tx, rx) = wit_stream::new();
    spawn(async move {
        if !tx.write_all(prefix).await.is_empty() {
            return;
        }
        if let Some(rest) = rest {
            pipe(rest, tx, |_| {}).await;
        }
    });
    rx
}

/// A complete response with a small text body.
pub fn text_response(
    status: u16,
    headers: &[(String, Vec<u8>)],
    body: impl Into<String>,
) -> Result<Response, ErrorCode> {
    let mut all = vec![(
        "content-type".to_string(),
        b"text/plain; charset=utf-8".to_vec(),
    )];
    all.extend_from_slice(headers);
    let body = body_stream(body.into().into_bytes(), None);
    let (response, _) = Response::new(fields(&all)?, Some(body), no_trailers());
    response
        .set_status_code(status)
        .map_err(|()| ErrorCode::InternalError(Some(format!("bad status {status}"))))?;
    Ok(response)
}

/// The headers `add-header` adds to the request and to the response: each
/// configuration key `request.NAME` / `response.NAME` adds header `NAME`;
/// with no configuration, `x-chain-hop: NAME` and `x-served-by: pwchain
/// NAME` (`name` being the plugin's).
pub fn configured_headers(config: Vec<(String, String)>, name: &str) -> (HeaderList, HeaderList) {
    if config.is_empty() {
        return (
            vec![("x-chain-hop".into(), name.as_bytes().to_vec())],
            vec![("x-served-by".into(), format!("pwchain {name}").into_bytes())],
        );
    }
    let under = |prefix: &str| -> HeaderList {
        config
            .iter()
            .filter_map(|(key, value)| {
                Some((
                    key.strip_prefix(prefix)?.to_string(),
                    value.as_bytes().to_vec(),
                ))
            })
            .collect()
    };
    (under("request."), under("response."))
}

/// A request method as it appears on the wire.
pub fn method_name(method: &Method) -> &str {
    match method {
        Method::Get => "GET",
        Method::Head => "HEAD",
        Method::Post => "POST",
        Method::Put => "PUT",
        Method::Delete => "DELETE",
        Method::Connect => "CONNECT",
        Method::Options => "OPTIONS",
        Method::Trace => "TRACE",
        Method::Patch => "PATCH",
        Method::Other(other) => other,
    }
}

/// A method from its name on the wire, as a pseudo-header carries it.
pub fn parse_method(method: &str) -> Method {
    match method {
        "GET" => Method::Get,
        "HEAD" => Method::Head,
        "POST" => Method::Post,
        "PUT" => Method::Put,
        "DELETE" => Method::Delete,
        "CONNECT" => Method::Connect,
        "OPTIONS" => Method::Options,
        "TRACE" => Method::Trace,
        "PATCH" => Method::Patch,
        other => Method::Other(other.to_string()),
    }
}

/// A scheme from its name (`http`, `https`, or another).
pub fn parse_scheme(scheme: &str) -> Scheme {
    match scheme {
        "http" => Scheme::Http,
        "https" => Scheme::Https,
        other => Scheme::Other(other.to_string()),
    }
}

/// The first value of header `name` in `headers`, as text.
pub fn header<'a>(headers: &'a [(String, Vec<u8>)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .and_then(|(_, v)| std::str::from_utf8(v).ok())
}
