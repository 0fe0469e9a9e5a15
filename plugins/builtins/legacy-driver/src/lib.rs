//! pwchain's built-in driver for wrapped proxy-wasm modules: the
//! `wasi:http/handler` a run of wrapped plugins exports (one plugin, or up
//! to eight consecutive ones of a chain). It seeds each plugin's state
//! component, calls the modules' callbacks (plain sync calls) in filter
//! order, and does all the awaiting the ABI leaves to the host: the next
//! hop, bodies, and `proxy_http_call`s. A run takes the request and the
//! response apart once and rebuilds them once, as Envoy's filters share one
//! header map. See `wit/legacy.wit` for how the parts fit.
//!
//! Its settings come from its own `wasi:config/store`, which `pwchain wrap`
//! and compose fill: `plugins`, and for each plugin N `N.name`,
//! `N.root-id`, `N.configuration`, `N.vm-configuration`, `N.clusters`,
//! `N.callbacks` (the module's `proxy_on_*` exports, one a line),
//! `N.max-body-bytes` and `N.log-level`.
//!
//! Built from this source and embedded in the `pwchain` binary; a test checks
//! that the committed `crates/compose/builtins/legacy-driver.wasm` matches it.

use exports::wasi::http::handler::Guest;
use pwchain::proxy::legacy_control::{Call, LocalResponse, Outcome, Pairs, Settings};
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

/// The root context's id in every plugin's state (its name, `root-id`, is
/// a string, as in Envoy).
const ROOT: u32 = 1;

/// A header: name and value, as the ABI has them.
type Pair = (Vec<u8>, Vec<u8>);

/// One slot of the run: a module's callbacks and its state's control, as
/// the `pN-callbacks` and `pN-control` imports give them.
trait Slot {
    fn start(&self);
    fn on_context_create(&self, context: u32, parent: u32);
    fn on_vm_start(&self, root: u32, size: u32) -> u32;
    fn on_configure(&self, root: u32, size: u32) -> u32;
    fn on_request_headers(&self, context: u32, headers: u32, end: u32) -> u32;
    fn on_request_body(&self, context: u32, size: u32, end: u32) -> u32;
    fn on_request_trailers(&self, context: u32, trailers: u32) -> u32;
    fn on_response_headers(&self, context: u32, headers: u32, end: u32) -> u32;
    fn on_response_body(&self, context: u32, size: u32, end: u32) -> u32;
    fn on_response_trailers(&self, context: u32, trailers: u32) -> u32;
    fn on_http_call_response(&self, root: u32, token: u32, h: u32, b: u32, t: u32);
    fn on_queue_ready(&self, root: u32, queue: u32);
    fn on_tick(&self, root: u32);
    fn on_stream_end(&self, context: u32);
    fn setup(&self, settings: &Settings);
    fn begin(&self, context: u32, headers: &[Pair]);
    fn end(&self, context: u32);
    fn enter(&self, context: u32);
    fn set_map(&self, context: u32, map: u32, pairs: &[Pair]);
    fn set_buffer(&self, context: u32, kind: u32, data: &[u8]);
    fn get_buffer(&self, context: u32, kind: u32) -> Vec<u8>;
    fn finish(&self, context: u32, map: u32) -> Outcome;
    fn set_call_response(&self, status: u32, headers: &[Pair], body: &[u8], trailers: &[Pair]);
    fn tick_due(&self) -> bool;
}

