"""Why meshes appeared: how a microservice call graph grows, and what a request crosses.

    callgraph    seeded growth of a call graph and what grows with it
    requestpath  the hops of one call via a Kubernetes Service, and via sidecars
    retries      one retry policy run in a gRPC interceptor (a library) or in a proxy (a mesh)
"""

from meshlab.microservices.callgraph import CallGraphStats, blast_radius, call_graph_stats, grow_call_graph, request_success
from meshlab.microservices.requestpath import Hop, RequestPath, kube_proxy_path, sidecar_path

__all__ = [
    "CallGraphStats",
    "Hop",
    "RequestPath",
    "blast_radius",
    "call_graph_stats",
    "grow_call_graph",
    "kube_proxy_path",
    "request_success",
    "sidecar_path",
]
