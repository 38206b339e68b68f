"""What one proxy is sent, given the services istiod knows and the Sidecars in force.

istiod keeps one SidecarScope per Sidecar (and one default scope per namespace without one) and
gives every proxy the scope of the Sidecar that applies to its workload. The rules are Istio
1.30.3's (istio.io/istio@v0.0.0-20260826214018-9739e10eb9d7, pilot/pkg/model):

- which services a namespace can see at all: a service's ``exportTo`` (default ``*``, the mesh's
  default), ``.`` its own namespace, ``~`` nobody (push_context.go initServiceRegistry,
  servicesExportedToNamespace);
- which Sidecar applies to a workload: Sidecars with a workloadSelector first, then those without,
  each group oldest first (creationTimestamp, then name, then namespace: config.go
  sortConfigByCreationTime); the first whose selector labels are a subset of the workload's labels
  wins, else the first without a selector; a namespace with none takes the root namespace's
  selector-less Sidecar (``.`` in it then means the workload's namespace), else the default scope
  that imports ``*/*`` (push_context.go initSidecarScopes, getSidecarScope);
- which services an egress listener imports: ``namespace/dnsName`` with ``*`` any namespace, ``.``
  the config namespace; a dnsName may be a wildcard (``*``, ``*.example.com``); a listener with a
  port keeps only services with that port (unless its protocol is HTTP_PROXY); one hostname seen in
  several namespaces is taken from the config namespace, else a Kubernetes service is preferred,
  else the first seen (sidecar.go selectServices, PILOT_UNIFIED_SIDECAR_SCOPE on by default);
- which changes reach the proxy: those of its Sidecar and of the services in its scope (and of its
  own services), as ``DependsOnConfig`` and ProxyNeedsPush decide (sidecar.go,
  pilot/pkg/xds/proxy_dependencies.go).

What is sent, in Envoy's names: a cluster ``outbound|<port>||<hostname>`` per service port, with its
endpoints (EDS); an HTTP port's services share one route configuration named by the port, one
virtual host ``<hostname>:<port>`` each, on one listener ``0.0.0.0_<port>``; any other port gets a
listener of its own (Istio names it by the service's ClusterIP; meshlab, with no addresses, by
hostname) and, for a port whose protocol is sniffed (left empty), a route of its own
``<hostname>:<port>`` (pilot/pkg/networking/core/listener.go buildSidecarOutboundHTTPListenerOpts).
Not modelled: VirtualServices and DestinationRules (which add hosts and subsets), aliases, inbound
configuration, Istio's own clusters (BlackHoleCluster, PassthroughCluster).

    ServicePort    a service's port: number, protocol, name
    Service        a host in istiod's registry: hostname, namespace, ports, endpoints, exportTo
    Workload       a proxy's workload: namespace, name, labels, the services it backs
    SidecarScope   what a proxy is sent: services, clusters, routes, listeners, endpoints; depends_on
    PushContext    the services and Sidecars at one version: sidecar_for, sidecar_scope (cached)
    needs_push     whether a change concerns a proxy: istiod's ProxyNeedsPush, for the simulator and the live server
    RegistryError  a services file that cannot be read; names the field and what is accepted
    load_registry  ``{"services": [...], "workloads": [...]}`` -> Services and Workloads
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from functools import cached_property

from meshlab.scoping.sidecar import HTTP_PROTOCOLS, EgressListener, Sidecar
from meshlab.xds.memory import ProxyConfig

ROOT_NAMESPACE = "istio-system"  # MeshConfig.rootNamespace default (pkg/config/mesh/mesh.go)
DEFAULT_POLICY = "ALLOW_ANY"  # MeshConfig.outboundTrafficPolicy default (pkg/config/mesh/mesh.go)
DEFAULT_SIDECAR = "default-sidecar"  # the name of a scope built without a Sidecar (sidecar.go)
KUBERNETES = "Kubernetes"


@dataclass(frozen=True)
class ServicePort:
    number: int
    protocol: str = "HTTP"
    name: str = "http"

    @property
    def is_http(self) -> bool:
        return self.protocol.lower() in HTTP_PROTOCOLS


@dataclass(frozen=True)
class Service:
    """``export_to`` empty means the mesh default (every namespace); ``registry`` is "Kubernetes" for a
    Service, anything else (e.g. "External") for a ServiceEntry host."""

    hostname: str
    namespace: str
    ports: tuple[ServicePort, ...] = (ServicePort(80),)
    endpoints: int = 1
    export_to: tuple[str, ...] = ()
    registry: str = KUBERNETES

    @property
    def key(self) -> str:
        """Istio's config key for a service's changes: Kind ServiceEntry, name the hostname."""
        return f"ServiceEntry/{self.namespace}/{self.hostname}"


@dataclass(frozen=True)
class Workload:
    namespace: str
    name: str
    labels: dict[str, str] = field(default_factory=dict)
    services: tuple[str, ...] = ()  # hostnames of the services it backs (Istio's ServiceTargets)


def _port_keys(service: Service) -> Iterable[tuple[int, str]]:
    return ((port.number, port.protocol) for port in service.ports)


@dataclass(frozen=True)
class SidecarScope:
    """The services one scope imports, in import order, and what Envoy is sent for them."""

    name: str
    namespace: str
    sidecar: Sidecar | None
    services: tuple[Service, ...]
    outbound_traffic_policy: str

    @cached_property
    def hostnames(self) -> frozenset[str]:
        return frozenset(s.hostname for s in self.services)

    @cached_property
    def dependencies(self) -> frozenset[str]:
        keys = {s.key for s in self.services}
        if self.sidecar is not None:
            keys.add(self.sidecar.key)
        return frozenset(keys)

    def depends_on(self, config_key: str) -> bool:
        """Whether a change of ``config_key`` ("Kind/namespace/name") concerns proxies of this scope.
        Sidecar and ServiceEntry changes as Istio decides them; every other kind concerns everyone, a
        simplification: Istio 1.30.3 also tracks VirtualService, DestinationRule and PeerAuthentication
        by scope, and cluster-scoped kinds (EnvoyFilter, AuthorizationPolicy, ...) only in the root or the
        proxy's own namespace (pilot/pkg/model/sidecar.go DependsOnConfig)."""
        kind = config_key.partition("/")[0]
        return kind not in ("Sidecar", "ServiceEntry") or config_key in self.dependencies

    def clusters(self) -> dict[str, int]:
        """Outbound cluster name -> endpoints in its ClusterLoadAssignment."""
        return {f"outbound|{port.number}||{s.hostname}": s.endpoints for s in self.services for port in s.ports}

    def routes(self) -> dict[str, list[str]]:
        """Route configuration name -> its virtual hosts."""
        routes: dict[str, list[str]] = {}
        for service in self.services:
            for port in service.ports:
                if port.is_http:
                    routes.setdefault(str(port.number), []).append(f"{service.hostname}:{port.number}")
                elif port.protocol == "":
                    routes[f"{service.hostname}:{port.number}"] = [f"{service.hostname}:{port.number}"]
        return routes

    def listeners(self) -> list[str]:
        names: dict[str, None] = {}
        for service in self.services:
            for port in service.ports:
                names[f"0.0.0.0_{port.number}" if port.is_http else f"{service.hostname}_{port.number}"] = None
        return list(names)

    def proxy_config(self) -> ProxyConfig:
        """Counted as Envoy's admin interface counts them: listeners, clusters, endpoints."""
        clusters = self.clusters()
        return ProxyConfig(len(self.listeners()), len(clusters), sum(clusters.values()))


