//! pwchain's built-in state component for wrapped proxy-wasm modules: it
//! answers the module's hostcalls (through the adapter `pwchain wrap`
//! generates) and lets the driver seed and read what they touch.
//!
//! It is its own component because the driver calls the module and the
//! module calls the hostcalls: were they the driver's, the driver would be
//! re-entered, which the component model forbids.
//!
//! Built from this source and embedded in the `pwchain` binary; a test checks
//! that the committed `crates/compose/builtins/legacy-state.wasm` matches it.

use exports::pwchain::proxy::legacy_control::{
    self, Call, LocalResponse, Outcome, Pairs, Settings,
};
use exports::pwchain::proxy::legacy_host;
use pwchain::proxy::legacy_metrics;
use pwchain::proxy::legacy_shared as shared;
use std::cell::RefCell;
use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

wit_bindgen::generate!({
    path: "../../../wit",
    world: "pwchain:proxy/legacy-state",
    generate_all,
});

/// The ABI's statuses.
const OK: u32 = 0;
const NOT_FOUND: u32 = 1;
const BAD_ARGUMENT: u32 = 2;
const PARSE_FAILURE: u32 = 4;

/// Header map types.
const REQUEST_HEADERS: u32 = 0;
const RESPONSE_TRAILERS: u32 = 3;
const CALL_RESPONSE_HEADERS: u32 = 6;
const CALL_RESPONSE_TRAILERS: u32 = 7;

/// Buffer types.
const REQUEST_BODY: u32 = 0;
const RESPONSE_BODY: u32 = 1;
const CALL_RESPONSE_BODY: u32 = 4;
const VM_CONFIGURATION: u32 = 6;
const PLUGIN_CONFIGURATION: u32 = 7;

#[derive(Default)]
struct Stream {
    /// Request headers, request trailers, response headers, response trailers.
    maps: [Pairs; 4],
    /// Which maps the plugin changed since the driver last looked.
    changed: [bool; 4],
    /// Request body, response body (what the current callback sees).
    bodies: [Vec<u8>; 2],
    /// Properties the plugin set.
    properties: HashMap<String, Vec<u8>>,
    local: Option<LocalResponse>,
}

impl Stream {
    fn header(&self, name: &str) -> Option<&[u8]> {
        let found = self.maps[0]
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name.as_bytes()));
        found.map(|(_, v)| v.as_slice())
    }

    /// Envoy's request and response attributes, from the header maps:
    /// maps in the header-map format, integers as 8 little-endian bytes.
    fn attribute(&self, key: &str) -> Option<Vec<u8>> {
        let path = self.header(":path").unwrap_or_default();
        let split = path.iter().position(|b| *b == b'?');
        Some(match key {
            "request.path" => path.to_vec(),
            "request.url_path" => path[..split.unwrap_or(path.len())].to_vec(),
            "request.query" => split.map_or(Vec::new(), |at| path[at + 1..].to_vec()),
            "request.host" => self.header(":authority")?.to_vec(),
            "request.scheme" => self.header(":scheme")?.to_vec(),
            "request.method" => self.header(":method")?.to_vec(),
            "request.protocol" => b"HTTP/1.1".to_vec(),
            "request.id" => self.header("x-request-id")?.to_vec(),
            "request.referer" => self.header("referer")?.to_vec(),
            "request.useragent" => self.header("user-agent")?.to_vec(),
            "request.headers" => serialize(&self.maps[0]),
            "request.trailers" => serialize(&self.maps[1]),
            "response.headers" => serialize(&self.maps[2]),
            "response.trailers" => serialize(&self.maps[3]),
            "response.code" => {
                let status = self.maps[2].iter().find(|(k, _)| k == b":status")?;
                let code: i64 = std::str::from_utf8(&status.1).ok()?.parse().ok()?;
                code.to_le_bytes().to_vec()
            }
            _ => return None,
        })
    }
}

#[derive(Default)]
struct CallResponse {
    status: u32,
    headers: Pairs,
    body: Vec<u8>,
    trailers: Pairs,
}

#[derive(Default)]
struct State {
    settings: Option<Settings>,
    streams: HashMap<u32, Stream>,
    current: u32,
    calls: Vec<Call>,
    next_token: u32,
    call_response: CallResponse,
    /// Whether the plugin registered a shared queue, so that `finish` asks
    /// which of them got items.
    has_queues: bool,
    tick: Option<(Duration, SystemTime)>,
}

