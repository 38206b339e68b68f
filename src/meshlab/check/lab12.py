"""Checks for lab 12, "Choosing a multi-cluster model".

The reader picks Istio's control-plane and network model for two organisations' clusters, and predicts
where a proxy's traffic goes when its home pods fail. The checks recompute with meshlab.multicluster
(models.explain names every constraint a choice breaks, and why; locality.failover_priorities and
priority_load are istiod's and Envoy's rules).

    MISTAKES           the wrong answers the checks recognise (exercises 1 and 2's: every reason models.explain gives)
    RETAIL, EDGE       the two exercises' constraints
    check_choice       exercises 1 and 2: {"control_plane": ..., "network": ...}
    FAILOVER_PROXY, FAILOVER_LOCALITIES, FAILOVER_RULE   exercise 3's proxy, localities and DestinationRule failover
    check_priorities   exercise 3: each locality's priority
    check_spill        exercise 3: the share that leaves home with 1 of 4 home pods healthy
"""

from __future__ import annotations

from collections.abc import Callable

from meshlab.check import CheckFailed, Mistake, answer_of
from meshlab.multicluster.locality import failover_priorities, priority_load
from meshlab.multicluster.models import CONTROL_PLANES, NETWORKS, Choice, Constraints, explain

#: Exercise 1: two clouds without peering, a team per cluster, API servers reachable on their endpoints.
RETAIL = Constraints(flat_network=False, api_servers_reachable=True, control_plane_per_cluster_failure_domain=True, teams_own_clusters=True)
#: Exercise 2: one central cluster and small edge clusters in one VPC, one small platform team.
EDGE = Constraints(flat_network=True, api_servers_reachable=True, fewest_control_planes=True)
FAILOVER_PROXY = "eu-west/eu-west-1a"
FAILOVER_LOCALITIES = ("eu-west/eu-west-1a", "eu-west/eu-west-1b", "eu-central/eu-central-1a", "us-east/us-east-1a")
FAILOVER_RULE = (("eu-west", "eu-central"),)


def _choice_mistakes(exercise: str, constraints: Constraints) -> tuple[Mistake, ...]:
    """Each reason ``explain`` gives against some choice, with a choice it is given for: the check prints
    every reason a choice breaks, so these are its hints."""
    found: dict[str, list[tuple[int, Choice]]] = {}
    for control_plane in CONTROL_PLANES:
        for network in NETWORKS:
            choice = Choice(control_plane, network)
            reasons = explain(choice, constraints)
            for reason in reasons:
                found.setdefault(reason, []).append((len(reasons), choice))
    # each reason with the choice that breaks the fewest constraints besides: the mistake in its purest form
    return tuple(Mistake(exercise, f"chooses {min(choices, key=lambda c: c[0])[1]}", reason) for reason, choices in found.items())


GAPS = Mistake("predict_priorities", "numbers the priorities with gaps (0, 2, 3, 4)",
               "right order, but istiod renumbers the priorities from 0 without gaps (no subzones here: nothing gets 1)")
#: The hint for the first locality whose priority is wrong (any other: the proxy's own zone).
PRIORITY_MISTAKES = {
    "eu-west/eu-west-1b": Mistake("predict_priorities", "puts the proxy's other zone after another region",
                                  "another zone of the proxy's own region comes right after its own zone"),
    "eu-central/eu-central-1a": Mistake("predict_priorities", "ignores the DestinationRule's failover to eu-central",
                                        "the DestinationRule's failover sends eu-west to eu-central before any other region"),
    "us-east/us-east-1a": Mistake("predict_priorities", "gives the region the failover rule does not name a wrong priority",
                                  "a region the failover rule does not name comes last"),
    FAILOVER_PROXY: Mistake("predict_priorities", "does not give the proxy's own zone priority 0", "the proxy's own zone is priority 0"),
}
NO_OVERPROVISIONING = Mistake("predict_spill", "0.75: forgets Envoy's overprovisioning factor",
                              "3 of 4 pods are down, but Envoy overprovisions: priority 0 keeps 1.4 x its healthy share")
SPILL = Mistake("predict_spill", "another share", "priority 0's health is min(1, 1.4 x healthy share); the rest spills to priority 1")
MISTAKES = (*_choice_mistakes("choose_retail", RETAIL), *_choice_mistakes("choose_edge", EDGE), GAPS, *PRIORITY_MISTAKES.values(),
            NO_OVERPROVISIONING, SPILL)


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
        raise CheckFailed(GAPS.hint)
    first = wrong[0]
    hint = PRIORITY_MISTAKES.get(first, PRIORITY_MISTAKES[FAILOVER_PROXY]).hint
    raise CheckFailed(f"{first}: you said {answer[first]}, istiod gives {expected[first]}: {hint}")


def check_spill(predict: Callable[[], float]) -> None:
    answer = answer_of(predict)
    loads = priority_load([1 / 4, 1.0])
    if not isinstance(answer, (int, float)) or isinstance(answer, bool):
        raise CheckFailed("predict_spill() must return the share (0..1) of requests that leave priority 0")
    if abs(answer - loads[1]) > 0.005:
        if abs(answer - 0.75) < 0.005:
            raise CheckFailed(NO_OVERPROVISIONING.hint)
        raise CheckFailed(f"you said {answer:.3f}: {SPILL.hint}")

