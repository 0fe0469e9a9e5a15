//! How results look: `Display` for people, `Serialize` for `--json`.

use pwchain_compose::proxy_wasm::LegacyModule;
use pwchain_compose::proxy_wasm::hostcalls::{self, Support};
use pwchain_compose::{ChainRecord, Fetched, Inspection, Step};
use pwchain_host::Validation;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt;

#[derive(Serialize)]
pub struct ComposeSummary {
    pub output: String,
    pub bytes: usize,
    /// Total size of the input components (TOML chains only).
    pub input_bytes: Option<usize>,
    pub millis: f64,
    pub chain: Option<ChainRecord>,
    /// How each registry-sourced plugin resolved (lock, cache or registry).
    pub resolved: Vec<Step>,
}

impl fmt::Display for ComposeSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.chain {
            Some(chain) => write!(f, "composed `{}` ({}) ", chain.name, stages(chain))?,
            None => write!(f, "composed ")?,
        }
        write!(f, "into {}: {}", self.output, kib(self.bytes))?;
        if let Some(inputs) = self.input_bytes.filter(|i| *i > 0) {
            write!(f, ", {:.3}x the inputs", self.bytes as f64 / inputs as f64)?;
        }
        write!(f, ", in {:.0} ms", self.millis)?;
        for step in &self.resolved {
            let from = match (step.from, step.pinned) {
                (Fetched::Cache, true) => "cache, pinned by the lock",
                (Fetched::Cache, false) => "cache",
                (Fetched::Registry, true) => "registry, pinned by the lock",
                (Fetched::Registry, false) => "registry",
            };
            write!(
                f,
                "\n  {} = {} ({}, from the {from})",
                step.locked.name, step.locked.resolved, step.locked.manifest
            )?;
            if let Some(verified) = &step.locked.verified {
                write!(f, ", signed by {} ({})", verified.key_file, verified.key)?;
            }
        }
        Ok(())
    }
}

pub fn kib(bytes: usize) -> String {
    format!("{:.1} KiB", bytes as f64 / 1024.0)
}

fn stages(chain: &ChainRecord) -> String {
    let mut names: Vec<&str> = chain.plugins.iter().map(|p| p.name.as_str()).collect();
    let upstream;
    match (chain.origin.as_str(), &chain.upstream) {
        ("upstream", Some(url)) => {
            upstream = format!("upstream {url}");
            names.push(&upstream);
        }
        ("forward" | "host", _) => names.push(&chain.origin),
        _ => {}
    }
    names.join(" → ")
}

#[derive(Serialize)]
pub struct InspectReport {
    pub file: String,
    pub bytes: usize,
    pub digest: String,
    #[serde(flatten)]
    pub info: Inspection,
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "—".into()
    } else {
        items.join("\n             ")
    }
}