thread_local! {
    static STATE: RefCell<State> = RefCell::default();
}

fn with<T>(f: impl FnOnce(&mut State) -> T) -> T {
    STATE.with(|state| f(&mut state.borrow_mut()))
}

impl State {
    fn stream(&mut self) -> Option<&mut Stream> {
        let current = self.current;
        self.streams.get_mut(&current)
    }

    /// A header map the plugin is changing.
    fn map_mut(&mut self, map: u32) -> Result<&mut Pairs, u32> {
        if let Some(flag) = self.stream().and_then(|s| s.changed.get_mut(map as usize)) {
            *flag = true;
        }
        self.map(map)
    }

    fn map(&mut self, map: u32) -> Result<&mut Pairs, u32> {
        match map {
            CALL_RESPONSE_HEADERS => Ok(&mut self.call_response.headers),
            CALL_RESPONSE_TRAILERS => Ok(&mut self.call_response.trailers),
            REQUEST_HEADERS..=RESPONSE_TRAILERS => self
                .stream()
                .map(|s| &mut s.maps[map as usize])
                .ok_or(NOT_FOUND),
            _ => Err(BAD_ARGUMENT),
        }
    }

    fn buffer(&mut self, kind: u32) -> Result<&mut Vec<u8>, u32> {
        match kind {
            VM_CONFIGURATION | PLUGIN_CONFIGURATION => {
                let settings = self.settings.as_mut().ok_or(NOT_FOUND)?;
                Ok(match kind {
                    VM_CONFIGURATION => &mut settings.vm_configuration,
                    _ => &mut settings.configuration,
                })
            }
            REQUEST_BODY | RESPONSE_BODY => self
                .stream()
                .map(|s| &mut s.bodies[kind as usize])
                .ok_or(NOT_FOUND),
            CALL_RESPONSE_BODY => Ok(&mut self.call_response.body),
            _ => Err(BAD_ARGUMENT),
        }
    }

    fn name(&self) -> &str {
        self.settings.as_ref().map_or("proxy-wasm", |s| &s.name)
    }

    /// Where a `proxy_http_call` to `upstream` goes: in Envoy it names a
    /// cluster, so a mapped name becomes its `scheme://authority`, a
    /// literal `host:port` stays as it is, and any other name is
    /// BadArgument, as Envoy answers a cluster it does not know.
    fn cluster(&self, upstream: &[u8]) -> Result<Vec<u8>, u32> {
        let name = String::from_utf8_lossy(upstream);
        let clusters = self.settings.as_ref().map(|s| s.clusters.as_slice());
        if let Some((_, url)) = clusters
            .unwrap_or_default()
            .iter()
            .find(|(n, _)| *n == name)
        {
            return Ok(url.as_bytes().to_vec());
        }
        let literal = name.rsplit_once(':').is_some_and(|(host, port)| {
            !host.is_empty() && !host.contains(['/', ' ']) && port.parse::<u16>().is_ok()
        });
        if literal {
            Ok(upstream.to_vec())
        } else {
            Err(BAD_ARGUMENT)
        }
    }
}

/// `[u32 count][count × (u32 key length, u32 value length)]` then each key
/// and value followed by NUL: the ABI's header map.
fn serialize(pairs: &Pairs) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend((pairs.len() as u32).to_le_bytes());
    for (k, v) in pairs {
        out.extend((k.len() as u32).to_le_bytes());
        out.extend((v.len() as u32).to_le_bytes());
    }
    for (k, v) in pairs {
        for part in [k, v] {
            out.extend(part);
            out.push(0);
        }
    }
    out
}

fn deserialize(bytes: &[u8]) -> Option<Pairs> {
    let word = |at: usize| -> Option<usize> {
        let b = bytes.get(at..at + 4)?;
        Some(u32::from_le_bytes(b.try_into().ok()?) as usize)
    };
    if bytes.is_empty() {
        return Some(Vec::new());
    }
    let count = word(0)?;
    let mut at = 4 + count.checked_mul(8)?;
    let mut pairs = Vec::with_capacity(count.min(1024));
    for i in 0..count {
        let (klen, vlen) = (word(4 + i * 8)?, word(8 + i * 8)?);
        let key = bytes.get(at..at + klen)?.to_vec();
        at += klen + 1;
        let value = bytes.get(at..at + vlen)?.to_vec();
        at += vlen + 1;
        pairs.push((key, value));
    }
    Some(pairs)
}

