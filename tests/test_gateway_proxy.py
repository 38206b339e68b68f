"""meshlab's gateway proxy against real HTTP servers (Python's http.server, in processes of their own)
and a real client (httpx): routing by host and path, Envoy's request mutations, redirects, mirrors,
direct responses, keep-alive on both sides, the 75/25 split counted, a killed backend ejected and
brought back by active health checks, and the access log."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter

import httpx
import pytest

from meshlab.gateway import load, translate
from meshlab.gateway.health import HealthCheck, OutlierDetection
from meshlab.gateway.proxy import GatewayProxy, counters
from meshlab.loopthread import LoopThread
from ports import free_port

#: A backend: http.server answering every request with JSON (its name, what it received, the
#: connection's port) and keeping what it saw for GET /_seen; ``/status/N`` answers N.
BACKEND = r"""
import json, sys, http.server
name, port = sys.argv[1], int(sys.argv[2])
seen = []
class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are two writes: without it each answer waits for a delayed ACK
    def answer(self):
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        if self.path == "/_seen":
            reply, status = json.dumps(seen).encode(), 200
        else:
            record = {"backend": name, "method": self.command, "path": self.path, "headers": {k.lower(): ", ".join(self.headers.get_all(k)) for k in set(self.headers.keys())},
                      "client_port": self.client_address[1], "body": body.decode()}
            seen.append(record)
            reply = json.dumps(record).encode()
            status = int(self.path.split("/")[2]) if self.path.startswith("/status/") else 200
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)
    do_GET = do_POST = do_PUT = do_DELETE = answer
    def log_message(self, *args):
        pass
server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
"""


class Backend:
    """One backend process; ``kill`` is a crash (SIGKILL), ``start`` brings it back on the same port."""

    def __init__(self, name: str, port: int = 0) -> None:
        self.name, self.port = name, port
        self.start()

    def start(self) -> None:
        self.process = subprocess.Popen([sys.executable, "-c", BACKEND, self.name, str(self.port)], stdout=subprocess.PIPE, text=True)
        self.port = int(self.process.stdout.readline())

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def seen(self) -> list[dict]:
        return httpx.get(f"http://127.0.0.1:{self.port}/_seen").json()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


@pytest.fixture
def backends():
    started: dict[str, Backend] = {}

    def start(*names: str) -> dict[str, Backend]:
        for name in names:
            started[name] = Backend(name)
        return started

    yield start
    for backend in started.values():
        if backend.process.poll() is None:
            backend.kill()


@pytest.fixture
def gateway():
    """``gateway(yaml, endpoints, **options)`` -> (an httpx client for the gateway, its log records)."""
    loop = LoopThread("gateway-test")
    loop.start()
    running: list[GatewayProxy] = []
    clients: list[httpx.Client] = []

    def serve(yaml_text: str, endpoints: dict[str, list[str]], port: int = 80, **options) -> tuple[httpx.Client, list[dict]]:
        records: list[dict] = []
        proxy = GatewayProxy(translate(load(yaml_text)), endpoints, port, log=records.append, **options)
        listening = loop.call(proxy.start("127.0.0.1", 0))
        running.append(proxy)
        client = httpx.Client(base_url=f"http://127.0.0.1:{listening}", timeout=20)
        clients.append(client)
        return client, records

    yield serve
    for client in clients:
        client.close()
    for proxy in running:
        loop.call(proxy.stop())
    loop.stop()


GATEWAY = """
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: eg}
spec: {controllerName: gateway.envoyproxy.io/gatewayclass-controller}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: eg, namespace: default}
spec:
  gatewayClassName: eg
  listeners: [{name: http, protocol: HTTP, port: 80}]
"""


def routes(rules: str, hostnames: str = "[shop.example.com]", services: tuple[str, ...] = ("web", "api", "v2", "mirror")) -> str:
    service_docs = "".join(f"---\napiVersion: v1\nkind: Service\nmetadata: {{name: {name}, namespace: default}}\nspec: {{ports: [{{port: 8080}}]}}\n"
                           for name in services)
    return GATEWAY + f"""---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: shop, namespace: default}}
