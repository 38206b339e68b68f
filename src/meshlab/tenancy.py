"""One requirement in four access-control models: RBAC, NGAC, Istio's AuthorizationPolicy and ABAC.

The requirement, for a mesh that hosts several tenants in several regions:

    a caller may GET a service when both belong to the same tenant AND the same region;
    a POST (a write) additionally only between 08:00 and 18:00 (the change window).

The first half is a *combination* of two attributes that must agree between caller and callee; the
second depends on the *environment* (the clock). Each model says it differently, and the size of
what it needs is counted from the policies built here, not asserted:

- RBAC needs a role per (tenant, region) and cannot state the change window at all;
- NGAC needs an attribute and an association per value, a policy class per dimension, and a
  context attribute ("office hours") for the window;
- AuthorizationPolicy compares request attributes with constants only, never the caller's namespace
  with the callee's, so it needs one policy per namespace; the clock is not an Istio attribute, so
  the window needs a CUSTOM policy and an ext_authz service that reads its own clock;
- ABAC states both halves in one rule.

    Mesh          tenants x regions, one namespace each with a caller ("web") and a service ("orders")
    Case          one (caller, service, method, hour) request
    required      the requirement in plain Python: what every model is checked against
    as_rbac_and_ngac, as_authorization_policies, as_abac   the requirement in each model
    encodings     all four at once
    authorization_policy_decides   one case under AuthorizationPolicies, the clock read by the ext_authz service
    sizes         what each encoding needs, counted from the policies built
    compare       every model's decision on every case, and the size of each encoding
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from meshlab import abac
from meshlab.authz import AuthorizationPolicy, Request, Workload, evaluate
from meshlab.authz import load as load_policies
from meshlab.ngac import ContextAttribute, Policy, RbacPolicy, equivalent_pair

TENANTS = ("acme", "globex", "initech", "umbrella", "hooli", "stark", "wayne", "wonka")
REGIONS = ("eu", "us", "apac", "latam", "africa")
METHODS = ("GET", "POST")
#: Hours the cases are asked at: before, inside and after the change window.
HOURS = (3, 12, 21)
WINDOW = (8, 18)
TRUST_DOMAIN = "cluster.local"
PROVIDER = "change-window"


def in_window(hour: int) -> bool:
    return WINDOW[0] <= hour < WINDOW[1]


@dataclass(frozen=True)
class Mesh:
    tenants: tuple[str, ...]
    regions: tuple[str, ...]

    @classmethod
    def of(cls, tenants: int, regions: int) -> Mesh:
        if not 1 <= tenants <= len(TENANTS) or not 1 <= regions <= len(REGIONS):
            raise ValueError(f"tenants must be 1..{len(TENANTS)} and regions 1..{len(REGIONS)}, got {tenants} and {regions}")
        return cls(TENANTS[:tenants], REGIONS[:regions])

    @property
    def cells(self) -> list[tuple[str, str]]:
        return list(itertools.product(self.tenants, self.regions))

    @staticmethod
    def namespace(tenant: str, region: str) -> str:
        return f"{tenant}-{region}"

    @staticmethod
    def caller(tenant: str, region: str) -> str:
        """The caller's Istio principal (its SPIFFE ID without ``spiffe://``)."""
        return f"{TRUST_DOMAIN}/ns/{tenant}-{region}/sa/web"

    @staticmethod
    def service(tenant: str, region: str) -> str:
        return f"orders.{tenant}-{region}"


@dataclass(frozen=True)
class Case:
    caller: tuple[str, str]  # (tenant, region)
    service: tuple[str, str]
    method: str
    hour: int

    def __str__(self) -> str:
        return f"web in {Mesh.namespace(*self.caller)} {self.method} orders in {Mesh.namespace(*self.service)} at {self.hour:02}:00"


def cases(mesh: Mesh) -> list[Case]:
    return [Case(c, s, m, h) for c, s, m, h in itertools.product(mesh.cells, mesh.cells, METHODS, HOURS)]


def required(case: Case) -> bool:
    """The requirement itself."""
    same_cell = case.caller == case.service
    return same_cell and (case.method == "GET" or in_window(case.hour))


def as_rbac_and_ngac(mesh: Mesh) -> tuple[RbacPolicy, Policy]:
    """RBAC: a role per (tenant, region) holding GET and POST on that cell's service; the window has no
    place. NGAC: a policy class per dimension (ngac.equivalent_pair) and one more for the change window."""
    dimensions = {"tenant": mesh.tenants, "region": mesh.regions}
    callers = {Mesh.caller(*cell): dict(zip(dimensions, cell)) for cell in mesh.cells}
    services = {Mesh.service(*cell): dict(zip(dimensions, cell)) for cell in mesh.cells}
    ngac, rbac = equivalent_pair(dimensions, callers, services, rights=METHODS)
    ngac.add("pc", "change window")
    ngac.assign(ngac.add("ua", "callers"), "change window")
    ngac.add_context_attribute(ContextAttribute("office hours", lambda context: in_window(context["hour"])), "change window")
    ngac.assign(ngac.add("oa", "services"), "change window")
    ngac.associate("callers", {"GET"}, "services")
    ngac.associate("office hours", {"POST"}, "services")
    for caller in callers:
        ngac.assign(caller, "callers")
        ngac.assign(caller, "office hours")
    for service in services:
        ngac.assign(service, "services")
    return rbac, ngac


