//! pwchain's built-in driver for wrapped proxy-wasm modules: the
//! `wasi:http/handler` a wrapped plugin exports. It seeds the state
//! component, calls the module's callbacks (plain sync calls), and does all
//! the awaiting the ABI leaves to the host: the next hop, bodies, and
//! `proxy_http_call`s. See `wit/legacy.wit` for how the parts fit.
//!
//! Its settings come from its own `wasi:config/store`, which `pwchain wrap`
//! fills: `name`, `root-id`, `configuration`, `vm-configuration`,
//! `callbacks` (the module's `proxy_on_*` exports, one a line),
//! `max-body-bytes` and `log-level`.
//!
//! Built from this source and embedded in the `pwchain` binary; a test checks
//! that the committed `crates/compose/builtins/legacy-driver.wasm` matches it.

use exports::wasi::http::handler::Guest;
use pwchain::proxy::legacy_callbacks as callback;
use pwchain::proxy::legacy_control::{self as state, LocalResponse, Pairs, Settings};
use pwchain_guest::wasi::http::client;
use pwchain_guest::wasi::http::types::RequestOptions;
use pwchain_guest::{
    ErrorCode, Fields, Method, Request, Response, Scheme, StreamReader, StreamResult, StreamWriter,
    Trailers, TrailersWriter, body_channel, body_done, body_stream, fields, method_name,
    parse_method, parse_scheme, spawn, text_response, trailers, trailers_channel,
};
use std::cell::{Cell, OnceCell};
use std::rc::Rc;
use wasi::config::store;
use wasi::http::handler;

pwchain_guest::bindings!("pwchain:proxy/legacy-driver@0.1.0");

/// How much of a body is read at a time.
const CHUNK: usize = 16 * 1024;

/// Actions a callback returns.
const CONTINUE: u32 = 0;

/// Header map and buffer types, and stream bits, as the ABI numbers them.
const REQUEST_HEADERS: u32 = 0;
const REQUEST_TRAILERS: u32 = 1;
const RESPONSE_HEADERS: u32 = 2;
const RESPONSE_TRAILERS: u32 = 3;
const REQUEST_BODY: u32 = 0;
const RESPONSE_BODY: u32 = 1;

/// What the driver learnt from its store and the module's start.
struct Setup {
    root: u32,
    max_body: usize,
    callbacks: Vec<String>,
}

impl Setup {
    fn has(&self, callback: &str) -> bool {
        self.callbacks.iter().any(|c| c == callback)
    }
}

thread_local! {
    static SETUP: OnceCell<Result<Rc<Setup>, String>> = const { OnceCell::new() };
    static NEXT_CONTEXT: Cell<u32> = const { Cell::new(0) };
}

fn setting(key: &str) -> Option<String> {
    store::get(key).ok().flatten()
}

/// Starts the module once per instance: `main`, the root context,
/// `on_vm_start` and `on_configure`, as Envoy does when it loads a plugin.
fn start() -> Result<Rc<Setup>, String> {
    // The root context's id; its name (`root-id`) is a string, as in Envoy.
    let root = 1;
    let configuration = setting("configuration").unwrap_or_default().into_bytes();
    let vm_configuration = setting("vm-configuration").unwrap_or_default().into_bytes();
    let setup = Setup {
        root,
        max_body: setting("max-body-bytes")
            .and_then(|m| m.parse().ok())
            .unwrap_or(1 << 20),
        callbacks: setting("callbacks")
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect(),
    };
    let (vm_size, size) = (vm_configuration.len() as u32, configuration.len() as u32);
    state::setup(&Settings {
        name: setting("name").unwrap_or_else(|| "proxy-wasm".into()),
        root,
        root_id: setting("root-id").unwrap_or_default(),
        vm_configuration,
        configuration,
        log_level: setting("log-level")
            .and_then(|l| l.parse().ok())
            .unwrap_or(2),
        clusters: setting("clusters")
            .unwrap_or_default()
            .lines()
            .filter_map(|line| line.split_once('='))
            .map(|(name, url)| (name.to_string(), url.to_string()))
            .collect(),
    });
    NEXT_CONTEXT.set(root);
    state::enter(root);
    callback::start();
    callback::on_context_create(root, 0);
    if callback::on_vm_start(root, vm_size) == 0 {
        return Err("its on_vm_start returned false".into());
    }
    if callback::on_configure(root, size) == 0 {
        return Err("its on_configure rejected the configuration".into());
    }
    Ok(Rc::new(setup))
}

