"""The agent's status server, asked over real HTTP (urllib) with stand-in proxy and app servers: readiness
follows the proxy's admin /ready, app probes go to the app, and /stats/prometheus merges agent + proxy +
app in that order, in the app's format, leaving out (and counting) a source that fails; the merged text
parses with prometheus_client's own parsers."""

from __future__ import annotations

import http.server
import threading
import urllib.error
import urllib.request

import pytest
from ports import free_port
from prometheus_client.openmetrics.parser import text_string_to_metric_families as openmetrics_families
from prometheus_client.parser import text_string_to_metric_families

from meshlab.agent.metrics import OPENMETRICS_1_0_0, TEXT_FORMAT, prometheus_target, response_format
from meshlab.agent.status import ProxyAdmin, StatusServer
from meshlab.loopthread import LoopThread

ENVOY_STATS = b"# TYPE envoy_cluster_upstream_rq_total counter\nenvoy_cluster_upstream_rq_total{cluster_name=\"xds-grpc\"} 7\n"
APP_TEXT = b"# TYPE app_orders_total counter\napp_orders_total 3\n"
APP_OPENMETRICS = b"# TYPE app_orders counter\napp_orders_total 3\n# EOF\n"


class Stub(http.server.BaseHTTPRequestHandler):
    """A stand-in for the proxy (admin /ready, /stats/prometheus) or the app (/metrics), set by class attributes."""

    routes: dict = {}

    def do_GET(self) -> None:  # noqa: N802
        status, content_type, body = self.routes.get(self.path, (404, "text/plain", b""))
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


def serve(routes: dict) -> http.server.ThreadingHTTPServer:
    handler = type("Handler", (Stub,), {"routes": routes})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture()
def world():
    proxy_routes = {"/ready": (200, "text/plain", b"LIVE\n"), "/stats/prometheus": (200, "text/plain; version=0.0.4", ENVOY_STATS)}
    app_routes = {"/metrics": (200, "text/plain; version=0.0.4", APP_TEXT), "/ready": (200, "text/plain", b"")}
    proxy, app = serve(proxy_routes), serve(app_routes)
    loop = LoopThread("status-test")
    loop.start()
    port = free_port()
    status = StatusServer(pod_ip="127.0.0.1", proxy=ProxyAdmin(admin_port=proxy.server_address[1], prometheus_port=proxy.server_address[1]),
                          probers={"/app-health/web/readyz": {"httpGet": {"path": "/ready", "port": app.server_address[1]}}},
                          app_metrics=(app.server_address[1], "/metrics"))
    loop.call(status.start((port,), host="127.0.0.1"))
    yield status, port, proxy_routes, app_routes
    loop.call(status.stop())
    loop.stop()
    for server in (proxy, app):
        server.shutdown()
        server.server_close()


def get(port: int, path: str) -> tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
            return response.status, response.headers["Content-Type"], response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers["Content-Type"], error.read()


def test_ready_follows_the_proxys_admin(world):
    _, port, proxy_routes, _ = world
    assert get(port, "/healthz/ready")[0] == 200
    proxy_routes["/ready"] = (503, "text/plain", b"DRAINING\n")
    status, _, body = get(port, "/healthz/ready")
    assert status == 503 and b"HTTP 503" in body


def test_app_health_probes_the_app_and_an_unknown_path_is_400(world):
    _, port, _, app_routes = world
    assert get(port, "/app-health/web/readyz")[0] == 200
    app_routes["/ready"] = (500, "text/plain", b"")
    assert get(port, "/app-health/web/readyz")[0] == 500
    status, _, body = get(port, "/app-health/db/livez")
    assert status == 400 and b"/app-health/db/livez" in body and b"/app-health/web/readyz" in body


def test_the_merge_is_agent_then_proxy_then_app_in_prometheus_text(world):
    _, port, _, _ = world
    status, content_type, body = get(port, "/stats/prometheus")
    assert (status, content_type) == (200, TEXT_FORMAT)
    names = [family.name for family in text_string_to_metric_families(body.decode())]
    assert names == ["istio_agent_scrapes", "istio_agent_scrape_failures", "envoy_cluster_upstream_rq", "app_orders"]


def test_an_openmetrics_app_sets_the_format_and_comes_last(world):
    _, port, _, app_routes = world
    app_routes["/metrics"] = (200, "application/openmetrics-text; version=1.0.0; charset=utf-8", APP_OPENMETRICS)
    _, content_type, body = get(port, "/stats/prometheus")
    assert content_type == OPENMETRICS_1_0_0 and body.endswith(APP_OPENMETRICS)
    # what comes before is Prometheus text, as in Istio (its agent metrics are always FmtText): a strict
    # OpenMetrics parser refuses the whole ("Clashing name" on the agent's *_total counters); Prometheus copes
    head = body.removesuffix(APP_OPENMETRICS).decode()
    assert [family.name for family in text_string_to_metric_families(head)][-1] == "envoy_cluster_upstream_rq"
    with pytest.raises(ValueError, match="Clashing name"):
        list(openmetrics_families(body.decode()))


def test_a_failing_source_is_left_out_and_counted_and_the_scrape_still_succeeds(world):
    status_server, port, proxy_routes, app_routes = world
    app_routes["/metrics"] = (500, "text/plain", b"app_broken 1\n")
    del proxy_routes["/stats/prometheus"]
    status, content_type, body = get(port, "/stats/prometheus")
    assert (status, content_type) == (200, TEXT_FORMAT)
    samples = {(s.name, s.labels.get("type")): s.value for family in text_string_to_metric_families(body.decode()) for s in family.samples}
    assert samples == {("istio_agent_scrapes_total", None): 1, ("istio_agent_scrape_failures_total", "envoy"): 1,
                       ("istio_agent_scrape_failures_total", "application"): 1}


@pytest.mark.parametrize(("value", "expected"), [
    ('{"scrape":"true","port":"9090","path":""}', (9090, "/metrics")),  # what the real injector writes (test_agent_probes)
    ('{"scrape":"true","path":"/m"}', (80, "/m")), ('{"scrape":"false","port":"9090"}', None), ("", None)])
def test_the_app_target_comes_from_istio_prometheus_annotations(value, expected):
    assert prometheus_target(value) == expected


def test_the_agents_own_port_or_bad_json_is_refused():
    with pytest.raises(ValueError, match="own port 15020"):
        prometheus_target('{"scrape":"true","port":"15020"}')
    with pytest.raises(ValueError, match="expected JSON"):
        prometheus_target("port=9090")


@pytest.mark.parametrize(("app", "merged"), [("application/openmetrics-text; version=0.0.1", "application/openmetrics-text; version=0.0.1; charset=utf-8"),
                                             ("application/openmetrics-text", "application/openmetrics-text; version=0.0.1; charset=utf-8"),
                                             ("application/openmetrics-text; version=2.0.0", TEXT_FORMAT), ("text/plain", TEXT_FORMAT), ("", TEXT_FORMAT)])
def test_the_format_follows_istios_negotiation(app, merged):
    assert response_format(app) == merged
