"""Checks for lab 14, "A policy RBAC cannot say compactly".

Exercise 1: the reader writes Istio AuthorizationPolicies (YAML) for the shop's ``orders`` service;
the check evaluates them with meshlab.authz on every request case and names the first case they get
wrong, with the usual mistake behind that case. Exercise 2 (open): the reader writes the records
requirement (same team, clearance at least the classification, writes only in office hours) in ABAC
or NGAC, as they like; any policy passes that decides all cases right and is smaller than the
RBAC encoding, which needs a role per (team, clearance) and still cannot state the hours.

    MISTAKES               the wrong answers the checks recognise: a row per request case, and the records' usual mistakes
    ORDERS_CASES           exercise 1's requests, what the requirement decides, and the usual mistake behind each
    check_orders_policies  exercise 1
    RECORDS_CASES          exercise 2's requests (every subject, action, record and hour)
    check_records_policy   exercise 2 (open)
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from meshlab import abac, ngac
from meshlab.authz import PolicyInvalid, Request, Workload, evaluate, load
from meshlab.check import CheckFailed, Mistake, answer_of

# -- exercise 1: the orders service ----------------------------------------------------------------
ORDERS = Workload("shop", {"app": "orders"})
FRONTEND = "cluster.local/ns/shop/sa/frontend"
CHECKOUT = "cluster.local/ns/shop/sa/checkout"
STAGING_CHECKOUT = "cluster.local/ns/staging/sa/checkout"
STAGING_FRONTEND = "cluster.local/ns/staging/sa/frontend"
ISSUER = "https://login.shop.example"


def user_token(*scopes: str) -> dict:
    """The verified JWT of an end user (RequestAuthentication has checked it already)."""
    return {"iss": ISSUER, "sub": "customer-42", "scope": list(scopes)}


@dataclass(frozen=True)
class OrdersCase:
    what: str
    request: Request
    allowed: bool
    hint: str  # the usual mistake behind getting this case wrong

    def __str__(self) -> str:
        return self.what


ORDERS_CASES = (
    OrdersCase("frontend (shop) GET /orders/17", Request(FRONTEND, method="GET", path="/orders/17"), True,
               "GET is for every workload in namespace shop, on the paths under /orders/: paths [\"/orders\"] is an exact "
               "match, \"/orders/*\" a prefix one; and a DENY that matches more than the debug paths refuses this too"),
    OrdersCase("checkout (shop) GET /orders/17", Request(CHECKOUT, method="GET", path="/orders/17"), True,
               "checkout is in namespace shop too: GET is for all of shop's workloads"),
    OrdersCase("checkout (shop) POST /orders with scope orders:write",
               Request(CHECKOUT, method="POST", path="/orders", claims=user_token("orders:read", "orders:write")), True,
               "principals are written without spiffe:// (cluster.local/ns/shop/sa/checkout), methods in capitals, the claim as "
               "request.auth.claims[scope] with values [\"orders:write\"] (a list claim matches when one element does)"),
    OrdersCase("frontend (staging) GET /orders/17", Request(STAGING_FRONTEND, method="GET", path="/orders/17"), False,
               "only namespace shop may read: a rule needs from.source.namespaces [\"shop\"]; a rule without `from` admits anyone"),
    OrdersCase("a plaintext caller GET /orders/17", Request(None, source_ip="10.0.3.7", method="GET", path="/orders/17"), False,
               "a caller without mTLS has no namespace: a rule without `from` (or with only notNamespaces) lets it in"),
    OrdersCase("frontend (shop) GET /orders/debug/heap", Request(FRONTEND, method="GET", path="/orders/debug/heap"), False,
               "\"/orders/*\" also matches /orders/debug/...: refuse the debug paths with a DENY policy (evaluated before "
               "ALLOW) or with notPaths [\"/orders/debug/*\"] in the same operation"),
    OrdersCase("checkout (shop) POST /orders with scope orders:read only",
               Request(CHECKOUT, method="POST", path="/orders", claims=user_token("orders:read")), False,
               "the scope condition must be in the same rule as the POST operation: a `when` in a rule of its own is ORed "
               "with the other rules, not ANDed"),
    OrdersCase("checkout (shop) POST /orders without a JWT", Request(CHECKOUT, method="POST", path="/orders"), False,
               "without a JWT there is no scope claim: the POST rule needs the `when` on request.auth.claims[scope]"),
    OrdersCase("frontend (shop) POST /orders with scope orders:write",
               Request(FRONTEND, method="POST", path="/orders", claims=user_token("orders:write")), False,
               "POST is for checkout only: the POST rule needs from.source.principals [\"cluster.local/ns/shop/sa/checkout\"] "
               "(namespaces [\"shop\"] would admit every shop workload)"),
    OrdersCase("checkout (staging) POST /orders with scope orders:write",
               Request(STAGING_CHECKOUT, method="POST", path="/orders", claims=user_token("orders:write")), False,
               "name the namespace in the principal: \"*/sa/checkout\" also matches staging's checkout"),
    OrdersCase("checkout (shop) DELETE /orders/17", Request(CHECKOUT, method="DELETE", path="/orders/17"), False,
               "list the methods each rule allows (GET, POST): a rule without `methods` allows DELETE too"),
    OrdersCase("checkout (shop) POST /orders/17 with scope orders:write",
               Request(CHECKOUT, method="POST", path="/orders/17", claims=user_token("orders:write")), False,
               "POST is for /orders itself: give the POST operation paths [\"/orders\"], not the GET rule's \"/orders/*\""),
)

REJECTED = Mistake("orders_policies", "a policy istiod rejects (e.g. action PERMIT, a misspelt field)", "istiod would reject this")
NOT_APPLIED = Mistake("orders_policies", "policies in another namespace, or selecting other labels",
                      "check metadata.namespace and selector.matchLabels")
ORDERS_MISTAKES = tuple(Mistake("orders_policies", f"{'denies' if case.allowed else 'allows'} {case.what}", case.hint)
                        for case in ORDERS_CASES)


def check_orders_policies(policies: Callable[[], str]) -> None:
    """Evaluate the reader's AuthorizationPolicies on every case; name the first one they get wrong."""
    text = answer_of(policies)
    if not isinstance(text, str):
        raise CheckFailed(f"{policies.__name__}() must return the policies as YAML text (documents separated by ---), "
                          f"not {type(text).__name__}")
    try:
        written = load(text)
    except PolicyInvalid as error:
        raise CheckFailed(f"{REJECTED.hint}: {error}") from None
    if not any(policy.applies_to(ORDERS) for policy in written):
        raise CheckFailed(f"none of your policies applies to the orders workload (namespace shop, label app=orders): {NOT_APPLIED.hint}")
    for case in ORDERS_CASES:
        decision = evaluate(written, case.request, ORDERS)
        if decision.allowed != case.allowed:
            raise CheckFailed(f"{case}: your policies {'allow' if decision.allowed else 'deny'} it ({decision.reason}); "
                              f"the requirement {'allows' if case.allowed else 'denies'} it. Usual mistake: {case.hint}")


