"""Envoy's tls_inspector, meshlab's: ClientHellos written by OpenSSL (through Python's ssl), not by us."""

from __future__ import annotations

import asyncio
import socket
import ssl

import pytest

from meshlab.lab.tlsinspector import looks_like_tls, peek, server_name

SNI = "outbound_.9080_._.hello.default.svc.cluster.local"


def client_hello(sni: str | None) -> bytes:
    """The first flight of a real TLS client (OpenSSL), with or without a server name."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    outgoing = ssl.MemoryBIO()
    tls = context.wrap_bio(ssl.MemoryBIO(), outgoing, server_hostname=sni)
    with pytest.raises(ssl.SSLWantReadError):
        tls.do_handshake()
    return outgoing.read()


def test_the_sni_of_an_openssl_client_hello_is_read():
    hello = client_hello(SNI)
    assert looks_like_tls(hello)
    assert server_name(hello) == SNI


def test_a_client_hello_without_sni_names_nothing():
    assert server_name(client_hello(None)) is None


def test_plaintext_is_not_tls():
    assert not looks_like_tls(b"GET / HTTP/1.1\r\n")
    assert not looks_like_tls(b"\x16")  # too short to say
    assert not looks_like_tls(b"\x17\x03\x03")  # application data, not a handshake


@pytest.mark.parametrize("cut", [10, 60, -20])
def test_a_truncated_client_hello_is_refused_with_where(cut):
    with pytest.raises(ValueError, match="truncated ClientHello"):
        server_name(client_hello(SNI)[:cut])


def test_a_handshake_record_that_is_not_a_client_hello_is_refused():
    hello = bytearray(client_hello(SNI))
    hello[5] = 2  # ServerHello
    with pytest.raises(ValueError, match="does not hold a ClientHello"):
        server_name(bytes(hello))


def test_peek_waits_for_the_whole_record_and_leaves_it_unread():
    hello = client_hello(SNI)

    async def scenario() -> tuple[bytes, bytes]:
        left, right = socket.socketpair()
        right.setblocking(False)
        left.sendall(hello[:40])  # the record arrives in two pieces
        asyncio.get_running_loop().call_later(0.05, left.sendall, hello[40:])
        seen = await peek(right)
        unread = right.recv(len(hello) + 10)
        left.close()
        right.close()
        return seen, unread

    seen, unread = asyncio.run(scenario())
    assert seen == hello and unread == hello, "peeked whole, and still there for the next reader"


def test_peek_of_plaintext_returns_at_once():
    async def scenario() -> bytes:
        left, right = socket.socketpair()
        right.setblocking(False)
        left.sendall(b"GET / HTTP/1.1\r\n\r\n")
        seen = await peek(right)
        left.close()
        right.close()
        return seen

    assert asyncio.run(scenario()).startswith(b"GET /")