/// Implements [`Slot`] for each slot's imports and lists them in order.
macro_rules! slots {
    ($($slot:ident: $callbacks:ident, $control:ident;)*) => {
        $(
            struct $slot;
            impl Slot for $slot {
                fn start(&self) { $callbacks::start() }
                fn on_context_create(&self, c: u32, p: u32) { $callbacks::on_context_create(c, p) }
                fn on_vm_start(&self, r: u32, s: u32) -> u32 { $callbacks::on_vm_start(r, s) }
                fn on_configure(&self, r: u32, s: u32) -> u32 { $callbacks::on_configure(r, s) }
                fn on_request_headers(&self, c: u32, h: u32, e: u32) -> u32 { $callbacks::on_request_headers(c, h, e) }
                fn on_request_body(&self, c: u32, s: u32, e: u32) -> u32 { $callbacks::on_request_body(c, s, e) }
                fn on_request_trailers(&self, c: u32, t: u32) -> u32 { $callbacks::on_request_trailers(c, t) }
                fn on_response_headers(&self, c: u32, h: u32, e: u32) -> u32 { $callbacks::on_response_headers(c, h, e) }
                fn on_response_body(&self, c: u32, s: u32, e: u32) -> u32 { $callbacks::on_response_body(c, s, e) }
                fn on_response_trailers(&self, c: u32, t: u32) -> u32 { $callbacks::on_response_trailers(c, t) }
                fn on_http_call_response(&self, r: u32, k: u32, h: u32, b: u32, t: u32) { $callbacks::on_http_call_response(r, k, h, b, t) }
                fn on_queue_ready(&self, r: u32, q: u32) { $callbacks::on_queue_ready(r, q) }
                fn on_tick(&self, r: u32) { $callbacks::on_tick(r) }
                fn on_stream_end(&self, c: u32) { $callbacks::on_stream_end(c) }
                fn setup(&self, s: &Settings) { $control::setup(s) }
                fn begin(&self, c: u32, h: &[Pair]) { $control::begin(c, h) }
                fn end(&self, c: u32) { $control::end(c) }
                fn enter(&self, c: u32) { $control::enter(c) }
                fn set_map(&self, c: u32, m: u32, p: &[Pair]) { $control::set_map(c, m, p) }
                fn set_buffer(&self, c: u32, k: u32, d: &[u8]) { $control::set_buffer(c, k, d) }
                fn get_buffer(&self, c: u32, k: u32) -> Vec<u8> { $control::get_buffer(c, k) }
                fn finish(&self, c: u32, m: u32) -> Outcome { $control::finish(c, m) }
                fn set_call_response(&self, s: u32, h: &[Pair], b: &[u8], t: &[Pair]) { $control::set_call_response(s, h, b, t) }
                fn tick_due(&self) -> bool { $control::tick_due() }
            }
        )*
        /// The run's slots, in filter order.
        const SLOTS: &[&dyn Slot] = &[$(&$slot),*];
    };
}

slots! {
    P0: p0_callbacks, p0_control;
    P1: p1_callbacks, p1_control;
    P2: p2_callbacks, p2_control;
    P3: p3_callbacks, p3_control;
    P4: p4_callbacks, p4_control;
    P5: p5_callbacks, p5_control;
    P6: p6_callbacks, p6_control;
    P7: p7_callbacks, p7_control;
}

/// One plugin of the run, as its store and its module's start left it.
struct Plugin {
    slot: &'static dyn Slot,
    name: String,
    max_body: usize,
    callbacks: Vec<String>,
}

impl Plugin {
    fn has(&self, callback: &str) -> bool {
        self.callbacks.iter().any(|c| c == callback)
    }
}

/// The run's plugins, in filter order.
type Run = Rc<Vec<Plugin>>;

thread_local! {
    static RUN: OnceCell<Result<Run, String>> = const { OnceCell::new() };
    static NEXT_CONTEXT: Cell<u32> = const { Cell::new(ROOT) };
}

fn setting(key: &str) -> Option<String> {
    store::get(key).ok().flatten()
}

