"""meshlab.gateway.translate and match: statuses in the Gateway API's own types and reasons (v1.6.1
apis/v1/shared_types.go, gateway_types.go), Envoy configuration shaped and named as Envoy Gateway
v1.9.0 writes it, and where egctl (the upstream stage) is built, both checked against egctl's own
output for the same input."""

from __future__ import annotations

import subprocess
import tempfile
from fractions import Fraction
from pathlib import Path

import pytest
import yaml
from upstream_programs import program_path

from meshlab.gateway import Request, load, match, translate
from meshlab.gateway.precedence import ENVOY_GATEWAY

DATA = Path(__file__).parents[1] / "src" / "meshlab" / "data" / "gateway"
HEAD = """apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: eg}
spec: {controllerName: gateway.envoyproxy.io/gatewayclass-controller}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: eg, namespace: default}
spec:
  gatewayClassName: eg
  listeners:
"""
HTTP = "  - {name: http, protocol: HTTP, port: 80, allowedRoutes: {namespaces: {from: All}}}\n"


def doc(kind: str, name: str, spec: str, namespace: str = "default", group: str = "gateway.networking.k8s.io/v1") -> str:
    return f"---\napiVersion: {group}\nkind: {kind}\nmetadata: {{name: {name}, namespace: {namespace}}}\nspec:\n{spec}"


def service(name: str, port: int = 80, namespace: str = "default") -> str:
    return doc("Service", name, f"  ports: [{{port: {port}}}]\n", namespace, "v1")


def conditions(translation, kind, name, parent=None, listener=None, namespace="default"):
    return {c.type: (c.status, c.reason) for c in translation.status_of(kind, namespace, name, parent, listener)}


WEB = "  rules:\n  - backendRefs: [{name: web, port: 80}]\n"

