"""Envoy's route matching as meshlab evaluates it (meshlab.gateway.envoy), rule by rule, on hand-built
route configurations: each case names the rule of Envoy's it checks (route_components.proto,
source/common/router/config_impl.cc, source/common/http/header_utility.cc). The same evaluator is
checked against Envoy Gateway's own output in tests/test_upstream_gateway_agreement.py."""

from __future__ import annotations

from fractions import Fraction

import pytest

from meshlab.gateway.envoy import Backend, EnvoyConfigError, Request, backends_of, cluster_not_found, select


def config(*virtual_hosts: tuple[str, list[str]], ignore_port: bool = False) -> dict:
    """A RouteConfiguration whose virtual hosts (name, domains) each hold one catch-all route."""
    built = {"name": "test", "virtualHosts": [{"name": name, "domains": domains, "routes": [{"name": name, "match": {"prefix": "/"}}]}
                                              for name, domains in virtual_hosts]}
    return built | ({"ignorePortInHostMatching": True} if ignore_port else {})


def routes(*matches: dict) -> dict:
    """A RouteConfiguration with one '*' virtual host whose routes, named r0, r1, ..., hold ``matches`` in order."""
    return {"virtualHosts": [{"name": "any", "domains": ["*"], "routes": [{"name": f"r{i}", "match": m} for i, m in enumerate(matches)]}]}


def chosen_host(route_config: dict, host: str) -> str | None:
    picked = select(route_config, Request(host=host)).virtual_host
    return picked and picked["name"]


def chosen_route(route_config: dict, path: str = "/", method: str = "GET", headers: dict | None = None) -> str | None:
    picked = select(route_config, Request("shop.example.com", path, method, headers or {})).route
    return picked and picked["name"]


WILDCARDS = config(("exact", ["www.foo.com"]), ("suffix", ["*.foo.com"]), ("longer-suffix", ["*-bar.foo.com"]),
                   ("prefix", ["www.*"]), ("longer-prefix", ["www.foo.*"]), ("any", ["*"]))


@pytest.mark.parametrize("host, expected", [
    pytest.param("www.foo.com", "exact", id="an exact domain wins over every wildcard"),
    pytest.param("baz-bar.foo.com", "longer-suffix", id="the longest suffix wildcard wins"),
    pytest.param("baz.foo.com", "suffix", id="a suffix wildcard matches any leading label"),
    pytest.param("www.foo.org", "longer-prefix", id="suffix wildcards before prefix wildcards, longest prefix first"),
    pytest.param("www.bar.net", "prefix", id="a prefix wildcard matches any trailing part"),
    pytest.param("-bar.foo.com", "suffix", id="a wildcard never matches the empty string, so the shorter one answers"),
    pytest.param(".foo.com", "any", id="a suffix wildcard needs at least one character before its suffix"),
    pytest.param("example.net", "any", id="star catches what nothing else matches"),
    pytest.param("WWW.Foo.COM", "exact", id="hosts compare case-insensitively"),
])
def test_a_virtual_host_is_chosen_in_envoys_domain_order(host, expected):
    assert chosen_host(WILDCARDS, host) == expected


@pytest.mark.parametrize("route_config, host, expected", [
    pytest.param(config(("shop", ["shop.example.com"])), "shop.example.com:8080", None,
                 id="without ignorePortInHostMatching the port is part of the host"),
    pytest.param(config(("shop", ["shop.example.com:8080"])), "shop.example.com:8080", "shop",
                 id="without ignorePortInHostMatching a domain naming the port matches"),
    pytest.param(config(("shop", ["shop.example.com"]), ignore_port=True), "shop.example.com:8080", "shop",
                 id="ignorePortInHostMatching strips the port before matching"),
    pytest.param(config(("shop", ["shop.example.com:8080"]), ignore_port=True), "shop.example.com:8080", None,
                 id="ignorePortInHostMatching strips the host's port but not a domain's"),
    pytest.param(config(("v6", ["[::1]"]), ignore_port=True), "[::1]:80", "v6", id="an IPv6 literal loses its port, not its colons"),
    pytest.param(config(("v6", ["[::1]"]), ignore_port=True), "[::1]", "v6", id="an IPv6 literal without a port is left whole"),
    pytest.param(config(("only", ["*"])), "anything:1234", "only", id="a lone star virtual host takes every host, port or not"),
    pytest.param(config(("shop", ["shop.example.com"])), "other.example.com", None, id="no domain matching means no virtual host"),
])
def test_the_port_in_the_host_counts_unless_the_route_configuration_ignores_it(route_config, host, expected):
    assert chosen_host(route_config, host) == expected


