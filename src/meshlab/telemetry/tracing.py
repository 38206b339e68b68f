"""Envoy's HCM tracing: which requests are traced, W3C trace context, spans exported over OTLP.

The sampling decision is made once per request from its ``x-request-id`` and written into it, so
every proxy on the request's way keeps the first one's decision (the trace is whole or absent). As
Envoy's UUID request-id extension does (envoy/extensions/request_id/uuid/v3/uuid.proto): the UUID's
13th hex digit, fixed to '4' by UUID4, carries the trace status ('9' sampled, 'a' forced by the
server, 'b' forced by the client); a request whose id says '4' is decided here, in the order Envoy's
HCM tracing config states (http_connection_manager.proto, Tracing): client-requested
(``x-client-trace-id``, ``client_sampling``), forced (``x-envoy-force-trace``), then
``random_sampling``; ``overall_sampling`` caps them all. The random draw is not random: it is the
request id's first 8 hex digits modulo 10,000, compared with the percentage in hundredths (Envoy's
UUIDRequestIDExtension::modBy and its fractional-percent check, source/extensions/request_id/uuid
and source/common/http/conn_manager_utility.cc; read from memory of Envoy's source, which is not
available here: the protos state only that the id makes sampling stable).

The span context travels in W3C ``traceparent`` (version 00): a request that has one continues its
trace (same trace id, the parent's span id as parent, the parent's sampled flag), one without
starts a trace; the proxy's own span id goes upstream in the header either way.

    ISTIO_RANDOM_SAMPLING   Istio's default sampling percentage (PILOT_TRACE_SAMPLING)
    OTLP_*                  the exporter's batching defaults, OpenTelemetry SDK's
    TraceStatus             the trace status an x-request-id carries
    Sampling                the HCM's client/random/overall sampling percentages
    SpanContext             trace id, span id, sampled: what traceparent carries
    Span                    one proxy's span of one request
    request_id_draw         x-request-id -> 0..9999, Envoy's stable "random" value
    decide                  the HCM's trace decision for a request, written into its x-request-id
    parse_traceparent       a traceparent header -> SpanContext, None if absent or malformed
    OtlpExporter            spans -> OTLP ExportTraceServiceRequest over gRPC, batched off the request path
    Tracer                  what the HCM calls: start(headers) -> Span, finish(span, info)
    otlp_span               a finished request's span in OTLP, with Envoy's attribute names
"""

from __future__ import annotations

import enum
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.resource.v1 import resource_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

from meshlab.envoy.httpfilter import Headers, StreamInfo
from meshlab.telemetry.batching import Batcher

#: Istio's mesh-wide trace sampling default, 1.0 % (PILOT_TRACE_SAMPLING, pilot/pkg/features/telemetry.go at the
#: pinned 1.30.3 commit); Istio sets client and overall sampling to 100 % (configureSampling, pilot/pkg/networking/core/tracing.go).
ISTIO_RANDOM_SAMPLING = 1.0
#: Where a UUID4's version digit sits in its text form ("xxxxxxxx-xxxx-4xxx-..."): uuid.proto's "13th nibble".
TRACE_STATUS_POSITION = 14
#: The scope name meshlab's spans are exported under (Envoy's own is not known here).
SCOPE = "meshlab.telemetry"
#: An OTLP exporter's batching: a batch every 5 s or at 512 spans, at most 2048 waiting, 30 s per export: the
#: OpenTelemetry SDK's BatchSpanProcessor defaults (OTEL_BSP_*, opentelemetry-sdk 1.45.2 sdk/trace/export/__init__.py).
OTLP_FLUSH_INTERVAL_S, OTLP_BATCH_SPANS, OTLP_MAX_PENDING, OTLP_EXPORT_TIMEOUT_S = 5.0, 512, 2048, 30.0
if "flags" not in trace_pb2.Span.DESCRIPTOR.fields_by_name:
    # xds-protos ships an older copy of opentelemetry/proto (no Span.flags) at the same paths as opentelemetry-proto;
    # whichever pip installed last wins.
    raise ImportError("opentelemetry.proto here is xds-protos's older copy (its Span has no flags); "
                      "fix: pip install --force-reinstall --no-deps opentelemetry-proto==1.45.2")
_TRACEPARENT = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")


class TraceStatus(enum.Enum):
    """What an x-request-id says of its trace (uuid.proto): the digit at TRACE_STATUS_POSITION."""

    NO_TRACE = "4"
    SAMPLED = "9"
    FORCED = "a"
    CLIENT = "b"


@dataclass(frozen=True)
class Sampling:
    """The HCM's tracing percentages (http_connection_manager.proto Tracing; each defaults to 100 %)."""

    random: float = 100.0
    client: float = 100.0
    overall: float = 100.0

    def __post_init__(self) -> None:
        for name in ("random", "client", "overall"):
            value = getattr(self, name)
            if not 0.0 <= value <= 100.0:
                raise ValueError(f"{name}_sampling must be a percentage from 0 to 100, got {value}")

    @staticmethod
    def hit(percent: float, draw: int) -> bool:
        """Envoy keeps a percentage as a fraction of 10,000 (``Percent`` -> ``FractionalPercent``
        TEN_THOUSAND, rounded); a draw 0..9999 below it is in."""
        return draw < round(percent * 100)


