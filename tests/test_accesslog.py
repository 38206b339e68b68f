"""Envoy's access log formats as meshlab fills them: Istio's default TEXT and JSON formats (read back
from Istio's own source), Envoy's operator rules, and the meshConfig switches."""

from __future__ import annotations

import io
import json
import re
from datetime import datetime, timedelta, timezone

import pytest

from meshlab.envoy import accesslog
from meshlab.envoy.accesslog import FormatError, JsonFormatter, TextFormatter, from_mesh_config
from meshlab.envoy.httpfilter import Headers, StreamInfo
from meshlab.upstream import source
from meshlab.upstream.versions import ISTIO


def finished(**changes) -> StreamInfo:
    """A request the lab's sidecar forwarded: GET /productpage through outbound|9080||productpage."""
    info = StreamInfo(
        start_time=datetime(2026, 11, 30, 20, 41, 7, 123456, tzinfo=timezone.utc),
        request_headers=Headers([(":method", "GET"), (":path", "/productpage?u=normal"), (":authority", "productpage:9080"),
                                 (":scheme", "http"), ("user-agent", "curl/8.5.0"),
                                 ("x-request-id", "0f8fad5b-d9cb-469f-a165-70867728950e")]),
        response_headers=Headers([(":status", "200"), ("x-envoy-upstream-service-time", "4")]),
        response_code=200, response_code_details="via_upstream", bytes_received=0, bytes_sent=5183, duration_ms=5,
        upstream_host="10.44.0.7:9080", upstream_cluster="outbound|9080||productpage.default.svc.cluster.local",
        upstream_local_address="10.44.0.5:40312", downstream_local_address="10.96.0.12:9080",
        downstream_remote_address="10.44.0.5:51234", route_name="default")
    for name, value in changes.items():
        setattr(info, name, value)
    return info


def istio_telemetry_logging() -> str:
    folder = source.cached_source(ISTIO)
    assert folder is not None, f"{ISTIO.spec} is not in Go's module cache: make upstream"
    return (folder / "pilot" / "pkg" / "model" / "telemetry_logging.go").read_text()


@pytest.mark.upstream
def test_the_default_text_format_is_istios_read_from_its_source():
    go = istio_telemetry_logging()
    block = go[go.index("EnvoyTextLogFormat = "):go.index("HTTPEnvoyAccessLogFriendlyName")]
    pieces = re.findall(r'"((?:[^"\\]|\\.)*)"', block)
    assert "".join(pieces).replace('\\"', '"').replace("\\n", "\n") == accesslog.ISTIO_TEXT_FORMAT


@pytest.mark.upstream
def test_the_default_json_format_has_istios_keys_and_operators_read_from_its_source():
    go = istio_telemetry_logging()
    block = go[go.index("EnvoyJSONLogFormatIstio = "):go.index("envoyStateToLog = ")]
    istio = dict(re.findall(r'"(\w+)":\s*\{Kind: &structpb.Value_StringValue\{StringValue: "([^"]*)"\}\}', block))
    assert len(istio) == 24
    assert istio == accesslog.ISTIO_JSON_FORMAT


def test_istios_default_text_line_for_a_forwarded_request():
    line = TextFormatter(accesslog.ISTIO_TEXT_FORMAT).format(finished())
    assert line == ('[2026-11-30T20:41:07.123Z] "GET /productpage?u=normal HTTP/1.1" 200 - via_upstream - "-" 0 5183 5 4 "-" '
                    '"curl/8.5.0" "0f8fad5b-d9cb-469f-a165-70867728950e" "productpage:9080" "10.44.0.7:9080" '
                    "outbound|9080||productpage.default.svc.cluster.local 10.44.0.5:40312 10.96.0.12:9080 10.44.0.5:51234 - default\n")


def test_a_local_reply_has_dashes_where_no_upstream_was_reached():
    line = TextFormatter(accesslog.ISTIO_TEXT_FORMAT).format(finished(
        response_code=503, response_flags="UF", response_code_details="upstream_reset_before_response_started{connection_failure}",
        upstream_host=None, upstream_local_address=None, response_headers=None, bytes_sent=91,
        upstream_transport_failure_reason="delayed_connect_error:_111", route_name=None))
    fields = line.split()
    assert fields[4:9] == ["503", "UF", "upstream_reset_before_response_started{connection_failure}", "-", '"delayed_connect_error:_111"']
    assert '"-" outbound|9080||productpage.default.svc.cluster.local - 10.96.0.12:9080' in line
    assert line.endswith(" - -\n")  # no SNI, no route


def test_start_time_is_rfc3339_utc_with_milliseconds_whatever_the_zone():
    cest = timezone(timedelta(hours=2))
    info = finished(start_time=datetime(2026, 11, 30, 22, 41, 7, 999999, tzinfo=cest))
    text = TextFormatter("%START_TIME%").format(info)
    assert text == "2026-11-30T20:41:07.999Z"
    assert datetime.fromisoformat(text) == datetime(2026, 11, 30, 20, 41, 7, 999000, tzinfo=timezone.utc)


