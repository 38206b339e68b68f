"""The model's measurements against mesh size: what scoping saves, on chapter 01's call graphs.

The mesh: N services grown by chapter 01's call graph (``meshlab.microservices.callgraph``, seeded);
teams of TEAM_SIZE consecutive services share a namespace (meshlab's assumption); each service has
replicas in the proportion of Huabing Zhao's mesh (466 instances for 325 services, ``xds.memory``),
one proxy each; istiod's Service is in istio-system. Three ways to run it:

- **unscoped**: no Sidecar; every proxy holds every service;
- **hand-written**: one Sidecar per namespace, as platform teams write them: ``./*``,
  ``istio-system/*`` and ``<namespace>/*`` for every namespace its services call;
- **lazy loading after warm-up**: every service fenced (``scoping.lazyload``), each dependency called
  once through the global sidecar, which (one replica, Slime's default) holds everything.

What is measured, with chapter 06's numbers rather than new ones:

- configuration per proxy: the services in its SidecarScope, counted in the mix of Huabing Zhao's mesh
  as chapter 06 counts them (``HUABING_UNSCOPED.for_services``), and Envoy's memory for it
  (``ENVOY_ISTIO_1_24``);
- push bytes per change: a change to one service (its ServiceEntry config key) is pushed in full to
  every proxy whose scope depends on it, and to the service's own proxies (Istio 1.30.3
  pilot/pkg/xds/proxy_dependencies.go); bytes at the bytes per resource of Istio's own benchmark
  (BYTES_PER_RESOURCE); the mean over a change to each service;
- push time per change: ``simulate_fleet`` with those scopes (2 cores, the automatic throttle, the
  default debounce) for a seeded sample of changes, from the change to the last proxy updated;
- istiod memory: ISTIOD_BASE_MB plus the configuration istiod generates for its proxies at
  BYTES_PER_RESOURCE (meshlab's assumption: what istiod holds grows with what it sends), the base
  fitted to istio.io's load-test figure.

    TEAM_SIZE, BYTES_PER_RESOURCE, LOAD_TEST_*, ISTIOD_BASE_MB, WARMUP_S   the model's constants, sourced
    resources_for    services held -> resources, in the mix of Huabing Zhao's mesh
    MeshModel        a seeded mesh: services, workloads by address, who calls whom
    mesh_model       N services and a seed -> MeshModel
    handwritten_sidecars  one namespace Sidecar per team
    warm_up          the mesh under lazy loading after each dependency was called once
    ProxyScopes      proxies and their scopes, as simulate_fleet's FleetScope
    StrategySizes    one strategy's figures
    measure          a MeshModel -> the figures of the three strategies
"""

from __future__ import annotations

import ipaddress
import random
from dataclasses import dataclass

from meshlab.microservices.callgraph import grow_call_graph
from meshlab.scoping.lazyload import GLOBAL_SIDECAR, PUSH_DELAY_S, REFRESH_S, SLIME_NAMESPACE, LazyLoading
from meshlab.scoping.scope import ROOT_NAMESPACE, PushContext, Service, SidecarScope, Workload, needs_push
from meshlab.scoping.sidecar import EgressListener, Sidecar
from meshlab.xds.memory import ENVOY_ISTIO_1_24, HUABING_UNSCOPED
from meshlab.xds.pushrequest import PushRequest
from meshlab.xds.simulate import BENCHMARK_RESOURCES, simulate_fleet

TEAM_SIZE = 10  # services per namespace: meshlab's assumption
#: Istio's xDS benchmark as run in istio/istio#25116 (June 2020): 410 clusters came to 76 kB (the same
#: run that gives simulate.PER_RESOURCE_MS), about 185 bytes per resource.
BENCHMARK_BYTES = 76_000
BYTES_PER_RESOURCE = BENCHMARK_BYTES / BENCHMARK_RESOURCES
#: istio.io "Performance and Scalability" (the Istio 1.12 to 1.16 pages): the load-test mesh of 1000
#: services and 2000 sidecars; "Istiod uses 1 vCPU and 1.5 GB of memory". The page does not say
#: whether its proxies were scoped; meshlab takes them as unscoped.
LOAD_TEST_SERVICES, LOAD_TEST_SIDECARS, LOAD_TEST_ISTIOD_MB = 1000, 2000, 1500.0
WARMUP_S = 60.0  # the warm-up: every dependency is called once within this minute
SAMPLES = 5  # changes simulated per strategy for the push time
ISTIOD = Service(f"istiod.{ROOT_NAMESPACE}.svc.cluster.local", ROOT_NAMESPACE)
LAZYLOAD_SERVICES = (Service(GLOBAL_SIDECAR, SLIME_NAMESPACE), Service(f"lazyload.{SLIME_NAMESPACE}.svc.cluster.local", SLIME_NAMESPACE))


