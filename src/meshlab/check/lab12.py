"""Checks for lab 12, "Choosing a multi-cluster model".

The reader picks Istio's control-plane and network model for two organisations' clusters, and predicts
where a proxy's traffic goes when its home pods fail. The checks recompute with meshlab.multicluster
(models.explain names every constraint a choice breaks, and why; locality.failover_priorities and
priority_load are istiod's and Envoy's rules).

    RETAIL, EDGE       the two exercises' constraints
    check_choice       exercises 1 and 2: {"control_plane": ..., "network": ...}
    FAILOVER_PROXY, FAILOVER_LOCALITIES, FAILOVER_RULE   exercise 3's proxy, localities and DestinationRule failover
    check_priorities   exercise 3: each locality's priority
    check_spill        exercise 3: the share that leaves home with 1 of 4 home pods healthy
"""

from __future__ import annotations

from collections.abc import Callable

from meshlab.check import CheckFailed, answer_of
from meshlab.multicluster.locality import failover_priorities, priority_load
from meshlab.multicluster.models import CONTROL_PLANES, NETWORKS, Choice, Constraints, explain

#: Exercise 1: two clouds without peering, a team per cluster, API servers reachable on their endpoints.
RETAIL = Constraints(flat_network=False, api_servers_reachable=True, control_plane_per_cluster_failure_domain=True, teams_own_clusters=True)
#: Exercise 2: one central cluster and small edge clusters in one VPC, one small platform team.
EDGE = Constraints(flat_network=True, api_servers_reachable=True, fewest_control_planes=True)
FAILOVER_PROXY = "eu-west/eu-west-1a"
FAILOVER_LOCALITIES = ("eu-west/eu-west-1a", "eu-west/eu-west-1b", "eu-central/eu-central-1a", "us-east/us-east-1a")
FAILOVER_RULE = (("eu-west", "eu-central"),)


def check_choice(choose: Callable[[], dict], constraints: Constraints) -> None:
    answer = answer_of(choose)
    if not isinstance(answer, dict) or set(answer) != {"control_plane", "network"}:
        raise CheckFailed(f'{choose.__name__}() must return {{"control_plane": one of {", ".join(CONTROL_PLANES)}, '
                          f'"network": one of {", ".join(NETWORKS)}}}')
    try:
        choice = Choice(answer["control_plane"], answer["network"])
    except ValueError as error:
        raise CheckFailed(str(error)) from None
    reasons = explain(choice, constraints)
    if reasons:
        raise CheckFailed(f"{choice} does not fit:\n- " + "\n- ".join(reasons))


def check_priorities(predict: Callable[[], dict]) -> None:
    answer = answer_of(predict)
    expected = {str(k): v for k, v in failover_priorities(FAILOVER_PROXY, FAILOVER_LOCALITIES, FAILOVER_RULE).items()}
    if not isinstance(answer, dict) or set(answer) != set(expected):
        raise CheckFailed(f"predict_priorities() must return a priority for each of {', '.join(FAILOVER_LOCALITIES)}")
    wrong = [locality for locality in FAILOVER_LOCALITIES if answer[locality] != expected[locality]]
    if not wrong:
        return
    raw = {"eu-west/eu-west-1a": 0, "eu-west/eu-west-1b": 2, "eu-central/eu-central-1a": 3, "us-east/us-east-1a": 4}
    if all(answer[k] == raw[k] for k in raw):
        raise CheckFailed("right order, but istiod renumbers the priorities from 0 without gaps (no subzones here: nothing gets 1)")
    first = wrong[0]
    hint = {"eu-west/eu-west-1b": "another zone of the proxy's own region comes right after its own zone",
            "eu-central/eu-central-1a": "the DestinationRule's failover sends eu-west to eu-central before any other region",
            "us-east/us-east-1a": "a region the failover rule does not name comes last"}.get(first, "the proxy's own zone is priority 0")
    raise CheckFailed(f"{first}: you said {answer[first]}, istiod gives {expected[first]}: {hint}")


def check_spill(predict: Callable[[], float]) -> None:
    answer = answer_of(predict)
    loads = priority_load([1 / 4, 1.0])
    if not isinstance(answer, (int, float)) or isinstance(answer, bool):
        raise CheckFailed("predict_spill() must return the share (0..1) of requests that leave priority 0")
    if abs(answer - loads[1]) > 0.005:
        if abs(answer - 0.75) < 0.005:
            raise CheckFailed("3 of 4 pods are down, but Envoy overprovisions: priority 0 keeps 1.4 x its healthy share")
        raise CheckFailed(f"you said {answer:.3f}: priority 0's health is min(1, 1.4 x healthy share); the rest spills to priority 1")

