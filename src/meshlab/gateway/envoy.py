"""Envoy's route matching, as a function: given a RouteConfiguration (protojson, camelCase, as
``egctl`` prints it and as ``meshlab.gateway.translate`` builds it) and a request, which virtual
host and which route answer, and which Services the route's clusters stand for.

Envoy picks in two steps (source/common/router/config_impl.cc, RouteMatcher::findVirtualHost and
VirtualHostImpl::getRouteFromEntries): first one virtual host by the request's :authority, then the
first of that host's routes, in order, whose match holds. Nothing here is a ranking: whoever wrote
the configuration (Envoy Gateway, meshlab's translator) already put the routes in order, so the
same evaluator reads either one.

A route's ``route.cluster`` or ``route.weightedClusters`` name clusters; each cluster's
ClusterLoadAssignment holds one locality per backendRef, whose metadata names the Service
(``filterMetadata["envoy-gateway"].resources``, as Envoy Gateway v1.9.0 writes it) and whose
``loadBalancingWeight`` is the backendRef's weight. ``backends_of`` follows that chain back to the
Services.

What is evaluated, and only that: :authority, :path (query and fragment stripped for path
matching), :method and other headers, query parameters. Matchers that need more (runtime fractions,
cookies, TLS, metadata, gRPC content type, CONNECT) are refused with an error that names them,
rather than silently ignored. Path normalisation (``normalizePath``, ``mergeSlashes``) belongs to
the HTTP connection manager, before routing: a Request's path is taken as already normalised.

    Request             a request as Envoy's router sees it: host, path, method, headers
    Backend             a Service port behind a route, with its relative weight
    Selected            the virtual host and route Envoy picks, or why none
    EnvoyConfigError    a configuration this evaluator cannot read; says what it accepts
    select              RouteConfiguration + Request -> Selected
    backends_of         route + ClusterLoadAssignments -> the Backends and their weights
    cluster_not_found   the share of a route's weight sent to clusters that do not exist, and its status
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from re import _constants as sre_constants  # type: ignore[attr-defined]
from re import _parser as sre_parse  # type: ignore[attr-defined]
from urllib.parse import unquote

#: Envoy Gateway's metadata namespace, under which a locality names the Service of its backendRef
#: (Envoy Gateway v1.9.0 internal/xds/translator/metadata.go, envoyGatewayXdsMetadataNamespace).
ENVOY_GATEWAY_METADATA = "envoy-gateway"
#: RedirectAction.RedirectResponseCode (route_components.proto): its names and their statuses;
#: MOVED_PERMANENTLY (301) when unset.
REDIRECT_RESPONSE_CODES = {"MOVED_PERMANENTLY": 301, "FOUND": 302, "SEE_OTHER": 303, "TEMPORARY_REDIRECT": 307, "PERMANENT_REDIRECT": 308}

#: RouteMatch fields evaluated here (envoy/config/route/v3/route_components.proto, RouteMatch).
PATH_SPECIFIERS = ("prefix", "path", "safeRegex", "pathSeparatedPrefix")
ROUTE_MATCH_FIELDS = (*PATH_SPECIFIERS, "caseSensitive", "headers", "queryParameters")
STRING_MATCH_KINDS = ("exact", "prefix", "suffix", "contains", "safeRegex")

#: A request method is an HTTP token (RFC 9110 section 9.1 and 5.6.2: tchar).
METHOD_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")

#: Status codes of RouteAction.ClusterNotFoundResponseCode (route_components.proto); Envoy's default is 503.
CLUSTER_NOT_FOUND_STATUS = {"SERVICE_UNAVAILABLE": 503, "NOT_FOUND": 404, "INTERNAL_SERVER_ERROR": 500}


class EnvoyConfigError(ValueError):
    """A route configuration, route or load assignment this evaluator cannot read: the message names
    the field and what is accepted."""


@dataclass(frozen=True)
class Request:
    """One HTTP request as Envoy's router sees it. ``host`` is the :authority (Host) header, port
    included if the client sent one; ``path`` is the :path, query string included. Header names are
    case-insensitive (kept lower-case); one value per name: a header line holding ``a,b`` is one
    value ``a,b`` to Envoy's matchers too (Envoy 1.39 changelog, ``match_headers_individually``)."""

    host: str
    path: str = "/"
    method: str = "GET"
    headers: Mapping[str, str] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        if not isinstance(self.host, str) or not self.host or any(c.isspace() for c in self.host):
            raise ValueError(f"Request host must be a non-empty host[:port] without spaces, got {self.host!r}")
        if not isinstance(self.path, str) or not self.path.startswith("/"):
            raise ValueError(f"Request path must start with '/' (an origin-form :path such as /api?q=1), got {self.path!r}")
        if not isinstance(self.method, str) or not METHOD_TOKEN.fullmatch(self.method):
            raise ValueError(f"Request method must be a method token such as GET or POST, got {self.method!r}")
        headers: dict[str, str] = {}
        for name, value in dict(self.headers).items():
            if not isinstance(name, str) or not name or not isinstance(value, str):
                raise ValueError(f"Request headers map a name to one string value, got {name!r}: {value!r}")
            if name.lower() in headers:
                raise ValueError(f"Request header {name.lower()!r} given twice (names are case-insensitive); give one value")
            headers[name.lower()] = value
        object.__setattr__(self, "headers", headers)

    def header(self, name: str) -> str | None:
        """The value Envoy's header matchers see for ``name``: :authority, :path and :method are
        pseudo-headers (Host is :authority in Envoy)."""
        name = name.lower()
        pseudo = {":authority": self.host, "host": self.host, ":path": self.path, ":method": self.method}
        return pseudo[name] if name in pseudo else self.headers.get(name)

    def __str__(self) -> str:
        extra = "".join(f" {name}={value}" for name, value in sorted(self.headers.items()))
        return f"{self.method} {self.host}{self.path}{extra}"