ROUTE_STATUSES = [
    ("a route a listener admits is Accepted with its references resolved",
     HEAD + HTTP + doc("HTTPRoute", "r", "  parentRefs: [{name: eg}]\n" + WEB), "default/eg",
     {"Accepted": ("True", "Accepted"), "ResolvedRefs": ("True", "ResolvedRefs")}),
    ("a route from another namespace is not allowed by a listener admitting its own namespace only",
     HEAD + "  - {name: http, protocol: HTTP, port: 80}\n" + doc("HTTPRoute", "r", "  parentRefs: [{name: eg, namespace: default}]\n" + WEB, "team"),
     "default/eg", {"Accepted": ("False", "NotAllowedByListeners")}),
    ("a sectionName naming no listener matches no parent",
     HEAD + HTTP + doc("HTTPRoute", "r", "  parentRefs: [{name: eg, sectionName: https}]\n" + WEB), "default/eg/https",
     {"Accepted": ("False", "NoMatchingParent")}),
    ("a parentRef port no listener has matches no parent",
     HEAD + HTTP + doc("HTTPRoute", "r", "  parentRefs: [{name: eg, port: 8080}]\n" + WEB), "default/eg:8080",
     {"Accepted": ("False", "NoMatchingParent")}),
    ("a Gateway not in the input matches no parent",
     HEAD + HTTP + doc("HTTPRoute", "r", "  parentRefs: [{name: other}]\n" + WEB), "default/other",
     {"Accepted": ("False", "NoMatchingParent")}),
    ("route hostnames outside the listener's hostname match no listener hostname",
     HEAD + "  - {name: http, protocol: HTTP, port: 80, hostname: '*.example.com'}\n"
     + doc("HTTPRoute", "r", "  parentRefs: [{name: eg}]\n  hostnames: [shop.example.org]\n" + WEB), "default/eg",
     {"Accepted": ("False", "NoMatchingListenerHostname")}),
    ("a backend in another namespace without a ReferenceGrant is not permitted",
     HEAD + HTTP + doc("HTTPRoute", "r", "  parentRefs: [{name: eg}]\n  rules:\n  - backendRefs: [{name: db, namespace: data, port: 80}]\n"),
     "default/eg", {"Accepted": ("True", "Accepted"), "ResolvedRefs": ("False", "RefNotPermitted")}),
    ("a ReferenceGrant in the backend's namespace permits the reference",
     HEAD + HTTP + doc("HTTPRoute", "r", "  parentRefs: [{name: eg}]\n  rules:\n  - backendRefs: [{name: db, namespace: data, port: 80}]\n")
     + doc("ReferenceGrant", "g", "  from: [{group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: default}]\n"
           "  to: [{group: '', kind: Service}]\n", "data", "gateway.networking.k8s.io/v1beta1"),
     "default/eg", {"ResolvedRefs": ("True", "ResolvedRefs")}),
    ("a backendRef to something other than a Service is an invalid kind",
     HEAD + HTTP + doc("HTTPRoute", "r", "  parentRefs: [{name: eg}]\n  rules:\n  - backendRefs: [{group: example.com, kind: Bucket, name: b}]\n"),
     "default/eg", {"ResolvedRefs": ("False", "InvalidKind")}),
    ("a Service the input does not declare, when it declares others, is not found",
     HEAD + HTTP + doc("HTTPRoute", "r", "  parentRefs: [{name: eg}]\n  rules:\n  - backendRefs: [{name: api, port: 80}]\n") + service("web"),
     "default/eg", {"ResolvedRefs": ("False", "BackendNotFound")}),
    ("a declared Service without the port asked for is not found",
     HEAD + HTTP + doc("HTTPRoute", "r", "  parentRefs: [{name: eg}]\n  rules:\n  - backendRefs: [{name: web, port: 8080}]\n") + service("web"),
     "default/eg", {"ResolvedRefs": ("False", "BackendNotFound")}),
    ("two kinds of unresolved backends join their reasons sorted, as Envoy Gateway does",
     HEAD + HTTP + doc("HTTPRoute", "r", "  parentRefs: [{name: eg}]\n  rules:\n  - backendRefs: [{name: db, namespace: data, port: 80}, "
                       "{group: example.com, kind: Bucket, name: b}]\n"),
     "default/eg", {"ResolvedRefs": ("False", "InvalidKind,RefNotPermitted")}),
    ("a regular expression RE2 refuses drops its rule and the route is partially invalid",
     HEAD + HTTP + doc("HTTPRoute", "r", "  parentRefs: [{name: eg}]\n  rules:\n  - matches: [{path: {type: RegularExpression, value: '/(?=a)'}}]\n"
                       "    backendRefs: [{name: web, port: 80}]\n  - backendRefs: [{name: web, port: 80}]\n"),
     "default/eg", {"Accepted": ("True", "Accepted"), "PartiallyInvalid": ("True", "UnsupportedValue")}),
    ("a route all of whose rules are dropped is not accepted",
     HEAD + HTTP + doc("HTTPRoute", "r", "  parentRefs: [{name: eg}]\n  rules:\n  - matches: [{path: {type: RegularExpression, value: '/(?=a)'}}]\n"
                       "    backendRefs: [{name: web, port: 80}]\n"),
     "default/eg", {"Accepted": ("False", "UnsupportedValue")}),
    ("a header modifier on Host is an unsupported value",
     HEAD + HTTP + doc("HTTPRoute", "r", "  parentRefs: [{name: eg}]\n  rules:\n  - filters: [{type: RequestHeaderModifier, "
                       "requestHeaderModifier: {set: [{name: Host, value: x}]}}]\n    backendRefs: [{name: web, port: 80}]\n"),
     "default/eg", {"Accepted": ("False", "UnsupportedValue")}),
]


@pytest.mark.parametrize(("text", "parent", "expected"), [case[1:] for case in ROUTE_STATUSES], ids=[case[0] for case in ROUTE_STATUSES])
def test_route_parent_conditions_carry_the_gateway_apis_types_and_reasons(text, parent, expected):
    resources = load(text)
    route = resources.http_routes[0]
    found = conditions(translate(resources), "HTTPRoute", route.name, parent, namespace=route.namespace)
    assert {k: found.get(k) for k in expected} == expected


