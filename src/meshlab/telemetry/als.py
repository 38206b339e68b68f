"""Envoy's access log service (ALS): access log entries streamed over gRPC instead of written to a file.

Envoy's ``envoy.access_loggers.http_grpc`` opens one client stream of
``envoy.service.accesslog.v3.AccessLogService/StreamAccessLogs`` and writes batches of
HTTPAccessLogEntry to it; the server never answers (als.proto). The first message of a stream
carries an Identifier (the node and the log's name) and later ones do not. Entries are buffered and
a batch is sent when the buffer reaches ``buffer_size_bytes`` or every ``buffer_flush_interval``,
whichever comes first. A proxy must never wait for its log server, so ``log`` only puts the entry
on a bounded queue; a background thread batches and sends, and what cannot be queued or was in
flight on a stream that broke is counted as dropped (Envoy's ``logs_dropped`` beside
``logs_written``, as its gRPC access log statistics name them).

    BUFFER_FLUSH_INTERVAL_S, BUFFER_SIZE_BYTES   Envoy's defaults for the batching
    RESPONSE_FLAGS        Envoy's short response flags -> the ResponseFlags field each sets
    http_log_entry        a finished stream's StreamInfo -> envoy.data.accesslog.v3.HTTPAccessLogEntry
    HttpGrpcAccessLog     the ALS client: ``log(info)`` never blocks; ``flush()``, ``close()``, logs_written/logs_dropped
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator

import grpc
from envoy.config.core.v3 import address_pb2, base_pb2
from envoy.data.accesslog.v3 import accesslog_pb2
from envoy.service.accesslog.v3 import als_pb2, als_pb2_grpc

from meshlab.envoy.httpfilter import StreamInfo
from meshlab.telemetry.batching import Batcher

#: CommonGrpcAccessLogConfig.buffer_flush_interval's default, 1 s (envoy/extensions/access_loggers/grpc/v3/als.proto,
#: go-control-plane envoy v1.38.0).
BUFFER_FLUSH_INTERVAL_S = 1.0
#: CommonGrpcAccessLogConfig.buffer_size_bytes's default, 16384: a soft limit; 0 sends each entry alone (same source).
BUFFER_SIZE_BYTES = 16384
#: Istio's log_name for its HTTP ALS provider (HTTPEnvoyAccessLogFriendlyName, pilot/pkg/model/telemetry_logging.go).
ISTIO_HTTP_LOG_NAME = "http_envoy_accesslog"

#: Envoy's short response flags (%RESPONSE_FLAGS%, Envoy's access log docs) -> envoy.data.accesslog.v3.ResponseFlags' field.
RESPONSE_FLAGS = {
    "LH": "failed_local_healthcheck", "UH": "no_healthy_upstream", "UT": "upstream_request_timeout", "LR": "local_reset",
    "UR": "upstream_remote_reset", "UF": "upstream_connection_failure", "UC": "upstream_connection_termination",
    "UO": "upstream_overflow", "NR": "no_route_found", "DI": "delay_injected", "FI": "fault_injected", "RL": "rate_limited",
    "RLSE": "rate_limit_service_error", "DC": "downstream_connection_termination", "URX": "upstream_retry_limit_exceeded",
    "SI": "stream_idle_timeout", "IH": "invalid_envoy_request_headers", "DPE": "downstream_protocol_error",
    "UMSDR": "upstream_max_stream_duration_reached", "RFCF": "response_from_cache_filter", "NFCF": "no_filter_config_found",
    "DT": "duration_timeout", "UPE": "upstream_protocol_error", "NC": "no_cluster_found", "OM": "overload_manager",
    "DF": "dns_resolution_failure", "DR": "downstream_remote_reset",
}

_PROTOCOLS = {"HTTP/1.0": accesslog_pb2.HTTPAccessLogEntry.HTTP10, "HTTP/1.1": accesslog_pb2.HTTPAccessLogEntry.HTTP11,
              "HTTP/2": accesslog_pb2.HTTPAccessLogEntry.HTTP2, "HTTP/3": accesslog_pb2.HTTPAccessLogEntry.HTTP3}


def _address(text: str | None) -> address_pb2.Address | None:
    """``ip:port`` or ``[ip6]:port`` -> an envoy.config.core.v3.Address (None for nothing)."""
    if not text:
        return None
    host, _, port = text.rpartition(":")
    if not port.isdigit():
        host, port = text, "0"
    return address_pb2.Address(socket_address=address_pb2.SocketAddress(address=host.strip("[]"), port_value=int(port)))


def http_log_entry(info: StreamInfo) -> accesslog_pb2.HTTPAccessLogEntry:
    """The HTTPAccessLogEntry Envoy's HTTP gRPC logger would send for this stream (the fields the
    lab's StreamInfo knows; unknown response flags are refused, naming the ones accepted)."""
    common = accesslog_pb2.AccessLogCommon(route_name=info.route_name or "", upstream_cluster=info.upstream_cluster or "",
                                           upstream_transport_failure_reason=info.upstream_transport_failure_reason or "",
                                           connection_termination_details=info.connection_termination_details or "")
    common.start_time.FromDatetime(info.start_time)
    common.duration.FromMilliseconds(info.duration_ms)
    common.time_to_last_downstream_tx_byte.FromMilliseconds(info.duration_ms)
    for field, text in (("downstream_remote_address", info.downstream_remote_address), ("downstream_local_address", info.downstream_local_address),
                        ("upstream_remote_address", info.upstream_host), ("upstream_local_address", info.upstream_local_address)):
        if (address := _address(text)) is not None:
            getattr(common, field).CopyFrom(address)
    for flag in ([] if info.response_flags in ("", "-") else info.response_flags.split(",")):
        if flag not in RESPONSE_FLAGS:
            raise ValueError(f"unknown response flag {flag!r} in {info.response_flags!r}; Envoy's flags are {', '.join(RESPONSE_FLAGS)}")
        setattr(common.response_flags, RESPONSE_FLAGS[flag], True)
    headers = info.request_headers
    method = headers.get(":method") or ""
    request = accesslog_pb2.HTTPRequestProperties(
        request_method=base_pb2.RequestMethod.Value(method) if method in base_pb2.RequestMethod.keys() else base_pb2.METHOD_UNSPECIFIED,
        scheme=headers.get(":scheme") or "", authority=headers.get(":authority") or "", path=headers.get(":path") or "",
        user_agent=headers.get("user-agent") or "", referer=headers.get("referer") or "", forwarded_for=headers.get("x-forwarded-for") or "",
        request_id=headers.get("x-request-id") or "", original_path=headers.get("x-envoy-original-path") or "",
        request_body_bytes=info.bytes_received)
    response = accesslog_pb2.HTTPResponseProperties(response_body_bytes=info.bytes_sent, response_code_details=info.response_code_details)
    if info.response_code:
        response.response_code.value = info.response_code
    return accesslog_pb2.HTTPAccessLogEntry(common_properties=common, request=request, response=response,
                                            protocol_version=_PROTOCOLS.get(info.protocol, accesslog_pb2.HTTPAccessLogEntry.PROTOCOL_UNSPECIFIED))


