"""Middleware in Python: rewrites headers both ways. On the way in it adds
`x-python: header-tag` and drops `x-internal-debug`; on the way out it adds
`x-python-response: header-tag` and renames `server` to `x-upstream-server`."""

from chain_http import map_request_headers, map_response_headers
from wit_world import exports
from wit_world.imports import handler
from wit_world.imports.wasi_http_types import Request, Response


def inbound(headers):
    headers.delete("x-internal-debug")
    headers.append("x-python", b"header-tag")


def outbound(headers):
    server = headers.get_and_delete("server")
    if server:
        headers.set("x-upstream-server", server)
    headers.append("x-python-response", b"header-tag")


class Handler(exports.Handler):
    async def handle(self, request: Request) -> Response:
        response = await handler.handle(map_request_headers(request, inbound))
        return map_response_headers(response, outbound)