def test_a_route_configuration_without_virtual_hosts_has_none_to_offer():
    # protojson leaves out an empty list: a listener no route attached to gets such a configuration from Envoy Gateway
    assert select({"name": "default/eg/http", "ignorePortInHostMatching": True}, Request("shop.example.com")).reason == (
        "no virtual host for host shop.example.com")


def test_no_virtual_host_says_so_with_the_host():
    picked = select(config(("shop", ["shop.example.com"])), Request("other.example.com", "/x"))
    assert (picked.virtual_host, picked.route, picked.reason) == (None, None, "no virtual host for host other.example.com")


@pytest.mark.parametrize("domains", [
    pytest.param([("a", ["x.com"]), ("b", ["X.com"])], id="the same domain in two virtual hosts"),
    pytest.param([("a", ["*"]), ("b", ["*"])], id="two star virtual hosts"),
])
def test_a_configuration_envoy_would_refuse_is_refused(domains):
    with pytest.raises(EnvoyConfigError, match="appears twice"):
        select(config(*domains), Request("x.com"))


@pytest.mark.parametrize("match, path, matches", [
    pytest.param({"pathSeparatedPrefix": "/api"}, "/api", True, id="pathSeparatedPrefix matches the prefix itself"),
    pytest.param({"pathSeparatedPrefix": "/api"}, "/api/", True, id="pathSeparatedPrefix matches the prefix and a slash"),
    pytest.param({"pathSeparatedPrefix": "/api"}, "/api/x", True, id="pathSeparatedPrefix matches a path below it"),
    pytest.param({"pathSeparatedPrefix": "/api"}, "/apix", False, id="pathSeparatedPrefix does not match a longer segment"),
    pytest.param({"pathSeparatedPrefix": "/api"}, "/api?x=/", True, id="pathSeparatedPrefix ignores the query string"),
    pytest.param({"prefix": "/api"}, "/apix", True, id="a plain prefix is character-wise, not segment-wise"),
    pytest.param({"prefix": "/"}, "/anything/at/all", True, id="prefix slash matches every path"),
    pytest.param({"path": "/login"}, "/login?next=/home", True, id="an exact path ignores the query string"),
    pytest.param({"path": "/login"}, "/login#top", True, id="an exact path ignores a fragment"),
    pytest.param({"path": "/login"}, "/login/", False, id="an exact path does not match a trailing slash"),
    pytest.param({"prefix": "/api?v"}, "/api?v=1", False, id="a prefix never reaches into the query string"),
    pytest.param({"path": "/Login"}, "/login", False, id="paths are case-sensitive by default"),
    pytest.param({"path": "/Login", "caseSensitive": False}, "/login", True, id="caseSensitive false folds case for a path"),
    pytest.param({"pathSeparatedPrefix": "/API", "caseSensitive": False}, "/api/x", True,
                 id="caseSensitive false folds case for a pathSeparatedPrefix"),
    pytest.param({"safeRegex": {"regex": "/v[0-9]+"}}, "/v12", True, id="safeRegex matches a whole path"),
    pytest.param({"safeRegex": {"regex": "/v[0-9]+"}}, "/v12/x", False, id="safeRegex is a full match, not a search"),
    pytest.param({"safeRegex": {"regex": "/v[0-9]+"}}, "/v12?page=2", True, id="safeRegex ignores the query string"),
    pytest.param({"safeRegex": {"regex": "/V[0-9]+"}, "caseSensitive": False}, "/v1", False, id="safeRegex ignores caseSensitive"),
    pytest.param({"safeRegex": {"regex": "(?i)/V[0-9]+"}}, "/v1", True, id="RE2's inline i flag folds case"),
    pytest.param({"safeRegex": {"regex": r"/v\d"}}, "/v\u0661", False, id=r"RE2's \d is ASCII digits only"),
])
def test_a_path_specifier_matches_as_envoy_does(match, path, matches):
    assert (chosen_route(routes(match), path) == "r0") is matches


def test_the_first_route_that_matches_wins_not_the_longest():
    route_config = routes({"prefix": "/"}, {"path": "/api/exact"})
    assert chosen_route(route_config, "/api/exact") == "r0"


def test_no_route_says_which_path():
    picked = select(routes({"path": "/a"}), Request("shop.example.com", "/b?x=1"))
    assert (picked.virtual_host["name"], picked.route, picked.reason) == ("any", None, "no route matched path /b?x=1")


