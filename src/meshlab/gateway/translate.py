"""Gateway API resources -> the Envoy configuration a gateway proxy needs, and every status.

The translation follows Envoy Gateway v1.9.0's (internal/gatewayapi route.go, filters.go; its IR to
xDS in internal/xds/translator), so its output can be read beside ``egctl experimental translate``:

* each route rule's matches become Envoy routes, one per match and per hostname the listener serves,
  in the virtual host of that hostname, ordered by ``meshlab.gateway.precedence`` (the Gateway
  API's order by default);
* a rule's backendRefs become one cluster (``<kind>/<ns>/<name>/rule/<i>``) whose localities, one per
  backendRef, carry the backendRefs' weights; a weight 0 backendRef is left out; when some of a
  rule's backendRefs are invalid (not found, not permitted, not a Service), the route splits by
  ``weightedClusters`` between a cluster per valid backendRef and ``invalid-backend-cluster``, which
  does not exist, so that share is answered 500, as the spec asks (httproute_types.go,
  HTTPRouteRule.BackendRefs); when none is valid, or none has weight, the route answers 500 itself;
* filters: RequestHeaderModifier and ResponseHeaderModifier as headers to add and remove,
  RequestRedirect as a redirect (its port derived from the scheme or the listener), URLRewrite as
  prefix, regex and host rewrites, RequestMirror as mirror policies to a cluster of their own; a
  filter that cannot be honoured (a mirror to an invalid backend, a header Envoy cannot modify, an
  ExtensionRef meshlab has no extension for) makes the rule answer 500;
* a rule whose regular expression RE2 refuses is dropped (Accepted=False or PartiallyInvalid);
* one Envoy listener per Gateway port; HTTP listeners of a port share one route configuration
  (named after the first), each HTTPS listener has its own, chosen by SNI.

Whether a Service a backendRef names exists: ``add_missing_resources`` as egctl's flag of that name
(None: only when the input declares no Service at all; see ``meshlab.gateway.refs``).

    Translation   listeners, route configurations, clusters, load assignments, statuses, notes
    translate     Resources -> Translation
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import re2

from meshlab.gateway import attach, status, xds
from meshlab.gateway.attach import GatewayState, ListenerState
from meshlab.gateway.hostnames import specificity
from meshlab.gateway.precedence import PRECEDENCES, SPEC, MatchFacts, sort_key
from meshlab.gateway.refs import Resolved, Unresolved, resolve
from meshlab.gateway.resources import (GRPCRoute, GRPCRouteRule, HTTPHeaderFilter, HTTPRequestMirrorFilter,
                                       HTTPRequestRedirectFilter, HTTPRoute, HTTPRouteRule, Resources)
from meshlab.gateway.status import Condition, Status

#: The weighted cluster Envoy Gateway names for invalid backendRefs' share; it never exists.
INVALID_BACKEND_CLUSTER = "invalid-backend-cluster"
#: gRPC service and method patterns of a RegularExpression GRPCMethodMatch missing one half (Envoy Gateway v1.9.0 route.go).
GRPC_SERVICE_RE = r"(?i)\.?[a-z_][a-z_0-9]*(\.[a-z_][a-z_0-9]*)*"
GRPC_METHOD_RE = r"[A-Za-z_][A-Za-z_0-9]*"
#: A header value Envoy Gateway accepts in a header modifier (filters.go HeaderValueRegexp, RFC 7230).
HEADER_VALUE = re.compile(r"^[!-~]+([\t ]?[!-~]+)*$")
_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False


@dataclass(frozen=True)
class Translation:
    """The Envoy configuration (protojson dicts, as egctl prints them) and the statuses."""

    listeners: list[dict]
    route_configs: list[dict]
    clusters: list[dict]
    endpoints: list[dict]
    statuses: list[Status]
    notes: tuple[str, ...] = ()
    precedence: str = SPEC

    def status_of(self, kind: str, namespace: str, name: str, parent: str | None = None, listener: str | None = None) -> tuple[Condition, ...]:
        """The conditions of one object, route parent (``ns/gateway[/section]``) or Gateway listener."""
        for found in self.statuses:
            if (found.kind, found.namespace, found.name, found.parent, found.listener) == (kind, namespace, name, parent, listener):
                return found.conditions
        known = [f"parent={s.parent}" if s.parent else f"listener={s.listener}" if s.listener else "the object itself"
                 for s in self.statuses if (s.kind, s.namespace, s.name) == (kind, namespace, name)]
        raise KeyError(f"no status for {kind} {namespace}/{name} parent={parent} listener={listener}; "
                       f"statuses of it: {', '.join(known) or 'none (is the object in the input?)'}")

    def route_config(self, name: str) -> dict:
        for config in self.route_configs:
            if config["name"] == name:
                return config
        raise KeyError(f"no route configuration {name}; there are: {', '.join(c['name'] for c in self.route_configs)}")


@dataclass
class _Rule:
    """What one rule does, whichever listener carries it."""

    index: int
    matches: list[tuple[dict, MatchFacts]]  # Envoy RouteMatch, precedence facts
    extra: dict[str, Any]  # header modifications, a route's own fields
    action: str  # route, redirect or direct
    route_action: dict[str, Any] = field(default_factory=dict)
    redirect: HTTPRequestRedirectFilter | None = None
    prefix: str | None = None  # the PathPrefix of a lone prefix match (for prefix rewrites)
    #: the clusters and load assignments the rule's routes name, written once a listener carries them
    clusters: dict[str, tuple[dict, dict]] = field(default_factory=dict)


@dataclass
class _Problems:
    """A route's problems for its parents' conditions: by condition type, (reason, message)."""

    accepted: list[tuple[str, str]] = field(default_factory=list)
    resolved: list[tuple[str, str]] = field(default_factory=list)
    dropped: set[int] = field(default_factory=set)


class _Translator:
    def __init__(self, resources: Resources, order: str, add_missing: bool) -> None:
        if order not in PRECEDENCES:
            raise ValueError(f"precedence {order!r} is not one of {', '.join(PRECEDENCES)}")
        self.resources, self.order, self.add_missing = resources, order, add_missing
        self.gateways: list[GatewayState] = attach.gateways(resources)
        self.siblings = {id(state): gateway.listeners for gateway in self.gateways for state in gateway.listeners}
        self.entries: dict[int, list[tuple[str, MatchFacts, dict]]] = {}  # id(ListenerState) -> (host, facts, route)
        self.clusters: dict[str, dict] = {}
        self.endpoints: dict[str, dict] = {}
        self.route_statuses: list[Status] = []
        self.assumed: dict[str, None] = {}

    # --- routes ------------------------------------------------------------------------------------

    def add_routes(self) -> None:
        for route in sorted(self.resources.http_routes, key=lambda r: r.age):
            self.add_route(route)
        for route in sorted(self.resources.grpc_routes, key=lambda r: r.age):
            self.add_route(route)

    def add_route(self, route: HTTPRoute | GRPCRoute) -> None:
        problems = _Problems()
        rules = [built for i, rule in enumerate(route.spec.rules) if (built := self.rule(route, i, rule, problems)) is not None]
        resolved = (status.merged(status.RESOLVED_REFS, problems.resolved) if problems.resolved else
                    Condition(status.RESOLVED_REFS, "True", status.RESOLVED_REFS, "Resolved all the Object references for the Route"))
        for ref in route.spec.parent_refs:
            parent = f"{ref.namespace or route.namespace}/{ref.name}" + (f"/{ref.section_name}" if ref.section_name else "") + (
                f":{ref.port}" if ref.port else "")
            listeners = attach.parent_listeners(ref, route.kind, route.namespace, self.gateways, self.resources)
            if isinstance(listeners, Condition):
                self.route_statuses.append(Status(route.kind, route.namespace, route.name, (listeners, resolved), parent=parent))
                continue
            accepted = self.attach(route, rules, listeners)
            conditions = [accepted, resolved]
            if accepted.status == "True" and problems.accepted:
                if len(problems.dropped) == len(route.spec.rules):
                    conditions[0] = status.merged(status.ACCEPTED, problems.accepted)
                else:
                    partial = status.merged(status.PARTIALLY_INVALID, problems.accepted)
                    conditions.append(Condition(status.PARTIALLY_INVALID, "True", partial.reason,
                                                f"Dropped Rule(s) {sorted(problems.dropped)}: {partial.message}"))
            self.route_statuses.append(Status(route.kind, route.namespace, route.name, tuple(conditions), parent=parent))

    def attach(self, route: HTTPRoute | GRPCRoute, rules: list[_Rule], listeners: list[ListenerState]) -> Condition:
        """Put the rules' routes on each listener that serves one of the route's hostnames."""
        intersected = False
        for state in listeners:
            hosts = attach.served_hosts(state, route.spec.hostnames, self.siblings[id(state)])
            if not hosts:
                continue
            intersected = True
            state.attached_routes += 1
            if not state.programmed:
                continue
            table = self.entries.setdefault(id(state), [])
            for rule in rules:
                for name, (cluster, assignment) in rule.clusters.items():
                    self.clusters[name], self.endpoints[name] = cluster, assignment
            for host in hosts:
                for rule in rules:
                    for match, facts in rule.matches:
                        table.append((host, facts, self.envoy_route(route, rule, match, facts, host, state)))
        if not intersected:
            return Condition(status.ACCEPTED, "False", status.NO_MATCHING_LISTENER_HOSTNAME,
                             "There were no hostname intersections between the Route and this parent ref's Listener(s).")
        return Condition(status.ACCEPTED, "True", status.ACCEPTED, "Route is accepted")

    def envoy_route(self, route: HTTPRoute | GRPCRoute, rule: _Rule, match: dict, facts: MatchFacts, host: str,
                    state: ListenerState) -> dict:
        envoy: dict[str, Any] = {
            "name": f"{route.kind.lower()}/{route.namespace}/{route.name}/rule/{rule.index}/match/{facts.match}/{host.replace('.', '_')}",
            "match": match,
            "metadata": xds.metadata({"kind": route.kind, "name": route.name, "namespace": route.namespace}),
            **rule.extra,
        }
        if rule.action == "direct":
            envoy["directResponse"] = {"status": 500}
        elif rule.action == "redirect":
            assert rule.redirect is not None
            envoy["redirect"] = xds.redirect(rule.redirect, rule.prefix, state.listener.port)
        else:
            envoy["route"] = dict(rule.route_action)
        return envoy

    # --- rules -------------------------------------------------------------------------------------

    def rule(self, route: HTTPRoute | GRPCRoute, index: int, rule: HTTPRouteRule | GRPCRouteRule, problems: _Problems) -> _Rule | None:
        base = f"{route.kind.lower()}/{route.namespace}/{route.name}/rule/{index}"
        try:
            matches = self.http_matches(route, index, rule) if isinstance(rule, HTTPRouteRule) else self.grpc_matches(route, index, rule)
        except ValueError as error:
            problems.accepted.append((status.UNSUPPORTED_VALUE, f"Failed to process route rule {index}: {error}."))
            problems.dropped.add(index)
            return None
        built = _Rule(index, matches, {}, "route")
        failed = self.filters(route, base, index, rule, built, problems)
        valid: list[tuple[int, Resolved]] = []
        invalid_weight = 0
        for j, ref in enumerate(rule.backend_refs):
            found = resolve(ref, ref.weight, route.kind, route.namespace, self.resources, self.add_missing)
            if isinstance(found, Unresolved):
                problems.resolved.append((found.reason, f"Failed to process route rule {index} backendRef {j}: {found.message}"))
                invalid_weight += ref.weight
            elif found.weight > 0:
                self.note_assumed(found)
                valid.append((j, found))
        if failed or (built.action != "redirect" and not valid):
            built.action = "direct"
        elif built.action == "route":
            self.backends(route, base, valid, invalid_weight, built)
        return built

    def note_assumed(self, found: Resolved) -> None:
        if self.resources.service(found.namespace, found.name) is None:
            self.assumed[f"{found.namespace}/{found.name}"] = None

    def backends(self, route: HTTPRoute | GRPCRoute, base: str, valid: list[tuple[int, Resolved]], invalid_weight: int, rule: _Rule) -> None:
        """One cluster of weighted localities, or a cluster per backendRef beside the invalid share."""
        def localities(refs: list[tuple[int, Resolved]]) -> list[tuple[str, str, str, int, int, str]]:
            return [(f"{base}/backend/{j}", r.namespace, r.name, r.port, r.weight, r.address) for j, r in refs]

        if invalid_weight:
            entries = [{"name": INVALID_BACKEND_CLUSTER, "weight": invalid_weight}]
            for j, found in valid:
                name = f"{base}/backend/{j}"
                self.add_cluster(rule, name, route, localities([(j, found)]))
                entries.append({"name": name, "weight": found.weight})
            rule.route_action = {"clusterNotFoundResponseCode": "INTERNAL_SERVER_ERROR", "weightedClusters": {"clusters": entries},
                                 **rule.route_action}
        else:
            self.add_cluster(rule, base, route, localities(valid))
            rule.route_action = {"cluster": base, **rule.route_action}
        if isinstance(route, HTTPRoute):
            rule.route_action["upgradeConfigs"] = [{"upgradeType": "websocket"}]

    @staticmethod
    def add_cluster(rule: _Rule, name: str, route: HTTPRoute | GRPCRoute, localities: list[tuple[str, str, str, int, int, str]]) -> None:
        rule.clusters[name] = (xds.cluster(name, route.kind, route.namespace, route.name), xds.load_assignment(name, localities))

    def http_matches(self, route: HTTPRoute, index: int, rule: HTTPRouteRule) -> list[tuple[dict, MatchFacts]]:
        """One Envoy match per HTTPRouteMatch; ``matches: []`` matches everything (match -1, as Envoy Gateway names it)."""
        if not rule.matches:
            return [(xds.route_match(None, "/", [], []), MatchFacts(route.kind, route.namespace, route.name,
                                                                    route.metadata.creation_timestamp, index, -1))]
        found = []
        for j, match in enumerate(rule.matches):
            headers = [_matcher(h.name, h.type, h.value) for h in match.headers]
            if match.method:
                headers.append((":method", "exact", match.method))
            query = [_matcher(q.name, q.type, q.value) for q in match.query_params]
            path = match.path
            envoy = xds.route_match(path.type, _regex(path.value) if path.type == "RegularExpression" else path.value, headers, query)
            found.append((envoy, MatchFacts(
                route.kind, route.namespace, route.name, route.metadata.creation_timestamp, index, j, path.type, path.value,
                match.method is not None, len(match.headers), sum(h.type == "Exact" for h in match.headers),
                len(match.query_params), sum(q.type == "Exact" for q in match.query_params))))
        return found

    def grpc_matches(self, route: GRPCRoute, index: int, rule: GRPCRouteRule) -> list[tuple[dict, MatchFacts]]:
        """gRPC matches as Envoy Gateway writes them (route.go processGRPCRouteMethodExact/RegularExpression):
        service and method an exact path ``/<service>/<method>``, service alone a prefix ``/<service>``,
        method alone a ``:path`` suffix ``/<method>``; as regular expressions, a safeRegex path."""
        found = []
        for j, match in enumerate(rule.matches or [None]):  # type: ignore[list-item]
            headers = [_matcher(h.name, h.type, h.value) for h in (match.headers if match else ())]
            method = match.method if match else None
            path_type: str | None = None
            value, suffix = "/", False
            if method and method.type == "Exact":
                if method.service and method.method:
                    path_type, value = "Exact", f"/{method.service}/{method.method}"
                elif method.method:
                    headers.append((":path", "suffix", f"/{method.method}"))
                    suffix = True
                else:
                    path_type, value = "PathPrefix", f"/{method.service}"
            elif method:
                path_type, value = "RegularExpression", _regex(f"/{method.service or GRPC_SERVICE_RE}/{method.method or GRPC_METHOD_RE}")
            grpc_headers = match.headers if match else ()
            found.append((xds.route_match(path_type, value, headers, []), MatchFacts(
                route.kind, route.namespace, route.name, route.metadata.creation_timestamp, index, j if match else -1,
                path_type or "PathPrefix", value, False, len(grpc_headers), sum(h.type == "Exact" for h in grpc_headers),
                grpc_service=(method.service or "") if method else "", grpc_method=(method.method or "") if method else "",
                path_suffix=suffix)))
        return found

    # --- filters -----------------------------------------------------------------------------------

    def filters(self, route: HTTPRoute | GRPCRoute, base: str, index: int, rule: HTTPRouteRule | GRPCRouteRule, built: _Rule,
                problems: _Problems) -> bool:
        """Apply the rule's filters to ``built``; True when one failed and the rule must answer 500
        (Envoy Gateway v1.9.0 filters.go ProcessHTTPFilters)."""
        failed = False
        mirrors: list[dict] = []
        if rule.matches and len(rule.matches) == 1 and isinstance(rule, HTTPRouteRule) and rule.matches[0].path.type == "PathPrefix":
            built.prefix = rule.matches[0].path.value
        for k, spec in enumerate(rule.filters):
            if spec.type == "RequestHeaderModifier" and spec.request_header_modifier:
                failed |= self.header_filter(spec.request_header_modifier, "request", built, index, problems)
            elif spec.type == "ResponseHeaderModifier" and spec.response_header_modifier:
                failed |= self.header_filter(spec.response_header_modifier, "response", built, index, problems)
            elif spec.type == "RequestMirror" and spec.request_mirror:
                resolved, policy = self.mirror(route, built, f"{base}-mirror-{k}", spec.request_mirror, problems)
                failed |= not resolved
                mirrors += [policy] if policy else []
            elif spec.type == "RequestRedirect":
                built.action, built.redirect = "redirect", getattr(spec, "request_redirect")
            elif spec.type == "URLRewrite":
                built.route_action.update(xds.url_rewrite(getattr(spec, "url_rewrite"), built.prefix))
            elif spec.type == "ExtensionRef" and spec.extension_ref:
                ref = spec.extension_ref
                problems.accepted.append((status.UNSUPPORTED_VALUE, f"invalid filter ExtensionRef: unknown kind {ref.group}/{ref.kind}"))
                problems.dropped.add(index)
                return True
        if mirrors and built.action == "redirect":
            problems.accepted.append((status.INCOMPATIBLE_FILTERS, "RequestMirror filter cannot be used when the rule also configures a RequestRedirect filter"))
            problems.dropped.add(index)
            return True
        if mirrors:
            built.route_action["requestMirrorPolicies"] = mirrors
        return failed

    def header_filter(self, spec: HTTPHeaderFilter, direction: str, built: _Rule, index: int, problems: _Problems) -> bool:
        """Headers to add and remove; a header Envoy cannot modify (Host, pseudo-headers) or an invalid
        value fails the filter (filters.go processRequestHeaderModifierFilter)."""
        label = "RequestHeaderModifier" if direction == "request" else "ResponseHeaderModifier"
        errors = []
        for header in (*spec.add, *spec.set):
            if not _modifiable(header.name):
                errors.append(f"Header: {header.name!r}. The {label} filter cannot add or set the Host header or headers with a '/' or ':' character in them.")
            elif not HEADER_VALUE.match(header.value):
                errors.append(f"Header: {header.name!r}. {label} Filter cannot add or set a header with an invalid value.")
        for name in spec.remove:
            if not _modifiable(name):
                errors.append(f"Header: {name!r}. The {label} filter cannot remove the Host header or headers with a '/' or ':' character in them.")
        if errors:
            problems.accepted.append((status.UNSUPPORTED_VALUE, "\n".join(errors)))
            problems.dropped.add(index)
            return True
        added = xds.headers_to_add(spec)
        if added:
            built.extra[f"{direction}HeadersToAdd"] = added
        if spec.remove:
            built.extra[f"{direction}HeadersToRemove"] = list(dict.fromkeys(spec.remove))
        return False

    def mirror(self, route: HTTPRoute | GRPCRoute, built: _Rule, name: str, spec: HTTPRequestMirrorFilter,
               problems: _Problems) -> tuple[bool, dict | None]:
        """(resolved, mirror policy): a mirror of share 0 has a cluster and no policy (route.go mirrorPercentByPolicy)."""
        found = resolve(spec.backend_ref, 1, route.kind, route.namespace, self.resources, self.add_missing)
        if isinstance(found, Unresolved):
            problems.resolved.append((found.reason, f"Failed to validate the RequestMirror filter: {found.message}"))
            return False, None
        self.note_assumed(found)
        self.add_cluster(built, name, route, [(f"{name}/backend/-1", found.namespace, found.name, found.port, 1, found.address)])
        if spec.fraction is not None:
            percent: float | None = xds.float32(xds.float32(100 * spec.fraction.numerator) / spec.fraction.denominator)
        else:
            percent = None if spec.percent is None else float(spec.percent)
        return True, None if percent == 0 else xds.mirror_policy(name, percent)

    # --- assembly ----------------------------------------------------------------------------------

    def envoy_listeners(self) -> tuple[list[dict], list[dict]]:
        """An Envoy listener per Gateway port, and the route configurations its filter chains read."""
        listeners, route_configs = [], []
        for gateway in self.gateways:
            ports: dict[int, list[ListenerState]] = {}
            for state in gateway.listeners:
                if state.programmed and state.listener.protocol in ("HTTP", "HTTPS"):
                    ports.setdefault(state.listener.port, []).append(state)
            for port, states in ports.items():
                plain = [s for s in states if s.listener.protocol == "HTTP"]
                secured = [s for s in states if s.listener.protocol == "HTTPS"]
                if plain:
                    route_configs.append(self.route_configuration(plain[0].name, plain))
                for state in secured:
                    route_configs.append(self.route_configuration(state.name, [state]))
                listeners.append(xds.listener(states[0].name, port, plain[0].name if plain else None,
                                              [(s.name, [s.listener.hostname] if s.listener.hostname else []) for s in secured]))
        return listeners, route_configs

    def route_configuration(self, name: str, states: list[ListenerState]) -> dict:
        """Virtual hosts by hostname; a hostname two listeners of the port serve goes to the more
        specific listener (an exact name before a wildcard, before none), one domain per virtual host
        as Envoy requires."""
        chosen: dict[str, ListenerState] = {}
        for state in sorted(states, key=lambda s: specificity(s.listener.hostname)):
            for host, _, _ in self.entries.get(id(state), []):
                chosen.setdefault(host, state)
        entries = [(host, facts, route, state) for state in states for host, facts, route in self.entries.get(id(state), [])
                   if chosen[host] is state]
        entries.sort(key=lambda entry: sort_key(entry[1], self.order))
        hosts: dict[str, dict] = {}
        for host, _, route, state in entries:
            virtual_host = hosts.setdefault(host, {"name": f"{state.name}/{host.replace('.', '_')}", "domains": [host], "routes": []})
            virtual_host["routes"].append(route)
        return {"name": name, "ignorePortInHostMatching": True, "virtualHosts": list(hosts.values())}

    def statuses(self) -> list[Status]:
        return attach.statuses(self.gateways, self.resources) + self.route_statuses


def _modifiable(name: str) -> bool:
    """Envoy does not let a filter modify pseudo-headers or Host (filters.go isModifiableHeader)."""
    return "/" not in name and ":" not in name and name.lower() != "host"


def _matcher(name: str, kind: str, value: str) -> tuple[str, str, str]:
    """A header or query parameter match as (name, Envoy string matcher kind, value)."""
    return (name, "exact", value) if kind == "Exact" else (name, "safeRegex", _regex(value))


def _regex(pattern: str) -> str:
    """``pattern`` if RE2 (Envoy's engine; Go's regexp, which Envoy Gateway checks with, shares its
    syntax) compiles it; otherwise a ValueError in Envoy Gateway's words."""
    try:
        re2.compile(pattern, _RE2_OPTIONS)
    except re2.error as error:
        message = error.args[0].decode() if error.args and isinstance(error.args[0], bytes) else str(error)
        raise ValueError(f"regex {pattern!r} is invalid: {message}") from None
    return pattern


def translate(resources: Resources, *, precedence: str = SPEC, add_missing_resources: bool | None = None) -> Translation:
    """The Envoy configuration and statuses for ``resources``; ``precedence`` orders routes
    (``meshlab.gateway.precedence``: SPEC or ENVOY_GATEWAY)."""
    add_missing = not resources.services if add_missing_resources is None else add_missing_resources
    translator = _Translator(resources, precedence, add_missing)
    translator.add_routes()
    listeners, route_configs = translator.envoy_listeners()
    notes = list(resources.notes) + [f"Service {name} is not in the input and was taken to exist (as egctl --add-missing-resources)"
                                     for name in translator.assumed]
    return Translation(listeners, route_configs, list(translator.clusters.values()), list(translator.endpoints.values()),
                       translator.statuses(), tuple(notes), precedence)