spec:
  parentRefs: [{{name: eg}}]
  hostnames: {hostnames}
  rules:
{rules}
""" + service_docs


def endpoints(started: dict[str, Backend]) -> dict[str, list[str]]:
    return {f"default/{name}": [backend.address] for name, backend in started.items()}


SHOP = """
  - matches: [{path: {type: PathPrefix, value: /api}}]
    backendRefs: [{name: api, port: 8080}]
  - backendRefs: [{name: web, port: 8080}]
"""


def test_requests_go_to_the_service_the_route_names_and_no_route_is_a_404(backends, gateway):
    client, records = gateway(routes(SHOP), endpoints(backends("web", "api")))
    assert client.get("/api/cart?id=1", headers={"host": "shop.example.com"}).json()["backend"] == "api"
    assert client.get("/apix", headers={"host": "shop.example.com"}).json()["backend"] == "web", "PathPrefix /api is path-separated"
    answer = client.get("/api", headers={"host": "www.example.com"})
    assert answer.status_code == 404
    request, = [r for r in records if r["event"] == "request" and r["authority"] == "www.example.com"]
    assert request["flags"] == "NR" and request["route"] is None and "www.example.com" in request["reason"]


def test_every_request_is_logged_with_route_backend_upstream_status_and_duration(backends, gateway):
    started = backends("web", "api")
    client, records = gateway(routes(SHOP), endpoints(started))
    client.get("/api/x", headers={"host": "shop.example.com"})
    (record,) = [r for r in records if r["event"] == "request"]
    assert {key: record[key] for key in ("method", "authority", "path", "route", "backend", "upstream", "status", "flags")} == {
        "method": "GET", "authority": "shop.example.com", "path": "/api/x", "route": "default/shop/rule/0",
        "backend": "default/api:8080", "upstream": started["api"].address, "status": 200, "flags": "-"}
    assert record["duration_ms"] > 0 and record["time"].endswith("Z")


def test_a_weighted_rule_splits_400_requests_75_25_exactly(backends, gateway):
    rules = """
  - backendRefs: [{name: api, port: 8080, weight: 75}, {name: v2, port: 8080, weight: 25}]
"""
    client, records = gateway(routes(rules), endpoints(backends("api", "v2")))
    answers = Counter(client.get(f"/{i}", headers={"host": "shop.example.com"}).json()["backend"] for i in range(400))
    assert answers == {"api": 300, "v2": 100}
    assert counters(records)["per_backend"] == {"default/api:8080": 300, "default/v2:8080": 100}


def test_both_sides_keep_their_connections_alive(backends, gateway):
    client, _ = gateway(routes(SHOP), endpoints(backends("web", "api")))
    ports = {client.get(f"/{i}", headers={"host": "shop.example.com"}).json()["client_port"] for i in range(50)}
    assert len(ports) == 1, "50 requests, one upstream connection from the pool"


def test_request_header_modifier_sets_adds_and_removes(backends, gateway):
    rules = """
  - filters:
    - type: RequestHeaderModifier
      requestHeaderModifier:
        set: [{name: x-tier, value: gold}]
        add: [{name: x-trace, value: gateway}]
        remove: [x-debug]
    backendRefs: [{name: web, port: 8080}]
"""
    client, _ = gateway(routes(rules), endpoints(backends("web")))
    seen = client.get("/", headers={"host": "shop.example.com", "x-tier": "bronze", "x-trace": "client", "x-debug": "1"}).json()["headers"]
    assert seen["x-tier"] == "gold" and "x-debug" not in seen
    assert seen["x-trace"] == "client, gateway", "add appends to the values already there (two field lines, one list)"
    assert seen["x-forwarded-for"] == "127.0.0.1"


def test_url_rewrite_replaces_the_prefix_or_the_whole_path_and_the_host(backends, gateway):
    rules = """
  - matches: [{path: {type: PathPrefix, value: /shop}}]
    filters:
    - type: URLRewrite
      urlRewrite: {hostname: store.internal, path: {type: ReplacePrefixMatch, replacePrefixMatch: /store}}
    backendRefs: [{name: web, port: 8080}]
  - matches: [{path: {type: PathPrefix, value: /old}}]
    filters:
    - type: URLRewrite
      urlRewrite: {path: {type: ReplaceFullPath, replaceFullPath: /new}}
    backendRefs: [{name: web, port: 8080}]
