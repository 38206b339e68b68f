"""Lazy loading, as NetEase's Slime does it: proxies start knowing almost nothing and learn what they call.

Every fenced workload gets a Sidecar that imports only the mesh's own namespaces; traffic to any other
host matches no route of its own and goes, by an EnvoyFilter that replaces the ``allow_any`` virtual
host, to the **global sidecar**: a proxy with the full configuration that forwards the request to its
original destination and logs it. The **learner** reads that access log: a request that arrived from a
workload's address for an authority names one dependency of that workload's service. The **fence
controller** keeps a ServiceFence per service, turns its learned and static dependencies into domains,
and writes the service's Sidecar from them; istiod pushes it, and the next call goes direct. The first
call to each dependency pays the detour.

Slime's semantics, read in slime-io/slime at commit 043e38df (2025-02-26), modules/lazyload:
controllers/producer.go (accessLogHandler: only the global sidecar's inbound entries count, the
destination is the request's authority without port, an IP authority is skipped, a short name is
completed to an FQDN from the source's namespace), framework/model/metric/accesslog_convertor.go (what
is learned is never forgotten: a merge only adds keys), controllers/servicefence_controller.go
(domains from static hosts, label selectors and learned metrics; a domain that disappears goes ACTIVE
-> EXPIREWAIT and is dropped at the next update; a static host's RecyclingStrategy: stable, deadline,
or the deprecated auto, which expires a host not called for a duration; the Sidecar: the Istio and
Slime namespaces, stable hosts, ``*/<host>`` per live domain, sorted, selecting the service's pods),
producer.go (the metric is polled every 10 s), charts/global-sidecar (Service ``global-sidecar`` in
the Slime namespace, ``mesh-operator`` by default; the ``to-global-sidecar`` EnvoyFilter).

One meshlab option that Slime's access-log mode does not have: ``ttl_s`` forgets a learned dependency
not seen for that long. Once a dependency goes direct the global sidecar never sees it again, so a TTL
needs the proxies' own outbound logs too (Slime's Destinations comment says as much); with ``ttl_s`` the
learner reads them.

    SLIME_NAMESPACE, GLOBAL_SIDECAR, REFRESH_S, PUSH_DELAY_S   Slime's defaults; istiod's debounce
    AccessLogEntry      one access-log line: time, source address, authority, upstream cluster
    DependencyLearner   access log -> per source service ``{destination_service="<fqdn>"}``: count
    RecyclingStrategy   stable, deadline or auto, for a fence's static host
    Destinations        a domain's hosts and status (ACTIVE, EXPIREWAIT, EXPIRE)
    ServiceFence        a service's fence: static hosts and label selectors, learned metrics, domains
    FenceController     fence -> domains -> the Sidecar Slime writes
    LazyloadController  learner, fence controller and fences: fence a service, run one refresh round
    Call                one call's route: direct or through the global sidecar
    LazyLoading         a mesh under lazy loading on a simulated clock: call, advance, sidecars
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from meshlab.scoping.scope import DEFAULT_POLICY, ROOT_NAMESPACE, PushContext, Service, Workload
from meshlab.scoping.sidecar import TIMESTAMP, EgressListener, Sidecar

SLIME_NAMESPACE = "mesh-operator"  # Slime's default namespace (controllers/update_resources.go defaultSlimeNs)
#: The fallback's Service: ``global-sidecar`` in the Slime namespace, port 80 by default
#: (charts/global-sidecar/templates/cluster-global-sidecar.yaml).
GLOBAL_SIDECAR = f"global-sidecar.{SLIME_NAMESPACE}.svc.cluster.local"
REFRESH_S = 10.0  # controllers/producer.go: the ticker producer's Durations, 10 * time.Second
SERVICE_LABEL = "app"  # framework/bootstrap/config.go: global.service, the label a fence's Sidecar selects by
#: PILOT_DEBOUNCE_AFTER (Istio 1.30.3 pilot/pkg/features/tuning.go): a Sidecar written now reaches the
#: proxy after istiod's quiet period; the push itself is left out.
PUSH_DELAY_S = 0.1
ACTIVE, EXPIREWAIT, EXPIRE = "ACTIVE", "EXPIREWAIT", "EXPIRE"
_EPOCH = datetime(2026, 1, 1, tzinfo=timezone.utc)  # the simulated clock's zero, as a date for creationTimestamp


@dataclass(frozen=True)
class AccessLogEntry:
    """``upstream_cluster`` as Envoy logs it: ``inbound|80||`` on the global sidecar's side,
    ``outbound|80||<host>`` in a proxy's own log of a direct call."""

    time_s: float
    source_address: str
    authority: str
    upstream_cluster: str


