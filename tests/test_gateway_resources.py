"""meshlab.gateway.load: Gateway API YAML into typed resources, with the CRDs' own defaults and
limits, and errors that name the resource, the field and what is accepted.

Limits, defaults and messages are those of the Gateway API v1.6.1 standard CRDs
(config/crd/standard/*.yaml in sigs.k8s.io/gateway-api); tests/test_upstream_gateway_schema.py checks
them against the CRDs themselves.
"""

from __future__ import annotations

import datetime

import pytest

from meshlab.gateway import GatewayAPIError, load

GATEWAY_CLASS = """apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: eg}
spec: {controllerName: example.com/gateway}
"""


def route(spec: str, name: str = "shop", kind: str = "HTTPRoute", version: str = "v1") -> str:
    """An HTTPRoute (or another kind) in namespace default around ``spec`` (YAML indented by two)."""
    return f"apiVersion: gateway.networking.k8s.io/{version}\nkind: {kind}\nmetadata: {{name: {name}, namespace: default}}\nspec:\n{spec}"


def gateway(listeners: str) -> str:
    return route(f"  gatewayClassName: eg\n  listeners:\n{listeners}", name="eg", kind="Gateway")


BACKEND = "    backendRefs: [{name: web, port: 80}]\n"

REFUSED = [
    ("an unknown field is named with the fields accepted there",
     route("  rules:\n  - matchs: []\n"), "spec.rules[0].matchs", "unknown field; accepted fields here: name, matches, filters, backendRefs, timeouts"),
    ("a string where a number belongs says a number was expected",
     route("  rules:\n  - backendRefs: [{name: web, port: '80'}]\n"), "spec.rules[0].backendRefs[0].port", "must be an integer, got a string '80'"),
    ("a YAML boolean where a string belongs says to quote it",
     route("  rules:\n  - matches: [{headers: [{name: x-canary, value: yes}]}]\n" + BACKEND), "headers[0].value", "quote it"),
    ("a missing required field is named",
     route("  rules:\n  - backendRefs: [{port: 80}]\n"), "spec.rules[0].backendRefs[0].name", "is required"),
    ("a value off an enum lists the accepted values",
     route("  rules:\n  - matches: [{path: {type: Prefix, value: /api}}]\n" + BACKEND), "spec.rules[0].matches[0].path.type",
     "'Prefix' is not accepted; one of: Exact, PathPrefix, RegularExpression"),
    ("a weight above the CRD's maximum is refused",
     route("  rules:\n  - backendRefs: [{name: web, port: 80, weight: 1000001}]\n"), "backendRefs[0].weight", "must be at most 1000000"),
    ("a negative weight is refused",
     route("  rules:\n  - backendRefs: [{name: web, port: 80, weight: -1}]\n"), "backendRefs[0].weight", "must be at least 0"),
    ("seventeen hostnames are one more than the CRD accepts",
     route("  hostnames: [" + ", ".join(f"h{i}.example.com" for i in range(17)) + "]\n"), "spec.hostnames", "accepts at most 16 items, got 17"),
    ("an upper-case hostname is not a hostname",
     route("  hostnames: [Shop.example.com]\n"), "spec.hostnames[0]", "is not a lower-case hostname"),
    ("two header matches on one name are a duplicate key",
     route("  rules:\n  - matches: [{headers: [{name: x, value: '1'}, {name: x, value: '2'}]}]\n" + BACKEND),
     "headers[1]", "duplicate name 'x'"),
    ("a path that does not start with a slash breaks the CRD's CEL rule",
     route("  rules:\n  - matches: [{path: {type: PathPrefix, value: api}}]\n" + BACKEND), "matches[0].path.value",
     "value must be an absolute path and start with '/' when type one of ['Exact', 'PathPrefix']"),
    ("a path with a double slash breaks the CRD's CEL rule",
     route("  rules:\n  - matches: [{path: {type: Exact, value: /a//b}}]\n" + BACKEND), "matches[0].path.value", "must not contain '//'"),
    ("a filter type without its configuration breaks the CRD's CEL rule",
     route("  rules:\n  - filters: [{type: RequestRedirect}]\n"), "spec.rules[0].filters[0]",
     "filter.requestRedirect must be specified for RequestRedirect filter.type"),
    ("a redirect beside backendRefs breaks the CRD's CEL rule",
     route("  rules:\n  - filters: [{type: RequestRedirect, requestRedirect: {scheme: https}}]\n" + BACKEND), "spec.rules[0]",
     "RequestRedirect filter must not be used together with backendRefs"),
    ("a prefix rewrite needs exactly one PathPrefix match",
     route("  rules:\n  - matches: [{path: {type: Exact, value: /a}}]\n    filters: [{type: URLRewrite, urlRewrite: "
           "{path: {type: ReplacePrefixMatch, replacePrefixMatch: /b}}}]\n" + BACKEND), "spec.rules[0]",
     "When using URLRewrite filter with path.replacePrefixMatch, exactly one PathPrefix match must be specified"),
    ("a Service backendRef without a port breaks the CRD's CEL rule",
     route("  rules:\n  - backendRefs: [{name: web}]\n"), "backendRefs[0].port", "Must have port for Service reference"),
    ("two parentRefs to one Gateway need sectionNames",
     route("  parentRefs: [{name: eg}, {name: eg, sectionName: http}]\n"), "spec.parentRefs",
     "sectionName must be specified when parentRefs includes 2 or more references to the same parent"),
    ("a gRPC method match needs a service or a method",
     route("  rules:\n  - matches: [{method: {type: Exact}}]\n", kind="GRPCRoute"), "matches[0].method",
     "One or both of 'service' or 'method' must be specified"),
    ("two listeners with one name are a duplicate key",
     gateway("  - {name: http, protocol: HTTP, port: 80}\n  - {name: http, protocol: HTTP, port: 8080}\n"), "spec.listeners[1]",
     "duplicate name 'http'"),
    ("tls on an HTTP listener breaks the CRD's CEL rule",
     gateway("  - {name: http, protocol: HTTP, port: 80, tls: {certificateRefs: [{name: cert}]}}\n"), "spec.listeners[0]",
     "tls must not be specified for protocols ['HTTP', 'TCP', 'UDP']"),
    ("a port out of range is refused",
     gateway("  - {name: http, protocol: HTTP, port: 70000}\n"), "spec.listeners[0].port", "must be at most 65535"),
    ("a Gateway without listeners is refused",
     gateway("    []\n"), "spec.listeners", "needs at least 1 item(s), got 0"),
    ("a misspelt kind of the Gateway API's group is refused with the kinds read",
     route("  rules: []\n", kind="HTTPRoutes"), "", "apiVersion gateway.networking.k8s.io/v1 kind HTTPRoutes is not read here; accepted: GatewayClass"),
    ("a version the standard channel does not serve is refused",
     route("  rules: []\n", kind="GRPCRoute", version="v1alpha2"), "", "kind GRPCRoute is not read here"),
]


