"""Lab 04's checks recompute the reader's choice and name the constraint it breaks.

Exercise 1 (budget 150 MB, blast radius <= 10, L7 into ns0) has one answer; exercise 2 (budget
250 MB, blast radius <= 11, L7 into ns2) has several, and each of them passes.
"""

from __future__ import annotations

import pytest

from meshlab.check import CheckFailed, lab04
from meshlab.deploy import evaluate


def quoted(model, waypoints=None, scoped=None):
    result = evaluate(model, lab04.cluster(), waypoints, scoped=bool(scoped))
    listed = None if waypoints is None else sorted(waypoints)
    choice = {"model": model, "waypoints": listed, "memory_mb": result.memory_mb, "blast_radius_max_pods": result.blast_radius_max_pods}
    return choice if scoped is None else {**choice, "scoped": scoped}


def test_ambient_with_a_waypoint_for_the_payments_namespace_passes():
    lab04.check_choice(lambda: quoted("ambient", {"ns0"}))


@pytest.mark.parametrize(
    ("choice", "hint"),
    [
        (lambda: quoted("sidecar"), "sidecar needs 1930 MB of proxies; the budget is 150 MB"),
        (lambda: quoted("per-node"), "per-node needs 194 MB"),
        (lambda: quoted("ambient"), "ambient needs 220 MB"),
        (lambda: quoted("ambient", {"ns1"}), "one ambient proxy can cut off 13 pods; at most 10"),
        (lambda: quoted("ambient", set()), "some calls into ns0 pass no L7 proxy"),
        (lambda: {**quoted("ambient", {"ns0"}), "memory_mb": 72},
         r"you quoted memory_mb = 72; meshlab.deploy computes 97.0 for your choice \(ambient, waypoints \['ns0'\], unscoped\)"),
        (lambda: quoted("ambient", {"ns0"}, scoped=True), "this exercise has no scoped key"),
        (lambda: {"model": "mesh-of-meshes"}, "model 'mesh-of-meshes' is not one of sidecar, per-node"),
        (lambda: "ambient", "choose\\(\\) must return a dict"),
    ],
)
def test_wrong_choices_get_the_constraint_they_break(choice, hint):
    with pytest.raises(CheckFailed, match=hint):
        lab04.check_choice(choice)


@pytest.mark.parametrize(
    "choice",
    [
        lambda: quoted("per-node"),
        lambda: quoted("per-node", scoped=True),
        lambda: quoted("ambient", {"ns2"}),
        lambda: quoted("ambient", {"ns0", "ns2"}, scoped=True),
    ],
)
def test_the_open_exercise_accepts_every_choice_that_meets_it(choice):
    lab04.check_open_choice(choice)


@pytest.mark.parametrize(
    ("choice", "hint"),
    [
        (lambda: quoted("sidecar", scoped=True), "sidecar needs 1846 MB of proxies; the budget is 250 MB"),
        (lambda: quoted("per-service-account", scoped=True), "per-service-account needs 875 MB"),
        (lambda: quoted("ambient", {"ns0"}), "some calls into ns2 pass no L7 proxy"),
        (lambda: quoted("ambient"), "one ambient proxy can cut off 13 pods; at most 11"),
        (lambda: quoted("ambient", {"ns1", "ns2"}), "one ambient proxy can cut off 13 pods"),
        (lambda: {**quoted("ambient", {"ns2"}), "scoped": "yes"}, "scoped must be True or False, got 'yes'"),
        (lambda: {**quoted("sidecar", scoped=True), "scoped": False, "memory_mb": 100}, "sidecar needs 1930 MB"),
        (lambda: {**quoted("per-node"), "scoped": True, "blast_radius_max_pods": 3},
         r"you quoted blast_radius_max_pods = 3; meshlab.deploy computes 10.0 for your choice \(per-node, scoped\)"),
        (lambda: ["per-node"], "choose_open\\(\\) must return a dict"),
    ],
)
def test_the_open_exercise_names_the_constraint_a_wrong_choice_breaks(choice, hint):
    with pytest.raises(CheckFailed, match=hint):
        lab04.check_open_choice(choice)
