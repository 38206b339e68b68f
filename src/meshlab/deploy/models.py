"""Four places for the proxy, computed for a topology: sidecar, per-node, per-service-account, ambient.

Each model decides which proxies exist and which pods each one serves; everything else follows:
cost (memory from the configuration each proxy holds, CPU from the requests it handles), identities
(whose keys sit in one proxy, and on one node), failure and upgrade domains (pods that lose traffic
when one proxy goes), and the request path (proxy hops, and whether an L7 proxy sees the request).

- sidecar: one Envoy per pod.
- per-node: one shared proxy per node (a DaemonSet: on every node, meshed pods or not), serving
  its node's pods, as Linkerd 1's per-host model or Cilium's per-node Envoy.
- per-service-account: one proxy per (node, service account) that has pods.
- ambient: a ztunnel per node (DaemonSet, L4 only: mTLS, identity, L4 policy) plus a waypoint
  (Envoy, L7) per namespace, as Istio's ambient mode (GA in 1.24) enrols namespaces by default.

The seed article's fourth model is not ambient: it puts an L4 *micro-proxy in every pod* and moves
L7 to shared remote proxies. Ambient keeps the shared L7 proxies (waypoints, per namespace or per
service; per service account in its 2022 alpha) but runs its L4 proxy once per *node*, so for L4 it
inherits the per-node model's figures: a ztunnel holds the keys of every account on its node and
cuts off its whole node when it fails. meshlab computes ambient as Istio ships it.

Memory is :mod:`meshlab.xds.memory`'s model: an Envoy costs a base plus a cost per listener, cluster
and endpoint it holds; request rate does not enter. What a proxy holds (meshlab's counting rule): a
service is a (namespace, service account) pair whose endpoints are its pods; an Envoy holds, for each
service it can reach, one outbound listener, one cluster and the service's endpoints, and one inbound
cluster per service among the pods it serves. Unscoped (Istio's default) it can reach every service
in the mesh; scoped (a Sidecar resource listing what its pods call) only those. A waypoint holds the
services of its namespace. A ztunnel costs its published 12 MB (no per-resource figure is published).

    Proxy         one proxy: name, kind, node, pods it serves, whether it applies L7 policy
    ModelResult   the figures of one model
    MODELS        the four model names
    proxies_for   the proxies of a model for a topology
    config_held   the configuration one proxy holds, scoped or not
    memory_mb     the resident memory of one proxy
    evaluate      ModelResult for a model and a topology
    compare       all four, as the JSON ``meshlab deploy compare`` prints
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from meshlab.deploy.topology import Call, Topology
from meshlab.xds.memory import ENVOY_ISTIO_1_24, ZTUNNEL_MB, ProxyConfig

MODELS = ("sidecar", "per-node", "per-service-account", "ambient")

#: Istio 1.24 "Performance and Scalability" (istio.io), at 1000 rps with 1 KB payloads:
#: sidecar ~0.20 vCPU, waypoint ~0.25 vCPU, ztunnel ~0.06 vCPU. meshlab charges the CPU per 1000
#: requests per second a proxy handles; a shared per-node or per-service-account proxy is an Envoy,
#: so it uses the sidecar's figure.
VCPU_PER_1000_RPS = {"envoy": 0.20, "waypoint": 0.25, "ztunnel": 0.06}
CALIBRATION_SOURCE = ("CPU: istio.io Performance and Scalability, Istio 1.24 (1000 rps, 1 KB payload); "
                      f"memory: {ENVOY_ISTIO_1_24.base_mb:g} MB per Envoy + {ENVOY_ISTIO_1_24.per_resource_kb:.0f} kB per resource held "
                      f"(meshlab.xds.memory), ztunnel {ZTUNNEL_MB:g} MB")


@dataclass(frozen=True)
class Proxy:
    name: str
    kind: str  # "envoy", "ztunnel" or "waypoint"
    node: str
    pods: frozenset[str]
    l7: bool


@dataclass
class ModelResult:
    model: str
    proxies: list[Proxy]
    memory_mb: float
    cpu_cores: float
    blast_radius_max_pods: int
    pod_restarts_for_upgrade: int
    keys_per_node_max: int
    identities_per_proxy_max: int
    hops_per_request: float
    l7_fraction: float
    extra: dict = field(default_factory=dict)

    def as_json(self) -> dict:
        figures = {
            "proxies": len(self.proxies),
            "memory_mb": round(self.memory_mb, 1),
            "cpu_cores": round(self.cpu_cores, 3),
            "blast_radius_max_pods": self.blast_radius_max_pods,
            "upgrade_blast_radius_max_pods": self.blast_radius_max_pods,  # upgrading a proxy restarts it: the same pods
            "pod_restarts_for_upgrade": self.pod_restarts_for_upgrade,
            "keys_per_node_max": self.keys_per_node_max,
            "identities_per_proxy_max": self.identities_per_proxy_max,
            "hops_per_request": round(self.hops_per_request, 3),
            "l7_fraction": round(self.l7_fraction, 3),
        }
        return {**figures, **self.extra}


def _waypoint_node(topology: Topology, namespace: str) -> str:
    """A waypoint is a Deployment; meshlab places it on the node with most of its namespace's pods."""
    counts = Counter(topology.pod(p)["node"] for p in topology.pods if topology.pod(p)["namespace"] == namespace)
    return min(counts, key=lambda node: (-counts[node], node))