class _HostClassification:
    """One namespace's imports in one listener: exact names for lookups, wildcards to match."""

    __slots__ = ("exact", "wildcards")

    def __init__(self) -> None:
        self.exact: set[str] = set()
        self.wildcards: list[str] = []

    def matches(self, hostname: str) -> bool:
        """host.Name SubsetOf for a service hostname (pkg/config/host/name.go); a wildcard service
        hostname matches only a wildcard import it is a subset of."""
        if hostname in self.exact:
            return True
        if hostname.startswith("*"):
            return any(len(hostname) >= len(w) and hostname[1:].endswith(w[1:]) for w in self.wildcards)
        return any(hostname.endswith(w[1:]) for w in self.wildcards)


class PushContext:
    """The services and Sidecars istiod holds at one version, indexed so that finding a workload's
    Sidecar and computing a scope touch only the namespaces and hosts the Sidecar names.

    ``sidecar_scope`` is cached per (Sidecar, config namespace), as istiod caches SidecarScopes."""

    def __init__(self, services: Iterable[Service], sidecars: Iterable[Sidecar] = (), root_namespace: str = ROOT_NAMESPACE,
                 outbound_traffic_policy: str = DEFAULT_POLICY) -> None:
        self.root_namespace, self.outbound_traffic_policy = root_namespace, outbound_traffic_policy
        self.services = list(services)
        self._rank = {id(s): index for index, s in enumerate(self.services)}
        self._public: list[Service] = []
        self._public_by_namespace: dict[str, list[Service]] = {}
        self._public_by_hostname: dict[str, list[Service]] = {}
        self._exported: dict[str, list[Service]] = {}  # namespace -> services exported to it by name (or private to it)
        namespaces_of: dict[str, set[str]] = {}
        for service in self.services:
            namespaces_of.setdefault(service.hostname, set()).add(service.namespace)
            targets = set(service.export_to) or {"*"}
            if "*" in targets:
                self._public.append(service)
                self._public_by_namespace.setdefault(service.namespace, []).append(service)
                self._public_by_hostname.setdefault(service.hostname, []).append(service)
            elif "~" not in targets:
                for target in {service.namespace if t == "." else t for t in targets}:
                    self._exported.setdefault(target, []).append(service)
        self._shared_hostnames = {h for h, namespaces in namespaces_of.items() if len(namespaces) > 1}
        self._everything = tuple(self._public)  # the default scope of a namespace nothing is exported to by name
        ordered = sorted(sidecars, key=lambda s: (s.creation_timestamp, s.name, s.namespace))
        twice = sorted({s.key for s in ordered if [t.key for t in ordered].count(s.key) > 1})
        if twice:  # the API server holds one object per name: two would share one cached scope here
            raise ValueError(f"Sidecars named twice: {', '.join(twice)}; a namespace holds one Sidecar of each name")
        self.sidecars = [s for s in ordered if s.workload_selector is not None] + [s for s in ordered if s.workload_selector is None]
        self._selector_index: dict[str, dict[tuple[str, str] | None, list[tuple[int, Sidecar]]]] = {}
        self._namespace_default: dict[str, Sidecar] = {}
        for order, sidecar in enumerate(self.sidecars):
            if sidecar.workload_selector is None:
                self._namespace_default.setdefault(sidecar.namespace, sidecar)
            else:
                bucket = min(sidecar.workload_selector.items()) if sidecar.workload_selector else None
                self._selector_index.setdefault(sidecar.namespace, {}).setdefault(bucket, []).append((order, sidecar))
        self._root = self._namespace_default.get(root_namespace)
        self._scopes: dict[tuple[str, str], SidecarScope] = {}

    # -- which Sidecar ------------------------------------------------------------------------
    def sidecar_for(self, workload: Workload) -> Sidecar | None:
        """The Sidecar that applies to ``workload``: its own namespace's, else the root namespace's
        selector-less one, else None (the default scope)."""
        buckets = self._selector_index.get(workload.namespace)
        if buckets:
            candidates = [entry for item in workload.labels.items() for entry in buckets.get(item, ())] + buckets.get(None, [])
            matching = [(order, s) for order, s in candidates if s.workload_selector.items() <= workload.labels.items()]
            if matching:
                return min(matching, key=lambda entry: entry[0])[1]
        return self._namespace_default.get(workload.namespace, self._root)

    def sidecar_scope(self, workload: Workload) -> SidecarScope:
        return self.scope_of(self.sidecar_for(workload), workload.namespace)

    def scope_of(self, sidecar: Sidecar | None, namespace: str) -> SidecarScope:
        """The scope ``sidecar`` (None: the default) gives proxies of ``namespace``."""
        cache_key = (sidecar.key if sidecar is not None else "", namespace)
        scope = self._scopes.get(cache_key)
        if scope is None:
            scope = self._scopes[cache_key] = self._convert(sidecar, namespace)
        return scope

    # -- which services ----------------------------------------------------------------------
    def _convert(self, sidecar: Sidecar | None, namespace: str) -> SidecarScope:
        listeners = [listener for listener in (sidecar.egress if sidecar is not None else ()) if listener is not None]
        policy = self.outbound_traffic_policy
        if sidecar is not None and sidecar.outbound_traffic_policy is not None:
            policy = sidecar.outbound_traffic_policy.mode
        name = sidecar.name if sidecar is not None else DEFAULT_SIDECAR
        if not listeners and namespace not in self._exported and not self._shared_hostnames:
            return SidecarScope(name, namespace, sidecar, self._everything, policy)  # every namespace sees the same
        chosen: dict[str, Service] = {}
        for listener in listeners or [EgressListener(("*/*",))]:
            for service in self._select(listener, namespace):
                existing = chosen.get(service.hostname)
                if existing is None:
                    chosen[service.hostname] = service
                elif existing.registry != KUBERNETES and service.registry == KUBERNETES:
                    chosen[service.hostname] = service
                elif existing.registry == service.registry and existing.namespace == service.namespace and existing.export_to == service.export_to:
                    merged = existing.ports + tuple(p for p in service.ports if p.number not in {q.number for q in existing.ports})
                    chosen[service.hostname] = replace(existing, ports=merged) if merged != existing.ports else existing
        return SidecarScope(name, namespace, sidecar, tuple(chosen.values()), policy)

    def _select(self, listener: EgressListener, namespace: str) -> list[Service]:
        """The services one egress listener imports for proxies of ``namespace``."""
        imports: dict[str, _HostClassification] = {}
        for host in listener.hosts:
            if host.count("/") != 1:
                continue  # istiod logs "Illegal host in sidecar resource" and skips it
            target, name = host.split("/")
            hosts = imports.setdefault(namespace if target == "." else target, _HostClassification())
            if name.startswith("*"):
                hosts.wildcards.append(name)
            else:
                hosts.exact.add(name)
        exported = self._exported.get(namespace, [])
        found: dict[int, Service] = {}
        for target, hosts in imports.items():
            if "*" in hosts.wildcards:  # everything the listener can see in that namespace (or anywhere)
                pool = self._public if target == "*" else self._public_by_namespace.get(target, [])
                found.update((id(s), s) for s in pool)
            else:
                for hostname in hosts.exact:
                    found.update((id(s), s) for s in self._public_by_hostname.get(hostname, ()) if target in ("*", s.namespace))
                if hosts.wildcards:
                    pool = self._public if target == "*" else self._public_by_namespace.get(target, [])
                    found.update((id(s), s) for s in pool if hosts.matches(s.hostname))
            found.update((id(s), s) for s in exported if target in ("*", s.namespace) and hosts.matches(s.hostname))
        exported_ids = {id(s) for s in exported}
        ordered = sorted(found.values(), key=lambda s: (id(s) not in exported_ids, self._rank[id(s)]))
        ordered = self._one_per_hostname(ordered, namespace)
        port = listener.port
        if port is None or port.number == 0 or port.protocol.lower() == "http_proxy":
            return ordered
        kept = []
        for service in ordered:
            match = [p for p in service.ports if p.number == port.number]
            if match:
                kept.append(service if len(service.ports) == 1 else replace(service, ports=(match[0],)))
        return kept

    def _one_per_hostname(self, services: list[Service], namespace: str) -> list[Service]:
        """One namespace per hostname: the config namespace's, else a Kubernetes service's, else the first."""
        if not any(s.hostname in self._shared_hostnames for s in services):
            return services
        best: dict[str, Service] = {}
        for service in services:
            seen = best.get(service.hostname)
            if seen is None or service.namespace == namespace or (
                    seen.registry != KUBERNETES and service.registry == KUBERNETES and (service.namespace == namespace or seen.namespace != namespace)):
                best[service.hostname] = service
        return [s for s in services if best[s.hostname] is s]