SECRET = doc("Secret", "cert", "  {}\n", group="v1").replace("spec:\n  {}\n", "type: kubernetes.io/tls\n")

LISTENER_STATUSES = [
    ("a listener with nothing wrong is programmed, accepted and resolved",
     "  - {name: http, protocol: HTTP, port: 80}\n", "http",
     {"Programmed": ("True", "Programmed"), "Accepted": ("True", "Accepted"), "ResolvedRefs": ("True", "ResolvedRefs")}),
    ("HTTP and HTTPS listeners on one port conflict by protocol",
     "  - {name: http, protocol: HTTP, port: 80}\n  - {name: https, protocol: HTTPS, port: 80, tls: {certificateRefs: [{name: cert}]}}\n",
     "http", {"Conflicted": ("True", "ProtocolConflict"), "Programmed": ("False", "Invalid")}),
    ("an HTTPS and a TLS listener sharing port and hostname conflict by hostname",
     "  - {name: https, protocol: HTTPS, port: 443, hostname: a.example.com, tls: {certificateRefs: [{name: cert}]}}\n"
     "  - {name: tls, protocol: TLS, port: 443, hostname: a.example.com, tls: {mode: Passthrough}}\n",
     "https", {"Conflicted": ("True", "HostnameConflict"), "Programmed": ("False", "Invalid")}),
    ("a protocol outside HTTP, HTTPS, TLS, TCP and UDP is unsupported",
     "  - {name: quic, protocol: QUIC, port: 443}\n", "quic", {"Accepted": ("False", "UnsupportedProtocol"), "Programmed": ("False", "Invalid")}),
    ("a route kind an HTTP listener cannot carry is an invalid route kind",
     "  - {name: http, protocol: HTTP, port: 80, allowedRoutes: {kinds: [{kind: TCPRoute}]}}\n", "http",
     {"ResolvedRefs": ("False", "InvalidRouteKinds"), "Programmed": ("False", "Invalid")}),
    ("an HTTPS listener whose certificate Secret is missing is accepted but not programmed",
     "  - {name: https, protocol: HTTPS, port: 443, tls: {certificateRefs: [{name: nope}]}}\n", "https",
     {"ResolvedRefs": ("False", "InvalidCertificateRef"), "Accepted": ("True", "Accepted"), "Programmed": ("False", "Invalid")}),
    ("an HTTPS listener whose certificate Secret exists is programmed",
     "  - {name: https, protocol: HTTPS, port: 443, tls: {certificateRefs: [{name: cert}]}}\n", "https",
     {"Programmed": ("True", "Programmed"), "ResolvedRefs": ("True", "ResolvedRefs")}),
]


@pytest.mark.parametrize(("listeners", "listener", "expected"), [case[1:] for case in LISTENER_STATUSES], ids=[case[0] for case in LISTENER_STATUSES])
def test_listener_conditions_carry_the_gateway_apis_types_and_reasons(listeners, listener, expected):
    found = conditions(translate(load(HEAD + listeners + SECRET)), "Gateway", "eg", listener=listener)
    assert {k: found.get(k) for k in expected} == expected


def test_attached_routes_count_routes_with_hostnames_in_common_whatever_their_other_problems():
    text = HEAD + "  - {name: a, protocol: HTTP, port: 80, hostname: a.example.com}\n  - {name: b, protocol: HTTP, port: 8080}\n" + (
        doc("HTTPRoute", "one", "  parentRefs: [{name: eg}]\n" + WEB) + doc("HTTPRoute", "two", "  parentRefs: [{name: eg, sectionName: b}]\n"
                                                                         "  rules:\n  - backendRefs: [{name: db, namespace: x, port: 80}]\n"))
    translation = translate(load(text))
    counts = {s.listener: s.attached_routes for s in translation.statuses if s.listener}
    assert counts == {"a": 1, "b": 2}


