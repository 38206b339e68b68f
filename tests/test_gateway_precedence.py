"""Which rule answers when several match: the Gateway API's precedence (v1.6.1 apis/v1/
httproute_types.go, HTTPRouteRule.Matches), Envoy Gateway v1.9.0's own order where it departs
(internal/gatewayapi/sort.go), and hostname intersection (HTTPRouteSpec.Hostnames)."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_gateway_translate import HEAD, egctl_output, egctl_routes

from meshlab.gateway import Request, load, match, translate
from meshlab.gateway.hostnames import intersect
from meshlab.gateway.precedence import ENVOY_GATEWAY, SPEC

LISTENER = "  - {name: http, protocol: HTTP, port: 80, allowedRoutes: {namespaces: {from: All}}}\n"


def http_route(name: str, rules: str, namespace: str = "default", created: str | None = None) -> str:
    stamp = f", creationTimestamp: '{created}'" if created else ""
    return (f"---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {{name: {name}, namespace: {namespace}{stamp}}}\n"
            f"spec:\n  parentRefs: [{{name: eg, namespace: default}}]\n  hostnames: [app.example.com]\n  rules:\n{rules}")


def rule(backend: str, match_: str = "{path: {type: PathPrefix, value: /api}}") -> str:
    return f"  - matches: [{match_}]\n    backendRefs: [{{name: {backend}, port: 80}}]\n"


def answer(text: str, request: Request, order: str = SPEC) -> str:
    decision = match(translate(load(text), precedence=order, add_missing_resources=True), request, 80)
    return "/".join(b.name for b in decision.backends) or str(decision)


POST_API = Request("app.example.com", "/api/items?debug=1", "POST", {"x-a": "1", "x-b": "1"})

CASES = [
    ("an exact path is tried before any prefix",
     http_route("r", rule("prefix", "{path: {type: PathPrefix, value: /api/items}}") + rule("exact", "{path: {type: Exact, value: /api/items}}")),
     "exact", "exact"),
    ("the longest prefix is tried first",
     http_route("r", rule("short") + rule("long", "{path: {type: PathPrefix, value: /api/items}}")), "long", "long"),
    ("a regular expression path comes after exact and before prefix, as Envoy Gateway orders it",
     http_route("r", rule("prefix", "{path: {type: PathPrefix, value: /api/items}}") + rule("regex", "{path: {type: RegularExpression, value: '/api/.*'}}")),
     "regex", "regex"),
    ("a method match is tried before more header matches in the spec; Envoy Gateway counts the method as one header",
     http_route("r", rule("headers", "{path: {value: /api}, headers: [{name: x-a, value: '1'}, {name: x-b, value: '1'}]}")
                + rule("method", "{path: {value: /api}, method: POST}")), "method", "headers"),
    ("more header matches are tried first",
     http_route("r", rule("one", "{path: {value: /api}, headers: [{name: x-a, value: '1'}]}")
                + rule("two", "{path: {value: /api}, headers: [{name: x-a, value: '1'}, {name: x-b, value: '1'}]}")), "two", "two"),
    ("more query parameter matches are tried first",
     http_route("r", rule("none") + rule("query", "{path: {value: /api}, queryParams: [{name: debug, value: '1'}]}")), "query", "query"),
    ("on a tie the spec prefers the older route; Envoy Gateway first prefers exact header matches",
     http_route("old", rule("regex", "{path: {value: /api}, headers: [{name: x-a, type: RegularExpression, value: '.*'}]}"), created="2024-01-01T00:00:00Z")
     + http_route("young", rule("exact", "{path: {value: /api}, headers: [{name: x-a, value: '1'}]}"), created="2025-01-01T00:00:00Z"),
     "regex", "exact"),
    ("among routes of one age the spec compares '{namespace}/{name}'; Envoy Gateway the namespace first",
     http_route("z", rule("a-slash-z"), namespace="a") + http_route("c", rule("a-b-slash-c"), namespace="a-b"), "a-b-slash-c", "a-slash-z"),
    ("within a route the first rule wins a tie",
     http_route("r", rule("first") + rule("second")), "first", "first"),
]


@pytest.mark.parametrize(("text", "spec", "envoy_gateway"), [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_the_rule_tried_first_follows_the_spec_or_envoy_gateway(text, spec, envoy_gateway):
    assert answer(HEAD + LISTENER + text, POST_API, SPEC) == spec
    assert answer(HEAD + LISTENER + text, POST_API, ENVOY_GATEWAY) == envoy_gateway


PUZZLE = (Path(__file__).parents[1] / "src" / "meshlab" / "data" / "gateway" / "precedence.yaml").read_text()


@pytest.mark.parametrize(("request_", "backend"), [
    (Request("app.example.com", "/login"), "auth"),
    (Request("app.example.com", "/login/x"), "frontend"),
    (Request("app.example.com", "/api/v2/items", "POST", {"x-beta": "1"}), "api-v2"),
    (Request("app.example.com", "/api/items", "POST", {"x-beta": "1"}), "api-writer"),
    (Request("app.example.com", "/api/items?debug=1", headers={"x-beta": "1"}), "api-beta"),
    (Request("app.example.com", "/api/items?debug=1"), "api-debug"),
    (Request("app.example.com", "/api"), "api"),
], ids=["an exact path beats the catch-all", "exact is exact", "the longest prefix beats method and headers",
        "a method beats a header", "a header beats a query parameter", "a query parameter beats nothing", "the plain prefix is last"])
def test_the_chapters_precedence_puzzle_resolves_in_the_specs_order(request_, backend):
    assert answer(PUZZLE, request_) == backend


@pytest.mark.parametrize(("listener", "route", "served"), [
    (None, (), ["*"]),
    ("a.example.com", (), ["a.example.com"]),
    (None, ("b.example.com", "a.example.com"), ["a.example.com", "b.example.com"]),
    ("*.example.com", ("a.example.com", "a.b.example.com", "example.com", "a.example.org"), ["a.b.example.com", "a.example.com"]),
    ("a.example.com", ("*.example.com",), ["a.example.com"]),
    ("*.example.com", ("*.example.com",), ["*.example.com"]),
    ("*.example.com", ("*.com",), ["*.example.com"]),
    ("*.com", ("*.example.com",), ["*.example.com"]),
    ("a.example.com", ("b.example.com",), []),
], ids=["neither names a host: all hosts", "the route names none: the listener's", "the listener names none: the route's",
        "a wildcard listener admits names under it, at any depth, not its bare suffix",
        "a wildcard route hostname narrows to the listener's", "equal wildcards intersect in themselves",
        "of two wildcards the narrower is the intersection (Envoy Gateway, the spec is silent)", "and the other way round",
        "different names do not intersect"])
def test_hostname_intersection_follows_the_spec(listener, route, served):
    assert intersect(listener, route) == served


@pytest.mark.upstream
def test_envoy_gateway_order_equals_egctls_on_the_cases_where_it_departs_from_the_spec():
    """egctl keeps only a route's name and namespace (internal/gatewayapi/resource/load.go), so the
    case that needs creation timestamps is left out here."""
    text = HEAD + LISTENER + "".join(case[1] for case in CASES if "older" not in case[0]).replace(
        "name: r, namespace: default", "name: r{}, namespace: default")
    text = text.replace("{}", "{n}")
    for n in range(text.count("{n}")):
        text = text.replace("{n}", str(n), 1)
    mine = translate(load(text), precedence=ENVOY_GATEWAY, add_missing_resources=True)
    ours = {(c["name"], h["domains"][0]): [r["name"] for r in h["routes"]] for c in mine.route_configs for h in c["virtualHosts"]}
    theirs = {key: [r["name"] for r in routes] for key, routes in egctl_routes(egctl_output(text)).items()}
    assert ours == theirs
    spec = translate(load(text), precedence=SPEC, add_missing_resources=True)
    assert [r["name"] for c in spec.route_configs for h in c["virtualHosts"] for r in h["routes"]] != ours[("default/eg/http", "app.example.com")]