struct Driver;

impl Guest for Driver {
    async fn handle(request: Request) -> Result<Response, ErrorCode> {
        let setup = SETUP.with(|s| s.get_or_init(start).clone());
        let setup = match setup {
            Ok(setup) => setup,
            Err(why) => {
                return text_response(
                    500,
                    &[],
                    format!("the proxy-wasm plugin did not start: {why}\n"),
                );
            }
        };
        if setup.has("proxy_on_tick") && state::tick_due() {
            state::enter(setup.root);
            callback::on_tick(setup.root);
        }
        let context = NEXT_CONTEXT.get() + 1;
        NEXT_CONTEXT.set(context);
        Stream {
            setup,
            context: Rc::new(Context(context)),
        }
        .run(request)
        .await
    }
}

/// One request's context, shared with the tasks that stream its bodies.
#[derive(Clone)]
struct Stream {
    setup: Rc<Setup>,
    context: Rc<Context>,
}

/// A stream context's id. The context ends (`on_log`, `on_done`,
/// `on_delete`) when the last task that uses it lets go of it.
struct Context(u32);

impl Drop for Context {
    fn drop(&mut self) {
        state::enter(self.0);
        callback::on_stream_end(self.0);
        state::end(self.0);
    }
}

/// What a phase of the filter chain ended with: go on, or answer with a
/// reply of the filter's (or the driver's: a body over the limit).
enum Next<T> {
    Go(T),
    Answer(LocalResponse),
}

macro_rules! go {
    ($next:expr) => {
        match $next {
            Next::Go(value) => value,
            Next::Answer(local) => return Ok(local_response(local)),
        }
    };
}

impl Stream {
    fn id(&self) -> u32 {
        self.context.0
    }

    /// The request through the filter, then the next hop's answer, or the
    /// filter's local reply, back through it: as in Envoy, a local reply
    /// passes the response callbacks of the filter that sent it.
    async fn run(&self, request: Request) -> Result<Response, ErrorCode> {
        let head = matches!(request.get_method(), Method::Head);
        match self.request(request).await? {
            Next::Go(outgoing) => {
                let response = handler::handle(outgoing).await?;
                let (status, headers) = response_head(&response);
                let (body, body_trailers) = Response::consume_body(response, body_done());
                self.response(status, headers, body, Some(body_trailers), head)
                    .await
            }
            // Its parts, not a `Response`: a future made here cannot be
            // read here (the component model forbids it for non-numeric
            // payloads), and a local reply has no trailers anyway.
            Next::Answer(local) => {
                let (status, headers, body) = local_reply(local);
                let mut pairs = vec![(b":status".to_vec(), status.to_string().into_bytes())];
                pairs.extend(headers);
                self.response(status, pairs, body_stream(body, None), None, head)
                    .await
            }
        }
    }

    /// The request phase: the headers, body and trailers callbacks; the
    /// request to pass on, or the filter's local reply.
    async fn request(&self, request: Request) -> Result<Next<Request>, ErrorCode> {
        let method = method_name(&request.get_method()).to_string();
        let scheme = match request.get_scheme() {
            Some(Scheme::Https) => "https".to_string(),
            Some(Scheme::Other(other)) => other,
            _ => "http".to_string(),
        };
        let incoming = request.get_headers().copy_all();
        // Hosts that leave an origin-form request without an authority
        // still have its `host` header, which is what Envoy's `:authority`
        // holds.
        let authority = request
            .get_authority()
            .or_else(|| pwchain_guest::header(&incoming, "host").map(str::to_string))
            .unwrap_or_default();
        let path = request.get_path_with_query().unwrap_or_else(|| "/".into());
        let options = request.get_options().map(|o| o.clone());
        let mut headers = vec![
            (b":method".to_vec(), method.clone().into_bytes()),
            (b":scheme".to_vec(), scheme.clone().into_bytes()),
            (b":authority".to_vec(), authority.clone().into_bytes()),
            (b":path".to_vec(), path.clone().into_bytes()),
        ];
        headers.extend(bytes_pairs(incoming));
        let length = declared_length(&headers);
        let end_of_stream =
            length == Some(0) || (matches!(method.as_str(), "GET" | "HEAD") && length.is_none());
        // The context exists, with its request, before the plugin hears of
        // it: `on_context_create` may already read headers and properties.
        state::begin(self.id(), &headers);
        callback::on_context_create(self.id(), self.setup.root);

        let count = headers.len() as u32;
        callback::on_request_headers(self.id(), count, end_of_stream as u32);
        if let Next::Answer(local) = self.settle(REQUEST_HEADERS, &mut headers).await {
            return Ok(Next::Answer(local));
        }

        let (body, body_trailers) = Request::consume_body(request, body_done());
        let (body, body_trailers) = match self
            .body(
                body,
                Some(body_trailers),
                Phase::Request,
                &mut headers,
                end_of_stream,
            )
            .await
        {
            Next::Go(body) => body,
            Next::Answer(local) => return Ok(Next::Answer(local)),
        };
        let target = Target {
            method,
            scheme,
            authority,
            path,
        };
        build_request(
            headers,
            target,
            Some(body),
            body_trailers,
            options,
            "the request the plugin passed on",
        )
        .map(Next::Go)
    }

