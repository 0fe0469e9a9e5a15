"""A real gRPC server and client (grpcio) for tests/grpc.rs.

  peer.py serve             a server on 127.0.0.1:0 (h2c); prints `port N`
  peer.py serve CERT KEY    the same over TLS (ALPN h2) with this PEM pair
  peer.py check ADDR NAME   grpc.health.v1.Health/Check for service NAME
                            through ADDR; prints the status, or the error's
                            code and details
  peer.py count ADDR N      server streaming: N messages; prints how many
                            came and a digest of them all
  peer.py upload ADDR MIB   client streaming: MIB MiB in 64 KiB messages;
                            prints what the server counted
  peer.py slow ADDR         a call the server answers after 5 s, with a
                            deadline of 0.5 s; prints the code
  peer.py fail ADDR         a call the server fails with INVALID_ARGUMENT
                            (trailers only); prints code and details
  peer.py cancel ADDR       a server stream of a million messages that the
                            client cancels after ten; prints the code

The streaming and failing calls are `/pwchain.test.Probe/*`, handled as raw
bytes (no generated code).
"""
import hashlib
import sys
import time
from concurrent import futures

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc


PROBE = "pwchain.test.Probe"


def count(request, context):
    for i in range(int(request)):
        yield b"message %d" % i


def upload(requests, context):
    return b"%d" % sum(len(r) for r in requests)


def slow(request, context):
    time.sleep(5)
    return b"too late"


def fail(request, context):
    context.abort(grpc.StatusCode.INVALID_ARGUMENT, "the probe refuses " + request.decode())


def serve(tls=None):
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    servicer = health.HealthServicer()
    servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(PROBE, {
        "Count": grpc.unary_stream_rpc_method_handler(count),
        "Upload": grpc.stream_unary_rpc_method_handler(upload),
        "Slow": grpc.unary_unary_rpc_method_handler(slow),
        "Fail": grpc.unary_unary_rpc_method_handler(fail),
    }),))
    if tls:
        cert, key = (open(path, "rb").read() for path in tls)
        credentials = grpc.ssl_server_credentials([(key, cert)])
        port = server.add_secure_port("127.0.0.1:0", credentials)
    else:
        port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(f"port {port}", flush=True)
    server.wait_for_termination()


def check(addr, name):
    with grpc.insecure_channel(addr) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            answer = stub.Check(health_pb2.HealthCheckRequest(service=name), timeout=10)
            print(health_pb2.HealthCheckResponse.ServingStatus.Name(answer.status))
        except grpc.RpcError as e:
            print(f"{e.code().name} {e.details()}")


def probe(addr, what, arg):
    with grpc.insecure_channel(addr) as channel:
        method = f"/{PROBE}/{what.capitalize()}"
        try:
            if what == "count":
                digest, n = hashlib.sha256(), 0
                for message in channel.unary_stream(method)(arg.encode(), timeout=30):
                    digest.update(message)
                    n += 1
                print(f"{n} {digest.hexdigest()}")
            elif what == "upload":
                chunk = b"x" * (64 << 10)
                chunks = (chunk for _ in range(int(arg) * 16))
                print(channel.stream_unary(method)(chunks, timeout=30).decode())
            elif what == "cancel":
                stream = channel.unary_stream(method.replace("Cancel", "Count"))(b"1000000", timeout=30)
                for i, _ in enumerate(stream):
                    if i == 9:
                        stream.cancel()
                print("OK")
            elif what == "slow":
                channel.unary_unary(method)(b"", timeout=0.5)
                print("OK")
            else:
                channel.unary_unary(method)(b"this call", timeout=10)
                print("OK")
        except grpc.RpcError as e:
            print(f"{e.code().name} {e.details()}")


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        serve(sys.argv[2:4] if len(sys.argv) > 3 else None)
    elif sys.argv[1] == "check":
        check(sys.argv[2], sys.argv[3])
    else:
        probe(sys.argv[2], sys.argv[1], sys.argv[3] if len(sys.argv) > 3 else "")