class DependencyLearner:
    """Slime's access-log convertor: who called what, keyed as Slime keys its metric.

    ``addresses`` maps a pod address to the services it backs ("namespace/name"), as Slime's
    ipToSvc cache does; the same services complete short authorities."""

    def __init__(self, addresses: Mapping[str, Iterable[str]], ttl_s: float | None = None) -> None:
        if ttl_s is not None and ttl_s <= 0:
            raise ValueError(f"ttl_s must be > 0 seconds (None: never forget, as Slime), got {ttl_s!r}")
        self.addresses = {address: tuple(services) for address, services in addresses.items()}
        self.services = {service for services in self.addresses.values() for service in services}
        self.ttl_s = ttl_s
        self._learned: dict[str, dict[str, str]] = {}  # source "ns/name" -> metric key -> first count
        self._seen: dict[tuple[str, str], float] = {}  # (source, metric key) -> last time seen

    def destination(self, authority: str, source: str) -> str | None:
        """The FQDN a request's authority names, completed as Slime completes it; None for an IP."""
        host = authority.split(":")[0]
        try:
            ipaddress.ip_address(host)
            return None
        except ValueError:
            pass
        labels = host.split(".")
        if len(labels) == 1:
            return f"{host}.{source.split('/')[0]}.svc.cluster.local"
        if len(labels) == 2 and f"{labels[1]}/{labels[0]}" in self.services:
            return f"{host}.svc.cluster.local"
        if len(labels) == 3 and labels[2] == "svc" and f"{labels[1]}/{labels[0]}" in self.services:
            return f"{host}.cluster.local"
        return host

    def read(self, entries: Iterable[AccessLogEntry]) -> None:
        """Learn from access-log lines: the global sidecar's inbound ones always; with a TTL also the
        proxies' own outbound ones, which keep a dependency that now goes direct alive."""
        batch: dict[str, dict[str, int]] = {}
        for entry in entries:
            sources = self.addresses.get(entry.source_address, ())
            parts = entry.upstream_cluster.split("|")
            if not sources or len(parts) != 4:
                continue
            if parts[0] == "inbound":
                destinations = [self.destination(entry.authority, sources[0])]
            elif parts[0] == "outbound" and self.ttl_s is not None:
                destinations = [parts[3]]
            else:
                continue
            for source in sources:
                for fqdn in destinations:
                    if fqdn is None:
                        continue
                    key = f'{{destination_service="{fqdn}"}}'
                    batch.setdefault(source, {}).setdefault(key, 0)
                    batch[source][key] += 1
                    self._seen[(source, key)] = max(self._seen.get((source, key), entry.time_s), entry.time_s)
        for source, counts in batch.items():
            learned = self._learned.setdefault(source, {})
            for key, count in counts.items():
                learned.setdefault(key, str(count))  # Slime's valueMerge adds new keys, never updates old ones

    def metric(self, now_s: float) -> dict[str, dict[str, str]]:
        """What the controller is told: per source service, its metricStatus."""
        if self.ttl_s is not None:
            for (source, key), seen in list(self._seen.items()):
                if now_s - seen > self.ttl_s:
                    del self._seen[(source, key)]
                    self._learned.get(source, {}).pop(key, None)
        return {source: dict(values) for source, values in self._learned.items()}


