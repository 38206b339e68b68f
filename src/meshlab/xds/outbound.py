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

Across clusters and networks (chapter 12) an endpoint carries more: its locality and failover
priority (one LocalityLbEndpoints per pair), a weight (an east-west gateway standing for several
pods), and the ``tlsMode`` metadata under ``envoy.transport_socket_match`` that picks the cluster's
``tlsMode-istio`` transport socket: mutual TLS with the SNI ``outbound_.<port>_._.<hostname>``
(cluster_tls.go: istioMtlsTransportSocketMatch, defaultTransportSocketMatch "tlsMode-disabled", ALPN
``istio``; cluster_builder.go: the SNI from model.BuildDNSSrvSubsetKey). A service with an outlier
detection (a DestinationRule's) carries it on its cluster. An **east-west gateway** (a proxy labelled
``istio: eastwestgateway``) gets instead what Istio builds for a Gateway server in AUTO_PASSTHROUGH
mode on 15443 (gateway.go): one listener whose filter chains match each service's SNI and send the
still-encrypted connection to a cluster of that very name, holding the endpoints of its own network.

    VIRTUAL_OUTBOUND, PASSTHROUGH_CLUSTER, OUTBOUND_PORT   Istio's names and the capture port
    EdsEndpoint        one endpoint as EDS sends it: address, weight, locality, priority, network, tlsMode
    ClusterIPService   a Service: hostname, namespace, ClusterIP, port, endpoints, outlier detection
    cluster_name       ``outbound|<port>||<hostname>``
    build              one service's resources of one type, by name
    build_eastwest     an east-west gateway's resources of one type: the AUTO_PASSTHROUGH listener, SNI clusters
    virtual_outbound   the catch-all listener, its default chain sending to a given cluster
    passthrough_cluster  Istio's PassthroughCluster
    build_own          Istio's own resources of one type that every sidecar is sent, by name
"""

from __future__ import annotations

from dataclasses import dataclass, field

from envoy.config.cluster.v3 import cluster_pb2, outlier_detection_pb2
from envoy.config.core.v3 import address_pb2, base_pb2, health_check_pb2
from envoy.config.endpoint.v3 import endpoint_components_pb2, endpoint_pb2
from envoy.config.listener.v3 import listener_components_pb2, listener_pb2
from envoy.extensions.filters.listener.tls_inspector.v3 import tls_inspector_pb2
from envoy.extensions.filters.network.tcp_proxy.v3 import tcp_proxy_pb2
from envoy.extensions.transport_sockets.raw_buffer.v3 import raw_buffer_pb2
from envoy.extensions.transport_sockets.tls.v3 import tls_pb2
from google.protobuf import any_pb2, json_format, struct_pb2, wrappers_pb2

from meshlab.multicluster.endpoints import sni_name
from meshlab.xds.resources import CLUSTER, ENDPOINT, LISTENER, ROUTE, cluster, packed

VIRTUAL_OUTBOUND = "virtualOutbound"
PASSTHROUGH_CLUSTER = "PassthroughCluster"
OUTBOUND_PORT = 15001  # istio-iptables -p: where the pod's rules redirect outbound TCP
TCP_PROXY = "envoy.filters.network.tcp_proxy"
TLS_INSPECTOR = "envoy.filters.listener.tls_inspector"
TLS_SOCKET, RAW_SOCKET = "envoy.transport_sockets.tls", "envoy.transport_sockets.raw_buffer"
TRANSPORT_SOCKET_MATCH = "envoy.transport_socket_match"  # util.go EnvoyTransportSocketMetadataKey
ISTIO_MUTUAL, TLS_DISABLED = "istio", "disabled"  # the tlsMode label's values (model.IstioMutualTLSModeLabel)
ALPN_IN_MESH = ("istio",)  # util.go ALPNInMesh (without metadata exchange, which meshlab's proxy does not do)
AUTO_PASSTHROUGH_PORT = 15443  # the east-west gateway's tls port (samples/multicluster/expose-services.yaml)
EASTWEST_LABEL = ("istio", "eastwestgateway")  # samples/multicluster/gen-eastwest-gateway.sh


@dataclass(frozen=True)
class EdsEndpoint:
    """One endpoint as EDS sends it. ``locality`` "region/zone/subzone"; ``priority`` its failover
    priority for the proxies this is built for; ``tls_mode`` ``istio`` (a sidecar: mutual TLS) or
    ``disabled``; ``network`` the network it is reached on (an east-west gateway's, for a remote pod)."""

    address: str
    port: int
    weight: int = 1
    locality: str = ""
    priority: int = 0
    network: str = ""
    tls_mode: str = TLS_DISABLED

    @classmethod
    def parse(cls, text: str) -> EdsEndpoint:
        host, _, port = text.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"endpoint {text!r} is not ip:port")
        return cls(host, int(port))

    def __str__(self) -> str:
        return f"{self.address}:{self.port}"


