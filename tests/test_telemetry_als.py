"""Envoy's access log service over real gRPC on loopback: entries arrive with the right fields, the
Identifier comes first on each stream, and a collector that goes away does not hold the proxy up."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timezone

import pytest
from envoy.config.core.v3 import base_pb2
from envoy.data.accesslog.v3 import accesslog_pb2

from meshlab.envoy.httpfilter import Headers, StreamInfo
from meshlab.telemetry import als
from meshlab.telemetry.als import HttpGrpcAccessLog, http_log_entry
from meshlab.telemetry.batching import Batcher
from meshlab.telemetry.collector import TelemetryCollector
from meshlab.upstream import source
from meshlab.upstream.versions import ISTIO, ISTIO_REPLACEMENTS, Module

NODE = "sidecar~10.44.0.5~productpage-v1-abc.default~default.svc.cluster.local"


def finished(n: int = 0, **changes) -> StreamInfo:
    info = StreamInfo(
        start_time=datetime(2026, 11, 30, 20, 41, 7, 123000, tzinfo=timezone.utc),
        request_headers=Headers([(":method", "POST"), (":path", f"/reviews/{n}"), (":authority", "reviews:9080"), (":scheme", "http"),
                                 ("user-agent", "curl/8.5.0"), ("x-request-id", f"req-{n}"), ("x-forwarded-for", "10.0.0.9")]),
        response_code=201, response_code_details="via_upstream", bytes_received=17, bytes_sent=42, duration_ms=6,
        upstream_host="10.44.0.7:9080", upstream_cluster="outbound|9080||reviews.default.svc.cluster.local",
        downstream_remote_address="10.44.0.5:51234", downstream_local_address="10.96.0.3:9080", route_name="reviews:9080")
    for name, value in changes.items():
        setattr(info, name, value)
    return info


def test_an_entry_carries_the_streams_facts_in_envoys_fields():
    entry = http_log_entry(finished(response_flags="UF,URX", upstream_transport_failure_reason="delayed_connect_error:_111"))
    common = entry.common_properties
    assert entry.protocol_version == accesslog_pb2.HTTPAccessLogEntry.HTTP11
    assert common.start_time.ToDatetime(tzinfo=timezone.utc) == datetime(2026, 11, 30, 20, 41, 7, 123000, tzinfo=timezone.utc)
    assert common.duration.ToMilliseconds() == 6
    assert (common.downstream_remote_address.socket_address.address, common.downstream_remote_address.socket_address.port_value) == ("10.44.0.5", 51234)
    assert common.upstream_remote_address.socket_address.address == "10.44.0.7"
    assert common.upstream_cluster == "outbound|9080||reviews.default.svc.cluster.local" and common.route_name == "reviews:9080"
    assert common.response_flags.upstream_connection_failure and common.response_flags.upstream_retry_limit_exceeded
    assert not common.response_flags.no_route_found
    assert common.upstream_transport_failure_reason == "delayed_connect_error:_111"
    assert entry.request.request_method == base_pb2.POST and entry.request.path == "/reviews/0"
    assert (entry.request.authority, entry.request.request_id, entry.request.forwarded_for) == ("reviews:9080", "req-0", "10.0.0.9")
    assert entry.request.request_body_bytes == 17 and entry.response.response_body_bytes == 42
    assert entry.response.response_code.value == 201 and entry.response.response_code_details == "via_upstream"


def test_unknown_response_flags_are_refused_naming_envoys():
    with pytest.raises(ValueError, match=r"unknown response flag 'XX'.*\bUF\b"):
        http_log_entry(finished(response_flags="XX"))


def test_entries_arrive_with_the_identifier_on_the_first_message_only(collector):
    client = HttpGrpcAccessLog(collector.address, NODE, node_cluster="productpage.default", buffer_size_bytes=0)
    try:
        for n in range(5):
            client.log(finished(n))
        assert client.flush()
        received = collector.wait_for_logs(5)
    finally:
        client.close()
    assert [log.entry.request.path for log in received] == [f"/reviews/{n}" for n in range(5)]
    assert {(log.node_id, log.log_name) for log in received} == {(NODE, als.ISTIO_HTTP_LOG_NAME)}
    assert collector.log_messages == 5 and len(collector.streams) == 1  # buffer_size_bytes 0: one entry a message
    assert collector.streams[0].node.cluster == "productpage.default"
    assert received[3].entry == http_log_entry(finished(3))
    assert (client.logs_written, client.logs_dropped, client.streams_opened) == (5, 0, 1)


def test_entries_are_batched_up_to_the_buffer_size(collector):
    one = http_log_entry(finished()).ByteSize()
    client = HttpGrpcAccessLog(collector.address, NODE, buffer_size_bytes=3 * one, buffer_flush_interval_s=30)
    try:
        for n in range(9):
            client.log(finished(n))
        assert client.flush(timeout=10)  # three full batches: none waits for the 30 s interval
        collector.wait_for_logs(9)
    finally:
        client.close()
    assert collector.log_messages == 3 and len(collector.http_logs) == 9


def test_a_collector_that_goes_away_does_not_stall_the_sender_and_a_new_one_gets_the_identifier_again():
    first = TelemetryCollector()
    address = first.start()
    client = HttpGrpcAccessLog(address, NODE, buffer_size_bytes=0, buffer_flush_interval_s=0.05)
    try:
        client.log(finished(0))
        assert client.flush() and first.wait_for_logs(1)
        first.stop()
        started = time.perf_counter()
        for n in range(1, 201):
            client.log(finished(n))
        took = time.perf_counter() - started
        assert client.flush(timeout=20), "the sender never got through its queue with the collector gone"
        assert client.logs_written + client.logs_dropped == 201
        print(f"log() with the collector gone: {took / 200 * 1e6:.1f} us per entry; written {client.logs_written}, dropped {client.logs_dropped}")
        second = TelemetryCollector()
        second.start(port=int(address.rsplit(":", 1)[1]))
        try:
            deadline = time.monotonic() + 20
            while not second.http_logs and time.monotonic() < deadline:
                client.log(finished(999))
                client.flush()
                second.wait_for_logs(1, timeout=0.5)
            assert second.http_logs, "no entry reached the collector that came back"
            assert second.streams[0].node.id == NODE and second.streams[0].log_name == als.ISTIO_HTTP_LOG_NAME
        finally:
            second.stop()
    finally:
        client.close(timeout=2)
    assert client.streams_opened >= 2


def test_a_full_queue_drops_and_counts_without_waiting():
    sending, release = threading.Event(), threading.Event()
    sent: list[list[int]] = []

    def slow_send(batch: list[int]) -> None:
        sending.set()
        release.wait(10)
        sent.append(batch)

    batcher: Batcher[int] = Batcher("test", slow_send, interval_s=0.01, batch_limit=1, max_pending=3)
    try:
        assert batcher.offer(0)
        assert sending.wait(5)  # the sender took record 0 and is stuck sending it: the queue holds 3 more, no more
        taken = [batcher.offer(n) for n in range(1, 8)]
        assert taken == [True, True, True, False, False, False, False] and batcher.dropped == 4
        release.set()
        assert batcher.flush()
    finally:
        batcher.close()
    assert sent == [[0], [1], [2], [3]]


def test_settings_envoy_would_refuse_are_refused():
    with pytest.raises(ValueError, match="interval must be > 0"):
        HttpGrpcAccessLog("127.0.0.1:1", NODE, buffer_flush_interval_s=0)


def upstream_text(module, relative: str) -> str:
    """A file of a pinned Go module, as Go's module cache has it; its comments flattened to one line."""
    folder = source.cached_source(module)
    assert folder is not None, f"{module.spec} is not in Go's module cache: make upstream"
    return " ".join(line.strip().removeprefix("//").strip() for line in (folder / relative).read_text().splitlines())


