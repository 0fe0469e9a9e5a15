"""Middleware in Python that answers by itself: a request whose path starts
with `/private` or that carries `x-block: yes` gets 403 here and never
reaches the next hop; everything else passes through untouched."""

from chain_http import local_response
from wit_world import exports
from wit_world.imports import handler
from wit_world.imports.wasi_http_types import Request, Response


class Handler(exports.Handler):
    async def handle(self, request: Request) -> Response:
        path = request.get_path_with_query() or "/"
        blocked = b"yes" in request.get_headers().get("x-block")
        if path.startswith("/private") or blocked:
            return local_response(403, f"blocked by the python gate: {path}\n")
        return await handler.handle(request)
