"""meshlab's Gateway API translation against Envoy Gateway's own (``egctl experimental translate``,
v1.9.0, built by the upstream stage), on the corpus of tests/gateway_corpus.py: the chapter's route
sets, the Gateway API's documented examples and seeded generated ones, with requests sampled from
each.

For every request, meshlab's answer is ``meshlab.gateway.match`` on meshlab's translation (in
Envoy Gateway's route order, ``precedence.ENVOY_GATEWAY``); Envoy Gateway's is Envoy's route
matching (``meshlab.gateway.envoy``, tested on its own in tests/test_gateway_envoy.py) run on the
route configuration and load assignments egctl printed for that Gateway's port. They must agree on
what a client would see: the Services and their shares, the share answered with an error because a
backend could not be resolved, a redirect, a direct response, or nothing (and whether for want of
a virtual host or of a route). Where egctl reports a condition of one of the Gateway API's types,
meshlab must report the same status, and the same reason where egctl's is one of the API's; and
the routes attached to each listener must be as many.

The Gateway API's own order and Envoy Gateway's differ (meshlab.gateway.precedence says where); the
corpus must show requests they answer differently, or it would not tell them apart."""

from __future__ import annotations

import re
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from gateway_corpus import RouteSet, corpus
from upstream_programs import program_path

from meshlab.gateway import Translation, translate
from meshlab.gateway import load as load_resources
from meshlab.gateway.envoy import select
from meshlab.gateway.precedence import ENVOY_GATEWAY, SPEC
from meshlab.upstream import gatewayapi
from meshlab.upstream.egctl import TranslateError, xds_of
from meshlab.upstream.egctl import translate as egctl_translate
from meshlab.upstream.egctl_compare import envoy_answer, meshlab_answer, route_config_for

pytestmark = pytest.mark.upstream

SHOWN = 12  # disagreements printed in a failure


def shadows(earlier: dict, later: dict) -> bool:
    """Whether an earlier route match takes every request a later one would (plainly: a catch-all
    prefix or the same path, asking no header or query parameter the later one does not)."""
    def asked(match: dict, key: str) -> set[str]:
        return {repr(sorted(matcher.items())) for matcher in match.get(key, [])}

    def path(match: dict) -> dict:
        return {key: match[key] for key in ("prefix", "path", "pathSeparatedPrefix", "safeRegex") if key in match}

    return (asked(earlier, "headers") <= asked(later, "headers") and asked(earlier, "queryParameters") <= asked(later, "queryParameters")
            and (earlier.get("prefix") == "/" or path(earlier) == path(later)))


@dataclass(frozen=True)
class Terms:
    """The condition types and reasons the Gateway API itself defines (an implementation may add its own)."""

    types: frozenset[str]
    reasons: frozenset[str]


def gateway_api_terms(module: Path) -> Terms:
    """Read from the module's Go source (apis/v1: GatewayClass, Gateway, Listener and Route conditions)."""
    source = "".join(path.read_text() for path in sorted((module / "apis" / "v1").glob("*_types.go")))
    said = {kind: frozenset(re.findall(rf'\b(?:GatewayClass|Gateway|Listener|Route)Condition{kind}\s*=\s*"(\w+)"', source))
            for kind in ("Type", "Reason")}
    return Terms(said["Type"], said["Reason"])