def test_a_gateway_whose_class_is_not_in_the_input_is_pending():
    text = HEAD.split("---\n")[1].replace("gatewayClassName: eg", "gatewayClassName: other") + HTTP
    assert conditions(translate(load(text)), "Gateway", "eg") == {"Accepted": ("Unknown", "Pending"), "Programmed": ("Unknown", "Pending")}


def test_status_of_an_unknown_parent_says_which_statuses_exist():
    translation = translate(load(HEAD + HTTP + doc("HTTPRoute", "r", "  parentRefs: [{name: eg}]\n" + WEB)))
    with pytest.raises(KeyError, match="statuses of it: parent=default/eg"):
        translation.status_of("HTTPRoute", "default", "r", parent="default/other")


# --- shapes ----------------------------------------------------------------------------------------

def routes_of(translation, config: str = "default/eg/http"):
    return {host["domains"][0]: host["routes"] for host in translation.route_config(config)["virtualHosts"]}


def test_backend_weights_become_locality_weights_of_one_cluster_and_weight_zero_is_left_out():
    text = HEAD + HTTP + doc("HTTPRoute", "shop", "  parentRefs: [{name: eg}]\n  hostnames: [shop.example.com]\n  rules:\n"
                             "  - backendRefs: [{name: a, port: 80, weight: 3}, {name: b, port: 80, weight: 0}, {name: c, port: 8080}]\n")
    translation = translate(load(text))
    (route,) = routes_of(translation)["shop.example.com"]
    assert route["name"] == "httproute/default/shop/rule/0/match/0/shop_example_com"
    assert route["route"]["cluster"] == "httproute/default/shop/rule/0"
    (assignment,) = translation.endpoints
    assert [(e["locality"]["region"], e["loadBalancingWeight"], e["metadata"]["filterMetadata"]["envoy-gateway"]["resources"][0]["name"])
            for e in assignment["endpoints"]] == [("httproute/default/shop/rule/0/backend/0", 3, "a"), ("httproute/default/shop/rule/0/backend/2", 1, "c")]
    decision = match(translation, Request("shop.example.com", "/"), 80)
    assert [(b.name, b.port, b.weight) for b in decision.backends] == [("a", 80, 3), ("c", 8080, 1)]


def test_a_rule_whose_backends_all_weigh_zero_answers_500():
    text = HEAD + HTTP + doc("HTTPRoute", "shop", "  parentRefs: [{name: eg}]\n  rules:\n  - backendRefs: [{name: a, port: 80, weight: 0}]\n")
    decision = match(translate(load(text)), Request("any.example.com", "/x"), 80)
    assert (decision.direct_response, decision.backends, decision.route) == (500, (), "default/shop/rule/0")


def test_an_invalid_backend_keeps_its_share_of_the_weight_answered_500():
    text = HEAD + HTTP + doc("HTTPRoute", "shop", "  parentRefs: [{name: eg}]\n  rules:\n"
                             "  - backendRefs: [{name: a, port: 80, weight: 3}, {name: db, namespace: data, port: 80}]\n")
    translation = translate(load(text))
    (route,) = routes_of(translation)["*"]
    assert route["route"]["weightedClusters"]["clusters"] == [
        {"name": "invalid-backend-cluster", "weight": 1}, {"name": "httproute/default/shop/rule/0/backend/0", "weight": 3}]
    decision = match(translation, Request("x.example.com", "/"), 80)
    assert [(b.name, b.weight) for b in decision.backends] == [("a", 3)] and decision.unavailable == (500, Fraction(1, 4))


