"""The HCM's tracing: Envoy's request-id-based sampling, W3C traceparent, and spans over OTLP/gRPC,
checked against OpenTelemetry's own SDK (its propagator reads and writes traceparent, its OTLP
exporter sends to meshlab's collector)."""

from __future__ import annotations

import random
import time
import uuid
from datetime import datetime, timezone

import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.trace.v1 import trace_pb2
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from meshlab.envoy.httpfilter import Headers, StreamInfo
from meshlab.telemetry.tracing import (ISTIO_RANDOM_SAMPLING, TRACE_STATUS_POSITION, OtlpExporter, Sampling, Tracer, TraceStatus,
                                       decide, parse_traceparent, request_id_draw)
from meshlab.upstream.versions import ISTIO, ISTIO_REPLACEMENTS, Module
from test_telemetry_als import upstream_text

NODE = "sidecar~10.44.0.5~productpage-v1-abc.default~default.svc.cluster.local"


def seeded_request_ids(count: int, seed: int = 16) -> list[str]:
    rng = random.Random(seed)
    return [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(count)]


def request(request_id: str, *extra: tuple[str, str]) -> Headers:
    return Headers([(":method", "GET"), (":path", "/productpage"), (":authority", "productpage:9080"), (":scheme", "http"),
                    ("x-request-id", request_id), *extra])


def finished(headers: Headers, code: int = 200) -> StreamInfo:
    return StreamInfo(start_time=datetime(2026, 11, 30, 20, 41, 7, tzinfo=timezone.utc), request_headers=headers, response_code=code,
                      bytes_received=0, bytes_sent=5183, duration_ms=5, upstream_host="10.44.0.7:9080",
                      upstream_cluster="inbound|9080||", downstream_remote_address="10.44.0.9:51234")


def sampled_among(ids: list[str], percent: float) -> int:
    return sum(decide(request(rid), Sampling(random=percent)) is TraceStatus.SAMPLED for rid in ids)


def test_zero_samples_nothing_and_a_hundred_everything():
    ids = seeded_request_ids(2000)
    assert sampled_among(ids, 0.0) == 0
    assert sampled_among(ids, 100.0) == 2000


def test_one_percent_of_ten_thousand_ids_is_decided_by_the_ids_alone():
    ids = seeded_request_ids(10_000)
    expected = sum(int(rid[:8], 16) % 10000 < 100 for rid in ids)  # Envoy's draw: 8 hex digits mod 10,000, below 1.00 %
    assert sampled_among(ids, 1.0) == expected == sampled_among(ids, 1.0)
    assert 70 <= expected <= 130  # about 1 %, as a uniform draw gives
    assert sampled_among(ids, 0.5) < expected < sampled_among(ids, 2.0)


def test_the_decision_is_written_into_the_request_id_so_the_next_proxy_keeps_it():
    headers = request("00000005-d9cb-469f-a165-70867728950e")  # draws 5: in at 1 %
    assert decide(headers, Sampling(random=1.0)) is TraceStatus.SAMPLED
    assert headers.get("x-request-id") == "00000005-d9cb-969f-a165-70867728950e"
    # the next hop samples nothing at random, yet keeps the trace
    assert decide(headers, Sampling(random=0.0)) is TraceStatus.SAMPLED
    unsampled = request("000003e8-d9cb-469f-a165-70867728950e")  # draws 1000: out at 1 %
    assert decide(unsampled, Sampling(random=1.0)) is TraceStatus.NO_TRACE
    assert unsampled.get("x-request-id") == "000003e8-d9cb-469f-a165-70867728950e"


def test_forced_and_client_traces_and_the_overall_cap():
    forced = request(seeded_request_ids(1)[0], ("x-envoy-force-trace", "true"))
    assert decide(forced, Sampling(random=0.0)) is TraceStatus.FORCED and forced.get("x-request-id")[14] == "a"
    client = request(seeded_request_ids(1)[0], ("x-client-trace-id", "abc"))
    assert decide(client, Sampling(random=0.0)) is TraceStatus.CLIENT and client.get("x-request-id")[14] == "b"
    capped = request(seeded_request_ids(1)[0], ("x-envoy-force-trace", "true"))
    assert decide(capped, Sampling(random=100.0, overall=0.0)) is TraceStatus.NO_TRACE
    assert request_id_draw("not-hex!") is None and decide(request("not-hex!"), Sampling()) is TraceStatus.NO_TRACE


