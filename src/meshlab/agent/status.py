"""The agent's status server on 15020: the kubelet's probes, the pod's readiness and the merged metrics.

Paths as pilot/cmd/pilot-agent/status/server.go serves them (Istio 1.30):

- ``/healthz/ready``: 200 when the proxy is ready, else 503. Istio's agent reads Envoy's admin stats
  (server.state LIVE, workers started, first LDS and CDS received); meshlab's proxy answers Envoy's
  admin ``/ready`` (200 "LIVE"), which says the same thing in one call. Envoy's 15021 listener
  forwards here (meshlab.agent.bootstrap); a lab without that listener can have this server listen on
  15021 too.
- ``/app-health/<container>/<livez|readyz|startupz>``: the original probe (meshlab.agent.probes); an
  unknown path is 400 with the path named.
- ``/stats/prometheus``: agent + proxy (15090) + app metrics (meshlab.agent.metrics).

HTTP/1.1, one request per connection, standard library only.

    ProxyAdmin     the proxy's admin and stats addresses, and the calls the agent makes to them
    StatusServer   serve the paths above: start(ports) on an asyncio loop, stop()
"""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.request
from dataclasses import dataclass, field

from meshlab.agent.bootstrap import ADMIN_PORT, ENVOY_PROMETHEUS_PORT, STATUS_PORT
from meshlab.agent.metrics import AgentMetrics, Scrape, merge
from meshlab.agent.probes import ProbeError, run_prober

_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed", 500: "Internal Server Error", 503: "Service Unavailable"}


def _get(url: str, timeout: float, method: str = "GET", accept: str | None = None) -> Scrape:
    request = urllib.request.Request(url, method=method, headers={"Accept": accept} if accept else {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return Scrape(response.read(), response.headers.get("Content-Type", ""))
    except urllib.error.HTTPError as error:
        return Scrape(error.read(), error.headers.get("Content-Type", ""), error=f"HTTP {error.code}")
    except (OSError, ValueError) as error:
        return Scrape(error=str(error))


@dataclass(frozen=True)
class ProxyAdmin:
    """Where the agent reaches its proxy: admin (Envoy's 15000, loopback) and the stats listener (15090)."""

    host: str = "127.0.0.1"
    admin_port: int = ADMIN_PORT
    prometheus_port: int = ENVOY_PROMETHEUS_PORT
    timeout: float = 2.0

    def ready(self) -> Scrape:
        return _get(f"http://{self.host}:{self.admin_port}/ready", self.timeout)

    def drain(self, path: str) -> Scrape:
        return _get(f"http://{self.host}:{self.admin_port}{path}", self.timeout, method="POST")

    def active_connection_stats(self) -> Scrape:
        return _get(f"http://{self.host}:{self.admin_port}/stats?usedonly&filter=downstream_cx_active$", self.timeout)

    def prometheus(self) -> Scrape:
        # server.go allowedEnvoyTypes: the agent asks Envoy for text only
        return _get(f"http://{self.host}:{self.prometheus_port}/stats/prometheus", self.timeout, accept="text/plain")


@dataclass
class StatusServer:
    """``probers``: ISTIO_KUBE_APP_PROBERS parsed (path -> prober); ``app_metrics``: (port, path) or None;
    ``pod_ip``: where the app is probed and scraped (Istio probes the pod IP, scrapes localhost)."""

    pod_ip: str
    proxy: ProxyAdmin = field(default_factory=ProxyAdmin)
    probers: dict[str, dict] = field(default_factory=dict)
    app_metrics: tuple[int, str] | None = None
    metrics: AgentMetrics = field(default_factory=AgentMetrics)
    _servers: list[asyncio.Server] = field(default_factory=list, init=False, repr=False)

    async def start(self, ports: tuple[int, ...] = (STATUS_PORT,), host: str = "0.0.0.0") -> StatusServer:
        for port in ports:
            self._servers.append(await asyncio.start_server(self._serve, host, port, reuse_address=True))
        return self

    async def stop(self) -> None:
        for server in self._servers:
            server.close()
            await server.wait_closed()
        self._servers.clear()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, target, _ = lines[0].split(" ", 2)
            headers = {name.strip().lower(): value.strip() for name, _, value in (line.partition(":") for line in lines[1:] if line)}
            status, content_type, body = await self.answer(method, target, headers)
            writer.write(f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}\r\nContent-Type: {content_type}\r\n"
                         f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body)
            await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, ValueError):
            pass
        finally:
            writer.close()

    async def answer(self, method: str, target: str, headers: dict[str, str]) -> tuple[int, str, bytes]:
        text = "text/plain; charset=utf-8"
        path = target.split("?", 1)[0]
        if method != "GET":
            return 405, text, f"{path}: use GET\n".encode()
        if path == "/healthz/ready":
            ready = await asyncio.to_thread(self.proxy.ready)
            return (200, text, b"") if ready.error is None else (503, text, f"proxy not ready: {ready.error}\n".encode())
        if path.startswith("/app-health/"):
            prober = self.probers.get(path)
            if prober is None:
                return 400, text, f"app prober config does not exist for {path}; configured: {sorted(self.probers)}\n".encode()
            try:
                return await asyncio.to_thread(run_prober, prober, self.pod_ip, headers.get("host")), text, b""
            except ProbeError as error:
                return 500, text, f"{error}\n".encode()
        if path == "/stats/prometheus":
            envoy = asyncio.to_thread(self.proxy.prometheus)
            if self.app_metrics is None:
                app = None
                envoy_scrape = await envoy
            else:
                port, metrics_path = self.app_metrics
                envoy_scrape, app = await asyncio.gather(envoy, asyncio.to_thread(
                    _get, f"http://127.0.0.1:{port}{metrics_path}", self.proxy.timeout, "GET", headers.get("accept")))
            content_type, body = merge(self.metrics, envoy_scrape, app)
            return 200, content_type, body
        return 404, text, b"agent paths: /healthz/ready, /app-health/<container>/<livez|readyz|startupz>, /stats/prometheus\n"
