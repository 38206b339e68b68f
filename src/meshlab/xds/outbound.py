"""What a sidecar is sent for Kubernetes Services with a ClusterIP: Istio's outbound resources for TCP.

A sidecar's app connects to a Service's virtual address; the pod's rules send the connection to the
proxy's ``virtualOutbound`` listener (0.0.0.0:15001, ``use_original_dst``), which hands it to the
listener bound to the original destination, ``<ClusterIP>_<port>``. That listener's tcp_proxy names
the cluster ``outbound|<port>||<hostname>`` (type EDS), whose ClusterLoadAssignment lists the pods. A
destination no listener claims takes ``virtualOutbound``'s default filter chain: PassthroughCluster
(ORIGINAL_DST: on to where the app was connecting) under ALLOW_ANY, or, under lazy loading, the global
sidecar's cluster, where Slime's ``to-global-sidecar`` EnvoyFilter sends it.

Names and shapes are Istio 1.30.3's (istio.io/istio@v0.0.0-20260826214018-9739e10eb9d7):
pilot/pkg/networking/core/gateway.go getListenerName (``<bind>_<port>`` for TCP), listener.go
(outbound listeners ``bind_to_port: false``, OUTBOUND traffic direction), listener_builder.go
(virtualOutbound, ``use_original_dst: true``), pilot/pkg/model/listener.go (``virtualOutbound``),
pilot/pkg/networking/util/util.go (PassthroughCluster), cluster_builder.go buildDefaultPassthroughCluster
(ORIGINAL_DST, CLUSTER_PROVIDED). HTTP services (one ``0.0.0.0_<port>`` listener and RDS) are not built
here: meshlab's lab sidecar is a layer-4 proxy.

    VIRTUAL_OUTBOUND, PASSTHROUGH_CLUSTER, OUTBOUND_PORT   Istio's names and the capture port
    ClusterIPService   a Service: hostname, namespace, ClusterIP, port, endpoints ("ip:port")
    cluster_name       ``outbound|<port>||<hostname>``
    build              one service's resources of one type, by name
    virtual_outbound   the catch-all listener, its default chain sending to a given cluster
    passthrough_cluster  Istio's PassthroughCluster
    build_own          Istio's own resources of one type that every sidecar is sent, by name
"""

from __future__ import annotations

from dataclasses import dataclass, field

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import address_pb2, base_pb2
from envoy.config.listener.v3 import listener_components_pb2, listener_pb2
from envoy.extensions.filters.network.tcp_proxy.v3 import tcp_proxy_pb2
from google.protobuf import any_pb2, wrappers_pb2

from meshlab.xds.resources import CLUSTER, ENDPOINT, LISTENER, ROUTE, cluster, load_assignment, packed

VIRTUAL_OUTBOUND = "virtualOutbound"
PASSTHROUGH_CLUSTER = "PassthroughCluster"
OUTBOUND_PORT = 15001  # istio-iptables -p: where the pod's rules redirect outbound TCP
TCP_PROXY = "envoy.filters.network.tcp_proxy"


@dataclass(frozen=True)
class ClusterIPService:
    """One port of a Kubernetes Service: ``endpoints`` are its ready pods as "ip:targetPort"."""

    hostname: str
    namespace: str
    cluster_ip: str
    port: int
    endpoints: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if not 1 <= self.port <= 65535:
            raise ValueError(f"service {self.hostname}: port {self.port} is not 1-65535")
        bad = [e for e in self.endpoints if not e.rpartition(":")[2].isdigit()]
        if bad:
            raise ValueError(f"service {self.hostname}: endpoint {bad[0]!r} is not ip:port")

    @property
    def key(self) -> str:
        """The change's config key, as istiod names a Service's: Kind ServiceEntry, name the hostname."""
        return f"ServiceEntry/{self.namespace}/{self.hostname}"

    @property
    def listener_name(self) -> str:
        return f"{self.cluster_ip}_{self.port}"


def cluster_name(port: int, hostname: str) -> str:
    return f"outbound|{port}||{hostname}"


def _tcp_proxy_chain(cluster: str) -> listener_components_pb2.FilterChain:
    proxy = tcp_proxy_pb2.TcpProxy(stat_prefix=cluster, cluster=cluster)
    return listener_components_pb2.FilterChain(filters=[listener_components_pb2.Filter(name=TCP_PROXY, typed_config=packed(proxy))])


def _address(ip: str, port: int) -> address_pb2.Address:
    return address_pb2.Address(socket_address=address_pb2.SocketAddress(address=ip, port_value=port))


def listener(service: ClusterIPService) -> listener_pb2.Listener:
    return listener_pb2.Listener(name=service.listener_name, address=_address(service.cluster_ip, service.port),
                                 filter_chains=[_tcp_proxy_chain(cluster_name(service.port, service.hostname))],
                                 traffic_direction=base_pb2.OUTBOUND, bind_to_port=wrappers_pb2.BoolValue(value=False))


def virtual_outbound(default_cluster: str = PASSTHROUGH_CLUSTER) -> listener_pb2.Listener:
    """The listener the pod's rules send every outbound connection to; what no other listener claims
    goes to ``default_cluster``."""
    return listener_pb2.Listener(name=VIRTUAL_OUTBOUND, address=_address("0.0.0.0", OUTBOUND_PORT), use_original_dst=wrappers_pb2.BoolValue(value=True),
                                 default_filter_chain=_tcp_proxy_chain(default_cluster), traffic_direction=base_pb2.OUTBOUND)


def passthrough_cluster() -> cluster_pb2.Cluster:
    return cluster_pb2.Cluster(name=PASSTHROUGH_CLUSTER, type=cluster_pb2.Cluster.ORIGINAL_DST, lb_policy=cluster_pb2.Cluster.CLUSTER_PROVIDED)


def build(type_url: str, service: ClusterIPService) -> dict[str, any_pb2.Any]:
    """``service``'s resources of ``type_url`` by name (none for RDS: TCP services have no routes)."""
    name = cluster_name(service.port, service.hostname)
    if type_url == LISTENER:
        return {service.listener_name: packed(listener(service))}
    if type_url == CLUSTER:
        return {name: packed(cluster(name))}
    if type_url == ENDPOINT:
        return {name: packed(load_assignment(name, list(service.endpoints)))}
    if type_url == ROUTE:
        return {}
    raise ValueError(f"unknown type URL {type_url!r}")


def build_own(type_url: str, default_cluster: str = PASSTHROUGH_CLUSTER) -> dict[str, any_pb2.Any]:
    """What every sidecar gets whatever its scope: virtualOutbound (LDS) and PassthroughCluster (CDS)."""
    if type_url == LISTENER:
        return {VIRTUAL_OUTBOUND: packed(virtual_outbound(default_cluster))}
    if type_url == CLUSTER:
        return {PASSTHROUGH_CLUSTER: packed(passthrough_cluster())}
    return {}