@dataclass
class Agreement:
    """The whole corpus compared: what each side refused, what was compared, every disagreement."""

    terms: Terms
    sets: Counter = field(default_factory=Counter)  # route sets compared, by source
    compared: Counter = field(default_factory=Counter)  # requests compared, by source
    outcomes: Counter = field(default_factory=Counter)  # Envoy Gateway's outcomes
    conditions: int = 0  # status conditions compared
    egctl_refused: dict[str, str] = field(default_factory=dict)
    meshlab_refused: dict[str, str] = field(default_factory=dict)
    answers: list[str] = field(default_factory=list)
    statuses: list[str] = field(default_factory=list)
    spec_differs: list[str] = field(default_factory=list)  # requests the Gateway API's order answers otherwise
    routes: Counter = field(default_factory=Counter)  # Envoy Gateway's routes: hit, shadowed (unreachable) or missed
    missed: list[str] = field(default_factory=list)

    def compare(self, route_set: RouteSet, output: dict) -> None:
        try:
            resources = load_resources(route_set.text)
            translation, spec_order = translate(resources, precedence=ENVOY_GATEWAY), translate(resources, precedence=SPEC)
        except ValueError as error:
            self.meshlab_refused[route_set.name] = str(error)
            return
        self.sets[route_set.source] += 1
        hit = self._answers(route_set, output, translation, spec_order)
        self._coverage(route_set.name, output, hit)
        self._statuses(route_set.name, output, translation)

    def _answers(self, route_set: RouteSet, output: dict, translation: Translation, spec_order: Translation) -> set[str]:
        """Each probe answered by both; the names of Envoy Gateway's routes the probes reached."""
        hit: set[str] = set()
        for probe in route_set.probes:
            xds = xds_of(output, probe.gateway) if probe.gateway in output.get("xds", {}) else {"routes": [], "endpoints": []}
            route_config = route_config_for(xds["routes"], list(route_set.documents), probe)
            theirs, ours = envoy_answer(route_config, xds["endpoints"], probe.request), meshlab_answer(translation, probe)
            picked = select(route_config, probe.request).route if route_config else None
            hit |= {picked["name"]} if picked else set()
            self.compared[route_set.source] += 1
            self.outcomes[theirs.outcome] += 1
            if ours != theirs:
                self.answers.append(f"{route_set.name}: {probe}\n    Envoy Gateway: {theirs}\n    meshlab:       {ours}")
            spec = meshlab_answer(spec_order, probe)
            if spec != ours:
                self.spec_differs.append(f"{route_set.name}: {probe}\n    Envoy Gateway's order: {ours}\n    the API's order:       {spec}")
        return hit

    def _coverage(self, name: str, output: dict, hit: set[str]) -> None:
        for gateway in output.get("xds", {}):
            for route_config in xds_of(output, gateway)["routes"]:
                for virtual_host in route_config.get("virtualHosts", []):
                    routes = virtual_host.get("routes", [])
                    for i, route in enumerate(routes):
                        if route["name"] in hit:
                            self.routes["hit"] += 1
                        elif any(shadows(earlier["match"], route["match"]) for earlier in routes[:i]):
                            self.routes["shadowed"] += 1
                        else:
                            self.routes["missed"] += 1
                            self.missed.append(f"{name}: {route['name']} {route['match']}")

    def _statuses(self, name: str, output: dict, translation: Translation) -> None:
        """Every object egctl reports a status of: the GatewayClass, Gateways and their listeners, each route parent."""
        for gateway_class in [output["gatewayClass"]] if output.get("gatewayClass") else []:
            self._status(name, gateway_class.get("status", {}), translation, "GatewayClass", "", gateway_class["metadata"]["name"])
        for gateway in output.get("gateways", []):
            namespace, gateway_name = gateway["metadata"]["namespace"], gateway["metadata"]["name"]
            self._status(name, gateway.get("status", {}), translation, "Gateway", namespace, gateway_name)
            for listener in gateway.get("status", {}).get("listeners", []):
                self._status(name, listener, translation, "Gateway", namespace, gateway_name, listener=listener["name"])
        for kind, key in (("HTTPRoute", "httpRoutes"), ("GRPCRoute", "grpcRoutes")):
            for route in output.get(key, []):
                namespace, route_name = route["metadata"]["namespace"], route["metadata"]["name"]
                for parent in route.get("status", {}).get("parents", []):
                    ref = parent["parentRef"]
                    section = f"/{ref['sectionName']}" if ref.get("sectionName") else ""
                    self._status(name, parent, translation, kind, namespace, route_name,
                                 parent=f"{ref.get('namespace', namespace)}/{ref['name']}{section}")

    def _status(self, name: str, theirs: dict, translation: Translation, kind: str, namespace: str, resource: str,
                parent: str | None = None, listener: str | None = None) -> None:
        """One object's conditions of the Gateway API's types: the same status, and reason where
        egctl's is the API's; for a listener, as many attached routes."""
        where = f"{name}: {kind} {namespace}/{resource}" + (f" parent {parent}" if parent else "") + (f" listener {listener}" if listener else "")
        said = {c["type"]: (c["status"], c["reason"]) for c in theirs.get("conditions", []) if c["type"] in self.terms.types}
        found = [s for s in translation.statuses if (s.kind, s.namespace, s.name, s.parent, s.listener) == (kind, namespace, resource, parent, listener)]
        if not found:
            self.statuses.append(f"{where}: Envoy Gateway reports {sorted(said.items())}, meshlab no status")
            return
        ours = {c.type: (c.status, c.reason) for c in found[0].conditions}
        for condition, (status, reason) in sorted(said.items()):
            self.conditions += 1
            mine = ours.get(condition)
            if mine is None or mine[0] != status or reason in self.terms.reasons and mine[1] != reason:
                self.statuses.append(f"{where} {condition}: Envoy Gateway {(status, reason)}, meshlab {mine}")
        if listener is not None and theirs.get("attachedRoutes") != found[0].attached_routes:
            self.statuses.append(f"{where}: attachedRoutes Envoy Gateway {theirs.get('attachedRoutes')}, meshlab {found[0].attached_routes}")


