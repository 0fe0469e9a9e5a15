// `{{name}}`: a header filter. It adds `x-{{name}}: request` to every
// request and `x-{{name}}: response` to every response. Start here.
//
// A header filter sees heads as plain data and answers with a verdict;
// pwchain runs consecutive header filters behind one driver that rebuilds
// each message once, so a filter costs a call, not a hop.

// Header values are bytes; these are ASCII.
const ascii = (text) => Uint8Array.from(text, (c) => c.charCodeAt(0));

export const headerFilter = {
  onRequest(head) {
    // `head` holds method, scheme, authority, pathWithQuery and headers.
    // Answering here stops the request before the rest of the chain.
    if (head.pathWithQuery === "/{{name}}-says-no") {
      return {
        tag: "respond",
        val: {
          status: 403,
          headers: [["content-type", ascii("text/plain")]],
          body: ascii("{{name}} says no\n"),
        },
      };
    }
    return { tag: "continue", val: [{ tag: "append", val: ["x-{{name}}", ascii("request")] }] };
  },
  onResponse(head) {
    return { tag: "continue", val: [{ tag: "append", val: ["x-{{name}}", ascii("response")] }] };
  },
};