@pytest.mark.upstream
def test_the_batching_defaults_are_envoys_read_from_its_api():
    envoy_api = Module("github.com/envoyproxy/go-control-plane/envoy", ISTIO_REPLACEMENTS["github.com/envoyproxy/go-control-plane/envoy"][0], "", "")
    common = upstream_text(envoy_api, "extensions/access_loggers/grpc/v3/als.pb.go")
    assert "whichever comes first. Defaults to 1 second." in common and als.BUFFER_FLUSH_INTERVAL_S == 1.0
    assert "disables the batching. Defaults to 16384." in common and als.BUFFER_SIZE_BYTES == 16384
    service = upstream_text(envoy_api, "service/accesslog/v3/als.pb.go")
    assert "Identifier data that will only be sent in the first message on the stream." in service


@pytest.mark.upstream
def test_the_log_name_is_istios_for_its_http_als_provider():
    assert f'HTTPEnvoyAccessLogFriendlyName = "{als.ISTIO_HTTP_LOG_NAME}"' in upstream_text(ISTIO, "pilot/pkg/model/telemetry_logging.go")


def test_a_stream_whose_entry_cannot_be_built_is_dropped_and_the_sender_goes_on(collector):
    client = HttpGrpcAccessLog(collector.address, NODE, buffer_size_bytes=0)
    try:
        client.log(finished(0, response_flags="XX"))
        client.log(finished(1))
        assert client.flush()
        assert [log.entry.request.path for log in collector.wait_for_logs(1)] == ["/reviews/1"]
    finally:
        client.close()
    assert client.logs_dropped == 1 and "unknown response flag 'XX'" in (client.last_error or "")
