"""The sidecar's splice on loopback (no namespaces needed): bytes both ways, EOFs, the hop record,
services resolved round robin, and a failed upstream reported."""

from __future__ import annotations

import asyncio
import io
import json

import pytest

from meshlab.lab import sidecar


async def _through_sidecar(monkeypatch, upstream_port: int, payload: bytes, services=None):
    log = io.StringIO()
    monkeypatch.setattr(sidecar, "original_destination", lambda sock: ("127.0.0.1", upstream_port))
    car = sidecar.Sidecar("pod0", services or sidecar.ServiceTable(None), log)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: sidecar._Downstream(car, "outbound"), "127.0.0.1", 0)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.sockets[0].getsockname()[1])
    writer.write(payload)  # sent at once: it may arrive before the upstream connection exists
    writer.write_eof()
    reply = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    for _ in range(50):
        if '"hop"' in log.getvalue():
            break
        await asyncio.sleep(0.01)
    server.close()
    return reply, [json.loads(line) for line in log.getvalue().splitlines()], car


async def _echo_server():
    async def handle(reader, writer):
        data = await reader.read()
        writer.write(b"echo:" + data)
        await writer.drain()
        writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0)


def test_bytes_flow_both_ways_and_the_hop_is_logged(monkeypatch):
    async def scenario():
        upstream = await _echo_server()
        port = upstream.sockets[0].getsockname()[1]
        reply, records, car = await _through_sidecar(monkeypatch, port, b"x" * 100_000)
        upstream.close()
        return port, reply, records, car

    port, reply, records, car = asyncio.run(scenario())
    assert reply == b"echo:" + b"x" * 100_000
    (hop,) = [r for r in records if r["event"] == "hop"]
    assert hop["original_dst"] == f"127.0.0.1:{port}" == hop["upstream"]
    assert (hop["bytes_from_downstream"], hop["bytes_from_upstream"]) == (100_000, 100_005)
    assert hop["error"] is None and hop["direction"] == "outbound"


def test_a_refused_upstream_is_reported_and_the_client_closed(monkeypatch, unused_tcp_port):
    reply, records, car = asyncio.run(_through_sidecar(monkeypatch, unused_tcp_port, b"hello"))
    assert reply == b""
    (hop,) = [r for r in records if r["event"] == "hop"]
    assert hop["error"].startswith(f"connect to 127.0.0.1:{unused_tcp_port} failed")
    assert hop["direction"] == "outbound" and hop["upstream"] == f"127.0.0.1:{unused_tcp_port}"


def test_service_vips_resolve_to_endpoints_round_robin(tmp_path):
    table_file = tmp_path / "services.json"
    table_file.write_text(json.dumps({"10.96.0.10:80": ["10.244.0.10:8080", "10.244.0.11:8080"]}))
    table = sidecar.ServiceTable(table_file)
    picks = [table.resolve("10.96.0.10", 80) for _ in range(3)]
    assert picks == [("10.244.0.10", 8080, "10.96.0.10:80"), ("10.244.0.11", 8080, "10.96.0.10:80"), ("10.244.0.10", 8080, "10.96.0.10:80")]
    assert table.resolve("10.244.0.99", 8080) == ("10.244.0.99", 8080, None)


@pytest.fixture
def unused_tcp_port():
    """A port that refuses connections and stays ours: bound, never listening, so nothing else can take
    it while the test runs (a connect() to it is answered with RST)."""
    import socket

    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        yield held.getsockname()[1]
