"""Checks for lab 04, "Choosing where the proxy lives".

The reader picks a deployment model (and, for ambient, the namespaces that get a waypoint) for the
lab's cluster under three constraints, and quotes the model's memory and blast radius. The check
recomputes everything with meshlab.deploy and says which constraint a wrong choice breaks.
"""

from __future__ import annotations

from collections.abc import Callable

from meshlab.check import CheckFailed, answer_of
from meshlab.deploy import MODELS, evaluate, generate_topology
from meshlab.deploy.models import path

#: The lab's cluster and constraints.
TOPOLOGY = dict(nodes=3, pods_per_node=10, namespaces=3, service_accounts=2, seed=1)
MEMORY_BUDGET_MB = 150.0
MAX_BLAST_RADIUS = 10
L7_NAMESPACE = "ns0"


def cluster():
    return generate_topology(**TOPOLOGY)


def l7_for_namespace(result, topology, namespace: str) -> bool:
    """Does every call into ``namespace`` pass a proxy that applies L7 policy?"""
    calls = [call for call in topology.calls() if topology.pod(call.target)["namespace"] == namespace]
    return all(any(proxy.l7 for proxy in path(result.proxies, call)) for call in calls)


def check_choice(choose: Callable[[], dict]) -> None:
    choice = answer_of(choose)
    if not isinstance(choice, dict) or "model" not in choice:
        raise CheckFailed('choose() must return a dict like {"model": ..., "waypoints": [...], "memory_mb": ..., "blast_radius_max_pods": ...}')
    model = choice["model"]
    if model not in MODELS:
        raise CheckFailed(f"model {model!r} is not one of {', '.join(MODELS)}")
    topology = cluster()
    listed = choice.get("waypoints")
    waypoints = set(listed) if model == "ambient" and listed is not None else None  # None: one per namespace
    try:
        result = evaluate(model, topology, waypoints)
    except ValueError as error:
        raise CheckFailed(str(error)) from None
    if result.memory_mb > MEMORY_BUDGET_MB:
        raise CheckFailed(f"{model} needs {result.memory_mb:.0f} MB of proxies; the budget is {MEMORY_BUDGET_MB:.0f} MB")
    if result.blast_radius_max_pods > MAX_BLAST_RADIUS:
        raise CheckFailed(f"one {model} proxy can cut off {result.blast_radius_max_pods} pods; at most {MAX_BLAST_RADIUS} are allowed")
    if not l7_for_namespace(result, topology, L7_NAMESPACE):
        raise CheckFailed(f"some calls into {L7_NAMESPACE} pass no L7 proxy, so its HTTP policy could not be enforced")
    for key, computed in (("memory_mb", result.memory_mb), ("blast_radius_max_pods", result.blast_radius_max_pods)):
        quoted = choice.get(key)
        if not isinstance(quoted, (int, float)) or abs(quoted - computed) > 0.5:
            raise CheckFailed(f"you quoted {key} = {quoted!r}; meshlab.deploy computes {computed:g} for your choice")