@dataclass(frozen=True)
class SpanContext:
    trace_id: bytes  # 16 bytes
    span_id: bytes  # 8 bytes
    sampled: bool

    def traceparent(self) -> str:
        """This context as a W3C traceparent header value (version 00)."""
        return f"00-{self.trace_id.hex()}-{self.span_id.hex()}-{'01' if self.sampled else '00'}"


@dataclass
class Span:
    """One proxy's span of one request: ``context`` is this span's (what went upstream), ``parent_span_id``
    the caller's span (empty at the trace's root)."""

    name: str
    context: SpanContext
    parent_span_id: bytes
    start_ns: int
    request_id: str
    attributes: dict[str, str] = field(default_factory=dict)


def request_id_draw(request_id: str) -> int | None:
    """The request id's first 8 hex digits modulo 10,000: the same id always draws the same value.
    None when the id does not start with 8 hex digits (Envoy then cannot use it for sampling)."""
    try:
        return int(request_id[:8], 16) % 10000 if len(request_id) >= 8 else None
    except ValueError:
        return None


def _status(request_id: str) -> TraceStatus:
    if len(request_id) == 36 and request_id[TRACE_STATUS_POSITION] in "49ab":
        return TraceStatus(request_id[TRACE_STATUS_POSITION])
    return TraceStatus.NO_TRACE


def decide(headers: Headers, sampling: Sampling) -> TraceStatus:
    """The trace decision for this request, written back into its x-request-id (pack_trace_reason):
    an id that already says traced keeps it; else client, forced, random in turn; overall caps all."""
    request_id = headers.get("x-request-id") or ""
    draw = request_id_draw(request_id)
    if draw is None:
        return TraceStatus.NO_TRACE
    status = _status(request_id)
    decided = status
    if status is TraceStatus.NO_TRACE:
        if headers.get("x-client-trace-id") is not None and Sampling.hit(sampling.client, draw):
            decided = TraceStatus.CLIENT
        elif headers.get("x-envoy-force-trace") is not None:
            decided = TraceStatus.FORCED
        elif Sampling.hit(sampling.random, draw):
            decided = TraceStatus.SAMPLED
    if not Sampling.hit(sampling.overall, draw):
        decided = TraceStatus.NO_TRACE
    if decided is not status and len(request_id) == 36:
        headers.set("x-request-id", request_id[:TRACE_STATUS_POSITION] + decided.value + request_id[TRACE_STATUS_POSITION + 1:])
    return decided


def parse_traceparent(value: str | None) -> SpanContext | None:
    """A W3C traceparent (version 00) -> its context; None when absent or malformed, or with an all-zero
    trace or span id, which W3C Trace Context says to treat as no parent (a new trace starts)."""
    match = _TRACEPARENT.fullmatch(value.strip().lower()) if value else None
    if match is None or set(match.group(1)) == {"0"} or set(match.group(2)) == {"0"}:
        return None
    return SpanContext(bytes.fromhex(match.group(1)), bytes.fromhex(match.group(2)), bool(int(match.group(3), 16) & 1))


def _attribute(key: str, value: str) -> common_pb2.KeyValue:
    return common_pb2.KeyValue(key=key, value=common_pb2.AnyValue(string_value=value))


def _flags(span: Span) -> int:
    """OTLP Span.flags: the W3C trace flags (sampled) and whether the parent was remote (another process's span)."""
    return (trace_pb2.SPAN_FLAGS_TRACE_FLAGS_MASK & int(span.context.sampled)) | trace_pb2.SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK | (
        trace_pb2.SPAN_FLAGS_CONTEXT_IS_REMOTE_MASK if span.parent_span_id else 0)


