"""The corpus on which meshlab's Gateway API translation is checked against Envoy Gateway's own
translator (tests/test_upstream_gateway_agreement.py): route sets, and requests sampled from each.

Three sources: the chapter's route sets (src/meshlab/data/gateway/*.yaml); the Gateway API's
documented examples, read from the module in Go's module cache, never copied; and route sets
generated from a seed to crowd the places where precedence decides (exact against prefix, longest
prefix, method, header and query counts, names breaking ties, overlapping wildcard hostnames,
several listeners with hostnames and sectionNames, cross-namespace backends with and without a
ReferenceGrant, missing backends, weights including 0, redirects).

Both translators get the same text. ``runnable`` makes a route set one that egctl can translate
offline and that means the same to both: kinds other than the Gateway API's HTTP ones go, HTTPS
listeners become HTTP on the same port (TLS is not what is compared, and their Secrets are not
here), a Gateway a route names but the set lacks is added, every Gateway's class is Envoy
Gateway's, every namespaced resource names its namespace (egctl would put a bare one in
envoy-gateway-system, kubectl in default), and a set that says nothing about Services gets one per
backendRef (what ``--add-missing-resources`` would do, written out so meshlab sees it too).
egctl's loader keeps only a resource's name, namespace and spec (internal/gatewayapi/resource/
load.go, v1.9.0), so Namespace labels are dropped (a namespace selector never matches offline, not
even on the ``kubernetes.io/metadata.name`` label a cluster gives every namespace: such a selector
is renamed, so neither translator sees it match) and a set whose routes differ in
creationTimestamp is refused: its order could not be checked.

    RouteSet        a route set: name, where it comes from, its documents and YAML, its probes
    runnable        documents -> the same route set, made runnable as above
    probes          requests sampled from a route set: each rule's matches hit, and near misses
    sample          a string a regular expression matches in full (or None)
    chapter_sets    the chapter's route sets
    example_sets    the Gateway API module's examples with HTTPRoutes or GRPCRoutes
    generated_set   one seeded route set
    corpus          all of them, with probes
"""

from __future__ import annotations

import copy
import random
import re
from dataclasses import dataclass
from pathlib import Path
from re import _constants as sre_constants  # type: ignore[attr-defined]
from re import _parser as sre_parse  # type: ignore[attr-defined]

import yaml

import meshlab
from meshlab.gateway.envoy import Request
from meshlab.upstream.egctl_compare import Probe

CHAPTER_SETS = Path(meshlab.__file__).parent / "data" / "gateway"
CONTROLLER = "gateway.envoyproxy.io/gatewayclass-controller"
GROUP = "gateway.networking.k8s.io"
ROUTE_KINDS = ("HTTPRoute", "GRPCRoute")
KINDS = ("GatewayClass", "Gateway", *ROUTE_KINDS, "ReferenceGrant", "Service", "Namespace")
CLUSTER_SCOPED = ("GatewayClass", "Namespace")
#: The label Kubernetes gives every namespace (its name), which egctl's loader does not; a selector
#: on it is renamed to one no namespace carries, for both translators.
NAME_LABEL, UNSEEN_LABEL = "kubernetes.io/metadata.name", "corpus.meshlab.io/metadata.name"
#: One creation time for every generated route: egctl cannot see creation times (see above).
CREATED = "2026-01-01T00:00:00Z"


@dataclass(frozen=True)
class RouteSet:
    name: str
    source: str
    documents: tuple[dict, ...]
    probes: tuple[Probe, ...]

    @property
    def text(self) -> str:
        return yaml.safe_dump_all(self.documents, sort_keys=False)


def kind_of(document: dict) -> str:
    return document.get("kind", "")


def namespace_of(document: dict) -> str:
    return document["metadata"].get("namespace", "default")


# --- making a route set runnable -------------------------------------------------------------------


