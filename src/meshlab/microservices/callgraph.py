"""A seeded model of a microservice call graph as a system grows.

The mental model: services arrive one at a time, and each newcomer is called
by a few services that already exist, preferring the ones that already call
many others (aggregators such as a frontend or a BFF keep growing). Edges point
from caller to callee, so the graph is a DAG rooted at the entry service.

    grow_call_graph   the graph for N services and a seed
    blast_radius      the services whose requests fail when one service fails
    request_success   chance that a request from a service succeeds
    CallGraphStats    what grows with N: dependencies, paths, chain depth, blast radius
    call_graph_stats  computes CallGraphStats for a graph
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import networkx as nx

ENTRY = "frontend"


def _service_name(index: int) -> str:
    return ENTRY if index == 0 else f"svc-{index:03d}"


def grow_call_graph(services: int, seed: int = 0, callers_per_service: int = 2) -> nx.DiGraph:
    """Grow a call graph of ``services`` services; the same seed gives the same graph.

    Service 0 is the entry (``frontend``). Every later service is called by up to
    ``callers_per_service`` existing services, drawn with probability proportional to
    (calls they already make + 1): preferential attachment, as aggregators attract calls.
    """
    if services < 1:
        raise ValueError(f"services must be at least 1, got {services}")
    if callers_per_service < 1:
        raise ValueError(f"callers_per_service must be at least 1, got {callers_per_service}")
    rng = random.Random(seed)
    graph = nx.DiGraph()
    graph.add_node(ENTRY)
    for index in range(1, services):
        callee = _service_name(index)
        existing = [_service_name(i) for i in range(index)]
        callers: set[str] = set()
        while len(callers) < min(callers_per_service, index):
            weights = [graph.out_degree(name) + 1 for name in existing]
            callers.add(rng.choices(existing, weights=weights)[0])
        graph.add_node(callee)
        graph.add_edges_from((caller, callee) for caller in sorted(callers))
    return graph


def blast_radius(graph: nx.DiGraph, service: str) -> set[str]:
    """Services that can fail when ``service`` fails: everyone that calls it, directly or not."""
    if service not in graph:
        raise KeyError(f"no service {service!r} in the call graph")
    return set(nx.ancestors(graph, service))


def request_success(graph: nx.DiGraph, service: str, availability: float) -> float:
    """Chance that a request to ``service`` succeeds when every service it needs is up
    independently with probability ``availability`` (no retries, no fallbacks)."""
    if not 0.0 <= availability <= 1.0:
        raise ValueError(f"availability must be within [0, 1], got {availability}")
    needed = 1 + len(nx.descendants(graph, service))
    return availability**needed


@dataclass(frozen=True)
class CallGraphStats:
    """What a platform team must manage for a call graph of this size."""

    services: int
    dependencies: int
    call_paths: int
    longest_chain: int
    max_blast_radius: int
    mean_blast_radius: float
    full_mesh_pairs: int


def _paths_from_entry(graph: nx.DiGraph) -> int:
    """Distinct call paths that start at the entry service (DAG dynamic programming)."""
    ways = {node: 0 for node in graph}
    ways[ENTRY] = 1
    for node in nx.topological_sort(graph):
        for callee in graph.successors(node):
            ways[callee] += ways[node]
    return sum(ways.values())


def call_graph_stats(graph: nx.DiGraph) -> CallGraphStats:
    """Count dependencies, call paths, the deepest chain and failure domains."""
    radii = [len(blast_radius(graph, node)) for node in graph]
    n = graph.number_of_nodes()
    return CallGraphStats(
        services=n,
        dependencies=graph.number_of_edges(),
        call_paths=_paths_from_entry(graph),
        longest_chain=nx.dag_longest_path_length(graph),
        max_blast_radius=max(radii),
        mean_blast_radius=round(sum(radii) / n, 2),
        full_mesh_pairs=n * (n - 1) // 2,
    )
