//! Components pwchain writes while it composes, one per plugin that needs
//! one: a `wasi:config/store` that holds exactly that plugin's entries, and
//! a `wasi:http/client` that refuses every call. Each is a few hundred bytes
//! of hand-written core wasm wrapped by wit-component around the
//! interface's own WIT, so the user needs no toolchain and nothing is
//! downloaded.

use crate::error::{Error, GraphError};
use wit_component::{ComponentEncoder, StringEncoding};
use wit_parser::{Resolve, SizeAlign, Type, TypeDefKind};

/// The WASI WIT pwchain was built against (`wit/deps`), in the order their
/// packages depend on one another.
pub const WASI_WIT: [(&str, &str); 6] = [
    (
        "clocks.wit",
        include_str!("../../../../wit/deps/clocks.wit"),
    ),
    (
        "random.wit",
        include_str!("../../../../wit/deps/random.wit"),
    ),
    (
        "filesystem.wit",
        include_str!("../../../../wit/deps/filesystem.wit"),
    ),
    (
        "sockets.wit",
        include_str!("../../../../wit/deps/sockets.wit"),
    ),
    ("cli.wit", include_str!("../../../../wit/deps/cli.wit")),
    ("http.wit", include_str!("../../../../wit/deps/http.wit")),
];

/// A component exporting `wasi:config/store@{version}` whose `get` and
/// `get-all` answer from `entries` alone. `version` is whatever the plugin
/// imports: the store's shape is the same in every published version.
pub fn config_store(version: &str, entries: &[(String, String)]) -> Result<Vec<u8>, Error> {
    let wit = format!(
        "package wasi:config@{version};
        interface store {{
            variant error {{ upstream(string), io(string) }}
            get: func(key: string) -> result<option<string>, error>;
            get-all: func() -> result<list<tuple<string, string>>, error>;
        }}
        world provider {{ export store; }}"
    );
    let interface = format!("wasi:config/store@{version}");
    // Memory: a 16-byte return area at 0, then the entry table (for each
    // entry the pointer and length of its key and of its value: the layout
    // of `list<tuple<string, string>>`), then the strings, then scratch
    // space for the key a caller passes in.
    const TABLE: usize = 16;
    let strings = TABLE + 16 * entries.len();
    let mut data = vec![0u8; strings];
    for (i, (key, value)) in entries.iter().enumerate() {
        for (j, text) in [key, value].into_iter().enumerate() {
            let at = TABLE + 16 * i + 8 * j;
            let start = data.len() as u32;
            data[at..at + 4].copy_from_slice(&start.to_le_bytes());
            data[at + 4..at + 8].copy_from_slice(&(text.len() as u32).to_le_bytes());
            data.extend_from_slice(text.as_bytes());
        }
    }
    let scratch = data.len().next_multiple_of(8);
    let end = TABLE + 16 * entries.len();
    let n = entries.len();
    let core = format!(
        r#"(module
  (memory (export "memory") {pages})
  (data (i32.const 0) "{data}")
  ;; The only allocation a caller makes is the key of one `get`: hand out
  ;; the scratch space, grown to fit.
  (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32)
    (local $need i32)
    (local.set $need (i32.add (i32.const {scratch}) (local.get 3)))
    (if (i32.gt_u (local.get $need) (i32.shl (memory.size) (i32.const 16)))
      (then
        (if (i32.eq
              (memory.grow (i32.sub
                (i32.shr_u (i32.add (local.get $need) (i32.const 65535)) (i32.const 16))
                (memory.size)))
              (i32.const -1))
          (then unreachable))))
    (i32.const {scratch}))
  (func $same (param $a i32) (param $b i32) (param $n i32) (result i32)
    (block $differ
      (loop $byte
        (if (i32.eqz (local.get $n)) (then (return (i32.const 1))))
        (br_if $differ (i32.ne (i32.load8_u (local.get $a)) (i32.load8_u (local.get $b))))
        (local.set $a (i32.add (local.get $a) (i32.const 1)))
        (local.set $b (i32.add (local.get $b) (i32.const 1)))
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (br $byte)))
    (i32.const 0))
  ;; result<option<string>, error>: tag at 0, option tag at 4, string at 8.
  (func (export "{interface}#get") (param $key i32) (param $len i32) (result i32)
    (local $e i32)
    (i32.store8 (i32.const 0) (i32.const 0))
    (i32.store8 (i32.const 4) (i32.const 0))
    (local.set $e (i32.const {TABLE}))
    (block $absent
      (loop $entry
        (br_if $absent (i32.ge_u (local.get $e) (i32.const {end})))
        (if (i32.and
              (i32.eq (i32.load offset=4 (local.get $e)) (local.get $len))
              (call $same (i32.load (local.get $e)) (local.get $key) (local.get $len)))
          (then
            (i32.store8 (i32.const 4) (i32.const 1))
            (i32.store (i32.const 8) (i32.load offset=8 (local.get $e)))
            (i32.store (i32.const 12) (i32.load offset=12 (local.get $e)))
            (return (i32.const 0))))
        (local.set $e (i32.add (local.get $e) (i32.const 16)))
        (br $entry)))
    (i32.const 0))
  ;; result<list<…>, error>: tag at 0, list at 4.
  (func (export "{interface}#get-all") (result i32)
    (i32.store8 (i32.const 0) (i32.const 0))
    (i32.store (i32.const 4) (i32.const {TABLE}))
    (i32.store (i32.const 8) (i32.const {n}))
    (i32.const 0))
)"#,
        pages = (scratch + 1).div_ceil(65536),
        data = wat_bytes(&data),
    );
    let mut resolve = Resolve::default();
    let package = resolve
        .push_str("config.wit", &wit)
        .map_err(|e| GraphError::generated("the config store", e))?;
    encode(resolve, package, "provider", &core, "the config store")
}