    /// The response phase: the headers, body and trailers callbacks on a
    /// response (`headers` with `:status` first; the answer to a `HEAD`
    /// when `head`).
    async fn response(
        &self,
        status: u16,
        mut headers: Pairs,
        body: StreamReader<u8>,
        body_trailers: Option<Trailers>,
        head: bool,
    ) -> Result<Response, ErrorCode> {
        state::set_map(self.id(), RESPONSE_HEADERS, &headers);
        let count = headers.len() as u32;
        callback::on_response_headers(self.id(), count, 0);
        go!(self.settle(RESPONSE_HEADERS, &mut headers).await);

        // As Envoy, no body callbacks for a response that has no body.
        let declared_empty = head
            || matches!(status, 100..=199 | 204 | 304)
            || headers
                .iter()
                .any(|(k, v)| k.eq_ignore_ascii_case(b"content-length") && v == b"0");
        let (body, body_trailers) = go!(self
            .body(
                body,
                body_trailers,
                Phase::Response,
                &mut headers,
                declared_empty
            )
            .await);
        let status = match headers.iter().position(|(k, _)| k == b":status") {
            Some(i) => String::from_utf8_lossy(&headers.remove(i).1)
                .parse()
                .unwrap_or(status),
            None => status,
        };
        headers.retain(|(k, _)| !k.starts_with(b":"));
        let (outgoing, _) =
            Response::new(fields(&string_pairs(headers))?, Some(body), body_trailers);
        outgoing.set_status_code(status).map_err(|()| {
            ErrorCode::InternalError(Some(format!("the plugin set an invalid :status {status}")))
        })?;
        Ok(outgoing)
    }

    /// Acts on what the last callback left: makes its `proxy_http_call`s
    /// and delivers queue notifications (and what those callbacks cause in
    /// turn), takes the header map `map` into `headers` if the plugin
    /// changed it, and answers with the plugin's local response, if any.
    async fn settle(&self, map: u32, headers: &mut Pairs) -> Next<()> {
        loop {
            let outcome = state::finish(self.id(), map);
            if let Some(changed) = outcome.changed {
                *headers = changed;
            }
            if let Some(local) = outcome.local_response {
                return Next::Answer(local);
            }
            if outcome.calls.is_empty() && outcome.ready_queues.is_empty() {
                return Next::Go(());
            }
            for queue in outcome.ready_queues {
                state::enter(self.setup.root);
                callback::on_queue_ready(self.setup.root, queue);
            }
            for call in outcome.calls {
                let (status, headers, body, trailers) =
                    match side_call(&call, self.setup.max_body).await {
                        Ok(answer) => answer,
                        Err(e) => {
                            let line = format!(
                                "proxy_http_call to {} failed: {e:?}\n",
                                String::from_utf8_lossy(&call.upstream)
                            );
                            eprint!("{line}");
                            (0, Vec::new(), Vec::new(), Vec::new())
                        }
                    };
                let counts = (
                    headers.len() as u32,
                    body.len() as u32,
                    trailers.len() as u32,
                );
                state::set_call_response(status, &headers, &body, &trailers);
                state::enter(call.context);
                callback::on_http_call_response(
                    self.setup.root,
                    call.token,
                    counts.0,
                    counts.1,
                    counts.2,
                );
                state::set_call_response(0, &[], &[], &[]);
            }
        }
    }