def test_bad_percentages_are_refused():
    with pytest.raises(ValueError, match="random_sampling must be a percentage from 0 to 100"):
        Sampling(random=101)


def test_traceparent_from_opentelemetrys_propagator_is_continued_and_ours_reads_back():
    provider = TracerProvider()
    propagator = TraceContextTextMapPropagator()
    with provider.get_tracer("client").start_as_current_span("client call", kind=SpanKind.CLIENT) as caller:
        carrier: dict[str, str] = {}
        propagator.inject(carrier)
    parent = caller.get_span_context()
    headers = request(seeded_request_ids(1)[0], ("traceparent", carrier["traceparent"]))
    span = Tracer(None, NODE, Sampling(random=0.0)).start(headers)
    assert span.context.trace_id == parent.trace_id.to_bytes(16, "big") and span.parent_span_id == parent.span_id.to_bytes(8, "big")
    assert span.context.sampled  # the caller sampled it: the proxy keeps the caller's flag
    upstream = propagator.extract({"traceparent": headers.get("traceparent")})
    seen = trace.get_current_span(upstream).get_span_context()
    assert (seen.trace_id, seen.span_id, seen.trace_flags.sampled) == (parent.trace_id, int.from_bytes(span.context.span_id, "big"), True)
    assert seen.span_id != parent.span_id


@pytest.mark.parametrize("value", ["", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331", "zz-" + "a" * 32 + "-" + "b" * 16 + "-01",
                                   "00-" + "0" * 32 + "-b7ad6b7169203331-01", "00-0af7651916cd43dd8448eb211c80319c-" + "0" * 16 + "-01"])
def test_a_malformed_traceparent_starts_a_new_trace(value):
    assert parse_traceparent(value) is None
    headers = request("00000005-d9cb-469f-a165-70867728950e", ("traceparent", value))
    span = Tracer(None, NODE, Sampling(random=1.0)).start(headers)
    assert span.parent_span_id == b"" and span.context.sampled
    assert parse_traceparent(headers.get("traceparent")) == span.context


