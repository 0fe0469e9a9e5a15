//! The adapters that make a legacy module a component: core wasm pwchain
//! writes for each module, which wit-component fuses with it the way it
//! fuses the `wasi_snapshot_preview1` adapter with a WASI module.
//!
//! - `env` gives the module its `proxy_*` hostcalls, each a call of
//!   `legacy-host` with the module's own pointers and lengths, and exports
//!   `legacy-callbacks`, each a call of the module's `proxy_on_*` export.
//! - `wasi_snapshot_preview1` (for `wasm32-wasip1` builds; `wasi_unstable`
//!   likewise) gives what Envoy gives a filter: output to the log, clocks
//!   and randomness through the same state component, and Envoy's error
//!   numbers for files and sockets.
//!
//! Adapters use the module's memory and hold no data of their own: a
//! 16-byte scratch area for results comes from the module's allocator on
//! first use, as do the buffers `legacy-host` returns (so the SDK can free
//! them as the ABI says).

use super::hostcalls::{self, Output, Slot};
use super::{FuncSig, Imported, Signatures};
use crate::error::{Error, GraphError, WrapProblem};
use std::fmt::Write;
use wit_component::StringEncoding;
use wit_parser::Resolve;

const HOST: &str = "pwchain:proxy/legacy-host@0.1.0";
const CALLBACKS: &str = "pwchain:proxy/legacy-callbacks@0.1.0";

/// WASI errno values.
const ENOSYS: i32 = 52;
const EBADF: i32 = 8;
const ENOENT: i32 = 44;
const ENOTDIR: i32 = 20;
const ENOTSUP: i32 = 58;

/// The module with both adapters applied, as a component exporting
/// `legacy-callbacks` and importing `legacy-host`.
pub fn fuse(
    name: &str,
    module: &[u8],
    signatures: &Signatures,
    allocator: &str,
) -> Result<Vec<u8>, Error> {
    let resolve =
        super::legacy_resolve().map_err(|e| GraphError::generated("the legacy WIT", e))?;
    let env = adapter(
        &resolve,
        "legacy-plugin",
        &env_adapter(signatures, allocator)?,
    )?;
    let mut encoder = wit_component::ComponentEncoder::default();
    encoder
        .module(module)
        .map_err(|e| Error::wrap(name, WrapProblem::NotComponentizable(e)))?;
    encoder
        .adapter("env", &env)
        .map_err(|e| GraphError::generated("the env adapter", e))?;
    for module in ["wasi_snapshot_preview1", "wasi_unstable"] {
        if signatures.imports.iter().any(|i| i.module == module) {
            let wasi = adapter(
                &resolve,
                "legacy-wasi",
                &wasi_adapter(signatures, allocator, module)?,
            )?;
            encoder
                .adapter(module, &wasi)
                .map_err(|e| GraphError::generated(format!("the {module} adapter"), e))?;
        }
    }
    encoder
        .validate(true)
        .encode()
        .map_err(|e| Error::wrap(name, WrapProblem::NotComponentizable(e)))
}

pub(super) fn is_wasi(module: &str) -> bool {
    matches!(module, "wasi_snapshot_preview1" | "wasi_unstable")
}

/// `core` (WAT) with the component metadata of `world`.
fn adapter(resolve: &Resolve, world: &str, core: &str) -> Result<Vec<u8>, Error> {
    let package = resolve
        .packages
        .iter()
        .find(|(_, p)| p.name.namespace == "pwchain" && p.name.name == "proxy")
        .map(|(id, _)| id)
        .ok_or_else(|| GraphError::generated(world, "no pwchain:proxy package"))?;
    let world = resolve
        .select_world(&[package], Some(world))
        .map_err(|e| GraphError::generated(world, e))?;
    let mut module = wat::parse_str(core).map_err(|e| GraphError::generated("an adapter", e))?;
    wit_component::embed_component_metadata(&mut module, resolve, world, StringEncoding::UTF8)
        .map_err(|e| GraphError::generated("an adapter", e))?;
    Ok(module)
}

