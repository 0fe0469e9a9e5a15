"""What the Python example plugins share: rebuilding a request or response
around the same body stream (fetched headers are immutable in wasi:http
0.3), and answering locally."""

from componentize_py_types import Ok
import componentize_py_async_support
import wit_world
from wit_world.imports.wasi_http_types import Fields, Request, Response

Headers = list[tuple[str, bytes]]


def _done():
    """A `res` future for `consume-body` that reports success once dropped."""
    return wit_world.result_unit_wasi_http_types_error_code_future(lambda: Ok(None))[1]


def _no_trailers():
    return wit_world.result_option_wasi_http_types_fields_wasi_http_types_error_code_future(
        lambda: Ok(None)
    )[1]


def map_request_headers(request: Request, edit) -> Request:
    """`request` with its headers changed by `edit(fields)`; method, target,
    options and the body stream carried over. `fields` is a mutable copy the
    host makes (`clone`), so only the headers `edit` reads or writes cross
    into the plugin."""
    method = request.get_method()
    scheme = request.get_scheme()
    path = request.get_path_with_query()
    authority = request.get_authority()
    options = request.get_options()
    headers = request.get_headers().clone()
    edit(headers)
    body, trailers = Request.consume_body(request, _done())
    rebuilt, _ = Request.new(headers, body, trailers, options.clone() if options else None)
    rebuilt.set_method(method)
    rebuilt.set_scheme(scheme)
    rebuilt.set_path_with_query(path)
    rebuilt.set_authority(authority)
    return rebuilt


def map_response_headers(response: Response, edit) -> Response:
    """`response` with its headers changed by `edit(fields)`, as above."""
    status = response.get_status_code()
    headers = response.get_headers().clone()
    edit(headers)
    body, trailers = Response.consume_body(response, _done())
    rebuilt, _ = Response.new(headers, body, trailers)
    rebuilt.set_status_code(status)
    return rebuilt


def local_response(status: int, text: str) -> Response:
    """A response made here, without calling the next hop."""
    tx, rx = wit_world.byte_stream()
    headers = Fields.from_list([("content-type", b"text/plain; charset=utf-8")])
    response, _ = Response.new(headers, rx, _no_trailers())
    response.set_status_code(status)

    async def write():
        with tx:
            await tx.write_all(text.encode())

    componentize_py_async_support.spawn(write())
    return response
