"""Lab 14's checks pass the solution (and, in the open exercise, other right answers) and name the
usual mistakes: each wrong answer below fails on the case that mistake gets wrong."""

from __future__ import annotations

import pytest

from meshlab import abac, ngac
from meshlab.abac import action, environment, object_, subject
from meshlab.check import CheckFailed, lab14

# the lab's solution in YAML's flow style (the lab spells it in block style: both are the same manifest)
HEAD = """apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: orders, namespace: shop}
spec:
  action: ALLOW
  selector:
    matchLabels: {app: orders}
  rules:
"""
GET_RULE = """  - from: [{source: {namespaces: ["shop"]}}]
    to: [{operation: {methods: ["GET"], paths: ["/orders/*"], notPaths: ["/orders/debug/*"]}}]
"""
POST_RULE = """  - from: [{source: {principals: ["cluster.local/ns/shop/sa/checkout"]}}]
    to: [{operation: {methods: ["POST"], paths: ["/orders"]}}]
    when: [{key: "request.auth.claims[scope]", values: ["orders:write"]}]
"""
SOLUTION = HEAD + GET_RULE + POST_RULE
DEBUG_DENY = """---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: no-debug, namespace: shop}
spec:
  action: DENY
  selector:
    matchLabels: {app: orders}
  rules: [{to: [{operation: {paths: ["/orders/debug/*"]}}]}]
"""
NO_DEBUG_PATHS = ', notPaths: ["/orders/debug/*"]'
WHEN = '    when: [{key: "request.auth.claims[scope]", values: ["orders:write"]}]\n'


def answer(text):
    def orders_policies():
        return text
    return orders_policies


@pytest.mark.parametrize("text", [
    SOLUTION,
    HEAD + GET_RULE.replace(NO_DEBUG_PATHS, "") + POST_RULE + DEBUG_DENY,  # a DENY instead of notPaths
    SOLUTION.replace('principals: ["cluster.local/ns/shop/sa/checkout"]', 'serviceAccounts: ["shop/checkout"]'),
])
def test_right_policies_pass(text):
    lab14.check_orders_policies(answer(text))


@pytest.mark.parametrize(("text", "hint"), [
    (SOLUTION.replace('paths: ["/orders/*"]', 'paths: ["/orders"]'),
     r"frontend \(shop\) GET /orders/17: your policies deny it .* paths \[\"/orders\"\] is an exact match"),
    (SOLUTION.replace(NO_DEBUG_PATHS, ""),
     r"frontend \(shop\) GET /orders/debug/heap: your policies allow it .* refuse the debug paths with a DENY policy"),
    (SOLUTION.replace("cluster.local/ns/shop/sa/checkout", "spiffe://cluster.local/ns/shop/sa/checkout"),
     r"checkout \(shop\) POST /orders with scope orders:write: your policies deny it .* without spiffe://"),
    (SOLUTION.replace('cluster.local/ns/shop/sa/checkout', '*/sa/checkout'),
     r"checkout \(staging\) POST /orders .* \"\*/sa/checkout\" also matches staging's checkout"),
    (SOLUTION.replace('principals: ["cluster.local/ns/shop/sa/checkout"]', 'namespaces: ["shop"]'),
     r"frontend \(shop\) POST /orders with scope orders:write: your policies allow it .* POST is for checkout only"),
    (HEAD + GET_RULE + POST_RULE.replace(WHEN, "") + "  - " + WHEN[4:],
     r"checkout \(shop\) POST /orders with scope orders:read only: your policies allow it .* a `when` in a rule of its own is ORed"),
    (SOLUTION.replace('namespaces: ["shop"]', 'notNamespaces: ["staging"]'),
     r"a plaintext caller GET /orders/17: your policies allow it .* has no namespace"),
    (SOLUTION.replace('methods: ["GET"], ', ""), r"checkout \(shop\) DELETE /orders/17: your policies allow it"),
    (SOLUTION.replace("namespace: shop", "namespace: default"), "none of your policies applies to the orders workload"),
    (SOLUTION.replace("action: ALLOW", "action: PERMIT"), "istiod would reject this: .*action 'PERMIT' is not one of"),
    (SOLUTION.replace("notPaths", "excludePaths"), "istiod would reject this: .*unknown field 'excludePaths' in to.operation"),
])
def test_usual_orders_mistakes_are_named(text, hint):
    with pytest.raises(CheckFailed, match=hint):
        lab14.check_orders_policies(answer(text))


def test_an_unanswered_or_mistyped_answer():
    def orders_policies():
        raise NotImplementedError()
    with pytest.raises(CheckFailed, match="orders_policies is not answered yet"):
        lab14.check_orders_policies(orders_policies)
    with pytest.raises(CheckFailed, match="must return the policies as YAML text"):
        lab14.check_orders_policies(answer({"kind": "AuthorizationPolicy"}))


