// Serves a pwchain composite in Node.js, a wasi:http 0.3 host independent
// of wasmtime: jco transpiles the component to JavaScript (instantiation
// mode), and @bytecodealliance/preview3-shim's HttpServer answers HTTP with
// it. `scripts/serve-node.sh` installs the pinned tools and transpiles;
// this part serves what it made:
//
//   node serve-node.mjs OUT/chain.js [HOST:PORT] [NAME=VALUE ...]
//
// The NAME=VALUE pairs are the component's whole environment (as
// `wasmtime serve --env`); nothing else of Node's is passed. It prints
// `Serving HTTP on http://HOST:PORT/`, as `wasmtime serve` does.
//
// Each request gets a fresh instance of the composite, as in `wasmtime
// serve` (the core modules are compiled once). jco 1.35 also needs it: an
// instance that has passed a response from `wasi:http/client` through a
// component boundary hands the next one a stale handle.
import { createRequire } from "node:module";
import { readFileSync, readdirSync } from "node:fs";
import { createServer } from "node:net";
import { pathToFileURL } from "node:url";
import { dirname, join, resolve } from "node:path";

const [module, addr = "127.0.0.1:8080", ...env] = process.argv.slice(2);
if (!module) {
  console.error("usage: node serve-node.mjs OUT/chain.js [HOST:PORT] [NAME=VALUE ...]");
  process.exit(2);
}
const at = addr.lastIndexOf(":");
const host = addr.slice(0, at) || "127.0.0.1";
let port = Number(addr.slice(at + 1));

// The shims the transpiled module imports, resolved from where it lives so
// that both share one instance of each.
const beside = createRequire(resolve(module));
const load = (name) => import(pathToFileURL(beside.resolve(name)).href);
const { HttpServer, Fields, Request, Response, client, _forbiddenHeaders } = await load(
  "@bytecodealliance/preview3-shim/http",
);
const cli = await load("@bytecodealliance/preview2-shim/cli");
cli._setEnv(Object.fromEntries(env.map((pair) => {
  const eq = pair.indexOf("=");
  return eq < 0 ? [pair, process.env[pair] ?? ""] : [pair.slice(0, eq), pair.slice(eq + 1)];
})));

// HttpServer hands over every header, forbidden ones (`host`,
// `connection`, …) included, and no authority. A component cannot copy
// such headers into a request of its own (`fields.from-list` refuses
// them), so they are dropped here, as wasmtime's hosts do; the authority
// comes from `Host`, as in `pwchain serve`.
const allowed = (fields) =>
  Fields.fromList(fields.copyAll().filter(([name]) => !_forbiddenHeaders.value.has(name.toLowerCase())));

function asWasiRequest(incoming) {
  const host = incoming.getHeaders().get("host")[0];
  const [body, trailers] = Request.consumeBody(incoming, null);
  const [request] = Request.new(allowed(incoming.getHeaders()), body, trailers, null);
  request.setMethod(incoming.getMethod());
  request.setPathWithQuery(incoming.getPathWithQuery());
  request.setScheme({ tag: "HTTP" });
  if (host) {
    request.setAuthority(typeof host === "string" ? host : new TextDecoder().decode(host));
  }
  return request;
}

// Responses from `wasi:http/client` likewise.
const send = client.send;
client.send = async (request) => {
  const response = await send(request);
  const [body, trailers] = Response.consumeBody(response, null);
  const [clean] = Response.new(allowed(response.getHeaders()), body, trailers);
  clean.setStatusCode(response.getStatusCode());
  return clean;
};

// The imports jco's instantiation mode asks for: the mapped wasi:http
// module whole, and every other `wasi:NS/IFACE` from preview2-shim's NS
// module (as its ESM mode imports them).
const { instantiate } = await import(pathToFileURL(resolve(module)).href);
const source = readFileSync(module, "utf8");
const imports = {};
for (const [, key] of source.matchAll(/imports\['([^']+)'\]/g)) {
  if (key in imports) continue;
  const wasi = key.match(/^wasi:([a-z-]+)\/([a-z-]+)$/);
  if (!wasi) {
    imports[key] = await load(key);
    continue;
  }
  const [, pkg, iface] = wasi;
  const camel = iface.replace(/-([a-z])/g, (_, c) => c.toUpperCase());
  imports[key] = (await load(`@bytecodealliance/preview2-shim/${pkg}`))[camel];
}
const compiled = new Map();
for (const file of readdirSync(dirname(module)).filter((f) => f.endsWith(".wasm"))) {
  compiled.set(file, await WebAssembly.compile(readFileSync(join(dirname(module), file))));
}
const getCoreModule = (name) => compiled.get(name);

// jco's export returns the response and throws the error; HttpServer wants
// wasi:http's `result`.
const server = new HttpServer({
  async handle(incoming) {
    try {
      const { handler } = await instantiate(getCoreModule, imports);
      return { tag: "ok", val: await handler.handle(asWasiRequest(incoming)) };
    } catch (error) {
      console.error("pwchain node host:", error?.payload ?? error);
      return { tag: "err", val: error?.payload ?? { tag: "internal-error", val: String(error) } };
    }
  },
});
server.on("error", (error) => console.error("pwchain node host:", error));

// HttpServer does not say which port it got, so port 0 is chosen here.
if (port === 0) {
  port = await new Promise((done, fail) => {
    const probe = createServer();
    probe.once("error", fail);
    probe.listen(0, host, () => {
      const { port } = probe.address();
      probe.close(() => done(port));
    });
  });
}
await server.listen(port, host);
console.error(`Serving HTTP on http://${host}:${port}/`);
for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, async () => {
    await server.close();
    process.exit(0);
  });
}