def resources_for(services: int) -> int:
    """What a proxy holding ``services`` services holds, in the mix of Huabing Zhao's mesh."""
    return HUABING_UNSCOPED.for_services(services, HUABING_UNSCOPED.clusters).resources


ISTIOD_BASE_MB = LOAD_TEST_ISTIOD_MB - LOAD_TEST_SIDECARS * resources_for(LOAD_TEST_SERVICES) * BYTES_PER_RESOURCE / 1e6


@dataclass(frozen=True)
class MeshModel:
    services: tuple[Service, ...]  # the call graph's, then istiod
    workloads: dict[str, Workload]  # pod address -> workload, one per replica
    calls: dict[str, tuple[str, ...]]  # hostname -> the hostnames it calls

    @property
    def dependencies(self) -> int:
        return sum(len(callees) for callees in self.calls.values())


def mesh_model(services: int, seed: int = 0) -> MeshModel:
    """The mesh of ``services`` services grown by chapter 01's call graph with ``seed``."""
    if isinstance(services, bool) or not isinstance(services, int) or services < 2:
        raise ValueError(f"services must be a whole number >= 2, got {services!r}")
    graph = grow_call_graph(services, seed)
    hostname = {name: f"{name}.team-{index // TEAM_SIZE:03d}.svc.cluster.local" for index, name in enumerate(graph.nodes)}
    mesh = tuple(Service(host, host.split(".")[1]) for host in hostname.values())
    rng = random.Random(seed)
    total = round(services * HUABING_UNSCOPED.endpoints / HUABING_UNSCOPED.clusters)
    doubled = set(rng.sample(range(services), min(services, total - services)))
    workloads: dict[str, Workload] = {}
    for index, service in enumerate(mesh):
        name = service.hostname.split(".")[0]
        for replica in range(2 if index in doubled else 1):
            address = str(ipaddress.IPv4Address(0x0A000000 + len(workloads) + 1))
            workloads[address] = Workload(service.namespace, f"{name}-{replica}", {"app": name}, (service.hostname,))
    calls = {hostname[caller]: tuple(hostname[callee] for callee in graph.successors(caller)) for caller in graph.nodes}
    return MeshModel(mesh + (ISTIOD,), workloads, calls)


def handwritten_sidecars(model: MeshModel) -> list[Sidecar]:
    """One Sidecar per namespace: its own namespace, istio-system and every namespace it calls."""
    called: dict[str, set[str]] = {}
    for caller, callees in model.calls.items():
        called.setdefault(caller.split(".")[1], set()).update(callee.split(".")[1] for callee in callees)
    return [Sidecar("default", namespace, None, (EgressListener(("./*", f"{ROOT_NAMESPACE}/*", *(f"{n}/*" for n in sorted(targets - {namespace})))),))
            for namespace, targets in sorted(called.items())]


class ProxyScopes:
    """Proxies (numbered in order) with their scopes: ``simulate_fleet``'s FleetScope."""

    def __init__(self, proxies: list[tuple[Workload, SidecarScope]]) -> None:
        self.proxies = proxies
        self.held = [resources_for(len(scope.services)) for _, scope in proxies]

    def resources(self, proxy: int) -> int:
        return self.held[proxy]

    def needs_push(self, proxy: int, request: PushRequest) -> bool:
        workload, scope = self.proxies[proxy]
        return needs_push(scope, request.configs, workload)

    def push_bytes(self, service: Service) -> float:
        """Bytes a full push of a change to ``service`` sends, over every proxy it concerns."""
        return sum(self.held[p] for p in range(len(self.proxies)) if self.needs_push(p, PushRequest(True, frozenset({service.key})))) * BYTES_PER_RESOURCE

    def mean_push_bytes(self, services: list[Service]) -> float:
        """The mean of ``push_bytes`` over a change to each of ``services``, summed per scope."""
        per_host = dict.fromkeys((s.hostname for s in services), 0.0)
        weight: dict[int, list] = {}  # id(scope.services) -> [services, total resources of its proxies]
        for (workload, scope), held in zip(self.proxies, self.held):
            weight.setdefault(id(scope.services), [scope.services, 0])[1] += held
            for host in workload.services:
                if host not in scope.hostnames and host in per_host:
                    per_host[host] += held
        for scoped, total in weight.values():
            for service in scoped:
                if service.hostname in per_host:
                    per_host[service.hostname] += total
        return sum(per_host.values()) * BYTES_PER_RESOURCE / len(per_host)


