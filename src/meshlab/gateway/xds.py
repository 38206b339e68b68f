"""Envoy configuration in Envoy's own terms (protojson, camelCase, as egctl prints it), shaped and
named as Envoy Gateway v1.9.0 writes it (internal/xds/translator: route.go, cluster.go,
listener.go, translator.go) so the two can be read side by side. Only what routing needs is
written: no access logs, timeouts, circuit breakers or stats settings.

Names: a listener and its route configuration take the name of the first Gateway listener on the
port (``<ns>/<gateway>/<listener>``), a virtual host ``<listener name>/<hostname with . as _>``, a
route ``<kind>/<ns>/<name>/rule/<i>/match/<j>/<hostname with . as _>``, a rule's cluster
``<kind>/<ns>/<name>/rule/<i>``, a backendRef's locality ``.../rule/<i>/backend/<j>``.

    metadata          filterMetadata naming the Gateway API objects a configuration object stands for
    string_match      Envoy StringMatcher: exact, suffix or safeRegex
    route_match       path specifier, headers and query parameters of a RouteMatch
    redirect          RedirectAction of a RequestRedirect filter
    url_rewrite       the RouteAction fields of a URLRewrite filter
    headers_to_add    HeaderValueOptions of a header modifier's add and set
    mirror_policy     a RouteAction RequestMirrorPolicy
    float32           a float rounded as Go's float32 (mirror shares)
    cluster           an EDS Cluster with locality-weighted load balancing
    load_assignment   a ClusterLoadAssignment, one locality per backendRef
    listener          a Listener with an HTTP connection manager reading its routes by RDS
    quote_meta        Go's regexp.QuoteMeta, which Envoy Gateway uses in rewrite patterns
"""

from __future__ import annotations

import struct
from typing import Any

from meshlab.gateway.envoy import ENVOY_GATEWAY_METADATA, REDIRECT_RESPONSE_CODES
from meshlab.gateway.resources import HTTPHeaderFilter, HTTPRequestRedirectFilter, HTTPURLRewriteFilter

#: A redirect status -> Envoy's RedirectResponseCode name; 301 is Envoy's default, left unset as Envoy Gateway does.
REDIRECT_CODES = {code: name for name, code in REDIRECT_RESPONSE_CODES.items() if code != 301}


def metadata(*resources: dict[str, str]) -> dict:
    return {"filterMetadata": {ENVOY_GATEWAY_METADATA: {"resources": list(resources)}}}


def string_match(kind: str, value: str) -> dict:
    """kind: exact, suffix or safeRegex (route.go buildXdsStringMatcher)."""
    return {"safeRegex": {"regex": value}} if kind == "safeRegex" else {kind: value}


def route_match(path_type: str | None, path_value: str, headers: list[tuple[str, str, str]],
                query_params: list[tuple[str, str, str]]) -> dict:
    """A RouteMatch (route.go buildXdsRouteMatch/buildPathMatch): Exact is ``path``; PathPrefix ``/``
    is ``prefix``; any other PathPrefix is ``pathSeparatedPrefix`` without its trailing ``/`` (so
    ``/api`` matches ``/api`` and ``/api/x``, not ``/apix``); RegularExpression is ``safeRegex``;
    no path match is ``prefix: /``. Headers and query parameters are (name, kind, value)."""
    if path_type == "Exact":
        match: dict[str, Any] = {"path": path_value}
    elif path_type == "RegularExpression":
        match = {"safeRegex": {"regex": path_value}}
    elif path_type is None or path_value == "/":
        match = {"prefix": "/"}
    else:
        match = {"pathSeparatedPrefix": path_value.rstrip("/") or "/"}
    if headers:
        match["headers"] = [{"name": name, "stringMatch": string_match(kind, value)} for name, kind, value in headers]
    if query_params:
        match["queryParameters"] = [{"name": name, "stringMatch": string_match(kind, value)} for name, kind, value in query_params]
    return match