    /// Passes a body through untouched if the module has no callback for
    /// it, or the headers said there is none (`declared_empty`). Else the body is held while the body callback pauses on it (up
    /// to `max-body-bytes`, then 413 for a request and 500 for a response,
    /// as Envoy answers), so the headers wait too; once the callback lets
    /// data through, the rest streams, each chunk through the callback, in
    /// a task of its own. `headers` are the phase's, kept current.
    async fn body(
        &self,
        mut body: StreamReader<u8>,
        body_trailers: Option<Trailers>,
        phase: Phase,
        headers: &mut Pairs,
        declared_empty: bool,
    ) -> Next<(StreamReader<u8>, Trailers)> {
        let (has_body, has_trailers) = (
            self.setup.has(phase.body_callback()),
            self.setup.has(phase.trailers_callback()),
        );
        if declared_empty || (!has_body && !has_trailers) {
            return Next::Go((body, body_trailers.unwrap_or_else(|| trailers(None))));
        }
        let mut held = Vec::new();
        let mut end = false;
        // As Envoy, the callback hears `end_of_stream` with the last data of
        // a body whose length was declared, not in a call of its own after.
        let declared = declared_length(headers);
        let mut first = true;
        while has_body && !end {
            let (status, chunk) = body.read(Vec::with_capacity(CHUNK)).await;
            end = !matches!(status, StreamResult::Complete(_));
            held.extend(chunk);
            if !end && declared == Some(held.len()) {
                let (status, rest) = body.read(Vec::with_capacity(1)).await;
                end = !matches!(status, StreamResult::Complete(_));
                held.extend(rest);
            }
            // A body that ends before any data is none: Envoy then hears the
            // end with the headers, calls no body callback and sends
            // `content-length: 0`. (The host does not always keep the one
            // that said so.)
            if std::mem::take(&mut first) && end && held.is_empty() {
                if declared.is_none() {
                    headers.push((b"content-length".to_vec(), b"0".to_vec()));
                }
                break;
            }
            if held.len() > self.setup.max_body {
                let (code, reason) = phase.too_large();
                // One write, so that the line reaches the log whole.
                let line = format!(
                    "{code} {reason}: the {} body passed the plugin's buffer limit ({} bytes)\n",
                    phase.name(),
                    self.setup.max_body
                );
                eprint!("{line}");
                // Envoy's reply: the reason phrase alone.
                return Next::Answer(LocalResponse {
                    status: code.into(),
                    headers: Vec::new(),
                    body: reason.as_bytes().to_vec(),
                });
            }
            let passes = self.feed(phase, &mut held, end);
            if let Next::Answer(local) = self.settle(phase.headers(), headers).await {
                return Next::Answer(local);
            }
            if passes {
                break;
            }
        }
        // A body held whole goes with its length as the callback left it. One
        // that streams keeps the `content-length` the headers have, as
        // Envoy forwards it: a backend that reads only that length would
        // otherwise see no body. (A filter that resizes a streamed body
        // removes the header itself, in Envoy too.)
        let length = headers
            .iter()
            .position(|(k, _)| k.eq_ignore_ascii_case(b"content-length"));
        if let Some(at) = length
            && end
        {
            headers[at].1 = held.len().to_string().into_bytes();
        }
        if end {
            // Held whole: the trailers too are seen before anything goes on.
            return match self.trailers(phase, body_trailers).await {
                Next::Go(Ok(fields)) => Next::Go((body_stream(held, None), trailers(fields))),
                Next::Go(Err(e)) => {
                    let (code, reason) = phase.failed();
                    Next::Answer(plain(
                        code,
                        format!("{code} {reason}: the body failed: {e:?}\n"),
                    ))
                }
                Next::Answer(local) => Next::Answer(local),
            };
        }
        let (to, streamed) = body_channel();
        let (trailers_to, trailers) = trailers_channel();
        let this = self.clone();
        spawn(async move {
            this.pump(phase, (held, end), body, body_trailers, to, trailers_to)
                .await;
        });
        Next::Go((streamed, trailers))
    }

