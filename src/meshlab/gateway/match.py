"""Which backend answers a request: Envoy's own route matching run on the translated configuration.

``match`` finds the Envoy listener on the port, its filter chain (HTTPS by SNI, taken to be the
request's host), the route configuration that chain reads, and then asks the Envoy route evaluator
(``meshlab.gateway.envoy.select``, the same function that reads egctl's output) which virtual host
and route answer. The route's action is read as Envoy would act on it: a direct response, a
redirect (``redirect_location``), or clusters whose localities name the Services and weights
(``envoy.backends_of``); the share sent to a cluster that does not exist (Envoy Gateway's
``invalid-backend-cluster``) is answered with the route's clusterNotFoundResponseCode.

    Decision            what happens to a request: backends with weights, or a redirect, or a status, and why
    match               Translation + Request + port -> Decision
    redirect_location   an Envoy RedirectAction applied to a request: scheme, hostname, port, path, statusCode
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from meshlab.gateway import envoy
from meshlab.gateway.envoy import Backend, Request
from meshlab.gateway.translate import Translation

#: The route fields and route-action fields that change a request on its way (returned in Decision.filters).
ROUTE_FILTER_FIELDS = ("requestHeadersToAdd", "requestHeadersToRemove", "responseHeadersToAdd", "responseHeadersToRemove")
ACTION_FILTER_FIELDS = ("prefixRewrite", "regexRewrite", "hostRewriteLiteral", "appendXForwardedHost", "requestMirrorPolicies")


@dataclass(frozen=True)
class Decision:
    """What the gateway does with ``request``. ``route`` is ``<ns>/<name>/rule/<i>`` of the rule that
    matched (None: no route, Envoy answers 404, ``reason`` says why). Exactly one of ``backends``,
    ``redirect`` and ``direct_response`` says the outcome; ``unavailable`` is (status, share) when a
    share of the rule's weight belongs to backendRefs that could not be resolved and is answered
    with that status instead. ``filters`` are the route's header changes, rewrites and mirrors, in
    Envoy's field names."""

    request: Request
    backends: tuple[Backend, ...] = ()
    route: str | None = None
    redirect: dict | None = None
    direct_response: int | None = None
    filters: dict[str, Any] = field(default_factory=dict)
    reason: str = ""
    unavailable: tuple[int, Fraction] | None = None
    #: the path prefix the request matched (a PathPrefix rule's), which a URLRewrite's ReplacePrefixMatch replaces
    matched_prefix: str | None = None

    @property
    def location(self) -> str | None:
        """The Location header of a redirect: the scheme's well-known port is left out."""
        if self.redirect is None:
            return None
        r = self.redirect
        port = "" if r["port"] == {"http": 80, "https": 443}.get(r["scheme"]) else f":{r['port']}"
        return f"{r['scheme']}://{r['hostname']}{port}{r['path']}"

    @property
    def answer(self) -> str:
        """What the gateway does, in one line: the rule and its backends (with their shares), its
        redirect or direct response, or 404 and why."""
        if self.route is None:
            return f"404, {self.reason}"
        if self.redirect is not None:
            return f"{self.route}: redirect {self.redirect['statusCode']} to {self.location}"
        if self.direct_response is not None:
            return f"{self.route}: direct response {self.direct_response}"
        total = sum(b.weight for b in self.backends)
        shares = ", ".join(f"{b.namespace}/{b.name}:{b.port}" + (f" {b.weight}/{total}" if len(self.backends) > 1 else "") for b in self.backends)
        failing = f"; {self.unavailable[1]} of requests answered {self.unavailable[0]}" if self.unavailable else ""
        return f"{self.route}: {shares}{failing}"

    def __str__(self) -> str:
        return f"{self.request} -> {self.answer}"


