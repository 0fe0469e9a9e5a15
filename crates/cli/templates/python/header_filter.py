"""`{{name}}`: a header filter. It adds `x-{{name}}: request` to every
request and `x-{{name}}: response` to every response. Start here.

A header filter sees heads as plain data and answers with a verdict;
pwchain runs consecutive header filters behind one driver that rebuilds
each message once, so a filter costs a call, not a hop."""

from wit_world import exports
from wit_world.exports.header_filter import (
    Edit_Append,
    LocalResponse,
    RequestHead,
    ResponseHead,
    Verdict,
    Verdict_Continue,
    Verdict_Respond,
)


class HeaderFilter(exports.HeaderFilter):
    def on_request(self, head: RequestHead) -> Verdict:
        # `head` holds the method, scheme, authority, path and headers.
        # Answering here stops the request before the rest of the chain.
        if head.path_with_query == "/{{name}}-says-no":
            return Verdict_Respond(
                LocalResponse(403, [("content-type", b"text/plain")], b"{{name}} says no\n")
            )
        return Verdict_Continue([Edit_Append(("x-{{name}}", b"request"))])

    def on_response(self, head: ResponseHead) -> Verdict:
        return Verdict_Continue([Edit_Append(("x-{{name}}", b"response"))])
