"""Which route match is tried first: the Gateway API's precedence, or Envoy Gateway's.

Envoy tries a virtual host's routes in order and takes the first that matches, so a translator
must put them in precedence order. The Gateway API (v1.6.1 apis/v1/httproute_types.go,
HTTPRouteRule.Matches) orders HTTPRoute matches by, in turn: an Exact path; the longest PathPrefix;
a method; the most header matches; the most query parameter matches; then the oldest route
(metadata.creationTimestamp), then ``{namespace}/{name}`` alphabetically; within a route the first
rule, then the first match. RegularExpression paths are left to the implementation: as Envoy
Gateway v1.9.0 does, they come after Exact and before PathPrefix, longer patterns first. GRPCRoute
matches (grpcroute_types.go, GRPCRouteRule.Matches) are ordered by the characters of the service,
then of the method, then the number of header matches, then the same route order. When an HTTPRoute
and a GRPCRoute on one listener share a hostname the spec accepts only one of them, the older
(grpcroute_types.go, v1.6.1); neither meshlab nor Envoy Gateway v1.9.0 implements that rule: both are
accepted and meshlab tries HTTPRoute matches before GRPCRoute ones.

Envoy Gateway v1.9.0 itself (internal/gatewayapi/sort.go, XdsIRRoutes) differs in three places,
which ``ENVOY_GATEWAY`` reproduces so the two can be shown side by side: a method match counts as
one more header match (``:method``), not as its own criterion ahead of headers; on equal header
counts, more Exact header matches win (likewise query parameters), before route age; and among
routes of the same age, namespace is compared before name (``a/z`` before ``a-b/c``), HTTPRoutes
before GRPCRoutes, with a gRPC match written as the path and headers Envoy sees.

    SPEC, ENVOY_GATEWAY   the two orders
    MatchFacts            what a route match's place depends on
    sort_key              MatchFacts -> a key; sorting ascending puts the first-tried match first
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

SPEC = "spec"
ENVOY_GATEWAY = "envoy-gateway"
PRECEDENCES = (SPEC, ENVOY_GATEWAY)

_ZERO_TIME = datetime.datetime.min.replace(tzinfo=datetime.timezone.utc)
#: Path match types in Envoy Gateway's order (sort.go: Exact > RegularExpression > PathPrefix).
_PATH_RANK = {"Exact": 0, "RegularExpression": 1, "PathPrefix": 2}


@dataclass(frozen=True)
class MatchFacts:
    """One route match, as precedence sees it. For a gRPC match the Envoy-side path and headers
    (``path_type``, ``path_value``, ``headers`` incl. a ``:path`` suffix) are given too, as Envoy
    Gateway compares those."""

    kind: str  # HTTPRoute or GRPCRoute
    namespace: str
    name: str
    created: datetime.datetime | None
    rule: int
    match: int
    path_type: str = "PathPrefix"
    path_value: str = "/"
    method: bool = False
    headers: int = 0
    exact_headers: int = 0
    query_params: int = 0
    exact_query_params: int = 0
    grpc_service: str = ""
    grpc_method: str = ""
    #: a gRPC method-only match, which Envoy Gateway writes as a ``:path`` suffix header match
    path_suffix: bool = False


def _path_characters(facts: MatchFacts) -> int:
    """Characters of the path match; the prefix ``/`` counts 0, as it matches all (sort.go pathMatchCount)."""
    return 0 if facts.path_type == "PathPrefix" and facts.path_value == "/" else len(facts.path_value)


def sort_key(facts: MatchFacts, precedence: str = SPEC) -> tuple:
    """A key under which ascending order is the order Envoy should try the matches."""
    created = facts.created or _ZERO_TIME
    if precedence == ENVOY_GATEWAY:
        return (_PATH_RANK[facts.path_type], -_path_characters(facts), -(facts.headers + facts.method + facts.path_suffix),
                -(facts.exact_headers + facts.method), -facts.query_params, -facts.exact_query_params,
                facts.kind != "HTTPRoute", created, facts.namespace, facts.name, facts.rule, facts.match)
    if precedence != SPEC:
        raise ValueError(f"precedence {precedence!r} is not one of {', '.join(PRECEDENCES)}")
    route = (created, f"{facts.namespace}/{facts.name}", facts.rule, facts.match)
    if facts.kind == "GRPCRoute":
        return (1, -len(facts.grpc_service), -len(facts.grpc_method), -facts.headers, 0, 0, *route)
    return (0, _PATH_RANK[facts.path_type], -_path_characters(facts), not facts.method, -facts.headers, -facts.query_params, *route)
