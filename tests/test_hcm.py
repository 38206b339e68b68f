"""The lab sidecar's HTTP connection manager: Envoy's filter order, local replies, fail policies, counters.

The client is httpx and the upstream Python's http.server, both real HTTP/1.1 peers; the filters are
small recording ones, so each test reads which filter saw what, in which order."""

from __future__ import annotations

import asyncio
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from meshlab.envoy.http1 import UpstreamConnection
from meshlab.envoy.httpfilter import FilterFailure, LocalReply
from meshlab.lab.hcm import HcmConfig, HcmStats, HttpConnectionManager


class _App(BaseHTTPRequestHandler):
    """Echoes what it received as JSON, as the lab's demo app does."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        body = json.dumps({"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()}}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


class Recording:
    """A filter that records its callbacks in ``seen`` and does what the test asks."""

    def __init__(self, name: str, seen: list, *, deny: bool = False, fail: bool = False, fail_open: bool = False, add: tuple | None = None) -> None:
        self.name, self.seen, self.deny, self.fail, self.fail_open, self.add = name, seen, deny, fail, fail_open, add

    def new_stream(self):
        return _RecordingStream(self)


class _RecordingStream:
    def __init__(self, config: Recording) -> None:
        self.config = config

    def request_headers(self, headers, end_stream):
        self.config.seen.append((self.config.name, "request"))
        if self.config.fail:
            raise FilterFailure(f"{self.config.name} trapped")
        if self.config.add:
            headers.add(*self.config.add)
        if self.config.deny:
            return LocalReply(403, b"denied by " + self.config.name.encode(), [("content-type", "text/plain")], "denied")
        return None

    def request_body(self, body, end_stream):
        return None

    def response_headers(self, headers, end_stream):
        self.config.seen.append((self.config.name, "response"))
        headers.add("x-seen-by", self.config.name)
        return None

    def response_body(self, body, end_stream):
        return None

    def done(self, info):
        self.config.seen.append((self.config.name, "done", info.response_code))


class AccessLog:
    def __init__(self) -> None:
        self.records = []

    def log(self, info) -> None:
        self.records.append(info)


@pytest.fixture(scope="module")
def app():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _App)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()


def _through(app_port: int, filters: list, paths: list[str], headers: dict | None = None, upstream_port: int | None = None):
    """Serve an HCM on loopback, send ``paths`` over one keep-alive connection; (responses, stats, log)."""
    stats, access = HcmStats(), AccessLog()
    config = HcmConfig("inbound_0.0.0.0_8080", filters, [access], route_name="default", cluster="inbound|8080||")

    async def connect() -> UpstreamConnection:
        return UpstreamConnection(*await asyncio.open_connection("127.0.0.1", upstream_port or app_port))

    async def main():
        server = await asyncio.start_server(lambda r, w: HttpConnectionManager(config, connect, stats).serve(r, w), "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            responses = [await client.get(path, headers=headers) for path in paths]
        server.close()
        return responses

    return asyncio.run(main()), stats, access.records


def test_filters_decode_in_order_and_encode_in_reverse(app):
    seen: list = []
    (response,), _, _ = _through(app, [Recording("a", seen, add=("x-a", "1")), Recording("b", seen, add=("x-b", "2"))], ["/hello"])
    assert response.status_code == 200
    received = response.json()["headers"]
    assert received["x-a"] == "1" and received["x-b"] == "2"
    assert seen == [("a", "request"), ("b", "request"), ("b", "response"), ("a", "response"), ("a", "done", 200), ("b", "done", 200)]
    assert response.headers.get_list("x-seen-by") == ["b", "a"]


def test_a_request_gets_an_x_request_id_and_keeps_its_own(app):
    (first, second), _, _ = _through(app, [], ["/", "/"])
    ids = [response.json()["headers"]["x-request-id"] for response in (first, second)]
    assert all(len(i) == 36 for i in ids) and ids[0] != ids[1]
    (kept,), _, _ = _through(app, [], ["/"], headers={"x-request-id": "abc"})
    assert kept.json()["headers"]["x-request-id"] == "abc"
    assert "x-envoy-upstream-service-time" in kept.headers


def test_a_local_reply_stops_decoding_and_still_goes_through_the_encoders(app):
    seen: list = []
    (response,), _, log = _through(app, [Recording("a", seen), Recording("deny", seen, deny=True), Recording("c", seen)], ["/"])
    assert (response.status_code, response.text) == (403, "denied by deny")
    assert ("c", "request") not in seen
    assert response.headers.get_list("x-seen-by") == ["c", "deny", "a"]
    assert log[0].response_code == 403 and log[0].response_code_details == "denied" and log[0].upstream_host is None


def test_a_failing_filter_answers_503_unless_it_fails_open(app):
    seen: list = []
    (closed,), _, log = _through(app, [Recording("broken", seen, fail=True)], ["/"])
    assert closed.status_code == 503 and log[0].response_code_details == "wasm_fail_stream"
    seen.clear()
    (opened,), _, _ = _through(app, [Recording("broken", seen, fail=True, fail_open=True), Recording("next", seen)], ["/"])
    assert opened.status_code == 200
    assert ("broken", "response") not in seen and ("next", "response") in seen  # left out of the rest of the stream


def test_an_unreachable_upstream_is_envoys_503_uf(app):
    import socket

    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    (response,), _, log = _through(app, [], ["/"], upstream_port=port)
    assert response.status_code == 503 and response.text.startswith("upstream connect error")
    assert log[0].response_flags == "UF"


def test_counters_by_response_class_in_envoys_prometheus_names(app):
    seen: list = []
    _, stats, log = _through(app, [Recording("a", seen)], ["/1", "/2", "/3"])
    text = stats.prometheus()
    assert 'envoy_http_downstream_rq_total{envoy_http_conn_manager_prefix="inbound_0.0.0.0_8080"} 3' in text
    assert 'envoy_http_downstream_rq_xx{envoy_response_code_class="2",envoy_http_conn_manager_prefix="inbound_0.0.0.0_8080"} 3' in text
    assert [info.request_headers.get(":path") for info in log] == ["/1", "/2", "/3"]
    assert all(info.upstream_cluster == "inbound|8080||" and info.bytes_sent > 0 for info in log)


def test_a_draining_proxy_closes_each_connection_after_its_response(app):
    stats = HcmStats()
    config = HcmConfig("inbound_0.0.0.0_8080")

    async def connect() -> UpstreamConnection:
        return UpstreamConnection(*await asyncio.open_connection("127.0.0.1", app))

    async def main():
        server = await asyncio.start_server(lambda r, w: HttpConnectionManager(config, connect, stats, draining=lambda: True).serve(r, w),
                                            "127.0.0.1", 0)
        reader, writer = await asyncio.open_connection("127.0.0.1", server.sockets[0].getsockname()[1])
        writer.write(b"GET / HTTP/1.1\r\nhost: x\r\n\r\nGET / HTTP/1.1\r\nhost: x\r\n\r\n")
        answer = await asyncio.wait_for(reader.read(), 10)  # read() returns at EOF: the proxy closed
        server.close()
        return answer

    answer = asyncio.run(main())
    assert answer.count(b"HTTP/1.1 200") == 1 and b"connection: close" in answer.lower()