/// Starts the run's modules once per instance, in filter order: for each,
/// `main`, the root context, `on_vm_start` and `on_configure`, as Envoy
/// does when it loads a plugin.
fn start() -> Result<Run, String> {
    let count: usize = setting("plugins").and_then(|n| n.parse().ok()).unwrap_or(1);
    let slots = SLOTS
        .get(..count)
        .ok_or("the run has more plugins than slots")?;
    let mut run = Vec::with_capacity(count);
    for (i, &slot) in slots.iter().enumerate() {
        let get = |key: &str| setting(&format!("{i}.{key}"));
        let name = get("name").unwrap_or_else(|| "proxy-wasm".into());
        let configuration = get("configuration").unwrap_or_default().into_bytes();
        let vm_configuration = get("vm-configuration").unwrap_or_default().into_bytes();
        let (vm_size, size) = (vm_configuration.len() as u32, configuration.len() as u32);
        slot.setup(&Settings {
            name: name.clone(),
            root: ROOT,
            root_id: get("root-id").unwrap_or_default(),
            vm_configuration,
            configuration,
            log_level: get("log-level").and_then(|l| l.parse().ok()).unwrap_or(2),
            clusters: get("clusters")
                .unwrap_or_default()
                .lines()
                .filter_map(|line| line.split_once('='))
                .map(|(name, url)| (name.to_string(), url.to_string()))
                .collect(),
        });
        slot.enter(ROOT);
        slot.start();
        slot.on_context_create(ROOT, 0);
        let refused = |why: &str| {
            if count == 1 {
                why.to_string()
            } else {
                format!("{name}: {why}")
            }
        };
        if slot.on_vm_start(ROOT, vm_size) == 0 {
            return Err(refused("its on_vm_start returned false"));
        }
        if slot.on_configure(ROOT, size) == 0 {
            return Err(refused("its on_configure rejected the configuration"));
        }
        run.push(Plugin {
            slot,
            name,
            max_body: get("max-body-bytes")
                .and_then(|m| m.parse().ok())
                .unwrap_or(1 << 20),
            callbacks: get("callbacks")
                .unwrap_or_default()
                .lines()
                .map(str::to_string)
                .collect(),
        });
    }
    Ok(Rc::new(run))
}

struct Driver;

impl Guest for Driver {
    async fn handle(request: Request) -> Result<Response, ErrorCode> {
        let run = match RUN.with(|r| r.get_or_init(start).clone()) {
            Ok(run) => run,
            Err(why) => {
                return text_response(
                    500,
                    &[],
                    format!("the proxy-wasm plugin did not start: {why}\n"),
                );
            }
        };
        for plugin in run.iter() {
            if plugin.has("proxy_on_tick") && plugin.slot.tick_due() {
                plugin.slot.enter(ROOT);
                plugin.slot.on_tick(ROOT);
            }
        }
        let context = NEXT_CONTEXT.get() + 1;
        NEXT_CONTEXT.set(context);
        Stream {
            context: Rc::new(Context {
                id: context,
                run,
                began: Cell::new(0),
            }),
        }
        .run(request)
        .await
    }
}

/// One request's context, shared with the tasks that stream its bodies.
#[derive(Clone)]
struct Stream {
    context: Rc<Context>,
}

/// A stream context: its id in every plugin's state, and how many of the
/// run's plugins it reached. It ends (`on_log`, `on_done`, `on_delete`, in
/// each of those plugins) when the last task that uses it lets go of it.
struct Context {
    id: u32,
    run: Run,
    began: Cell<usize>,
}

impl Drop for Context {
    fn drop(&mut self) {
        for plugin in &self.run[..self.began.get()] {
            plugin.slot.enter(self.id);
            plugin.slot.on_stream_end(self.id);
            plugin.slot.end(self.id);
        }
    }
}

/// What a phase of the run ended with: go on, or answer with a plugin's
/// reply (or the driver's on its behalf: a body over its limit).
enum Next<T> {
    Go(T),
    Answer(LocalResponse),
}

impl Stream {
    fn id(&self) -> u32 {
        self.context.id
    }

    fn plugin(&self, at: usize) -> &Plugin {
        &self.context.run[at]
    }

