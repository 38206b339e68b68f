"""The xDS resources a proxyless gRPC client walks, built from a small mesh model.

For a target ``xds:///greeter`` gRPC's xDS client asks for the Listener ``greeter`` (an
api_listener holding an HttpConnectionManager that names its RouteConfiguration, fetched over
ADS, with the router filter), then that RouteConfiguration (a virtual host whose domains match
``greeter``, routing to one cluster or to weighted clusters), then each Cluster (type EDS, its
endpoints from ADS), then each ClusterLoadAssignment (endpoints in a locality with a weight).

    Service         one target: its routes (cluster -> weight) and each cluster's endpoints
    MeshConfig      the services the control plane serves, with a version
    TYPE_URLS       LDS, RDS, CDS, EDS type URLs
    build           the resources of one type for a mesh config (name -> Any)
    packed          a message packed into an Any
"""

from __future__ import annotations

from dataclasses import dataclass, field

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import address_pb2, base_pb2, config_source_pb2, health_check_pb2
from envoy.config.endpoint.v3 import endpoint_components_pb2, endpoint_pb2
from envoy.config.listener.v3 import api_listener_pb2, listener_pb2
from envoy.config.route.v3 import route_components_pb2, route_pb2
from envoy.extensions.filters.http.router.v3 import router_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import http_connection_manager_pb2 as hcm_pb2
from google.protobuf import any_pb2, wrappers_pb2

LISTENER = "type.googleapis.com/envoy.config.listener.v3.Listener"
ROUTE = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
CLUSTER = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
ENDPOINT = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
TYPE_URLS = {"LDS": LISTENER, "RDS": ROUTE, "CDS": CLUSTER, "EDS": ENDPOINT}
SHORT = {url: short for short, url in TYPE_URLS.items()}


@dataclass
class Service:
    """``routes``: cluster name -> weight (one entry: a plain route); ``clusters``: name -> ["host:port"]."""

    name: str
    routes: dict[str, int]
    clusters: dict[str, list[str]]
    #: "EDS" is what gRPC accepts; anything else (e.g. "STATIC") is there to show a NACK.
    cluster_type: str = "EDS"


@dataclass
class MeshConfig:
    services: dict[str, Service] = field(default_factory=dict)

    def clusters(self) -> dict[str, list[str]]:
        return {name: endpoints for service in self.services.values() for name, endpoints in service.clusters.items()}

    def cluster_types(self) -> dict[str, str]:
        return {name: service.cluster_type for service in self.services.values() for name in service.clusters}


def packed(message) -> any_pb2.Any:
    """``message`` packed into an Any, as xDS carries every resource and typed config."""
    wrapped = any_pb2.Any()
    wrapped.Pack(message)
    return wrapped


def _ads() -> config_source_pb2.ConfigSource:
    return config_source_pb2.ConfigSource(ads=config_source_pb2.AggregatedConfigSource(), resource_api_version=config_source_pb2.V3)


def listener(service: Service) -> listener_pb2.Listener:
    manager = hcm_pb2.HttpConnectionManager(
        rds=hcm_pb2.Rds(config_source=_ads(), route_config_name=service.name),
        http_filters=[hcm_pb2.HttpFilter(name="envoy.filters.http.router", typed_config=packed(router_pb2.Router()))],
    )
    return listener_pb2.Listener(name=service.name, api_listener=api_listener_pb2.ApiListener(api_listener=packed(manager)))


def route(service: Service) -> route_pb2.RouteConfiguration:
    if len(service.routes) == 1:
        action = route_components_pb2.RouteAction(cluster=next(iter(service.routes)))
    else:
        action = route_components_pb2.RouteAction(weighted_clusters=route_components_pb2.WeightedCluster(clusters=[
            route_components_pb2.WeightedCluster.ClusterWeight(name=name, weight=wrappers_pb2.UInt32Value(value=weight)) for name, weight in service.routes.items()
        ]))
    return route_pb2.RouteConfiguration(name=service.name, virtual_hosts=[route_components_pb2.VirtualHost(
        name=service.name, domains=[service.name], routes=[route_components_pb2.Route(match=route_components_pb2.RouteMatch(prefix=""), route=action)])])


def cluster(name: str, kind: str = "EDS") -> cluster_pb2.Cluster:
    return cluster_pb2.Cluster(name=name, type=cluster_pb2.Cluster.DiscoveryType.Value(kind),
                               eds_cluster_config=cluster_pb2.Cluster.EdsClusterConfig(eds_config=_ads()), lb_policy=cluster_pb2.Cluster.ROUND_ROBIN)


def load_assignment(name: str, endpoints: list[str]) -> endpoint_pb2.ClusterLoadAssignment:
    lb_endpoints = []
    for endpoint in endpoints:
        host, _, port = endpoint.rpartition(":")
        address = address_pb2.Address(socket_address=address_pb2.SocketAddress(address=host, port_value=int(port)))
        lb_endpoints.append(endpoint_components_pb2.LbEndpoint(endpoint=endpoint_components_pb2.Endpoint(address=address), health_status=health_check_pb2.HEALTHY))
    locality = endpoint_components_pb2.LocalityLbEndpoints(locality=base_pb2.Locality(zone="meshlab"), lb_endpoints=lb_endpoints,
                                                           load_balancing_weight=wrappers_pb2.UInt32Value(value=1))
    return endpoint_pb2.ClusterLoadAssignment(cluster_name=name, endpoints=[locality])


def build(type_url: str, config: MeshConfig) -> dict[str, any_pb2.Any]:
    """Every resource of ``type_url`` that ``config`` defines, by name."""
    if type_url == LISTENER:
        return {name: packed(listener(service)) for name, service in config.services.items()}
    if type_url == ROUTE:
        return {name: packed(route(service)) for name, service in config.services.items()}
    if type_url == CLUSTER:
        return {name: packed(cluster(name, kind)) for name, kind in config.cluster_types().items()}
    if type_url == ENDPOINT:
        return {name: packed(load_assignment(name, endpoints)) for name, endpoints in config.clusters().items()}
    raise ValueError(f"unknown type URL {type_url!r}")
