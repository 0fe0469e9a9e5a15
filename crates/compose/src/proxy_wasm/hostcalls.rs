//! The proxy-wasm ABI 0.2.1 hostcalls pwchain knows, and the function of
//! `pwchain:proxy/legacy-host` each one becomes.
//!
//! A hostcall's parameters are its inputs followed by pointers where the
//! host writes results. The inputs are exactly the flat canonical-ABI
//! parameters of the `legacy-host` function (a `list<u8>` is a pointer and
//! a length, as in the ABI), so the adapter forwards them untouched.

/// Where a hostcall's results go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// None: the function returns the status.
    Status,
    /// One `u32` (`result<u32, u32>`).
    U32,
    /// One `u64` (`result<u64, u32>`).
    U64,
    /// A buffer the host allocates, as pointer and length (`result<list<u8>, u32>`).
    Bytes,
    /// Two `u32`s (`result<tuple<u32, u32>, u32>`).
    Pair,
    /// A buffer and a `u32` (`result<tuple<list<u8>, u32>, u32>`).
    BytesU32,
    /// A `u32` and a buffer (`result<tuple<u32, list<u8>>, u32>`).
    U32Bytes,
}

/// A slot of a `result<T, u32>` the adapter copies to the caller's pointer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    /// An `i32` parameter, of this many bytes in memory when it is a pointer.
    I32(u32),
    /// An `i64` parameter, of this many bytes in memory when it is a pointer.
    I64(u32),
    /// A buffer's pointer, written as null when the length at the second
    /// offset is 0 (SDKs read a null pointer as "no value").
    Pointer(u32, u32),
}

impl Output {
    /// The slots, in the order of the caller's pointers, and the offset of
    /// the error status, in the canonical ABI's layout of the result.
    pub fn layout(self) -> (&'static [Slot], u32) {
        use Slot::*;
        match self {
            Output::Status => (&[], 0),
            Output::U32 => (&[I32(4)], 4),
            Output::U64 => (&[I64(8)], 8),
            Output::Bytes => (&[Pointer(4, 8), I32(8)], 4),
            Output::Pair => (&[I32(4), I32(8)], 4),
            Output::BytesU32 => (&[Pointer(4, 8), I32(8), I32(12)], 4),
            Output::U32Bytes => (&[I32(4), Pointer(8, 12), I32(12)], 4),
        }
    }
}

/// Input types, as they appear in the module's import.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    /// An `i32` result.
    I32,
    /// An `i64` result.
    I64,
}

/// One supported hostcall.
#[derive(Debug)]
pub struct Hostcall {
    /// The name the module imports from `env`.
    pub name: &'static str,
    /// Its function in `legacy-host`.
    pub function: &'static str,
    /// Its parameters.
    pub inputs: &'static [Input],
    /// Its result.
    pub output: Output,
}

impl Input {
    /// Its WAT name.
    pub fn wat(self) -> &'static str {
        match self {
            Input::I32 => "i32",
            Input::I64 => "i64",
        }
    }
}

impl Hostcall {
    /// The core type the module must import it with: inputs, one pointer
    /// per result slot, and an `i32` status.
    pub fn params(&self) -> Vec<&'static str> {
        let inputs = self.inputs.iter().map(|i| i.wat());
        let pointers = self.output.layout().0.iter().map(|_| "i32");
        inputs.chain(pointers).collect()
    }
}

const fn call(
    name: &'static str,
    function: &'static str,
    inputs: &'static [Input],
    output: Output,
) -> Hostcall {
    Hostcall {
        name,
        function,
        inputs,
        output,
    }
}

use Input::{I32, I64};