@pytest.fixture(scope="module")
def agreement() -> Agreement:
    egctl = program_path("egctl")
    module = gatewayapi.module()
    route_sets = corpus(module / "examples")

    def translated(route_set: RouteSet) -> dict | str:
        try:
            return egctl_translate(egctl, route_set.text, to="gateway-api,xds", add_missing_resources=False)
        except TranslateError as error:
            return str(error)

    with ThreadPoolExecutor(2) as pool:  # egctl takes about 0.6 s a route set on one core; the machines have two
        outputs = list(pool.map(translated, route_sets))
    found = Agreement(gateway_api_terms(module))
    for route_set, output in zip(route_sets, outputs):
        if isinstance(output, str):
            found.egctl_refused[route_set.name] = output
        else:
            found.compare(route_set, output)
    return found


def test_the_corpus_is_broad_and_each_source_is_in_it(agreement):
    refused = [name for name in agreement.egctl_refused if not name.startswith("examples/")]
    assert not refused, f"egctl refused route sets written for it: {refused}"
    sets, requests = agreement.sets, sum(agreement.compared.values())
    assert sum(sets.values()) + len(agreement.meshlab_refused) >= 60, sets
    assert sets["chapter"] >= 5 and sets["example"] >= 30 and sets["generated"] >= 30, sets
    assert requests >= 2000 and agreement.conditions >= 300, (requests, agreement.conditions)
    outcomes = agreement.outcomes
    assert min(outcomes[kind] for kind in ("backends", "redirect", "direct response", "no virtual host", "no route")) >= 50, outcomes
    # the requests reach the routes Envoy Gateway wrote, all but a few of those an earlier route does not plainly shadow
    missed = agreement.missed
    assert len(missed) <= 0.02 * sum(agreement.routes.values()), "\n".join(missed)


def test_the_corpus_tells_the_gateway_apis_route_order_from_envoy_gateways(agreement):
    differing = len(agreement.spec_differs)
    assert differing, "no request is answered differently under the Gateway API's order and Envoy Gateway's"


def test_meshlab_accepts_every_route_set_envoy_gateway_accepts(agreement):
    refused = "\n".join(f"{name}: {why}" for name, why in agreement.meshlab_refused.items())
    assert not refused, refused


def test_meshlab_answers_every_request_as_envoy_gateway_does(agreement):
    differing, requests = agreement.answers, sum(agreement.compared.values())
    assert not differing, f"{len(differing)} of {requests} requests differ; the first:\n" + "\n".join(differing[:SHOWN])


def test_status_conditions_agree_where_envoy_gateway_reports_them(agreement):
    differing = agreement.statuses
    assert not differing, f"{len(differing)} of {agreement.conditions} conditions differ; the first:\n" + "\n".join(differing[:SHOWN])
