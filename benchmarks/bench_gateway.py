"""The gateway's figures: how long the translator takes for 1,000 routes, and what the gateway adds to a
request's latency.

Run: ``.venv/bin/python benchmarks/bench_gateway.py``. Two measurements, each printed with how it was made:
1. translation: one YAML of 100 HTTPRoutes x 10 rules (1,000 routes, each with a path match, half with
   a header match, weighted backendRefs to 20 Services), read by ``load`` and translated by
   ``translate``; best of 5 runs each (target: well under a second);
2. latency: the lab's echo app (its own process) answered 2,000 keep-alive requests from one client
   directly and 2,000 through ``meshlab gateway serve`` (its own process, logging every request),
   alternating in rounds of 200 so both see the same machine; p50 and p99 of each and the gateway's
   p50 as a ratio of the direct p50.
"""

from __future__ import annotations

import json
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from meshlab.gateway import load, translate
from meshlab.lab.client import HttpClient

ROUTES, RULES, SERVICES = 100, 10, 20
REQUESTS, ROUND = 2000, 200


def route_set() -> str:
    """100 HTTPRoutes of 10 rules each, on one Gateway, with the Services they name."""
    documents: list[dict] = [
        {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass", "metadata": {"name": "eg"},
         "spec": {"controllerName": "gateway.envoyproxy.io/gatewayclass-controller"}},
        {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway", "metadata": {"name": "eg", "namespace": "default"},
         "spec": {"gatewayClassName": "eg", "listeners": [{"name": "http", "protocol": "HTTP", "port": 80, "hostname": "*.example.com"}]}},
    ]
    for route in range(ROUTES):
        rules = []
        for rule in range(RULES):
            match: dict = {"path": {"type": "PathPrefix" if rule % 3 else "Exact", "value": f"/r{route}/v{rule}"}}
            if rule % 2:
                match["headers"] = [{"name": "x-version", "value": f"v{rule}"}]
            backends = [{"name": f"svc{(route + rule + i) % SERVICES}", "port": 8080, "weight": 100 - 25 * i} for i in range(2)]
            rules.append({"matches": [match], "backendRefs": backends})
        documents.append({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": {"name": f"route{route}", "namespace": "default"},
                          "spec": {"parentRefs": [{"name": "eg"}], "hostnames": [f"app{route % 10}.example.com"], "rules": rules}})
    documents += [{"apiVersion": "v1", "kind": "Service", "metadata": {"name": f"svc{i}", "namespace": "default"}, "spec": {"ports": [{"port": 8080}]}}
                  for i in range(SERVICES)]
    return yaml.safe_dump_all(documents, sort_keys=False)


def translation_time() -> None:
    text = route_set()
    loads, translations = [], []
    for _ in range(5):
        started = time.perf_counter()
        resources = load(text)
        loaded = time.perf_counter()
        translation = translate(resources)
        loads.append(loaded - started)
        translations.append(time.perf_counter() - loaded)
    routes = sum(len(host["routes"]) for config in translation.route_configs for host in config["virtualHosts"])
    print(f"1. translation of {ROUTES} HTTPRoutes x {RULES} rules ({routes} Envoy routes, {len(translation.clusters)} clusters): "
          f"load {min(loads) * 1000:.0f} ms, translate {min(translations) * 1000:.0f} ms, best of 5 (target: well under 1 s)")


def _start(argv: list[str], ready: str) -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL if ready == "stderr" else subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = (process.stderr if ready == "stderr" else process.stdout).readline()
    return process, line


def latency() -> None:
    with tempfile.TemporaryDirectory() as folder:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            echo_port = probe.getsockname()[1]
        echo, line = _start([sys.executable, "-c", f"from meshlab.lab import apps; apps.run('echo', [{echo_port}])"], "stdout")
        assert json.loads(line)["event"] == "ready", line
        routes = Path(folder) / "routes.yaml"
        routes.write_text(yaml.safe_dump_all([
            {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass", "metadata": {"name": "eg"},
             "spec": {"controllerName": "gateway.envoyproxy.io/gatewayclass-controller"}},
            {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway", "metadata": {"name": "eg", "namespace": "default"},
             "spec": {"gatewayClassName": "eg", "listeners": [{"name": "http", "protocol": "HTTP", "port": 80}]}},
            {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": {"name": "echo", "namespace": "default"},
             "spec": {"parentRefs": [{"name": "eg"}], "rules": [{"backendRefs": [{"name": "echo", "port": 8080}]}]}},
            {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "echo", "namespace": "default"}, "spec": {"ports": [{"port": 8080}]}}]))
        gateway, line = _start([sys.executable, "-m", "meshlab.cli", "gateway", "serve", "-f", str(routes), "--listen", "127.0.0.1:0",
                                "--backend", f"echo=127.0.0.1:{echo_port}"], "stderr")
        gateway_port = int(line.split("127.0.0.1:")[1].split(";")[0])
        try:
            direct_client = HttpClient("127.0.0.1", echo_port)
            gateway_client = HttpClient("127.0.0.1", gateway_port, authority="echo.example.com")
            for client in (direct_client, gateway_client):  # warm both paths (imports, the pool's connection)
                for _ in range(100):
                    client.get("/warm")
            direct: list[float] = []
            through: list[float] = []
            for _ in range(REQUESTS // ROUND):
                direct += [direct_client.get(f"/{i}").latency_us for i in range(ROUND)]
                through += [gateway_client.get(f"/{i}").latency_us for i in range(ROUND)]
        finally:
            gateway.terminate()
            echo.terminate()
            gateway.communicate(timeout=10)
            echo.communicate(timeout=10)
    p50_direct, p50_gateway = statistics.median(direct), statistics.median(through)
    p99 = [statistics.quantiles(samples, n=100)[98] for samples in (direct, through)]
    print(f"2. keep-alive latency, {REQUESTS} requests each, one client, echo app in its own process: direct p50 {p50_direct:.0f} us "
          f"(p99 {p99[0]:.0f} us), through the gateway p50 {p50_gateway:.0f} us (p99 {p99[1]:.0f} us): gateway/direct = {p50_gateway / p50_direct:.1f}x")


def main() -> None:
    translation_time()
    latency()


if __name__ == "__main__":
    main()
