//! A proxy-wasm filter that touches most of ABI 0.2.1, so the tests can
//! see each part work through `pwchain wrap`. Its configuration is lines of
//! `key=value`: `upstream` (an authority for `proxy_http_call`s), its
//! `timeout-ms` (default 5000) and `tag`.
//!
//! - every request: copies `:method`, `:path`, `:authority` and `:scheme`
//!   and the `request.*` properties into `x-probe-*` request headers,
//!   replaces `x-replace-me`, removes `x-remove-me`, counts requests in a
//!   metric and in shared data (with CAS), enqueues the path on a shared
//!   queue (the root context logs what it dequeues), and starts a tick.
//! - `POST` bodies: held (Pause) to the end, then `ping` becomes `PONG`;
//!   a request trailer `x-checksum` comes back as a response header, and
//!   `x-checksum-seen` is added to the trailers passed on.
//! - responses: `x-probe-*` headers with the counters, a gauge, the log
//!   level, the ticks seen, `:status`, and the number of headers (the map
//!   read whole and set whole); the body, held to the end, gets a last line.
//! - `/call`: asks `upstream` (`proxy_http_call`) and resumes the request
//!   with the answer in `x-call-answer`; `/call-deny` turns a 403 from it
//!   into a local response.
//! - `/trap`: panics, to show a trap costs only its request.

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel, MetricType};
use std::time::Duration;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Trace);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> {
        Box::new(Root {
            upstream: String::new(),
            tag: "probe".into(),
            timeout: Duration::from_secs(5),
            queue: 0,
            metric: 0,
        })
    });
}}

struct Root {
    upstream: String,
    tag: String,
    timeout: Duration,
    queue: u32,
    metric: u32,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_vm_start(&mut self, _size: usize) -> bool {
        let vm = self.get_vm_configuration().unwrap_or_default();
        log::info!("vm started with {:?}", String::from_utf8_lossy(&vm));
        self.queue = self.register_shared_queue("paths");
        self.metric = hostcalls::define_metric(MetricType::Counter, "probe_requests").unwrap_or(0);
        self.set_tick_period(Duration::from_millis(1));
        true
    }

    fn on_configure(&mut self, _size: usize) -> bool {
        let config = self.get_plugin_configuration().unwrap_or_default();
        for line in String::from_utf8_lossy(&config).lines() {
            match line.split_once('=') {
                Some(("upstream", v)) => self.upstream = v.trim().to_string(),
                Some(("tag", v)) => self.tag = v.trim().to_string(),
                Some(("timeout-ms", v)) => {
                    self.timeout = Duration::from_millis(v.trim().parse().unwrap_or(5000))
                }
                _ => {}
            }
        }
        log::info!(
            "configured: upstream {:?}, tag {:?}",
            self.upstream,
            self.tag
        );
        !self.tag.is_empty()
    }

    fn on_tick(&mut self) {
        let (ticks, cas) = self.get_shared_data("ticks");
        let n = number(ticks) + 1;
        let _ = self.set_shared_data("ticks", Some(n.to_string().as_bytes()), cas);
    }

