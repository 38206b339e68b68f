"""A telemetry collector on loopback: where the lab's proxies send access logs and spans.

One gRPC server serves Envoy's AccessLogService (envoy.service.accesslog.v3, the ALS a proxy streams
HTTPAccessLogEntry batches to) and OpenTelemetry's TraceService (opentelemetry.proto.collector.trace.v1,
OTLP over gRPC, what Envoy's OpenTelemetry tracer and OpenTelemetry's SDKs export spans to), and keeps
what arrives so that a notebook or a test can read it. It stands where Istio's samples put an
OpenTelemetry Collector or a log server.

    ReceivedLog         one HTTPAccessLogEntry with the Identifier of the stream it came on
    ReceivedSpan        one span with its resource's attributes (service.name, ...)
    TelemetryCollector  start() -> "127.0.0.1:port", stop(); http_logs, spans, streams, log_messages; wait_for_*
    serve               run a collector as a process (a lab's collector pod): each arrival one JSON line on stdout
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent import futures
from dataclasses import dataclass

import grpc
from envoy.config.core.v3 import base_pb2
from envoy.data.accesslog.v3 import accesslog_pb2
from envoy.service.accesslog.v3 import als_pb2, als_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.trace.v1 import trace_pb2


@dataclass(frozen=True)
class ReceivedLog:
    """An access log entry and whom it came from (the Identifier sent first on its stream)."""

    node_id: str
    log_name: str
    entry: accesslog_pb2.HTTPAccessLogEntry


@dataclass(frozen=True)
class ReceivedSpan:
    """A span as OTLP carried it, with its resource's attributes flattened to text."""

    resource: dict[str, str]
    scope: str
    span: trace_pb2.Span

    @property
    def attributes(self) -> dict[str, str | int | bool | float]:
        return {kv.key: _value(kv.value) for kv in self.span.attributes}


def _value(value: common_pb2.AnyValue) -> str | int | bool | float:
    kind = value.WhichOneof("value")
    return getattr(value, kind) if kind in ("string_value", "int_value", "bool_value", "double_value") else str(value)


class _AccessLogService(als_pb2_grpc.AccessLogServiceServicer):
    def __init__(self, collector: TelemetryCollector) -> None:
        self.collector = collector

    def StreamAccessLogs(self, request_iterator: Iterator[als_pb2.StreamAccessLogsMessage], context: grpc.ServicerContext) -> als_pb2.StreamAccessLogsResponse:
        identifier: als_pb2.StreamAccessLogsMessage.Identifier | None = None
        for message in request_iterator:
            if message.HasField("identifier"):
                identifier = message.identifier
            if identifier is None:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, "the first StreamAccessLogsMessage of a stream must carry an identifier (als.proto)")
            self.collector._keep_logs(identifier, message)
        return als_pb2.StreamAccessLogsResponse()


class _TraceService(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, collector: TelemetryCollector) -> None:
        self.collector = collector

    def Export(self, request: trace_service_pb2.ExportTraceServiceRequest, context: grpc.ServicerContext) -> trace_service_pb2.ExportTraceServiceResponse:
        self.collector._keep_spans(request)
        return trace_service_pb2.ExportTraceServiceResponse()


class TelemetryCollector:
    """Receives access logs (ALS) and spans (OTLP) on one loopback port and keeps them in order of arrival."""

    def __init__(self) -> None:
        self.http_logs: list[ReceivedLog] = []
        self.spans: list[ReceivedSpan] = []
        self.streams: list[als_pb2.StreamAccessLogsMessage.Identifier] = []  # each Identifier received (one per stream)
        self.log_messages = 0  # StreamAccessLogsMessages received, with or without an Identifier
        self._arrived = threading.Condition()
        self._server: grpc.Server | None = None

    def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Listen on ``host:port`` (0: any free port) and return the address to send to."""
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="collector"))
        als_pb2_grpc.add_AccessLogServiceServicer_to_server(_AccessLogService(self), server)
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(_TraceService(self), server)
        bound = server.add_insecure_port(f"{host}:{port}")
        if bound == 0:
            raise OSError(f"the telemetry collector could not listen on {host}:{port} (in use, or not a local address)")
        server.start()
        self._server = server
        return f"{host}:{bound}"

    def stop(self, grace: float = 0.5) -> None:
        """Stop listening; streams still open are cut (their senders see the server go away)."""
        if self._server is not None:
            self._server.stop(grace).wait()
            self._server = None

    def wait_for_logs(self, count: int, timeout: float = 10.0) -> list[ReceivedLog]:
        """The logs once at least ``count`` have arrived (or all that came within ``timeout``)."""
        return self._wait(lambda: len(self.http_logs) >= count, timeout, lambda: list(self.http_logs))

    def wait_for_spans(self, count: int, timeout: float = 10.0) -> list[ReceivedSpan]:
        """The spans once at least ``count`` have arrived (or all that came within ``timeout``)."""
        return self._wait(lambda: len(self.spans) >= count, timeout, lambda: list(self.spans))

    def _wait(self, enough: Callable[[], bool], timeout: float, taken: Callable[[], list]) -> list:
        deadline = time.monotonic() + timeout
        with self._arrived:
            while not enough() and self._arrived.wait(max(0.0, deadline - time.monotonic())):
                pass
            return taken()

    def _keep_logs(self, identifier: als_pb2.StreamAccessLogsMessage.Identifier, message: als_pb2.StreamAccessLogsMessage) -> None:
        with self._arrived:
            self.log_messages += 1
            if message.HasField("identifier"):
                self.streams.append(identifier)
            self.http_logs.extend(ReceivedLog(identifier.node.id, identifier.log_name, entry) for entry in message.http_logs.log_entry)
            self._arrived.notify_all()

    def _keep_spans(self, request: trace_service_pb2.ExportTraceServiceRequest) -> None:
        received = [ReceivedSpan({kv.key: str(_value(kv.value)) for kv in resource_spans.resource.attributes}, scope_spans.scope.name, span)
                    for resource_spans in request.resource_spans for scope_spans in resource_spans.scope_spans for span in scope_spans.spans]
        with self._arrived:
            self.spans.extend(received)
            self._arrived.notify_all()


def serve(port: int = 4317) -> None:
    """A collector as its own process, on every address of its network namespace (the lab's collector
    pod), until SIGTERM. Whatever arrives is written to stdout as one JSON line: ``{"event":
    "access_log", "node", "log_name", "method", "path", "status"}`` or ``{"event": "span", "service",
    "name", "trace_id", "attributes"}`` (4317 is OTLP's gRPC port, OpenTelemetry's specification)."""
    collector = TelemetryCollector()
    where = collector.start("0.0.0.0", port)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print(json.dumps({"event": "ready", "collector": where, "pid": os.getpid()}), flush=True)
    logs = spans = 0
    while not stop.wait(0.1):
        for received in collector.http_logs[logs:]:
            request = received.entry.request
            print(json.dumps({"event": "access_log", "node": received.node_id, "log_name": received.log_name, "method": base_pb2.RequestMethod.Name(request.request_method),
                              "path": request.path,
                              "status": received.entry.response.response_code.value}), flush=True)
            logs += 1
        for received in collector.spans[spans:]:
            print(json.dumps({"event": "span", "service": received.resource.get("service.name"), "name": received.span.name,
                              "trace_id": received.span.trace_id.hex(), "attributes": received.attributes}), flush=True)
            spans += 1
    collector.stop()
    sys.stdout.flush()