    /// Streams the rest of a body: `held` first, then each chunk through
    /// the body callback (held again while it pauses), then the trailers
    /// through their callback. The headers have gone, so a local response
    /// or a body over the limit now can only cut the stream, with an error.
    async fn pump(
        self,
        phase: Phase,
        (mut held, mut end): (Vec<u8>, bool),
        mut body: StreamReader<u8>,
        body_trailers: Option<Trailers>,
        mut to: StreamWriter<u8>,
        trailers_to: TrailersWriter,
    ) {
        let has_body = self.setup.has(phase.body_callback());
        let cut =
            |why: &str| ErrorCode::InternalError(Some(format!("the proxy-wasm plugin {why}")));
        let mut too_late = Vec::new();
        let mut passes = true;
        loop {
            if passes
                && !held.is_empty()
                && !to.write_all(std::mem::take(&mut held)).await.is_empty()
            {
                return;
            }
            if end {
                break;
            }
            let (status, chunk) = body.read(Vec::with_capacity(CHUNK)).await;
            end = !matches!(status, StreamResult::Complete(_));
            held.extend(chunk);
            if !has_body {
                passes = true;
                continue;
            }
            if held.len() > self.setup.max_body {
                let _ = trailers_to
                    .write(Err(cut("held a body over its buffer limit")))
                    .await;
                return;
            }
            passes = self.feed(phase, &mut held, end);
            if let Next::Answer(_) = self.settle(phase.headers(), &mut too_late).await {
                let _ = trailers_to
                    .write(Err(cut("answered after the headers had gone")))
                    .await;
                return;
            }
        }
        drop(to);
        let cut_short = match self.trailers(phase, body_trailers).await {
            Next::Go(Ok(None)) => return,
            Next::Go(Ok(fields)) => Ok(fields),
            Next::Go(Err(e)) => Err(e),
            Next::Answer(_) => Err(cut("answered after the headers had gone")),
        };
        let _ = trailers_to.write(cut_short).await;
    }

    /// Awaits a body's trailers (if it can have any) and runs them through
    /// their callback, if the module has one.
    async fn trailers(
        &self,
        phase: Phase,
        body_trailers: Option<Trailers>,
    ) -> Next<Result<Option<Fields>, ErrorCode>> {
        let Some(body_trailers) = body_trailers else {
            return Next::Go(Ok(None));
        };
        let found = match body_trailers.await {
            Ok(Some(found)) if self.setup.has(phase.trailers_callback()) => found,
            other => return Next::Go(other),
        };
        let mut pairs = bytes_pairs(found.copy_all());
        state::set_map(self.id(), phase.trailers(), &pairs);
        phase.on_trailers(self.id(), pairs.len() as u32);
        if let Next::Answer(local) = self.settle(phase.trailers(), &mut pairs).await {
            return Next::Answer(local);
        }
        Next::Go(Ok(Fields::from_list(&string_pairs(pairs)).ok()))
    }

    /// Runs what is held through the body callback, which may change it;
    /// whether it may pass (Continue, or the end of the body).
    fn feed(&self, phase: Phase, held: &mut Vec<u8>, end: bool) -> bool {
        state::set_buffer(self.id(), phase.buffer(), held);
        let action = phase.on_body(self.id(), held.len() as u32, end);
        *held = state::get_buffer(self.id(), phase.buffer());
        action == CONTINUE || end
    }
}

/// The request or the response side of a stream, and the ABI's numbers
/// and callbacks for it.
#[derive(Clone, Copy)]
enum Phase {
    Request,
    Response,
}

impl Phase {
    fn headers(self) -> u32 {
        match self {
            Phase::Request => REQUEST_HEADERS,
            Phase::Response => RESPONSE_HEADERS,
        }
    }

    fn trailers(self) -> u32 {
        match self {
            Phase::Request => REQUEST_TRAILERS,
            Phase::Response => RESPONSE_TRAILERS,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Phase::Request => "request",
            Phase::Response => "response",
        }
    }

    fn buffer(self) -> u32 {
        match self {
            Phase::Request => REQUEST_BODY,
            Phase::Response => RESPONSE_BODY,
        }
    }

