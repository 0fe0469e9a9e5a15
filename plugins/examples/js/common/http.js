// What the JavaScript example plugins share: rebuilding a request or a
// response around the same body stream (the headers of a message received
// are immutable in wasi:http 0.3), and answering without the next hop.
import httpTypes from "wasi:http/types@0.3.2";

const { Fields, Request, Response } = httpTypes;

/** `text` as UTF-8 bytes (QuickJS has no `TextEncoder`). */
export function utf8(text) {
  return Uint8Array.from(unescape(encodeURIComponent(text)), (c) => c.charCodeAt(0));
}

/**
 * Headers as `[name, value]` pairs of strings; a value's bytes are read as
 * Latin-1, as HTTP defines them, so that any value survives the round trip.
 */
export function headerList(fields) {
  return fields.copyAll().map(([name, value]) => [name, String.fromCharCode(...value)]);
}

function toFields(pairs) {
  return Fields.fromList(
    pairs.map(([name, value]) => [name, Uint8Array.from(value, (c) => c.charCodeAt(0))]),
  );
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

/** `request` with its headers replaced by `edit(headers)`; the rest carried over. */
export function mapRequestHeaders(request, edit) {
  const method = request.getMethod();
  const scheme = request.getScheme();
  const path = request.getPathWithQuery();
  const authority = request.getAuthority();
  const options = request.getOptions();
  const headers = edit(headerList(request.getHeaders()));
  const outcome = relayOutcome();
  const [body, trailers] = Request.consumeBody(request, outcome.promise);
  const [rebuilt, transmitted] = Request.new(toFields(headers), body, trailers, options);
  outcome.relay(transmitted);
  rebuilt.setMethod(method);
  rebuilt.setScheme(scheme);
  rebuilt.setPathWithQuery(path);
  rebuilt.setAuthority(authority);
  return rebuilt;
}

/** `response` with its headers replaced by `edit(headers)`. */
export function mapResponseHeaders(response, edit) {
  const status = response.getStatusCode();
  const headers = edit(headerList(response.getHeaders()));
  const outcome = relayOutcome();
  const [body, trailers] = Response.consumeBody(response, outcome.promise);
  const [rebuilt, transmitted] = Response.new(toFields(headers), body, trailers);
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