    /// The request through the run, then the next hop's answer back through
    /// it in reverse; or a plugin's local reply, which passes the response
    /// callbacks of every plugin that heard the request's headers, the
    /// sender's included, as in Envoy (a reply from a body callback reaches
    /// the later plugins too).
    async fn run(&self, request: Request) -> Result<Response, ErrorCode> {
        let head = matches!(request.get_method(), Method::Head);
        let all = self.context.run.len();
        match self.request(request).await? {
            Next::Go(outgoing) => {
                let response = handler::handle(outgoing).await?;
                let (status, headers) = response_head(&response);
                let (body, body_trailers) = Response::consume_body(response, body_done());
                self.response(all, status, headers, body, Some(body_trailers), head)
                    .await
            }
            // Its parts, not a `Response`: a future made here cannot be
            // read here (the component model forbids it for non-numeric
            // payloads), and a local reply has no trailers anyway.
            Next::Answer(local) => {
                let (status, headers, body) = local_reply(local);
                let mut pairs = vec![(b":status".to_vec(), status.to_string().into_bytes())];
                pairs.extend(headers);
                let reached = self.context.began.get();
                self.response(reached, status, pairs, body_stream(body, None), None, head)
                    .await
            }
        }
    }

    /// The request phase: each plugin's headers callback in turn, then the
    /// body and trailers through them; the request to pass on, or a
    /// plugin's local reply.
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
        let mut map = Map::new(headers, REQUEST_HEADERS);
        let order: Vec<usize> = (0..self.context.run.len()).collect();
        for &at in &order {
            let slot = self.plugin(at).slot;
            // The context exists, with its request, before the plugin hears
            // of it: `on_context_create` may already read headers and
            // properties.
            slot.begin(self.id(), &map.pairs);
            map.seen(at);
            self.context.began.set(at + 1);
            slot.on_context_create(self.id(), ROOT);
            slot.on_request_headers(self.id(), map.pairs.len() as u32, end_of_stream as u32);
            if let Next::Answer(local) = self.settle(at, &mut map).await {
                return Ok(Next::Answer(local));
            }
        }