impl fmt::Display for InspectReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let info = &self.info;
        writeln!(
            f,
            "{}: {} component, {}",
            self.file,
            info.role,
            kib(self.bytes)
        )?;
        writeln!(f, "  digest     {}", self.digest)?;
        match (&info.entry, info.lifted) {
            (Some(entry), Some(lifted)) => writeln!(f, "  entry      {entry} (lifted {lifted})")?,
            (entry, _) => writeln!(f, "  entry      {}", entry.as_deref().unwrap_or("—"))?,
        }
        match (&info.next_hop, &info.filter) {
            (Some(hop), _) => writeln!(f, "  next hop   {} ({:?} form)", hop.import, hop.form)?,
            (None, Some(filter)) => writeln!(
                f,
                "  filter     {filter} (a header filter: in a chain, consecutive ones share one built-in driver)"
            )?,
            (None, None) => writeln!(f, "  next hop   — (a service: it can only stand last)")?,
        }
        writeln!(f, "  side calls {}", list(&info.side_calls))?;
        writeln!(f, "  host       {}", list(&info.host_imports))?;
        for note in &info.notes {
            writeln!(f, "  note       {note}")?;
        }
        if !info.other_exports.is_empty() {
            writeln!(f, "  exports    {}", list(&info.other_exports))?;
        }
        let wasi: Vec<String> = info
            .wasi
            .iter()
            .map(|(package, versions)| {
                format!(
                    "{package} {}",
                    versions.iter().cloned().collect::<Vec<_>>().join(", ")
                )
            })
            .collect();
        writeln!(f, "  wasi       {}", list(&wasi))?;
        if let Some(wrapped) = &info.wrapped {
            writeln!(
                f,
                "  wrapped    proxy-wasm module {} (ABI {}) by pwchain {}; logs as `{}`",
                wrapped.module, wrapped.abi, wrapped.pwchain, wrapped.name
            )?;
        }
        if let Some(chain) = &info.chain {
            writeln!(
                f,
                "  chain      `{}` composed by pwchain {}: {}",
                chain.name,
                chain.pwchain,
                stages(chain)
            )?;
            for stage in &chain.plugins {
                let lifted = stage.lifted.map(|l| l.to_string()).unwrap_or_default();
                writeln!(
                    f,
                    "             {:<14} {:<13} {:<5} {} {}",
                    stage.name, stage.role, lifted, stage.digest, stage.source
                )?;
                let config = match stage.config.as_slice() {
                    [] => String::new(),
                    keys => format!(", config: {}", keys.join(", ")),
                };
                writeln!(
                    f,
                    "             {:<14} side calls: {}{config}",
                    "", stage.side_calls
                )?;
                if let Some(run) = &stage.run {
                    let fused = match run.contains('+') {
                        true => format!("fused: the run {run} shares one driver"),
                        false => "its own driver (a run of one)".to_string(),
                    };
                    writeln!(f, "             {:<14} {fused}", "")?;
                }
                if let Some(route) = &stage.route {
                    writeln!(
                        f,
                        "             {:<14} runs only for: {route} (other requests skip it)",
                        ""
                    )?;
                }
                if let Some(verified) = &stage.verified {
                    writeln!(
                        f,
                        "             {:<14} signed by {} ({}), signature {}",
                        "", verified.key_file, verified.key, verified.signature
                    )?;
                }
            }
            if let Some(url) = &chain.upstream {
                writeln!(
                    f,
                    "             {:<14} {url}; `PWCHAIN_UPSTREAM` in the host's environment overrides it",
                    "upstream"
                )?;
                if url.starts_with("h2c://") {
                    writeln!(
                        f,
                        "             {:<14} HTTP/2 with prior knowledge: `pwchain serve` speaks it; `wasmtime serve` and Node do not know the scheme (502)",
                        ""
                    )?;
                }
            }
            if let Some(timed) = &chain.stage_timing {
                writeln!(
                    f,
                    "             {:<14} {}; each request's times go to `pwchain serve`'s `pwchain_stage_seconds`, or to stderr in other hosts",
                    "stage timing",
                    timed.join(", ")
                )?;
            }
        }
        Ok(())
    }
}

/// `inspect` of a legacy proxy-wasm module (a core module, not a component).
#[derive(Serialize)]
pub struct LegacyReport {
    pub file: String,
    pub bytes: usize,
    pub digest: String,
    pub proxy_wasm: LegacyModule,
    /// How `wrap` answers each imported hostcall (and other `env` import).
    pub support: BTreeMap<String, Support>,
    /// WASI functions it imports that pwchain (like Envoy) does not give a
    /// filter: wrapping needs `--allow-unimplemented`.
    pub wasi_unprovided: Vec<String>,
}

impl LegacyReport {
    pub fn new(file: String, bytes: &[u8], module: LegacyModule) -> LegacyReport {
        LegacyReport {
            file,
            bytes: bytes.len(),
            digest: pwchain_compose::digest(bytes),
            support: module
                .hostcalls
                .iter()
                .map(String::as_str)
                .chain(
                    module
                        .other_imports
                        .iter()
                        .filter_map(|i| i.strip_prefix("env.")),
                )
                .map(|h| (h.to_string(), hostcalls::support(h)))
                .collect(),
            wasi_unprovided: module
                .wasi
                .iter()
                .filter(|name| !pwchain_compose::proxy_wasm::wasi_provided(name))
                .cloned()
                .collect(),
            proxy_wasm: module,
        }
    }

    fn with(&self, support: Support) -> Vec<String> {
        let found = self.support.iter().filter(|(_, s)| **s == support);
        found.map(|(h, _)| h.clone()).collect()
    }
}