    fn body_callback(self) -> &'static str {
        match self {
            Phase::Request => "proxy_on_request_body",
            Phase::Response => "proxy_on_response_body",
        }
    }

    fn trailers_callback(self) -> &'static str {
        match self {
            Phase::Request => "proxy_on_request_trailers",
            Phase::Response => "proxy_on_response_trailers",
        }
    }

    fn too_large(self) -> (u16, &'static str) {
        match self {
            Phase::Request => (413, "Payload Too Large"),
            Phase::Response => (500, "Internal Server Error"),
        }
    }

    /// The answer when the body itself fails (the client's, or the next
    /// hop's).
    fn failed(self) -> (u16, &'static str) {
        match self {
            Phase::Request => (400, "Bad Request"),
            Phase::Response => (502, "Bad Gateway"),
        }
    }

    fn on_body(self, context: u32, size: u32, end: bool) -> u32 {
        match self {
            Phase::Request => callback::on_request_body(context, size, end as u32),
            Phase::Response => callback::on_response_body(context, size, end as u32),
        }
    }

    fn on_trailers(self, context: u32, count: u32) -> u32 {
        match self {
            Phase::Request => callback::on_request_trailers(context, count),
            Phase::Response => callback::on_response_trailers(context, count),
        }
    }
}

/// Makes one `proxy_http_call` through the host's `wasi:http/client`:
/// the upstream is the authority to connect to, or the `scheme://authority`
/// of the cluster the filter named (the state component mapped it), whose
/// scheme then replaces the call's.
async fn side_call(
    call: &state::Call,
    max_body: usize,
) -> Result<(u32, Pairs, Vec<u8>, Pairs), ErrorCode> {
    let mut headers = call.headers.clone();
    headers.retain(|(k, _)| k != b":authority");
    // A call says its body's length (none for an empty GET or HEAD), never
    // another one: filters pass a request's own headers on with a body of
    // their own, or none (the Go SDK's `http_auth_random`). Envoy then sends
    // a length it never fulfils and the peer waits out the call's timeout;
    // wasi:http refuses such a request outright; and a body of unknown
    // length would go chunked.
    headers.retain(|(k, _)| !k.eq_ignore_ascii_case(b"content-length"));
    let bodiless = headers
        .iter()
        .any(|(k, v)| k == b":method" && matches!(v.as_slice(), b"GET" | b"HEAD"));
    if !(call.body.is_empty() && bodiless) {
        headers.push((
            b"content-length".to_vec(),
            call.body.len().to_string().into_bytes(),
        ));
    }
    let upstream = String::from_utf8_lossy(&call.upstream).into_owned();
    let (scheme, authority) = match upstream.split_once("://") {
        Some((scheme, authority)) => {
            headers.retain(|(k, _)| k != b":scheme");
            (scheme.to_string(), authority.to_string())
        }
        None => ("http".to_string(), upstream),
    };
    let target = Target {
        method: "GET".into(),
        scheme,
        authority,
        path: "/".into(),
    };
    let body = (!call.body.is_empty()).then(|| body_stream(call.body.clone(), None));
    // The call's timeout bounds the connection and each wait for data; a
    // host that cannot enforce timeouts makes the call without them.
    let options = RequestOptions::new();
    let timeout = Some(u64::from(call.timeout_ms) * 1_000_000).filter(|t| *t > 0);
    let _ = options.set_connect_timeout(timeout);
    let _ = options.set_first_byte_timeout(timeout);
    let _ = options.set_between_bytes_timeout(timeout);
    let request = build_request(
        headers,
        target,
        body,
        trailers(None),
        Some(options),
        "a proxy_http_call",
    )?;
    let response = client::send(request).await?;
    let (status, headers) = response_head(&response);
    let (mut body, body_trailers) = Response::consume_body(response, body_done());
    let mut bytes = Vec::new();
    loop {
        let (status, chunk) = body.read(Vec::with_capacity(CHUNK)).await;
        bytes.extend(chunk);
        if bytes.len() > max_body {
            return Err(ErrorCode::HttpResponseBodySize(Some(bytes.len() as u64)));
        }
        if !matches!(status, StreamResult::Complete(_)) {
            break;
        }
    }
    let trailers = match body_trailers.await {
        Ok(Some(fields)) => bytes_pairs(fields.copy_all()),
        _ => Vec::new(),
    };
    Ok((status.into(), headers, bytes, trailers))
}