def test_start_time_takes_envoys_subsecond_specifiers():
    formatter = TextFormatter("%START_TIME(%Y/%m/%d %H:%M:%E3S)% %START_TIME(%H%M%S.%6f)% %START_TIME(%9f)%")
    assert formatter.format(finished()) == "2026/11/30 20:41:07.123 204107.123456 123456000"


def test_req_falls_back_to_the_second_header_and_truncates():
    rewritten = finished()
    rewritten.request_headers.set("x-envoy-original-path", "/api/v1/reviews")
    assert TextFormatter("%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%").format(rewritten) == "/api/v1/reviews"
    assert TextFormatter("%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%").format(finished()) == "/productpage?u=normal"
    assert TextFormatter("%REQ(:PATH):5%|%REQ(USER-AGENT):4%|%REQ(x-missing):3%").format(finished()) == "/prod|curl|-"
    assert TextFormatter("%REQ_WITHOUT_QUERY(:PATH)% %DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%").format(finished()) == "/productpage 10.44.0.5"


def test_json_keeps_numbers_as_numbers_and_absent_values_as_null():
    record = json.loads(JsonFormatter(accesslog.ISTIO_JSON_FORMAT).format(finished()))
    assert list(record) == sorted(accesslog.ISTIO_JSON_FORMAT)  # Envoy always sorts the keys
    assert record["response_code"] == 200 and record["bytes_sent"] == 5183 and record["duration"] == 5
    assert record["upstream_service_time"] == "4"  # a header's value stays text
    assert record["x_forwarded_for"] is None and record["requested_server_name"] is None
    assert record["response_flags"] == "-" and record["start_time"] == "2026-11-30T20:41:07.123Z"


def test_omit_empty_values_drops_dashes_and_null_keys():
    info = finished(route_name=None)
    assert TextFormatter("[%ROUTE_NAME%|%RESPONSE_CODE%]", omit_empty_values=True).format(info) == "[|200]"
    assert JsonFormatter({"route": "%ROUTE_NAME%", "code": "%RESPONSE_CODE%"}, omit_empty_values=True).format(info) == '{"code":200}\n'


def test_json_values_mixing_text_and_operators_are_text():
    record = json.loads(JsonFormatter({"line": "%RESPONSE_CODE% from %UPSTREAM_HOST% sni=%REQUESTED_SERVER_NAME%"}).format(finished()))
    assert record == {"line": "200 from 10.44.0.7:9080 sni=-"}


@pytest.mark.parametrize("text, said", [
    ("%NOT_AN_OPERATOR%", "unknown command operator %NOT_AN_OPERATOR%"),
    ("%REQ%", "%REQ% needs a header name"),
    ("%RESPONSE_CODE(x)%", "%RESPONSE_CODE% takes no argument"),
    ("%REQ(A?B?C)%", "at most one alternative header"),
    ("100% done", "malformed command"),
])
def test_bad_formats_are_refused_naming_what_is_wrong(text, said):
    with pytest.raises(FormatError, match=re.escape(said)):
        TextFormatter(text)


def test_unknown_operator_error_lists_what_is_accepted():
    with pytest.raises(FormatError, match="UPSTREAM_CLUSTER_RAW"):
        JsonFormatter({"x": "%UPSTREAM_PEER_URI_SAN%"})


# fileAccessLogFormat's cases in Istio's pilot/pkg/model/telemetry_logging_test.go (TestFileAccessLogFormat)
@pytest.mark.parametrize("given, expected", [
    ("", accesslog.ISTIO_TEXT_FORMAT),
    ("[%START_TIME%] %REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% \n", "[%START_TIME%] %REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% \n"),
    ("[%START_TIME%] %REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%", "[%START_TIME%] %REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%\n"),
], ids=["empty", "contains newline", "miss newline"])
def test_mesh_config_text_format_gets_istios_newline_rule(given, expected):
    log = from_mesh_config(io.StringIO(), "TEXT", given)
    assert log is not None and isinstance(log.formatter, TextFormatter) and log.formatter.text == expected


def test_mesh_config_without_a_file_logs_nothing_and_refuses_unknown_encodings():
    assert from_mesh_config("", "TEXT") is None
    with pytest.raises(FormatError, match="accepted: TEXT, JSON"):
        from_mesh_config("/dev/stdout", "YAML")
    with pytest.raises(FormatError, match="not JSON"):
        from_mesh_config("/dev/stdout", "JSON", "{method: %REQ(:METHOD)%}")


def test_json_sink_writes_one_object_a_line_to_a_file(tmp_path):
    path = tmp_path / "access.log"
    log = from_mesh_config(str(path), "JSON", '{"code": "%RESPONSE_CODE%", "who": "%REQ(USER-AGENT)%"}')
    assert log is not None
    log.log(finished())
    log.log(finished(response_code=404))
    log.close()
    assert [json.loads(line) for line in path.read_text().splitlines()] == [{"code": 200, "who": "curl/8.5.0"}, {"code": 404, "who": "curl/8.5.0"}]


def test_text_sink_writes_istios_line_to_a_stream():
    stream = io.StringIO()
    log = from_mesh_config(stream, "TEXT")
    assert log is not None
    log.log(finished())
    assert stream.getvalue() == TextFormatter(accesslog.ISTIO_TEXT_FORMAT).format(finished())