class OtlpExporter:
    """Finished spans to an OTLP/gRPC TraceService at ``target`` ("host:port"), batched on a sender
    thread (a batch every ``flush_interval_s`` or at ``batch_limit`` spans); a failed export counts
    its spans in ``spans_dropped`` and is not retried, so a missing collector costs the proxy nothing."""

    def __init__(self, target: str, service_name: str, flush_interval_s: float = OTLP_FLUSH_INTERVAL_S, batch_limit: int = OTLP_BATCH_SPANS,
                 export_timeout_s: float = OTLP_EXPORT_TIMEOUT_S, max_pending: int = OTLP_MAX_PENDING) -> None:
        self.resource = resource_pb2.Resource(attributes=[_attribute("service.name", service_name)])
        self.export_timeout_s = export_timeout_s
        self.spans_exported = 0
        self.export_failures = 0
        self._lost = 0
        self._channel = grpc.insecure_channel(target)
        self._stub = trace_service_pb2_grpc.TraceServiceStub(self._channel)
        self._batcher: Batcher[trace_pb2.Span] = Batcher(f"otlp-{service_name}", self._export, flush_interval_s, batch_limit,
                                                         lambda make_span: make_span(), max_pending=max_pending)

    @property
    def spans_dropped(self) -> int:
        return self._batcher.dropped + self._lost

    def export(self, make_span: Callable[[], trace_pb2.Span]) -> None:
        """Queue one finished span, as the call that builds it (on the sender thread); returns at once."""
        self._batcher.offer(make_span)

    def flush(self, timeout: float = 10.0) -> bool:
        return self._batcher.flush(timeout)

    def close(self, timeout: float = 10.0) -> None:
        self._batcher.close(timeout)
        self._channel.close()

    def _export(self, spans: list[trace_pb2.Span]) -> None:
        request = trace_service_pb2.ExportTraceServiceRequest(resource_spans=[trace_pb2.ResourceSpans(
            resource=self.resource, scope_spans=[trace_pb2.ScopeSpans(scope=common_pb2.InstrumentationScope(name=SCOPE), spans=spans)])])
        try:
            self._stub.Export(request, timeout=self.export_timeout_s)
        except grpc.RpcError:
            self.export_failures += 1
            self._lost += len(spans)
        else:
            self.spans_exported += len(spans)


class Tracer:
    """The HCM's tracer for one listener: ``start`` decides, continues or begins the trace and sets
    the span context going upstream; ``finish`` fills the span from the stream and exports it if
    sampled. ``inbound`` spans are SERVER spans (a sidecar's inbound listener), outbound CLIENT."""

    def __init__(self, exporter: OtlpExporter | None, node_id: str, sampling: Sampling = Sampling(random=ISTIO_RANDOM_SAMPLING),
                 inbound: bool = True, operation: str | None = None) -> None:
        self.exporter, self.node_id, self.sampling, self.inbound, self.operation = exporter, node_id, sampling, inbound, operation

    def start(self, headers: Headers) -> Span:
        """Begin this request's span: the decision goes into x-request-id, the new context into traceparent."""
        status = decide(headers, self.sampling)
        parent = parse_traceparent(headers.get("traceparent"))
        sampled = parent.sampled if parent is not None else status is not TraceStatus.NO_TRACE
        context = SpanContext(parent.trace_id if parent else os.urandom(16), os.urandom(8), sampled)
        headers.set("traceparent", context.traceparent())
        authority = headers.get(":authority") or "-"
        # Istio names a route's spans by its decorator, "<host>:<port>/*" (route.go); without one: the authority.
        name = self.operation or f"{authority}/*"
        return Span(name, context, parent.span_id if parent else b"", time.time_ns(), headers.get("x-request-id") or "")

    def finish(self, span: Span, info: StreamInfo) -> None:
        """End the span; if it is sampled, the exporter builds it from the stream (on its thread) and sends it."""
        if span.context.sampled and self.exporter is not None:
            self.exporter.export(partial(otlp_span, span, info, self.node_id, self.inbound))


def otlp_span(span: Span, info: StreamInfo, node_id: str, inbound: bool) -> trace_pb2.Span:
    """The OTLP span of a finished request, with the attributes Envoy's HCM sets under the names of
    Envoy's Tracing::Tags (source/common/tracing, as recalled from Envoy's source and tracing docs: not
    readable here), then the span's own (Istio's ``istio.*`` custom tags, say)."""
    request = info.request_headers
    url = f"{request.get(':scheme') or 'http'}://{request.get(':authority') or ''}{request.get(':path') or ''}"
    error = info.response_code >= 500 or info.response_code == 0  # Envoy tags error=true on no response or a 5xx
    values = {"component": "proxy", "node_id": node_id, "guid:x-request-id": span.request_id, "http.url": url,
              "http.method": request.get(":method") or "", "http.protocol": info.protocol, "user_agent": request.get("user-agent") or "-",
              "downstream_cluster": request.get("x-envoy-downstream-service-cluster") or "-",
              "peer.address": info.downstream_remote_address, "request_size": str(info.bytes_received),
              "response_size": str(info.bytes_sent), "http.status_code": str(info.response_code), "response_flags": info.response_flags or "-",
              "upstream_cluster": info.upstream_cluster or "-", "upstream_cluster.name": info.upstream_cluster or "-",
              "upstream_address": info.upstream_host or "-", **span.attributes}
    if error:
        values["error"] = "true"
    return trace_pb2.Span(trace_id=span.context.trace_id, span_id=span.context.span_id, parent_span_id=span.parent_span_id,
                          name=span.name, start_time_unix_nano=span.start_ns, end_time_unix_nano=span.start_ns + max(info.duration_ms, 0) * 1_000_000,
                          kind=trace_pb2.Span.SPAN_KIND_SERVER if inbound else trace_pb2.Span.SPAN_KIND_CLIENT, flags=_flags(span),
                          attributes=[_attribute(key, value) for key, value in values.items()],
                          status=trace_pb2.Status(code=trace_pb2.Status.STATUS_CODE_ERROR if error else trace_pb2.Status.STATUS_CODE_UNSET))