fn lower(bytes: &[u8]) -> Vec<u8> {
    bytes.to_ascii_lowercase()
}

/// Writes one line to stderr in one write, so that lines of instances
/// running side by side do not interleave.
fn line(mut text: String) {
    use std::io::Write;
    text.push('\n');
    let _ = std::io::stderr().write_all(text.as_bytes());
}

fn now() -> SystemTime {
    SystemTime::now()
}

fn status(result: Result<(), u32>) -> u32 {
    result.err().unwrap_or(OK)
}

struct Component;

impl legacy_host::Guest for Component {
    fn log(level: u32, message: Vec<u8>) -> u32 {
        with(|state| {
            let least = state.settings.as_ref().map_or(2, |s| s.log_level);
            if level >= least {
                let name = ["trace", "debug", "info", "warn", "error", "critical"]
                    .get(level as usize)
                    .unwrap_or(&"log");
                line(format!(
                    "{} {name}: {}",
                    state.name(),
                    String::from_utf8_lossy(&message)
                ));
            }
        });
        OK
    }

    fn get_log_level() -> Result<u32, u32> {
        with(|state| Ok(state.settings.as_ref().map_or(2, |s| s.log_level)))
    }

    fn get_current_time() -> Result<u64, u32> {
        Ok(now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64))
    }

    fn set_tick_period(millis: u32) -> u32 {
        with(|state| {
            state.tick = (millis > 0).then(|| (Duration::from_millis(millis.into()), now()));
        });
        OK
    }

    fn get_configuration() -> Result<Vec<u8>, u32> {
        with(|state| state.buffer(PLUGIN_CONFIGURATION).map(|b| b.clone()))
    }

    fn get_buffer_bytes(kind: u32, start: u32, max: u32) -> Result<Vec<u8>, u32> {
        with(|state| {
            let buffer = state.buffer(kind)?;
            let start = (start as usize).min(buffer.len());
            let end = start.saturating_add(max as usize).min(buffer.len());
            Ok(buffer[start..end].to_vec())
        })
    }

    fn get_buffer_status(kind: u32) -> Result<(u32, u32), u32> {
        with(|state| Ok((state.buffer(kind)?.len() as u32, 0)))
    }

    fn set_buffer_bytes(kind: u32, start: u32, size: u32, data: Vec<u8>) -> u32 {
        with(|state| {
            status(state.buffer(kind).map(|buffer| {
                let start = (start as usize).min(buffer.len());
                let end = start.saturating_add(size as usize).min(buffer.len());
                buffer.splice(start..end, data);
            }))
        })
    }

    fn get_header_map_pairs(map: u32) -> Result<Vec<u8>, u32> {
        with(|state| state.map(map).map(|pairs| serialize(pairs)))
    }

    fn set_header_map_pairs(map: u32, pairs: Vec<u8>) -> u32 {
        let Some(pairs) = deserialize(&pairs) else {
            return PARSE_FAILURE;
        };
        with(|state| status(state.map_mut(map).map(|m| *m = pairs)))
    }

    fn get_header_map_value(map: u32, key: Vec<u8>) -> Result<Vec<u8>, u32> {
        let key = lower(&key);
        with(|state| {
            let pairs = state.map(map)?;
            let found = pairs.iter().find(|(k, _)| k.eq_ignore_ascii_case(&key));
            found.map(|(_, v)| v.clone()).ok_or(NOT_FOUND)
        })
    }

    fn replace_header_map_value(map: u32, key: Vec<u8>, value: Vec<u8>) -> u32 {
        let key = lower(&key);
        with(|state| {
            status(state.map_mut(map).map(|pairs| {
                pairs.retain(|(k, _)| !k.eq_ignore_ascii_case(&key));
                pairs.push((key, value));
            }))
        })
    }

    fn remove_header_map_value(map: u32, key: Vec<u8>) -> u32 {
        with(|state| {
            status(
                state
                    .map_mut(map)
                    .map(|pairs| pairs.retain(|(k, _)| !k.eq_ignore_ascii_case(&key))),
            )
        })
    }

    fn add_header_map_value(map: u32, key: Vec<u8>, value: Vec<u8>) -> u32 {
        let key = lower(&key);
        with(|state| status(state.map_mut(map).map(|pairs| pairs.push((key, value)))))
    }

    fn get_property(path: Vec<u8>) -> Result<Vec<u8>, u32> {
        let path = path.strip_suffix(b"\0").unwrap_or(&path);
        let key = String::from_utf8_lossy(path).replace('\0', ".");
        with(|state| {
            if let Some(stream) = state.stream() {
                let set = stream.properties.get(&key).cloned();
                if let Some(value) = set.or_else(|| stream.attribute(&key)) {
                    return Ok(value);
                }
            }
            let settings = state.settings.as_ref().ok_or(NOT_FOUND)?;
            match key.as_str() {
                "plugin_name" => Ok(settings.name.clone().into_bytes()),
                "plugin_root_id" => Ok(settings.root_id.clone().into_bytes()),
                "plugin_vm_id" => Ok(Vec::new()),
                _ => Err(NOT_FOUND),
            }
        })
    }

    fn set_property(path: Vec<u8>, value: Vec<u8>) -> u32 {
        let key = String::from_utf8_lossy(&path).replace('\0', ".");
        with(|state| match state.stream() {
            Some(stream) => {
                stream.properties.insert(key, value);
                OK
            }
            None => NOT_FOUND,
        })
    }

    fn get_shared_data(key: Vec<u8>) -> Result<(Vec<u8>, u32), u32> {
        shared::get_data(&key)
    }

    fn set_shared_data(key: Vec<u8>, value: Vec<u8>, cas: u32) -> u32 {
        shared::set_data(&key, &value, cas)
    }

    fn register_shared_queue(name: Vec<u8>) -> Result<u32, u32> {
        let owner = with(|state| {
            state.has_queues = true;
            state.name().to_string()
        });
        Ok(shared::register_queue(&owner, &name))
    }

    fn resolve_shared_queue(_vm: Vec<u8>, name: Vec<u8>) -> Result<u32, u32> {
        shared::resolve_queue(&name)
    }

    fn dequeue_shared_queue(queue: u32) -> Result<Vec<u8>, u32> {
        shared::dequeue(queue)
    }

    fn enqueue_shared_queue(queue: u32, value: Vec<u8>) -> u32 {
        shared::enqueue(queue, &value)
    }

    /// The driver goes on once a callback returns; a paused stream resumes
    /// when its pending calls have been answered.
    fn continue_stream(stream: u32) -> u32 {
        if stream > 1 { BAD_ARGUMENT } else { OK }
    }

    fn close_stream(_stream: u32) -> u32 {
        OK
    }

    fn send_local_response(
        status: u32,
        _details: Vec<u8>,
        body: Vec<u8>,
        headers: Vec<u8>,
        _grpc_status: i32,
    ) -> u32 {
        let Some(headers) = deserialize(&headers) else {
            return PARSE_FAILURE;
        };
        with(|state| match state.stream() {
            Some(stream) => {
                stream.local = Some(LocalResponse {
                    status,
                    headers,
                    body,
                });
                OK
            }
            None => NOT_FOUND,
        })
    }

    fn http_call(
        upstream: Vec<u8>,
        headers: Vec<u8>,
        body: Vec<u8>,
        trailers: Vec<u8>,
        timeout_ms: u32,
    ) -> Result<u32, u32> {
        let (Some(headers), Some(trailers)) = (deserialize(&headers), deserialize(&trailers))
        else {
            return Err(PARSE_FAILURE);
        };
        if !headers.iter().any(|(k, _)| k == b":path") {
            return Err(BAD_ARGUMENT);
        }
        with(|state| {
            let upstream = state.cluster(&upstream)?;
            state.next_token += 1;
            let token = state.next_token;
            state.calls.push(Call {
                token,
                context: state.current,
                upstream,
                headers,
                body,
                trailers,
                timeout_ms,
            });
            Ok(token)
        })
    }

    fn get_status() -> Result<(u32, Vec<u8>), u32> {
        with(|state| Ok((state.call_response.status, Vec::new())))
    }

    fn set_effective_context(context: u32) -> u32 {
        with(|state| {
            let root = state.settings.as_ref().map(|s| s.root);
            if state.streams.contains_key(&context) || root == Some(context) {
                state.current = context;
                OK
            } else {
                BAD_ARGUMENT
            }
        })
    }

    fn done() -> u32 {
        OK
    }

    // Metrics are kept where the chain says (see `legacy-metrics`).
    fn define_metric(kind: u32, name: Vec<u8>) -> Result<u32, u32> {
        legacy_metrics::define(kind, &String::from_utf8_lossy(&name))
    }

    fn increment_metric(metric: u32, delta: i64) -> u32 {
        legacy_metrics::increment(metric, delta)
    }

    fn record_metric(metric: u32, value: u64) -> u32 {
        legacy_metrics::record(metric, value)
    }

    fn get_metric(metric: u32) -> Result<u64, u32> {
        legacy_metrics::get(metric)
    }

    fn write(fd: u32, data: Vec<u8>) -> u32 {
        if !matches!(fd, 1 | 2) {
            return 8; // EBADF
        }
        let text = String::from_utf8_lossy(&data);
        with(|state| {
            for line in text.lines().filter(|l| !l.is_empty()) {
                self::line(format!(
                    "{} {}: {line}",
                    state.name(),
                    ["", "stdout", "stderr"][fd as usize]
                ));
            }
        });
        0
    }

    fn random() -> u64 {
        use std::hash::BuildHasher;
        std::collections::hash_map::RandomState::new().hash_one(now())
    }

    fn clock_now(monotonic: bool) -> u64 {
        if monotonic {
            // From an arbitrary origin, never 0 (a Go runtime refuses a
            // clock that reads 0 at start).
            static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
            let elapsed = START.get_or_init(std::time::Instant::now).elapsed();
            1_000_000_000 + elapsed.as_nanos() as u64
        } else {
            now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64)
        }
    }
}