def needs_push(scope: SidecarScope, keys: Iterable[str] | None, workload: Workload | None = None,
               previous: SidecarScope | None = None) -> bool:
    """Whether a change of ``keys`` ("Kind/namespace/name") is pushed to a proxy with ``scope``: a change
    naming no key concerns every proxy; otherwise one its scope depends on, or the scope it had before
    this push (a Sidecar that just dropped a service still needs to hear of it), or one of the workload's
    own services (Istio 1.30.3 pilot/pkg/xds/proxy_dependencies.go ConfigAffectsProxy, checkProxyDependencies;
    pilot/pkg/xds/ads.go pushConnection passes the previous SidecarScope)."""
    if not keys:
        return True
    own = {f"ServiceEntry/{workload.namespace}/{host}" for host in workload.services} if workload is not None else set()
    return any(key in own or scope.depends_on(key) or (previous is not None and previous.depends_on(key)) for key in keys)


class RegistryError(ValueError):
    """A services file meshlab cannot read; the message names the entry and field."""


def _field(entry: dict, key: str, kind: type, where: str, default=None):
    if key not in entry and default is None:
        raise RegistryError(f"{where}: missing field {key!r}")
    value = entry.get(key, default)
    if value is None or isinstance(value, bool) and kind is not bool or not isinstance(value, kind):
        raise RegistryError(f"{where}.{key}: expected {kind.__name__}, got {value!r}")
    return value