    fn on_queue_ready(&mut self, queue: u32) {
        while let Ok(Some(item)) = self.dequeue_shared_queue(queue) {
            log::info!("dequeued {}", String::from_utf8_lossy(&item));
        }
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Probe {
            upstream: self.upstream.clone(),
            tag: self.tag.clone(),
            timeout: self.timeout,
            queue: self.queue,
            metric: self.metric,
            path: String::new(),
            hits: 0,
            trailer: String::new(),
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

fn number(bytes: Option<Vec<u8>>) -> u64 {
    bytes
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

struct Probe {
    upstream: String,
    tag: String,
    timeout: Duration,
    queue: u32,
    metric: u32,
    path: String,
    hits: u64,
    trailer: String,
}

impl Probe {
    fn property(&self, path: &str) -> String {
        let parts: Vec<&str> = path.split('.').collect();
        match self.get_property(parts) {
            Some(value) => String::from_utf8_lossy(&value).into_owned(),
            None => "<none>".into(),
        }
    }
}

impl Context for Probe {
    fn on_http_call_response(
        &mut self,
        _token: u32,
        _headers: usize,
        body_size: usize,
        _trailers: usize,
    ) {
        let status = self
            .get_http_call_response_header(":status")
            .unwrap_or_default();
        let body = self
            .get_http_call_response_body(0, body_size)
            .unwrap_or_default();
        let body = String::from_utf8_lossy(&body).trim().to_string();
        log::info!("call answered {status}: {body}");
        if self.path.starts_with("/call-deny") && status == "403" {
            self.send_http_response(
                403,
                vec![("x-call-status", status.as_str())],
                Some(b"the upstream said no\n"),
            );
            return;
        }
        self.set_http_request_header("x-call-answer", Some(&format!("{status} {body}")));
        self.resume_http_request();
    }
}

impl HttpContext for Probe {
    fn on_http_request_headers(&mut self, headers: usize, _end_of_stream: bool) -> Action {
        self.path = self.get_http_request_header(":path").unwrap_or_default();
        if self.path.starts_with("/trap") {
            panic!("asked to trap");
        }
        for name in [":method", ":path", ":authority", ":scheme"] {
            let value = self.get_http_request_header(name).unwrap_or_default();
            self.add_http_request_header(&format!("x-probe-{}", &name[1..]), &value);
        }
        for property in [
            "request.path",
            "request.method",
            "request.host",
            "request.url_path",
            "no.such.thing",
        ] {
            let value = self.property(property);
            self.add_http_request_header(
                &format!("x-probe-{}", property.replace('.', "-")),
                &value,
            );
        }
        let raw_headers = self
            .get_property(vec!["request", "headers"])
            .map_or(0, |b| b.len());
        self.add_http_request_header("x-probe-request-headers-bytes", &raw_headers.to_string());
        self.add_http_request_header("x-probe-header-count", &headers.to_string());
        if self.get_http_request_header("x-replace-me").is_some() {
            self.set_http_request_header("x-replace-me", Some("replaced"));
        }
        self.set_http_request_header("x-remove-me", None);

        let _ = hostcalls::increment_metric(self.metric, 1);
        loop {
            let (hits, cas) = self.get_shared_data("hits");
            let n = number(hits) + 1;
            if self
                .set_shared_data("hits", Some(n.to_string().as_bytes()), cas)
                .is_ok()
            {
                self.hits = n;
                break;
            }
        }
        let _ = self.enqueue_shared_queue(self.queue, Some(self.path.as_bytes()));
        log::debug!("request {} seen", self.path);

        if self.path.starts_with("/call") {
            let headers = vec![
                (":method", "GET"),
                (":path", "/answer"),
                (":authority", "upstream"),
                ("x-from", "probe"),
            ];
            match self.dispatch_http_call(&self.upstream, headers, None, vec![], self.timeout) {
                Ok(_) => return Action::Pause,
                Err(status) => log::warn!("dispatch failed: {status:?}"),
            }
        }
        Action::Continue
    }

    fn on_http_request_body(&mut self, size: usize, end_of_stream: bool) -> Action {
        if !end_of_stream {
            return Action::Pause;
        }
        if let Some(body) = self.get_http_request_body(0, size) {
            let text = String::from_utf8_lossy(&body).replace("ping", "PONG");
            self.set_http_request_body(0, size, text.as_bytes());
        }
        Action::Continue
    }

    fn on_http_request_trailers(&mut self, _trailers: usize) -> Action {
        self.trailer = self
            .get_http_request_trailer("x-checksum")
            .unwrap_or_default();
        self.add_http_request_trailer("x-checksum-seen", "yes");
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
        if !self.trailer.is_empty() {
            self.set_http_response_header("x-probe-request-trailer", Some(&self.trailer));
        }
        let status = self.get_http_response_header(":status").unwrap_or_default();
        let count = hostcalls::get_metric(self.metric).unwrap_or(0);
        let level = hostcalls::get_log_level().map_or(-1, |l| l as i32);
        let (ticks, _) = self.get_shared_data("ticks");
        self.set_http_response_header("x-probe-upstream-status", Some(&status));
        self.set_http_response_header("x-probe-metric", Some(&count.to_string()));
        self.set_http_response_header("x-probe-hits", Some(&self.hits.to_string()));
        let hits = format!("x-probe-hits-{}", self.tag);
        self.set_http_response_header(&hits, Some(&self.hits.to_string()));
        self.set_http_response_header("x-probe-log-level", Some(&level.to_string()));
        self.set_http_response_header("x-probe-ticks", Some(&number(ticks).to_string()));
        self.set_http_response_header("x-probe-tag", Some(&self.tag));
        self.set_http_response_header("content-length", None);
        if let Ok(gauge) = hostcalls::define_metric(MetricType::Gauge, "probe_gauge") {
            let _ = hostcalls::record_metric(gauge, 7);
            let value = hostcalls::get_metric(gauge).unwrap_or(0);
            self.set_http_response_header("x-probe-gauge", Some(&value.to_string()));
        }
        // The whole map, read and written back with one more entry.
        let mut pairs = self.get_http_response_headers();
        let count = pairs.len().to_string();
        pairs.push(("x-probe-pairs".into(), count));
        self.set_http_response_headers(
            pairs
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect(),
        );
        Action::Continue
    }

    fn on_http_response_body(&mut self, size: usize, end_of_stream: bool) -> Action {
        if !end_of_stream {
            return Action::Pause;
        }
        let line = format!("-- seen by {}\n", self.tag);
        self.set_http_response_body(size, 0, line.as_bytes());
        Action::Continue
    }
}
