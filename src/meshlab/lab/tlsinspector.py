"""What Envoy's tls_inspector listener filter does: look at a connection's first bytes without taking them.

A proxy that accepts both plaintext and mutual TLS on one port (Istio's inbound listener in PERMISSIVE
mode), or that routes TLS it does not terminate (an east-west gateway in AUTO_PASSTHROUGH mode, by
SNI), must know what a connection carries before it decides what to do with it, and must leave the
bytes in place for whoever reads them next. So it peeks (``MSG_PEEK``): a TLS connection starts with
a handshake record (content type 22) holding the ClientHello, whose ``server_name`` extension names the
host the client asked for (RFC 8446 section 4.1.2, RFC 6066 section 3). Its sibling http_inspector
tells plaintext HTTP from other bytes by the request line, and reports it as an application protocol
("http/1.1", "http/1.0"), which Istio's inbound filter chains match on.

    looks_like_tls   does a connection's first bytes start a TLS handshake record?
    http_protocols   http_inspector's verdict on plaintext: ("http/1.1",), ("http/1.0",), or () for not HTTP/1
    server_name      the SNI of a ClientHello record (None when it names none); ValueError if malformed
    peek             an accepted socket's first bytes, all of a ClientHello if it is one, left unread
"""

from __future__ import annotations

import asyncio
import socket
import time

HANDSHAKE, CLIENT_HELLO, SERVER_NAME, HOST_NAME = 22, 1, 0, 0
RECORD_HEADER = 5
MAX_RECORD = 16384 + RECORD_HEADER  # a TLS plaintext record carries at most 2^14 bytes


def looks_like_tls(head: bytes) -> bool:
    """A handshake record of TLS 1.0 or later (the record version a ClientHello uses is 3.1 or 3.3)."""
    return len(head) >= 3 and head[0] == HANDSHAKE and head[1] == 3 and head[2] <= 4


def http_protocols(head: bytes) -> tuple[str, ...]:
    """What Envoy's http_inspector sets as the application protocol of a plaintext connection whose
    first line is an HTTP/1 request line (method, target, version); nothing for other bytes."""
    line = head.split(b"\r\n", 1)[0].split(b" ")
    if len(line) == 3 and line[0].isalpha() and line[0].isupper() and line[2] in (b"HTTP/1.1", b"HTTP/1.0"):
        return (line[2].decode().lower(),)
    return ()


def server_name(record: bytes) -> str | None:
    """The host name of the server_name extension of the ClientHello in ``record``."""
    reader = _Reader(record)
    if reader.byte() != HANDSHAKE:
        raise ValueError("not a TLS handshake record")
    reader.skip(2)  # record version
    body = _Reader(reader.take(reader.number(2)))
    if body.byte() != CLIENT_HELLO:
        raise ValueError("the handshake record does not hold a ClientHello")
    hello = _Reader(body.take(body.number(3)))
    hello.skip(2 + 32)  # client_version, random
    hello.skip(hello.number(1))  # session id
    hello.skip(hello.number(2))  # cipher suites
    hello.skip(hello.number(1))  # compression methods
    if hello.done():
        return None  # no extensions at all
    extensions = _Reader(hello.take(hello.number(2)))
    while not extensions.done():
        kind, data = extensions.number(2), _Reader(extensions.take(extensions.number(2)))
        if kind == SERVER_NAME:
            names = _Reader(data.take(data.number(2)))
            while not names.done():
                name_type, name = names.byte(), names.take(names.number(2))
                if name_type == HOST_NAME:
                    return name.decode("ascii")
    return None


class _Reader:
    """Big-endian fields off a byte string; running past its end is a ValueError."""

    def __init__(self, data: bytes) -> None:
        self.data, self.at = data, 0

    def take(self, count: int) -> bytes:
        if self.at + count > len(self.data):
            raise ValueError(f"truncated ClientHello: {count} bytes wanted at offset {self.at} of {len(self.data)}")
        self.at += count
        return self.data[self.at - count:self.at]

    def skip(self, count: int) -> None:
        self.take(count)

    def number(self, size: int) -> int:
        return int.from_bytes(self.take(size), "big")

    def byte(self) -> int:
        return self.number(1)

    def done(self) -> bool:
        return self.at >= len(self.data)


async def peek(sock: socket.socket, timeout: float = 5.0) -> bytes:
    """The first bytes of an accepted non-blocking socket, not consumed: once any arrived, and for a TLS
    handshake once its whole first record is there. Empty if the peer closed first; TimeoutError if
    nothing (or not the whole record) came within ``timeout``."""
    loop = asyncio.get_running_loop()
    readable = loop.create_future()
    loop.add_reader(sock.fileno(), lambda: readable.done() or readable.set_result(None))
    try:
        await asyncio.wait_for(readable, timeout)
    finally:
        loop.remove_reader(sock.fileno())
    deadline = time.monotonic() + timeout
    while True:
        head = sock.recv(MAX_RECORD, socket.MSG_PEEK)
        whole_record = len(head) >= RECORD_HEADER and len(head) >= RECORD_HEADER + int.from_bytes(head[3:5], "big")
        if head[:1] != bytes([HANDSHAKE]) or (len(head) >= 3 and not looks_like_tls(head)) or whole_record:
            return head
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {len(head)} bytes of a TLS record arrived within {timeout} s")
        await asyncio.sleep(0.001)  # the rest of the record is on its way; the socket stays readable meanwhile
