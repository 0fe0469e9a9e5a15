//! A proxy-wasm filter of the kind that exists by the thousand: it reads
//! its configuration in `on_configure`, tags requests and responses with a
//! header, answers `/legacy-deny` itself with a local 403, and logs what it
//! does. Built unchanged for `wasm32-unknown-unknown` and `wasm32-wasip1`.

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> {
        Box::new(Root { tag: "legacy".into() })
    });
}}

struct Root {
    tag: String,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_configure(&mut self, _size: usize) -> bool {
        if let Some(config) = self.get_plugin_configuration() {
            self.tag = String::from_utf8_lossy(&config).trim().to_string();
        }
        log::info!("configured with tag {}", self.tag);
        true
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Filter {
            tag: self.tag.clone(),
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct Filter {
    tag: String,
}

impl Context for Filter {}

impl HttpContext for Filter {
    fn on_http_request_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
        let path = self.get_http_request_header(":path").unwrap_or_default();
        if path.starts_with("/legacy-deny") {
            log::info!("denying {path}");
            self.send_http_response(
                403,
                vec![("x-legacy", self.tag.as_str())],
                Some(b"denied by a proxy-wasm filter\n"),
            );
            return Action::Pause;
        }
        self.add_http_request_header("x-legacy-request", &self.tag);
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
        self.set_http_response_header("x-legacy-response", Some(&self.tag));
        Action::Continue
    }
}