@dataclass(frozen=True)
class RecyclingStrategy:
    """``stable``: kept; ``deadline``: until ``expire_s``; ``auto`` (deprecated in Slime): until
    ``duration_s`` after it was last called (``recently_called_s``)."""

    kind: str = "stable"
    expire_s: float = 0.0
    duration_s: float = 0.0
    recently_called_s: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("stable", "deadline", "auto"):
            raise ValueError(f"a recycling strategy is stable, deadline or auto, got {self.kind!r}")

    def status(self, now_s: float) -> str:
        if self.kind == "deadline" and now_s > self.expire_s:
            return EXPIRE
        if self.kind == "auto" and self.recently_called_s is not None and now_s - self.recently_called_s > self.duration_s:
            return EXPIRE
        return ACTIVE


@dataclass
class Destinations:
    hosts: list[str]
    status: str = ACTIVE


@dataclass
class ServiceFence:
    """One service's fence. ``host``: static dependencies, an FQDN or ``namespace/*`` (a namespace-wide
    fallback); ``label_selector``: services carrying all of one selector's labels (a label-based one);
    ``workload_selector``: the pods its Sidecar applies to (default: ``app: <name>``)."""

    namespace: str
    name: str
    enable: bool = True
    host: dict[str, RecyclingStrategy] = field(default_factory=dict)
    label_selector: list[dict[str, str]] = field(default_factory=list)
    workload_selector: dict[str, str] | None = None
    metric_status: dict[str, str] = field(default_factory=dict)
    domains: dict[str, Destinations] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


def _valid_host(host: str) -> bool:
    """controllers/servicefence_controller.go isValidHost."""
    return "global-sidecar" not in host and ":" not in host and "unknown" not in host


class FenceController:
    """Slime's ServicefenceReconciler, without Kubernetes: fences in, Sidecars out.

    ``services`` are the mesh's services with their labels (for label selectors and ``namespace/*``)."""

    def __init__(self, services: Iterable[Service], labels: Mapping[str, Mapping[str, str]] | None = None,
                 istio_namespace: str = ROOT_NAMESPACE, slime_namespace: str = SLIME_NAMESPACE, stable_hosts: Iterable[str] = ()) -> None:
        self.services = list(services)
        self.labels = {key: dict(value) for key, value in (labels or {}).items()}  # "ns/name" -> labels
        self.default_namespaces = [istio_namespace] + ([slime_namespace] if slime_namespace != istio_namespace else [])
        self.stable_hosts = list(stable_hosts)
        self.created: dict[str, str] = {}  # fence key -> its Sidecar's creationTimestamp

    def update_domains(self, fence: ServiceFence, now_s: float) -> None:
        """updateServicefenceDomain: recompute, and keep a vanished ACTIVE domain one round as EXPIREWAIT."""
        domains: dict[str, Destinations] = {}
        for host, strategy in fence.host.items():
            if host.endswith("/*"):
                domains[host] = Destinations([], ACTIVE)  # hosts would come from VirtualService destinations, not modelled
            elif _valid_host(host) and host not in domains:
                domains[host] = Destinations([host], strategy.status(now_s))
        for selector in fence.label_selector:
            for key, labels in self.labels.items():
                namespace, name = key.split("/")
                fqdn = f"{name}.{namespace}.svc.cluster.local"
                if selector.items() <= labels.items() and _valid_host(fqdn):
                    domains.setdefault(fqdn, Destinations([fqdn]))
        for metric in fence.metric_status:
            parts = metric.strip("{}").split('"')
            if not (metric.strip("{}").startswith(("destination_service", "request_host")) and len(parts) == 3):
                continue
            fqdn = parts[1].split(":")[0]
            if _valid_host(fqdn):
                domains.setdefault(fqdn, Destinations([fqdn]))
        for name, old in fence.domains.items():
            if name not in domains and old.status == ACTIVE:
                domains[name] = Destinations(old.hosts, EXPIREWAIT)
        fence.domains = domains

    def refresh(self, fence: ServiceFence, metric_status: Mapping[str, str], now_s: float) -> Sidecar | None:
        """A new metric for ``fence``: nothing happens if it is unchanged, as in Slime's Refresh;
        otherwise the domains are updated and the Sidecar to write is returned."""
        if dict(metric_status) == fence.metric_status:
            return None
        fence.metric_status = dict(metric_status)
        self.update_domains(fence, now_s)
        return self.sidecar(fence, now_s)

    def sidecar(self, fence: ServiceFence, now_s: float = 0.0) -> Sidecar | None:
        """newSidecar: the Sidecar Slime writes for ``fence`` (None when the fence is not enabled)."""
        if not fence.enable:
            return None
        hosts = [f"{namespace}/*" for namespace in self.default_namespaces]
        hosts += [host if host.endswith("/*") else f"*/{host}" for host in self.stable_hosts]
        for name, destinations in fence.domains.items():
            if destinations.status not in (ACTIVE, EXPIREWAIT):
                continue
            if name.endswith("/*") and name[:-2] not in self.default_namespaces:
                hosts.append(name)
            hosts += [f"*/{host}" for host in destinations.hosts]
        selector = dict(fence.workload_selector) if fence.workload_selector else {SERVICE_LABEL: fence.name}
        created = self.created.setdefault(fence.key, (_EPOCH + timedelta(seconds=now_s)).strftime(TIMESTAMP))
        return Sidecar(fence.name, fence.namespace, selector, (EgressListener(tuple(sorted(set(hosts)))),), creation_timestamp=created)


