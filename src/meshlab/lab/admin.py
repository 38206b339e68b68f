"""The lab sidecar's admin interface, at Envoy's addresses and with Envoy's paths.

Envoy serves its admin API on a local address (Istio's bootstrap: 127.0.0.1:15000), and Istio's
bootstrap adds a ``prometheus_stats`` listener on 0.0.0.0:15090 that exposes only
``/stats/prometheus`` (the rules leave 15090 uncaptured, so Prometheus reaches it). pilot-agent talks
to the proxy through these: it asks ``/ready`` before saying the pod is ready, reads
``/stats/prometheus`` for the merged metrics on 15020, and on SIGTERM posts
``/drain_listeners?inboundonly&graceful``. meshlab's sidecar answers the same calls. Standard
library only: the sidecar imports this module before it drops its privileges.

    ADMIN_PORT, PROMETHEUS_PORT   Istio's 15000 and 15090
    AdminServer                   serve the admin paths for one proxy (``ready``, ``drain``, ``prometheus``, ``config_dump``)
"""

from __future__ import annotations

import asyncio
from urllib.parse import parse_qs, urlsplit

ADMIN_PORT = 15000  # Istio's bootstrap (tools/packaging/common/envoy_bootstrap.json): admin on 127.0.0.1:15000
PROMETHEUS_PORT = 15090  # the same bootstrap's prometheus_stats listener
_REASONS = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"}


class AdminServer:
    """Envoy's admin paths, answered by ``proxy``: ``state`` ("LIVE" or "DRAINING"), ``drain(inbound_only,
    graceful)``, ``prometheus()`` (text) and ``config_dump(query)`` (JSON text)."""

    def __init__(self, proxy) -> None:
        self.proxy = proxy

    async def listen(self, admin_port: int = ADMIN_PORT, prometheus_port: int | None = PROMETHEUS_PORT) -> None:
        await asyncio.start_server(lambda r, w: self._serve(r, w, stats_only=False), "127.0.0.1", admin_port, reuse_address=True)
        if prometheus_port is not None:
            await asyncio.start_server(lambda r, w: self._serve(r, w, stats_only=True), "0.0.0.0", prometheus_port, reuse_address=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, stats_only: bool) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            method, target, _ = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ", 2)
            status, kind, body = self.answer(method, target, stats_only)
            writer.write(f"HTTP/1.1 {status} {_REASONS[status]}\r\ncontent-type: {kind}\r\ncontent-length: {len(body)}\r\n"
                         f"connection: close\r\n\r\n".encode() + body)
            await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError, ConnectionError):
            pass  # not HTTP, or gone: nothing to answer
        finally:
            writer.close()

    def answer(self, method: str, target: str, stats_only: bool = False) -> tuple[int, str, bytes]:
        """(status, content type, body) for one admin request, as Envoy's admin answers it."""
        url = urlsplit(target)
        query = parse_qs(url.query, keep_blank_values=True)
        text = "text/plain; charset=UTF-8"
        if url.path == "/stats/prometheus":
            return 200, "text/plain; version=0.0.4", self.proxy.prometheus().encode()
        if stats_only:
            return 404, text, b"the prometheus_stats listener serves /stats/prometheus only\n"
        if url.path == "/ready":
            live = self.proxy.state == "LIVE"
            return (200 if live else 503), text, f"{self.proxy.state}\n".encode()
        if url.path == "/drain_listeners":
            if method != "POST":
                return 405, text, b"/drain_listeners: use POST\n"
            self.proxy.drain(inbound_only="inboundonly" in query, graceful="graceful" in query)
            return 200, text, b"OK\n"
        if url.path == "/config_dump":
            return 200, "application/json", self.proxy.config_dump(query).encode()
        return 404, text, b"admin paths: /ready, /drain_listeners (POST), /stats/prometheus, /config_dump\n"