"""
    client, _ = gateway(routes(rules), endpoints(backends("web")))
    prefixed = client.get("/shop/cart?id=7", headers={"host": "shop.example.com"}).json()
    assert prefixed["path"] == "/store/cart?id=7" and prefixed["headers"]["host"] == "store.internal"
    assert prefixed["headers"]["x-envoy-original-path"] == "/shop/cart?id=7"
    assert client.get("/old/a/b", headers={"host": "shop.example.com"}).json()["path"] == "/new"


def test_a_redirect_is_answered_by_the_gateway_with_its_location(backends, gateway):
    rules = """
  - matches: [{path: {type: Exact, value: /old-cart}}]
    filters:
    - type: RequestRedirect
      requestRedirect: {path: {type: ReplaceFullPath, replaceFullPath: /cart}, statusCode: 301}
  - filters:
    - type: RequestRedirect
      requestRedirect: {scheme: https, hostname: secure.example.com}
"""
    client, records = gateway(routes(rules, services=()), {})
    moved = client.get("/old-cart", headers={"host": "shop.example.com"})
    assert (moved.status_code, moved.headers["location"]) == (301, "http://shop.example.com/cart")
    found = client.get("/pay?x=1", headers={"host": "shop.example.com"})
    assert (found.status_code, found.headers["location"]) == (302, "https://secure.example.com/pay?x=1")


def test_a_mirror_gets_a_copy_and_the_client_the_primarys_answer(backends, gateway):
    rules = """
  - filters:
    - type: RequestMirror
      requestMirror: {backendRef: {name: mirror, port: 8080}}
    backendRefs: [{name: web, port: 8080}]
"""
    started = backends("web", "mirror")
    client, _ = gateway(routes(rules), endpoints(started))
    assert client.post("/order", headers={"host": "shop.example.com"}, content=b"one").json()["backend"] == "web"
    deadline = time.monotonic() + 10
    while not started["mirror"].seen() and time.monotonic() < deadline:
        time.sleep(0.02)
    (copy,) = started["mirror"].seen()
    assert (copy["method"], copy["path"], copy["body"]) == ("POST", "/order", "one")


def test_a_rule_whose_backends_are_all_missing_answers_500(gateway):
    rules = """
  - backendRefs: [{name: nowhere, port: 8080}]
"""
    client, _ = gateway(routes(rules), {})  # the file has Services, not this one
    assert client.get("/", headers={"host": "shop.example.com"}).status_code == 500


def test_the_share_of_a_missing_backend_is_answered_500_and_the_rest_is_served(backends, gateway):
    rules = """
  - backendRefs: [{name: web, port: 8080, weight: 1}, {name: nowhere, port: 8080, weight: 1}]
"""
    client, _ = gateway(routes(rules), endpoints(backends("web")))
    answers = [client.get(f"/{i}", headers={"host": "shop.example.com"}) for i in range(200)]
    statuses = Counter(answer.status_code for answer in answers)
    assert set(statuses) == {200, 500} and 70 <= statuses[500] <= 130, statuses  # Envoy draws the weighted cluster at random
    assert {answer.json()["backend"] for answer in answers if answer.status_code == 200} == {"web"}


def test_a_refused_connection_is_a_503_with_envoys_flag(gateway):
    client, records = gateway(routes(SHOP), {"default/web": ["127.0.0.1:9"], "default/api": ["127.0.0.1:9"]})
    answer = client.get("/", headers={"host": "shop.example.com"})
    assert answer.status_code == 503 and b"connection failure" in answer.content
    assert [r["flags"] for r in records if r["event"] == "request"] == ["UF"]


def test_a_killed_backend_is_ejected_after_five_failures_and_a_health_check_brings_it_back(backends, gateway):
    rules = """
  - backendRefs: [{name: api, port: 8080, weight: 50}, {name: v2, port: 8080, weight: 50}]