/// A component exporting `client` (`wasi:http/client@0.3.x`, as the plugin
/// imports it) whose `send` drops the request and fails with
/// `HTTP-request-denied`.
pub fn deny_calls(client: &str) -> Result<Vec<u8>, Error> {
    let version = client
        .rsplit_once('@')
        .map(|(_, v)| v)
        .filter(|v| *v == http_version())
        .ok_or_else(|| GraphError::SideCallVersion {
            expected: format!("wasi:http/client@{}", http_version()),
            found: client.to_string(),
        })?;
    let (mut resolve, _) =
        wasi_resolve().map_err(|e| GraphError::generated("the side-call denial", e))?;
    let package = resolve
        .push_str(
            "deny.wit",
            &format!(
                "package pwchain:deny-calls; world deny {{ export wasi:http/client@{version}; }}"
            ),
        )
        .map_err(|e| GraphError::generated("the side-call denial", e))?;

    // Where `send`'s result<response, error-code> puts the error's tag,
    // and the tag of `HTTP-request-denied`.
    let mut sizes = SizeAlign::default();
    sizes.fill(&resolve);
    let unlike = |what: &str| GraphError::generated("the side-call denial", what.to_string());
    let send = http_function(&resolve, "client", "send")
        .ok_or_else(|| unlike("wasi:http lacks `client.send`"))?;
    let Some(Type::Id(result)) = send.result else {
        return Err(unlike("`send` returns no result").into());
    };
    let TypeDefKind::Result(result) = &resolve.types[result].kind else {
        return Err(unlike("`send` does not return a result").into());
    };
    let Some(Type::Id(mut error_code)) = result.err else {
        return Err(unlike("`send` has no error type").into());
    };
    // `use`d into the interface: an alias of the definition in `types`.
    while let TypeDefKind::Type(Type::Id(aliased)) = resolve.types[error_code].kind {
        error_code = aliased;
    }
    let TypeDefKind::Variant(variant) = &resolve.types[error_code].kind else {
        return Err(unlike("`error-code` is not a variant").into());
    };
    let denied = variant
        .cases
        .iter()
        .position(|c| c.name == "HTTP-request-denied")
        .ok_or_else(|| unlike("`error-code` lacks `HTTP-request-denied`"))?;
    let error_at = sizes
        .payload_offset(
            wit_parser::Int::U8,
            [result.ok.as_ref(), result.err.as_ref()],
        )
        .size_wasm32();
    let core = format!(
        r#"(module
  (import "wasi:http/types@{version}" "[resource-drop]request" (func $drop (param i32)))
  (memory (export "memory") 1)
  ;; result<response, error-code>: tag 1 (error) at 0, the error's tag at {error_at}.
  (func (export "wasi:http/client@{version}#send") (param $request i32) (result i32)
    (call $drop (local.get $request))
    (i32.store8 (i32.const 0) (i32.const 1))
    (i32.store8 (i32.const {error_at}) (i32.const {denied}))
    (i32.const 0))
)"#
    );
    encode(resolve, package, "deny", &core, "the side-call denial")
}