@pytest.mark.parametrize(("text", "path", "words"), [case[1:] for case in REFUSED], ids=[case[0] for case in REFUSED])
def test_load_refuses_input_naming_resource_field_and_what_is_accepted(text, path, words):
    with pytest.raises(GatewayAPIError) as raised:
        load(text)
    error = raised.value
    kind = text.split("kind: ")[1].split()[0]
    assert error.resource == f"{kind} default/{'eg' if kind == 'Gateway' else 'shop'}", str(error)
    assert path in error.path, str(error)
    assert words in str(error)


def test_invalid_yaml_names_line_and_column():
    with pytest.raises(GatewayAPIError, match=r"YAML: is not valid YAML at line 2, column 1"):
        load("a: [b\n")


def test_a_document_that_is_not_a_mapping_is_refused_by_its_number():
    with pytest.raises(GatewayAPIError, match=r"document 2: must be a Kubernetes object"):
        load(GATEWAY_CLASS + "---\n- just a list\n")


def test_an_object_given_twice_is_refused_and_nothing_is_returned():
    with pytest.raises(GatewayAPIError, match="appears twice in the input"):
        load(GATEWAY_CLASS + "---\n" + GATEWAY_CLASS)


def test_a_bad_document_after_good_ones_fails_the_whole_load():
    good = route("  rules:\n  - backendRefs: [{name: web, port: 80}]\n")
    with pytest.raises(GatewayAPIError, match="HTTPRoute default/second"):
        load(good + "---\n" + route("  rules:\n  - backendRefs: [{name: web}]\n", name="second"))