def header(name: str, **matcher) -> dict:
    return {"prefix": "/", "headers": [{"name": name, **matcher}]}


@pytest.mark.parametrize("match, headers, matches", [
    pytest.param(header("x-canary", stringMatch={"exact": "true"}), {"x-canary": "true"}, True, id="an exact header value matches"),
    pytest.param(header("x-canary", stringMatch={"exact": "true"}), {"X-Canary": "true"}, True, id="header names are case-insensitive"),
    pytest.param(header("x-canary", stringMatch={"exact": "true"}), {"x-canary": "True"}, False, id="header values are case-sensitive"),
    pytest.param(header("x-canary", stringMatch={"exact": "true", "ignoreCase": True}), {"x-canary": "TRUE"}, True,
                 id="ignoreCase folds case for an exact value"),
    pytest.param(header("x-canary", stringMatch={"exact": "true"}), {}, False, id="a missing header fails a value match"),
    pytest.param(header("x-role", stringMatch={"exact": "admin"}), {"x-role": "user,admin"}, False,
                 id="a header line holding a comma is one value"),
    pytest.param(header("x-v", stringMatch={"prefix": "v1."}), {"x-v": "v1.2"}, True, id="a header prefix match"),
    pytest.param(header("x-v", stringMatch={"suffix": "-beta"}), {"x-v": "v1-beta"}, True, id="a header suffix match"),
    pytest.param(header("x-v", stringMatch={"contains": "beta"}), {"x-v": "v1-beta.2"}, True, id="a header contains match"),
    pytest.param(header("x-v", stringMatch={"safeRegex": {"regex": "v[0-9]"}}), {"x-v": "v1x"}, False,
                 id="a header safeRegex is a full match"),
    pytest.param(header("x-v", stringMatch={"safeRegex": {"regex": "v", "googleRe2": {}}, "ignoreCase": True}), {"x-v": "V"}, False,
                 id="ignoreCase has no effect on a header safeRegex"),
    pytest.param(header("x-canary", stringMatch={"exact": "true"}, invertMatch=True), {"x-canary": "false"}, True,
                 id="invertMatch turns a mismatch into a match"),
    pytest.param(header("x-canary", stringMatch={"exact": "true"}, invertMatch=True), {"x-canary": "true"}, False,
                 id="invertMatch turns a match into a mismatch"),
    pytest.param(header("x-canary", stringMatch={"exact": "true"}, invertMatch=True), {}, False,
                 id="invertMatch does not make an absent header match a value"),
    pytest.param(header("x-debug", presentMatch=True), {"x-debug": ""}, True, id="presentMatch true matches a present empty header"),
    pytest.param(header("x-debug", presentMatch=True), {}, False, id="presentMatch true fails on an absent header"),
    pytest.param(header("x-debug", presentMatch=False), {}, True, id="presentMatch false matches an absent header"),
    pytest.param(header("x-debug", presentMatch=False), {"x-debug": "1"}, False, id="presentMatch false fails on a present header"),
    pytest.param(header("x-debug", presentMatch=True, invertMatch=True), {}, True, id="an inverted presentMatch true matches absence"),
    pytest.param(header("x-debug"), {"x-debug": "anything"}, True, id="a header matcher without a specifier checks presence"),
    pytest.param(header("x-debug"), {}, False, id="a header matcher without a specifier fails on absence"),
    pytest.param(header("x-v", stringMatch={"exact": ""}, treatMissingHeaderAsEmpty=True), {}, True,
                 id="treatMissingHeaderAsEmpty reads an absent header as empty"),
    pytest.param(header(":method", stringMatch={"exact": "POST"}), {}, False, id="the method is the :method pseudo-header"),
])
def test_a_header_matcher_holds_as_envoys_does(match, headers, matches):
    assert (chosen_route(routes(match), "/", "GET", headers) == "r0") is matches


def test_method_and_authority_are_pseudo_headers():
    match = {"prefix": "/", "headers": [{"name": ":method", "stringMatch": {"exact": "POST"}},
                                        {"name": ":authority", "stringMatch": {"suffix": ".example.com"}}]}
    assert chosen_route(routes(match), "/", "POST") == "r0"


def test_every_header_of_a_route_must_hold():
    match = {"prefix": "/", "headers": [{"name": "a", "stringMatch": {"exact": "1"}}, {"name": "b", "stringMatch": {"exact": "2"}}]}
    assert chosen_route(routes(match), headers={"a": "1"}) is None
    assert chosen_route(routes(match), headers={"a": "1", "b": "2"}) == "r0"


