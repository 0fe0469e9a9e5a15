//! `pwchain new`: a plugin project that builds and runs as generated: the
//! code of a pass-through (or an answering service) that adds one header,
//! the WIT it is generated from, a build script or manifest, and a chain
//! that composes it (with an echo service behind a middleware).

use miette::{IntoDiagnostic, WrapErr, miette};
use pwchain_compose::link::{builtins, providers::WASI_WIT};
use std::path::{Path, PathBuf};

/// The componentize-py release the Python template pins.
const COMPONENTIZE_PY: &str = "0.25.1";
/// The componentize-qjs release the JavaScript template pins (the default of
/// the installer script it carries).
const COMPONENTIZE_QJS: &str = "0.5.0";

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Lang {
    /// wit-bindgen 0.61, built with cargo for wasm32-wasip2.
    Rust,
    /// componentize-py (CPython inside), installed into a venv by build.sh.
    Python,
    /// JavaScript: componentize-qjs (QuickJS inside), installed once under
    /// ~/.cache/pwchain/tools by the generated componentize-qjs.sh.
    Js,
}

impl Lang {
    pub fn word(self) -> &'static str {
        match self {
            Lang::Rust => "Rust",
            Lang::Python => "Python",
            Lang::Js => "JavaScript",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// Calls the next hop (world `wasi:http/middleware`).
    Middleware,
    /// Answers by itself and stands last (world `wasi:http/service`).
    Service,
    /// Reads and changes heads as plain data (`pwchain:proxy/header-filter`):
    /// consecutive ones share one driver, so each costs a call, not a hop.
    HeaderFilter,
}

impl Kind {
    pub fn word(self) -> &'static str {
        match self {
            Kind::Middleware => "middleware",
            Kind::Service => "service",
            Kind::HeaderFilter => "header-filter",
        }
    }
}

/// Writes the project for plugin `name` into `dir` (default `./NAME`), which
/// must not exist or be empty; returns the directory.
pub fn scaffold(
    name: &str,
    lang: Lang,
    kind: Kind,
    dir: Option<PathBuf>,
) -> miette::Result<PathBuf> {
    check_name(name)?;
    let dir = dir.unwrap_or_else(|| PathBuf::from(name));
    if let Ok(mut entries) = std::fs::read_dir(&dir)
        && entries.next().is_some()
    {
        return Err(miette!(
            help = "choose another name or `--dir`, or empty it first",
            "`{}` exists and is not empty; pwchain new never writes over files",
            dir.display()
        ));
    }
    let crate_name = name.replace('-', "_");
    let fill = |template: &str| {
        template
            .replace("{{name}}", name)
            .replace("{{crate}}", &crate_name)
            .replace("{{kind}}", kind.word())
            .replace("{{componentize_py}}", COMPONENTIZE_PY)
            .replace("{{componentize_qjs}}", COMPONENTIZE_QJS)
            .replace(
                "{{chain_note}}",
                match kind {
                    Kind::Middleware | Kind::HeaderFilter => "puts the plugin in front of `echo.wasm`, a service that answers with the request it got",
                    Kind::Service => "serves the plugin alone",
                },
            )
    };
    let plugin_file = match lang {
        Lang::Rust => format!("target/wasm32-wasip2/release/{crate_name}.wasm"),
        Lang::Python | Lang::Js => format!("{name}.wasm"),
    };
    let world = match kind {
        Kind::Middleware | Kind::Service => format!("include wasi:http/{}@0.3.2;", kind.word()),
        Kind::HeaderFilter => format!("export {};", builtins::HEADER_FILTER_INTERFACE),
    };
    let mut files: Vec<(String, Vec<u8>)> = vec![
        (
            "wit/plugin.wit".into(),
            format!(
                "// The plugin's world: add imports here (e.g. `import wasi:config/store@0.2.0-rc.1;`).\npackage local:{name};\n\nworld plugin {{\n  {world}\n}}\n",
            )
            .into_bytes(),
        ),
        ("chain.toml".into(), chain(name, kind, &plugin_file).into_bytes()),
    ];
    for (file, text) in WASI_WIT {
        files.push((format!("wit/deps/{file}"), text.as_bytes().to_vec()));
    }
    if kind == Kind::HeaderFilter {
        files.push((
            "wit/deps/pwchain-filter.wit".into(),
            builtins::FILTER_WIT.as_bytes().to_vec(),
        ));
    }
    if kind != Kind::Service {
        files.push(("echo.wasm".into(), builtins::ECHO.to_vec()));
    }
    match lang {
        Lang::Rust => {
            let code = match kind {
                Kind::Middleware => include_str!("../templates/rust/middleware.rs"),
                Kind::Service => include_str!("../templates/rust/service.rs"),
                Kind::HeaderFilter => include_str!("../templates/rust/header-filter.rs"),
            };
            files.push((
                "Cargo.toml".into(),
                fill(include_str!("../templates/rust/Cargo.toml")).into_bytes(),
            ));
            files.push(("src/lib.rs".into(), fill(code).into_bytes()));
            files.push((
                "README.md".into(),
                fill(include_str!("../templates/rust/README.md")).into_bytes(),
            ));
            files.push((
                ".gitignore".into(),
                b"target/\n*.wasm\n!echo.wasm\n".to_vec(),
            ));
        }
        Lang::Python => {
            let code = match kind {
                Kind::Middleware => include_str!("../templates/python/app.py"),
                Kind::Service => include_str!("../templates/python/service.py"),
                Kind::HeaderFilter => include_str!("../templates/python/header_filter.py"),
            };
            files.push(("app.py".into(), fill(code).into_bytes()));
            files.push((
                "build.sh".into(),
                fill(include_str!("../templates/python/build.sh")).into_bytes(),
            ));
            files.push((
                "README.md".into(),
                fill(include_str!("../templates/python/README.md")).into_bytes(),
            ));
            files.push((
                ".gitignore".into(),
                b".venv/\n__pycache__/\n*.wasm\n!echo.wasm\n".to_vec(),
            ));
        }
        Lang::Js => {
            let code = match kind {
                Kind::Middleware => include_str!("../templates/js/app.js"),
                Kind::Service => include_str!("../templates/js/service.js"),
                Kind::HeaderFilter => include_str!("../templates/js/header-filter.js"),
            };
            files.push(("app.js".into(), fill(code).into_bytes()));
            files.push((
                "build.sh".into(),
                fill(include_str!("../templates/js/build.sh")).into_bytes(),
            ));
            // The installer the repository's own JS plugins use, so that a
            // project and the repository share one install.
            files.push((
                "componentize-qjs.sh".into(),
                include_bytes!("../../../scripts/componentize-qjs.sh").to_vec(),
            ));
            files.push((
                "README.md".into(),
                fill(include_str!("../templates/js/README.md")).into_bytes(),
            ));
            files.push((".gitignore".into(), b"*.wasm\n!echo.wasm\n".to_vec()));
        }
    }
    write_project(&dir, &files)?;
    Ok(dir)
}

