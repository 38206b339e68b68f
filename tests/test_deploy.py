"""Deployment models on a topology small enough to compute by hand (tests/data/topology-small.json):

n1: a (ns1, sa1, 100 rps), b (ns1, sa2, 100 rps); n2: c (ns2, sa3, 50 rps), d (ns1, sa1, 0 rps);
calls a->b 60 rps, a->c 40 rps, c->d 50 rps (150 rps in all).
Services (namespace, account): ns1/sa1 (a, d), ns1/sa2 (b), ns2/sa3 (c): 3 services, 4 endpoints.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from meshlab.cli import main
from meshlab.deploy import MODELS, TopologyError, compare, evaluate, generate_topology, load_topology, proxies_for, simulate, topology_from_json
from meshlab.deploy.models import compromised_node_exposes, config_held
from meshlab.xds.memory import ENVOY_ISTIO_1_24, ZTUNNEL_MB, ProxyConfig

SMALL = Path(__file__).parent / "data" / "topology-small.json"


@pytest.fixture
def small():
    return load_topology(SMALL)


def envoy(listeners, clusters, endpoints):
    return ENVOY_ISTIO_1_24.resident_mb(ProxyConfig(listeners, clusters, endpoints))


def test_sidecar_one_envoy_per_pod(small):
    result = evaluate("sidecar", small)
    # 4 unscoped Envoys, each: 3 outbound listeners and clusters, its own inbound cluster, 4 endpoints;
    # each request handled twice: 2 x 150 rps x 0.20 vCPU / 1000 rps
    assert (len(result.proxies), result.memory_mb, result.cpu_cores) == (4, pytest.approx(4 * envoy(3, 4, 4)), pytest.approx(0.06))
    assert (result.blast_radius_max_pods, result.pod_restarts_for_upgrade, result.keys_per_node_max, result.identities_per_proxy_max) == (1, 4, 2, 1)
    assert (result.hops_per_request, result.l7_fraction) == (2.0, 1.0)


def test_per_node_shares_one_proxy_per_node(small):
    result = evaluate("per-node", small)
    # a->b and c->d stay on one node (1 hop), a->c crosses (2): (60 + 80 + 50) / 150
    assert result.hops_per_request == pytest.approx(190 / 150)
    assert result.cpu_cores == pytest.approx(0.20 * 190 / 1000)
    # each node proxy: the 3 services outbound, an inbound cluster for each of its 2 pods' services
    assert (len(result.proxies), result.memory_mb, result.blast_radius_max_pods, result.identities_per_proxy_max) == (2, pytest.approx(2 * envoy(3, 5, 4)), 2, 2)
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
    # every call goes ztunnel -> waypoint -> ztunnel; 2 ztunnels + the ns1 waypoint (2 services, 3 endpoints)
    # + the ns2 waypoint (1 service, 1 endpoint)
    assert (result.extra, result.hops_per_request) == ({"config_resources_max": 7, "ztunnels": 2, "waypoints": 2}, 3.0)
    assert result.memory_mb == pytest.approx(2 * ZTUNNEL_MB + envoy(2, 2, 3) + envoy(1, 1, 1))
    assert result.cpu_cores == pytest.approx((0.06 * 300 + 0.25 * 150) / 1000)  # two ztunnel passes, one waypoint pass
    assert result.blast_radius_max_pods == 3  # the ns1 waypoint serves a, b and d
    assert result.keys_per_node_max == 3  # a ztunnel with two accounts plus a waypoint on each node


def test_a_scoped_sidecar_holds_what_its_pod_calls(small):
    held = {p.name: config_held(p, small, scoped=True) for p in evaluate("sidecar", small).proxies}
    # a calls b and c; c calls d; b and d call nothing and keep only their inbound cluster
    assert held == {"sidecar/a": ProxyConfig(2, 3, 2), "sidecar/b": ProxyConfig(0, 1, 0), "sidecar/c": ProxyConfig(1, 2, 2), "sidecar/d": ProxyConfig(0, 1, 0)}
    assert evaluate("sidecar", small, scoped=True).memory_mb == pytest.approx(envoy(2, 3, 2) + envoy(1, 2, 2) + 2 * envoy(0, 1, 0))


@pytest.mark.parametrize("model", MODELS)
def test_memory_follows_configuration_not_request_rate(model):
    quiet, busy = (evaluate(model, generate_topology(nodes=3, pods_per_node=8, rps=rps, seed=2)) for rps in (10, 2000))
    assert quiet.memory_mb == busy.memory_mb and busy.cpu_cores == pytest.approx(200 * quiet.cpu_cores)


@pytest.mark.parametrize("model", MODELS)
def test_scoping_shrinks_memory_by_what_the_proxies_shed(model):
    topology = generate_topology(nodes=3, pods_per_node=20, namespaces=4, service_accounts=5, calls_per_pod=2, seed=3)
    unscoped, scoped = evaluate(model, topology), evaluate(model, topology, scoped=True)
    shed = sum(config_held(p, topology).resources - config_held(p, topology, scoped=True).resources for p in unscoped.proxies)
    assert unscoped.memory_mb - scoped.memory_mb == pytest.approx(shed * ENVOY_ISTIO_1_24.per_resource_kb / 1000)
    assert shed > 0 if model == "sidecar" else shed >= 0  # a pod calling 2 of 20 services sheds the other 18
    more_services = generate_topology(nodes=3, pods_per_node=20, namespaces=4, service_accounts=10, calls_per_pod=2, seed=3)
    assert evaluate(model, more_services).memory_mb > unscoped.memory_mb, "an unscoped mesh's proxies grow with its services"


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
    assert compare(small)["scoped"] is False and compare(small, scoped=True)["scoped"] is True


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