def proxies_for(model: str, topology: Topology, waypoint_namespaces: set[str] | None = None) -> list[Proxy]:
    """The proxies of ``model``; for ambient, waypoints for ``waypoint_namespaces`` (default: every namespace)."""
    if model not in MODELS:
        raise ValueError(f"unknown model {model!r}; models are {', '.join(MODELS)}")
    pods = topology.pods
    if model == "sidecar":
        return [Proxy(f"sidecar/{pod}", "envoy", topology.pod(pod)["node"], frozenset({pod}), True) for pod in pods]
    if model == "per-node":
        return [Proxy(f"node-proxy/{node}", "envoy", node, frozenset(topology.pods_on(node)), True) for node in topology.nodes]
    if model == "per-service-account":
        groups: dict[tuple[str, str], set[str]] = {}
        for pod in pods:
            groups.setdefault((topology.pod(pod)["node"], topology.pod(pod)["service_account"]), set()).add(pod)
        return [Proxy(f"sa-proxy/{node}/{sa}", "envoy", node, frozenset(members), True) for (node, sa), members in sorted(groups.items())]
    ztunnels = [Proxy(f"ztunnel/{node}", "ztunnel", node, frozenset(topology.pods_on(node)), False) for node in topology.nodes]
    namespaces = sorted({topology.pod(pod)["namespace"] for pod in pods})
    if waypoint_namespaces is not None:
        unknown = sorted(set(waypoint_namespaces) - set(namespaces))
        if unknown:
            raise ValueError(f"no namespace {unknown[0]!r} for a waypoint; namespaces are {', '.join(namespaces)}")
        namespaces = sorted(waypoint_namespaces)
    waypoints = [Proxy(f"waypoint/{ns}", "waypoint", _waypoint_node(topology, ns), frozenset(p for p in pods if topology.pod(p)["namespace"] == ns), True) for ns in namespaces]
    return ztunnels + waypoints


def path(proxies: list[Proxy], call: Call) -> list[Proxy]:
    """The proxies one request passes, in order. A shared proxy serving both ends handles the request
    once, unless the request leaves it for a waypoint and comes back (ztunnel -> waypoint -> ztunnel)."""
    def serving(pod: str, kinds: tuple[str, ...]) -> Proxy | None:
        return next((p for p in proxies if pod in p.pods and p.kind in kinds), None)

    kinds = ("ztunnel",) if any(p.kind == "ztunnel" for p in proxies) else ("envoy",)
    source, target = serving(call.source, kinds), serving(call.target, kinds)
    waypoint = serving(call.target, ("waypoint",))
    if waypoint is not None:
        return [source, waypoint, target]
    return [source] if source == target else [source, target]


def _service(topology: Topology, pod: str) -> tuple[str, str]:
    return topology.pod(pod)["namespace"], topology.pod(pod)["service_account"]