def quote_meta(text: str) -> str:
    """Go's regexp.QuoteMeta: a backslash before each of \\.+*?()|[]{}^$."""
    return "".join("\\" + c if c in "\\.+*?()|[]{}^$" else c for c in text)


def _prefix_regex(prefix: str) -> dict:
    """Envoy Gateway's stand-in for a prefix replaced by '' or '/', which Envoy would turn into '//'
    (envoyproxy/envoy#26055; route.go prefix2RegexRewrite)."""
    return {"pattern": {"regex": "^" + quote_meta(prefix) + r"\/*"}, "substitution": "/"}


def redirect(spec: HTTPRequestRedirectFilter, prefix: str | None, listener_port: int) -> dict:
    """A RedirectAction (route.go buildXdsRedirectAction). Without a port, the Gateway API says: the
    scheme's well-known port if a scheme is set, else the listener's (route.go
    processHTTPRouteParentRefListener); 80 and 443 are left out of the Location."""
    action: dict[str, Any] = {}
    if spec.scheme:
        action["schemeRedirect"] = spec.scheme
    if spec.path and spec.path.type == "ReplaceFullPath":
        action["pathRedirect"] = spec.path.replace_full_path
    elif spec.path and spec.path.replace_prefix_match is not None:
        if prefix is not None and spec.path.replace_prefix_match in ("", "/"):
            action["regexRewrite"] = _prefix_regex(prefix)
        else:
            action["prefixRewrite"] = spec.path.replace_prefix_match
    if spec.hostname:
        action["hostRedirect"] = spec.hostname
    port = spec.port or {"http": 80, "https": 443}.get(spec.scheme or "", listener_port)
    if port not in (80, 443):
        action["portRedirect"] = port
    if spec.status_code in REDIRECT_CODES:
        action["responseCode"] = REDIRECT_CODES[spec.status_code]
    return action


def url_rewrite(spec: HTTPURLRewriteFilter, prefix: str | None) -> dict:
    """RouteAction fields of a URLRewrite (route.go buildXdsURLRewriteAction): a full path is a
    regexRewrite of ``^/.*$``; a prefix a ``prefixRewrite`` (trailing '/' dropped) or, for '' and
    '/', the regex stand-in; a hostname a ``hostRewriteLiteral`` that appends x-forwarded-host."""
    action: dict[str, Any] = {}
    if spec.path and spec.path.type == "ReplaceFullPath":
        action["regexRewrite"] = {"pattern": {"regex": "^/.*$"}, "substitution": spec.path.replace_full_path}
    elif spec.path and spec.path.replace_prefix_match is not None:
        replacement = spec.path.replace_prefix_match
        if prefix is not None and replacement in ("", "/"):
            action["regexRewrite"] = _prefix_regex(prefix)
        else:
            action["prefixRewrite"] = replacement.removesuffix("/")
    if spec.hostname:
        action["hostRewriteLiteral"] = spec.hostname
        action["appendXForwardedHost"] = True
    return action


def headers_to_add(spec: HTTPHeaderFilter) -> list[dict]:
    """HeaderValueOptions of ``add`` (appended: APPEND_IF_EXISTS_OR_ADD, Envoy's default, left
    unset) then ``set`` (OVERWRITE_IF_EXISTS_OR_ADD); a name already added is not set again
    (Envoy Gateway v1.9.0 filters.go processRequestHeaderModifierFilter)."""
    options: list[dict] = []
    names: set[str] = set()
    for header, overwrite in [*((h, False) for h in spec.add), *((h, True) for h in spec.set)]:
        if header.name.lower() in names:
            continue
        names.add(header.name.lower())
        option: dict[str, Any] = {"header": {"key": header.name, "value": header.value}}
        if overwrite:
            option["appendAction"] = "OVERWRITE_IF_EXISTS_OR_ADD"
        options.append(option)
    return options


