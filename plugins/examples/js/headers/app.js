// Middleware in JavaScript: rewrites headers both ways. On the way in it
// adds `x-js: headers` and drops `x-internal-debug`; on the way out it adds
// `x-js-response: headers` and renames `server` to `x-upstream-server`.
import nextHop from "wasi:http/handler@0.3.2";
import { mapRequestHeaders, mapResponseHeaders } from "../common/http.js";

const inbound = (headers) =>
  [...headers.filter(([name]) => name.toLowerCase() !== "x-internal-debug"), ["x-js", "headers"]];

const outbound = (headers) => [
  ...headers.map(([name, value]) =>
    name.toLowerCase() === "server" ? ["x-upstream-server", value] : [name, value],
  ),
  ["x-js-response", "headers"],
];

export const handler = {
  async handle(request) {
    const response = await nextHop.handle(mapRequestHeaders(request, inbound));
    return mapResponseHeaders(response, outbound);
  },
};
