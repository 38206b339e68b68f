"""The kind cluster configuration, as a pure function (kind's ``kind.x-k8s.io/v1alpha4`` Cluster).

One control plane and two workers, as Istio's ambient guide sets up kind: two workers put the
client and the server on different nodes, so node-to-node traffic (ztunnel to ztunnel over HBONE)
really crosses the cluster network. kind has no LoadBalancer, so NodePorts are mapped from the
control-plane container to the reader's loopback (``extraPortMappings``) instead: 30080 for the
sidecar namespace's httpbin, 30081 for the ambient one's.
"""

from __future__ import annotations

import re

import yaml

from meshlab.kind.runner import KindError
from meshlab.kind.versions import NODE_IMAGE

#: A name every part of kind accepts: it becomes Docker container names and the kubeconfig context.
_NAME = re.compile(r"^[a-z0-9.-]+$")
NODE_PORTS = range(30000, 32768)  # the API server's default --service-node-port-range


def cluster_config(name: str = "meshlab", node_image: str = NODE_IMAGE, workers: int = 2, node_ports: dict[int, int] | None = None) -> dict:
    """kind's Cluster object: ``node_ports`` maps a NodePort to the host port it is published on (127.0.0.1 only)."""
    if not _NAME.match(name) or len(name) > 50:
        raise KindError("kind config", f"cluster name {name!r} is not accepted", "use lower-case letters, digits, '.' and '-', at most 50 characters")
    if "@sha256:" not in node_image:
        raise KindError("kind config", f"node image {node_image!r} has no digest", "pin kindest/node:<version>@sha256:<digest> as kind's release notes list it")
    if not 0 <= workers <= 10:
        raise KindError("kind config", f"{workers} workers", "0 to 10 workers")
    ports = {30080: 30080, 30081: 30081} if node_ports is None else node_ports
    mappings = []
    for node_port, host_port in sorted(ports.items()):
        if node_port not in NODE_PORTS:
            raise KindError("kind config", f"NodePort {node_port} is outside 30000-32767", "choose a NodePort in the API server's range 30000-32767")
        if not 1 <= host_port <= 65535:
            raise KindError("kind config", f"host port {host_port}", "a host port between 1 and 65535")
        mappings.append({"containerPort": node_port, "hostPort": host_port, "listenAddress": "127.0.0.1", "protocol": "TCP"})
    control_plane = {"role": "control-plane", "image": node_image}
    if mappings:
        control_plane["extraPortMappings"] = mappings
    return {"kind": "Cluster", "apiVersion": "kind.x-k8s.io/v1alpha4", "name": name,
            "nodes": [control_plane] + [{"role": "worker", "image": node_image} for _ in range(workers)]}


def cluster_config_yaml(**kwargs) -> str:
    return yaml.safe_dump(cluster_config(**kwargs), sort_keys=False)