/// The `wasi:http` version pwchain's WIT carries.
pub fn http_version() -> &'static str {
    WASI_WIT[5]
        .1
        .lines()
        .find_map(|l| l.strip_prefix("package wasi:http@")?.strip_suffix(';'))
        .unwrap_or("0.3.2")
}

/// The WASI WIT pwchain carries, loaded; the package id is `wasi:http`'s.
pub fn wasi_resolve() -> anyhow::Result<(Resolve, wit_parser::PackageId)> {
    let mut resolve = Resolve::default();
    let mut http = None;
    for (name, text) in WASI_WIT {
        http = Some(resolve.push_str(name, text)?);
    }
    let http = http.ok_or_else(|| anyhow::anyhow!("no WASI WIT"))?;
    Ok((resolve, http))
}

/// Function `name` of interface `interface` of `wasi:http`.
pub fn http_function<'a>(
    resolve: &'a Resolve,
    interface: &str,
    name: &str,
) -> Option<&'a wit_parser::Function> {
    resolve
        .interfaces
        .iter()
        .find(|(_, i)| {
            i.name.as_deref() == Some(interface)
                && i.package
                    .is_some_and(|p| resolve.packages[p].name.name == "http")
        })
        .and_then(|(_, i)| i.functions.get(name))
}

/// Wraps the core module `core` (WAT) as a component of `world` in
/// `package`; `what` names it in errors.
pub fn encode(
    resolve: Resolve,
    package: wit_parser::PackageId,
    world: &str,
    core: &str,
    what: &str,
) -> Result<Vec<u8>, Error> {
    let world = resolve
        .select_world(&[package], Some(world))
        .map_err(|e| GraphError::generated(what, e))?;
    let mut module = wat::parse_str(core).map_err(|e| GraphError::generated(what, e))?;
    wit_component::embed_component_metadata(&mut module, &resolve, world, StringEncoding::UTF8)
        .map_err(|e| GraphError::generated(what, e))?;
    ComponentEncoder::default()
        .module(&module)
        .and_then(|encoder| encoder.validate(true).encode())
        .map_err(|e| GraphError::generated(what, e).into())
}

/// `bytes` as a WAT string literal's contents.
fn wat_bytes(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("\\{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_providers_are_valid_components() {
        for version in ["0.2.0-rc.1", "0.2.0-draft"] {
            let store = config_store(
                version,
                &[("a".into(), "1".into()), ("key".into(), "value".into())],
            )
            .unwrap();
            let info = crate::inspect(&store, std::path::Path::new("store.wasm")).unwrap();
            assert_eq!(
                info.other_exports,
                [format!("wasi:config/store@{version}")],
                "{info:?}"
            );
            assert!(info.host_imports.is_empty(), "{info:?}");
        }
        let deny = deny_calls(&format!("wasi:http/client@{}", http_version())).unwrap();
        let info = crate::inspect(&deny, std::path::Path::new("deny.wasm")).unwrap();
        assert_eq!(
            info.other_exports,
            [format!("wasi:http/client@{}", http_version())]
        );
    }
}
