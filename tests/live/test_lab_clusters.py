"""Several clusters in the live lab: two clusters of echo pods, each behind its tier-2 gateway, and a
tier-1 gateway on the edge splitting 75/25 between them; the split counted over 2,000 requests,
a failover measured while a tier-2 gateway is killed and started again, the CLI, and cleanup that
leaves nothing behind, also after kill -9."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from meshlab.gateway.health import OutlierDetection
from meshlab.lab import LabUsageError
from meshlab.lab.clusters import TIER1_OUTLIER_DETECTION, Clusters
from meshlab.lab.netns import MACHINE
from meshlab.lab.spec import STATE_ROOT
from meshlab.lab.teardown import cleanup

pytestmark = pytest.mark.live


@pytest.fixture(scope="module")
def clusters():
    with Clusters("mlg").up(2) as running:
        yield running


def test_each_cluster_has_its_gateway_and_pods_named_after_it(clusters):
    status = clusters.status()
    assert status["tier1"]["weights"] == {"cluster1": 75, "cluster2": 25} and status["tier1"]["running"]
    assert [(c["name"], c["gateway"]["edge_ip"], c["gateway"]["running"]) for c in status["clusters"]] == [
        ("cluster1", "10.250.0.11", True), ("cluster2", "10.250.0.12", True)]
    assert [[pod["name"] for pod in c["pods"]] for c in status["clusters"]] == [["cluster1-echo0", "cluster1-echo1"], ["cluster2-echo0", "cluster2-echo1"]]
    assert sorted(MACHINE.with_prefix("mlg")) == sorted([f"mlg-{name}" for name in ("edge", "tier1", "client")] + [
        f"mlg-cluster{k}-{part}" for k in (1, 2) for part in ("node0", "gateway", "echo0", "echo1")])


def test_the_clusters_reuse_pod_addresses_and_no_namespace_routes_to_both(clusters):
    same = {c["name"]: [pod["ip"] for pod in c["pods"]] for c in clusters.status()["clusters"]}
    assert same["cluster1"] == same["cluster2"] == ["10.244.0.11", "10.244.0.12"]
    # the edge's namespaces have no route to any pod; each tier-2 gateway routes pods to its own node only
    for name in ("tier1", "client"):
        done = subprocess.run(["ip", "netns", "exec", f"mlg-{name}", "ip", "route", "get", "10.244.0.11"], capture_output=True, text=True)
        assert done.returncode != 0 and "unreachable" in done.stderr
    for k in (1, 2):
        route = subprocess.run(["ip", "netns", "exec", f"mlg-cluster{k}-gateway", "ip", "route", "get", "10.244.0.11"], capture_output=True, text=True).stdout
        assert "via 10.244.0.1 dev eth0" in route, route


def test_a_request_crosses_both_tiers_to_a_pod_of_one_cluster(clusters):
    reply = clusters.request("/through-both")
    assert reply.status == 200 and reply.body["path"] == "/through-both"
    assert reply.body["pod"].split("-")[0] in ("cluster1", "cluster2")
    assert reply.body["peer"].startswith("10.244.0.10:"), "the pod saw its cluster's tier-2 gateway"
    record = [r for r in clusters.logs("tier1") if r.get("event") == "request" and r["path"] == "/through-both"][-1]
    assert record["route"] == "edge/shop/rule/0" and record["upstream"] in ("10.250.0.11:80", "10.250.0.12:80")


def test_the_tier1_gateway_splits_2000_requests_75_25_within_3_points(clusters):
    before = clusters.counters("tier1")["per_backend"]
    counts = clusters.split(2000)
    assert set(counts) == {"cluster1", "cluster2"}, f"no request failed: {counts}"
    assert abs(100 * counts["cluster1"] / 2000 - 75) <= 3
    after = clusters.counters("tier1")["per_backend"]
    # what the client counted by the pods' names, the tier-1 gateway counted by its upstreams
    assert after["edge/cluster1-gateway:80"] - before.get("edge/cluster1-gateway:80", 0) == counts["cluster1"]


def test_weights_change_live(clusters):
    clusters.set_weights({"cluster1": 0, "cluster2": 100})
    try:
        assert clusters.split(50) == {"cluster1": 0, "cluster2": 50}
    finally:
        clusters.set_weights({"cluster1": 75, "cluster2": 25})
    assert clusters.split(40) == {"cluster1": 30, "cluster2": 10}


def test_a_killed_tier2_gateway_loses_at_most_consecutive5xx_requests_and_comes_back(clusters):
    result = clusters.failover("cluster1", before_s=0.5, down_s=2.5, after_s=2.5)
    threshold = OutlierDetection.from_envoy(TIER1_OUTLIER_DETECTION).consecutive_5xx
    assert 1 <= result.requests_lost <= threshold, str(result)
    last_failure = result.failed[-1].t
    until_restart = [s for s in result.samples if last_failure < s.t < result.restart_at]
    assert until_restart and all(s.cluster == "cluster2" and s.status == 200 for s in until_restart), "after the failover every request lands in cluster2"
    assert result.recovery_s is not None, "cluster1 answers again once its gateway is back"
    assert all(s.status == 200 for s in result.samples if s.t > result.ready_at), "nothing fails on the way back"
    ejected = [e for e in result.events if e.get("upstream_url") == "10.250.0.11:80" and e.get("action") == "EJECT" and e["enforced"]]
    assert ejected and ejected[0]["type"] == "CONSECUTIVE_5XX"
    assert any(e.get("action") == "add_healthy" and e["host"] == "10.250.0.11:80" for e in result.events), "a passed check returned it"
    assert str(result).startswith(f"{len(result.samples)} requests; cluster1's gateway killed")


def test_failover_asks_for_a_running_gateway_and_a_known_cluster(clusters):
    with pytest.raises(LabUsageError, match="no cluster 'cluster9'; clusters are cluster1, cluster2"):
        clusters.failover("cluster9")


def test_attach_sees_the_same_lab_and_the_one_cluster_lab_reads_its_pods(clusters):
    from meshlab.lab import Lab

    again = Clusters.attach("mlg")
    assert again.status()["clusters"] == clusters.status()["clusters"]
    lab = Lab.attach("mlg")
    assert lab.exec("cluster2-echo0", ["ip", "-brief", "addr", "show", "eth0"]).stdout.split()[2] == "10.244.0.11/32"
    assert '"event": "ready"' in lab.logs("tier1", "gateway")


def meshlab(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "meshlab.cli", "lab", *args], capture_output=True, text=True, timeout=120)


def test_cli_up_with_clusters_status_logs_and_down():
    up = meshlab("up", "--clusters", "2", "--prefix", "mlq")
    try:
        assert up.returncode == 0, up.stderr
        assert "2 cluster(s) of 2 pod(s)" in up.stdout
        status = json.loads(meshlab("status", "--json", "--prefix", "mlq").stdout)
        assert [c["name"] for c in status["clusters"]] == ["cluster1", "cluster2"]
        text = meshlab("status", "--prefix", "mlq").stdout
        assert "tier-1 gateway 10.250.0.10:80 (running)" in text and "cluster2-echo1" in text
        assert '"event": "ready"' in meshlab("logs", "cluster1-gateway", "gateway", "--prefix", "mlq").stdout
        refused = meshlab("up", "--clusters", "2", "--nodes", "2", "--prefix", "mlr")
        assert refused.returncode == 2 and "--nodes cannot be combined with --clusters" in refused.stderr
    finally:
        assert meshlab("down", "--prefix", "mlq").returncode == 0
    assert MACHINE.with_prefix("mlq") == [] and not (STATE_ROOT / "mlq").exists()


def _kubelet_children(prefix: str) -> list[int]:
    """Processes living in the prefix's namespaces."""
    found = []
    for name in MACHINE.with_prefix(prefix):
        found += [int(pid) for pid in subprocess.run(["ip", "netns", "pids", name], capture_output=True, text=True).stdout.split()]
    return found


def test_cleanup_after_kill_9_leaves_nothing():
    """The Python that built the lab dies with SIGKILL, and so does one of its gateways: cleanup still
    finds every process (state file, and the namespaces' own PIDs) and every namespace."""
    script = "import os, signal; from meshlab.lab.clusters import Clusters; Clusters('mlz').up(2); os.kill(os.getpid(), signal.SIGKILL)"
    builder = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert builder.returncode == -signal.SIGKILL, builder.stderr
    pids = _kubelet_children("mlz")
    assert len(pids) == 7, "two echo pods and a gateway per cluster, and the tier-1 gateway"
    os.kill(pids[0], signal.SIGKILL)
    removed = cleanup("mlz")
    assert removed["processes_stopped"] >= 6 and len(removed["namespaces_deleted"]) == 11
    assert MACHINE.with_prefix("mlz") == [] and not (STATE_ROOT / "mlz").exists()
    deadline = time.monotonic() + 10
    while any(Path(f"/proc/{pid}/cmdline").exists() and Path(f"/proc/{pid}/cmdline").read_bytes() for pid in pids):
        assert time.monotonic() < deadline, "a lab process outlived cleanup"
        time.sleep(0.05)
