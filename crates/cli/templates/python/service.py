"""`{{name}}`: a service that answers every request itself, with
`x-{{name}}: answered` and a line of text. Start here."""

from componentize_py_types import Ok
import componentize_py_async_support
import wit_world
from wit_world import exports
from wit_world.imports.wasi_http_types import Fields, Request, Response


class Handler(exports.Handler):
    async def handle(self, request: Request) -> Response:
        text = f"hello from {{name}}: {request.get_path_with_query() or '/'}\n"
        headers = Fields.from_list(
            [("content-type", b"text/plain; charset=utf-8"), ("x-{{name}}", b"answered")]
        )
        tx, rx = wit_world.byte_stream()
        no_trailers = wit_world.result_option_wasi_http_types_fields_wasi_http_types_error_code_future(
            lambda: Ok(None)
        )[1]
        response, _ = Response.new(headers, rx, no_trailers)

        async def write():
            with tx:
                await tx.write_all(text.encode())

        componentize_py_async_support.spawn(write())
        return response
