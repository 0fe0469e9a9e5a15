//! Components that ship inside pwchain, so composing needs no wasm
//! toolchain. Each is built from `plugins/<name>` and committed; the test
//! suite rebuilds them and fails if a committed copy is stale.

/// The `forward` terminator (`plugins/builtins/forward`): sends the request on to its
/// authority through the host's `wasi:http/client`.
pub const FORWARD: &[u8] = include_bytes!("../../builtins/forward.wasm");

/// The forward terminator's name as a stage of the chain.
pub const FORWARD_NAME: &str = "forward";

/// Name of the forward terminator's package in graphs and WAC documents.
pub const FORWARD_PACKAGE: &str = "pwchain:forward";

/// The side-call filter (`plugins/builtins/allow-calls`) that `side-calls = { allow =
/// [...] }` puts in front of a plugin's `wasi:http/client` import.
pub const ALLOW_CALLS: &[u8] = include_bytes!("../../builtins/allow-calls.wasm");

/// Name of the side-call filter's package in graphs.
pub const ALLOW_CALLS_PACKAGE: &str = "pwchain:allow-calls";

/// The `echo` service (`plugins/builtins/echo`), which `pwchain new` writes into a
/// new project so its example chain has something to stand in front of.
pub const ECHO: &[u8] = include_bytes!("../../builtins/echo.wasm");

/// The driver of wrapped proxy-wasm modules (`plugins/builtins/legacy-driver`):
/// the handler that calls the module's callbacks and does the awaiting.
pub const LEGACY_DRIVER: &[u8] = include_bytes!("../../builtins/legacy-driver.wasm");

/// The package name of [`LEGACY_DRIVER`] in a composition.
pub const LEGACY_DRIVER_PACKAGE: &str = "pwchain:legacy-driver";

/// The state of wrapped proxy-wasm modules (`plugins/builtins/legacy-state`): what
/// their hostcalls read and write.
pub const LEGACY_STATE: &[u8] = include_bytes!("../../builtins/legacy-state.wasm");

/// The package name of [`LEGACY_STATE`] in a composition.
pub const LEGACY_STATE_PACKAGE: &str = "pwchain:legacy-state";

/// The shared data and queues of wrapped proxy-wasm modules
/// (`plugins/builtins/legacy-shared`): one instance for all of a chain's.
pub const LEGACY_SHARED: &[u8] = include_bytes!("../../builtins/legacy-shared.wasm");

/// Name of the shared data and queues' package in graphs and WAC documents.
pub const LEGACY_SHARED_PACKAGE: &str = "pwchain:legacy-shared";

/// The interface through which wrapped modules reach it.
pub const LEGACY_SHARED_INTERFACE: &str = "pwchain:proxy/legacy-shared@0.1.0";

/// The metrics wrapped modules define: exported by the built-in
/// `legacy-shared` too, or left to the host (`filter-metrics = "host"`).
pub const LEGACY_METRICS_INTERFACE: &str = "pwchain:proxy/legacy-metrics@0.1.0";

/// The driver of a run of header filters (`plugins/builtins/header-run`): a
/// middleware that hands each head to the run as plain data and rebuilds
/// what the run changed, once.
pub const HEADER_RUN: &[u8] = include_bytes!("../../builtins/header-run.wasm");

/// Name of the header-run driver's package in graphs and WAC documents.
pub const HEADER_RUN_PACKAGE: &str = "pwchain:header-run";

/// Two header filters shown as one (`plugins/builtins/header-seq`): a run
/// of N filters is N-1 of them deep.
pub const HEADER_SEQ: &[u8] = include_bytes!("../../builtins/header-seq.wasm");

/// Name of the header pair's package in graphs and WAC documents.
pub const HEADER_SEQ_PACKAGE: &str = "pwchain:header-seq";

/// The header-filter contract (`wit/filter.wit`), which `pwchain new`
/// copies into a project's `wit/deps`.
pub const FILTER_WIT: &str = include_str!("../../../../wit/filter.wit");

/// The interface a header filter exports and the driver imports.
pub const HEADER_FILTER_INTERFACE: &str = "pwchain:proxy/header-filter@0.1.0";

/// What a header pair exports.
pub const HEADER_SEQ_EXPORT: &str = HEADER_FILTER_INTERFACE;
/// What a header pair imports as the rest of its run.
pub const HEADER_SEQ_REST: &str = "rest";

/// The route match (`plugins/builtins/route-match`) that `match = { … }`
/// puts in front of a plugin: the plugin for a request that matches, the
/// stage after it for one that does not.
pub const ROUTE_MATCH: &[u8] = include_bytes!("../../builtins/route-match.wasm");

/// Name of the route match's package in graphs and WAC documents.
pub const ROUTE_MATCH_PACKAGE: &str = "pwchain:route-match";

/// What a route match imports as the way around the plugin.
pub const ROUTE_MATCH_SKIP: &str = "skip";

/// The stage timer (`plugins/builtins/stage-timer`) that `[chain]
/// stage-timing = true` puts in front of every stage: it times the stage
/// and everything after it, and reports to the chain's timing sink.
pub const STAGE_TIMER: &[u8] = include_bytes!("../../builtins/stage-timer.wasm");

/// Name of the stage timer's package in graphs and WAC documents.
pub const STAGE_TIMER_PACKAGE: &str = "pwchain:stage-timer";

/// The timing sink (`plugins/builtins/stage-timing-sink`): one per timed
/// chain; writes each request's stage times to stderr as one line.
pub const STAGE_TIMING_SINK: &[u8] = include_bytes!("../../builtins/stage-timing-sink.wasm");

/// Name of the timing sink's package in graphs and WAC documents.
pub const STAGE_TIMING_SINK_PACKAGE: &str = "pwchain:stage-timing-sink";

/// The interface through which the timers report to the sink.
pub const STAGE_TIMING_INTERFACE: &str = "pwchain:proxy/stage-timing@0.1.0";
