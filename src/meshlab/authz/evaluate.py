"""The access decision of the AuthorizationPolicies that apply to one workload.

Istio evaluates CUSTOM, then DENY, then ALLOW (istio/api v1.30.3, authorization_policy.proto):

1. if a CUSTOM policy matches, its extension provider (an ext_authz service named in
   ``meshConfig.extensionProviders``) decides, and a "deny" ends there;
2. if a DENY policy matches, deny;
3. if no ALLOW policy applies to the workload, allow;
4. if an ALLOW policy matches, allow;
5. deny.

AUDIT policies only mark a request for audit logging. Two details come from istiod's builder
(pilot/pkg/security/authz/builder/builder.go and model/model.go, Istio 1.30.3):

- On TCP, HTTP-only fields cannot be evaluated. An ALLOW rule that uses any is dropped (it can
  never allow); in DENY, AUDIT and CUSTOM rules the field is left out, so the rule matches *more*
  ("for a DENY rule, missing attributes are treated as matches").
- A CUSTOM provider that mesh config does not declare, or more than one provider on a workload
  (without PILOT_ENABLE_MULTIPLE_CUSTOM_AUTHZ_PROVIDERS, default false), turns the CUSTOM rules into
  deny rules. On TCP only a gRPC provider is asked; CUSTOM policies naming an HTTP one are skipped.

    ExtensionProvider  an ext_authz service from meshConfig.extensionProviders: its check and its API
    Decision     allowed, which layer decided, the policy and rule, and the AUDIT policies that matched
    rule_matches one rule against one request, for the policy's action
    evaluate     the decision for a request to a workload
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from meshlab.authz.match import attribute_matches, is_http_only
from meshlab.authz.policy import ROOT_NAMESPACE, AuthorizationPolicy, Conjunction, FieldMatch, Rule
from meshlab.authz.request import Request, Workload

APIS = ("grpc", "http")


@dataclass(frozen=True)
class ExtensionProvider:
    """A ``meshConfig.extensionProviders`` entry for ext_authz: ``check`` is the service's answer for a
    request (True: allow). ``api`` is ``grpc`` (envoyExtAuthzGrpc) or ``http`` (envoyExtAuthzHttp); Envoy's
    TCP ext_authz filter speaks gRPC only, so on TCP istiod ignores CUSTOM policies naming an HTTP provider
    ("ignored CUSTOM action with HTTP provider on TCP filter chain", builder.go)."""

    check: Callable[[Request], bool]
    api: str = "grpc"

    def __post_init__(self) -> None:
        if self.api not in APIS:
            raise ValueError(f"ext_authz api {self.api!r} is not one of {', '.join(APIS)}")


#: What ``evaluate`` accepts for a provider: an ExtensionProvider, or a plain check (a gRPC provider).
Provider = ExtensionProvider | Callable[[Request], bool]


@dataclass(frozen=True)
class Decision:
    allowed: bool
    layer: str  # CUSTOM, DENY, ALLOW, or "default" when no policy decided
    policy: str | None = None  # namespace/name of the deciding policy
    rule: int | None = None
    reason: str = ""
    audited: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return self.allowed

    def __str__(self) -> str:
        return f"{'ALLOW' if self.allowed else 'DENY'} ({self.reason})"


def _field_holds(match: FieldMatch, request: Request, namespace: str) -> bool:
    positive = not match.values or any(attribute_matches(match.attribute, v, request, namespace) for v in match.values)
    return positive and not any(attribute_matches(match.attribute, v, request, namespace) for v in match.not_values)


def _conjunction_holds(conjunction: Conjunction, request: Request, namespace: str) -> bool:
    return all(_field_holds(match, request, namespace) for match in conjunction
               if not (request.protocol == "tcp" and is_http_only(match.attribute)))


def rule_matches(rule: Rule, request: Request, action: str, namespace: str) -> bool:
    """One rule against one request. On TCP an ALLOW rule with an HTTP-only field never matches;
    other actions skip such fields (so the rule matches more)."""
    if request.protocol == "tcp" and action == "ALLOW" and any(is_http_only(m.attribute) for m in rule.field_matches()):
        return False
    sources_hold = rule.sources is None or any(_conjunction_holds(s, request, namespace) for s in rule.sources)
    operations_hold = rule.operations is None or any(_conjunction_holds(o, request, namespace) for o in rule.operations)
    return sources_hold and operations_hold and _conjunction_holds(rule.conditions, request, namespace)


def _first_match(policies: Iterable[AuthorizationPolicy], request: Request) -> tuple[AuthorizationPolicy, int] | None:
    for policy in policies:
        for index, rule in enumerate(policy.rules):
            if rule_matches(rule, request, policy.action, policy.namespace):
                return policy, index
    return None


def evaluate(policies: Iterable[AuthorizationPolicy], request: Request, workload: Workload,
             providers: Mapping[str, Provider] | None = None, root_namespace: str = ROOT_NAMESPACE) -> Decision:
    """The decision for ``request`` to ``workload`` under ``policies`` (those that do not apply to
    the workload are ignored); ``providers`` are mesh config's extension providers by name."""
    providers = providers or {}
    applying = sorted((p for p in policies if p.applies_to(workload, root_namespace)), key=lambda p: p.ref)
    by_action = {action: [p for p in applying if p.action == action] for action in ("CUSTOM", "DENY", "ALLOW", "AUDIT")}
    audit_hits: list[str] = []
    for policy in by_action["AUDIT"]:
        if _first_match([policy], request):
            audit_hits.append(policy.ref)
    audited = tuple(audit_hits)

    custom = _first_match(by_action["CUSTOM"], request)
    if custom:
        policy, index = custom
        names = sorted({p.provider for p in by_action["CUSTOM"]})  # load() refuses CUSTOM without one
        if len(names) > 1:
            return Decision(False, "CUSTOM", policy.ref, index, f"CUSTOM policies name {len(names)} providers {names}; one per workload "
                            "unless PILOT_ENABLE_MULTIPLE_CUSTOM_AUTHZ_PROVIDERS, so istiod builds deny rules", audited)
        if policy.provider not in providers:
            return Decision(False, "CUSTOM", policy.ref, index, f"provider {policy.provider!r} is not in meshConfig.extensionProviders, "
                            "so istiod builds deny rules", audited)
        provider = providers[policy.provider]
        provider = provider if isinstance(provider, ExtensionProvider) else ExtensionProvider(provider)
        if not (request.protocol == "tcp" and provider.api == "http") and not provider.check(request):
            return Decision(False, "CUSTOM", policy.ref, index, f"{policy.ref} rule {index} sent it to {policy.provider}, which denied",
                            audited)
    deny = _first_match(by_action["DENY"], request)
    if deny:
        policy, index = deny
        return Decision(False, "DENY", policy.ref, index, f"DENY policy {policy.ref} rule {index} matched", audited)
    if not by_action["ALLOW"]:
        return Decision(True, "default", reason="no ALLOW policy applies to the workload", audited=audited)
    allow = _first_match(by_action["ALLOW"], request)
    if allow:
        policy, index = allow
        return Decision(True, "ALLOW", policy.ref, index, f"ALLOW policy {policy.ref} rule {index} matched", audited)
    return Decision(False, "default", reason="ALLOW policies apply but none matched", audited=audited)