        let (body, body_trailers) = Request::consume_body(request, body_done());
        let (body, body_trailers) = match self
            .body(
                body,
                Some(body_trailers),
                Phase::Request,
                &order,
                &mut map,
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
            map.pairs,
            target,
            Some(body),
            body_trailers,
            options,
            "the request the plugin passed on",
        )
        .map(Next::Go)
    }

    /// The response phase, through the first `reached` plugins from the
    /// last of them back: the headers, body and trailers callbacks on a
    /// response (`headers` with `:status` first; the answer to a `HEAD`
    /// when `head`).
    async fn response(
        &self,
        reached: usize,
        status: u16,
        headers: Pairs,
        body: StreamReader<u8>,
        body_trailers: Option<Trailers>,
        head: bool,
    ) -> Result<Response, ErrorCode> {
        let order: Vec<usize> = (0..reached).rev().collect();
        let mut map = Map::new(headers, RESPONSE_HEADERS);
        for &at in &order {
            let slot = self.plugin(at).slot;
            slot.set_map(self.id(), RESPONSE_HEADERS, &map.pairs);
            map.seen(at);
            slot.on_response_headers(self.id(), map.pairs.len() as u32, 0);
            if let Next::Answer(local) = self.settle(at, &mut map).await {
                return Ok(local_response(local));
            }
        }

        // As Envoy, no body callbacks for a response that has no body.
        let declared_empty = head
            || matches!(status, 100..=199 | 204 | 304)
            || map
                .pairs
                .iter()
                .any(|(k, v)| k.eq_ignore_ascii_case(b"content-length") && v == b"0");
        let (body, body_trailers) = match self
            .body(
                body,
                body_trailers,
                Phase::Response,
                &order,
                &mut map,
                declared_empty,
            )
            .await
        {
            Next::Go(body) => body,
            Next::Answer(local) => return Ok(local_response(local)),
        };
        let mut headers = map.pairs;
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

    /// Acts on what the last callbacks of plugin `at` left: makes its
    /// `proxy_http_call`s and delivers its queue notifications (and what
    /// those callbacks cause in turn), takes the header map `map` if the
    /// plugin changed it, and answers with the plugin's local response, if
    /// any.
    async fn settle(&self, at: usize, map: &mut Map) -> Next<()> {
        let plugin = self.plugin(at);
        loop {
            let outcome = plugin.slot.finish(self.id(), map.kind);
            if let Some(changed) = outcome.changed {
                map.changed(at, changed);
            }
            if let Some(local) = outcome.local_response {
                return Next::Answer(local);
            }
            if outcome.calls.is_empty() && outcome.ready_queues.is_empty() {
                return Next::Go(());
            }
            for queue in outcome.ready_queues {
                plugin.slot.enter(ROOT);
                plugin.slot.on_queue_ready(ROOT, queue);
            }
            for call in outcome.calls {
                let (status, headers, body, trailers) =
                    match side_call(&call, plugin.max_body).await {
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
                plugin
                    .slot
                    .set_call_response(status, &headers, &body, &trailers);
                plugin.slot.enter(call.context);
                plugin
                    .slot
                    .on_http_call_response(ROOT, call.token, counts.0, counts.1, counts.2);
                plugin.slot.set_call_response(0, &[], &[], &[]);
            }
        }
    }

    /// Passes a body through untouched if no plugin of `order` has a
    /// callback for it, or the headers said there is none
    /// (`declared_empty`). Else the body goes through each plugin's body
    /// callback in `order` ([`Flow`]); the headers wait while one pauses on
    /// it (each holds up to its `max-body-bytes`, then 413 for a request and
    /// 500 for a response, as Envoy answers); once it has passed them all,
    /// the rest streams, each chunk through the callbacks, in a task of its
    /// own. `map` holds the phase's headers, kept current.
    async fn body(
        &self,
        mut body: StreamReader<u8>,
        mut body_trailers: Option<Trailers>,
        phase: Phase,
        order: &[usize],
        map: &mut Map,
        declared_empty: bool,
    ) -> Next<(StreamReader<u8>, Trailers)> {
        let mut flow = Flow::new(self, phase, order);
        let has_trailers = order
            .iter()
            .any(|&at| self.plugin(at).has(phase.trailers_callback()));
        if declared_empty || (flow.stages.is_empty() && !has_trailers) {
            return Next::Go((body, body_trailers.unwrap_or_else(|| trailers(None))));
        }
        let mut out = Vec::new();
        let mut end = false;
        // The trailers, once the body has ended here.
        let mut ended = None;
        // As Envoy, a callback hears `end_of_stream` with the last data of
        // a body whose length was declared, not in a call of its own after.
        let declared = declared_length(&map.pairs);
        let mut read = 0;
        let mut first = true;
        while !flow.stages.is_empty() && !end {
            let (status, mut chunk) = body.read(Vec::with_capacity(CHUNK)).await;
            end = !matches!(status, StreamResult::Complete(_));
            read += chunk.len();
            if !end && declared == Some(read) {
                let (status, rest) = body.read(Vec::with_capacity(1)).await;
                end = !matches!(status, StreamResult::Complete(_));
                read += rest.len();
                chunk.extend(rest);
            }
            if end {
                let found = arrived(body_trailers.take()).await;
                // A body that ends before any data is none: Envoy then hears
                // the end with the headers, calls no body callback and sends
                // `content-length: 0`. (The host does not always keep the one
                // that said so.)
                let none = std::mem::take(&mut first) && chunk.is_empty();
                if none && declared.is_none() {
                    map.pairs.push((b"content-length".to_vec(), b"0".to_vec()));
                }
                if none && !matches!(found, Ok(Some(_))) {
                    ended = Some(found);
                    break;
                }
                match flow.last(chunk, order, map, found).await {
                    Next::Go((through, found)) => {
                        out = through;
                        ended = Some(found);
                        break;
                    }
                    Next::Answer(local) => return Next::Answer(local),
                }
            }
            first = false;
            match flow.push(chunk, false, map).await {
                Next::Go(Some(through)) => {
                    out = through;
                    break;
                }
                Next::Go(None) => {}
                Next::Answer(local) => return Next::Answer(local),
            }
        }
        // A body held whole goes with its length as the callbacks left it.
        // One that streams keeps the `content-length` the headers have, as
        // Envoy forwards it: a backend that reads only that length would
        // otherwise see no body. (A filter that resizes a streamed body
        // removes the header itself, in Envoy too.)
        let length = map
            .pairs
            .iter()
            .position(|(k, _)| k.eq_ignore_ascii_case(b"content-length"));
        if let Some(at) = length
            && end
        {
            map.pairs[at].1 = out.len().to_string().into_bytes();
        }
        if let Some(found) = ended {
            // Held whole: the trailers too were seen before anything goes on.
            return match found {
                Ok(fields) => Next::Go((body_stream(out, None), trailers(fields))),
                Err(e) => {
                    let (code, reason) = phase.failed();
                    Next::Answer(plain(
                        code,
                        format!("{code} {reason}: the body failed: {e:?}\n"),
                    ))
                }
            };
        }
        let (to, streamed) = body_channel();
        let (trailers_to, trailers) = trailers_channel();
        let order = order.to_vec();
        let stages = flow.stages;
        let this = self.clone();
        spawn(async move {
            let mut flow = Flow {
                stream: &this,
                phase,
                stages,
            };
            flow.pump(out, body, &order, body_trailers, to, trailers_to)
                .await;
        });
        Next::Go((streamed, trailers))
    }

    /// Plugin `at`'s trailers callback, if it has one, on `map`.
    async fn trailer_callback(&self, phase: Phase, at: usize, map: &mut Map) -> Next<()> {
        let plugin = self.plugin(at);
        if !plugin.has(phase.trailers_callback()) {
            return Next::Go(());
        }
        plugin.slot.set_map(self.id(), phase.trailers(), &map.pairs);
        phase.on_trailers(plugin.slot, self.id(), map.pairs.len() as u32);
        self.settle(at, map).await
    }
}

/// A body's trailers once its data has ended: none for a body that can
/// have none.
async fn arrived(body_trailers: Option<Trailers>) -> Result<Option<Fields>, ErrorCode> {
    match body_trailers {
        Some(body_trailers) => body_trailers.await,
        None => Ok(None),
    }
}

/// A header map of a stream as the run's plugins act on it in turn: each
/// plugin's state holds its own copy, so a plugin whose copy is older than
/// the map gets the map again before its next callback.
struct Map {
    pairs: Pairs,
    /// The ABI's number of the map.
    kind: u32,
    /// How often the map changed, and how far each plugin has seen.
    version: u32,
    seen: Vec<(usize, u32)>,
}

impl Map {
    fn new(pairs: Pairs, kind: u32) -> Map {
        Map {
            pairs,
            kind,
            version: 0,
            seen: Vec::new(),
        }
    }

    /// Plugin `at`'s state now holds the map as it is.
    fn seen(&mut self, at: usize) {
        let version = self.version;
        match self.seen.iter_mut().find(|(p, _)| *p == at) {
            Some(entry) => entry.1 = version,
            None => self.seen.push((at, version)),
        }
    }

    /// Plugin `at` changed the map to `pairs`.
    fn changed(&mut self, at: usize, pairs: Pairs) {
        self.pairs = pairs;
        self.version += 1;
        self.seen(at);
    }

    /// Gives plugin `at` the map if its copy is older.
    fn refresh(&mut self, stream: &Stream, at: usize) {
        let fresh = self.seen.iter().any(|&(p, v)| p == at && v == self.version);
        if !fresh {
            stream
                .plugin(at)
                .slot
                .set_map(stream.id(), self.kind, &self.pairs);
            self.seen(at);
        }
    }
}

/// A body on its way through the body callbacks of a run's plugins, in
/// filter order. Each plugin holds what it has not let through yet (a
/// callback that pauses holds the body, as in Envoy); data it lets through
/// goes on to the next.
struct Flow<'a> {
    stream: &'a Stream,
    phase: Phase,
    /// The plugins with a body callback, in order, and what each holds.
    stages: Vec<(usize, Vec<u8>)>,
}