def query(name: str, **matcher) -> dict:
    return {"prefix": "/", "queryParameters": [{"name": name, **matcher}]}


@pytest.mark.parametrize("match, path, matches", [
    pytest.param(query("v", stringMatch={"exact": "2"}), "/x?v=2", True, id="a query parameter exact match"),
    pytest.param(query("v", stringMatch={"exact": "2"}), "/x?a=1&v=2&b=3", True, id="a query parameter anywhere in the query string"),
    pytest.param(query("v", stringMatch={"exact": "2"}), "/x?v=1&v=2", False, id="only the first value of a repeated parameter counts"),
    pytest.param(query("v", stringMatch={"exact": "a b"}), "/x?v=a%20b", True, id="parameters are percent-decoded before matching"),
    pytest.param(query("v", stringMatch={"exact": "2"}), "/x", False, id="an absent parameter fails a value match"),
    pytest.param(query("debug", stringMatch={"exact": ""}), "/x?debug", True, id="a parameter without '=' has the empty value"),
    pytest.param(query("debug", presentMatch=True), "/x?debug", True, id="presentMatch true matches a present parameter"),
    pytest.param(query("debug", presentMatch=False), "/x?other=1", True, id="presentMatch false matches an absent parameter"),
    pytest.param(query("debug", presentMatch=False), "/x?debug=1", False, id="presentMatch false fails on a present parameter"),
    pytest.param(query("v", stringMatch={"exact": "2"}), "/x#v=2", False, id="a fragment is not the query string"),
])
def test_a_query_parameter_matcher_holds_as_envoys_does(match, path, matches):
    assert (chosen_route(routes(match), path) == "r0") is matches


@pytest.mark.parametrize("regex, words", [
    pytest.param("/(?=a)a", "lookahead", id="lookahead is Python's, not RE2's"),
    pytest.param("/(?<!a)b", "lookahead/lookbehind", id="lookbehind is Python's, not RE2's"),
    pytest.param(r"/(a)\1", "backreference", id="a backreference is Python's, not RE2's"),
    pytest.param("/(a)?(?(1)b|c)", "conditional", id="a conditional group is Python's, not RE2's"),
    pytest.param("/a++", "possessive", id="a possessive quantifier is Python's, not RE2's"),
    pytest.param("/(?>a)", "atomic", id="an atomic group is Python's, not RE2's"),
    pytest.param("(?x)/ a", "flags x, a or L", id="the verbose flag is Python's, not RE2's"),
    pytest.param("/(?x: a)", "flags x, a or L", id="a scoped verbose flag is Python's, not RE2's"),
    pytest.param(r"/a\Z", "RE2 writes the end of text", id=r"Python's \Z is refused, naming RE2's \z"),
    pytest.param("/a(?#note)", "comment", id="a comment group is Python's, not RE2's"),
    pytest.param("/[[:alpha:]]+", "POSIX classes", id="a POSIX class would be read differently by Python"),
    pytest.param(r"/a\z", "not RE2 syntax this evaluator reads", id=r"RE2's \z is refused, not misread"),
    pytest.param(r"/\pN", "not RE2 syntax this evaluator reads", id=r"RE2's \pN is refused, not misread"),
])
def test_a_regex_that_re2_and_python_would_read_differently_is_refused_by_name(regex, words):
    with pytest.raises(EnvoyConfigError, match=words):
        chosen_route(routes({"safeRegex": {"regex": regex}}), "/a")


@pytest.mark.parametrize("match, words", [
    pytest.param({"prefix": "/", "runtimeFraction": {}}, "runtimeFraction are not evaluated here", id="a runtime fraction is refused"),
    pytest.param({"prefix": "/", "grpc": {}}, "grpc are not evaluated here", id="a gRPC content-type match is refused"),
    pytest.param({"prefix": "/", "path": "/a"}, "exactly one path specifier", id="two path specifiers are refused"),
    pytest.param({"headers": []}, "exactly one path specifier", id="a match without a path specifier is refused"),
    pytest.param(header("x", exactMatch="1"), "not exactMatch", id="a deprecated header field is refused, naming it"),
    pytest.param(header("x", stringMatch={"exact": "1", "prefix": "1"}), "exactly one of", id="a string matcher with two kinds is refused"),
])
def test_a_match_this_evaluator_cannot_decide_is_refused_by_name(match, words):
    with pytest.raises(EnvoyConfigError, match=words):
        chosen_route(routes(match), "/a", headers={"x": "1"})


