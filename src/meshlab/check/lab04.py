"""Checks for lab 04, "Choosing where the proxy lives".

The reader picks a deployment model (and, for ambient, the namespaces that get a waypoint) for the
lab's cluster under three constraints, and quotes the model's memory and blast radius. The check
recomputes everything with meshlab.deploy and says which constraint a wrong choice breaks.

    MISTAKES           the wrong answers the checks recognise
    Constraints        a memory budget, a largest blast radius, the namespaces that need L7 policy
    FIRST, OPEN        the two exercises' constraints: one answer meets the first, several the second
    check_choice       exercise 1
    check_open_choice  exercise 2 (any choice that meets OPEN passes; it may also be Sidecar-scoped)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from meshlab.check import CheckFailed, Mistake, answer_of
from meshlab.deploy import MODELS, evaluate, generate_topology
from meshlab.deploy.models import path

#: The lab's cluster.
TOPOLOGY = dict(nodes=3, pods_per_node=10, namespaces=3, service_accounts=2, seed=1)


@dataclass(frozen=True)
class Constraints:
    memory_budget_mb: float
    max_blast_radius: int
    l7_namespaces: tuple[str, ...]


#: Exercise 1: the payments namespace ns0 needs L7 policy; a tight budget.
FIRST = Constraints(memory_budget_mb=150.0, max_blast_radius=10, l7_namespaces=("ns0",))
#: Exercise 2: the orders namespace ns2 needs L7 policy; more memory, one more pod of blast radius.
OPEN = Constraints(memory_budget_mb=250.0, max_blast_radius=11, l7_namespaces=("ns2",))

OVER_BUDGET = Mistake("choose, choose_open", "picks a model whose proxies do not fit the memory budget",
                      "A proxy per pod costs the most; shared proxies (per node, ambient's ztunnel) and fewer waypoints cost less.")
BLAST_RADIUS = Mistake("choose, choose_open", "picks a placement whose one proxy serves too many pods",
                       "A shared proxy cuts off every pod it serves when it fails: the more pods share one, the larger the blast radius.")
NO_L7 = Mistake("choose, choose_open", "leaves a namespace that needs L7 policy without an L7 proxy (e.g. ambient without its waypoint)",
                "its HTTP policy could not be enforced: L7 policy needs a proxy that speaks HTTP on every call into the "
                "namespace (in ambient, a waypoint)")
MISQUOTED = Mistake("choose, choose_open", "quotes figures of another choice than the one made",
                    "Quote what meshlab.deploy.evaluate computes for your own choice (model, waypoints, scoping).")
MISTAKES = (OVER_BUDGET, BLAST_RADIUS, NO_L7, MISQUOTED)


def cluster():
    return generate_topology(**TOPOLOGY)


def l7_for_namespace(result, topology, namespace: str) -> bool:
    """Does every call into ``namespace`` pass a proxy that applies L7 policy?"""
    calls = [call for call in topology.calls() if topology.pod(call.target)["namespace"] == namespace]
    return all(any(proxy.l7 for proxy in path(result.proxies, call)) for call in calls)


def _check(choose: Callable[[], dict], name: str, constraints: Constraints, scoping_allowed: bool) -> None:
    choice = answer_of(choose)
    shape = '{"model": ..., "waypoints": [...], ' + ('"scoped": ..., ' if scoping_allowed else "") + '"memory_mb": ..., "blast_radius_max_pods": ...}'
    if not isinstance(choice, dict) or "model" not in choice:
        raise CheckFailed(f"{name}() must return a dict like {shape}")
    model = choice["model"]
    if model not in MODELS:
        raise CheckFailed(f"model {model!r} is not one of {', '.join(MODELS)}")
    scoped = choice.get("scoped", False)
    if scoped not in (True, False) or (scoped and not scoping_allowed):
        raise CheckFailed(f"scoped must be True or False, got {scoped!r}" if scoping_allowed else "this exercise has no scoped key: drop it")
    topology = cluster()
    listed = choice.get("waypoints")
    waypoints = set(listed) if model == "ambient" and listed is not None else None  # None: one per namespace
    try:
        result = evaluate(model, topology, waypoints, scoped=scoped)
    except ValueError as error:
        raise CheckFailed(str(error)) from None
    if result.memory_mb > constraints.memory_budget_mb:
        raise CheckFailed(f"{model} needs {result.memory_mb:.0f} MB of proxies; the budget is {constraints.memory_budget_mb:.0f} MB. "
                          f"{OVER_BUDGET.hint}")
    if result.blast_radius_max_pods > constraints.max_blast_radius:
        raise CheckFailed(f"one {model} proxy can cut off {result.blast_radius_max_pods} pods; at most {constraints.max_blast_radius} are "
                          f"allowed. {BLAST_RADIUS.hint}")
    for namespace in constraints.l7_namespaces:
        if not l7_for_namespace(result, topology, namespace):
            raise CheckFailed(f"some calls into {namespace} pass no L7 proxy: {NO_L7.hint}")
    for key, computed in (("memory_mb", result.memory_mb), ("blast_radius_max_pods", result.blast_radius_max_pods)):
        quoted = choice.get(key)
        if not isinstance(quoted, (int, float)) or abs(quoted - computed) > 0.5:
            placement = f"{model}, waypoints {'in every namespace' if waypoints is None else sorted(waypoints)}" if model == "ambient" else model
            raise CheckFailed(f"you quoted {key} = {quoted!r}; meshlab.deploy computes {computed:.1f} for your choice "
                              f"({placement}, {'scoped' if scoped else 'unscoped'}). {MISQUOTED.hint}")


def check_choice(choose: Callable[[], dict]) -> None:
    """Exercise 1: budget 150 MB, at most 10 pods cut off, L7 policy on every call into ns0."""
    _check(choose, "choose", FIRST, scoping_allowed=False)


def check_open_choice(choose: Callable[[], dict]) -> None:
    """Exercise 2: budget 250 MB, at most 11 pods cut off, L7 policy on every call into ns2; several
    choices meet it, and any of them passes."""
    _check(choose, "choose_open", OPEN, scoping_allowed=True)