def runnable(documents: list[dict]) -> list[dict]:
    """The route set as both translators get it (see the module's docstring)."""
    docs = [copy.deepcopy(d) for d in documents if isinstance(d, dict) and kind_of(d) in KINDS]
    for doc in docs:
        meta = doc.setdefault("metadata", {})
        if kind_of(doc) not in CLUSTER_SCOPED:
            meta.setdefault("namespace", "default")
        if kind_of(doc) == "Namespace":
            meta.pop("labels", None)
    created = {d["metadata"].get("creationTimestamp") for d in docs if kind_of(d) in ROUTE_KINDS}
    if len(created) > 1:
        raise ValueError(f"routes created at different times {sorted(map(str, created))}: egctl's loader drops creationTimestamp, "
                         "so their order cannot be checked against it; give them one time")
    for gateway in (d for d in docs if kind_of(d) == "Gateway"):
        listeners = [{k: v for k, v in listener.items() if k != "tls"} | {"protocol": "HTTP"}
                     for listener in gateway["spec"].get("listeners", []) if listener.get("protocol") in ("HTTP", "HTTPS")]
        gateway["spec"]["listeners"] = listeners
        for listener in listeners:
            selector = listener.get("allowedRoutes", {}).get("namespaces", {}).get("selector", {})
            if NAME_LABEL in selector.get("matchLabels", {}):
                selector["matchLabels"][UNSEEN_LABEL] = selector["matchLabels"].pop(NAME_LABEL)
    docs += _missing_gateways(docs)
    classes = sorted({d["spec"]["gatewayClassName"] for d in docs if kind_of(d) == "Gateway"})
    docs = [d for d in docs if kind_of(d) != "GatewayClass"]
    docs[:0] = [{"apiVersion": f"{GROUP}/v1", "kind": "GatewayClass", "metadata": {"name": name}, "spec": {"controllerName": CONTROLLER}}
                for name in classes]
    if not any(kind_of(d) == "Service" for d in docs):
        docs += _services(docs)
    return docs


def _missing_gateways(docs: list[dict]) -> list[dict]:
    """A Gateway for each one routes name that the set lacks (a route with no parentRefs gets one
    to ``corpus``): an HTTP listener ``http`` on 80, and one per other sectionName named, on 8000 up,
    open to routes from all namespaces."""
    present = {(namespace_of(d), d["metadata"]["name"]) for d in docs if kind_of(d) == "Gateway"}
    wanted: dict[tuple[str, str], set[str]] = {}
    for route in (d for d in docs if kind_of(d) in ROUTE_KINDS):
        spec = route.setdefault("spec", {})
        if not spec.get("parentRefs"):
            spec["parentRefs"] = [{"name": "corpus"}]
        for ref in spec["parentRefs"]:
            if ref.get("kind", "Gateway") == "Gateway" and ref.get("group", GROUP) == GROUP:
                key = (ref.get("namespace", namespace_of(route)), ref["name"])
                if key not in present:
                    wanted.setdefault(key, set()).add(ref.get("sectionName", "http"))
    added = []
    for (namespace, name), sections in sorted(wanted.items()):
        listeners = [{"name": section, "protocol": "HTTP", "port": 80 if section == "http" else 8000 + i,
                      "allowedRoutes": {"namespaces": {"from": "All"}}}
                     for i, section in enumerate(["http", *sorted(sections - {"http"})])]
        added.append({"apiVersion": f"{GROUP}/v1", "kind": "Gateway", "metadata": {"name": name, "namespace": namespace},
                      "spec": {"gatewayClassName": "corpus", "listeners": listeners}})
    return added


def _services(docs: list[dict]) -> list[dict]:
    """A Service for every Service a backendRef names, with the ports named."""
    ports: dict[tuple[str, str], set[int]] = {}
    for route in (d for d in docs if kind_of(d) in ROUTE_KINDS):
        for rule in route["spec"].get("rules", []):
            for ref in _backend_refs(rule):
                if ref.get("kind", "Service") == "Service" and ref.get("group", "") == "" and "port" in ref:
                    ports.setdefault((ref.get("namespace", namespace_of(route)), ref["name"]), set()).add(ref["port"])
    return [{"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": namespace},
             "spec": {"clusterIP": f"10.96.{i // 250}.{i % 250 + 1}", "ports": [{"name": f"port-{p}", "port": p, "protocol": "TCP"}
                                                                               for p in sorted(service_ports)]}}
            for i, ((namespace, name), service_ports) in enumerate(sorted(ports.items()))]


def _backend_refs(rule: dict) -> list[dict]:
    mirrors = [f["requestMirror"]["backendRef"] for f in rule.get("filters", []) if f.get("type") == "RequestMirror"]
    return list(rule.get("backendRefs", [])) + mirrors