def test_opentelemetry_sdk_spans_arrive_at_meshlabs_collector(collector):
    exporter = OTLPSpanExporter(endpoint=collector.address, insecure=True)
    provider = TracerProvider(resource=Resource.create({"service.name": "reviews"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with provider.get_tracer("sdk-test").start_as_current_span("GET /reviews", kind=SpanKind.SERVER) as span:
        span.set_attribute("http.status_code", 200)
    provider.shutdown()
    received = collector.wait_for_spans(1)
    assert len(received) == 1 and received[0].resource["service.name"] == "reviews" and received[0].scope == "sdk-test"
    assert received[0].span.name == "GET /reviews" and received[0].span.kind == trace_pb2.Span.SPAN_KIND_SERVER
    assert received[0].span.trace_id == span.get_span_context().trace_id.to_bytes(16, "big")
    assert received[0].attributes["http.status_code"] == 200


def run_requests(tracer: Tracer, ids: list[str], code: int = 200) -> list:
    spans = []
    for rid in ids:
        headers = request(rid)
        span = tracer.start(headers)
        tracer.finish(span, finished(headers, code))
        spans.append(span)
    return spans


@pytest.mark.parametrize("percent", [0.0, 1.0, 100.0])
def test_meshlabs_exporter_sends_exactly_the_sampled_spans(collector, percent):
    ids = seeded_request_ids(10_000 if percent == 1.0 else 300)
    exporter = OtlpExporter(collector.address, "productpage.default", flush_interval_s=0.05)
    tracer = Tracer(exporter, NODE, Sampling(random=percent), inbound=True, operation="productpage.default.svc.cluster.local:9080/*")
    try:
        spans = run_requests(tracer, ids)
        assert exporter.flush(timeout=30)
    finally:
        exporter.close()
    expected = sum(int(rid[:8], 16) % 10000 < round(percent * 100) for rid in ids)
    assert exporter.spans_exported == expected == sum(span.context.sampled for span in spans)
    assert len(collector.wait_for_spans(expected, timeout=5 if expected else 0.2)) == expected


def test_a_span_carries_envoys_attributes_and_reads_back(collector):
    exporter = OtlpExporter(collector.address, "productpage.default", flush_interval_s=0.05)
    tracer = Tracer(exporter, NODE, Sampling(random=100.0), inbound=False)
    try:
        ok, failed = run_requests(tracer, seeded_request_ids(1, seed=1)), run_requests(tracer, seeded_request_ids(1, seed=2), code=503)
        assert exporter.flush()
    finally:
        exporter.close()
    received = {item.span.span_id: item for item in collector.wait_for_spans(2)}
    span = received[ok[0].context.span_id]
    assert span.resource == {"service.name": "productpage.default"}
    assert span.span.name == "productpage:9080/*" and span.span.kind == trace_pb2.Span.SPAN_KIND_CLIENT
    assert span.span.end_time_unix_nano - span.span.start_time_unix_nano == 5_000_000
    attributes = span.attributes
    assert attributes["component"] == "proxy" and attributes["node_id"] == NODE
    assert attributes["http.method"] == "GET" and attributes["http.url"] == "http://productpage:9080/productpage"
    assert attributes["http.status_code"] == "200" and attributes["upstream_cluster"] == "inbound|9080||"
    assert attributes["guid:x-request-id"] == ok[0].request_id and ok[0].request_id[14] == "9"
    assert "error" not in attributes and span.span.status.code == trace_pb2.Status.STATUS_CODE_UNSET
    bad = received[failed[0].context.span_id]
    assert bad.attributes["error"] == "true" and bad.span.status.code == trace_pb2.Status.STATUS_CODE_ERROR


def test_no_collector_costs_the_proxy_nothing_but_the_spans():
    exporter = OtlpExporter("127.0.0.1:1", "productpage.default", flush_interval_s=0.05, export_timeout_s=1)
    tracer = Tracer(exporter, NODE, Sampling(random=100.0))
    try:
        started = time.perf_counter()
        run_requests(tracer, seeded_request_ids(200))
        took = time.perf_counter() - started
        assert exporter.flush(timeout=20)
    finally:
        exporter.close()
    assert exporter.spans_exported == 0 and exporter.spans_dropped == 200 and exporter.export_failures >= 1
    print(f"start+finish with no collector: {took / 200 * 1e6:.1f} us per request")



ENVOY_API = Module("github.com/envoyproxy/go-control-plane/envoy", ISTIO_REPLACEMENTS["github.com/envoyproxy/go-control-plane/envoy"][0], "", "")


@pytest.mark.upstream
def test_the_trace_status_digits_are_those_of_envoys_uuid_extension():
    uuid_proto = upstream_text(ENVOY_API, "extensions/request_id/uuid/v3/uuid.pb.go")
    assert "Tracing decision (sampled, forced, etc) is set in 13th nibble of the UUID." in uuid_proto
    assert "'4' indicates a default UUID and no trace status" in uuid_proto and TraceStatus.NO_TRACE.value == "4"
    for digit, said in (("9", "Sampled"), ("a", "Force traced due to server-side override"), ("b", "Force traced due to client-side")):
        assert f"'{digit}': {said}" in uuid_proto
    assert str(uuid.UUID(int=0, version=4))[TRACE_STATUS_POSITION] == "4"  # the 13th hex digit of a UUID4's text


@pytest.mark.upstream
def test_the_sampling_defaults_are_envoys_and_istios():
    hcm = upstream_text(ENVOY_API, "extensions/filters/network/http_connection_manager/v3/http_connection_manager.pb.go")
    assert "selected for trace generation, if not requested by the client or not forced." in hcm
    assert Sampling() == Sampling(100.0, 100.0, 100.0) and hcm.count("Default: 100%") >= 3
    features = upstream_text(ISTIO, "pilot/pkg/features/telemetry.go")
    assert f'"PILOT_TRACE_SAMPLING", {ISTIO_RANDOM_SAMPLING},' in features
