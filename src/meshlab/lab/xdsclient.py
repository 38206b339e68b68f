"""The lab sidecar's xDS client: what Envoy's ADS subscription does, for a layer-4 proxy.

In xDS mode a sidecar holds no services file: it opens one ADS stream to the control plane, names
itself (node id ``namespace/name``, meshlab's convention where Istio's is ``sidecar~IP~pod.namespace~
domain``; its pod's labels as node metadata ``LABELS``, as pilot-agent puts them in Envoy's bootstrap), subscribes to every listener and cluster (the wildcard ``*``) and then to
the endpoints of each EDS cluster it was sent, and ACKs each response (or NACKs one it cannot read,
keeping what it had). From the listeners it keeps what a layer-4 proxy needs: each ``<ClusterIP>_<port>``
listener's address and its tcp_proxy cluster, and ``virtualOutbound``'s default cluster (where a
destination no listener claims goes); from EDS each cluster's endpoints. The stream runs on a thread
of its own (gRPC's synchronous client); each update replaces the proxy's table in one assignment, so
the proxy's event loop reads it without locks.

Where a destination goes (``OutboundTable.upstream``): a listener's cluster, to one of its endpoints
(by priority, weight and outlier detection: ``meshlab.lab.balancer``), with mutual TLS and the
cluster's SNI when the endpoint's tlsMode is istio; else virtualOutbound's default cluster: PassthroughCluster, to the original destination;
any other cluster (the global sidecar's, under lazy loading) to one of its endpoints, prefixed by a PROXY
protocol line that carries the original destination (``meshlab.lab.sidecar.proxy_protocol_line``),
what Envoy's upstream_proxy_protocol transport socket sends. The global sidecar reads that line and
forwards by the destination it names (``upstream(..., fallback=False)``: its own unknowns pass through).
An east-west gateway is sent one listener whose filter chains match SNIs: ``by_sni`` names the cluster.

    OutboundTable         listeners, default cluster, endpoints: where one destination goes
    AdsClient             the ADS stream on its own thread: subscribe, update the table, ACK/NACK
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import partial

import grpc
import grpc._channel  # noqa: F401  imported now: the proxy reads no file once it runs as uid 1337
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import base_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.extensions.filters.network.tcp_proxy.v3 import tcp_proxy_pb2
from envoy.extensions.transport_sockets.tls.v3 import tls_pb2
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2
from google.protobuf import json_format, struct_pb2
from google.rpc import status_pb2

from meshlab.gateway.health import OutlierDetection
from meshlab.lab.balancer import ClusterBalancer
from meshlab.lab.sidecar import Upstream
from meshlab.xds.outbound import ISTIO_MUTUAL, PASSTHROUGH_CLUSTER, TLS_DISABLED, TRANSPORT_SOCKET_MATCH, VIRTUAL_OUTBOUND, EdsEndpoint
from meshlab.xds.resources import CLUSTER, ENDPOINT, LISTENER, SHORT

WILDCARD = "*"


@dataclass(frozen=True)
class OutboundTable:
    """What the proxy was last sent, reduced to where connections go. Frozen: an update is a new table
    (its balancers carry their hosts' health over, ``meshlab.lab.balancer``)."""

    listeners: dict[tuple[str, int], str] = field(default_factory=dict)  # (ClusterIP, port) -> cluster
    default_cluster: str = PASSTHROUGH_CLUSTER
    clusters: dict[str, cluster_pb2.Cluster] = field(default_factory=dict)
    endpoints: dict[str, tuple[EdsEndpoint, ...]] = field(default_factory=dict)
    sni_routes: dict[str, str] = field(default_factory=dict)  # an AUTO_PASSTHROUGH listener's: SNI -> cluster
    balancers: dict[str, ClusterBalancer] = field(default_factory=dict, compare=False)
    log: Callable[[dict], None] = field(default=lambda record: None, compare=False)

    def upstream(self, address: str, port: int, fallback: bool = True) -> Upstream:
        """Where a connection to ``address:port`` goes; ``fallback`` False ignores virtualOutbound's
        default cluster (the global sidecar's own unknowns pass through)."""
        cluster = self.listeners.get((address, port))
        if cluster is None and fallback and self.default_cluster != PASSTHROUGH_CLUSTER:
            return replace(self.to_cluster(self.default_cluster), proxy_protocol=True)
        if cluster is None:
            return Upstream(address, port, None, PASSTHROUGH_CLUSTER)
        return replace(self.to_cluster(cluster), service=f"{address}:{port}")

    def by_sni(self, server_name: str) -> Upstream:
        """An east-west gateway's AUTO_PASSTHROUGH: the cluster named by the connection's SNI."""
        cluster = self.sni_routes.get(server_name)
        if cluster is None:
            raise LookupError(f"no filter chain matches SNI {server_name!r} (no such service on this network)")
        return self.to_cluster(cluster, originate_tls=False)

    def to_cluster(self, cluster: str, originate_tls: bool = True) -> Upstream:
        """One host of ``cluster``, with mutual TLS and the cluster's SNI if the host's tlsMode is istio."""
        balancer = self.balancers.get(cluster)
        chosen = balancer.choose() if balancer is not None else None
        if chosen is None:
            raise LookupError(f"no healthy upstream: cluster {cluster} has no endpoints" if balancer is None or not balancer.hosts
                              else f"no healthy upstream: every host of cluster {cluster} is ejected")
        host, endpoint = chosen
        sni = _istio_mutual_sni(self.clusters.get(cluster)) if originate_tls and endpoint.tls_mode == ISTIO_MUTUAL else None
        return Upstream(endpoint.address, endpoint.port, None, cluster, sni=sni, report=partial(_report, balancer, host))

    def with_listeners(self, listeners: list[listener_pb2.Listener]) -> OutboundTable:
        routes, default, sni_routes = {}, PASSTHROUGH_CLUSTER, {}
        for listener in listeners:
            if listener.name == VIRTUAL_OUTBOUND:
                default = _tcp_cluster(listener.default_filter_chain) or PASSTHROUGH_CLUSTER
            elif any(chain.filter_chain_match.server_names for chain in listener.filter_chains):
                sni_routes.update((name, _tcp_cluster(chain)) for chain in listener.filter_chains for name in chain.filter_chain_match.server_names)
            elif listener.HasField("address") and listener.filter_chains:
                address = listener.address.socket_address
                cluster = _tcp_cluster(listener.filter_chains[0])
                if cluster:
                    routes[(address.address, address.port_value)] = cluster
        return replace(self, listeners=routes, default_cluster=default, sni_routes=sni_routes)

    def with_clusters(self, clusters: list[cluster_pb2.Cluster]) -> OutboundTable:
        named = {c.name: c for c in clusters}
        kept = {name: value for name, value in self.endpoints.items() if name in named}
        return replace(self, clusters=named, endpoints=kept, balancers=self._balancers(named, kept))

    def with_endpoints(self, assignments: list[endpoint_pb2.ClusterLoadAssignment]) -> OutboundTable:
        endpoints = {a.cluster_name: _endpoints(a) for a in assignments}
        return replace(self, endpoints=endpoints, balancers=self._balancers(self.clusters, endpoints))

    def _balancers(self, clusters: dict[str, cluster_pb2.Cluster], endpoints: dict[str, tuple[EdsEndpoint, ...]]) -> dict[str, ClusterBalancer]:
        """A balancer per cluster with endpoints; one whose endpoints and settings did not change is kept as it is."""
        balancers = {}
        for name, members in endpoints.items():
            detection = _outlier_detection(clusters.get(name))
            old = self.balancers.get(name)
            if old is not None and old.endpoints == members and old.detection == detection:
                balancers[name] = old
            elif old is not None:
                balancers[name] = old.updated(members, detection, self.log)
            else:
                balancers[name] = ClusterBalancer(name, members, detection, self.log, time.monotonic)
        return balancers


def _report(balancer: ClusterBalancer, host, failure: str | None) -> None:
    if failure is None:
        balancer.connected(host)
    else:
        balancer.failed(host)


def _endpoints(assignment: endpoint_pb2.ClusterLoadAssignment) -> tuple[EdsEndpoint, ...]:
    """EDS's endpoints with what the proxy uses: priority, weight, locality, tlsMode, network."""
    found = []
    for group in assignment.endpoints:
        locality = "/".join(part for part in (group.locality.region, group.locality.zone, group.locality.sub_zone) if part)
        for lb in group.lb_endpoints:
            address = lb.endpoint.address.socket_address
            match = json_format.MessageToDict(lb.metadata.filter_metadata[TRANSPORT_SOCKET_MATCH]) if TRANSPORT_SOCKET_MATCH in lb.metadata.filter_metadata else {}
            istio = json_format.MessageToDict(lb.metadata.filter_metadata["istio"]) if "istio" in lb.metadata.filter_metadata else {}
            found.append(EdsEndpoint(address.address, address.port_value, lb.load_balancing_weight.value or 1, locality, group.priority,
                                     istio.get("network", ""), match.get("tlsMode", TLS_DISABLED)))
    return tuple(found)


def _outlier_detection(cluster: cluster_pb2.Cluster | None) -> OutlierDetection | None:
    if cluster is None or not cluster.HasField("outlier_detection"):
        return None
    return OutlierDetection.from_envoy(json_format.MessageToDict(cluster.outlier_detection), f"cluster {cluster.name} outlierDetection")


def _istio_mutual_sni(cluster: cluster_pb2.Cluster | None) -> str | None:
    """The SNI of the cluster's ``tlsMode-istio`` transport socket (None: the cluster has none)."""
    for match in cluster.transport_socket_matches if cluster is not None else ():
        if match.name == f"tlsMode-{ISTIO_MUTUAL}":
            context = tls_pb2.UpstreamTlsContext()
            if match.transport_socket.typed_config.Unpack(context):
                return context.sni
    return None


def _tcp_cluster(chain) -> str | None:
    for network_filter in chain.filters:
        proxy = tcp_proxy_pb2.TcpProxy()
        if network_filter.typed_config.Unpack(proxy):
            return proxy.cluster
    return None


_MESSAGES = {LISTENER: listener_pb2.Listener, CLUSTER: cluster_pb2.Cluster, ENDPOINT: endpoint_pb2.ClusterLoadAssignment}


class AdsClient:
    """One ADS stream to ``server`` ("ip:port"), on a daemon thread. ``table`` is always the latest
    good configuration; ``log`` gets one record per response (applied, or NACKed with the reason)."""

    def __init__(self, server: str, node_id: str, labels: dict[str, str], log: Callable[[dict], None]) -> None:
        self.server, self.log = server, log
        metadata = struct_pb2.Struct()
        metadata.update({"LABELS": dict(labels)})
        self.node = base_pb2.Node(id=node_id, cluster="meshlab", metadata=metadata)
        self.table = OutboundTable(log=log)
        self._requests: queue.Queue = queue.Queue()
        self._eds_names: list[str] = []
        self._acked: dict[str, tuple[str, str]] = {}  # type -> (version, nonce) of the last response
        self._thread = threading.Thread(target=self._run, name="ads", daemon=True)
        self._channel: grpc.Channel | None = None

    def start(self) -> None:
        self._channel = grpc.insecure_channel(f"ipv4:{self.server}")
        self._thread.start()

    def stop(self) -> None:
        """End the stream (the control plane forgets this client) and the thread."""
        self._requests.put(None)
        self._thread.join(timeout=5)
        self._channel.close()

    def _run(self) -> None:
        stub = ads_pb2_grpc.AggregatedDiscoveryServiceStub(self._channel)
        self._requests.put(discovery_pb2.DiscoveryRequest(node=self.node, type_url=LISTENER, resource_names=[WILDCARD]))
        self._requests.put(discovery_pb2.DiscoveryRequest(type_url=CLUSTER, resource_names=[WILDCARD]))
        try:
            for response in stub.StreamAggregatedResources(iter(self._requests.get, None), wait_for_ready=True):
                self._on_response(response)
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.CANCELLED:  # CANCELLED: stop() closed the channel
                self.log({"event": "xds", "error": f"ADS stream to {self.server} ended: {error.code().name} {error.details()}"})

    def _on_response(self, response: discovery_pb2.DiscoveryResponse) -> None:
        type_url = response.type_url
        names = [WILDCARD] if type_url in (LISTENER, CLUSTER) else self._eds_names
        try:
            resources = [_unpack(resource, type_url) for resource in response.resources]
            if type_url == LISTENER:
                self.table = self.table.with_listeners(resources)
            elif type_url == CLUSTER:
                self.table = self.table.with_clusters(resources)
            else:
                self.table = self.table.with_endpoints(resources)
        except (KeyError, ValueError) as error:
            version = self._acked.get(type_url, ("", ""))[0]
            self._requests.put(discovery_pb2.DiscoveryRequest(type_url=type_url, version_info=version, response_nonce=response.nonce, resource_names=names,
                                                              error_detail=status_pb2.Status(code=3, message=str(error))))
            self.log({"event": "xds", "type": SHORT.get(type_url, type_url), "version": response.version_info, "nack": str(error)})
            return
        self._acked[type_url] = (response.version_info, response.nonce)
        self._requests.put(discovery_pb2.DiscoveryRequest(type_url=type_url, version_info=response.version_info, response_nonce=response.nonce, resource_names=names))
        self.log({"event": "xds", "type": SHORT[type_url], "version": response.version_info, "resources": sorted(_name(r) for r in resources)})
        if type_url == CLUSTER:
            wanted = sorted(c.name for c in resources if c.type == cluster_pb2.Cluster.EDS)
            if wanted != self._eds_names:
                self._eds_names = wanted
                version, nonce = self._acked.get(ENDPOINT, ("", ""))
                self._requests.put(discovery_pb2.DiscoveryRequest(type_url=ENDPOINT, version_info=version, response_nonce=nonce, resource_names=wanted))


def _unpack(resource, type_url: str):
    message = _MESSAGES[type_url]()
    if not resource.Unpack(message):
        raise ValueError(f"a {SHORT.get(type_url, type_url)} response holds a {resource.type_url}, not a {message.DESCRIPTOR.full_name}")
    return message


def _name(resource) -> str:
    return resource.cluster_name if isinstance(resource, endpoint_pb2.ClusterLoadAssignment) else resource.name