IN_OFFICE = (environment.hour >= 8) & (environment.hour < 18)
CLEARED = (subject.team == object_.team) & (subject.clearance >= object_.classification)


def records_ngac() -> ngac.Policy:
    """The NGAC answer: a policy class per concern, a clearance chain, office hours as a context attribute."""
    policy = ngac.Policy()
    for pc in ("teams", "clearance", "hours"):
        policy.add("pc", pc)
    for team in lab14.TEAMS:
        policy.assign(policy.add("ua", f"team {team}"), "teams")
        policy.assign(policy.add("oa", f"{team} records"), "teams")
        policy.associate(f"team {team}", {"read", "write"}, f"{team} records")
    for level in lab14.LEVELS:
        policy.assign(policy.add("ua", f"cleared {level}"), "clearance")
        policy.assign(policy.add("oa", f"{level} records"), "clearance")
        policy.associate(f"cleared {level}", {"read", "write"}, f"{level} records")
    for higher, lower in zip(lab14.LEVELS[1:], lab14.LEVELS):
        policy.assign(f"cleared {higher}", f"cleared {lower}")
    policy.assign(policy.add("ua", "staff"), "hours")
    policy.add_context_attribute(ngac.ContextAttribute("office hours", lambda c: 8 <= c["hour"] < 18), "hours")
    policy.assign(policy.add("oa", "all records"), "hours")
    policy.associate("staff", {"read"}, "all records")
    policy.associate("office hours", {"write"}, "all records")
    for who in lab14.SUBJECTS:
        policy.add("u", who.name)
        for parent in (f"team {who.team}", f"cleared {lab14.LEVELS[who.level]}", "staff", "office hours"):
            policy.assign(who.name, parent)
    for record in lab14.RECORDS:
        policy.add("o", record.name)
        for parent in (f"{record.team} records", f"{lab14.LEVELS[record.level]} records", "all records"):
            policy.assign(record.name, parent)
    return policy


@pytest.mark.parametrize("policy", [
    lambda: abac.AbacPolicy([abac.Rule("all in one", CLEARED & ((action == "read") | IN_OFFICE))]),
    lambda: abac.AbacPolicy([abac.Rule("cleared", CLEARED), abac.Rule("night", (action == "write") & ~IN_OFFICE, "deny")]),
    records_ngac,
], ids=["abac-one-rule", "abac-permit-and-deny", "ngac"])
def test_the_open_exercise_passes_several_answers(policy):
    lab14.check_records_policy(policy)


def test_the_ngac_answer_needs_nine_associations_as_the_lab_says():
    assert len(records_ngac().associations) == len(lab14.TEAMS) + len(lab14.LEVELS) + 2 == 9


def per_combination() -> abac.AbacPolicy:
    """Right on every case, but one rule per (team, clearance): RBAC's size again."""
    return abac.AbacPolicy([abac.Rule(f"{team}-{level}", (subject.team == team) & (subject.clearance == level) & (object_.team == team)
                                      & (object_.classification <= level) & ((action == "read") | IN_OFFICE))
                            for team in lab14.TEAMS for level in range(3)])


@pytest.mark.parametrize(("policy", "hint"), [
    (lambda: abac.AbacPolicy([abac.Rule("cleared", CLEARED)]),
     r"payments-public write payments/public-record at 03:00: your policy allows it; .*writes only from 08:00 to 18:00"),
    (lambda: abac.AbacPolicy([abac.Rule("equal", (subject.team == object_.team) & (subject.clearance == object_.classification)
                                        & ((action == "read") | IN_OFFICE))]),
     r"payments-internal read payments/public-record at 03:00: your policy denies it; .*>= rather than =="),
    (lambda: abac.AbacPolicy([abac.Rule("level only", (subject.clearance >= object_.classification) & ((action == "read") | IN_OFFICE))]),
     r"payments-public read search/public-record at 03:00: your policy allows it; .*the teams must be equal"),
    (lambda: abac.AbacPolicy([abac.Rule("team only", (subject.team == object_.team) & ((action == "read") | IN_OFFICE))]),
     r"payments-public read payments/internal-record .* a clearance below the record's classification must not pass"),
    (per_combination, "12 ABAC rules is no smaller than RBAC's 12 roles"),
    (lambda: abac.AbacPolicy([abac.Rule("typo", CLEARED & (environment.hours < 18))]), "rule 'typo' could not be decided: environment.hours is not among the request's environment attributes \\(hour\\)"),
    (lambda: ngac.Policy(), "payments-public read payments/public-record at 03:00: no policy element 'payments-public'"),
    (lambda: "subject.team == object.team", "return an abac.AbacPolicy or an ngac.Policy, not str"),
])
def test_usual_records_mistakes_are_named(policy, hint):
    with pytest.raises(CheckFailed, match=hint):
        lab14.check_records_policy(policy)