class LazyloadController:
    """Slime's lazyload controller, once for the model (``LazyLoading``, on a simulated clock) and the
    live lab (``meshlab.lab.lazyload``, on the wall clock): the learner, the fence controller and a
    ServiceFence per fenced service. ``fence`` starts a service fenced; ``round`` is one refresh of
    producer.go's ticker: read the global sidecar's new log entries, rewrite the Sidecars whose
    learned dependencies changed."""

    def __init__(self, services: Iterable[Service], addresses: Mapping[str, Iterable[str]],
                 labels: Mapping[str, Mapping[str, str]] | None = None, ttl_s: float | None = None) -> None:
        self.learner = DependencyLearner(addresses, ttl_s)
        self.controller = FenceController(services, labels)
        self.fences: dict[str, ServiceFence] = {}

    def fence(self, fence: ServiceFence, now_s: float) -> Sidecar | None:
        """Fence a service: its domains from its static hosts and selectors, and the Sidecar it starts with."""
        self.fences[fence.key] = fence
        self.controller.update_domains(fence, now_s)
        return self.controller.sidecar(fence, now_s)

    def round(self, entries: Iterable[AccessLogEntry], now_s: float) -> list[Sidecar]:
        """One refresh: the Sidecars rewritten, in the learner's order of sources."""
        self.learner.read(entries)
        written = []
        for source, metric in self.learner.metric(now_s).items():
            fence = self.fences.get(source)
            sidecar = self.controller.refresh(fence, metric, now_s) if fence is not None else None
            if sidecar is not None:
                written.append(sidecar)
        return written


@dataclass(frozen=True)
class Call:
    time_s: float
    source: str  # workload "namespace/name"
    destination: str  # hostname called
    via: str  # "direct" or "global-sidecar"