def test_a_redirect_without_port_takes_the_listener_port_unless_the_scheme_names_one():
    text = HEAD + "  - {name: http, protocol: HTTP, port: 8080}\n" + doc("HTTPRoute", "r", "  parentRefs: [{name: eg}]\n  rules:\n"
                                                                       "  - matches: [{path: {value: /old}}]\n"
                                                                       "    filters: [{type: RequestRedirect, requestRedirect: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /new}}}]\n"
                                                                       "  - matches: [{path: {type: Exact, value: /secure}}]\n"
                                                                       "    filters: [{type: RequestRedirect, requestRedirect: {scheme: https, statusCode: 301}}]\n")
    translation = translate(load(text))
    routes = {r["name"].split("/")[4]: r for r in routes_of(translation)["*"]}
    assert routes["0"]["redirect"] == {"prefixRewrite": "/new", "portRedirect": 8080, "responseCode": "FOUND"}
    assert routes["1"]["redirect"] == {"schemeRedirect": "https"}  # 443 is the scheme's: left out; 301 is Envoy's default
    moved = match(translation, Request("a.example.com:8080", "/old/x?y=1"), 8080)
    assert moved.redirect == {"scheme": "http", "hostname": "a.example.com", "port": 8080, "path": "/new/x?y=1", "statusCode": 302}
    assert str(moved) == "GET a.example.com:8080/old/x?y=1 -> default/r/rule/0: redirect 302 to http://a.example.com:8080/new/x?y=1"
    secure = match(translation, Request("a.example.com", "/secure"), 8080)
    assert secure.redirect == {"scheme": "https", "hostname": "a.example.com", "port": 443, "path": "/secure", "statusCode": 301}


def test_rewrites_headers_and_mirrors_are_written_in_envoys_terms():
    text = HEAD + HTTP + doc("HTTPRoute", "r", "  parentRefs: [{name: eg}]\n  rules:\n  - matches: [{path: {value: /api/}}]\n    filters:\n"
                             "    - {type: URLRewrite, urlRewrite: {hostname: internal.example.com, path: {type: ReplacePrefixMatch, replacePrefixMatch: /}}}\n"
                             "    - {type: RequestHeaderModifier, requestHeaderModifier: {add: [{name: x-a, value: '1'}], set: [{name: x-b, value: '2'}], remove: [x-c]}}\n"
                             "    - {type: RequestMirror, requestMirror: {backendRef: {name: shadow, port: 80}, percent: 10}}\n"
                             "    backendRefs: [{name: api, port: 80}]\n")
    translation = translate(load(text))
    (route,) = routes_of(translation)["*"]
    assert route["requestHeadersToAdd"] == [{"header": {"key": "x-a", "value": "1"}},
                                            {"header": {"key": "x-b", "value": "2"}, "appendAction": "OVERWRITE_IF_EXISTS_OR_ADD"}]
    assert route["requestHeadersToRemove"] == ["x-c"]
    action = route["route"]
    assert action["regexRewrite"] == {"pattern": {"regex": r"^/api/\/*"}, "substitution": "/"}  # Envoy Gateway's stand-in for a '/' prefix
    assert (action["hostRewriteLiteral"], action["appendXForwardedHost"]) == ("internal.example.com", True)
    assert action["requestMirrorPolicies"] == [{"cluster": "httproute/default/r/rule/0-mirror-2", "disableShadowHostSuffixAppend": True,
                                                "runtimeFraction": {"defaultValue": {"numerator": 100000, "denominator": "MILLION"}}}]
    decision = match(translation, Request("x.example.com", "/api/v1"), 80)
    assert set(decision.filters) == {"requestHeadersToAdd", "requestHeadersToRemove", "regexRewrite", "hostRewriteLiteral",
                                     "appendXForwardedHost", "requestMirrorPolicies"}


def test_grpc_matches_become_the_paths_and_headers_envoy_gateway_writes():
    translation = translate(load((DATA / "grpc.yaml").read_text()))
    exact, prefix = routes_of(translation, "default/eg/grpc")["grpc.example.com"]
    assert exact["match"] == {"path": "/shop.Cart/Checkout"} and prefix["match"] == {"pathSeparatedPrefix": "/shop.Cart"}
    call = match(translation, Request("grpc.example.com:8080", "/shop.Cart/Checkout", "POST", {"content-type": "application/grpc"}), 8080)
    assert [b.name for b in call.backends] == ["cart-v2"]
    assert [b.name for b in match(translation, Request("grpc.example.com", "/shop.Cart/Add", "POST"), 8080).backends] == ["cart"]


