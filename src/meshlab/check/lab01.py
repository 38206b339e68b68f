"""Checks for lab 01, "What a growing call graph costs".

The reader writes ``blast_radius(graph, service)`` and ``request_success(graph,
service, availability)``; both are checked on seeded call graphs against
meshlab.microservices, with a hint for each usual mistake.

    MISTAKES               the wrong answers the checks recognise
    check_blast_radius     exercise 1
    check_request_success  exercise 2
"""

from __future__ import annotations

from collections.abc import Callable

import networkx as nx

from meshlab.check import CheckFailed, Mistake, answer_of, diagnose
from meshlab.microservices import callgraph

CASES = ((12, 1, "svc-007"), (30, 4, "svc-011"), (30, 4, "svc-024"))

SELF_COUNTED = Mistake("blast_radius", "counts the failed service itself",
                       "The failed service itself is not in its blast radius: count only the services that call it.")
DOWNSTREAM = Mistake("blast_radius", "follows calls downstream (descendants)",
                     "You followed calls downstream (what it calls). A failure travels upstream, to its callers.")
DIRECT_CALLERS = Mistake("blast_radius", "counts direct callers only",
                         "You counted only direct callers; callers of those callers fail too (think ancestors).")
SERVICE_LEFT_OUT = Mistake("request_success", "leaves out the called service itself: a ** descendants",
                           "The service you call must be up too: include it as well as everything it calls.")
DIRECT_CALLEES = Mistake("request_success", "counts direct callees only",
                         "You counted only direct callees; what they call must be up as well.")
ADDED = Mistake("request_success", "multiplies instead of raising to a power: a * n",
                "Independent parts that must all be up multiply their availabilities: a ** n, not a * n.")
MISTAKES = (SELF_COUNTED, DOWNSTREAM, DIRECT_CALLERS, SERVICE_LEFT_OUT, DIRECT_CALLEES, ADDED)


def check_blast_radius(candidate: Callable[[nx.DiGraph, str], set[str]]) -> None:
    """A failure travels upstream: every direct or indirect caller, not the service itself."""
    for services, seed, failed in CASES:
        graph = callgraph.grow_call_graph(services, seed)
        answer = answer_of(candidate, graph, failed)
        if not isinstance(answer, (set, frozenset)):
            raise CheckFailed(f"blast_radius must return a set of service names, got {type(answer).__name__}")
        expected = callgraph.blast_radius(graph, failed)
        diagnose(
            set(answer),
            expected,
            f"blast_radius(graph of {services} services, {failed!r})",
            [
                (expected | {failed}, SELF_COUNTED.hint),
                (set(nx.descendants(graph, failed)), DOWNSTREAM.hint),
                (set(graph.predecessors(failed)), DIRECT_CALLERS.hint),
            ],
        )


def check_request_success(candidate: Callable[[nx.DiGraph, str, float], float]) -> None:
    """A request needs the service and everything below it: availability ** (1 + descendants)."""
    for services, seed, service in ((12, 1, "frontend"), (30, 4, "svc-011"), (30, 4, "svc-024")):
        graph = callgraph.grow_call_graph(services, seed)
        answer = answer_of(candidate, graph, service, 0.999)
        if not isinstance(answer, float):
            raise CheckFailed(f"request_success must return a float, got {type(answer).__name__}")
        expected = callgraph.request_success(graph, service, 0.999)
        below = len(nx.descendants(graph, service))
        diagnose(
            round(answer, 12),
            round(expected, 12),
            f"request_success(graph of {services} services, {service!r}, 0.999)",
            [
                (round(0.999**below, 12), SERVICE_LEFT_OUT.hint),
                (round(0.999 ** (1 + graph.out_degree(service)), 12), DIRECT_CALLEES.hint),
                (round(0.999 * (1 + below), 12), ADDED.hint),
            ],
        )