def as_authorization_policies(mesh: Mesh) -> list[AuthorizationPolicy]:
    """An ALLOW policy per namespace (callers from that namespace only) and one mesh-wide CUSTOM
    policy that sends every POST to the ``change-window`` ext_authz provider."""
    manifests = [{"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
                  "metadata": {"name": "same-cell", "namespace": Mesh.namespace(*cell)},
                  "spec": {"action": "ALLOW", "rules": [{"from": [{"source": {"namespaces": [Mesh.namespace(*cell)]}}],
                                                         "to": [{"operation": {"methods": list(METHODS)}}]}]}}
                 for cell in mesh.cells]
    manifests.append({"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
                      "metadata": {"name": "writes-in-window", "namespace": "istio-system"},
                      "spec": {"action": "CUSTOM", "provider": {"name": PROVIDER}, "rules": [{"to": [{"operation": {"methods": ["POST"]}}]}]}})
    return load_policies(manifests)


def as_abac() -> abac.AbacPolicy:
    """One rule, whatever the number of tenants and regions."""
    s, o, e = abac.subject, abac.object_, abac.environment
    window = (e.hour >= WINDOW[0]) & (e.hour < WINDOW[1])
    return abac.AbacPolicy([abac.Rule("same tenant and region; writes in the window",
                                      (s.tenant == o.tenant) & (s.region == o.region) & ((abac.action == "GET") | ((abac.action == "POST") & window)))])


def authorization_policy_decides(policies: list[AuthorizationPolicy], case: Case) -> bool:
    # the ext_authz service reads its own clock: the hour is not a request attribute Istio can match
    providers = {PROVIDER: lambda _request: in_window(case.hour)}
    request = Request(Mesh.caller(*case.caller), method=case.method, path="/orders")
    return evaluate(policies, request, Workload(Mesh.namespace(*case.service), {"app": "orders"}), providers).allowed


def encodings(mesh: Mesh) -> tuple[RbacPolicy, Policy, list[AuthorizationPolicy], abac.AbacPolicy]:
    """The requirement in all four models: RBAC, NGAC, AuthorizationPolicy, ABAC."""
    rbac, ngac = as_rbac_and_ngac(mesh)
    return rbac, ngac, as_authorization_policies(mesh), as_abac()


def sizes(rbac: RbacPolicy, ngac: Policy, policies: list[AuthorizationPolicy], attribute_policy: abac.AbacPolicy) -> dict[str, tuple[int, str, str]]:
    """What each encoding needs, counted from the policies built: (size, unit, what else)."""
    counts = ngac.counts()
    return {
        "RBAC": (len(rbac.roles), "roles", "the change window cannot be stated: someone grants and revokes POST twice a day"),
        "NGAC": (counts["associations"], "associations",
                 f"{counts['ua'] + counts['oa']} attributes, {counts['pc']} policy classes, 1 context attribute"),
        "AuthorizationPolicy": (len(policies), "policies",
                                f"{sum(len(p.rules) for p in policies)} rules, and an ext_authz service for the clock (CUSTOM)"),
        "ABAC": (len(attribute_policy.rules), "rules", f"reads {len(attribute_policy.attributes())} attributes"),
    }


def compare(mesh: Mesh) -> dict[str, dict]:
    """Every model's decision on every case against ``required``, with what each encoding needs."""
    rbac, ngac, policies, attribute_policy = encodings(mesh)
    deciders = {
        "RBAC": lambda c: rbac.decide(Mesh.caller(*c.caller), c.method, Mesh.service(*c.service)),
        "NGAC": lambda c: ngac.decide(Mesh.caller(*c.caller), c.method, Mesh.service(*c.service), {"hour": c.hour}).allowed,
        "AuthorizationPolicy": lambda c: authorization_policy_decides(policies, c),
        "ABAC": lambda c: attribute_policy.decide(abac.AbacRequest(
            {"tenant": c.caller[0], "region": c.caller[1]}, c.method, {"tenant": c.service[0], "region": c.service[1]},
            {"hour": c.hour})).allowed,
    }
    all_cases = cases(mesh)
    result = {}
    for model, (size, unit, note) in sizes(rbac, ngac, policies, attribute_policy).items():
        wrong = [case for case in all_cases if deciders[model](case) != required(case)]
        result[model] = {"size": size, "unit": unit, "note": note, "wrong": len(wrong), "first_wrong": str(wrong[0]) if wrong else None}
    return result