def test_an_https_listener_serves_its_host_through_a_filter_chain_chosen_by_server_name():
    text = HEAD + "  - {name: https, protocol: HTTPS, port: 443, hostname: a.example.com, tls: {certificateRefs: [{name: cert}]}}\n" + SECRET + (
        doc("HTTPRoute", "r", "  parentRefs: [{name: eg}]\n" + WEB))
    translation = translate(load(text))
    (listener,) = translation.listeners
    (chain,) = listener["filterChains"]
    assert (chain["filterChainMatch"], chain["transportSocket"]["name"]) == ({"serverNames": ["a.example.com"]}, "envoy.transport_sockets.tls")
    assert [b.name for b in match(translation, Request("a.example.com", "/"), 443).backends] == ["web"]
    assert match(translation, Request("b.example.com", "/"), 443).reason == "no filter chain of listener default/eg/https serves server name b.example.com"


def test_listeners_of_one_port_share_a_route_configuration_and_the_more_specific_listener_takes_a_hostname():
    text = HEAD + "  - {name: all, protocol: HTTP, port: 80}\n  - {name: shop, protocol: HTTP, port: 80, hostname: '*.example.com'}\n" + (
        doc("HTTPRoute", "any", "  parentRefs: [{name: eg, sectionName: all}]\n  hostnames: [a.example.com]\n  rules:\n  - backendRefs: [{name: any, port: 80}]\n")
        + doc("HTTPRoute", "wild", "  parentRefs: [{name: eg, sectionName: shop}]\n  hostnames: [a.example.com]\n  rules:\n  - backendRefs: [{name: wild, port: 80}]\n"))
    translation = translate(load(text))
    (config,) = translation.route_configs
    assert config["name"] == "default/eg/all" and [h["name"] for h in config["virtualHosts"]] == ["default/eg/shop/a_example_com"]
    assert [b.name for b in match(translation, Request("a.example.com", "/"), 80).backends] == ["wild"]


@pytest.mark.parametrize(("request_", "expected"), [
    (Request("shop.example.com", "/api/cart", headers={"x-canary": "true"}), "GET shop.example.com/api/cart x-canary=true -> default/shop/rule/0: default/api-canary:3000"),
    (Request("shop.example.com", "/api/cart"), "GET shop.example.com/api/cart -> default/shop/rule/1: default/api:3000 75/100, default/api-v2:3000 25/100"),
    (Request("shop.example.com", "/apix"), "GET shop.example.com/apix -> default/shop/rule/3: default/web:8080"),
    (Request("shop.example.com", "/old-cart"), "GET shop.example.com/old-cart -> default/shop/rule/2: redirect 301 to http://shop.example.com/cart"),
    (Request("blog.example.com", "/"), "GET blog.example.com/ -> 404, no virtual host for host blog.example.com"),
], ids=["a canary header picks the canary", "the split is 75/25", "a prefix matches whole path segments only",
        "the old cart redirects permanently", "a host no route names gets 404"])
def test_decisions_on_the_chapters_shop_read_as_one_line(request_, expected):
    assert str(match(translate(load((DATA / "shop.yaml").read_text())), request_, 80)) == expected


def test_match_on_a_port_without_listener_says_which_ports_listen():
    decision = match(translate(load((DATA / "shop.yaml").read_text())), Request("shop.example.com", "/"), 8080)
    assert (decision.route, decision.reason) == (None, "no listener on port 8080; listening: 80")


# --- against Envoy Gateway's own translator --------------------------------------------------------

def egctl_output(text: str, add_missing: bool = True) -> dict:
    with tempfile.TemporaryDirectory(prefix="meshlab-test-") as folder:
        source = Path(folder) / "in.yaml"
        source.write_text(text)
        argv = [program_path("egctl"), "experimental", "translate", "--from", "gateway-api", "--to", "gateway-api,xds", "-t", "all",
                "-o", "yaml", "-f", str(source)] + (["--add-missing-resources"] if add_missing else [])
        done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=True)
    return yaml.safe_load(done.stdout)


