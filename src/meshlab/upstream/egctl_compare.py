"""meshlab's Gateway API translation beside Envoy Gateway's, request by request.

Both answers come from Envoy's configuration read the same way: meshlab's is ``meshlab.gateway.match``
on meshlab's translation; Envoy Gateway's is Envoy's route matching (``meshlab.gateway.envoy``) run on
the route configuration and load assignments ``egctl experimental translate`` printed for the
Gateway's port. What is compared is what a client would see: the Services and their shares, the share
answered with an error because a backend could not be resolved, a redirect, a direct response, or
nothing (and whether for want of a virtual host or of a route). Since one reader serves both sides,
a difference is a difference of configuration, which is the point.

meshlab translates in Envoy Gateway's route order here (``precedence.ENVOY_GATEWAY``): where Envoy
Gateway departs from the Gateway API's order (``meshlab.gateway.precedence`` says where), the question
asked is whether meshlab writes what Envoy Gateway writes.

    Probe          one request sent to one Gateway's port
    Answer         what a client would see for it, whoever decided
    envoy_answer   Envoy's answer from a RouteConfiguration and the ClusterLoadAssignments
    meshlab_answer meshlab's answer from its translation
    route_config_for  the RouteConfiguration egctl wrote for a probe's Gateway and port
    Comparison     probes compared, and the differences in words
    compare        a route set's probes through both translators
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction

import yaml

from meshlab.gateway import Translation, load, match, translate
from meshlab.gateway.envoy import Backend, Request, backends_of, cluster_not_found, select
from meshlab.gateway.match import redirect_location
from meshlab.gateway.precedence import ENVOY_GATEWAY
from meshlab.upstream.egctl import translate as egctl_translate
from meshlab.upstream.egctl import xds_of


@dataclass(frozen=True)
class Probe:
    """``request`` sent to the Gateway ``gateway`` ("namespace/name") on ``port``."""

    gateway: str
    port: int
    request: Request

    def __str__(self) -> str:
        return f"{self.request} (gateway {self.gateway}, port {self.port})"


@dataclass(frozen=True)
class Answer:
    """What a client would see for one request, whoever decided it."""

    outcome: str  # backends, redirect, direct response, no virtual host, no route
    backends: frozenset[tuple[str, str, int, Fraction]] = frozenset()  # namespace, name, port, share of the routed weight
    unavailable: tuple[int, Fraction] | None = None  # (status, share) answered for backendRefs that could not be resolved
    redirect: tuple[tuple[str, object], ...] | None = None
    status: int | None = None

    def __str__(self) -> str:
        if self.outcome == "backends":
            shown = ", ".join(f"{ns}/{name}:{port} {share}" for ns, name, port, share in sorted(self.backends))
            return shown + (f"; {self.unavailable[1]} answered {self.unavailable[0]}" if self.unavailable else "")
        if self.outcome == "redirect":
            return "redirect " + ", ".join(f"{k}={v}" for k, v in self.redirect or ())
        return f"direct response {self.status}" if self.outcome == "direct response" else self.outcome


def _nothing(reason: str) -> Answer:
    """No route: for want of a route in a virtual host that took the host, or of anything taking the host."""
    return Answer("no route" if reason.startswith("no route matched") else "no virtual host")


def _backends(backends: tuple[Backend, ...], unavailable: tuple[int, Fraction] | None) -> Answer:
    total = sum(b.weight for b in backends)
    return Answer("backends", frozenset((b.namespace, b.name, b.port, Fraction(b.weight, total)) for b in backends), unavailable)


def _redirect(redirect: dict) -> Answer:
    return Answer("redirect", redirect=tuple(sorted(redirect.items())))


def envoy_answer(route_config: dict | None, endpoints: list[dict], request: Request) -> Answer:
    """Envoy's answer from a RouteConfiguration and the ClusterLoadAssignments. A redirect is read by
    meshlab's ``redirect_location`` (the listeners compared are plain HTTP): like ``select``, one
    reader of Envoy's configuration for both sides."""
    if route_config is None:
        return Answer("no virtual host")
    picked = select(route_config, request)
    if picked.route is None:
        return _nothing(picked.reason)
    route = picked.route
    if "redirect" in route:
        return _redirect(redirect_location(route, request, "http"))
    if "directResponse" in route:
        return Answer("direct response", status=route["directResponse"]["status"])
    status, share = cluster_not_found(route, endpoints)
    if share == 1:
        return Answer("direct response", status=status)
    return _backends(backends_of(route, endpoints), (status, share) if share else None)


def meshlab_answer(translation: Translation, probe: Probe) -> Answer:
    decision = match(translation, probe.request, port=probe.port, gateway=probe.gateway)
    if decision.route is None:
        return _nothing(decision.reason)
    if decision.redirect is not None:
        return _redirect(decision.redirect)
    if decision.direct_response is not None:
        return Answer("direct response", status=decision.direct_response)
    return _backends(decision.backends, decision.unavailable)


def _namespace_of(document: dict) -> str:
    return document["metadata"].get("namespace", "default")


def route_config_for(route_configs: list[dict], documents: list[dict], probe: Probe) -> dict | None:
    """The RouteConfiguration serving ``probe``'s port: named after one of the Gateway's listeners on
    that port ("<gw ns>/<gw name>/<listener>", as Envoy Gateway names it)."""
    names = {f"{probe.gateway}/{listener['name']}" for d in documents if d.get("kind") == "Gateway"
             and f"{_namespace_of(d)}/{d['metadata']['name']}" == probe.gateway
             for listener in d["spec"]["listeners"] if listener["port"] == probe.port}
    found = [r for r in route_configs if r["name"] in names]
    if len(found) > 1:
        raise ValueError(f"{len(found)} route configurations for {probe}: {[r['name'] for r in found]}")
    return found[0] if found else None


@dataclass
class Comparison:
    """A route set's probes answered by meshlab and by Envoy Gateway."""

    compared: int = 0
    differences: list[str] = field(default_factory=list)

    @property
    def agreed(self) -> bool:
        return self.compared > 0 and not self.differences

    def __str__(self) -> str:
        if self.agreed:
            return f"{self.compared} requests, the same answer from both"
        return f"{len(self.differences)} of {self.compared} requests differ; the first: {self.differences[0] if self.differences else 'none compared'}"


def compare(egctl: str, text: str, probes: list[Probe]) -> Comparison:
    """Translate ``text`` with egctl (only the Services it declares exist, as in a cluster) and with
    meshlab, and answer every probe from both."""
    output = egctl_translate(egctl, text, add_missing_resources=False)
    translation = translate(load(text), precedence=ENVOY_GATEWAY, add_missing_resources=False)
    documents = [d for d in yaml.safe_load_all(text) if d]
    found = Comparison()
    for probe in probes:
        xds = xds_of(output, probe.gateway) if probe.gateway in output.get("xds", {}) else {"routes": [], "endpoints": []}
        theirs = envoy_answer(route_config_for(xds["routes"], documents, probe), xds["endpoints"], probe.request)
        ours = meshlab_answer(translation, probe)
        found.compared += 1
        if ours != theirs:
            found.differences.append(f"{probe}: Envoy Gateway {theirs}; meshlab {ours}")
    return found