# --- requests --------------------------------------------------------------------------------------


def sample(pattern: str) -> str | None:
    """A string ``pattern`` matches in full: Python's parser walked, taking the first choice that
    fits everywhere (None if that does not match, e.g. for a negated class that excludes it)."""
    try:
        made = _sample(sre_parse.parse(pattern))
    except (re.error, ValueError):
        return None
    return made if re.fullmatch(pattern, made) else None


_CATEGORY = {sre_constants.CATEGORY_DIGIT: r"\d", sre_constants.CATEGORY_WORD: r"\w", sre_constants.CATEGORY_SPACE: r"\s",
             sre_constants.CATEGORY_NOT_DIGIT: r"\D", sre_constants.CATEGORY_NOT_WORD: r"\W", sre_constants.CATEGORY_NOT_SPACE: r"\S"}


def _sample(parsed) -> str:
    out = []
    for op, argument in parsed:
        if op == sre_constants.LITERAL:
            out.append(chr(argument))
        elif op in (sre_constants.NOT_LITERAL, sre_constants.ANY, sre_constants.IN):
            out.append(next(c for c in "a7-_/.Z" if _fits(op, argument, c)))
        elif op in (sre_constants.MAX_REPEAT, sre_constants.MIN_REPEAT):
            low, _, item = argument
            out.append(_sample(item) * max(low, 1))
        elif op == sre_constants.SUBPATTERN:
            out.append(_sample(argument[-1]))
        elif op == sre_constants.BRANCH:
            out.append(_sample(argument[1][0]))
        elif op != sre_constants.AT:
            raise ValueError(f"no sample for {op}")
    return "".join(out)


def _fits(op, argument, c: str) -> bool:
    """Whether one character ``c`` fits a parsed single-character item (., [...], [^...], a non-literal)."""
    if op == sre_constants.ANY:
        return c != "\n"
    if op == sre_constants.NOT_LITERAL:
        return ord(c) != argument
    negate = bool(argument) and argument[0][0] == sre_constants.NEGATE
    inside = any(kind == sre_constants.LITERAL and ord(c) == value or kind == sre_constants.RANGE and value[0] <= ord(c) <= value[1]
                 or kind == sre_constants.CATEGORY and re.fullmatch(_CATEGORY[value], c) is not None
                 for kind, value in argument if kind != sre_constants.NEGATE)
    return inside != negate


def probes(documents: list[dict], seed: int, extra: int = 4) -> list[Probe]:
    """Requests for a runnable route set: for every listener a route attaches to and every match of
    its rules, a request that satisfies the match for each of the route's hosts, and near misses
    (the path a character off or in another case, a header or query parameter missing or one
    character off, the other method, a host one character off); then ``extra`` random ones per
    listener. Seeded, so the same every run."""
    rng = random.Random(seed)
    gateways = {f"{namespace_of(d)}/{d['metadata']['name']}": d for d in documents if kind_of(d) == "Gateway"}
    found: dict[str, Probe] = {}

    def add(gateway: str, port: int, request: Request) -> None:
        found.setdefault(f"{gateway} {port} {request}", Probe(gateway, port, request))

    for route in (d for d in documents if kind_of(d) in ROUTE_KINDS):
        for gateway, listener in _listeners_of(route, gateways):
            hosts = _hosts(route["spec"].get("hostnames", []), listener.get("hostname"))
            for rule in route["spec"].get("rules", []) or [{}]:
                for match in rule.get("matches") or [{}]:
                    host = rng.choice(hosts)
                    requests = _requests(kind_of(route), match, host, rng)
                    for request in requests:
                        add(gateway, listener["port"], request)
                    for other in [_near_host(host, listener["port"], rng), *hosts] if requests else ():
                        add(gateway, listener["port"], Request(other, requests[0].path, requests[0].method, requests[0].headers))
    for gateway, doc in gateways.items():
        for listener in doc["spec"]["listeners"]:
            hosts = _hosts([], listener.get("hostname")) + ["unknown.invalid"]
            for _ in range(extra):
                path = rng.choice(["/", "/api", "/api/v1/x", "/static/app.js", "/login", "/Login?next=/", "/x/y"])
                add(gateway, listener["port"], Request(rng.choice(hosts), path, rng.choice(["GET", "POST"])))
    return list(found.values())


