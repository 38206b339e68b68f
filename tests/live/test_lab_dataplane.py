"""The sidecar's HTTP side in a live lab: Envoy's inbound listener, real proxy-wasm modules applied as
WasmPlugins (fetched and checked as pilot-agent does), access logs, ALS, tracing, the admin port and
the agent's merged metrics. Requests come from a meshed client pod through both sidecars."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest

from live.host import cleanup_after_kill_9
from meshlab.envoy.configdump import listeners_table
from meshlab.lab import Lab, LabUsageError, PodSpec
from meshlab.lab.client import local_http
from meshlab.lab.proxyconfig import access_log_path, applied_plugins, apply_plugins, remove_plugin, set_telemetry
from meshlab.wasm.build import build

pytestmark = pytest.mark.live
PREFIX = "mldp"


def plugin(name: str, url: str, root: str, config: dict, **spec) -> str:
    document = {"apiVersion": "extensions.istio.io/v1alpha1", "kind": "WasmPlugin", "metadata": {"name": name, "namespace": "default"},
                "spec": {"url": url, "pluginName": root, "pluginConfig": config, **spec}}
    return json.dumps(document)


@pytest.fixture(scope="module")
def modules():
    return {name: build(name) for name in ("add_header", "deny_by_header", "count_by_path")}


@pytest.fixture(scope="module")
def module_server(modules):
    """The modules served over HTTP on the host's loopback, where the lab fetches them."""
    folder = next(iter(modules.values())).parent
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Quiet, directory=str(folder)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def lab():
    with Lab(PREFIX).up([PodSpec("server", dataplane=True, labels={"app": "server"}), PodSpec("client")], collector=True) as running:
        yield running


@pytest.fixture(autouse=True)
def clean_slate(lab):
    yield
    for applied in applied_plugins(lab):
        remove_plugin(lab, applied.namespace, applied.name)
    set_telemetry(lab, "off", None)


def call(lab, path: str = "/", headers: dict | None = None):
    return lab.request("client", lab.pods["server"].ip, 8080, path, headers=headers)


def test_a_wasm_filter_adds_a_response_header_through_the_sidecars_http_side(lab, modules):
    (applied,) = apply_plugins(lab, plugin("add-header", f"file://{modules['add_header']}", "add_header", {"name": "x-meshlab", "value": "hello"}))
    assert (applied.pods, applied.outcome) == (("server",), "local")
    reply = call(lab, "/hello")
    assert reply.status == 200 and reply.headers["x-meshlab"] == "hello"
    assert reply.body["peer"].startswith("127.0.0.6:") and "x-envoy-upstream-service-time" in reply.headers


def test_a_module_fetched_over_http_with_its_sha256_denies_by_header(lab, modules, module_server):
    module = modules["deny_by_header"]
    digest = hashlib.sha256(module.read_bytes()).hexdigest()
    apply_plugins(lab, plugin("deny", f"{module_server}/{module.name}", "deny_by_header", {"header": "x-deny", "value": "yes"},
                              sha256=digest, phase="AUTHN"))
    denied = call(lab, "/", {"x-deny": "yes"})
    assert denied.status == 403 and denied.body["text"].startswith("denied by deny_by_header")
    assert call(lab, "/", {"x-deny": "no"}).status == 200


@pytest.mark.parametrize(("strategy", "status"), [("FAIL_CLOSE", 403), ("FAIL_OPEN", 200)])
def test_a_wrong_sha256_is_refused_and_the_fail_strategy_decides(lab, modules, module_server, strategy, status):
    module = modules["deny_by_header"]
    (applied,) = apply_plugins(lab, plugin("bad-digest", f"{module_server}/{module.name}", "deny_by_header", {"header": "x", "value": "y"},
                                           sha256="0" * 64, failStrategy=strategy))
    assert applied.outcome == ("deny" if strategy == "FAIL_CLOSE" else "allow")
    assert "0" * 64 in applied.reason and hashlib.sha256(module.read_bytes()).hexdigest() in applied.reason
    reply = call(lab)
    assert reply.status == status
    if status == 403:
        assert reply.body["text"] == "RBAC: access denied"