@dataclass(frozen=True)
class Backend:
    """A Service port a route sends to; ``weight`` is relative to the other Backends of the same
    route (their ratios are the shares Envoy sends)."""

    namespace: str
    name: str
    port: int
    weight: int

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}:{self.port} weight {self.weight}"


@dataclass(frozen=True)
class Selected:
    """What Envoy's router picks for a request: the virtual host and the route (protojson dicts),
    or None, and in ``reason`` the why, in words."""

    virtual_host: dict | None
    route: dict | None
    reason: str


def select(route_config: dict, request: Request) -> Selected:
    """The virtual host and route Envoy picks for ``request`` in ``route_config``."""
    virtual_host = _virtual_host(route_config, request.host)
    if virtual_host is None:
        return Selected(None, None, f"no virtual host for host {request.host}")
    for route in _list(virtual_host, "routes", "virtual host", required=False):
        if _route_matches(_dict(route, "match", "route"), request):
            return Selected(virtual_host, route, f"route {route.get('name', '(unnamed)')} of virtual host {virtual_host.get('name', '(unnamed)')}")
    return Selected(virtual_host, None, f"no route matched path {request.path}")


# --- virtual hosts ---------------------------------------------------------------------------------


def _virtual_host(route_config: dict, host: str) -> dict | None:
    """Envoy's domain search order (route_components.proto, VirtualHost.domains): exact, then the
    longest suffix wildcard (``*.foo.com``, ``*-bar.foo.com``), then the longest prefix wildcard
    (``foo.*``), then ``*``. A wildcard never matches the empty string. Host and domains compare
    lower-case. The port stays part of the host unless the RouteConfiguration sets
    ``ignorePortInHostMatching`` (route.proto; Envoy Gateway v1.9.0 sets it on every route
    configuration, internal/xds/translator/translator.go), so without it a domain must name the
    port, as Istio's ``host:port`` domains do."""
    if not isinstance(route_config, dict):
        raise EnvoyConfigError(f"a RouteConfiguration must be a mapping (protojson), got {type(route_config).__name__}")
    exact: dict[str, dict] = {}
    suffixes: dict[str, dict] = {}
    prefixes: dict[str, dict] = {}
    default: dict | None = None
    # protojson leaves out empty lists: a listener no route attached to has a RouteConfiguration without virtualHosts.
    for virtual_host in _list(route_config, "virtualHosts", f"RouteConfiguration {route_config.get('name', '(unnamed)')}", required=False):
        for domain in _list(virtual_host, "domains", f"virtual host {virtual_host.get('name', '(unnamed)')}"):
            domain = str(domain).lower()
            if domain == "*":
                table, key = None, "*"
            elif domain.startswith("*"):
                table, key = suffixes, domain[1:]
            elif domain.endswith("*"):
                table, key = prefixes, domain[:-1]
            else:
                table, key = exact, domain
            taken = default is not None if table is None else key in table
            if taken:
                # Envoy refuses such a configuration at load ("Only unique values for domains are permitted").
                raise EnvoyConfigError(f"domain {domain!r} appears twice in RouteConfiguration {route_config.get('name', '(unnamed)')}; "
                                       "Envoy accepts each domain (and '*') in one virtual host only")
            if table is None:
                default = virtual_host
            else:
                table[key] = virtual_host
    if not (exact or suffixes or prefixes):
        return default  # Envoy's fast path: only '*' (or nothing) to choose from
    host = host.lower()
    if route_config.get("ignorePortInHostMatching"):
        host = strip_port(host)
    if host in exact:
        return exact[host]
    for table, fits in ((suffixes, host.endswith), (prefixes, host.startswith)):
        wildcards = [key for key in table if len(key) < len(host) and fits(key)]
        if wildcards:
            return table[max(wildcards, key=len)]
    return default


