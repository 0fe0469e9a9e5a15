// Middleware in JavaScript: rewrites headers both ways. On the way in it
// adds `x-js: headers` and drops `x-internal-debug`; on the way out it adds
// `x-js-response: headers` and renames `server` to `x-upstream-server`.
import nextHop from "wasi:http/handler@0.3.2";
import { latin1, mapRequestHeaders, mapResponseHeaders } from "../common/http.js";

const inbound = (headers) => {
  headers.delete("x-internal-debug");
  headers.append("x-js", latin1("headers"));
};

const outbound = (headers) => {
  const server = headers.getAndDelete("server");
  if (server.length > 0) headers.set("x-upstream-server", server);
  headers.append("x-js-response", latin1("headers"));
};

export const handler = {
  async handle(request) {
    const response = await nextHop.handle(mapRequestHeaders(request, inbound));
    return mapResponseHeaders(response, outbound);
  },
};