class LazyLoading:
    """A mesh whose services are all fenced (Slime's autoFence with defaultFence), on a simulated clock.

    ``call`` routes one request by the Sidecars in force at that moment and logs it; ``advance`` runs
    the learner and the controller every ``refresh_s`` up to a time; a Sidecar written at ``t`` is in
    force from ``t + push_delay_s``. ``workloads`` map each pod address to its workload."""

    def __init__(self, services: Iterable[Service], workloads: Mapping[str, Workload], ttl_s: float | None = None,
                 refresh_s: float = REFRESH_S, push_delay_s: float = PUSH_DELAY_S, labels: Mapping[str, Mapping[str, str]] | None = None,
                 fences: Iterable[ServiceFence] = ()) -> None:
        if refresh_s <= 0 or push_delay_s < 0:
            raise ValueError(f"refresh_s must be > 0 and push_delay_s >= 0, got {refresh_s!r} and {push_delay_s!r}")
        self.services = list(services)
        self.workloads = dict(workloads)
        self.refresh_s, self.push_delay_s = refresh_s, push_delay_s
        backs = {address: [f"{w.namespace}/{h.split('.')[0]}" for h in w.services] for address, w in self.workloads.items()}
        self.lazyload = LazyloadController(self.services, backs, labels, ttl_s)
        starting = {fence.key: fence for fence in fences}
        for workload in self.workloads.values():
            for hostname in workload.services:
                name = hostname.split(".")[0]
                starting.setdefault(f"{workload.namespace}/{name}", ServiceFence(workload.namespace, name))
        self._address_of = {f"{w.namespace}/{w.name}": address for address, w in self.workloads.items()}
        self.written: list[tuple[float, Sidecar]] = []  # every Sidecar write, in order
        self._pending: list[tuple[float, Sidecar]] = []  # written, not yet pushed
        self._in_force: dict[str, Sidecar] = {}
        self._log: list[AccessLogEntry] = []
        self.calls: list[Call] = []
        self.now_s = 0.0
        self.push_context = PushContext(self.services)
        for fence in starting.values():  # the mesh starts fenced: these are in force from the start
            self._write(0.0, self.lazyload.fence(fence, 0.0))
        self._apply(float("inf"))

    def _write(self, now_s: float, sidecar: Sidecar | None) -> None:
        if sidecar is not None:
            self.written.append((now_s, sidecar))
            self._pending.append((now_s + self.push_delay_s, sidecar))

    def _apply(self, until_s: float) -> None:
        ready = [s for t, s in self._pending if t <= until_s]
        if ready:
            self._pending = [(t, s) for t, s in self._pending if t > until_s]
            self._in_force.update((s.key, s) for s in ready)
            self.push_context = PushContext(self.services, self._in_force.values(), outbound_traffic_policy=DEFAULT_POLICY)

    def sidecars(self) -> list[Sidecar]:
        """The Sidecars in force now."""
        return list(self._in_force.values())

    def advance(self, until_s: float) -> None:
        """Run the controller's refreshes (every ``refresh_s``) and istiod's pushes up to ``until_s``."""
        if until_s < self.now_s:
            raise ValueError(f"time runs forward: now {self.now_s} s, asked for {until_s} s")
        tick = (int(self.now_s / self.refresh_s) + 1) * self.refresh_s
        while tick <= until_s:
            self._apply(tick)
            entries = [e for e in self._log if e.time_s <= tick]
            self._log = [e for e in self._log if e.time_s > tick]
            for sidecar in self.lazyload.round(entries, tick):
                self._write(tick, sidecar)
            tick += self.refresh_s
        self._apply(until_s)
        self.now_s = until_s

    def call(self, time_s: float, source: str, hostname: str) -> Call:
        """``source`` ("namespace/name" of a workload) calls ``hostname`` at ``time_s``."""
        address = self._address_of.get(source)
        if address is None:
            raise KeyError(f"no workload {source!r}; workloads are namespace/name, e.g. {next(iter(self._address_of), 'shop/reviews-0')}")
        self.advance(time_s)
        workload = self.workloads[address]
        direct = hostname in self.push_context.sidecar_scope(workload).hostnames
        self._log.append(AccessLogEntry(time_s, address, hostname, f"outbound|80||{hostname}" if direct else "inbound|80||"))
        call = Call(time_s, source, hostname, "direct" if direct else "global-sidecar")
        self.calls.append(call)
        return call
