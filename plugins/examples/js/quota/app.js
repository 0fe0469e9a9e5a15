// Middleware in JavaScript that answers by itself: when the caller's quota
// is spent (`x-quota-remaining: 0`) it answers 429 with a JSON body and a
// `retry-after`, and the next hop never sees the request; everything else
// passes through untouched.
import nextHop from "wasi:http/handler@0.3.2";
import { header, localResponse } from "../common/http.js";

export const handler = {
  async handle(request) {
    const remaining = header(request.getHeaders(), "x-quota-remaining");
    if (remaining !== undefined && remaining.trim() === "0") {
      const path = request.getPathWithQuery() ?? "/";
      const body = JSON.stringify({ error: "quota exhausted", path, retryAfterSeconds: 60 });
      return localResponse(
        429,
        [["content-type", "application/json"], ["retry-after", "60"]],
        `${body}\n`,
      );
    }
    return nextHop.handle(request);
  },
};
