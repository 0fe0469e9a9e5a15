// What the JavaScript example plugins share: rebuilding a request or a
// response around the same body stream (the headers of a message received
// are immutable in wasi:http 0.3), and answering without the next hop.
import httpTypes from "wasi:http/types@0.3.2";

const { Fields, Request, Response } = httpTypes;

/** `text` as UTF-8 bytes (QuickJS has no `TextEncoder`). */
export function utf8(text) {
  return Uint8Array.from(unescape(encodeURIComponent(text)), (c) => c.charCodeAt(0));
}

/** A header value's bytes from text, one byte per character (Latin-1, as HTTP defines them). */
export function latin1(text) {
  return Uint8Array.from(text, (c) => c.charCodeAt(0));
}

/** The first value of header `name` in `fields`, as Latin-1 text, or `undefined`. */
export function header(fields, name) {
  const [value] = fields.get(name);
  return value === undefined ? undefined : String.fromCharCode(...value);
}

function toFields(pairs) {
  return Fields.fromList(pairs.map(([name, value]) => [name, latin1(value)]));
}

/**
 * The outcome to hand `consume-body` (a promise becomes the WIT future): it
 * reports to the sender of the old message what the receiver of the new
 * one reports once the body went through, or why not.
 */
function relayOutcome() {
  let report;
  const promise = new Promise((resolve) => {
    report = resolve;
  });
  const relay = (transmitted) => {
    transmitted.read().then(report, () => report({ tag: "ok" }));
  };
  return { promise, relay };
}

/**
 * `request` with its headers changed by `edit(fields)`, the rest carried
 * over. `fields` is a mutable copy the host makes (`clone`), so only the
 * headers `edit` reads or writes cross into the plugin.
 */
export function mapRequestHeaders(request, edit) {
  const method = request.getMethod();
  const scheme = request.getScheme();
  const path = request.getPathWithQuery();
  const authority = request.getAuthority();
  const options = request.getOptions();
  const headers = request.getHeaders().clone();
  edit(headers);
  const outcome = relayOutcome();
  const [body, trailers] = Request.consumeBody(request, outcome.promise);
  const [rebuilt, transmitted] = Request.new(headers, body, trailers, options);
  outcome.relay(transmitted);
  rebuilt.setMethod(method);
  rebuilt.setScheme(scheme);
  rebuilt.setPathWithQuery(path);
  rebuilt.setAuthority(authority);
  return rebuilt;
}

/** `response` with its headers changed by `edit(fields)`, as above. */
export function mapResponseHeaders(response, edit) {
  const status = response.getStatusCode();
  const headers = response.getHeaders().clone();
  edit(headers);
  const outcome = relayOutcome();
  const [body, trailers] = Response.consumeBody(response, outcome.promise);
  const [rebuilt, transmitted] = Response.new(headers, body, trailers);
  outcome.relay(transmitted);
  rebuilt.setStatusCode(status);
  return rebuilt;
}

/** A response made here, without calling the next hop. */
export function localResponse(status, headers, text) {
  // An iterable of byte chunks becomes the body stream and a promise the
  // trailers future; both are written as the caller reads them.
  const [response] = Response.new(toFields(headers), [utf8(text)], noTrailers());
  response.setStatusCode(status);
  return response;
}

const noTrailers = () => Promise.resolve({ tag: "ok", val: null });
