"""Probe rewriting and the agent's probing: meshlab's rewrite of a pod's probes is what Istio's real
injector (``istioctl kube-inject``, upstream stage) produces, probes and ISTIO_KUBE_APP_PROBERS alike;
the agent's prober answers the kubelet as Istio's does, against a real HTTP server and real sockets."""

from __future__ import annotations

import http.server
import json
import socket
import threading
from concurrent import futures

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import HealthServicer
from upstream_programs import program_path

from meshlab.agent.probes import PROBE_SOURCE, ProbeError, rewrite_probes, run_prober

POD = {"apiVersion": "v1", "kind": "Pod",
       "metadata": {"name": "web", "namespace": "shop", "labels": {"app": "web"}, "annotations": {"prometheus.io/scrape": "true", "prometheus.io/port": "9090"}},
       "spec": {"containers": [
           {"name": "web", "image": "example/web:1", "ports": [{"containerPort": 8080, "name": "http"}],
            "readinessProbe": {"httpGet": {"path": "/ready", "port": "http", "httpHeaders": [{"name": "X-Probe", "value": "k"}]}, "periodSeconds": 3},
            "livenessProbe": {"tcpSocket": {"port": 8080}, "initialDelaySeconds": 5, "timeoutSeconds": 2},
            "startupProbe": {"grpc": {"port": 9000}, "failureThreshold": 30}},
           {"name": "worker", "image": "example/worker:1", "livenessProbe": {"exec": {"command": ["true"]}}}]}}


def test_each_probe_becomes_an_http_get_of_the_agent():
    pod, probers = rewrite_probes(POD)
    web = pod["spec"]["containers"][0]
    assert web["readinessProbe"] == {"httpGet": {"path": "/app-health/web/readyz", "port": 15020, "httpHeaders": [{"name": "X-Probe", "value": "k"}]}, "periodSeconds": 3}
    assert web["livenessProbe"] == {"httpGet": {"path": "/app-health/web/livez", "port": 15020}, "initialDelaySeconds": 5, "timeoutSeconds": 2}
    assert web["startupProbe"] == {"httpGet": {"path": "/app-health/web/startupz", "port": 15020}, "failureThreshold": 30}
    assert pod["spec"]["containers"][1] == POD["spec"]["containers"][1]  # exec stays with the kubelet
    assert json.loads(probers) == {
        "/app-health/web/readyz": {"httpGet": {"path": "/ready", "port": 8080, "httpHeaders": [{"name": "X-Probe", "value": "k"}]}},
        "/app-health/web/livez": {"tcpSocket": {"port": 8080}, "timeoutSeconds": 2},
        "/app-health/web/startupz": {"grpc": {"port": 9000, "service": None}}}
    assert POD["spec"]["containers"][0]["readinessProbe"]["httpGet"]["port"] == "http"  # the input is not changed


def test_a_pod_without_probes_gets_no_probers():
    assert rewrite_probes({"spec": {"containers": [{"name": "a"}]}})[1] == ""


@pytest.mark.upstream
def test_the_rewrite_is_the_real_injectors():
    from meshlab.upstream.injection import Injector
    with Injector(program_path("istioctl")) as injector:
        injected = injector.inject(POD)
    ours, probers = rewrite_probes(POD)
    real = {c["name"]: c for c in injected["spec"]["containers"]}
    for container in ours["spec"]["containers"]:
        for field in ("readinessProbe", "livenessProbe", "startupProbe"):
            assert real[container["name"]].get(field) == container.get(field), f"{container['name']}.{field}"
    env = {e["name"]: e.get("value") for e in real["istio-proxy"]["env"]}
    assert json.loads(env["ISTIO_KUBE_APP_PROBERS"]) == json.loads(probers)
    # the app's metrics annotations moved into the proxy's env, the annotations now point at the agent
    assert json.loads(env["ISTIO_PROMETHEUS_ANNOTATIONS"]) == {"scrape": "true", "port": "9090", "path": ""}
    assert injected["metadata"]["annotations"]["prometheus.io/port"] == "15020"


class App(http.server.BaseHTTPRequestHandler):
    """The app: /ready answers 200, /moved redirects, /sick 503; it records who asked."""

    seen: list = []

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        App.seen.append((self.client_address[0], self.path, self.headers.get("Host"), self.headers.get("X-Probe")))
        status = {"/ready": 200, "/moved": 302, "/sick": 503}.get(self.path, 404)
        self.send_response(status)
        if status == 302:
            self.send_header("Location", "/elsewhere")
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def app():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), App)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(("path", "status"), [("/ready", 200), ("/moved", 200), ("/sick", 503), ("/nothing", 404)])
def test_an_http_probe_answers_with_the_apps_status_and_a_redirect_is_ok(app, path, status):
    assert run_prober({"httpGet": {"path": path, "port": app, "httpHeaders": [{"name": "X-Probe", "value": "k"}]}}, "127.0.0.1", host_header="10.0.0.5:15020") == status
    assert App.seen[-1] == (PROBE_SOURCE, path, f"10.0.0.5:{app}", "k")  # from 127.0.0.6; the Host's status port becomes the app's


def test_an_http_probe_to_a_closed_port_is_500():
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    assert run_prober({"httpGet": {"path": "/", "port": port}}, "127.0.0.1") == 500


def test_a_tcp_probe_is_200_when_the_port_accepts_and_500_when_not(app):
    assert run_prober({"tcpSocket": {"port": app}}, "127.0.0.1") == 200
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    assert run_prober({"tcpSocket": {"port": port}}, "127.0.0.1") == 500


@pytest.fixture(scope="module")
def grpc_app():
    """A gRPC app with grpcio's own health service: "" serving, "orders" not, and a server without health."""
    health = HealthServicer()
    health.set("", health_pb2.HealthCheckResponse.SERVING)
    health.set("orders", health_pb2.HealthCheckResponse.NOT_SERVING)
    with_health, without = grpc.server(futures.ThreadPoolExecutor(2)), grpc.server(futures.ThreadPoolExecutor(2))
    health_pb2_grpc.add_HealthServicer_to_server(health, with_health)
    ports = with_health.add_insecure_port("127.0.0.1:0"), without.add_insecure_port("127.0.0.1:0")
    with_health.start()
    without.start()
    yield ports
    with_health.stop(None)
    without.stop(None)


def test_a_grpc_probe_asks_the_apps_health_service(grpc_app):
    port, without_health = grpc_app
    assert run_prober({"grpc": {"port": port, "service": None}}, "127.0.0.1") == 200
    assert run_prober({"grpc": {"port": port, "service": "orders"}}, "127.0.0.1") == 500
    assert run_prober({"grpc": {"port": port, "service": "unknown"}}, "127.0.0.1") == 500  # NOT_FOUND
    assert run_prober({"grpc": {"port": without_health}}, "127.0.0.1") == 500  # Unimplemented


def test_an_https_or_exec_prober_is_refused_with_what_is_accepted():
    with pytest.raises(ProbeError, match="HTTPS"):
        run_prober({"httpGet": {"port": 443, "scheme": "HTTPS"}}, "127.0.0.1")
    with pytest.raises(ProbeError, match="httpGet, tcpSocket and grpc"):
        run_prober({"exec": {"command": ["true"]}}, "127.0.0.1")