impl legacy_control::Guest for Component {
    fn setup(settings: Settings) {
        with(|state| state.settings = Some(settings));
    }

    fn begin(context: u32, request_headers: Pairs) {
        with(|state| {
            let mut stream = Stream::default();
            stream.maps[0] = request_headers;
            state.streams.insert(context, stream);
            state.current = context;
        });
    }

    fn end(context: u32) {
        with(|state| state.streams.remove(&context));
    }

    fn enter(context: u32) {
        with(|state| state.current = context);
    }

    fn set_map(context: u32, map: u32, pairs: Pairs) {
        with(|state| {
            state.current = context;
            if let Ok(m) = state.map_mut(map) {
                *m = pairs;
            }
        });
    }

    fn get_map(context: u32, map: u32) -> Pairs {
        with(|state| {
            state.current = context;
            state.map(map).map(|m| m.clone()).unwrap_or_default()
        })
    }

    fn set_buffer(context: u32, kind: u32, data: Vec<u8>) {
        with(|state| {
            state.current = context;
            if let Ok(b) = state.buffer(kind) {
                *b = data;
            }
        });
    }

    fn get_buffer(context: u32, kind: u32) -> Vec<u8> {
        with(|state| {
            state.current = context;
            state.buffer(kind).map(|b| b.clone()).unwrap_or_default()
        })
    }

    fn finish(context: u32, map: u32) -> Outcome {
        with(|state| {
            let (local_response, changed) = match state.streams.get_mut(&context) {
                Some(stream) => {
                    let changed = stream
                        .changed
                        .get_mut(map as usize)
                        .is_some_and(std::mem::take)
                        .then(|| stream.maps[map as usize].clone());
                    (stream.local.take(), changed)
                }
                None => (None, None),
            };
            Outcome {
                local_response,
                calls: std::mem::take(&mut state.calls),
                ready_queues: match state.has_queues {
                    true => shared::take_ready(state.name()),
                    false => Vec::new(),
                },
                changed,
            }
        })
    }

    fn set_call_response(status: u32, headers: Pairs, body: Vec<u8>, trailers: Pairs) {
        with(|state| {
            state.call_response = CallResponse {
                status,
                headers,
                body,
                trailers,
            }
        });
    }

    fn tick_due() -> bool {
        with(|state| match &mut state.tick {
            Some((period, last)) if last.elapsed().is_ok_and(|e| e >= *period) => {
                *last = now();
                true
            }
            _ => false,
        })
    }
}

export!(Component);