/// An adapter's text: WAT wants every import before any definition.
struct Wat {
    imports: String,
    definitions: String,
}

impl Wat {
    /// What every adapter starts with: the module's memory and allocator,
    /// the scratch area, and the realloc wit-component lowers returned
    /// lists with.
    fn new(allocator: &str) -> Wat {
        Wat {
            imports: format!(
                r#"  (import "env" "memory" (memory 0))
  (import "__main_module__" "{allocator}" (func $alloc (param i32) (result i32)))
"#
            ),
            definitions: r#"  (global $scratch (mut i32) (i32.const 0))
  (func $scratch (result i32)
    (if (i32.eqz (global.get $scratch))
      ;; 16 bytes, aligned to 8 whatever the allocator's alignment.
      (then (global.set $scratch
        (i32.and (i32.add (call $alloc (i32.const 24)) (i32.const 7)) (i32.const -8)))))
    (global.get $scratch))
  ;; An empty list needs no memory, and some allocators fail on 0 (the Go
  ;; SDK's panics): it gets a pointer at its alignment instead.
  (func (export "cabi_import_realloc") (param i32 i32 i32 i32) (result i32)
    (if (i32.eqz (local.get 3)) (then (return (local.get 2))))
    (call $alloc (local.get 3)))
"#
            .to_string(),
        }
    }

    fn finish(self) -> String {
        format!("(module\n{}{})\n", self.imports, self.definitions)
    }
}

/// A function of the module's exact type that answers `status` (or traps
/// if it returns nothing).
fn stub(import: &Imported, status: i32) -> String {
    let body = match import.results.as_slice() {
        [] => "unreachable".to_string(),
        [ty] => format!("({ty}.const {status})"),
        more => format!("unreachable (; {} results ;)", more.len()),
    };
    format!(
        "  (func (export \"{}\") {} {})\n",
        import.name,
        import.signature(),
        body
    )
}

fn env_adapter(signatures: &Signatures, allocator: &str) -> Result<String, Error> {
    let mut wat = Wat::new(allocator);
    let body = &mut wat.definitions;
    for import in signatures.imports.iter().filter(|i| i.module == "env") {
        match hostcalls::supported(&import.name) {
            Some(call) => {
                let _ = writeln!(
                    wat.imports,
                    "  (import \"{HOST}\" \"{}\" (func $h_{} {}))",
                    call.function,
                    call.name,
                    host_signature(call).signature()
                );
                let args: String = (0..call.inputs.len())
                    .map(|i| format!("(local.get {i}) "))
                    .collect();
                let _ = writeln!(
                    body,
                    "  (func (export \"{}\") {} (local $r i32)",
                    import.name,
                    import.signature()
                );
                if call.output == Output::Status {
                    let _ = writeln!(body, "    (call $h_{} {args}))", call.name);
                    continue;
                }
                let (slots, error) = call.output.layout();
                let _ = writeln!(
                    body,
                    "    (call $h_{} {args}(local.tee $r (call $scratch)))",
                    call.name
                );
                let _ = writeln!(
                    body,
                    "    (if (i32.load8_u (local.get $r)) (then (return (i32.load offset={error} (local.get $r)))))"
                );
                for (i, slot) in slots.iter().enumerate() {
                    let out = call.inputs.len() + i;
                    let store = match slot {
                        Slot::I32(at) => format!(
                            "(i32.store (local.get {out}) (i32.load offset={at} (local.get $r)))"
                        ),
                        Slot::I64(at) => format!(
                            "(i64.store (local.get {out}) (i64.load offset={at} (local.get $r)))"
                        ),
                        Slot::Pointer(at, len) => format!(
                            "(i32.store (local.get {out}) (select (i32.load offset={at} (local.get $r)) (i32.const 0) (i32.load offset={len} (local.get $r))))"
                        ),
                    };
                    let _ = writeln!(body, "    {store}");
                }
                let _ = writeln!(body, "    (i32.const 0))");
            }
            None if hostcalls::NO_OPS.contains(&import.name.as_str())
                && import.results.is_empty() =>
            {
                let _ = writeln!(
                    body,
                    "  (func (export \"{}\") {})",
                    import.name,
                    import.signature()
                );
            }
            None => body.push_str(&stub(import, hostcalls::UNIMPLEMENTED_STATUS)),
        }
    }
    callbacks(signatures, &mut wat);
    Ok(wat.finish())
}

/// The core type of `legacy-host`'s function for `call`: its inputs, then
/// a return pointer unless it returns only a status.
fn host_signature(call: &hostcalls::Hostcall) -> Imported {
    let mut params: Vec<&str> = call.inputs.iter().map(|i| i.wat()).collect();
    let mut results = Vec::new();
    match call.output {
        Output::Status => results.push("i32"),
        _ => params.push("i32"),
    }
    Imported {
        module: HOST.into(),
        name: call.function.into(),
        params,
        results,
    }
}

/// `legacy-callbacks`, each calling the module's export if it has one with
/// the ABI's type, else answering the ABI's default.
fn callbacks(signatures: &Signatures, wat: &mut Wat) {
    for callback in hostcalls::CALLBACKS {
        let params = vec!["i32"; callback.params].join(" ");
        let result = if callback.default.is_some() {
            "(result i32)"
        } else {
            ""
        };
        let found = signatures.exports.get(callback.export).is_some_and(|ty| {
            ty.params.len() == callback.params
                && ty.params.iter().all(|p| *p == "i32")
                && ty.results.len() == usize::from(callback.default.is_some())
        });
        let body = if found {
            let _ = writeln!(
                wat.imports,
                "  (import \"__main_module__\" \"{0}\" (func ${0} (param {params}) {result}))",
                callback.export
            );
            let args: String = (0..callback.params)
                .map(|i| format!("(local.get {i}) "))
                .collect();
            format!("(call ${} {args})", callback.export)
        } else {
            callback
                .default
                .map(|d| format!("(i32.const {d})"))
                .unwrap_or_default()
        };
        let _ = writeln!(
            wat.definitions,
            "  (func (export \"{CALLBACKS}#{}\") (param {params}) {result} {body})",
            callback.function
        );
    }
    let mut end = String::new();
    for (export, returns) in hostcalls::STREAM_END {
        let expected = FuncSig {
            params: vec!["i32"],
            results: if *returns { vec!["i32"] } else { vec![] },
        };
        if signatures.exports.get(*export) == Some(&expected) {
            let result = if *returns { "(result i32)" } else { "" };
            let _ = writeln!(
                wat.imports,
                "  (import \"__main_module__\" \"{export}\" (func ${export} (param i32) {result}))"
            );
            let call = format!("(call ${export} (local.get 0))");
            end.push_str(&if *returns {
                format!("(drop {call}) ")
            } else {
                format!("{call} ")
            });
        }
    }
    let _ = writeln!(
        wat.definitions,
        "  (func (export \"{CALLBACKS}#on-stream-end\") (param i32) {end})"
    );
    let main = signatures
        .exports
        .get("main")
        .is_some_and(|ty| ty.params == ["i32", "i32"] && ty.results == ["i32"]);
    let command = !signatures.exports.contains_key("_initialize")
        && signatures
            .exports
            .get("_start")
            .is_some_and(|ty| ty.params.is_empty() && ty.results.is_empty());
    let start = if main {
        wat.imports.push_str(
            "  (import \"__main_module__\" \"main\" (func $main (param i32 i32) (result i32)))\n",
        );
        "(drop (call $main (i32.const 0) (i32.const 0)))"
    } else if command {
        wat.imports
            .push_str("  (import \"__main_module__\" \"_start\" (func $start))\n");
        "(call $start)"
    } else {
        ""
    };
    let _ = writeln!(
        wat.definitions,
        "  (func (export \"{CALLBACKS}#start\") {start})"
    );
}

/// The WASI preview1 functions a proxy-wasm host gives a filter, as
/// Envoy's (proxy-wasm-cpp-host `src/exports.cc`): output to the log,
/// clocks, randomness, an empty environment, and for the rest the error
/// numbers Envoy answers (no files, no sockets). Each is
/// `(name, body)`; a body of `None` is written per function below.
const WASI: &[(&str, Option<i32>)] = &[
    ("fd_write", None),
    ("clock_time_get", None),
    ("clock_res_get", None),
    ("random_get", None),
    ("poll_oneoff", None),
    ("fd_fdstat_get", None),
    ("environ_sizes_get", None),
    ("args_sizes_get", None),
    ("environ_get", Some(0)),
    ("args_get", Some(0)),
    ("sched_yield", Some(0)),
    ("proc_exit", None),
    ("fd_close", Some(0)),
    ("fd_seek", Some(0)),
    ("fd_advise", Some(0)),
    ("fd_read", Some(ENOSYS)),
    ("fd_pread", Some(ENOSYS)),
    ("fd_prestat_get", Some(EBADF)),
    ("fd_prestat_dir_name", Some(ENOSYS)),
    ("fd_filestat_get", Some(EBADF)),
    ("fd_fdstat_set_flags", Some(ENOSYS)),
    ("fd_allocate", None),
    ("fd_datasync", None),
    ("fd_sync", None),
    ("fd_fdstat_set_rights", None),
    ("fd_filestat_set_size", None),
    ("fd_filestat_set_times", None),
    ("fd_pwrite", Some(EBADF)),
    ("fd_readdir", Some(ENOTDIR)),
    ("fd_renumber", Some(ENOTSUP)),
    ("fd_tell", None),
    ("path_open", Some(ENOENT)),
    ("path_filestat_get", Some(ENOTSUP)),
    ("path_create_directory", Some(ENOTSUP)),
    ("path_filestat_set_times", Some(ENOTSUP)),
    ("path_link", Some(ENOTSUP)),
    ("path_readlink", Some(ENOTSUP)),
    ("path_remove_directory", Some(ENOTSUP)),
    ("path_rename", Some(ENOTSUP)),
    ("path_symlink", Some(ENOTSUP)),
    ("path_unlink_file", Some(ENOTSUP)),
    ("sock_accept", Some(ENOTSUP)),
    ("sock_recv", Some(ENOTSUP)),
    ("sock_send", Some(ENOTSUP)),
    ("sock_shutdown", Some(ENOTSUP)),
];

/// Whether pwchain gives a module the preview1 function `name`, as Envoy
/// does.
pub fn wasi_provided(name: &str) -> bool {
    WASI.iter().any(|(n, _)| *n == name)
}

/// The adapter for the preview1 imports of `module` (`wasi_snapshot_preview1`,
/// or `wasi_unstable`, its pre-snapshot name, which AssemblyScript builds
/// import and Envoy accepts). It never calls the module's allocator: a Go
/// runtime reads clocks and randomness inside `_initialize`, before its
/// allocator can run.
fn wasi_adapter(signatures: &Signatures, allocator: &str, module: &str) -> Result<String, Error> {
    let mut wat = Wat::new(allocator);
    let _ = writeln!(
        wat.imports,
        r#"  (import "{HOST}" "write" (func $write (param i32 i32 i32) (result i32)))
  (import "{HOST}" "random" (func $random (result i64)))
  (import "{HOST}" "clock-now" (func $clock_now (param i32) (result i64)))"#
    );
    // Functions that act on stdout and stderr only, as in Envoy.
    let stdio =
        "(if (i32.or (i32.eq (local.get 0) (i32.const 1)) (i32.eq (local.get 0) (i32.const 2)))
      (then (return (i32.const 0))))
    (i32.const 8)";
    for import in signatures.imports.iter().filter(|i| i.module == module) {
        let body = match (import.name.as_str(), import.signature().as_str()) {
            ("fd_write", "(param i32 i32 i32 i32) (result i32)") => Some(
                "(local $i i32) (local $n i32) (local $e i32) (local $len i32)
    (block $out (loop $next
      (br_if $out (i32.ge_u (local.get $i) (local.get 2)))
      (local.set $len (i32.load offset=4 (i32.add (local.get 1) (i32.shl (local.get $i) (i32.const 3)))))
      (local.set $e (call $write (local.get 0)
        (i32.load (i32.add (local.get 1) (i32.shl (local.get $i) (i32.const 3))))
        (local.get $len)))
      (if (local.get $e) (then (return (local.get $e))))
      (local.set $n (i32.add (local.get $n) (local.get $len)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $next)))
    (i32.store (local.get 3) (local.get $n))
    (i32.const 0)"
                    .to_string(),
            ),
            ("environ_sizes_get" | "args_sizes_get", "(param i32 i32) (result i32)") => Some(
                "(i32.store (local.get 0) (i32.const 0)) (i32.store (local.get 1) (i32.const 0)) (i32.const 0)".into(),
            ),
            ("proc_exit", "(param i32)") => Some("unreachable".into()),
            // Realtime (0) and monotonic (1); the CPU-time clocks are not
            // supported, as in Envoy.
            ("clock_time_get", "(param i32 i64 i32) (result i32)") => Some(format!(
                "(if (i32.gt_u (local.get 0) (i32.const 1)) (then (return (i32.const {ENOTSUP}))))
    (i64.store (local.get 2) (call $clock_now (local.get 0)))
    (i32.const 0)"
            )),
            ("clock_res_get", "(param i32 i32) (result i32)") => Some(format!(
                "(if (i32.gt_u (local.get 0) (i32.const 1)) (then (return (i32.const {ENOTSUP}))))
    (i64.store (local.get 1) (i64.const 1))
    (i32.const 0)"
            )),
            ("random_get", "(param i32 i32) (result i32)") => Some(
                "(local $i i32)
    (block $out (loop $next
      (br_if $out (i32.ge_u (local.get $i) (local.get 1)))
      (i64.store8 (i32.add (local.get 0) (local.get $i)) (call $random))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $next)))
    (i32.const 0)"
                    .into(),
            ),
            // Nothing to wait for: no events, at once, as Envoy answers (a
            // Go runtime sleeps and yields through it and wants success).
            ("poll_oneoff", "(param i32 i32 i32 i32) (result i32)") => {
                Some("(i32.store (local.get 3) (i32.const 0)) (i32.const 0)".into())
            }
            // stdout and stderr, writable, of no particular file type.
            ("fd_fdstat_get", "(param i32 i32) (result i32)") => Some(
                "(if (i32.or (i32.eq (local.get 0) (i32.const 1)) (i32.eq (local.get 0) (i32.const 2)))
      (then
        (i64.store (local.get 1) (i64.const 0))
        (i64.store offset=8 (local.get 1) (i64.const 64))
        (i64.store offset=16 (local.get 1) (i64.const 0))
        (return (i32.const 0))))
    (i32.const 8)"
                    .into(),
            ),
            ("fd_tell", "(param i32 i32) (result i32)") => Some(
                "(if (i32.or (i32.eq (local.get 0) (i32.const 1)) (i32.eq (local.get 0) (i32.const 2)))
      (then (i64.store (local.get 1) (i64.const 0)) (return (i32.const 0))))
    (i32.const 8)"
                    .into(),
            ),
            (
                "fd_allocate" | "fd_datasync" | "fd_sync" | "fd_fdstat_set_rights"
                | "fd_filestat_set_size" | "fd_filestat_set_times",
                _,
            ) if import.results == ["i32"] && import.params.first() == Some(&"i32") => {
                Some(stdio.into())
            }
            _ => None,
        };
        match body {
            Some(body) => {
                let _ = writeln!(
                    wat.definitions,
                    "  (func (export \"{}\") {}\n    {body})",
                    import.name,
                    import.signature()
                );
            }
            None => {
                let status = WASI
                    .iter()
                    .find(|(n, _)| *n == import.name)
                    .and_then(|(_, status)| *status)
                    .unwrap_or(ENOSYS);
                wat.definitions.push_str(&stub(import, status));
            }
        }
    }
    Ok(wat.finish())
}