def egctl_routes(output: dict) -> dict:
    """(route configuration, domain) -> routes, without metadata, from egctl's xds output."""
    found = {}
    for dump in (c for v in output["xds"].values() for c in v["configs"]):
        for config in dump.get("dynamicRouteConfigs", []):
            for host in config["routeConfig"].get("virtualHosts", []):
                found[config["routeConfig"]["name"], host["domains"][0]] = [{k: v for k, v in r.items() if k != "metadata"} for r in host.get("routes", [])]
    return found


SHAPES = HEAD + HTTP + "  - {name: other, protocol: HTTP, port: 8080, hostname: other.example.com}\n" + doc(
    "HTTPRoute", "shop", "  parentRefs: [{name: eg}]\n  hostnames: [shop.example.com, '*.example.com']\n  rules:\n"
    "  - matches: [{path: {type: Exact, value: /login}, method: POST}]\n"
    "    filters: [{type: RequestHeaderModifier, requestHeaderModifier: {set: [{name: x-a, value: '1'}], add: [{name: x-b, value: '2'}], remove: [x-c]}}]\n"
    "    backendRefs: [{name: login, port: 8080}]\n"
    "  - matches: [{path: {type: PathPrefix, value: /old/}}]\n"
    "    filters: [{type: RequestRedirect, requestRedirect: {scheme: https, path: {type: ReplacePrefixMatch, replacePrefixMatch: /new}}}]\n"
    "  - matches: [{path: {type: PathPrefix, value: /v1}, queryParams: [{name: debug, value: '1'}], headers: [{name: x-re, type: RegularExpression, value: 'a.*'}]}]\n"
    "    filters: [{type: URLRewrite, urlRewrite: {hostname: internal.example.com, path: {type: ReplacePrefixMatch, replacePrefixMatch: /}}}]\n"
    "    backendRefs: [{name: v1, port: 80, weight: 0}, {name: v1b, port: 80, weight: 3}, {name: v1c, port: 81}]\n"
    "  - matches: [{path: {type: RegularExpression, value: '/r/[0-9]+'}}]\n"
    "    filters: [{type: URLRewrite, urlRewrite: {path: {type: ReplaceFullPath, replaceFullPath: /fixed}}}]\n"
    "    backendRefs: [{name: other, namespace: far, port: 80}, {name: ok, port: 80}]\n"
    "  - matches: [{path: {type: PathPrefix, value: /zero}}]\n    backendRefs: [{name: z, port: 80, weight: 0}]\n") + doc(
    "GRPCRoute", "g", "  parentRefs: [{name: eg, sectionName: other}]\n  rules:\n"
    "  - matches: [{method: {service: helloworld.Greeter, method: SayHello}}]\n    backendRefs: [{name: grpc, port: 50051}]\n"
    "  - matches: [{method: {service: helloworld.Greeter}}, {method: {method: Foo}}, {method: {type: RegularExpression, service: 'hello.*'}}, "
    "{headers: [{name: x, value: 'y'}]}]\n    backendRefs: [{name: grpc2, port: 50051}]\n  - backendRefs: [{name: grpc3, port: 50051}]\n")


@pytest.mark.upstream
@pytest.mark.parametrize("text", [SHAPES, (DATA / "shop.yaml").read_text(), (DATA / "grpc.yaml").read_text(), (DATA / "precedence.yaml").read_text()],
                         ids=["rewrites, redirects, weights, invalid backends and gRPC", "the chapter's shop", "the chapter's gRPC route",
                              "the chapter's precedence puzzle"])
