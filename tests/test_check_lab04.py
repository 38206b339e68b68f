"""Lab 04's check recomputes the reader's choice and names the constraint it breaks."""

from __future__ import annotations

import pytest

from meshlab.check import CheckFailed, lab04
from meshlab.deploy import evaluate


def quoted(model, waypoints=None):
    result = evaluate(model, lab04.cluster(), waypoints)
    listed = None if waypoints is None else sorted(waypoints)
    return {"model": model, "waypoints": listed, "memory_mb": result.memory_mb, "blast_radius_max_pods": result.blast_radius_max_pods}


def test_ambient_with_a_waypoint_for_the_payments_namespace_passes():
    lab04.check_choice(lambda: quoted("ambient", {"ns0"}))


@pytest.mark.parametrize(
    ("choice", "hint"),
    [
        (lambda: quoted("sidecar"), "sidecar needs 1800 MB of proxies; the budget is 150 MB"),
        (lambda: quoted("per-node"), "per-node needs 180 MB"),
        (lambda: quoted("ambient"), "ambient needs 216 MB"),
        (lambda: quoted("ambient", {"ns1"}), "one ambient proxy can cut off 13 pods; at most 10"),
        (lambda: quoted("ambient", set()), "some calls into ns0 pass no L7 proxy"),
        (lambda: {**quoted("ambient", {"ns0"}), "memory_mb": 72}, "you quoted memory_mb = 72; meshlab.deploy computes 96"),
        (lambda: {"model": "mesh-of-meshes"}, "model 'mesh-of-meshes' is not one of sidecar, per-node"),
        (lambda: "ambient", "choose\\(\\) must return a dict"),
    ],
)
def test_wrong_choices_get_the_constraint_they_break(choice, hint):
    with pytest.raises(CheckFailed, match=hint):
        lab04.check_choice(choice)
