"""A real gRPC server and client (grpcio) for tests/grpc.rs.

  peer.py serve             a server on 127.0.0.1:0 (h2c); prints `port N`
  peer.py check ADDR NAME   grpc.health.v1.Health/Check for service NAME
                            through ADDR; prints the status, or the error's
                            code and details
"""
import sys
from concurrent import futures

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc


def serve():
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    servicer = health.HealthServicer()
    servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
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


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        serve()
    else:
        check(sys.argv[2], sys.argv[3])
