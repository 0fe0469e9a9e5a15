// `{{name}}`: a service that answers every request itself, with
// `x-{{name}}: answered` and a line of text. Start here.
import httpTypes from "wasi:http/types@0.3.2";

const { Fields, Response } = httpTypes;
// QuickJS has no TextEncoder.
const utf8 = (text) =>
  Uint8Array.from(unescape(encodeURIComponent(text)), (c) => c.charCodeAt(0));

export const handler = {
  async handle(request) {
    const text = `hello from {{name}}: ${request.getPathWithQuery() ?? "/"}\n`;
    const headers = Fields.fromList([
      ["content-type", utf8("text/plain; charset=utf-8")],
      ["x-{{name}}", utf8("answered")],
    ]);
    // An iterable of byte chunks becomes the body stream, a promise the
    // trailers future (none); both are written as the caller reads them,
    // after this call returns.
    const noTrailers = Promise.resolve({ tag: "ok", val: null });
    const [response] = Response.new(headers, [utf8(text)], noTrailers);
    return response;
  },
};