def load_registry(data: dict) -> tuple[list[Service], list[Workload]]:
    """Services and workloads from ``{"services": [{"hostname", "namespace", "ports": [{"number",
    "protocol", "name"}], "endpoints", "exportTo"}], "workloads": [{"namespace", "name", "labels"}]}``;
    ports default to one HTTP port 80, endpoints to 1, exportTo to the mesh default."""
    if not isinstance(data, dict) or not isinstance(data.get("services"), list):
        raise RegistryError('a services file is {"services": [{"hostname", "namespace", "ports", "endpoints", "exportTo"}], "workloads": [...]}')
    services = []
    for index, entry in enumerate(data["services"]):
        where = f"services[{index}]"
        if not isinstance(entry, dict):
            raise RegistryError(f"{where}: expected an object with hostname and namespace")
        ports = []
        for number, port in enumerate(_field(entry, "ports", list, where, [{"number": 80, "name": "http"}])):
            at = f"{where}.ports[{number}]"
            if not isinstance(port, dict):
                raise RegistryError(f"{at}: expected an object with number, protocol, name")
            value = _field(port, "number", int, at)
            if not 1 <= value <= 65535:
                raise RegistryError(f"{at}.number: {value} is not a port 1-65535")
            ports.append(ServicePort(value, _field(port, "protocol", str, at, "HTTP"), _field(port, "name", str, at, "")))
        endpoints = _field(entry, "endpoints", int, where, 1)
        if endpoints < 0:
            raise RegistryError(f"{where}.endpoints: {endpoints} is not a number of endpoints >= 0")
        export_to = _field(entry, "exportTo", list, where, [])
        if not all(isinstance(target, str) for target in export_to):
            raise RegistryError(f"{where}.exportTo: expected namespaces, '.', '*' or '~', got {export_to!r}")
        services.append(Service(_field(entry, "hostname", str, where), _field(entry, "namespace", str, where), tuple(ports), endpoints, tuple(export_to),
                                _field(entry, "registry", str, where, KUBERNETES)))
    workloads = []
    for index, entry in enumerate(_field(data, "workloads", list, "file", [])):
        where = f"workloads[{index}]"
        if not isinstance(entry, dict):
            raise RegistryError(f"{where}: expected an object with namespace, name, labels")
        labels = _field(entry, "labels", dict, where, {})
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in labels.items()):
            raise RegistryError(f"{where}.labels: labels are strings, got {labels!r}")
        workloads.append(Workload(_field(entry, "namespace", str, where), _field(entry, "name", str, where), dict(labels)))
    return services, workloads
