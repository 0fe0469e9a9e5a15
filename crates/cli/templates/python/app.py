"""`{{name}}`: a middleware that passes every request on to the next hop and
tags the response with `x-{{name}}: passed`. Start here."""

from componentize_py_types import Ok
import wit_world
from wit_world import exports
from wit_world.imports import handler
from wit_world.imports.wasi_http_types import Request, Response


class Handler(exports.Handler):
    async def handle(self, request: Request) -> Response:
        # The request could be changed here (rebuilt around its body: the
        # headers of a request that arrived are immutable).
        response = await handler.handle(request)

        # Rebuild the response with one more header, same status and body.
        status = response.get_status_code()
        # `clone` copies the headers inside the host; only the one added
        # crosses into the plugin (cheaper than `copy_all` + `from_list`).
        headers = response.get_headers().clone()
        headers.append("x-{{name}}", b"passed")
        done = wit_world.result_unit_wasi_http_types_error_code_future(lambda: Ok(None))[1]
        body, trailers = Response.consume_body(response, done)
        tagged, _ = Response.new(headers, body, trailers)
        tagged.set_status_code(status)
        return tagged