def _listeners_of(route: dict, gateways: dict[str, dict]) -> list[tuple[str, dict]]:
    """The (gateway, listener) pairs a route's parentRefs name (attached or not: the translators decide)."""
    pairs = []
    for ref in route["spec"].get("parentRefs", []):
        gateway = f"{ref.get('namespace', namespace_of(route))}/{ref['name']}"
        for listener in gateways.get(gateway, {}).get("spec", {}).get("listeners", []):
            if ref.get("sectionName", listener["name"]) == listener["name"] and ref.get("port", listener["port"]) == listener["port"]:
                pairs.append((gateway, listener))
    return pairs


def _hosts(hostnames: list[str], listener_hostname: str | None) -> list[str]:
    """Concrete hosts for a route's hostnames on a listener: those the two have in common (a wildcard
    standing for one name under it), or, when they have none, the route's own (requests no virtual
    host will answer)."""
    names = hostnames or [listener_hostname or "www.example.com"]
    if listener_hostname and hostnames:
        common = [_narrower(name, listener_hostname) for name in hostnames]
        names = [name for name in common if name] or hostnames
    return sorted({name.replace("*", "foo", 1) if name.startswith("*") else name for name in names})


def _narrower(one: str, other: str) -> str | None:
    """The narrower of two hostnames if one covers the other (``*.example.com`` covers ``a.example.com``
    and ``*.b.example.com``), else None."""
    def covers(wide: str, narrow: str) -> bool:
        return wide == narrow or wide.startswith("*") and narrow.endswith(wide[1:]) and len(narrow) > len(wide) - 1
    return other if covers(one, other) else one if covers(other, one) else None


def _near_host(host: str, port: int, rng: random.Random) -> str:
    """One character off (a different name), or the same name in capitals with its port (the same host)."""
    return rng.choice([host[:-1], "x" + host, f"{host.upper()}:{port}"])


def _requests(kind: str, match: dict, host: str, rng: random.Random) -> list[Request]:
    """The request that satisfies ``match``, then its near misses."""
    hit = _request(kind, match, host, rng)
    if hit is None:
        return []
    misses: list[Request] = []
    for path in _near_paths(hit.path):
        misses.append(Request(hit.host, path, hit.method, hit.headers))
    for name, value in hit.headers.items():
        if name != "content-type":
            others = {k: v for k, v in hit.headers.items() if k != name}
            misses += [Request(hit.host, hit.path, hit.method, others), Request(hit.host, hit.path, hit.method, others | {name: value + "x"})]
    misses.append(Request(hit.host, hit.path, "POST" if hit.method == "GET" else "GET", hit.headers))
    if "?" in hit.path:
        misses.append(Request(hit.host, hit.path.split("?")[0], hit.method, hit.headers))
    return [hit, *misses]


def _near_paths(path: str) -> list[str]:
    bare, _, query = path.partition("?")
    tail = f"?{query}" if query else ""
    near = [bare + "x", bare[:-1] or "/x", bare.upper(), bare.rstrip("/") + "/more"]
    return [p + tail for p in near if p.startswith("/")]


def _request(kind: str, match: dict, host: str, rng: random.Random) -> Request | None:
    """A request satisfying one HTTPRoute or GRPCRoute match, or None if a regex has no sample."""
    headers = {}
    for header in match.get("headers", []):
        value = header["value"] if header.get("type", "Exact") == "Exact" else sample(header["value"])
        if value is None:
            return None
        headers[header["name"]] = value
    if kind == "GRPCRoute":
        method = match.get("method", {})
        exact = method.get("type", "Exact") == "Exact"
        service = method.get("service") if exact or "service" not in method else sample(method["service"])
        name = method.get("method") if exact or "method" not in method else sample(method["method"])
        if service is None and "service" in method or name is None and "method" in method:
            return None
        path = f"/{service or 'any.Service'}/{name or 'Call'}"
        return Request(host, path, "POST", headers | {"content-type": "application/grpc"})
    path_match = match.get("path", {"type": "PathPrefix", "value": "/"})
    value = path_match.get("value", "/")
    if path_match.get("type", "PathPrefix") == "Exact":
        path = value
    elif path_match.get("type", "PathPrefix") == "PathPrefix":
        path = rng.choice([value, value.rstrip("/") + "/x", value.rstrip("/") + "/"])
    else:
        path = sample(value)
        if path is None or not path.startswith("/"):
            return None
    query = []
    for param in match.get("queryParams", []):
        param_value = param["value"] if param.get("type", "Exact") == "Exact" else sample(param["value"])
        if param_value is None:
            return None
        query.append(f"{param['name']}={param_value}")
    if query:
        path += "?" + "&".join(query)
    return Request(host, path, match.get("method", rng.choice(["GET", "GET", "POST"])), headers)


