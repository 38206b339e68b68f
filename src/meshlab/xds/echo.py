"""The proxyless demo workload: a gRPC backend that answers with its name, and a client that calls
an ``xds:///`` target through gRPC's own xDS client.

No .proto is needed: the method carries raw bytes (gRPC's generic handlers). The client runs as its
own process (``python -m meshlab.xds.echo``) because gRPC reads its xDS bootstrap once per process.

    ECHO_METHOD    the method's path
    start_backend  a backend server on loopback answering with its name
    call           RPCs to xds:///TARGET..., as JSON records (target, t_ms, backend or error)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import grpc

ECHO_METHOD = "/meshlab.Echo/Call"


def start_backend(name: str, port: int = 0) -> tuple[grpc.Server, int]:
    server = grpc.server(ThreadPoolExecutor(max_workers=4))
    handler = grpc.unary_unary_rpc_method_handler(lambda request, context: name.encode())
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("meshlab.Echo", {"Call": handler}),))
    bound = server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    return server, bound


def call(targets: list[str], count: int, interval_ms: float = 0.0, timeout_s: float = 5.0) -> list[dict]:
    """``count`` rounds of one RPC per target; each record says which backend answered, or the error."""
    channels = {target: grpc.insecure_channel(f"xds:///{target}") for target in targets}
    stubs = {target: channel.unary_unary(ECHO_METHOD) for target, channel in channels.items()}
    records, start = [], time.monotonic()
    for _ in range(count):
        for target, stub in stubs.items():
            record = {"target": target, "t_ms": round((time.monotonic() - start) * 1000, 3)}
            try:
                record["backend"] = stub(b"hello", timeout=timeout_s, wait_for_ready=True).decode()
            except grpc.RpcError as error:
                record["error"] = error.code().name
            records.append(record)
        if interval_ms:
            time.sleep(interval_ms / 1000)
    for channel in channels.values():
        channel.close()
    return records


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m meshlab.xds.echo", description="Call xds:/// targets through gRPC's xDS client; print JSON.")
    parser.add_argument("--bootstrap", required=True, help="the xDS bootstrap file (GRPC_XDS_BOOTSTRAP)")
    parser.add_argument("--targets", required=True, help="comma-separated target names (one xDS client each)")
    parser.add_argument("--count", type=int, default=1)
    parser.add_argument("--interval-ms", type=float, default=0.0)
    args = parser.parse_args(argv)
    os.environ["GRPC_XDS_BOOTSTRAP"] = args.bootstrap  # read when the first xds channel is created
    json.dump(call(args.targets.split(","), args.count, args.interval_ms), sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
