"""A minimal HTTP/1.1 client for the echo app, timing every request.

It runs wherever its socket was created: the lab creates it in a thread that has entered a pod's
network namespace, so requests leave from that pod and its rules apply to them.

    Reply       the echo app's JSON reply (or a gateway's own answer), its status, headers and the request's latency
    HttpClient  one keep-alive connection; get() sends a request and waits for the reply
    get_once    a new connection for one request (what "new-connection latency" measures)
    send        ``count`` requests, keep-alive or not
    local_http  one request to a port on this namespace's loopback (a proxy's admin), its status and text
    main        the same as a command (``python -m meshlab.lab.client``), printing JSON: for a
                process that must itself be somewhere (e.g. in the lab's cgroup for eBPF)
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import time
from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class Reply:
    """``body`` is the echo app's JSON; an answer that is not JSON (a gateway's 503, say) is ``{"text": ...}``."""

    body: dict
    latency_us: float
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)  # the response's, names in lower case (the last of a repeated one)


class HttpClient:
    """``authority`` is the Host header to send (a gateway routes by it); by default host:port. A reply
    that says ``connection: close`` (a draining proxy's) ends the connection, and the next request
    opens a new one, as HTTP/1.1 clients do (RFC 9112 9.6); its latency then includes the handshake."""

    def __init__(self, host: str, port: int, timeout: float = 5.0, authority: str | None = None) -> None:
        self.host, self.port, self.timeout, self.authority = host, port, timeout, authority or f"{host}:{port}"
        self.sock: socket.socket | None = None
        self._connect()

    def _connect(self) -> None:
        self.sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = b""

    def get(self, path: str = "/", close: bool = False, headers: dict[str, str] | None = None) -> Reply:
        start = time.perf_counter()
        if self.sock is None:
            self._connect()
        connection = "close" if close else "keep-alive"
        extra = "".join(f"{name}: {value}\r\n" for name, value in (headers or {}).items())
        self.sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {self.authority}\r\nConnection: {connection}\r\n{extra}\r\n".encode())
        while b"\r\n\r\n" not in self.buffer:
            self.buffer += self._read_chunk()
        head, _, rest = self.buffer.partition(b"\r\n\r\n")
        length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")), 0)
        while len(rest) < length:
            rest += self._read_chunk()
        self.buffer = rest[length:]
        status = int(head.split(b" ", 2)[1])
        try:
            body = json.loads(rest[:length])
        except ValueError:
            body = {"text": rest[:length].decode("latin-1")}
        fields = dict((name.strip().lower(), value.strip()) for name, _, value in
                      (line.decode("latin-1").partition(":") for line in head.split(b"\r\n")[1:]))
        if fields.get("connection", "").lower() == "close":
            self.close()
        return Reply(body if isinstance(body, dict) else {"json": body}, (time.perf_counter() - start) * 1e6, status, fields)

    def _read_chunk(self) -> bytes:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"{self.host}:{self.port} closed the connection mid-reply")
        return chunk

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None


def get_once(host: str, port: int, path: str = "/", timeout: float = 5.0, headers: dict[str, str] | None = None) -> Reply:
    """Connect, send one request, read the reply, close; latency includes the handshake."""
    start = time.perf_counter()
    client = HttpClient(host, port, timeout)
    try:
        reply = client.get(path, close=True, headers=headers)
    finally:
        client.close()
    return Reply(reply.body, (time.perf_counter() - start) * 1e6, reply.status, reply.headers)


def send(host: str, port: int, count: int = 1, keepalive: bool = True, path: str | None = None, headers: dict[str, str] | None = None) -> list[Reply]:
    """``count`` requests to ``path`` (or to /0, /1, ...: each reply then says which it answers), with ``headers``."""
    paths = [path or f"/{i}" for i in range(count)]
    if not keepalive:
        return [get_once(host, port, each, headers=headers) for each in paths]
    client = HttpClient(host, port)
    try:
        return [client.get(each, headers=headers) for each in paths]
    finally:
        client.close()


def local_http(port: int, path: str, method: str = "GET", timeout: float = 5.0) -> tuple[int, str]:
    """One request to 127.0.0.1:``port`` on a new connection the server closes: (status, body as text)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n".encode())
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body.decode("utf-8", "replace")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m meshlab.lab.client", description="Send HTTP requests to the lab's echo app; print JSON replies.")
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    parser.add_argument("--count", type=int, default=1)
    parser.add_argument("--new-connections", action="store_true", help="a new connection per request")
    parser.add_argument("--path", help="the path every request asks for (default /0, /1, ...)")
    args = parser.parse_args(argv)
    replies = send(args.host, args.port, args.count, keepalive=not args.new_connections, path=args.path)
    json.dump([asdict(reply) for reply in replies], sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