def test_the_crds_defaults_fill_what_the_yaml_leaves_out():
    resources = load(route("  parentRefs: [{name: eg}]\n  rules:\n  - matches: [{headers: [{name: x, value: '1'}]}]\n" + BACKEND
                           + "  - filters: [{type: RequestRedirect, requestRedirect: {scheme: https}}]\n"))
    (shop,) = resources.http_routes
    (parent,) = shop.spec.parent_refs
    assert (parent.group, parent.kind) == ("gateway.networking.k8s.io", "Gateway")
    first, second = shop.spec.rules
    assert (first.matches[0].path.type, first.matches[0].path.value, first.matches[0].headers[0].type) == ("PathPrefix", "/", "Exact")
    (backend,) = first.backend_refs
    assert (backend.group, backend.kind, backend.weight) == ("", "Service", 1)
    assert second.filters[0].request_redirect.status_code == 302
    assert [(m.path.type, m.path.value) for m in second.matches] == [("PathPrefix", "/")]


def test_a_route_without_rules_gets_the_crds_default_rule():
    (shop,) = load(route("  parentRefs: [{name: eg}]\n")).http_routes
    assert [(m.path.type, m.path.value) for rule in shop.spec.rules for m in rule.matches] == [("PathPrefix", "/")]


def test_a_listener_admits_its_own_namespace_unless_told_otherwise():
    resources = load(GATEWAY_CLASS + "---\n" + gateway("  - {name: http, protocol: HTTP, port: 80}\n"))
    (listener,) = resources.gateways[0].spec.listeners
    assert listener.allowed_routes.namespaces.from_ == "Same"


@pytest.mark.parametrize("stamp", ["2024-05-01T12:00:00Z", "'2024-05-01T12:00:00Z'"], ids=["as YAML reads a timestamp", "as a quoted string"])
def test_creation_timestamps_are_read_as_utc_times(stamp):
    text = f"apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {{name: a, creationTimestamp: {stamp}}}\nspec: {{}}\n"
    (found,) = load(text).http_routes
    assert found.metadata.creation_timestamp == datetime.datetime(2024, 5, 1, 12, tzinfo=datetime.timezone.utc)
    assert found.namespace == "default"


def test_fields_meshlab_does_not_model_are_accepted_and_noted():
    resources = load(route("  rules:\n  - timeouts: {request: 10s}\n" + BACKEND))
    assert resources.notes == ("HTTPRoute default/shop: spec.rules[0].timeouts is not modelled by meshlab (request timeouts are not modelled)",)


def test_kinds_meshlab_does_not_model_are_skipped_with_a_note():
    text = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec: {}\n---\n" + route("  rules: []\n", kind="TCPRoute", name="tcp")
    resources = load(text)
    assert resources.http_routes == () and len(resources.notes) == 2
    assert "kind Deployment is not modelled by meshlab and was skipped" in resources.notes[0]


def test_every_namespace_carries_its_name_label_as_in_a_cluster():
    resources = load("apiVersion: v1\nkind: Namespace\nmetadata: {name: store, labels: {team: a}}\n")
    assert resources.namespace_labels("store") == {"team": "a", "kubernetes.io/metadata.name": "store"}
    assert resources.namespace_labels("absent") == {"kubernetes.io/metadata.name": "absent"}
