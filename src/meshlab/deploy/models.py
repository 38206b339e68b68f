"""Four places for the proxy, computed for a topology: sidecar, per-node, per-service-account, ambient.

Each model decides which proxies exist and which pods each one serves; everything else follows:
cost (memory and CPU from Istio's published figures), identities (whose keys sit in one proxy,
and on one node), failure and upgrade domains (pods that lose traffic when one proxy goes), and
the request path (proxy hops, and whether an L7 proxy sees the request).

- sidecar: one Envoy per pod.
- per-node: one shared proxy per node (a DaemonSet: on every node, meshed pods or not), serving
  its node's pods, as Linkerd 1's per-host model or Cilium's per-node Envoy.
- per-service-account: one proxy per (node, service account) that has pods.
- ambient: a ztunnel per node (DaemonSet, L4 only: mTLS, identity, L4 policy) plus a waypoint
  (Envoy, L7) per namespace, as Istio's ambient mode (GA in 1.24) enrols namespaces by default.

    Proxy         one proxy: name, kind, node, pods it serves, whether it applies L7 policy
    ModelResult   the figures of one model
    MODELS        the four model names
    proxies_for   the proxies of a model for a topology
    evaluate      ModelResult for a model and a topology
    compare       all four, as the JSON ``meshlab deploy compare`` prints
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from meshlab.deploy.topology import Call, Topology

MODELS = ("sidecar", "per-node", "per-service-account", "ambient")

#: Istio 1.24 "Performance and Scalability" (istio.io), at 1000 rps with 1 KB payloads:
#: sidecar ~0.20 vCPU and 60 MB; waypoint ~0.25 vCPU and 60 MB; ztunnel ~0.06 vCPU and 12 MB.
#: meshlab applies the memory as a per-proxy constant and the CPU per 1000 requests per second a
#: proxy handles; a shared per-node or per-service-account proxy is an Envoy, so it uses the
#: sidecar's figures.
CALIBRATION = {
    "envoy": {"memory_mb": 60.0, "vcpu_per_1000_rps": 0.20},
    "waypoint": {"memory_mb": 60.0, "vcpu_per_1000_rps": 0.25},
    "ztunnel": {"memory_mb": 12.0, "vcpu_per_1000_rps": 0.06},
}
CALIBRATION_SOURCE = "istio.io Performance and Scalability, Istio 1.24 (1000 rps, 1 KB payload)"


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


def evaluate(model: str, topology: Topology, waypoint_namespaces: set[str] | None = None) -> ModelResult:
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
    memory = sum(CALIBRATION[p.kind]["memory_mb"] for p in proxies)
    cpu = sum(CALIBRATION[p.kind]["vcpu_per_1000_rps"] * handled[p.name] / 1000 for p in proxies)
    keys_per_node = {node: _keys_on(node, model, proxies, topology) for node in topology.nodes}
    identities_per_proxy = [len({topology.pod(pod)["service_account"] for pod in p.pods}) if p.kind != "waypoint" else 1 for p in proxies]
    blast = max(len(p.pods) for p in proxies)
    extra = {}
    if model == "ambient":
        extra = {"ztunnels": sum(p.kind == "ztunnel" for p in proxies), "waypoints": sum(p.kind == "waypoint" for p in proxies)}
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


def compare(topology: Topology, waypoint_namespaces: set[str] | None = None) -> dict:
    models = {model: evaluate(model, topology, waypoint_namespaces if model == "ambient" else None).as_json() for model in MODELS}
    return {"models": models, "calibration": CALIBRATION_SOURCE}
