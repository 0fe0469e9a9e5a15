// `{{name}}`: a middleware that passes every request on to the next hop and
// tags the response with `x-{{name}}: passed`. Start here.
import nextHop from "wasi:http/handler@0.3.2";
import httpTypes from "wasi:http/types@0.3.2";

const { Response } = httpTypes;
// Header values are bytes; this one is ASCII.
const ascii = (text) => Uint8Array.from(text, (c) => c.charCodeAt(0));

export const handler = {
  async handle(request) {
    // The request could be changed here (rebuilt around its body: the
    // headers of a request that arrived are immutable).
    const response = await nextHop.handle(request);

    // Rebuild the response with one more header, same status and body.
    const status = response.getStatusCode();
    // `clone` copies the headers inside the host; only the one added
    // crosses into the plugin (cheaper than `copyAll` + `fromList`).
    const headers = response.getHeaders().clone();
    headers.append("x-{{name}}", ascii("passed"));
    // A promise stands for a WIT future: here, how the body's transfer
    // ended, told to the next hop once the caller has read ours.
    let report;
    const outcome = new Promise((resolve) => (report = resolve));
    const [body, trailers] = Response.consumeBody(response, outcome);
    const [tagged, sent] = Response.new(headers, body, trailers);
    sent.read().then(report, () => report({ tag: "ok" }));
    tagged.setStatusCode(status);
    return tagged;
  },
};