# --- the sources -----------------------------------------------------------------------------------


def _documents(text: str) -> list[dict]:
    return [d for d in yaml.safe_load_all(text) if d]


def chapter_sets() -> list[tuple[str, list[dict]]]:
    return [(f"chapter/{path.stem}", _documents(path.read_text())) for path in sorted(CHAPTER_SETS.glob("*.yaml"))]


def example_sets(examples: Path) -> list[tuple[str, list[dict]]]:
    """One route set per example file holding an HTTPRoute or GRPCRoute, with, from the other files of
    its folder (not the top folders, whose files stand alone), the Gateways its routes name and the
    Namespaces, ReferenceGrants and Services."""
    found = []
    for path in sorted(examples.rglob("*.yaml")):
        docs = _documents(path.read_text())
        if not any(kind_of(d) in ROUTE_KINDS for d in docs):
            continue
        if path.parent not in (examples / "standard", examples / "experimental"):
            named = {ref["name"] for d in docs if kind_of(d) in ROUTE_KINDS for ref in d["spec"].get("parentRefs", [])}
            for other in sorted(set(path.parent.glob("*.yaml")) - {path}):
                docs += [d for d in _documents(other.read_text())
                         if kind_of(d) in ("Namespace", "ReferenceGrant", "Service") or kind_of(d) == "Gateway" and d["metadata"]["name"] in named]
        found.append((f"examples/{path.relative_to(examples).with_suffix('')}", docs))
    return found


HOSTS = ["shop.example.com", "*.example.com", "api.example.com", "example.com", "a.b.example.com", "*.b.example.com", "other.org"]
PATHS = ["/", "/api", "/api/v1", "/api/v1/items", "/api/v2", "/login", "/static", "/Api"]
HEADERS = [("x-canary", "true"), ("x-env", "beta"), ("x-user", "alice")]
QUERIES = [("debug", "1"), ("lang", "en")]
SERVICES = ["web", "api", "api-v2", "auth", "legacy"]  # legacy never exists
NAMESPACES = ["default", "team-a", "team-b"]


def generated_set(seed: int) -> list[dict]:
    """A route set from ``seed``: one Gateway (listeners with and without hostnames, on one or two
    ports, open to all namespaces or the same one), two to five HTTPRoutes from three namespaces
    whose names decide ties, over overlapping paths and hostnames, with method, header and query
    matches, weighted backends (0 too) in other namespaces with or without a ReferenceGrant, one
    Service that never exists, and redirects."""
    rng = random.Random(seed)
    listeners = rng.choice([
        [{"name": "http", "port": 80}],
        [{"name": "http", "port": 80, "hostname": "*.example.com"}],
        [{"name": "wild", "port": 80, "hostname": "*.example.com"}, {"name": "api", "port": 80, "hostname": "api.example.com"}],
        [{"name": "http", "port": 80}, {"name": "alt", "port": 8080, "hostname": "shop.example.com"}],
    ])
    allowed = rng.choice(["All", "All", "Same"])
    gateway = {"apiVersion": f"{GROUP}/v1", "kind": "Gateway", "metadata": {"name": "gw", "namespace": "default"},
               "spec": {"gatewayClassName": "eg", "listeners": [listener | {"protocol": "HTTP", "allowedRoutes": {"namespaces": {"from": allowed}}}
                                                                for listener in listeners]}}
    docs: list[dict] = [gateway]
    names = rng.sample(["alpha", "bravo", "charlie", "delta", "echo"], rng.randint(2, 5))
    for name in names:
        namespace = rng.choice(NAMESPACES)
        parent: dict = {"name": "gw", "namespace": "default"}
        if rng.random() < 0.3:
            parent["sectionName"] = rng.choice(listeners)["name"]
        spec: dict = {"parentRefs": [parent], "rules": [_rule(rng, namespace) for _ in range(rng.randint(1, 4))]}
        if rng.random() < 0.7:
            spec["hostnames"] = rng.sample(HOSTS, rng.randint(1, 3))
        docs.append({"apiVersion": f"{GROUP}/v1", "kind": "HTTPRoute",
                     "metadata": {"name": name, "namespace": namespace, "creationTimestamp": CREATED}, "spec": spec})
    wanted = {(ref.get("namespace", namespace_of(route)), ref["name"], ref["port"])
              for route in docs[1:] for rule in route["spec"]["rules"] for ref in rule.get("backendRefs", [])}
    for namespace, name, port in sorted(wanted):
        if name != "legacy":
            docs.append({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": namespace},
                         "spec": {"clusterIP": f"10.96.{NAMESPACES.index(namespace)}.{SERVICES.index(name) + 1}",
                                  "ports": [{"name": "http", "port": port, "protocol": "TCP"}]}})
    granted = {(ref["namespace"], namespace_of(route)) for route in docs[1:] if kind_of(route) == "HTTPRoute"
               for rule in route["spec"]["rules"] for ref in rule.get("backendRefs", []) if "namespace" in ref}
    for to, source in sorted(granted):
        if rng.random() < 0.6:
            docs.append({"apiVersion": f"{GROUP}/v1beta1", "kind": "ReferenceGrant", "metadata": {"name": f"from-{source}", "namespace": to},
                         "spec": {"from": [{"group": GROUP, "kind": "HTTPRoute", "namespace": source}], "to": [{"group": "", "kind": "Service"}]}})
    return docs


