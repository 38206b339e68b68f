"""The chain a proxyless gRPC client walks for one ``xds:///`` target, asked of any ADS server (meshlab's
control plane or the real istiod) one type at a time, so the two can be read side by side: the
Listener named by the target, the RouteConfiguration its HttpConnectionManager names, the Clusters its
routes name, the ClusterLoadAssignments those clusters name. Each response is ACKed, as gRPC does.

    Step   one response: its type, the resources' names and what each points to next
    walk   the whole chain for a target, as Steps
"""

from __future__ import annotations

import queue
from dataclasses import dataclass

import grpc
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import base_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.config.route.v3 import route_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import http_connection_manager_pb2 as hcm_pb2
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2
from google.protobuf import json_format, struct_pb2

from meshlab.xds.resources import TYPE_URLS

#: The message of each type the chain walks, in the order a client asks.
MESSAGES = {"LDS": listener_pb2.Listener, "RDS": route_pb2.RouteConfiguration, "CDS": cluster_pb2.Cluster,
            "EDS": endpoint_pb2.ClusterLoadAssignment}


@dataclass(frozen=True)
class Step:
    kind: str  # LDS, RDS, CDS, EDS
    version: str
    names: tuple[str, ...]
    next_names: tuple[str, ...]  # what these resources point to: route, clusters, EDS names, endpoints


def _unpack(packed, message):
    resource = message()
    packed.Unpack(resource)
    return resource


def _next(kind: str, resource) -> list[str]:
    if kind == "LDS":
        manager = hcm_pb2.HttpConnectionManager()
        resource.api_listener.api_listener.Unpack(manager)
        return [manager.rds.route_config_name]
    if kind == "RDS":
        return [cluster for host in resource.virtual_hosts for route in host.routes
                for cluster in ([route.route.cluster] if route.route.cluster else [w.name for w in route.route.weighted_clusters.clusters])]
    if kind == "CDS":
        return [resource.eds_cluster_config.service_name or resource.name]
    return [f"{e.endpoint.address.socket_address.address}:{e.endpoint.address.socket_address.port_value}"
            for group in resource.endpoints for e in group.lb_endpoints]


def walk(server: str, node_id: str, target: str, metadata: dict | None = None, timeout: float = 10.0) -> list[Step]:
    """LDS for ``target``, then each type for the names the previous answer gave; the Steps in order."""
    node = base_pb2.Node(id=node_id, metadata=json_format.ParseDict(metadata or {}, struct_pb2.Struct()))
    requests: queue.Queue = queue.Queue()
    steps: list[Step] = []
    with grpc.insecure_channel(server) as channel:
        responses = ads_pb2_grpc.AggregatedDiscoveryServiceStub(channel).StreamAggregatedResources(iter(requests.get, None), timeout=timeout)
        names = [target]
        for kind, message in MESSAGES.items():
            type_url = TYPE_URLS[kind]
            requests.put(discovery_pb2.DiscoveryRequest(node=node, type_url=type_url, resource_names=sorted(set(names))))
            response = next(responses)
            requests.put(discovery_pb2.DiscoveryRequest(node=node, type_url=type_url, resource_names=sorted(set(names)),
                                                        version_info=response.version_info, response_nonce=response.nonce))
            # in the order of their names: a response's resources form a set, in whatever order the server sent them
            unpacked = sorted((_unpack(packed, message) for packed in response.resources), key=lambda r: r.cluster_name if kind == "EDS" else r.name)
            names = [name for resource in unpacked for name in _next(kind, resource)]
            steps.append(Step(kind, response.version_info, tuple(r.cluster_name if kind == "EDS" else r.name for r in unpacked),
                              tuple(dict.fromkeys(names))))
        requests.put(None)
        responses.cancel()
    return steps