def test_an_unreachable_url_is_refused_with_the_reason(lab):
    (applied,) = apply_plugins(lab, plugin("gone", "http://127.0.0.1:9/filter.wasm", "x", {"a": "b"}, failStrategy="FAIL_OPEN"))
    assert applied.outcome == "allow" and "127.0.0.1:9" in applied.reason
    assert call(lab).status == 200


def test_a_counter_by_path_shows_on_the_agents_merged_metrics(lab, modules):
    apply_plugins(lab, plugin("count", f"file://{modules['count_by_path']}", "count_by_path", {"prefix": "meshlab_requests_total"}))
    for path in ("/api", "/api", "/other"):
        assert call(lab, path).status == 200
    status, text = lab.in_pod("server", local_http, 15020, "/stats/prometheus")
    assert status == 200
    lines = text.splitlines()
    assert "meshlab_requests_total_path__api 2" in lines and "meshlab_requests_total_path__other 1" in lines
    assert any(line.startswith("envoy_http_downstream_rq_total") for line in lines)  # the proxy's own, through 15090
    assert any(line.startswith("meshlab_app_requests_total") for line in lines)  # the app's, as the agent merges them


def logged(lab, path: str) -> str:
    """The access log line of the request for ``path`` (Envoy logs once the response has left: wait for it)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        lines = [line for line in access_log_path(lab, "server").read_text().splitlines() if path in line]
        if lines:
            return lines[-1]
        time.sleep(0.05)
    raise AssertionError(f"no access log line for {path}")


def test_access_logs_text_json_and_als(lab):
    set_telemetry(lab, "text")
    call(lab, "/texted")
    line = logged(lab, "/texted")
    assert '"GET /texted HTTP/1.1" 200 - via_upstream' in line and "inbound|8080||" in line
    set_telemetry(lab, "json")
    call(lab, "/jsoned")
    record = json.loads(logged(lab, "/jsoned"))
    assert (record["path"], record["response_code"], record["upstream_cluster"]) == ("/jsoned", 200, "inbound|8080||")
    set_telemetry(lab, "als")
    call(lab, "/streamed")
    deadline = time.monotonic() + 10
    while not any(r.get("path") == "/streamed" for r in lab.collected()) and time.monotonic() < deadline:
        time.sleep(0.2)
    (entry,) = [r for r in lab.collected() if r.get("path") == "/streamed"]
    assert entry["node"] == f"sidecar~{lab.pods['server'].ip}~server.default~default.svc.cluster.local" and entry["status"] == 200


def test_spans_are_exported_over_otlp_at_100_percent_and_not_at_0(lab):
    set_telemetry(lab, "off", 0)
    call(lab, "/unsampled")
    set_telemetry(lab, "off", 100)
    call(lab, "/sampled", {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"})
    deadline = time.monotonic() + 15
    while not [r for r in lab.collected() if r["event"] == "span"] and time.monotonic() < deadline:
        time.sleep(0.2)
    spans = [r for r in lab.collected() if r["event"] == "span"]
    assert [s["attributes"]["http.url"].rsplit("/", 1)[1] for s in spans] == ["sampled"]
    assert spans[0]["trace_id"] == "0af7651916cd43dd8448eb211c80319c" and spans[0]["service"] == "server.default"


def test_the_admin_port_dumps_the_config_istioctl_reads_and_drains(lab):
    status, text = lab.admin("server", "/config_dump")
    assert status == 200
    table = listeners_table(json.loads(text))
    assert "0.0.0.0" in table and "15006" in table and "inbound|8080||" in table
    assert lab.admin("server", "/ready") == (200, "LIVE\n")
    assert lab.admin("server", "/drain_listeners")[0] == 405
    assert lab.admin("server", "/drain_listeners?inboundonly&graceful", "POST") == (200, "OK\n")
    assert lab.admin("server", "/ready") == (503, "DRAINING\n")
    assert call(lab).headers["connection"] == "close"


def test_bad_input_is_refused_whole(lab, modules):
    good = plugin("good", f"file://{modules['add_header']}", "add_header", {"name": "x", "value": "y"})
    bad = plugin("bad", "ftp://host/x.wasm", "x", {})
    with pytest.raises(LabUsageError, match="nothing applied.*ftp"):
        apply_plugins(lab, good + "\n---\n" + bad)
    assert applied_plugins(lab) == []
    with pytest.raises(LabUsageError, match="access log 'loud'"):
        set_telemetry(lab, "loud")


def test_a_module_that_cannot_be_read_is_refused_and_the_lab_keeps_what_it_had(lab, modules, tmp_path):
    apply_plugins(lab, plugin("kept", f"file://{modules['add_header']}", "add_header", {"name": "x-kept", "value": "1"}))
    with pytest.raises(LabUsageError, match="cannot read"):
        apply_plugins(lab, plugin("missing", f"file://{tmp_path}/nowhere.wasm", "x", {"a": "b"}))
    assert [p.name for p in applied_plugins(lab)] == ["kept"]
    assert call(lab).headers["x-kept"] == "1"


def test_the_cli_applies_and_lists(lab, modules, tmp_path):
    path = tmp_path / "plugin.yaml"
    path.write_text(plugin("cli-header", f"file://{modules['add_header']}", "add_header", {"name": "x-cli", "value": "1"}))
    meshlab = [sys.executable, "-m", "meshlab.cli"]
    done = subprocess.run([*meshlab, "lab", "wasm", "apply", "--prefix", PREFIX, str(path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "default/cli-header: phase UNSPECIFIED_PHASE" in done.stdout and "pods: server" in done.stdout
    listed = subprocess.run([*meshlab, "lab", "wasm", "list", "--prefix", PREFIX, "--json"], capture_output=True, text=True, timeout=120)
    assert [p["name"] for p in json.loads(listed.stdout)] == ["cli-header"]
    assert call(lab).headers["x-cli"] == "1"
    path.write_text("kind: WasmPlugin\nspec: {}\n")
    refused = subprocess.run([*meshlab, "lab", "wasm", "apply", "--prefix", PREFIX, str(path)], capture_output=True, text=True, timeout=120)
    assert refused.returncode == 2 and "meshlab lab: error: WasmPlugin refused, nothing applied" in refused.stderr


def test_cleanup_after_kill_9_stops_the_agents_and_the_collector():
    cleanup_after_kill_9("from meshlab.lab import Lab, PodSpec; Lab('mldk').up([PodSpec('server', dataplane=True)], collector=True)", "mldk")


def test_zz_sigterm_to_the_agent_drains_the_sidecar_then_ends_it(lab):
    """Last in the module: it ends the server's proxy. The agent, told to stop as the kubelet tells the
    istio-proxy container, posts Envoy's graceful inbound drain, waits terminationDrainDuration (5 s,
    Istio's default) and kills the proxy."""
    (agent,) = [process for owner, process in lab.processes if owner == "server" and process.role == "agent"]
    (sidecar,) = [process for owner, process in lab.processes if owner == "server" and process.role == "sidecar"]
    os.kill(agent.pid, signal.SIGTERM)
    deadline = time.monotonic() + 3
    while '"event": "drain"' not in lab.logs("server", "sidecar") and time.monotonic() < deadline:
        time.sleep(0.05)
    (drain,) = [json.loads(line) for line in lab.logs("server", "sidecar").splitlines() if '"event": "drain"' in line]
    assert (drain["inbound_only"], drain["graceful"]) == (True, True)
    assert call(lab).headers["connection"] == "close"  # still answering while it drains, closing each connection
    deadline = time.monotonic() + 15
    while sidecar.alive() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not sidecar.alive()
    report = json.loads(lab.logs("server", "agent").splitlines()[-1])
    assert [step[1] for step in report["drained"]][-1] == "terminationDrainDuration over: proxy killed"