fn chain(name: &str, kind: Kind, plugin_file: &str) -> String {
    let mut text = format!(
        "# Compose with `pwchain compose chain.toml -o chain.wasm`, run with `pwchain serve chain.wasm`.\n[chain]\nname = \"{name}-chain\"\n\n[[plugin]]\nname = \"{name}\"\npath = \"{plugin_file}\"\n"
    );
    if kind != Kind::Service {
        text.push_str("\n[origin]\nname = \"echo\"\npath = \"echo.wasm\"\n");
    }
    text
}

/// Writes every file into a fresh directory beside `dir`, then moves it into
/// place, so a failure leaves nothing half-made.
fn write_project(dir: &Path, files: &[(String, Vec<u8>)]) -> miette::Result<()> {
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(parent)
        .into_diagnostic()
        .wrap_err_with(|| format!("cannot create `{}`", parent.display()))?;
    let staging = tempfile::Builder::new()
        .prefix(".pwchain-new-")
        .tempdir_in(parent)
        .into_diagnostic()
        .wrap_err_with(|| format!("cannot write in `{}`", parent.display()))?;
    for (file, bytes) in files {
        let path = staging.path().join(file);
        if let Some(folder) = path.parent() {
            std::fs::create_dir_all(folder).into_diagnostic()?;
        }
        std::fs::write(&path, bytes)
            .into_diagnostic()
            .wrap_err_with(|| format!("cannot write `{}`", path.display()))?;
        #[cfg(unix)]
        if file.ends_with(".sh") {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
                .into_diagnostic()?;
        }
    }
    // An empty directory may be there already; `rename` replaces only that.
    let _ = std::fs::remove_dir(dir);
    let staged = staging.keep();
    std::fs::rename(&staged, dir)
        .into_diagnostic()
        .wrap_err_with(|| format!("cannot create `{}`", dir.display()))
}

/// A plugin name becomes a WIT package name and a crate name: kebab-case.
fn check_name(name: &str) -> miette::Result<()> {
    if pwchain_compose::manifest::is_valid_name(name) {
        Ok(())
    } else {
        Err(miette!(
            help = "names are kebab-case: lowercase words of letters and digits joined by `-`, e.g. `add-header`",
            "`{name}` is not a valid plugin name"
        ))
    }
}