@dataclass(frozen=True)
class StrategySizes:
    strategy: str
    proxies: int
    services_per_proxy: float
    resources_per_proxy: float
    envoy_mb: float  # mean resident memory of one Envoy
    push_bytes_per_change: float
    push_ms_per_change: float
    istiod_mb: float
    detours: int = 0  # warm-up calls that went through the global sidecar (lazy loading)

    def as_dict(self) -> dict:
        return {"strategy": self.strategy, "proxies": self.proxies, "services_per_proxy": round(self.services_per_proxy, 1),
                "resources_per_proxy": round(self.resources_per_proxy, 1), "envoy_mb": round(self.envoy_mb, 1),
                "push_kb_per_change": round(self.push_bytes_per_change / 1000, 1), "push_ms_per_change": round(self.push_ms_per_change, 1),
                "istiod_mb": round(self.istiod_mb), "detours": self.detours}


def _sizes(strategy: str, scopes: ProxyScopes, changes: list[Service], graph_services: list[Service], detours: int = 0) -> StrategySizes:
    count = len(scopes.proxies)
    held = sum(scopes.held)
    envoy = sum(ENVOY_ISTIO_1_24.resident_mb(HUABING_UNSCOPED.for_services(len(scope.services), HUABING_UNSCOPED.clusters)) for _, scope in scopes.proxies)
    times = []
    for service in changes:
        result = simulate_fleet(count, [(0.0, PushRequest(True, frozenset({service.key}), {"config": 1}, 0.0))], scope=scopes)
        times.append(result.propagation_ms[0])
    return StrategySizes(strategy, count, sum(len(scope.services) for _, scope in scopes.proxies) / count, held / count, envoy / count,
                         scopes.mean_push_bytes(graph_services), sum(times) / len(times), ISTIOD_BASE_MB + held * BYTES_PER_RESOURCE / 1e6, detours)


def warm_up(model: MeshModel, seed: int = 0) -> tuple[LazyLoading, int]:
    """The mesh under lazy loading after each dependency was called once, at a seeded time within
    WARMUP_S, by its caller's first replica; and how many of those calls went through the global sidecar."""
    lazy = LazyLoading(model.services + LAZYLOAD_SERVICES, model.workloads)
    rng = random.Random(seed)
    first_replica = {w.services[0]: f"{w.namespace}/{w.name}" for w in reversed(list(model.workloads.values()))}
    warmup = sorted((rng.uniform(0, WARMUP_S), first_replica[caller], callee) for caller, callees in model.calls.items() for callee in callees)
    detours = sum(lazy.call(t, source, callee).via == "global-sidecar" for t, source, callee in warmup)
    lazy.advance(WARMUP_S + 2 * REFRESH_S + PUSH_DELAY_S)  # the last calls learned, their Sidecars pushed
    return lazy, detours


def measure(model: MeshModel, seed: int = 0, samples: int = SAMPLES) -> list[StrategySizes]:
    """Unscoped, hand-written and lazy loading's figures for ``model``; ``seed`` draws the sampled
    changes and the warm-up's call times."""
    graph_services = list(model.services[:-1])
    changes = random.Random(seed).sample(graph_services, min(samples, len(graph_services)))
    workloads = list(model.workloads.values())
    unscoped = PushContext(model.services)
    handwritten = PushContext(model.services, handwritten_sidecars(model))
    figures = [_sizes("unscoped", ProxyScopes([(w, unscoped.sidecar_scope(w)) for w in workloads]), changes, graph_services),
               _sizes("hand-written", ProxyScopes([(w, handwritten.sidecar_scope(w)) for w in workloads]), changes, graph_services)]
    lazy, detours = warm_up(model, seed)
    fallback = Workload(SLIME_NAMESPACE, "global-sidecar-0", {"app": "global-sidecar"}, (GLOBAL_SIDECAR,))
    proxies = [(w, lazy.push_context.sidecar_scope(w)) for w in workloads + [fallback]]
    figures.append(_sizes("lazy loading", ProxyScopes(proxies), changes, graph_services, detours))
    return figures
