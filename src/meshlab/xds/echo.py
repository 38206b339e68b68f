"""The proxyless demo workload: a gRPC backend that answers with its name, and a client that calls
an ``xds:///`` target through gRPC's own xDS client.

No .proto is needed: the method carries raw bytes (gRPC's generic handlers). The client runs as its
own process (``python -m meshlab.xds.echo``) because gRPC reads its xDS bootstrap once per process.

    ECHO_METHOD    the method's path
    start_backend  a backend server answering with its name (on loopback unless told)
    serve          a lab pod's gRPC app: a backend on all its addresses until SIGTERM
    call           RPCs to xds:///TARGET..., as JSON records (target, t_ms, backend or error)
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import grpc

ECHO_METHOD = "/meshlab.Echo/Call"


def start_backend(name: str, port: int = 0, host: str = "127.0.0.1", ports: tuple[int, ...] = ()) -> tuple[grpc.Server, int]:
    """A server answering every call with ``name``, on ``host``:``port`` (0: one chosen) and any further
    ``ports``; returns it and the first port bound."""
    server = grpc.server(ThreadPoolExecutor(max_workers=4))
    handler = grpc.unary_unary_rpc_method_handler(lambda request, context: name.encode())
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("meshlab.Echo", {"Call": handler}),))
    bound = server.add_insecure_port(f"{host}:{port}")
    for more in ports:
        server.add_insecure_port(f"{host}:{more}")
    server.start()
    return server, bound


def serve(pod: str, ports: list[int]) -> None:
    """A lab pod's gRPC app: answers with the pod's name on each of ``ports``, says it is ready as the
    lab's apps do (one JSON line), and stops on SIGTERM."""
    first, *more = ports
    server, _ = start_backend(pod, first, "0.0.0.0", tuple(more))
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    print(json.dumps({"event": "ready", "pod": pod, "ports": ports, "pid": os.getpid()}), flush=True)
    stopped.wait()
    server.stop(grace=None)


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
