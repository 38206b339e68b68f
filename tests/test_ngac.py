"""NGAC's access decision, its rules on assignments, and its equivalence with RBAC where RBAC can follow."""

from __future__ import annotations

import itertools
import random

import pytest

from meshlab.ngac import ContextAttribute, PolicyError, equivalent_pair, hospital_example, role_explosion


def test_every_policy_class_must_grant():
    policy = hospital_example()
    assert policy.decide("alice", "write", "record-17")  # cardiology staff (wards) AND doctor (confidentiality)
    assert policy.decide("bob", "read", "record-17")
    denied = policy.decide("bob", "write", "record-17")  # wards grants, confidentiality does not
    assert not denied and denied.granted_by["wards"] is not None and denied.granted_by["confidentiality"] is None
    assert not policy.decide("carol", "read", "record-17")  # a doctor, but not on the cardiology ward
    assert policy.privileges("bob") == {("read", "record-17")}


def test_assignments_follow_the_standard_and_stay_acyclic():
    policy = hospital_example()
    with pytest.raises(PolicyError, match="cannot assign u 'alice' to oa 'medical notes'"):
        policy.assign("alice", "medical notes")
    with pytest.raises(PolicyError, match="a pc is assigned to nothing"):
        policy.assign("wards", "cardiology staff")
    policy.assign(policy.add("ua", "senior staff"), "cardiology staff")
    with pytest.raises(PolicyError, match="would make a cycle"):
        policy.assign("cardiology staff", "senior staff")
    with pytest.raises(PolicyError, match="no policy element 'dave'"):
        policy.decide("dave", "read", "record-17")
    with pytest.raises(PolicyError, match="kind 'role' is not one of u, ua, o, oa, pc"):
        policy.add("role", "x")


def test_time_and_place_bounded_permissions():
    """Write access to the notes only on shift and on the ward: a condition RBAC cannot state."""
    policy = hospital_example()
    on_duty = ContextAttribute("on duty", lambda context: 8 <= context.get("hour", -1) < 20 and context.get("location") == "ward")
    policy.add_context_attribute(on_duty, "confidentiality")
    policy.add("u", "dan")
    policy.assign("dan", "cardiology staff")
    policy.assign("dan", "on duty")
    policy.associate("on duty", {"write"}, "medical notes")
    assert policy.decide("dan", "write", "record-17", {"hour": 10, "location": "ward"})
    assert not policy.decide("dan", "write", "record-17", {"hour": 23, "location": "ward"})
    assert not policy.decide("dan", "write", "record-17", {"hour": 10, "location": "home"})


def test_role_explosion_counts():
    assert role_explosion({"department": 10, "region": 5}) == {"rbac_roles": 50, "ngac_attributes": 30, "ngac_policy_classes": 2, "ngac_associations": 15}
    assert role_explosion({"department": 10, "region": 5, "clearance": 4})["rbac_roles"] == 200


def test_ngac_and_rbac_agree_where_rbac_can_express_the_policy():
    rng = random.Random(13)
    dimensions = {"department": ["sales", "ops", "hr"], "region": ["eu", "us"], "clearance": ["low", "high"]}
    users = {f"user{i}": {d: rng.choice(v) for d, v in dimensions.items()} for i in range(12)}
    objects = {f"doc{i}": {d: rng.choice(v) for d, v in dimensions.items()} for i in range(12)}
    ngac, rbac = equivalent_pair(dimensions, users, objects)
    decisions = [(user, obj, bool(ngac.decide(user, "read", obj)), rbac.decide(user, "read", obj)) for user, obj in itertools.product(users, objects)]
    assert all(n == r for _, _, n, r in decisions)
    assert any(n for _, _, n, _ in decisions) and not all(n for _, _, n, _ in decisions)
    assert len(rbac.roles) <= 3 * 2 * 2 and len(ngac.associations) == 3 + 2 + 2


def test_counts_are_the_graphs():
    counts = hospital_example().counts()
    assert counts == {"u": 3, "ua": 3, "o": 1, "oa": 2, "pc": 2, "associations": 3}