def strip_port(host: str) -> str:
    """The host without its port, as Envoy's HeaderUtility::getPortStart finds it: the last ':' unless
    it is inside an IPv6 literal's brackets."""
    colon = host.rfind(":")
    if colon == -1 or host.rfind("]") > colon:
        return host
    return host[:colon]


# --- routes ----------------------------------------------------------------------------------------


def _route_matches(match: dict, request: Request) -> bool:
    """RouteEntryImplBase::matchRoute's checks that apply here (headers, then query parameters), then
    the path specifier; all must hold."""
    unknown = sorted(set(match) - set(ROUTE_MATCH_FIELDS))
    if unknown:
        raise EnvoyConfigError(f"route match field(s) {', '.join(unknown)} are not evaluated here; "
                               f"accepted: {', '.join(ROUTE_MATCH_FIELDS)}")
    specifiers = [key for key in PATH_SPECIFIERS if key in match]
    if len(specifiers) != 1:
        raise EnvoyConfigError(f"a route match needs exactly one path specifier of {', '.join(PATH_SPECIFIERS)}, got {specifiers or 'none'}")
    headers_hold = all(_header_matches(matcher, request) for matcher in _list(match, "headers", "route match", required=False))
    if not headers_hold or not _query_matches(_list(match, "queryParameters", "route match", required=False), request.path):
        return False
    return _path_matches(match, specifiers[0], request.path)


def _path_matches(match: dict, specifier: str, path: str) -> bool:
    """Prefix, exact and path-separated prefix compare the path without query string and fragment,
    case-sensitively unless ``caseSensitive: false``; safeRegex must match the whole of that path and
    ignores caseSensitive (route_components.proto, RouteMatch; Envoy's PathMatcher strips the query
    and fragment for every kind)."""
    value = match[specifier]
    path = _without_query(path)
    if specifier == "safeRegex":
        return _regex(_regex_text(value, "safeRegex")).fullmatch(path) is not None
    if not isinstance(value, str):
        raise EnvoyConfigError(f"route match {specifier} must be a string, got {value!r}")
    if match.get("caseSensitive", True) is False:
        value, path = value.lower(), path.lower()
    if specifier == "path":
        return path == value
    if specifier == "prefix":
        return path.startswith(value)
    # pathSeparatedPrefix: the prefix exactly, or followed by '/' (never "/apix" for "/api").
    return path.startswith(value) and (len(path) == len(value) or path[len(value)] == "/")


def _without_query(path: str) -> str:
    return re.split(r"[?#]", path, maxsplit=1)[0]