@dataclass(frozen=True)
class ClusterIPService:
    """One port of a Kubernetes Service: ``endpoints`` are its ready pods, as EdsEndpoints or "ip:targetPort"
    (taken as EdsEndpoints with no locality, no TLS). ``outlier_detection`` is Envoy's (protojson) from a
    DestinationRule; ``network`` the network of the control plane that builds it (an east-west gateway
    passes connections only to endpoints of that network)."""

    hostname: str
    namespace: str
    cluster_ip: str
    port: int
    endpoints: tuple[EdsEndpoint | str, ...] = field(default_factory=tuple)
    outlier_detection: dict | None = None
    network: str = ""

    def __post_init__(self) -> None:
        if not 1 <= self.port <= 65535:
            raise ValueError(f"service {self.hostname}: port {self.port} is not 1-65535")
        try:
            parsed = tuple(e if isinstance(e, EdsEndpoint) else EdsEndpoint.parse(e) for e in self.endpoints)
        except ValueError as error:
            raise ValueError(f"service {self.hostname}: {error}") from None
        object.__setattr__(self, "endpoints", parsed)
        bad = [e for e in parsed if e.tls_mode not in (ISTIO_MUTUAL, TLS_DISABLED) or e.weight < 1 or e.priority < 0]
        if bad:
            raise ValueError(f"service {self.hostname}: endpoint {bad[0]} needs tls_mode {ISTIO_MUTUAL!r} or {TLS_DISABLED!r}, weight >= 1, priority >= 0")

    @property
    def key(self) -> str:
        """The change's config key, as istiod names a Service's: Kind ServiceEntry, name the hostname."""
        return f"ServiceEntry/{self.namespace}/{self.hostname}"

    @property
    def listener_name(self) -> str:
        return f"{self.cluster_ip}_{self.port}"

    @property
    def sni(self) -> str:
        return sni_name(self.port, self.hostname)


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


def _outlier_detection(config: dict) -> outlier_detection_pb2.OutlierDetection:
    """Envoy's OutlierDetection from its protojson (the DestinationRule's, as istiod writes it)."""
    try:
        return json_format.ParseDict(config, outlier_detection_pb2.OutlierDetection())
    except json_format.ParseError as error:
        raise ValueError(f"outlierDetection: {error} (Envoy's OutlierDetection in protojson, e.g. consecutive5xx, interval, baseEjectionTime)") from None


def _istio_mutual(sni: str) -> base_pb2.TransportSocket:
    context = tls_pb2.UpstreamTlsContext(sni=sni, common_tls_context=tls_pb2.CommonTlsContext(alpn_protocols=list(ALPN_IN_MESH)))
    return base_pb2.TransportSocket(name=TLS_SOCKET, typed_config=packed(context))


def service_cluster(service: ClusterIPService, name: str | None = None) -> cluster_pb2.Cluster:
    """The service's EDS cluster; with endpoints in tlsMode istio, Istio's two transport-socket matches."""
    built = cluster(name or cluster_name(service.port, service.hostname))
    if any(e.tls_mode == ISTIO_MUTUAL for e in service.endpoints):
        raw = base_pb2.TransportSocket(name=RAW_SOCKET, typed_config=packed(raw_buffer_pb2.RawBuffer()))
        match = struct_pb2.Struct()
        match.update({"tlsMode": ISTIO_MUTUAL})
        built.transport_socket_matches.extend([
            cluster_pb2.Cluster.TransportSocketMatch(name=f"tlsMode-{ISTIO_MUTUAL}", match=match, transport_socket=_istio_mutual(service.sni)),
            cluster_pb2.Cluster.TransportSocketMatch(name=f"tlsMode-{TLS_DISABLED}", match=struct_pb2.Struct(), transport_socket=raw)])
    if service.outlier_detection is not None:
        built.outlier_detection.CopyFrom(_outlier_detection(service.outlier_detection))
    return built