def _rule(rng: random.Random, namespace: str) -> dict:
    matches = [_match(rng) for _ in range(rng.randint(0, 2))]
    rule: dict = {"matches": matches} if matches else {}
    if rng.random() < 0.12:
        redirect = rng.choice([{"scheme": "https"}, {"hostname": "moved.example.com", "statusCode": 301}, {"port": 8443},
                               {"path": {"type": "ReplaceFullPath", "replaceFullPath": "/new"}, "statusCode": 302}])
        return rule | {"filters": [{"type": "RequestRedirect", "requestRedirect": redirect}]}
    refs = []
    for name in rng.sample(SERVICES, rng.randint(1, 3)):
        ref: dict = {"name": name, "port": 8080}
        if rng.random() < 0.2:
            ref["namespace"] = rng.choice([n for n in NAMESPACES if n != namespace])
        if rng.random() < 0.5:
            ref["weight"] = rng.choice([0, 1, 3, 10, 50])
        refs.append(ref)
    return rule | {"backendRefs": refs}


def _match(rng: random.Random) -> dict:
    match: dict = {}
    kind = rng.choice(["Exact", "PathPrefix", "PathPrefix", "PathPrefix", "RegularExpression", None])
    if kind == "RegularExpression":
        match["path"] = {"type": kind, "value": rng.choice(["/api/v[0-9]+", "/api/v[0-9]+/items", "/static/.*", "/[a-z]+"])}
    elif kind:
        match["path"] = {"type": kind, "value": rng.choice(PATHS)}
    if rng.random() < 0.3:
        match["method"] = rng.choice(["GET", "POST"])
    if rng.random() < 0.4:
        chosen = rng.sample(HEADERS, rng.randint(1, 2))
        match["headers"] = [{"name": name, "value": value} if rng.random() < 0.8 else
                            {"name": name, "type": "RegularExpression", "value": value[:2] + ".*"} for name, value in chosen]
    if rng.random() < 0.25:
        name, value = rng.choice(QUERIES)
        match["queryParams"] = [{"name": name, "value": value}]
    return match


def corpus(examples: Path, generated: int = 40) -> list[RouteSet]:
    """Every route set, runnable, with its probes; seeded by its position, so the same every run."""
    sets = [(name, "chapter", docs) for name, docs in chapter_sets()]
    sets += [(name, "example", docs) for name, docs in example_sets(examples)]
    sets += [(f"generated/{seed}", "generated", generated_set(seed)) for seed in range(generated)]
    built = []
    for seed, (name, source, docs) in enumerate(sets):
        ready = runnable(docs)
        built.append(RouteSet(name, source, tuple(ready), tuple(probes(ready, seed))))
    return built