def _header_matches(matcher: dict, request: Request) -> bool:
    """Envoy's HeaderMatcher (source/common/http/header_utility.cc, matchHeaders): with no specifier
    it is a presence check; ``invertMatch`` flips the result of a present header; an absent header
    matches only ``presentMatch: false`` (or, inverted, ``presentMatch: true``), whatever the
    string match or inversion; ``treatMissingHeaderAsEmpty`` reads an absent header as ''."""
    accepted = ("name", "stringMatch", "presentMatch", "invertMatch", "treatMissingHeaderAsEmpty")
    unknown = sorted(set(matcher) - set(accepted))
    if unknown or "name" not in matcher:
        raise EnvoyConfigError(f"header matcher {matcher!r}: needs a name; fields evaluated here are {', '.join(accepted)}"
                               + (f" (not {', '.join(unknown)})" if unknown else ""))
    if "stringMatch" in matcher and "presentMatch" in matcher:
        raise EnvoyConfigError(f"header matcher {matcher['name']!r}: stringMatch and presentMatch are one of (a oneof), not both")
    value = request.header(matcher["name"])
    if value is None and matcher.get("treatMissingHeaderAsEmpty"):
        value = ""
    present = matcher.get("presentMatch", True) if "stringMatch" not in matcher else None
    invert = bool(matcher.get("invertMatch", False))
    if value is None:
        return present is not None and present == invert
    found = present if present is not None else _string_matches(matcher["stringMatch"], value, f"header {matcher['name']!r}")
    return found != invert


def _query_matches(matchers: list, path: str) -> bool:
    """Envoy's QueryParameterMatcher (source/common/router/config_utility.cc): the first value of a
    repeated parameter counts; ``presentMatch`` asks presence (or, false, absence); a string match
    fails on an absent parameter. Parameters are percent-decoded first (parseAndDecodeQueryString)."""
    if not matchers:
        return True
    params = _query_parameters(path)
    for matcher in matchers:
        if not isinstance(matcher, dict) or "name" not in matcher or set(matcher) - {"name", "stringMatch", "presentMatch"}:
            raise EnvoyConfigError(f"query parameter matcher {matcher!r}: needs a name and one of stringMatch, presentMatch")
        value = params.get(matcher["name"])
        if "presentMatch" in matcher:
            holds = (value is not None) == bool(matcher["presentMatch"])
        elif value is None:
            holds = False
        else:
            holds = "stringMatch" not in matcher or _string_matches(matcher["stringMatch"], value, f"query parameter {matcher['name']!r}")
        if not holds:
            return False
    return True


def _query_parameters(path: str) -> dict[str, str]:
    """The query string's parameters, first value of each name, percent-decoded; a name without '='
    has the value ''."""
    query = path.partition("?")[2].partition("#")[0]
    params: dict[str, str] = {}
    for pair in query.split("&"):
        if pair:
            name, _, value = pair.partition("=")
            params.setdefault(unquote(name), unquote(value))
    return params


def _string_matches(matcher: dict, value: str, where: str) -> bool:
    """Envoy's StringMatcher (envoy/type/matcher/v3/string.proto): exact, prefix, suffix, contains
    (``ignoreCase`` folds case for these) or safeRegex (a full match; ignoreCase has no effect)."""
    kinds = [kind for kind in STRING_MATCH_KINDS if kind in matcher] if isinstance(matcher, dict) else []
    if len(kinds) != 1 or set(matcher) - {*STRING_MATCH_KINDS, "ignoreCase"}:
        raise EnvoyConfigError(f"{where}: a stringMatch holds exactly one of {', '.join(STRING_MATCH_KINDS)} "
                               f"(and optionally ignoreCase), got {matcher!r}")
    (kind,) = kinds
    if kind == "safeRegex":
        return _regex(_regex_text(matcher[kind], f"{where} safeRegex")).fullmatch(value) is not None
    wanted = matcher[kind]
    if matcher.get("ignoreCase"):
        wanted, value = wanted.lower(), value.lower()
    return {"exact": value == wanted, "prefix": value.startswith(wanted), "suffix": value.endswith(wanted), "contains": wanted in value}[kind]


# --- regular expressions ---------------------------------------------------------------------------

#: Constructs Python's re accepts and RE2 refuses (github.com/google/re2/wiki/Syntax: "NOT SUPPORTED"),
#: by the opcode Python's own parser gives them.
_NOT_RE2 = {sre_constants.ASSERT: "lookahead/lookbehind", sre_constants.ASSERT_NOT: "negative lookahead/lookbehind",
            sre_constants.GROUPREF: "a backreference", sre_constants.GROUPREF_EXISTS: "a conditional group",
            sre_constants.ATOMIC_GROUP: "an atomic group", sre_constants.POSSESSIVE_REPEAT: "a possessive quantifier"}
