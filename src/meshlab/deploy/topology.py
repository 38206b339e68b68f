"""A cluster as the deployment models see it: nodes, namespaces, service accounts, pods and calls.

The topology is a networkx DiGraph: Kubernetes nodes and pods are graph nodes (``kind`` "node" or
"pod"); a pod carries ``node``, ``namespace``, ``service_account`` and ``rps`` (requests per second
it sends); an edge pod -> pod is a call with its own ``rps``. Calls are optional: without them the
models assume every pod calls every other pod equally often.

    TopologyError      a bad topology entry, named
    Topology           the graph plus accessors (pods, nodes, pods_on, calls)
    load_topology      from the JSON form {"nodes": [...], "pods": [...], "calls": [...]}
    generate_topology  a seeded topology of N nodes, pods per node, namespaces and service accounts
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

import networkx as nx

POD_FIELDS = ("name", "node", "namespace", "service_account", "rps")


class TopologyError(ValueError):
    """A topology that cannot be used; the message names the entry and what is accepted."""


@dataclass(frozen=True)
class Call:
    source: str
    target: str
    rps: float


class Topology:
    def __init__(self, graph: nx.DiGraph) -> None:
        self.graph = graph

    @property
    def nodes(self) -> list[str]:
        return sorted(n for n, data in self.graph.nodes(data=True) if data["kind"] == "node")

    @property
    def pods(self) -> list[str]:
        return sorted(n for n, data in self.graph.nodes(data=True) if data["kind"] == "pod")

    def pod(self, name: str) -> dict:
        return self.graph.nodes[name]

    def pods_on(self, node: str) -> list[str]:
        return [pod for pod in self.pods if self.pod(pod)["node"] == node]

    def calls(self) -> list[Call]:
        """Explicit calls, or every ordered pair of distinct pods sharing the caller's rps evenly."""
        explicit = [Call(a, b, data["rps"]) for a, b, data in self.graph.edges(data=True)]
        if explicit:
            return sorted(explicit, key=lambda call: (call.source, call.target))
        pods = self.pods
        return [Call(a, b, self.pod(a)["rps"] / (len(pods) - 1)) for a in pods for b in pods if a != b]

    def as_json(self) -> dict:
        return {
            "nodes": [{"name": node} for node in self.nodes],
            "pods": [{"name": pod, **{field: self.pod(pod)[field] for field in POD_FIELDS[1:]}} for pod in self.pods],
            "calls": [{"from": a, "to": b, "rps": data["rps"]} for a, b, data in sorted(self.graph.edges(data=True))],
        }


def _require(entry: dict, fields: tuple[str, ...], where: str) -> None:
    if not isinstance(entry, dict):
        raise TopologyError(f"{where}: expected an object with {', '.join(fields)}, got {entry!r}")
    missing = [field for field in fields if field not in entry]
    if missing:
        raise TopologyError(f"{where}: missing field {missing[0]!r} (a pod needs {', '.join(POD_FIELDS)})" if "pod" in where else f"{where}: missing field {missing[0]!r}")


def _rps(value, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise TopologyError(f"{where}: rps {value!r} is not a number >= 0")
    return float(value)


def topology_from_json(data: dict) -> Topology:
    """Build and validate a Topology from its JSON form."""
    if not isinstance(data, dict) or "nodes" not in data or "pods" not in data:
        raise TopologyError('a topology is an object with "nodes" and "pods" (and optionally "calls")')
    graph = nx.DiGraph()
    for index, node in enumerate(data["nodes"]):
        _require(node, ("name",), f"nodes[{index}]")
        if node["name"] in graph:
            raise TopologyError(f"nodes[{index}]: duplicate name {node['name']!r}")
        graph.add_node(node["name"], kind="node")
    if not graph:
        raise TopologyError("a topology needs at least one node")
    for index, pod in enumerate(data["pods"]):
        where = f"pods[{index}]"
        _require(pod, POD_FIELDS, where)
        where = f"pods[{index}] ({pod['name']})"
        if pod["name"] in graph:
            raise TopologyError(f"{where}: duplicate name {pod['name']!r}")
        if graph.nodes.get(pod["node"], {}).get("kind") != "node":
            raise TopologyError(f"{where}: unknown node {pod['node']!r}; nodes are {', '.join(sorted(n for n in graph))}")
        graph.add_node(pod["name"], kind="pod", node=pod["node"], namespace=str(pod["namespace"]), service_account=str(pod["service_account"]), rps=_rps(pod["rps"], where))
    for index, call in enumerate(data.get("calls", [])):
        where = f"calls[{index}]"
        _require(call, ("from", "to"), where)
        for end in ("from", "to"):
            if graph.nodes.get(call[end], {}).get("kind") != "pod":
                raise TopologyError(f"{where}: unknown pod {call[end]!r} in {end!r}")
        graph.add_edge(call["from"], call["to"], rps=_rps(call.get("rps", graph.nodes[call["from"]]["rps"]), where))
    if len([n for n, d in graph.nodes(data=True) if d["kind"] == "pod"]) < 2:
        raise TopologyError("a topology needs at least two pods")
    return Topology(graph)


def load_topology(path: Path) -> Topology:
    try:
        data = json.loads(Path(path).read_text())
    except OSError as error:
        raise TopologyError(f"cannot read {path}: {error.strerror}") from None
    except json.JSONDecodeError as error:
        raise TopologyError(f"{path} is not valid JSON: {error.msg} at line {error.lineno}") from None
    return topology_from_json(data)


def generate_topology(nodes: int = 3, pods_per_node: int = 10, namespaces: int = 3, service_accounts: int = 2,
                      rps: float = 100.0, calls_per_pod: int = 2, seed: int = 0) -> Topology:
    """A seeded cluster: pods spread evenly over nodes, each in a random namespace and one of its
    service accounts, each calling ``calls_per_pod`` random other pods."""
    if min(nodes, pods_per_node, namespaces, service_accounts) < 1 or nodes * pods_per_node < 2:
        raise TopologyError("nodes, pods_per_node, namespaces and service_accounts must be >= 1, with at least two pods")
    rng = random.Random(seed)
    node_names = [f"node{i}" for i in range(nodes)]
    pods = []
    for index in range(nodes * pods_per_node):
        namespace = f"ns{rng.randrange(namespaces)}"
        pods.append({"name": f"pod{index:03d}", "node": node_names[index % nodes], "namespace": namespace,
                     "service_account": f"{namespace}-sa{rng.randrange(service_accounts)}", "rps": rps})
    names = [pod["name"] for pod in pods]
    calls = []
    for pod in names:
        targets = rng.sample([n for n in names if n != pod], min(calls_per_pod, len(names) - 1))
        calls += [{"from": pod, "to": target, "rps": rps / len(targets)} for target in targets]
    return topology_from_json({"nodes": [{"name": n} for n in node_names], "pods": pods, "calls": calls})