def test_routes_equal_egctls_route_by_route_in_envoy_gateways_order(text):
    mine = translate(load(text), precedence=ENVOY_GATEWAY, add_missing_resources=True)
    theirs = egctl_routes(egctl_output(text))
    ours = {(c["name"], h["domains"][0]): [{k: v for k, v in r.items() if k != "metadata"} for r in h["routes"]]
            for c in mine.route_configs for h in c["virtualHosts"]}
    assert ours == theirs


@pytest.mark.upstream
def test_statuses_agree_with_egctls_where_egctl_reports_them():
    text = SHAPES + doc("HTTPRoute", "other", "  parentRefs: [{name: eg, namespace: default, sectionName: http}, {name: eg, namespace: default, "
                        "sectionName: other}, {name: eg, namespace: default, sectionName: nope}]\n  hostnames: [x.example.org]\n"
                        "  rules:\n  - backendRefs: [{name: svc, namespace: default, port: 80}]\n", "team")
    output = egctl_output(text)
    mine = translate(load(text), add_missing_resources=True)
    compared = 0
    for route in output["httpRoutes"] + output["grpcRoutes"]:
        meta = route["metadata"]
        for parent in route["status"]["parents"]:
            ref = parent["parentRef"]
            name = f"{ref.get('namespace', meta['namespace'])}/{ref['name']}" + (f"/{ref['sectionName']}" if "sectionName" in ref else "")
            ours = conditions(mine, route["kind"], meta["name"], name, namespace=meta["namespace"])
            assert {c["type"]: (c["status"], c["reason"]) for c in parent["conditions"]} == {t: ours[t] for t in (c["type"] for c in parent["conditions"])}
            compared += 1
    for listener in output["gateways"][0]["status"]["listeners"]:
        ours = [s for s in mine.statuses if s.listener == listener["name"]][0]
        assert ours.attached_routes == listener["attachedRoutes"]
        assert {c["type"]: (c["status"], c["reason"]) for c in listener["conditions"]} == {t: v for t, v in conditions(
            mine, "Gateway", "eg", listener=listener["name"]).items() if t in {c["type"] for c in listener["conditions"]}}
        compared += 1
    assert compared == 7


def test_a_prefix_redirected_to_slash_keeps_the_rest_of_the_path():
    text = HEAD + HTTP + doc("HTTPRoute", "r", "  parentRefs: [{name: eg}]\n  rules:\n  - matches: [{path: {value: /old}}]\n"
                             "    filters: [{type: RequestRedirect, requestRedirect: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /}}}]\n")
    translation = translate(load(text))
    (route,) = routes_of(translation)["*"]
    assert route["redirect"]["regexRewrite"] == {"pattern": {"regex": r"^/old\/*"}, "substitution": "/"}
    assert match(translation, Request("a.example.com", "/old/a/b"), 80).redirect["path"] == "/a/b"


@pytest.mark.parametrize(("namespace", "name", "expected"), [
    ("store", "store", {"Accepted": ("True", "Accepted"), "ResolvedRefs": ("True", "ResolvedRefs")}),
    ("site", "site", {"Accepted": ("True", "Accepted"), "ResolvedRefs": ("True", "ResolvedRefs")}),
    ("site", "payments", {"Accepted": ("True", "Accepted"), "ResolvedRefs": ("False", "RefNotPermitted")}),
    ("site", "blog", {"Accepted": ("False", "NoMatchingListenerHostname"), "ResolvedRefs": ("True", "ResolvedRefs")}),
    ("sandbox", "experiment", {"Accepted": ("False", "NotAllowedByListeners"), "ResolvedRefs": ("True", "ResolvedRefs")}),
], ids=["a labelled namespace's route attaches", "a ReferenceGrant lets a route use another team's Service",
        "without one the reference is not permitted", "a host outside the listener's wildcard is refused",
        "an unlabelled namespace is not admitted by the selector"])
def test_the_chapters_roles_file_gives_each_route_its_conditions(namespace, name, expected):
    translation = translate(load((DATA / "roles.yaml").read_text()))
    assert conditions(translation, "HTTPRoute", name, "infra/shared", namespace=namespace) == expected