PYTHON_FLAGS = re.VERBOSE | re.ASCII | re.LOCALE
PYTHON_FLAGS_SAID = "the inline flags x, a or L (RE2 has i, m, s and U)"


def _regex_text(value: object, where: str) -> str:
    if not isinstance(value, dict) or not isinstance(value.get("regex"), str) or set(value) - {"regex", "googleRe2"}:
        raise EnvoyConfigError(f"{where} must be a RegexMatcher {{regex: <RE2 pattern>}}, got {value!r}")
    return value["regex"]


@functools.lru_cache(maxsize=1024)
def _regex(pattern: str) -> re.Pattern[str]:
    """An RE2 pattern compiled with Python's re, which agrees with RE2 on RE2's syntax except where
    refused here: Python-only constructs (lookaround, backreferences, conditionals, atomic groups,
    possessive quantifiers, comments, \\Z, the x/a/L flags) and RE2-only ones Python reads
    differently or not at all (POSIX classes like [[:alpha:]], \\pN, \\Q..\\E, \\z, \\C).
    \\d, \\w, \\s and \\b are ASCII, as in RE2."""
    if re.search(r"\[:\^?[a-z]+:\]", pattern):
        raise EnvoyConfigError(f"regex {pattern!r}: POSIX classes such as [[:alpha:]] are RE2's, not evaluated here; write [a-zA-Z]")
    if re.search(r"(?<!\\)\(\?#", pattern):
        raise EnvoyConfigError(f"regex {pattern!r} holds a (?#...) comment, which RE2 (Envoy's regex engine) does not support")
    try:
        parsed = sre_parse.parse(pattern)
    except re.error as error:
        raise EnvoyConfigError(f"regex {pattern!r} is not RE2 syntax this evaluator reads ({error}); "
                               "RE2-only escapes \\pN, \\Q..\\E, \\z, \\C are not supported here") from None
    construct = PYTHON_FLAGS_SAID if parsed.state.flags & PYTHON_FLAGS else _python_only(parsed)
    if construct:
        raise EnvoyConfigError(f"regex {pattern!r} uses {construct}, which RE2 (Envoy's regex engine) does not support")
    return re.compile(pattern, re.ASCII)


def _python_only(parsed: object) -> str | None:
    """The first Python-only construct in a parsed pattern, walking its nested subpatterns."""
    for op, argument in parsed:  # type: ignore[attr-defined]
        if op in _NOT_RE2:
            return _NOT_RE2[op]
        if op == sre_constants.AT and argument == sre_constants.AT_END_STRING:
            return "\\Z (RE2 writes the end of text \\z)"
        if op == sre_constants.SUBPATTERN and argument[1] & PYTHON_FLAGS:
            return PYTHON_FLAGS_SAID
        for part in argument if isinstance(argument, (tuple, list)) else ():
            children = part if isinstance(part, list) else [part]
            for child in children:
                if isinstance(child, sre_parse.SubPattern):
                    found = _python_only(child)
                    if found:
                        return found
    return None


# --- backends --------------------------------------------------------------------------------------


def backends_of(route: dict, endpoints: list[dict]) -> tuple[Backend, ...]:
    """The Services ``route`` sends to, with weights. A single ``cluster``'s Backends weigh their
    localities' ``loadBalancingWeight`` (the backendRefs' weights); a ``weightedClusters`` entry's
    weight is shared among its cluster's localities in proportion to theirs (one locality per
    cluster, as Envoy Gateway writes them, keeps the entry's weight). A Service port named twice is
    summed; were a share fractional, all weights are scaled to the smallest integers keeping the
    ratios. A redirect or direct response has no Backends, nor does a weighted entry whose cluster
    has no load assignment (see ``cluster_not_found``)."""
    shares: dict[tuple[str, str, int], Fraction] = {}
    assignments = _assignments(endpoints)
    for cluster, weight in _weighted(route):
        if cluster not in assignments or weight == 0:
            continue
        localities = [(_service_of(locality, cluster), Fraction(int(locality.get("loadBalancingWeight", 1))))
                      for locality in assignments[cluster].get("endpoints", [])]
        total = sum(share for _, share in localities)
        for service, share in localities:
            if share:
                shares[service] = shares.get(service, Fraction(0)) + (share if weight is None else weight * share / total)
    scale = math.lcm(*(share.denominator for share in shares.values())) if shares else 1
    return tuple(Backend(namespace, name, port, int(share * scale)) for (namespace, name, port), share in shares.items())