def load_assignment(name: str, endpoints: tuple[EdsEndpoint, ...]) -> endpoint_pb2.ClusterLoadAssignment:
    """One LocalityLbEndpoints per (locality, priority), in priority order; each endpoint with its
    weight and its tlsMode (and network) as metadata, as istiod writes them."""
    groups: dict[tuple[int, str], list[EdsEndpoint]] = {}
    for endpoint in endpoints:
        groups.setdefault((endpoint.priority, endpoint.locality), []).append(endpoint)
    localities = []
    for (priority, locality), members in sorted(groups.items()):
        region, zone, subzone = (locality.split("/") + ["", "", ""])[:3]
        lb_endpoints = []
        for endpoint in members:
            metadata = base_pb2.Metadata()
            metadata.filter_metadata[TRANSPORT_SOCKET_MATCH].update({"tlsMode": endpoint.tls_mode})
            if endpoint.network:
                metadata.filter_metadata["istio"].update({"network": endpoint.network})
            lb_endpoints.append(endpoint_components_pb2.LbEndpoint(
                endpoint=endpoint_components_pb2.Endpoint(address=_address(endpoint.address, endpoint.port)), metadata=metadata,
                health_status=health_check_pb2.HEALTHY, load_balancing_weight=wrappers_pb2.UInt32Value(value=endpoint.weight)))
        localities.append(endpoint_components_pb2.LocalityLbEndpoints(
            locality=base_pb2.Locality(region=region, zone=zone, sub_zone=subzone), lb_endpoints=lb_endpoints, priority=priority,
            load_balancing_weight=wrappers_pb2.UInt32Value(value=sum(e.weight for e in members))))
    return endpoint_pb2.ClusterLoadAssignment(cluster_name=name, endpoints=localities)


def passthrough_cluster() -> cluster_pb2.Cluster:
    return cluster_pb2.Cluster(name=PASSTHROUGH_CLUSTER, type=cluster_pb2.Cluster.ORIGINAL_DST, lb_policy=cluster_pb2.Cluster.CLUSTER_PROVIDED)


def build(type_url: str, service: ClusterIPService) -> dict[str, any_pb2.Any]:
    """``service``'s resources of ``type_url`` by name (none for RDS: TCP services have no routes)."""
    name = cluster_name(service.port, service.hostname)
    if type_url == LISTENER:
        return {service.listener_name: packed(listener(service))}
    if type_url == CLUSTER:
        return {name: packed(service_cluster(service))}
    if type_url == ENDPOINT:
        return {name: packed(load_assignment(name, service.endpoints))}
    if type_url == ROUTE:
        return {}
    raise ValueError(f"unknown type URL {type_url!r}")


def build_eastwest(type_url: str, services: list[ClusterIPService]) -> dict[str, any_pb2.Any]:
    """An east-west gateway's resources: the listener ``0.0.0.0_15443`` (tls_inspector; per service a
    filter chain on its SNI to a cluster of the same name) and those clusters, holding the service's
    endpoints on the gateway's own network only (the gateway does not pass traffic on to another)."""
    ordered = sorted(services, key=lambda s: s.sni)
    if type_url == LISTENER:
        chains = [listener_components_pb2.FilterChain(filter_chain_match=listener_components_pb2.FilterChainMatch(server_names=[s.sni]),
                                                      filters=_tcp_proxy_chain(s.sni).filters) for s in ordered]
        inspector = listener_components_pb2.ListenerFilter(name=TLS_INSPECTOR, typed_config=packed(tls_inspector_pb2.TlsInspector()))
        name = f"0.0.0.0_{AUTO_PASSTHROUGH_PORT}"
        return {name: packed(listener_pb2.Listener(name=name, address=_address("0.0.0.0", AUTO_PASSTHROUGH_PORT), listener_filters=[inspector],
                                                   filter_chains=chains, traffic_direction=base_pb2.OUTBOUND))}
    if type_url == CLUSTER:
        return {s.sni: packed(cluster(s.sni)) for s in ordered}
    if type_url == ENDPOINT:
        return {s.sni: packed(load_assignment(s.sni, tuple(e for e in s.endpoints if e.network in ("", s.network)))) for s in ordered}
    return {}


def build_own(type_url: str, default_cluster: str = PASSTHROUGH_CLUSTER) -> dict[str, any_pb2.Any]:
    """What every sidecar gets whatever its scope: virtualOutbound (LDS) and PassthroughCluster (CDS)."""
    if type_url == LISTENER:
        return {VIRTUAL_OUTBOUND: packed(virtual_outbound(default_cluster))}
    if type_url == CLUSTER:
        return {PASSTHROUGH_CLUSTER: packed(passthrough_cluster())}
    return {}