/// Every hostcall pwchain implements.
pub const SUPPORTED: &[Hostcall] = &[
    call("proxy_log", "log", &[I32, I32, I32], Output::Status),
    call("proxy_get_log_level", "get-log-level", &[], Output::U32),
    call(
        "proxy_get_current_time_nanoseconds",
        "get-current-time",
        &[],
        Output::U64,
    ),
    call(
        "proxy_set_tick_period_milliseconds",
        "set-tick-period",
        &[I32],
        Output::Status,
    ),
    call(
        "proxy_get_configuration",
        "get-configuration",
        &[],
        Output::Bytes,
    ),
    call(
        "proxy_get_buffer_bytes",
        "get-buffer-bytes",
        &[I32, I32, I32],
        Output::Bytes,
    ),
    call(
        "proxy_get_buffer_status",
        "get-buffer-status",
        &[I32],
        Output::Pair,
    ),
    call(
        "proxy_set_buffer_bytes",
        "set-buffer-bytes",
        &[I32, I32, I32, I32, I32],
        Output::Status,
    ),
    call(
        "proxy_get_header_map_pairs",
        "get-header-map-pairs",
        &[I32],
        Output::Bytes,
    ),
    call(
        "proxy_set_header_map_pairs",
        "set-header-map-pairs",
        &[I32, I32, I32],
        Output::Status,
    ),
    call(
        "proxy_get_header_map_value",
        "get-header-map-value",
        &[I32, I32, I32],
        Output::Bytes,
    ),
    call(
        "proxy_replace_header_map_value",
        "replace-header-map-value",
        &[I32, I32, I32, I32, I32],
        Output::Status,
    ),
    call(
        "proxy_remove_header_map_value",
        "remove-header-map-value",
        &[I32, I32, I32],
        Output::Status,
    ),
    call(
        "proxy_add_header_map_value",
        "add-header-map-value",
        &[I32, I32, I32, I32, I32],
        Output::Status,
    ),
    call(
        "proxy_get_property",
        "get-property",
        &[I32, I32],
        Output::Bytes,
    ),
    call(
        "proxy_set_property",
        "set-property",
        &[I32, I32, I32, I32],
        Output::Status,
    ),
    call(
        "proxy_get_shared_data",
        "get-shared-data",
        &[I32, I32],
        Output::BytesU32,
    ),
    call(
        "proxy_set_shared_data",
        "set-shared-data",
        &[I32, I32, I32, I32, I32],
        Output::Status,
    ),
    call(
        "proxy_register_shared_queue",
        "register-shared-queue",
        &[I32, I32],
        Output::U32,
    ),
    call(
        "proxy_resolve_shared_queue",
        "resolve-shared-queue",
        &[I32, I32, I32, I32],
        Output::U32,
    ),
    call(
        "proxy_dequeue_shared_queue",
        "dequeue-shared-queue",
        &[I32],
        Output::Bytes,
    ),
    call(
        "proxy_enqueue_shared_queue",
        "enqueue-shared-queue",
        &[I32, I32, I32],
        Output::Status,
    ),
    call(
        "proxy_continue_stream",
        "continue-stream",
        &[I32],
        Output::Status,
    ),
    call("proxy_close_stream", "close-stream", &[I32], Output::Status),
    call(
        "proxy_send_local_response",
        "send-local-response",
        &[I32, I32, I32, I32, I32, I32, I32, I32],
        Output::Status,
    ),
    call(
        "proxy_http_call",
        "http-call",
        &[I32, I32, I32, I32, I32, I32, I32, I32, I32],
        Output::U32,
    ),
    call("proxy_get_status", "get-status", &[], Output::U32Bytes),
    call(
        "proxy_set_effective_context",
        "set-effective-context",
        &[I32],
        Output::Status,
    ),
    call("proxy_done", "done", &[], Output::Status),
    call(
        "proxy_define_metric",
        "define-metric",
        &[I32, I32, I32],
        Output::U32,
    ),
    call(
        "proxy_increment_metric",
        "increment-metric",
        &[I32, I64],
        Output::Status,
    ),
    call(
        "proxy_record_metric",
        "record-metric",
        &[I32, I64],
        Output::Status,
    ),
    call("proxy_get_metric", "get-metric", &[I32], Output::U64),
];