def cluster_not_found(route: dict, endpoints: list[dict]) -> tuple[int, Fraction]:
    """(status, share): the share of a route's requests sent to clusters that have no load assignment
    (Envoy Gateway names such an entry ``invalid-backend-cluster``, weighted as the backendRefs it
    could not resolve) and the status Envoy answers them with, the route's
    ``clusterNotFoundResponseCode`` (503 unless set; route_components.proto). Share 0 when every
    cluster exists, 1 for a lone missing ``cluster``."""
    action = route.get("route") or {}
    code = action.get("clusterNotFoundResponseCode", "SERVICE_UNAVAILABLE")
    if code not in CLUSTER_NOT_FOUND_STATUS:
        raise EnvoyConfigError(f"clusterNotFoundResponseCode {code!r}; accepted: {', '.join(CLUSTER_NOT_FOUND_STATUS)}")
    assignments = _assignments(endpoints)
    weighted = [(cluster, 1 if weight is None else weight) for cluster, weight in _weighted(route)]
    total = sum(weight for _, weight in weighted)
    missing = sum(weight for cluster, weight in weighted if cluster not in assignments)
    return CLUSTER_NOT_FOUND_STATUS[code], Fraction(missing, total) if total else Fraction(0)


def _weighted(route: dict) -> list[tuple[str, int | None]]:
    """(cluster, weight) of a route's action; a single cluster has no weight of its own (None)."""
    action = route.get("route")
    if action is None:
        return []
    if "cluster" in action:
        return [(action["cluster"], None)]
    if "weightedClusters" in action:
        return [(entry["name"], int(entry.get("weight", 0))) for entry in _list(action["weightedClusters"], "clusters", "weightedClusters")]
    raise EnvoyConfigError(f"route {route.get('name', '(unnamed)')}: a route action names its upstream by cluster or "
                           f"weightedClusters here, got {sorted(action)}")


def _assignments(endpoints: list[dict]) -> dict[str, dict]:
    """ClusterLoadAssignments by cluster name; egctl's ``dynamicEndpointConfigs`` entries
    (``{endpointConfig: ...}``) are unwrapped."""
    found = {}
    for entry in endpoints:
        assignment = entry.get("endpointConfig", entry)
        if "clusterName" not in assignment:
            raise EnvoyConfigError(f"a ClusterLoadAssignment needs a clusterName, got {sorted(assignment)}")
        found[assignment["clusterName"]] = assignment
    return found


def _service_of(locality: dict, cluster: str) -> tuple[str, str, int]:
    """The Service a locality stands for: Envoy Gateway's metadata names it with its port as sectionName."""
    resources = locality.get("metadata", {}).get("filterMetadata", {}).get(ENVOY_GATEWAY_METADATA, {}).get("resources", [])
    services = [r for r in resources if r.get("kind") == "Service"]
    if len(services) != 1 or not str(services[0].get("sectionName", "")).isdigit():
        raise EnvoyConfigError(f"a locality of cluster {cluster} names no Service: backends_of reads "
                               f"metadata.filterMetadata[{ENVOY_GATEWAY_METADATA!r}].resources = [{{kind: Service, name, namespace, "
                               f"sectionName: '<port>'}}], got {resources!r}")
    service = services[0]
    return service["namespace"], service["name"], int(service["sectionName"])


# --- protojson access ------------------------------------------------------------------------------


def _list(parent: dict, key: str, where: str, required: bool = True) -> list:
    value = parent.get(key) if isinstance(parent, dict) else None
    if value is None and not required:
        return []
    if not isinstance(value, list):
        raise EnvoyConfigError(f"{where}: {key} must be a list, got {value!r}")
    return value


def _dict(parent: dict, key: str, where: str) -> dict:
    value = parent.get(key) if isinstance(parent, dict) else None
    if not isinstance(value, dict):
        raise EnvoyConfigError(f"{where}: {key} must be a mapping, got {value!r}")
    return value
