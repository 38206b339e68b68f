"""Lab 12's checks: the fitting choice passes, and each wrong one is refused with the reason it breaks."""

from __future__ import annotations

import pytest

from meshlab.check import CheckFailed, lab12


def answer(control_plane, network):
    return lambda: {"control_plane": control_plane, "network": network}


def test_the_fitting_choices_pass():
    lab12.check_choice(answer("multi-primary", "multi"), lab12.RETAIL)
    lab12.check_choice(answer("primary-remote", "single"), lab12.EDGE)


@pytest.mark.parametrize("constraints, choice, hint", [
    (lab12.RETAIL, answer("primary-remote", "multi"), "primary's istiod; while it is down they keep their last configuration"),
    (lab12.RETAIL, answer("multi-primary", "single"), "cannot reach; without a flat network"),
    (lab12.RETAIL, answer("separate meshes", "multi"), "with the API servers reachable one mesh is possible"),
    (lab12.EDGE, answer("multi-primary", "single"), "runs an istiod in every cluster"),
    (lab12.EDGE, answer("primary-remote", "multi"), "detour through an east-west gateway"),
    (lab12.EDGE, answer("primary", "single"), "control plane 'primary' is not one of"),
    (lab12.EDGE, lambda: "multi-primary", "must return"),
])
def test_each_wrong_choice_is_explained(constraints, choice, hint):
    with pytest.raises(CheckFailed, match=hint):
        lab12.check_choice(choice, constraints)


def test_the_priorities_pass_and_the_usual_mistakes_are_named():
    right = {"eu-west/eu-west-1a": 0, "eu-west/eu-west-1b": 1, "eu-central/eu-central-1a": 2, "us-east/us-east-1a": 3}
    lab12.check_priorities(lambda: right)
    with pytest.raises(CheckFailed, match="renumbers the priorities from 0 without gaps"):
        lab12.check_priorities(lambda: {**right, "eu-west/eu-west-1b": 2, "eu-central/eu-central-1a": 3, "us-east/us-east-1a": 4})
    with pytest.raises(CheckFailed, match="failover sends eu-west to eu-central"):
        lab12.check_priorities(lambda: {**right, "eu-central/eu-central-1a": 3, "us-east/us-east-1a": 2})


def test_the_spill_passes_and_forgetting_overprovisioning_is_named():
    lab12.check_spill(lambda: 0.65)
    with pytest.raises(CheckFailed, match="Envoy overprovisions"):
        lab12.check_spill(lambda: 0.75)
    with pytest.raises(CheckFailed, match="not answered yet"):
        lab12.check_spill(lambda: (_ for _ in ()).throw(NotImplementedError))