/// Hostcalls of ABI 0.2.x that pwchain knows and answers with the ABI's
/// `Unimplemented` status (every SDK build imports them).
pub const UNIMPLEMENTED: &[&str] = &[
    "proxy_grpc_call",
    "proxy_grpc_stream",
    "proxy_grpc_send",
    "proxy_grpc_cancel",
    "proxy_grpc_close",
    "proxy_call_foreign_function",
    "proxy_continue_request",
    "proxy_continue_response",
    "proxy_clear_route_cache",
];

/// Imports from `env` that are not hostcalls but runtime hooks some SDKs'
/// languages import; each traps, as it would in Envoy (AssemblyScript's
/// `abort(message, file, line, column)`).
pub const TRAPS: &[&str] = &["abort"];

/// Imports from `env` that Envoy answers by doing nothing: the C++ SDK's
/// emscripten builds report memory growth.
pub const NO_OPS: &[&str] = &["emscripten_notify_memory_growth"];

/// The ABI's `Unimplemented` status.
pub const UNIMPLEMENTED_STATUS: i32 = 12;

/// The hostcall `name`, if pwchain provides it.
pub fn supported(name: &str) -> Option<&'static Hostcall> {
    SUPPORTED.iter().find(|h| h.name == name)
}

/// A callback of `pwchain:proxy/legacy-callbacks` and the export it runs.
#[derive(Debug)]
pub struct Callback {
    /// The callback the module exports.
    pub function: &'static str,
    /// What the driver calls it as.
    pub export: &'static str,
    /// How many parameters it takes.
    pub params: usize,
    /// What it returns when the module lacks the export; `None` for no
    /// result.
    pub default: Option<i32>,
}

const fn callback(
    function: &'static str,
    export: &'static str,
    params: usize,
    default: Option<i32>,
) -> Callback {
    Callback {
        function,
        export,
        params,
        default,
    }
}

/// Every callback the driver calls. Defaults are the ABI's: Continue (0)
/// for stream events, true (1) for start, configure and done.
pub const CALLBACKS: &[Callback] = &[
    callback("on-context-create", "proxy_on_context_create", 2, None),
    callback("on-vm-start", "proxy_on_vm_start", 2, Some(1)),
    callback("on-configure", "proxy_on_configure", 2, Some(1)),
    callback("on-request-headers", "proxy_on_request_headers", 3, Some(0)),
    callback("on-request-body", "proxy_on_request_body", 3, Some(0)),
    callback(
        "on-request-trailers",
        "proxy_on_request_trailers",
        2,
        Some(0),
    ),
    callback(
        "on-response-headers",
        "proxy_on_response_headers",
        3,
        Some(0),
    ),
    callback("on-response-body", "proxy_on_response_body", 3, Some(0)),
    callback(
        "on-response-trailers",
        "proxy_on_response_trailers",
        2,
        Some(0),
    ),
    callback(
        "on-http-call-response",
        "proxy_on_http_call_response",
        5,
        None,
    ),
    callback("on-queue-ready", "proxy_on_queue_ready", 2, None),
    callback("on-tick", "proxy_on_tick", 1, None),
];

/// What `on-stream-end` runs, in order, each if the module exports it
/// (`proxy_on_done` returns whether the context is done; pwchain deletes
/// it either way).
pub const STREAM_END: &[(&str, bool)] = &[
    ("proxy_on_log", false),
    ("proxy_on_done", true),
    ("proxy_on_delete", false),
];

/// How pwchain answers a hostcall a module imports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Support {
    /// pwchain provides it.
    Supported,
    /// Known, answered with `Unimplemented`.
    Unimplemented,
    /// Not known: wrapping needs `--allow-unimplemented`.
    Unknown,
}

/// Whether pwchain provides the hostcall `name`, and if not why.
pub fn support(name: &str) -> Support {
    if supported(name).is_some() || TRAPS.contains(&name) || NO_OPS.contains(&name) {
        Support::Supported
    } else if UNIMPLEMENTED.contains(&name) {
        Support::Unimplemented
    } else {
        Support::Unknown
    }
}
