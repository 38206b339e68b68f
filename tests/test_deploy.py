"""Deployment models on a topology small enough to compute by hand (tests/data/topology-small.json):

n1: a (ns1, sa1, 100 rps), b (ns1, sa2, 100 rps); n2: c (ns2, sa3, 50 rps), d (ns1, sa1, 0 rps);
calls a->b 60 rps, a->c 40 rps, c->d 50 rps (150 rps in all).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from meshlab.cli import main
from meshlab.deploy import MODELS, TopologyError, compare, evaluate, generate_topology, load_topology, proxies_for, simulate, topology_from_json
from meshlab.deploy.models import compromised_node_exposes

SMALL = Path(__file__).parent / "data" / "topology-small.json"


@pytest.fixture
def small():
    return load_topology(SMALL)


def test_sidecar_one_envoy_per_pod(small):
    result = evaluate("sidecar", small)
    # 4 Envoys x 60 MB; each request handled twice: 2 x 150 rps x 0.20 vCPU / 1000 rps
    assert (len(result.proxies), result.memory_mb, result.cpu_cores) == (4, 240.0, pytest.approx(0.06))
    assert (result.blast_radius_max_pods, result.pod_restarts_for_upgrade, result.keys_per_node_max, result.identities_per_proxy_max) == (1, 4, 2, 1)
    assert (result.hops_per_request, result.l7_fraction) == (2.0, 1.0)


def test_per_node_shares_one_proxy_per_node(small):
    result = evaluate("per-node", small)
    # a->b and c->d stay on one node (1 hop), a->c crosses (2): (60 + 80 + 50) / 150
    assert result.hops_per_request == pytest.approx(190 / 150)
    assert result.cpu_cores == pytest.approx(0.20 * 190 / 1000)
    assert (len(result.proxies), result.memory_mb, result.blast_radius_max_pods, result.identities_per_proxy_max) == (2, 120.0, 2, 2)
    assert result.pod_restarts_for_upgrade == 0


def test_per_node_proxies_run_on_nodes_without_pods_too():
    topology = topology_from_json({"nodes": [{"name": "n1"}, {"name": "empty"}], "pods": [
        {"name": "a", "node": "n1", "namespace": "x", "service_account": "s", "rps": 1},
        {"name": "b", "node": "n1", "namespace": "x", "service_account": "s", "rps": 1}]})
    assert [p.node for p in proxies_for("per-node", topology)] == ["empty", "n1"]
    assert [p.name for p in proxies_for("ambient", topology)] == ["ztunnel/empty", "ztunnel/n1", "waypoint/x"]


def test_per_service_account_runs_where_an_account_has_pods(small):
    assert [p.name for p in proxies_for("per-service-account", small)] == ["sa-proxy/n1/sa1", "sa-proxy/n1/sa2", "sa-proxy/n2/sa1", "sa-proxy/n2/sa3"]
    assert evaluate("per-service-account", small).hops_per_request == 2.0


def test_ambient_with_a_waypoint_per_namespace(small):
    result = evaluate("ambient", small)
    # every call goes ztunnel -> waypoint -> ztunnel; 2 ztunnels (12 MB) + 2 waypoints (60 MB)
    assert (result.extra, result.memory_mb, result.hops_per_request) == ({"ztunnels": 2, "waypoints": 2}, 144.0, 3.0)
    assert result.cpu_cores == pytest.approx((0.06 * 300 + 0.25 * 150) / 1000)  # two ztunnel passes, one waypoint pass
    assert result.blast_radius_max_pods == 3  # the ns1 waypoint serves a, b and d
    assert result.keys_per_node_max == 3  # a ztunnel with two accounts plus a waypoint on each node


def test_ambient_l7_only_where_a_waypoint_is(small):
    result = evaluate("ambient", small, {"ns2"})
    assert result.hops_per_request == pytest.approx((60 * 1 + 40 * 3 + 50 * 1) / 150)
    assert result.l7_fraction == pytest.approx(40 / 150)


def test_a_compromised_node_exposes_every_account_on_it_in_every_model(small):
    for model in MODELS:
        assert {"sa1", "sa2"} <= compromised_node_exposes(model, small, "n1")
    assert compromised_node_exposes("ambient", small, "n1") == {"sa1", "sa2", "waypoint:ns1"}


def test_compare_has_the_documented_keys(small):
    models = compare(small)["models"]
    assert list(models) == list(MODELS)
    for figures in models.values():
        assert {"proxies", "memory_mb", "cpu_cores", "blast_radius_max_pods", "keys_per_node_max", "hops_per_request"} <= set(figures)
    assert {"ztunnels", "waypoints"} <= set(models["ambient"])


def test_availability_is_seeded_and_grows_with_hops():
    topology = generate_topology(nodes=3, pods_per_node=6, seed=2)
    first = simulate("sidecar", topology, seed=3)
    assert first == simulate("sidecar", topology, seed=3)
    assert simulate("sidecar", topology, failures_per_hour=0, seed=3).failed == 0
    per_node = simulate("per-node", topology, seed=3)
    assert per_node.max_pods_cut_off >= 6 > simulate("sidecar", topology, failures_per_hour=0.01, seed=3).max_pods_cut_off
    assert 0 < first.failed_fraction < 0.05


def test_generated_topologies_are_seeded():
    assert generate_topology(seed=4).as_json() == generate_topology(seed=4).as_json()
    assert generate_topology(seed=4).as_json() != generate_topology(seed=5).as_json()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["pods"][0].update(node="n9"), "pods[0] (a): unknown node 'n9'; nodes are n1, n2"),
        (lambda d: d["pods"][1].pop("service_account"), "pods[1]: missing field 'service_account'"),
        (lambda d: d["pods"][2].update(rps=-5), "pods[2] (c): rps -5 is not a number >= 0"),
        (lambda d: d["calls"][0].update(to="zz"), "calls[0]: unknown pod 'zz' in 'to'"),
        (lambda d: d["pods"].append(dict(d["pods"][0])), "pods[4] (a): duplicate name 'a'"),
        (lambda d: d.pop("nodes"), 'a topology is an object with "nodes" and "pods"'),
    ],
)
def test_bad_topologies_name_the_entry(change, message):
    data = json.loads(SMALL.read_text())
    change(data)
    with pytest.raises(TopologyError, match=re.escape(message)):
        topology_from_json(data)


def test_cli_json_and_errors(tmp_path, capsys):
    assert main(["deploy", "compare", "--topology", str(SMALL), "--json"]) == 0
    models = json.loads(capsys.readouterr().out)["models"]
    assert models["per-node"]["proxies"] == 2 and "failed_request_fraction" in models["sidecar"]
    bad = tmp_path / "bad.json"
    bad.write_text('{"nodes": [{"name": "n1"}], "pods": [{"name": "a", "node": "n2"}]}')
    assert main(["deploy", "compare", "--topology", str(bad)]) == 2
    assert "pods[0]: missing field 'namespace'" in capsys.readouterr().err
    assert main(["deploy", "compare", "--topology", str(SMALL), "--waypoints", "ns9"]) == 2
    assert "no namespace 'ns9' for a waypoint; namespaces are ns1, ns2" in capsys.readouterr().err