/// Where a request goes: what its pseudo-headers say.
struct Target {
    method: String,
    scheme: String,
    authority: String,
    path: String,
}

/// A request with `headers`, whose pseudo-headers (taken out of them)
/// override `target`'s parts; `what` names the request in errors.
fn build_request(
    mut headers: Pairs,
    mut target: Target,
    body: Option<StreamReader<u8>>,
    trailers: Trailers,
    options: Option<RequestOptions>,
    what: &str,
) -> Result<Request, ErrorCode> {
    for (name, part) in [
        (":method", &mut target.method),
        (":scheme", &mut target.scheme),
        (":authority", &mut target.authority),
        (":path", &mut target.path),
    ] {
        if let Some(at) = headers.iter().position(|(k, _)| k == name.as_bytes()) {
            *part = String::from_utf8_lossy(&headers.remove(at).1).into_owned();
        }
    }
    let (request, _) = Request::new(fields(&string_pairs(headers))?, body, trailers, options);
    let invalid =
        |part: &str| ErrorCode::InternalError(Some(format!("{what} has an invalid {part}")));
    request
        .set_method(&parse_method(&target.method))
        .map_err(|()| invalid(":method"))?;
    request
        .set_scheme(Some(&parse_scheme(&target.scheme)))
        .map_err(|()| invalid(":scheme"))?;
    let authority = Some(target.authority.as_str()).filter(|a| !a.is_empty());
    request
        .set_authority(authority)
        .map_err(|()| invalid(":authority"))?;
    request
        .set_path_with_query(Some(&target.path))
        .map_err(|()| invalid(":path"))?;
    Ok(request)
}

/// A response's status, and its headers with `:status` first, as the ABI
/// has them.
fn response_head(response: &Response) -> (u16, Pairs) {
    let status = response.get_status_code();
    let mut headers = vec![(b":status".to_vec(), status.to_string().into_bytes())];
    headers.extend(bytes_pairs(response.get_headers().copy_all()));
    (status, headers)
}

/// A local reply's status, headers and body as Envoy sends them: with
/// its length, and saying what a body is when the filter did not.
fn local_reply(local: LocalResponse) -> (u16, Pairs, Vec<u8>) {
    let status = u16::try_from(local.status).unwrap_or(500);
    let mut headers = local.headers;
    let has =
        |headers: &Pairs, name: &[u8]| headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(name));
    if !local.body.is_empty() && !has(&headers, b"content-type") {
        headers.push((b"content-type".to_vec(), b"text/plain".to_vec()));
    }
    if !has(&headers, b"content-length") {
        headers.push((
            b"content-length".to_vec(),
            local.body.len().to_string().into_bytes(),
        ));
    }
    (status, headers, local.body)
}

fn local_response(local: LocalResponse) -> Response {
    let (status, headers, body) = local_reply(local);
    let built = fields(&string_pairs(headers))
        .map(|fields| Response::new(fields, Some(body_stream(body, None)), trailers(None)).0);
    match built {
        Ok(response) if response.set_status_code(status).is_ok() => response,
        _ => {
            let text = format!(
                "500 Internal Server Error: the plugin sent an invalid local response ({status})\n"
            );
            let fallback = || Response::new(Fields::new(), None, trailers(None)).0;
            text_response(500, &[], text).unwrap_or_else(|_| fallback())
        }
    }
}

/// The `content-length` a header map declares.
fn declared_length(headers: &Pairs) -> Option<usize> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(b"content-length"))
        .and_then(|(_, v)| std::str::from_utf8(v).ok()?.trim().parse().ok())
}

/// A reply of the driver's own, in text.
fn plain(status: u16, text: String) -> LocalResponse {
    LocalResponse {
        status: status.into(),
        headers: vec![(
            b"content-type".to_vec(),
            b"text/plain; charset=utf-8".to_vec(),
        )],
        body: text.into_bytes(),
    }
}

fn bytes_pairs(pairs: Vec<(String, Vec<u8>)>) -> Pairs {
    pairs
        .into_iter()
        .map(|(k, v)| (k.into_bytes(), v))
        .collect()
}

fn string_pairs(pairs: Pairs) -> Vec<(String, Vec<u8>)> {
    pairs
        .into_iter()
        .map(|(k, v)| (String::from_utf8_lossy(&k).into_owned(), v))
        .collect()
}

export!(Driver);