def match(translation: Translation, request: Request, port: int, gateway: str | None = None) -> Decision:
    """The Decision for ``request`` arriving on ``port`` of ``gateway`` (``ns/name``; needed only
    when several Gateways listen on that port)."""
    candidates = [listener for listener in translation.listeners if listener["address"]["socketAddress"]["portValue"] == port
                  and (gateway is None or listener["name"].startswith(f"{gateway}/"))]
    if not candidates:
        ports = sorted({listener["address"]["socketAddress"]["portValue"] for listener in translation.listeners})
        return Decision(request, reason=f"no listener on port {port}" + (f" of Gateway {gateway}" if gateway else "")
                        + f"; listening: {', '.join(map(str, ports)) or 'nothing'}")
    if len(candidates) > 1:
        names = ", ".join("/".join(c["name"].split("/")[:2]) for c in candidates)
        raise ValueError(f"several Gateways listen on port {port} ({names}); name one with gateway='<namespace>/<name>'")
    chain = _filter_chain(candidates[0], _hostname(request.host))
    if chain is None:
        return Decision(request, reason=f"no filter chain of listener {candidates[0]['name']} serves server name {_hostname(request.host)}")
    manager = chain["filters"][0]["typedConfig"]
    selected = envoy.select(translation.route_config(manager["rds"]["routeConfigName"]), request)
    route = selected.route
    if route is None:
        return Decision(request, reason=selected.reason)
    rule = _rule_of(route)
    filters = {key: route[key] for key in ROUTE_FILTER_FIELDS if key in route}
    filters.update({key: route["route"][key] for key in ACTION_FILTER_FIELDS if key in route.get("route", {})})
    if "directResponse" in route:
        return Decision(request, route=rule, direct_response=int(route["directResponse"]["status"]), filters=filters, reason=selected.reason)
    if "redirect" in route:
        scheme = "https" if "transportSocket" in chain else "http"
        return Decision(request, route=rule, redirect=redirect_location(route, request, scheme), filters=filters, reason=selected.reason)
    code, share = envoy.cluster_not_found(route, translation.endpoints)
    if share == 1:
        return Decision(request, route=rule, direct_response=code, filters=filters, reason=selected.reason)
    prefix = route["match"].get("pathSeparatedPrefix", route["match"].get("prefix"))
    return Decision(request, backends=envoy.backends_of(route, translation.endpoints), route=rule, filters=filters,
                    reason=selected.reason, unavailable=(code, share) if share else None, matched_prefix=prefix)


def _hostname(host: str) -> str:
    return envoy.strip_port(host).lower()


def _filter_chain(listener: dict, server_name: str) -> dict | None:
    """Envoy's filter chain choice by SNI (listener_components.proto FilterChainMatch.server_names):
    an exact name, then the longest matching wildcard, then a chain without names, then the default chain."""
    chains = listener.get("filterChains", [])
    exact = [c for c in chains if server_name in c.get("filterChainMatch", {}).get("serverNames", [])]
    wildcards = [(len(name), c) for c in chains for name in c.get("filterChainMatch", {}).get("serverNames", [])
                 if name.startswith("*.") and server_name.endswith(name[1:])]
    unnamed = [c for c in chains if not c.get("filterChainMatch", {}).get("serverNames")]
    if exact:
        return exact[0]
    if wildcards:
        return max(wildcards, key=lambda pair: pair[0])[1]
    return unnamed[0] if unnamed else listener.get("defaultFilterChain")


def _rule_of(route: dict) -> str:
    """``<ns>/<name>/rule/<i>`` from a route named ``<kind>/<ns>/<name>/rule/<i>/match/<j>/<host>``."""
    parts = route.get("name", "").split("/")
    return "/".join(parts[1:5]) if len(parts) >= 5 and parts[3] == "rule" else route.get("name", "(unnamed)")


def redirect_location(route: dict, request: Request, scheme: str) -> dict:
    """Where a route's RedirectAction sends ``request`` (route_components.proto RedirectAction): the
    scheme, host and port swapped where the action says (the port otherwise the scheme's
    well-known one, as the Gateway API derives it: Envoy Gateway leaves 80 and 443 out); the path
    replaced whole, or its matched prefix replaced, or rewritten by regex; the query kept."""
    action = route["redirect"]
    scheme = action.get("schemeRedirect", scheme)
    path, _, query = request.path.partition("?")
    if "pathRedirect" in action:
        path = action["pathRedirect"]
    elif "prefixRewrite" in action:
        match = route["match"]
        prefix = match.get("pathSeparatedPrefix", match.get("prefix", ""))
        path = action["prefixRewrite"] + path[len(prefix):]
    elif "regexRewrite" in action:
        rewrite = action["regexRewrite"]
        path = re.sub(rewrite["pattern"]["regex"], rewrite["substitution"], path)  # RE2's \1 groups read the same in Python
    if query and "?" not in path and not action.get("stripQuery"):
        path = f"{path}?{query}"
    return {"scheme": scheme, "hostname": action.get("hostRedirect", _hostname(request.host)),
            "port": int(action.get("portRedirect", {"http": 80, "https": 443}[scheme])), "path": path,
            "statusCode": envoy.REDIRECT_RESPONSE_CODES[action.get("responseCode", "MOVED_PERMANENTLY")]}
