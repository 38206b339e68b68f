"""Envoy's HTTP connection manager (HCM), as the lab sidecar runs it on an HTTP port.

Where a listener's filter chain ends in ``envoy.filters.network.http_connection_manager`` Envoy
stops splicing bytes and reads HTTP: each request goes through the chain's ``http_filters`` in order
(decoding), then to the upstream, and its response back through them in reverse (encoding). A
filter may answer itself (a local reply, which the encoders see too, as Envoy sends local replies
through the encoder chain); a filter that fails answers 503 unless its policy is to fail open.
Once the response is written each filter is told the stream is done, then the access loggers log
it and the tracer ends its span, as Envoy does after the stream completes. The HCM keeps Envoy's
downstream request counters, printed under Envoy's Prometheus names.

As Envoy's HCM does by default (``generate_request_id``) it gives every request an
``x-request-id`` when it has none, and (``suppress_envoy_headers`` off) tells the client how long
the upstream took in ``x-envoy-upstream-service-time``. While the proxy drains, each response says
``connection: close`` and the connection ends after it (Envoy's HTTP/1.1 drain).

    HcmConfig              what one HCM runs: its stat prefix, filters, access loggers, tracer, route
    HcmStats               Envoy's http.<stat_prefix>.downstream_rq_* counters, in Prometheus text
    HttpConnectionManager  serve one downstream connection, keep-alive, with one upstream connection
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING

import h11

from meshlab.envoy.http1 import HOP_BY_HOP, LOCAL_REPLY, UpstreamConnection, read_request, write_response
from meshlab.envoy.httpfilter import FilterFailure, FilterStream, Headers, HttpFilter, LocalReply, StreamInfo

if TYPE_CHECKING:  # the tracer's module brings gRPC and OpenTelemetry's protos: only what a configuration asks for
    from meshlab.envoy.accesslog import AccessLog
    from meshlab.telemetry.tracing import Tracer

#: RouteAction.timeout's default (route_components.proto): 15 s from the end of the request to the end of the answer.
ROUTE_TIMEOUT_S = 15.0


@dataclass
class HcmStats:
    """Envoy's ``http.<stat_prefix>.downstream_rq_total`` and ``downstream_rq_<N>xx``; Envoy's
    Prometheus output turns the prefix and the class into tags (its default tag extractors
    ``envoy.http_conn_manager_prefix`` and ``envoy.response_code_class``)."""

    requests: Counter = field(default_factory=Counter)  # stat prefix -> requests
    classes: Counter = field(default_factory=Counter)  # (stat prefix, "2") -> requests
    telemetry_failures: int = 0  # access log or span writes that failed (meshlab's, not an Envoy stat)

    def count(self, stat_prefix: str, status: int) -> None:
        self.requests[stat_prefix] += 1
        self.classes[(stat_prefix, str(status // 100))] += 1

    def prometheus(self) -> str:
        lines = ["# TYPE envoy_http_downstream_rq_total counter"]
        lines += [f'envoy_http_downstream_rq_total{{envoy_http_conn_manager_prefix="{prefix}"}} {n}' for prefix, n in sorted(self.requests.items())]
        lines.append("# TYPE envoy_http_downstream_rq_xx counter")
        lines += [f'envoy_http_downstream_rq_xx{{envoy_response_code_class="{code}",envoy_http_conn_manager_prefix="{prefix}"}} {n}'
                  for (prefix, code), n in sorted(self.classes.items())]
        return "\n".join(lines) + "\n"


@dataclass
class HcmConfig:
    """One HCM: ``stat_prefix`` (Istio's inbound ones read ``inbound_0.0.0.0_<port>``), ``filters``
    in decoding order (the router is implied, last), ``access_logs`` (each with ``log(StreamInfo)``),
    ``tracer`` (``start(Headers)`` -> span or None, ``finish(span, StreamInfo)``), and the route's
    name and cluster as the access log reports them."""

    stat_prefix: str
    filters: Sequence[HttpFilter] = ()
    access_logs: Sequence[AccessLog] = ()
    tracer: Tracer | None = None
    route_name: str | None = None
    cluster: str | None = None


@dataclass
class _Exchange:
    """One request's journey: what the filters, the access logs and the tracer need once it is over."""

    info: StreamInfo
    streams: list[tuple[HttpFilter, FilterStream]]
    span: object | None
    status: int = 0
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""


class HttpConnectionManager:
    """Serves one downstream connection with ``config``; ``connect`` opens the upstream connection
    (once, then kept alive: one downstream connection, one upstream connection, as the lab's inbound
    path to the app needs); ``stats`` is shared by the proxy's HCMs."""

    def __init__(self, config: HcmConfig, connect: Callable[[], Awaitable[UpstreamConnection]], stats: HcmStats,
                 draining: Callable[[], bool] = lambda: False) -> None:
        self.config, self.connect, self.stats, self.draining = config, connect, stats, draining
        self.upstream: UpstreamConnection | None = None

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, scheme: str = "http",
                    local: tuple[str, int] | None = None) -> None:
        """Serve requests until the client or the proxy ends the connection; ``local`` is the
        downstream local address to report (a redirected connection's original destination)."""
        http = h11.Connection(h11.SERVER)
        remote, local = writer.get_extra_info("peername"), local or writer.get_extra_info("sockname")
        try:
            while (request := await read_request(http, reader)) is not None:
                head, body = request
                exchange = await self._stream(head, body, scheme)
                exchange.info.downstream_remote_address = f"{remote[0]}:{remote[1]}"
                exchange.info.downstream_local_address = f"{local[0]}:{local[1]}"
                draining = self.draining()  # a draining proxy closes each connection after its current response
                keep = await write_response(http, writer, exchange.status, exchange.headers, exchange.body, close=draining)
                self._finish(exchange)
                if draining or not keep:
                    break
        except (h11.ProtocolError, ConnectionError):
            pass  # a client that broke HTTP or went away: nothing to answer
        finally:
            writer.close()
            if self.upstream is not None:
                self.upstream.close()

    async def _stream(self, head: h11.Request, body: bytes, scheme: str) -> _Exchange:
        """One request through decoders, upstream and encoders."""
        started = time.perf_counter()
        pairs = [(name.decode("latin-1"), value.decode("latin-1")) for name, value in head.headers]
        authority = next((value for name, value in pairs if name == "host"), "")
        request = Headers([(":method", head.method.decode()), (":path", head.target.decode("latin-1")), (":authority", authority),
                           (":scheme", scheme), *((name, value) for name, value in pairs if name != "host")])
        if request.get("x-request-id") is None:
            request.set("x-request-id", str(uuid.uuid4()))
        info = StreamInfo(datetime.now(timezone.utc), request, bytes_received=len(body), route_name=self.config.route_name,
                          upstream_cluster=self.config.cluster)
        span = self.config.tracer.start(request) if self.config.tracer is not None else None
        streams: list[tuple[HttpFilter, FilterStream]] = [(f, f.new_stream()) for f in self.config.filters]
        request_body = bytearray(body)
        reply = self._run(streams, lambda s: s.request_headers(request, not request_body))
        if reply is None and request_body:
            reply = self._run(streams, lambda s: s.request_body(request_body, True))
        if reply is None:
            status, response_pairs, answer = await self._forward(request, bytes(request_body), info)
        else:
            status, response_pairs, answer = reply.status, list(reply.headers), reply.body
            info.response_code_details, info.response_flags = reply.details, reply.response_flags
        response = Headers([(":status", str(status)), *response_pairs])
        response_body = bytearray(answer)
        encoders = streams[::-1]
        if (late := self._run(encoders, lambda s: s.response_headers(response, not response_body))) is not None:
            response, response_body = Headers([(":status", str(late.status)), *late.headers]), bytearray(late.body)
            info.response_code_details = late.details
        elif response_body and (late := self._run(encoders, lambda s: s.response_body(response_body, True))) is not None:
            response, response_body = Headers([(":status", str(late.status)), *late.headers]), bytearray(late.body)
            info.response_code_details = late.details
        final = int(response.get(":status") or 500)
        info.response_headers, info.response_code, info.bytes_sent = response, final, len(response_body)
        info.duration_ms = int((time.perf_counter() - started) * 1000)
        return _Exchange(info, streams, span, final, response.regular(), bytes(response_body))

    def _run(self, streams: list[tuple[HttpFilter, FilterStream]], step: Callable[[FilterStream], LocalReply | None]) -> LocalReply | None:
        """Call one step of each filter in turn until one answers. A filter that fails open is left
        out of the rest of the stream; one that fails closed answers 503."""
        for position, (configured, stream) in enumerate(list(streams)):
            try:
                reply = step(stream)
            except FilterFailure as failure:
                if configured.fail_open:
                    streams.remove((configured, stream))
                    continue
                return LocalReply(503, b"", [("content-type", "text/plain")], failure.details)
            if reply is not None:
                return reply
        return None

    async def _forward(self, request: Headers, body: bytes, info: StreamInfo) -> tuple[int, list[tuple[str, str]], bytes]:
        """The router: the request to the upstream, its answer back (or Envoy's local reply and flag)."""
        sent = time.perf_counter()
        try:
            if self.upstream is None or not self.upstream.usable:
                self.upstream = await self.connect()
        except OSError:
            info.response_flags, info.response_code_details = "UF", "upstream_reset_before_response_started{connection_failure}"
            return 503, [("content-type", "text/plain")], LOCAL_REPLY["UF"]
        upstream = self.upstream
        info.upstream_host = "{}:{}".format(*upstream.writer.get_extra_info("peername")[:2])
        info.upstream_local_address = "{}:{}".format(*upstream.writer.get_extra_info("sockname")[:2])
        headers = [("host", request.get(":authority") or ""), *((n, v) for n, v in request.regular() if n not in HOP_BY_HOP)]
        try:
            async with asyncio.timeout(ROUTE_TIMEOUT_S):
                status, answer_headers, answer = await upstream.exchange(request.get(":method") or "GET", request.get(":path") or "/", headers, body)
        except TimeoutError:
            self._drop_upstream()
            info.response_flags, info.response_code_details = "UT", "upstream_response_timeout"
            return 504, [("content-type", "text/plain")], LOCAL_REPLY["UT"]
        except (OSError, h11.ProtocolError):
            self._drop_upstream()
            info.response_flags, info.response_code_details = "UC", "upstream_reset_before_response_started{connection_termination}"
            return 503, [("content-type", "text/plain")], LOCAL_REPLY["UC"]
        elapsed = int((time.perf_counter() - sent) * 1000)
        info.upstream_service_time_ms, info.response_code_details = elapsed, "via_upstream"
        pairs = [(n.decode("latin-1").lower(), v.decode("latin-1")) for n, v in answer_headers]
        return status, [*pairs, ("x-envoy-upstream-service-time", str(elapsed))], answer

    def _drop_upstream(self) -> None:
        if self.upstream is not None:
            self.upstream.close()
            self.upstream = None

    def _finish(self, exchange: _Exchange) -> None:
        """After the response left: filters' done, then the access logs, then the span (Envoy's order)."""
        info = exchange.info
        self.stats.count(self.config.stat_prefix, info.response_code)
        for _, stream in exchange.streams:
            stream.done(info)
        for access_log in self.config.access_logs:
            self._telemetry(access_log.log, info)
        if exchange.span is not None:
            self._telemetry(self.config.tracer.finish, exchange.span, info)

    def _telemetry(self, call, *args) -> None:
        """A logger or tracer that fails loses its record, never the traffic (counted in the stats)."""
        try:
            call(*args)
        except Exception:  # noqa: BLE001 (any sink's failure: the request is already answered)
            self.stats.telemetry_failures += 1