# -- exercise 2 (open): the records service ---------------------------------------------------------
TEAMS = ("payments", "search", "ads", "identity")
LEVELS = ("public", "internal", "secret")  # clearance and classification, in order
ACTIONS = ("read", "write")
HOURS = (3, 12, 21)
OFFICE_HOURS = (8, 18)


@dataclass(frozen=True)
class Party:
    name: str
    team: str
    level: int  # index into LEVELS: the subject's clearance, the record's classification


#: One workload per (team, clearance) and one record per (team, classification).
SUBJECTS = tuple(Party(f"{team}-{LEVELS[level]}", team, level) for team in TEAMS for level in range(len(LEVELS)))
RECORDS = tuple(Party(f"{team}/{LEVELS[level]}-record", team, level) for team in TEAMS for level in range(len(LEVELS)))
#: What RBAC needs for the read half alone: a role per (team, clearance).
RBAC_ROLES = len(TEAMS) * len(LEVELS)


@dataclass(frozen=True)
class RecordsCase:
    subject: Party
    action: str
    record: Party
    hour: int
    allowed: bool = field(init=False)

    def __post_init__(self) -> None:
        cleared = self.subject.team == self.record.team and self.subject.level >= self.record.level
        in_hours = OFFICE_HOURS[0] <= self.hour < OFFICE_HOURS[1]
        object.__setattr__(self, "allowed", cleared and (self.action == "read" or in_hours))

    def __str__(self) -> str:
        return f"{self.subject.name} {self.action} {self.record.name} at {self.hour:02}:00"

    def abac_request(self) -> abac.AbacRequest:
        return abac.AbacRequest({"team": self.subject.team, "clearance": self.subject.level}, self.action,
                                {"team": self.record.team, "classification": self.record.level}, {"hour": self.hour})