@pytest.mark.parametrize("arguments, words", [
    pytest.param({"host": "", "path": "/"}, "host must be", id="an empty host"),
    pytest.param({"host": "a.com", "path": "api"}, "path must start with '/'", id="a path without its slash"),
    pytest.param({"host": "a.com", "method": "GE T"}, "method must be", id="a method with a space"),
    pytest.param({"host": "a.com", "headers": {"X-A": "1", "x-a": "2"}}, "given twice", id="one header name in two cases"),
    pytest.param({"host": "a.com", "headers": {"x-a": ["1", "2"]}}, "one string value", id="a header with a list of values"),
])
def test_a_bad_request_is_refused_saying_what_is_accepted(arguments, words):
    with pytest.raises(ValueError, match=words):
        Request(**arguments)


def assignment(cluster: str, *services: tuple[str, int], with_metadata: bool = True) -> dict:
    """A ClusterLoadAssignment shaped as Envoy Gateway writes it: one locality per backendRef."""
    return {"clusterName": cluster, "endpoints": [
        {"loadBalancingWeight": weight, "locality": {"region": f"{cluster}/backend/{i}"}}
        | ({"metadata": {"filterMetadata": {"envoy-gateway": {"resources": [
            {"kind": "Service", "name": name, "namespace": "shop", "sectionName": "8080"}]}}}} if with_metadata else {})
        for i, (name, weight) in enumerate(services)]}


def weighted(*entries: tuple[str, int], not_found: str | None = None) -> dict:
    action = {"weightedClusters": {"clusters": [{"name": name, "weight": weight} for name, weight in entries]}}
    return {"route": action | ({"clusterNotFoundResponseCode": not_found} if not_found else {})}


def test_one_cluster_gives_its_localities_weights_as_the_backends_weights():
    route = {"route": {"cluster": "rule/1"}}
    assert backends_of(route, [assignment("rule/1", ("api", 75), ("api-v2", 25))]) == (
        Backend("shop", "api", 8080, 75), Backend("shop", "api-v2", 8080, 25))


def test_weighted_clusters_give_each_entry_its_weight_and_leave_the_missing_one_to_cluster_not_found():
    route = weighted(("invalid-backend-cluster", 10), ("rule/0/backend/0", 60), ("rule/0/backend/1", 30), not_found="INTERNAL_SERVER_ERROR")
    endpoints = [assignment("rule/0/backend/0", ("api", 60)), assignment("rule/0/backend/1", ("api-v2", 30))]
    assert backends_of(route, endpoints) == (Backend("shop", "api", 8080, 60), Backend("shop", "api-v2", 8080, 30))
    assert cluster_not_found(route, endpoints) == (500, Fraction(10, 10 + 60 + 30))


def test_an_entry_weight_is_shared_among_its_clusters_localities_in_proportion():
    route = weighted(("a", 1), ("b", 1))
    endpoints = [assignment("a", ("api", 1), ("api-v2", 1)), assignment("b", ("api-v3", 7))]
    assert backends_of(route, endpoints) == (Backend("shop", "api", 8080, 1), Backend("shop", "api-v2", 8080, 1),
                                             Backend("shop", "api-v3", 8080, 2))


def test_a_zero_weight_entry_or_locality_gets_nothing_and_a_service_named_twice_is_summed():
    route = weighted(("a", 0), ("b", 3), ("c", 2))
    endpoints = [assignment("a", ("api", 5)), assignment("b", ("api", 1), ("api-v2", 0)), assignment("c", ("api", 4))]
    assert backends_of(route, endpoints) == (Backend("shop", "api", 8080, 5),)


def test_a_lone_missing_cluster_sends_everything_to_cluster_not_found_with_envoys_default_503():
    route = {"route": {"cluster": "nowhere"}}
    assert (backends_of(route, []), cluster_not_found(route, [])) == ((), (503, Fraction(1)))


def test_a_redirect_or_direct_response_has_no_backends():
    assert backends_of({"redirect": {"schemeRedirect": "https"}}, []) == ()
    assert backends_of({"directResponse": {"status": 500}}, []) == ()


def test_a_locality_that_names_no_service_is_refused_saying_where_the_service_is_read():
    with pytest.raises(EnvoyConfigError, match=r"filterMetadata\['envoy-gateway'\]"):
        backends_of({"route": {"cluster": "a"}}, [assignment("a", ("api", 1), with_metadata=False)])


def test_egctls_wrapped_endpoint_configs_are_read_as_they_come():
    wrapped = [{"endpointConfig": assignment("a", ("api", 3))}]
    assert backends_of({"route": {"cluster": "a"}}, wrapped) == (Backend("shop", "api", 8080, 3),)
