"""ABAC rules as predicates over subject, object, action and environment attributes (NIST SP 800-162),
and the chapter's requirement written in RBAC, NGAC, AuthorizationPolicy and ABAC."""

from __future__ import annotations

import pytest

from meshlab import tenancy
from meshlab.abac import AbacPolicy, AbacRequest, Rule, action, environment, object_, subject
from meshlab.authz import load

SAME_TEAM = Rule("same team", subject.team == object_.team)
NIGHT_DENY = Rule("no writes at night", (action == "write") & ((environment.hour < 8) | (environment.hour >= 18)), "deny")


def request(team="a", owner="a", verb="read", hour=12, **extra):
    return AbacRequest({"team": team, **extra}, verb, {"team": owner}, {"hour": hour})


def test_a_rule_compares_a_subject_attribute_with_an_objects():
    policy = AbacPolicy([SAME_TEAM])
    assert policy.decide(request("a", "a")) and not policy.decide(request("a", "b"))
    assert str(SAME_TEAM) == "permit 'same team' if subject.team == object.team"


def test_deny_overrides_and_default_deny():
    policy = AbacPolicy([SAME_TEAM, NIGHT_DENY])
    assert policy.decide(request(verb="write", hour=12))
    decision = policy.decide(request(verb="write", hour=23))
    assert not decision and decision.rule == "no writes at night"
    assert policy.decide(request(verb="read", hour=23))
    assert AbacPolicy([]).decide(request()).allowed is False
    assert str(NIGHT_DENY.condition) == "(action == 'write') and ((environment.hour < 8) or (environment.hour >= 18))"


def test_a_missing_attribute_never_permits_and_a_deny_rule_fails_closed():
    permit_on_level = Rule("cleared", subject.clearance >= object_.team)  # object has no clearance either way
    assert not AbacPolicy([permit_on_level]).decide(request())
    no_hour = AbacRequest({"team": "a"}, "write", {"team": "a"}, {})
    decision = AbacPolicy([SAME_TEAM, NIGHT_DENY]).decide(no_hour)
    assert not decision and decision.indeterminate == ("no writes at night",)


def test_membership_and_negation():
    member = Rule("listed", object_.team.is_in(subject.teams) & ~(environment.hour < 6))
    policy = AbacPolicy([member])
    assert policy.decide(AbacRequest({"teams": ["a", "b"]}, "read", {"team": "b"}, {"hour": 9}))
    assert not policy.decide(AbacRequest({"teams": ["a", "b"]}, "read", {"team": "c"}, {"hour": 9}))
    assert not policy.decide(AbacRequest({"teams": ["a", "b"]}, "read", {"team": "b"}, {"hour": 3}))
    assert policy.attributes() == {"object.team", "subject.teams", "environment.hour"}


def test_misuse_is_named():
    with pytest.raises(TypeError, match="no truth value until evaluated: combine with & | ~"):
        Rule("python and", (subject.team == "a") and (object_.team == "b"))
    with pytest.raises(ValueError, match="effect 'allow' is not one of permit, deny"):
        Rule("x", subject.team == "a", "allow")
    with pytest.raises(TypeError, match="the condition must be an expression"):
        Rule("x", lambda r: True)


MESH = tenancy.Mesh.of(4, 3)


def test_every_model_but_rbac_decides_the_requirement_on_every_case():
    result = tenancy.compare(MESH)
    assert len(tenancy.cases(MESH)) == 12 * 12 * 2 * 3
    assert {model: figures["wrong"] for model, figures in result.items()} == {"RBAC": 24, "NGAC": 0, "AuthorizationPolicy": 0, "ABAC": 0}
    # RBAC's only errors: writes inside the caller's own cell outside the window (12 cells x 2 hours)
    assert result["RBAC"]["first_wrong"] == "web in acme-eu POST orders in acme-eu at 03:00"


@pytest.mark.parametrize(("tenants", "regions"), [(1, 1), (3, 2), (8, 5)])
def test_sizes_grow_as_each_model_says(tenants, regions):
    result = tenancy.compare(tenancy.Mesh.of(tenants, regions))
    assert result["RBAC"]["size"] == tenants * regions  # a role per combination
    assert result["NGAC"]["size"] == tenants + regions + 2  # an association per value, two for the window
    assert result["AuthorizationPolicy"]["size"] == tenants * regions + 1  # a policy per namespace, one CUSTOM
    assert result["ABAC"]["size"] == 1


def test_one_mesh_wide_authorization_policy_cannot_say_same_namespace():
    """There is no 'source namespace equals destination namespace' in AuthorizationPolicy: a mesh-wide
    policy can only list namespaces, so it lets tenants call each other."""
    mesh_wide = load({"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
                      "metadata": {"name": "any-tenant", "namespace": "istio-system"},
                      "spec": {"rules": [{"from": [{"source": {"namespaces": [tenancy.Mesh.namespace(*c) for c in MESH.cells]}}]}]}})
    cross = tenancy.Case(("acme", "eu"), ("globex", "us"), "GET", 12)
    assert tenancy.authorization_policy_decides(mesh_wide, cross) and not tenancy.required(cross)


def test_mesh_size_is_checked():
    with pytest.raises(ValueError, match="tenants must be 1..8 and regions 1..5, got 9 and 1"):
        tenancy.Mesh.of(9, 1)