RECORDS_CASES = tuple(RecordsCase(s, a, r, h) for s, a, r, h in itertools.product(SUBJECTS, ACTIONS, RECORDS, HOURS))


OTHER_TEAMS = Mistake("records_policy", "lets another team's subject in", "the teams must be equal: compare the subject's team with the "
                      "record's (in NGAC, a policy class of teams)")
UNDER_CLEARED = Mistake("records_policy", "lets a clearance below the classification in",
                        "a clearance below the record's classification must not pass")
AFTER_HOURS = Mistake("records_policy", "allows writes outside office hours",
                      f"writes only from {OFFICE_HOURS[0]:02}:00 to {OFFICE_HOURS[1]:02}:00: an environment.hour condition in ABAC, "
                      "a ContextAttribute in NGAC")
EQUAL_LEVELS = Mistake("records_policy", "requires clearance == classification",
                       "a higher clearance covers the lower classifications too: >= rather than == in ABAC; in NGAC assign "
                       "'secret' to 'internal' to 'public' so each level contains the ones above it")
DENIES_CLEARED = Mistake("records_policy", "denies a same-team caller with just enough clearance",
                         "a same-team caller with enough clearance may read, and write in office hours")
AS_BIG_AS_RBAC = Mistake("records_policy", "one rule or association per (team, clearance): as big as RBAC",
                         "write one element per attribute value, not per combination")
MISTAKES = (REJECTED, NOT_APPLIED, *ORDERS_MISTAKES, OTHER_TEAMS, UNDER_CLEARED, AFTER_HOURS, EQUAL_LEVELS, DENIES_CLEARED, AS_BIG_AS_RBAC)


def _records_hint(case: RecordsCase) -> str:
    """The usual mistake behind getting ``case`` wrong."""
    if case.subject.team != case.record.team:
        return OTHER_TEAMS.hint
    if case.subject.level < case.record.level:
        return UNDER_CLEARED.hint
    if not case.allowed:
        return AFTER_HOURS.hint
    if case.subject.level > case.record.level:
        return EQUAL_LEVELS.hint
    return DENIES_CLEARED.hint


def _decider(answer: Any) -> tuple[Callable[[RecordsCase], bool], int, str]:
    if isinstance(answer, abac.AbacPolicy):
        def decide_abac(case: RecordsCase) -> bool:
            decision = answer.decide(case.abac_request())
            if decision.indeterminate:
                raise CheckFailed(f"{case}: rule {decision.indeterminate[0]!r} could not be decided: {decision.missing[0]}")
            return decision.allowed
        return decide_abac, len(answer.rules), "ABAC rules"
    if isinstance(answer, ngac.Policy):
        def decide(case: RecordsCase) -> bool:
            try:
                return answer.decide(case.subject.name, case.action, case.record.name, {"hour": case.hour}).allowed
            except ngac.PolicyError as error:
                raise CheckFailed(f"{case}: {error}; every workload in lab14.SUBJECTS must be a user (u) and every record in "
                                  "lab14.RECORDS an object (o), under those names") from None
        return decide, len(answer.associations), "NGAC associations"
    raise CheckFailed(f"return an abac.AbacPolicy or an ngac.Policy, not {type(answer).__name__}")


def check_records_policy(write_policy: Callable[[], Any]) -> None:
    """Any ABAC or NGAC policy passes that decides every case right and is smaller than RBAC's encoding."""
    decide, size, unit = _decider(answer_of(write_policy))
    for case in RECORDS_CASES:
        try:
            decided = decide(case)
        except (TypeError, KeyError) as error:
            raise CheckFailed(f"{case}: your policy could not decide it: {error}") from None
        if decided != case.allowed:
            raise CheckFailed(f"{case}: your policy {'allows' if decided else 'denies'} it; the requirement "
                              f"{'allows' if case.allowed else 'denies'} it. Usual mistake: {_records_hint(case)}")
    if size >= RBAC_ROLES:
        raise CheckFailed(f"right on all {len(RECORDS_CASES)} cases, but {size} {unit} is no smaller than RBAC's {RBAC_ROLES} roles "
                          f"(one per team and clearance): {AS_BIG_AS_RBAC.hint}")