impl fmt::Display for LegacyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = &self.proxy_wasm;
        writeln!(
            f,
            "{}: proxy-wasm module (ABI {}), {}",
            self.file,
            m.abi,
            kib(self.bytes)
        )?;
        writeln!(f, "  digest     {}", self.digest)?;
        let target = if m.wasi.is_empty() {
            "wasm32-unknown-unknown (no WASI imports)".to_string()
        } else {
            format!(
                "wasm32-wasip1 ({}: {})",
                m.wasi_module.as_deref().unwrap_or("wasi_snapshot_preview1"),
                m.wasi.join(", ")
            )
        };
        writeln!(f, "  built for  {target}")?;
        if !self.wasi_unprovided.is_empty() {
            writeln!(
                f,
                "  wasi       not provided (as in Envoy): {}; wrapping needs --allow-unimplemented",
                self.wasi_unprovided.join(", ")
            )?;
        }
        let or_none = |o: &Option<String>| o.clone().unwrap_or_else(|| "—".into());
        writeln!(f, "  allocator  {}", or_none(&m.allocator))?;
        writeln!(f, "  start      {}", or_none(&m.start))?;
        let supported = self.with(Support::Supported);
        let unimplemented = self.with(Support::Unimplemented);
        let unknown = self.with(Support::Unknown);
        writeln!(
            f,
            "  hostcalls  {} imported: {} supported by `pwchain wrap`, {} answer Unimplemented, {} unknown",
            self.support.len(),
            supported.len(),
            unimplemented.len(),
            unknown.len()
        )?;
        writeln!(f, "  supported  {}", list(&supported))?;
        if !unimplemented.is_empty() {
            writeln!(f, "  stubbed    {}", list(&unimplemented))?;
        }
        if !unknown.is_empty() {
            writeln!(f, "  unknown    {}", list(&unknown))?;
            writeln!(
                f,
                "  note       wrapping needs --allow-unimplemented for the unknown hostcalls"
            )?;
        }
        writeln!(f, "  callbacks  {}", list(&m.callbacks))?;
        if !m.other_imports.is_empty() {
            writeln!(f, "  imports    {}", list(&m.other_imports))?;
        }
        if m.abi_supported() {
            writeln!(
                f,
                "  note       a core module, not a component: `pwchain wrap` makes it a middleware, or a chain names it with `proxy-wasm = \"...\"`"
            )
        } else {
            writeln!(
                f,
                "  note       ABI {} predates 0.2; only 0.2.x filters can be wrapped",
                m.abi
            )
        }
    }
}

/// What `pwchain wrap` wrote.
#[derive(Serialize)]
pub struct WrapReport {
    pub file: String,
    pub output: String,
    pub bytes: usize,
    pub digest: String,
    pub abi: String,
    /// Whether the component imports `wasi:http/client` (for `proxy_http_call`).
    pub side_calls: bool,
    pub unimplemented: Vec<String>,
}

impl fmt::Display for WrapReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "wrapped {} (proxy-wasm ABI {}) into {}: a middleware component, {}",
            self.file,
            self.abi,
            self.output,
            kib(self.bytes)
        )?;
        writeln!(f, "  digest     {}", self.digest)?;
        let calls = if self.side_calls {
            "through the host's wasi:http/client (proxy_http_call)"
        } else {
            "none (the module never calls proxy_http_call)"
        };
        writeln!(f, "  side calls {calls}")?;
        if !self.unimplemented.is_empty() {
            writeln!(
                f,
                "  stubbed    {} (answer Unimplemented)",
                list(&self.unimplemented)
            )?;
        }
        Ok(())
    }
}

#[derive(Serialize)]
pub struct ValidateReport {
    pub file: String,
    pub wasmtime: &'static str,
    #[serde(flatten)]
    pub validation: Validation,
}

impl fmt::Display for ValidateReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = &self.validation;
        writeln!(f, "{}: compiles with wasmtime {}", self.file, self.wasmtime)?;
        if v.service {
            writeln!(
                f,
                "  exports wasi:http/handler@0.3.x: a wasi:http 0.3 service"
            )?;
        } else {
            writeln!(
                f,
                "  exports no wasi:http/handler@0.3.x: not a wasi:http 0.3 service"
            )?;
        }
        if let Some(hop) = &v.unterminated {
            writeln!(
                f,
                "  imports `{hop}`: the chain is not terminated; `wasmtime serve` does not provide a next hop, so it needs a host that does (or compose it with `[origin] upstream = \"http://…\"`, `forward = true` or a service)"
            )?;
        }
        match &v.runs_in {
            Some(host) => writeln!(f, "  runs in    `{host}`")?,
            None => writeln!(
                f,
                "  runs in    neither `wasmtime serve` nor `wasmtime serve -Scli`"
            )?,
        }
        if v.pwchain_serve {
            let upstream = match v.unterminated {
                Some(_) => " (with `--upstream`)",
                None => "",
            };
            writeln!(f, "  runs in    `pwchain serve`{upstream}")?;
        }
        for refusal in &v.refusals {
            writeln!(f, "  `{}` refuses it: {}", refusal.host, refusal.reason)?;
        }
        Ok(())
    }
}
