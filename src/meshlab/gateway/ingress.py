"""Kubernetes Ingress (networking.k8s.io/v1) and its migration to the Gateway API.

``convert`` writes, for Ingresses, the Gateway API objects that route the same requests to the same
Services: per IngressClass and namespace a GatewayClass and a Gateway (an HTTP listener on 80; an
HTTPS listener on 443 per TLS host, its certificateRef the TLS secret), and per Ingress and host an
HTTPRoute whose rules are the host's paths (Exact stays Exact, Prefix becomes PathPrefix) and, last,
the default backend as a ``/`` catch-all. ``backend_for`` routes a request by the Ingress's own
rules (k8s.io/api networking/v1 types.go, IngressRule.Host and HTTPIngressPath.PathType, v0.36),
so a test can check that the two agree:

* the host: an exact host, else a wildcard host, else the rules without a host; a wildcard
  ``*.foo.com`` matches exactly one label more (``bar.foo.com``, not ``baz.bar.foo.com``);
* the path, among that host's paths: the longest matching path, Exact before Prefix on a tie;
  Prefix matches element by element (``/foo/bar`` matches ``/foo/bar/baz``, not ``/foo/barbaz``;
  ``/foo/`` and ``/foo`` both match ``/foo``); no match goes to the default backend.

What cannot be carried over, and is reported as a note instead of silently changed:

* annotations (rewrite targets, TLS redirects, timeouts, canaries...): each controller's own
  vocabulary, with no Gateway API equivalent in general (some have filters: say which by hand);
* ImplementationSpecific paths mean what the IngressClass's controller says (ingress-nginx: a
  plain prefix, ``/foo`` also matching ``/foobar``, or a regex with use-regex); converted as
  PathPrefix, the nearest Gateway API type, and routed as Prefix by ``backend_for``;
* a wildcard host: the Gateway API's ``*.foo.com`` also matches ``baz.bar.foo.com``;
* an Exact path that a longer Prefix of the same path shadows (Ingress: the longer path wins;
  Gateway API: Exact always wins) is dropped, as the Ingress never routes by it;
* resource backends (not a Service), and Service ports named rather than numbered unless the
  Service is in the input to resolve the name.

    Ingress, IngressSpec, ...  the Ingress API as typed dataclasses
    Conversion                 the Gateway API documents (YAML-ready dicts), the notes, where the Ingresses send a request
    load_ingresses             YAML text -> Ingresses (and the Services, for named ports)
    convert                    Ingresses -> Conversion
    to_gateway_api             YAML text -> Conversion
    backend_for                Ingresses + host + path -> (namespace, service, port) by Ingress semantics
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import yaml

from meshlab.gateway.envoy import Request
from meshlab.gateway.fields import GatewayAPIError, Where, api, parse
from meshlab.gateway.resources import GROUP, HOSTNAME, SAFE_LOADER, ObjectMeta, Resources, Service, load

#: The controller a converted GatewayClass names: Envoy Gateway's (v1.9.0 api/v1alpha1/shared_types.go).
ENVOY_GATEWAY_CONTROLLER = "gateway.envoyproxy.io/gatewayclass-controller"


@dataclass(frozen=True)
class ServiceBackendPort:
    name: str | None = api()
    number: int | None = api(minimum=1, maximum=65535)


@dataclass(frozen=True)
class IngressServiceBackend:
    name: str = api(required=True)
    port: ServiceBackendPort = api(required=True)


@dataclass(frozen=True)
class IngressBackend:
    service: IngressServiceBackend | None = api()
    resource: Mapping[str, str] | None = api()


@dataclass(frozen=True)
class HTTPIngressPath:
    path: str = api(default="/")
    path_type: str = api(required=True, enum=("Exact", "Prefix", "ImplementationSpecific"))
    backend: IngressBackend = api(required=True)

    def problems(self) -> Iterator[tuple[str, str]]:
        if self.path_type != "ImplementationSpecific" and not self.path.startswith("/"):
            yield "path", f"must be an absolute path (start with '/') for pathType {self.path_type}"


@dataclass(frozen=True)
class HTTPIngressRuleValue:
    paths: tuple[HTTPIngressPath, ...] = api(required=True, min_items=1)


@dataclass(frozen=True)
class IngressRule:
    host: str | None = api(max_length=253, pattern=HOSTNAME)
    http: HTTPIngressRuleValue | None = api()


@dataclass(frozen=True)
class IngressTLS:
    hosts: tuple[str, ...] = api(pattern=HOSTNAME)
    secret_name: str | None = api()


@dataclass(frozen=True)
class IngressSpec:
    ingress_class_name: str | None = api()
    default_backend: IngressBackend | None = api()
    tls: tuple[IngressTLS, ...] = api()
    rules: tuple[IngressRule, ...] = api()


@dataclass(frozen=True)
class Ingress:
    IGNORED: ClassVar[Mapping[str, str]] = {"status": "set by the controller"}

    api_version: str = api(required=True, enum=("networking.k8s.io/v1",))
    kind: str = api(required=True, enum=("Ingress",))
    metadata: ObjectMeta = api(required=True)
    spec: IngressSpec = api(default={})

    @property
    def namespace(self) -> str:
        return self.metadata.namespace or "default"

    @property
    def name(self) -> str:
        return self.metadata.name

    @property
    def age(self) -> tuple:
        created = self.metadata.creation_timestamp
        return (created is not None, created or 0, self.namespace, self.name)


@dataclass(frozen=True)
class Conversion:
    """The Gateway API documents converted from ``ingresses`` (plain dicts, in YAML's order), and the notes."""

    documents: list[dict]
    notes: list[str] = field(default_factory=list)
    ingresses: list[Ingress] = field(default_factory=list)

    @property
    def yaml(self) -> str:
        return yaml.safe_dump_all(self.documents, sort_keys=False, default_flow_style=None, width=120)

    def resources(self) -> Resources:
        """The documents read back through ``meshlab.gateway.load``: the conversion passes the same checks as any input."""
        return load(self.yaml)

    def ingress_backend(self, request: Request) -> str:
        """Where the Ingresses themselves send ``request``, written as a Decision writes a backend
        (``namespace/service:port``), or ``404`` when no rule and no default backend takes it."""
        found = backend_for(self.ingresses, request.host, request.path)
        return "404" if found is None else f"{found[0]}/{found[1]}:{found[2]}"


def load_ingresses(yaml_text: str) -> tuple[list[Ingress], Resources]:
    """The Ingresses of a YAML text, and its other objects (Services resolve named ports)."""
    ingresses, others = [], []
    for number, document in enumerate(yaml.load_all(yaml_text, Loader=SAFE_LOADER), start=1):
        if isinstance(document, Mapping) and document.get("kind") == "Ingress":
            name = (document.get("metadata") or {}).get("name", f"document {number}")
            namespace = (document.get("metadata") or {}).get("namespace") or "default"
            ingresses.append(parse(Ingress, document, Where(f"Ingress {namespace}/{name}")))
        elif document is not None:
            others.append(document)
    return ingresses, load(yaml.safe_dump_all(others)) if others else Resources()


def backend_for(ingresses: list[Ingress], host: str, path: str) -> tuple[str, str, int] | None:
    """The (namespace, Service, port) the Ingresses send ``host`` + ``path`` to by the Ingress API's
    own rules (see the module docstring); None when nothing, not even a default backend, takes it."""
    host = host.split(":")[0].lower()
    path = path.split("?")[0].split("#")[0]
    chosen = _host_rules(ingresses, host)
    best: tuple[tuple[int, int], tuple[str, str, int]] | None = None
    for ingress, rule in chosen:
        for entry in rule.http.paths if rule.http else ():
            service = entry.backend.service
            if service is None or not _path_matches(entry, path):
                continue
            rank = (len(entry.path), entry.path_type == "Exact")
            target = (ingress.namespace, service.name, service.port.number or 0)
            if best is None or rank > best[0]:
                best = (rank, target)
    if best is not None:
        return best[1]
    for ingress in sorted(ingresses, key=lambda i: i.age):
        default = ingress.spec.default_backend
        if default and default.service:
            return (ingress.namespace, default.service.name, default.service.port.number or 0)
    return None


def _host_rules(ingresses: list[Ingress], host: str) -> list[tuple[Ingress, IngressRule]]:
    rules = [(i, r) for i in sorted(ingresses, key=lambda i: i.age) for r in i.spec.rules]
    exact = [(i, r) for i, r in rules if r.host == host]
    if exact:
        return exact
    wildcard = [(i, r) for i, r in rules if r.host and r.host.startswith("*.") and host.endswith(r.host[1:])
                and "." not in host[: len(host) - len(r.host) + 1]]
    if wildcard:
        return wildcard
    return [(i, r) for i, r in rules if not r.host]


def _path_matches(entry: HTTPIngressPath, path: str) -> bool:
    if entry.path_type == "Exact":
        return path == entry.path
    wanted = [part for part in entry.path.split("/") if part]
    return [part for part in path.split("/") if part][: len(wanted)] == wanted


def convert(ingresses: list[Ingress], services: Resources | None = None, controller: str = ENVOY_GATEWAY_CONTROLLER) -> Conversion:
    """The Gateway API documents that route as ``ingresses`` do (with the notes on what could not be carried)."""
    services = services or Resources()
    notes: list[str] = []
    gateways: dict[tuple[str, str], dict] = {}
    routes: list[dict] = []
    for ingress in sorted(ingresses, key=lambda i: i.age):
        label = f"Ingress {ingress.namespace}/{ingress.name}"
        notes += [f"{label}: annotation {key} has no Gateway API equivalent here and was not carried over"
                  for key in ingress.metadata.annotations]
        class_name = ingress.spec.ingress_class_name or "ingress"
        gateway = gateways.setdefault((class_name, ingress.namespace), _gateway(class_name, ingress.namespace))
        _add_tls(gateway, ingress, label, notes)
        routes += _routes(ingress, gateway["metadata"]["name"], services, label, notes)
    classes = {name: {"apiVersion": f"{GROUP}/v1", "kind": "GatewayClass", "metadata": {"name": name},
                      "spec": {"controllerName": controller}} for name, _ in gateways}
    return Conversion([*classes.values(), *gateways.values(), *routes], notes, list(ingresses))


def to_gateway_api(yaml_text: str, controller: str = ENVOY_GATEWAY_CONTROLLER) -> Conversion:
    """The Ingresses of ``yaml_text`` converted (its Services, if any, resolve named ports)."""
    return convert(*load_ingresses(yaml_text), controller=controller)


def _gateway(class_name: str, namespace: str) -> dict:
    return {"apiVersion": f"{GROUP}/v1", "kind": "Gateway", "metadata": {"name": class_name, "namespace": namespace},
            "spec": {"gatewayClassName": class_name, "listeners": [{"name": "http", "protocol": "HTTP", "port": 80}]}}


def _add_tls(gateway: dict, ingress: Ingress, label: str, notes: list[str]) -> None:
    """An HTTPS listener on 443 per TLS host (one without hostname when the entry names none)."""
    listeners = gateway["spec"]["listeners"]
    for i, tls in enumerate(ingress.spec.tls):
        if not tls.secret_name:
            notes.append(f"{label}: spec.tls[{i}] names no secret; TLS by SNI alone is a TLSRoute's job and was not converted")
            continue
        for host in tls.hosts or (None,):
            if any(l["port"] == 443 and l.get("hostname") == host for l in listeners):
                notes.append(f"{label}: spec.tls[{i}] host {host or '(any)'} already has an HTTPS listener; its secret {tls.secret_name} was not added")
                continue
            listener: dict[str, Any] = {"name": f"https-{len(listeners)}", "protocol": "HTTPS", "port": 443,
                                        "tls": {"mode": "Terminate", "certificateRefs": [{"name": tls.secret_name}]}}
            if host:
                listener["hostname"] = host
            listeners.append(listener)


def _routes(ingress: Ingress, gateway: str, services: Resources, label: str, notes: list[str]) -> list[dict]:
    """An HTTPRoute per host of the Ingress (and one for its host-less rules and default backend)."""
    hosts: dict[str | None, list[tuple[int, int, HTTPIngressPath]]] = {}
    for i, rule in enumerate(ingress.spec.rules):
        for j, entry in enumerate(rule.http.paths if rule.http else ()):
            hosts.setdefault(rule.host, []).append((i, j, entry))
    default = _backend_ref(ingress.spec.default_backend, ingress, services, f"{label}: spec.defaultBackend", notes) \
        if ingress.spec.default_backend else None
    if default is not None:
        hosts.setdefault(None, [])
    routes = []
    for host, entries in hosts.items():
        if host and host.startswith("*."):
            notes.append(f"{label}: host {host} matches one label in an Ingress; in the Gateway API it matches any number")
        rules = []
        for i, j, entry in entries:
            where = f"{label}: spec.rules[{i}].http.paths[{j}]"
            if _shadowed(entry, [e for _, _, e in entries]):
                notes.append(f"{where}: Exact {entry.path} is shadowed by a longer Prefix of the same path, which the Ingress prefers; dropped")
                continue
            ref = _backend_ref(entry.backend, ingress, services, f"{where}.backend", notes)
            if ref is None:
                continue
            if entry.path_type == "ImplementationSpecific":
                notes.append(f"{where}: pathType ImplementationSpecific is the controller's to interpret; converted as PathPrefix")
            kind = "Exact" if entry.path_type == "Exact" else "PathPrefix"
            rules.append({"matches": [{"path": {"type": kind, "value": entry.path}}], "backendRefs": [ref]})
        if default is not None and not any(e.path == "/" and e.path_type != "Exact" for _, _, e in entries):
            rules.append({"matches": [{"path": {"type": "PathPrefix", "value": "/"}}], "backendRefs": [default]})
        for part, chunk in enumerate([rules[k:k + 16] for k in range(0, len(rules), 16)]):  # a route holds 16 rules (its CRD)
            name = ingress.name + (f"-{host.replace('*', 'wildcard').replace('.', '-')}" if host else "") + (f"-{part}" if part else "")
            metadata: dict[str, Any] = {"name": name, "namespace": ingress.namespace}
            if ingress.metadata.creation_timestamp:
                metadata["creationTimestamp"] = ingress.metadata.creation_timestamp.isoformat().replace("+00:00", "Z")
            spec: dict[str, Any] = {"parentRefs": [{"name": gateway}], **({"hostnames": [host]} if host else {}), "rules": chunk}
            routes.append({"apiVersion": f"{GROUP}/v1", "kind": "HTTPRoute", "metadata": metadata, "spec": spec})
    return routes


def _shadowed(entry: HTTPIngressPath, entries: list[HTTPIngressPath]) -> bool:
    return entry.path_type == "Exact" and any(
        other.path_type != "Exact" and len(other.path) > len(entry.path) and other.path.rstrip("/") == entry.path.rstrip("/") for other in entries)


def _backend_ref(backend: IngressBackend | None, ingress: Ingress, services: Resources, where: str, notes: list[str]) -> dict | None:
    if backend is None or backend.service is None:
        notes.append(f"{where}: a resource backend is not a Service; not converted")
        return None
    port = backend.service.port.number
    if port is None:
        service: Service | None = services.service(ingress.namespace, backend.service.name)
        named = [p.port for p in (service.spec.ports if service else ()) if p.name == backend.service.port.name]
        if not named:
            raise GatewayAPIError(f"Ingress {ingress.namespace}/{ingress.name}", where.split(": ", 1)[-1] + ".service.port.name",
                                  f"port {backend.service.port.name!r} is named; a backendRef needs its number: use port.number, "
                                  "or add the Service to the input so the name can be resolved")
        port = named[0]
    return {"name": backend.service.name, "port": port}