class HttpGrpcAccessLog:
    """envoy.access_loggers.http_grpc: ``log`` turns the stream into an entry and queues it (never
    waits: a full queue drops it and counts it in ``logs_dropped``); a sender thread batches entries
    by size and interval and writes them to one StreamAccessLogs stream to ``target`` ("host:port"),
    opening a new stream, with the Identifier again, when the old one has broken. ``node_id`` is the
    proxy's xDS node id (e.g. ``sidecar~10.0.0.2~app.default~default.svc.cluster.local``).
    ``max_pending`` bounds the streams waiting to be sent: meshlab's bound, since Envoy's logger
    buffers by bytes and this one must not grow without end while the collector is away."""

    def __init__(self, target: str, node_id: str, node_cluster: str = "", log_name: str = ISTIO_HTTP_LOG_NAME,
                 buffer_flush_interval_s: float = BUFFER_FLUSH_INTERVAL_S, buffer_size_bytes: int = BUFFER_SIZE_BYTES,
                 max_pending: int = 10000) -> None:
        self.identifier = als_pb2.StreamAccessLogsMessage.Identifier(node=base_pb2.Node(id=node_id, cluster=node_cluster), log_name=log_name)
        self._lost = 0  # entries handed to a stream that broke before sending them
        self.logs_written = 0  # entries handed to a stream (less those it lost)
        self.streams_opened = 0
        self._lock = threading.Lock()
        self._channel = grpc.insecure_channel(target)
        self._stub = als_pb2_grpc.AccessLogServiceStub(self._channel)
        self._stream: tuple[queue.Queue, grpc.Future] | None = None
        self._batcher: Batcher[accesslog_pb2.HTTPAccessLogEntry] = Batcher(
            f"als-{log_name}", self._write, buffer_flush_interval_s, buffer_size_bytes, http_log_entry, lambda entry: entry.ByteSize(), max_pending)

    @property
    def logs_dropped(self) -> int:
        """Entries lost: not queued (queue full), not buildable (``last_error``) or on a stream that broke."""
        return self._batcher.dropped + self._lost

    @property
    def last_error(self) -> str | None:
        """Why the last entry that could not be built was dropped (an unknown response flag, say)."""
        return self._batcher.last_error

    def log(self, info: StreamInfo) -> None:
        """Queue one finished stream; returns at once (its entry is built on the sender thread)."""
        self._batcher.offer(info)

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every entry logged so far was written to a stream or dropped."""
        return self._batcher.flush(timeout)

    def close(self, timeout: float = 5.0) -> None:
        """Send what is queued, end the stream (a half-close) and the channel."""
        self._batcher.close(timeout)
        if self._stream is not None:
            outbox, call = self._stream
            outbox.put(None)
            try:
                call.result(timeout=timeout)
            except (grpc.RpcError, grpc.FutureTimeoutError):
                pass
        self._channel.close()

    def _write(self, batch: list[accesslog_pb2.HTTPAccessLogEntry]) -> None:
        """Write one batch to the open stream, opening one (Identifier first) if there is none or it broke."""
        message = als_pb2.StreamAccessLogsMessage(http_logs=als_pb2.StreamAccessLogsMessage.HTTPAccessLogEntries(log_entry=batch))
        if self._stream is None or self._stream[1].done():
            message.identifier.CopyFrom(self.identifier)
            box: queue.Queue = queue.Queue()
            call = self._stub.StreamAccessLogs.future(_messages(box))
            self._stream = (box, call)
            self.streams_opened += 1
            call.add_done_callback(lambda _, box=box: self._broken(box))
        outbox, call = self._stream
        with self._lock:
            self.logs_written += len(batch)
        outbox.put(len(batch))
        outbox.put(message)
        if call.done():  # it broke while we wrote: its callback may have run before our batch was in
            self._broken(outbox)

    def _broken(self, outbox: queue.Queue) -> None:
        """A stream ended: what still waits in its outbox was never sent, so it counts as dropped."""
        lost = 0
        while True:
            try:
                item = outbox.get_nowait()
            except queue.Empty:
                break
            if isinstance(item, int):
                lost += item
        with self._lock:
            self.logs_written -= lost
            self._lost += lost


def _messages(outbox: queue.Queue) -> Iterator[als_pb2.StreamAccessLogsMessage]:
    """The request iterator gRPC reads a stream's messages from; a count precedes each message
    (so that the unsent can be counted), None ends the stream."""
    while True:
        item = outbox.get()
        if item is None:
            return
        if not isinstance(item, int):
            yield item