def config_held(proxy: Proxy, topology: Topology, scoped: bool = False) -> ProxyConfig:
    """What one Envoy holds, by the counting rule in the module docstring (a ztunnel holds none that
    meshlab charges for)."""
    if proxy.kind == "ztunnel":
        return ProxyConfig()
    endpoints = Counter(_service(topology, pod) for pod in topology.pods)
    inbound = {_service(topology, pod) for pod in proxy.pods}
    if proxy.kind == "waypoint":  # the services of the pods it fronts: its namespace's
        return ProxyConfig(listeners=len(inbound), clusters=len(inbound), endpoints=sum(endpoints[s] for s in inbound))
    if scoped:
        reachable = {_service(topology, call.target) for call in topology.calls() if call.source in proxy.pods}
    else:
        reachable = set(endpoints)
    return ProxyConfig(listeners=len(reachable), clusters=len(reachable) + len(inbound), endpoints=sum(endpoints[s] for s in reachable))


def memory_mb(proxy: Proxy, config: ProxyConfig) -> float:
    """Resident memory of one proxy: a ztunnel's published figure, or an Envoy's for what it holds."""
    return ZTUNNEL_MB if proxy.kind == "ztunnel" else ENVOY_ISTIO_1_24.resident_mb(config)


def evaluate(model: str, topology: Topology, waypoint_namespaces: set[str] | None = None, scoped: bool = False) -> ModelResult:
    """The figures of ``model``; ``scoped`` gives every Envoy but a waypoint a Sidecar resource that
    lists only what its pods call (waypoints hold their namespace's services either way)."""
    proxies = proxies_for(model, topology, waypoint_namespaces)
    calls = topology.calls()
    handled: Counter = Counter()
    hops_weighted = l7_weighted = total_rps = 0.0
    for call in calls:
        hops = path(proxies, call)
        for proxy in hops:
            handled[proxy.name] += call.rps
        hops_weighted += len(hops) * call.rps
        l7_weighted += any(p.l7 for p in hops) * call.rps
        total_rps += call.rps
    configs = [config_held(p, topology, scoped) for p in proxies]
    memory = sum(memory_mb(p, config) for p, config in zip(proxies, configs))
    cpu = sum(VCPU_PER_1000_RPS[p.kind] * handled[p.name] / 1000 for p in proxies)
    keys_per_node = {node: _keys_on(node, model, proxies, topology) for node in topology.nodes}
    identities_per_proxy = [len({topology.pod(pod)["service_account"] for pod in p.pods}) if p.kind != "waypoint" else 1 for p in proxies]
    blast = max(len(p.pods) for p in proxies)
    extra = {"config_resources_max": max(config.resources for config in configs)}
    if model == "ambient":
        extra |= {"ztunnels": sum(p.kind == "ztunnel" for p in proxies), "waypoints": sum(p.kind == "waypoint" for p in proxies)}
    return ModelResult(
        model=model,
        proxies=proxies,
        memory_mb=memory,
        cpu_cores=cpu,
        blast_radius_max_pods=blast,
        pod_restarts_for_upgrade=len(topology.pods) if model == "sidecar" else 0,
        keys_per_node_max=max(keys_per_node.values()),
        identities_per_proxy_max=max(identities_per_proxy),
        hops_per_request=hops_weighted / total_rps if total_rps else 0.0,
        l7_fraction=l7_weighted / total_rps if total_rps else 0.0,
        extra=extra,
    )


def _keys_on(node: str, model: str, proxies: list[Proxy], topology: Topology) -> int:
    """Private keys held on a node: a sidecar holds its pod's; a shared proxy holds one per service
    account it serves (it must present each identity); a waypoint holds its own."""
    keys = 0
    for proxy in proxies:
        if proxy.node != node:
            continue
        if proxy.kind == "waypoint":
            keys += 1
        elif model == "sidecar":
            keys += 1
        else:
            keys += len({topology.pod(pod)["service_account"] for pod in proxy.pods})
    return keys


def compromised_node_exposes(model: str, topology: Topology, node: str) -> set[str]:
    """Identities (service accounts, and waypoints) whose keys an attacker with root on ``node`` gets."""
    exposed = set()
    for proxy in proxies_for(model, topology):
        if proxy.node == node:
            exposed |= {f"waypoint:{proxy.name.split('/')[1]}"} if proxy.kind == "waypoint" else {topology.pod(pod)["service_account"] for pod in proxy.pods}
    return exposed


def compare(topology: Topology, waypoint_namespaces: set[str] | None = None, scoped: bool = False) -> dict:
    models = {model: evaluate(model, topology, waypoint_namespaces if model == "ambient" else None, scoped).as_json() for model in MODELS}
    return {"models": models, "scoped": scoped, "calibration": CALIBRATION_SOURCE}
