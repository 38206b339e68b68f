"""The call-graph growth model and the two request paths of chapter 01."""

from __future__ import annotations

import networkx as nx
import pytest

from meshlab.microservices import blast_radius, call_graph_stats, grow_call_graph, kube_proxy_path, request_success, sidecar_path


def test_same_seed_gives_the_same_graph_and_another_seed_another():
    assert sorted(grow_call_graph(30, seed=5).edges) == sorted(grow_call_graph(30, seed=5).edges)
    assert sorted(grow_call_graph(30, seed=5).edges) != sorted(grow_call_graph(30, seed=6).edges)


@pytest.mark.parametrize("services", [1, 2, 3, 25, 120])
def test_every_newcomer_gets_two_callers_and_the_graph_stays_a_dag(services):
    graph = grow_call_graph(services, seed=11)
    assert graph.number_of_nodes() == services
    assert nx.is_directed_acyclic_graph(graph)
    assert graph.number_of_edges() == sum(min(2, index) for index in range(services))
    assert all(graph.in_degree(node) >= 1 for node in graph if node != "frontend")


def test_blast_radius_is_every_service_that_reaches_the_failed_one():
    graph = grow_call_graph(25, seed=2)
    for failed in graph:
        by_search = {node for node in graph if node != failed and nx.has_path(graph, node, failed)}
        assert blast_radius(graph, failed) == by_search


def test_call_paths_match_enumeration_of_every_path_from_the_entry():
    graph = grow_call_graph(14, seed=9)
    enumerated = 1 + sum(len(list(nx.all_simple_paths(graph, "frontend", target))) for target in graph if target != "frontend")
    assert call_graph_stats(graph).call_paths == enumerated


def test_stats_of_a_known_small_graph():
    stats = call_graph_stats(grow_call_graph(3, seed=0))
    # frontend -> svc-001; frontend and svc-001 -> svc-002
    assert (stats.dependencies, stats.call_paths, stats.longest_chain, stats.max_blast_radius, stats.full_mesh_pairs) == (3, 4, 2, 2, 3)


def test_request_success_multiplies_over_the_service_and_everything_below():
    graph = grow_call_graph(10, seed=3)
    leaf = next(node for node in sorted(graph) if graph.out_degree(node) == 0)
    assert request_success(graph, leaf, 0.9) == pytest.approx(0.9)
    assert request_success(graph, "frontend", 0.9) == pytest.approx(0.9**10)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: grow_call_graph(0), "services must be at least 1"),
        (lambda: grow_call_graph(5, callers_per_service=0), "callers_per_service must be at least 1"),
        (lambda: request_success(grow_call_graph(3), "frontend", 1.5), "availability must be within [0, 1]"),
    ],
)
def test_bad_input_is_named(call, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        call()


def test_unknown_service_is_named():
    with pytest.raises(KeyError, match="no service 'nope'"):
        blast_radius(grow_call_graph(3), "nope")


def test_sidecars_add_two_proxies_two_connections_and_three_netfilter_decisions():
    plain, meshed = kube_proxy_path(), sidecar_path()
    assert (plain.user_space_proxies, plain.tcp_connections, plain.netfilter_decisions) == (0, 1, 1)
    assert (meshed.user_space_proxies, meshed.tcp_connections, meshed.netfilter_decisions) == (2, 3, 4)
    # Istio's ports: outbound capture on 15001, inbound on 15006; the app sees 127.0.0.6.
    actions = " ".join(hop.action for hop in meshed.hops)
    assert "15001" in actions and "15006" in actions and meshed.hops[-1].action.endswith("127.0.0.6")
    assert [hop.name for hop in meshed.hops if hop.kind == "proxy"] == ["sidecar A", "sidecar B"]


def test_kube_proxys_dnat_for_a_pods_call_is_in_the_nodes_nat_prerouting():
    # A pod's packet enters the node's stack from its veth, so it meets KUBE-SERVICES through the jump
    # from nat PREROUTING (kubernetes/kubernetes pkg/proxy/iptables/proxier.go, iptablesJumpChains);
    # nat OUTPUT is where the node's own processes meet it.
    (dnat,) = [hop for hop in kube_proxy_path().hops if hop.name == "KUBE-SERVICES"]
    assert dnat.where == "node A, nat PREROUTING" and dnat.action.startswith("DNAT 10.96.0.20:9080 -> ")
    assert not any(hop.where.startswith("node") and "OUTPUT" in hop.where for path in (kube_proxy_path(), sidecar_path()) for hop in path.hops)
