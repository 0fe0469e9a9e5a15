//! Why a legacy proxy-wasm module cannot be wrapped.

/// Why a core module's imports and exports cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ModuleError {
    /// The bytes do not parse.
    #[error(transparent)]
    Parse(#[from] wasmparser::BinaryReaderError),
    /// A function whose type index names another kind of type.
    #[error("type {0} is not a function type")]
    NotFunctionType(u32),
    /// A function export whose index names no function.
    #[error("export `{0}` has no function")]
    NoFunction(String),
}

/// Why `wrap` refuses a module.
#[derive(Debug, thiserror::Error)]
pub enum WrapProblem {
    /// A component was given.
    #[error("it is a component, not a core module")]
    IsComponent,
    /// Bytes that do not parse.
    #[error("it is not valid WebAssembly: {0}")]
    Invalid(#[from] ModuleError),
    /// A core module without the proxy-wasm marker.
    #[error("it is not a proxy-wasm module: it exports no `proxy_abi_version_*` marker")]
    NotProxyWasm,
    /// An ABI other than 0.2.x.
    #[error("it targets proxy-wasm ABI {abi}; pwchain runs ABI 0.2.x")]
    OldAbi {
        /// The ABI its marker names.
        abi: String,
    },
    /// No way for the host to hand it buffers.
    #[error(
        "it exports neither `proxy_on_memory_allocate` nor `malloc`, so the host cannot hand it buffers"
    )]
    NoAllocator,
    /// An import from a module no proxy-wasm host provides.
    #[error("it imports `{import}`, which no proxy-wasm host provides")]
    ForeignImport {
        /// `module.name`.
        import: String,
    },
    /// A hostcall imported with another type than the ABI's.
    #[error("its import `env.{name}` has type `{found}`; ABI 0.2.1 says `{expected}`")]
    HostcallType {
        /// The hostcall.
        name: String,
        /// Its type in the module.
        found: String,
        /// Its type in the ABI.
        expected: String,
    },
    /// Imports pwchain does not provide, without `--allow-unimplemented`.
    #[error(
        "it imports {} pwchain does not provide: {}",
        if unknown.len() == 1 { "a function" } else { "functions" },
        unknown.join(", ")
    )]
    Unimplemented {
        /// `module.name` of each.
        unknown: Vec<String>,
    },
    /// wit-component cannot make the module a component.
    #[error("the module cannot be made a component: {0:#}")]
    NotComponentizable(anyhow::Error),
    /// A wrapped component whose bytes cannot be read back.
    #[error("the wrapped component is damaged: {0}")]
    Damaged(wasmparser::BinaryReaderError),
}

impl WrapProblem {
    /// What to do about it.
    pub fn help(&self) -> Option<&'static str> {
        Some(match self {
            WrapProblem::IsComponent => {
                "a component plugin goes in a chain as it is (`path = ...`); `wrap` takes the core module a proxy-wasm SDK builds"
            }
            WrapProblem::NotProxyWasm => {
                "build it with a proxy-wasm SDK (Rust `proxy-wasm`, C++, Go, AssemblyScript)"
            }
            WrapProblem::OldAbi { .. } => {
                "rebuild it with an SDK release for ABI 0.2.1 (proxy-wasm-rust-sdk 0.2, proxy-wasm-cpp-sdk since 2021)"
            }
            WrapProblem::Unimplemented { .. } => {
                "pass --allow-unimplemented to wrap it anyway; those calls then answer `Unimplemented` (hostcalls) or `ENOSYS` (WASI), or trap if they return nothing"
            }
            _ => return None,
        })
    }
}