impl<'a> Flow<'a> {
    fn new(stream: &'a Stream, phase: Phase, order: &[usize]) -> Flow<'a> {
        let stages = order
            .iter()
            .filter(|&&at| stream.plugin(at).has(phase.body_callback()))
            .map(|&at| (at, Vec::new()))
            .collect();
        Flow {
            stream,
            phase,
            stages,
        }
    }

    /// Runs `data` (with the body's `end`) through the stages: what came
    /// out of the last one (`Some`, possibly empty), or `None` while one
    /// holds it. `map` holds the phase's headers, kept current.
    async fn push(&mut self, mut data: Vec<u8>, end: bool, map: &mut Map) -> Next<Option<Vec<u8>>> {
        for index in 0..self.stages.len() {
            match self.feed(index, data, end, map).await {
                Next::Go(Some(through)) => data = through,
                other => return other,
            }
        }
        Next::Go(Some(data))
    }

    /// Runs `data` through the body callback of stage `index`: what it
    /// lets through (`Some`, possibly empty), or `None` while it holds it.
    async fn feed(
        &mut self,
        index: usize,
        data: Vec<u8>,
        end: bool,
        map: &mut Map,
    ) -> Next<Option<Vec<u8>>> {
        let stream = self.stream;
        let (at, held) = &mut self.stages[index];
        let at = *at;
        // No call for nothing: a stage before held it all.
        if data.is_empty() && !end && held.is_empty() {
            return Next::Go(Some(data));
        }
        held.extend(data);
        let plugin = stream.plugin(at);
        if held.len() > plugin.max_body {
            let (code, reason) = self.phase.too_large();
            // One write, so that the line reaches the log whole.
            let line = format!(
                "{code} {reason}: the {} body passed the plugin's buffer limit ({} bytes, {})\n",
                self.phase.name(),
                plugin.max_body,
                plugin.name
            );
            eprint!("{line}");
            // Envoy's reply: the reason phrase alone.
            return Next::Answer(LocalResponse {
                status: code.into(),
                headers: Vec::new(),
                body: reason.as_bytes().to_vec(),
            });
        }
        map.refresh(stream, at);
        let slot = plugin.slot;
        slot.set_buffer(stream.id(), self.phase.buffer(), held);
        let action = self
            .phase
            .on_body(slot, stream.id(), held.len() as u32, end);
        *held = slot.get_buffer(stream.id(), self.phase.buffer());
        if let Next::Answer(local) = stream.settle(at, map).await {
            return Next::Answer(local);
        }
        if action != CONTINUE && !end {
            return Next::Go(None);
        }
        Next::Go(Some(std::mem::take(held)))
    }

    /// The body's last data, its trailers (`found`) having come: through
    /// the stages with `end_of_stream` if there are none, else as
    /// [`Flow::finish`] runs them. What comes out, and the trailers to pass
    /// on.
    async fn last(
        &mut self,
        data: Vec<u8>,
        order: &[usize],
        map: &mut Map,
        found: Result<Option<Fields>, ErrorCode>,
    ) -> Next<(Vec<u8>, Result<Option<Fields>, ErrorCode>)> {
        let fields = match found {
            Ok(Some(fields)) => fields,
            other => {
                return match self.push(data, true, map).await {
                    Next::Go(out) => Next::Go((out.unwrap_or_default(), other)),
                    Next::Answer(local) => Next::Answer(local),
                };
            }
        };
        let mut trailers = Map::new(bytes_pairs(fields.copy_all()), self.phase.trailers());
        match self.finish(data, order, map, &mut trailers).await {
            Next::Go(out) => Next::Go((
                out,
                Ok(Fields::from_list(&string_pairs(trailers.pairs)).ok()),
            )),
            Next::Answer(local) => Next::Answer(local),
        }
    }

    /// The end of a body that trailers follow, as Envoy runs it: no body
    /// callback hears `end_of_stream`. Each plugin of `order` hears what
    /// reaches it of the body, then the trailers (`trailers`), and what it
    /// held goes on after them.
    async fn finish(
        &mut self,
        mut data: Vec<u8>,
        order: &[usize],
        map: &mut Map,
        trailers: &mut Map,
    ) -> Next<Vec<u8>> {
        for &at in order {
            let stage = self.stages.iter().position(|(p, _)| *p == at);
            if let Some(index) = stage {
                match self.feed(index, data, false, map).await {
                    Next::Go(through) => data = through.unwrap_or_default(),
                    Next::Answer(local) => return Next::Answer(local),
                }
            }
            let callback = self.stream.trailer_callback(self.phase, at, trailers);
            if let Next::Answer(local) = callback.await {
                return Next::Answer(local);
            }
            if let Some(index) = stage {
                data.extend(std::mem::take(&mut self.stages[index].1));
            }
        }
        Next::Go(data)
    }

    /// Streams the rest of a body: `out` first, then each chunk through
    /// the stages, then the trailers with the last of it. The headers have
    /// gone, so a local response or a body over a limit now can only cut
    /// the stream, with an error.
    async fn pump(
        &mut self,
        mut out: Vec<u8>,
        mut body: StreamReader<u8>,
        order: &[usize],
        body_trailers: Option<Trailers>,
        mut to: StreamWriter<u8>,
        trailers_to: TrailersWriter,
    ) {
        let cut =
            |why: &str| ErrorCode::InternalError(Some(format!("the proxy-wasm plugin {why}")));
        // Header changes now come too late to go anywhere; each plugin
        // keeps its own copy unless another's change reaches it.
        let mut too_late = Map::new(Vec::new(), self.phase.headers());
        for (at, _) in &self.stages {
            too_late.seen(*at);
        }
        let found = loop {
            if !out.is_empty() && !to.write_all(std::mem::take(&mut out)).await.is_empty() {
                return;
            }
            let (status, chunk) = body.read(Vec::with_capacity(CHUNK)).await;
            if !matches!(status, StreamResult::Complete(_)) {
                let found = arrived(body_trailers).await;
                match self.last(chunk, order, &mut too_late, found).await {
                    Next::Go((through, found)) => {
                        out = through;
                        break found;
                    }
                    Next::Answer(_) => break Err(cut("answered after the headers had gone")),
                }
            }
            match self.push(chunk, false, &mut too_late).await {
                Next::Go(Some(through)) => out = through,
                Next::Go(None) => {}
                Next::Answer(_) => break Err(cut("answered after the headers had gone")),
            }
        };
        if !out.is_empty() && !to.write_all(out).await.is_empty() {
            return;
        }
        drop(to);
        if !matches!(found, Ok(None)) {
            let _ = trailers_to.write(found).await;
        }
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

    fn on_body(self, slot: &dyn Slot, context: u32, size: u32, end: bool) -> u32 {
        match self {
            Phase::Request => slot.on_request_body(context, size, end as u32),
            Phase::Response => slot.on_response_body(context, size, end as u32),
        }
    }

    fn on_trailers(self, slot: &dyn Slot, context: u32, count: u32) -> u32 {
        match self {
            Phase::Request => slot.on_request_trailers(context, count),
            Phase::Response => slot.on_response_trailers(context, count),
        }
    }
}

/// Makes one `proxy_http_call` through the host's `wasi:http/client`:
/// the upstream is the authority to connect to, or the `scheme://authority`
/// of the cluster the filter named (the state component mapped it), whose
/// scheme then replaces the call's.
async fn side_call(
    call: &Call,
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