"""
    started = backends("api", "v2")
    # Envoy's defaults but maxEjectionPercent (10% ejects nothing of two hosts) and a short check interval
    check = HealthCheck(timeout=1.0, interval=0.2, unhealthy_threshold=3, healthy_threshold=1, path="/healthz", host="shop.example.com", no_traffic_interval=0.2)
    client, records = gateway(routes(rules), endpoints(started), health_check=check, outlier_detection=OutlierDetection(max_ejection_percent=50))
    shop = {"host": "shop.example.com"}
    assert Counter(client.get("/", headers=shop).json()["backend"] for _ in range(10)) == {"api": 5, "v2": 5}
    started["api"].kill()
    answers = [client.get(f"/{i}", headers=shop) for i in range(60)]
    failed = [i for i, answer in enumerate(answers) if answer.status_code != 200]
    assert 1 <= len(failed) <= OutlierDetection().consecutive_5xx, "lost at most consecutive5xx requests"
    assert all(answer.json()["backend"] == "v2" for answer in answers[failed[-1] + 1:]), "after them, every request lands on v2"
    assert counters(records)["ejections"] + counters(records)["health_transitions"] >= 1
    started["api"].start()  # the same port again
    deadline = time.monotonic() + 20
    while client.get("/", headers=shop).json()["backend"] != "api":
        assert time.monotonic() < deadline, "api never came back"
        time.sleep(0.05)
    returned = [r for r in records if r.get("action") in ("add_healthy", "UNEJECT")]
    assert returned, "a passed health check returned the host"


def test_the_gateway_runs_from_a_configuration_file_and_reloads_on_sighup(backends, tmp_path):
    started = backends("web", "api")
    config = tmp_path / "gateway.json"
    listen_port = free_port()
    config.write_text(json.dumps({"routes": routes(SHOP), "port": 80, "listen": f"127.0.0.1:{listen_port}", "endpoints": endpoints(started)}))
    log = (tmp_path / "gateway.log").open("w")
    process = subprocess.Popen([sys.executable, "-c", "import sys, pathlib; from meshlab.gateway.proxy import run; run(pathlib.Path(sys.argv[1]))", str(config)],
                               stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_for(lambda: '"event": "ready"' in (tmp_path / "gateway.log").read_text())
        url = f"http://127.0.0.1:{listen_port}"
        assert httpx.get(url + "/", headers={"host": "shop.example.com"}).json()["backend"] == "web"
        config.write_text(json.dumps({"routes": routes(SHOP.replace("name: web", "name: api")), "port": 80, "listen": f"127.0.0.1:{listen_port}",
                                      "endpoints": endpoints(started)}))
        os.kill(process.pid, signal.SIGHUP)
        _wait_for(lambda: '"reloaded"' in (tmp_path / "gateway.log").read_text())
        assert httpx.get(url + "/", headers={"host": "shop.example.com"}).json()["backend"] == "api"
        # a configuration refused while it is being put in force says so, and the last good one keeps serving
        config.write_text(json.dumps({"routes": routes(SHOP), "port": 80, "listen": f"127.0.0.1:{listen_port}",
                                      "endpoints": {**endpoints(started), "web": ["not-an-address"]}}))
        os.kill(process.pid, signal.SIGHUP)
        _wait_for(lambda: "not-an-address" in (tmp_path / "gateway.log").read_text())
        refused = [json.loads(line) for line in (tmp_path / "gateway.log").read_text().splitlines() if '"event": "config"' in line][-1]
        assert "error" in refused and "reloaded" not in refused
        assert httpx.get(url + "/", headers={"host": "shop.example.com"}).json()["backend"] == "api"
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


def _wait_for(condition, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the gateway did not get there"
        time.sleep(0.02)
