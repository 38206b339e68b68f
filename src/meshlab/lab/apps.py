"""The lab's demo workload: a small HTTP/1.1 echo server whose reply says who it saw.

Each reply is JSON: the pod's name, the peer address the server saw (so a reader can see
127.0.0.6 behind a sidecar, or the client's pod IP without one), the local address and port
that accepted the connection, and the request path. Keep-alive is supported, so latency can be
measured per request over one connection as well as per new connection. ``GET /metrics`` answers
the app's own Prometheus counter instead (what pilot-agent merges into the pod's metrics on 15020).

    EchoServer  the asyncio protocol
    run         listen on the given ports until SIGTERM
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys


class EchoServer(asyncio.Protocol):
    requests = 0  # answered by every port of this app process: its /metrics counter

    def __init__(self, pod: str) -> None:
        self.pod, self.buffer, self.transport = pod, b"", None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while b"\r\n\r\n" in self.buffer:
            head, _, rest = self.buffer.partition(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, path, _ = (lines[0].split(" ") + ["", "", ""])[:3]
            headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
            length = int(headers.get("content-length", "0") or 0)
            if len(rest) < length:
                return
            self.buffer = rest[length:]
            self._reply(method, path, headers.get("connection", "").lower() == "close")

    def _reply(self, method: str, path: str, close: bool) -> None:
        peer = self.transport.get_extra_info("peername")
        local = self.transport.get_extra_info("sockname")
        if path == "/metrics":
            kind, body = "text/plain; version=0.0.4", f"# TYPE meshlab_app_requests_total counter\nmeshlab_app_requests_total {EchoServer.requests}\n".encode()
        else:
            EchoServer.requests += 1
            kind = "application/json"
            body = json.dumps({"pod": self.pod, "peer": f"{peer[0]}:{peer[1]}", "local": f"{local[0]}:{local[1]}", "method": method, "path": path}).encode()
        head = f"HTTP/1.1 200 OK\r\nContent-Type: {kind}\r\nContent-Length: {len(body)}\r\n"
        head += "Connection: close\r\n\r\n" if close else "\r\n"
        self.transport.write(head.encode() + body)
        if close:
            self.transport.close()


def run(pod: str, ports: list[int]) -> None:
    from meshlab.lab.sidecar import new_event_loop

    loop = new_event_loop()
    asyncio.set_event_loop(loop)
    for port in ports:
        loop.run_until_complete(loop.create_server(lambda: EchoServer(pod), "0.0.0.0", port, reuse_address=True, backlog=1024))
    loop.add_signal_handler(signal.SIGTERM, loop.stop)
    sys.stdout.write(json.dumps({"event": "ready", "pod": pod, "ports": ports, "pid": os.getpid()}) + "\n")
    sys.stdout.flush()
    loop.run_forever()