def mirror_policy(cluster_name: str, percent: float | None) -> dict:
    """A RequestMirrorPolicy (route.go buildXdsRequestMirrorPolicies): 100 percent when the filter
    gives no share, else the share in millionths (internal/utils/fractionalpercent FromFloat32)."""
    default = {"numerator": 100} if percent is None else {"numerator": int(float32(float32(percent) * 10_000)), "denominator": "MILLION"}
    return {"cluster": cluster_name, "runtimeFraction": {"defaultValue": default}, "disableShadowHostSuffixAppend": True}


def float32(value: float) -> float:
    """``value`` rounded to a float32, as Envoy Gateway (Go) computes mirror shares."""
    return struct.unpack("f", struct.pack("f", value))[0]


def cluster(name: str, route_kind: str, route_namespace: str, route_name: str) -> dict:
    """An EDS cluster whose localities (one per backendRef) are weighted (cluster.go)."""
    return {
        "name": name, "type": "EDS", "connectTimeout": "10s",
        "edsClusterConfig": {"edsConfig": {"ads": {}, "resourceApiVersion": "V3"}, "serviceName": name},
        "loadBalancingPolicy": {"policies": [{"typedExtensionConfig": {
            "name": "envoy.load_balancing_policies.least_request",
            "typedConfig": {"@type": "type.googleapis.com/envoy.extensions.load_balancing_policies.least_request.v3.LeastRequest",
                            "localityLbConfig": {"localityWeightedLbConfig": {}}}}}]},
        "metadata": metadata({"kind": route_kind, "name": route_name, "namespace": route_namespace}),
    }


def load_assignment(name: str, localities: list[tuple[str, str, str, int, int, str]]) -> dict:
    """A ClusterLoadAssignment; a locality per backendRef: (region, namespace, service, port, weight,
    address), its weight the backendRef's and its metadata naming the Service and port."""
    return {
        "clusterName": name,
        "endpoints": [{
            "locality": {"region": region},
            "loadBalancingWeight": weight,
            "lbEndpoints": [{"endpoint": {"address": {"socketAddress": {"address": address, "portValue": port}}}, "loadBalancingWeight": 1}],
            "metadata": metadata({"kind": "Service", "name": service, "namespace": namespace, "sectionName": str(port)}),
        } for region, namespace, service, port, weight, address in localities],
    }


def _connection_manager(route_config: str, port: int) -> dict:
    return {"name": "envoy.filters.network.http_connection_manager", "typedConfig": {
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        "statPrefix": f"http-{port}",
        "rds": {"configSource": {"ads": {}, "resourceApiVersion": "V3"}, "routeConfigName": route_config},
        "httpFilters": [{"name": "envoy.filters.http.router",
                         "typedConfig": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}],
        "normalizePath": True, "mergeSlashes": True, "pathWithEscapedSlashesAction": "UNESCAPE_AND_REDIRECT"}}


def listener(name: str, port: int, plain: str | None, secured: list[tuple[str, list[str]]]) -> dict:
    """A Listener on 0.0.0.0:``port``: HTTP routes in the default filter chain (route configuration
    ``plain``), each HTTPS listener in a filter chain chosen by SNI (``secured``: route configuration
    name, server names; none: any name) (listener.go). Envoy Gateway binds ports below 1024 at
    port + 10000 so its Envoy needs no privilege (listener.go servicePortToContainerPort); meshlab
    keeps the Gateway's port."""
    found: dict[str, Any] = {"name": name, "address": {"socketAddress": {"address": "0.0.0.0", "portValue": port}}}
    if plain is not None:
        found["defaultFilterChain"] = {"name": plain, "filters": [_connection_manager(plain, port)]}
    if secured:
        found["filterChains"] = [{
            "name": route_config,
            **({"filterChainMatch": {"serverNames": server_names}} if server_names else {}),
            "filters": [_connection_manager(route_config, port)],
            "transportSocket": {"name": "envoy.transport_sockets.tls", "typedConfig": {
                "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext"}},
        } for route_config, server_names in secured]
    return found
