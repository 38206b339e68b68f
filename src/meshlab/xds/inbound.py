"""What a sidecar is sent for its own pod's ports: Istio's inbound listener ``virtualInbound`` and clusters.

The pod's rules send every inbound connection to 15006. There one listener, ``virtualInbound``
(0.0.0.0:15006, not bound to a port of its own, ``use_original_dst``), holds a filter chain per port of
the pod and per way a peer may speak to it. Under PeerAuthentication PERMISSIVE a port's chains are
told apart by transport protocol and ALPN, which the listener filters find out: tls_inspector (TLS
and its ALPN: Istio's sidecars offer ``istio-peer-exchange``/``istio`` for TCP and ``istio-http/1.1``,
``istio-h2``... for HTTP) and http_inspector (plaintext HTTP: ``http/1.1``, ``h2c``). An HTTP chain
runs an HTTP connection manager whose inline route ``inbound|<port>||`` sends everything to the
cluster of the same name; a TCP chain runs tcp_proxy to it. What matches no port takes the
passthrough chains to ``InboundPassthroughCluster``; connections to 15006 itself are dropped by
``virtualInbound-blackhole``. The inbound clusters are ORIGINAL_DST (on to the pod's own address and
port) with the source address 127.0.0.6, so that the pod's rules let the proxy's own connection
through instead of capturing it again.

The HTTP filters are Istio's in Istio's order (listener_builder.go buildHTTPConnectionManager):
``istio.metadata_exchange``, the AUTHN-phase extensions, (authn's JWT filter, only with a
RequestAuthentication), the AUTHZ-phase extensions, (RBAC, only with an AuthorizationPolicy), the
STATS-phase then the UNSPECIFIED-phase extensions, ``envoy.filters.http.grpc_stats``,
``envoy.filters.http.fault``, ``envoy.filters.http.cors``, ``istio.stats``, ``envoy.filters.http.router``.
A Wasm extension is an ECDS reference: a filter named after it whose config_discovery asks ADS for
the extension config of that name (extension/extensionfilter.go toEnvoyHTTPTrafficExtension).

Sources, Istio 1.30 (istio.io/istio@v0.0.0-20260826214018-9739e10eb9d7, pilot/pkg/networking/core):
listener_inbound.go (buildInboundListeners, inboundVirtualListener, buildInboundPassthroughChains,
buildInboundBlackhole, inboundChainConfig.Name and ToFilterChainMatch, populateListenerFilters,
buildInboundNetworkFiltersForHTTP), filterchain_options.go (the match options per mode and protocol),
listener.go (the ALPN lists), httproute.go buildSidecarInboundHTTPRouteConfig (inline route, virtual
host ``inbound|http|<port>``), route/route.go BuildDefaultHTTPInboundRoute (route "default", prefix
"/", no timeout, retry on reset-before-request twice), cluster_builder.go buildInboundCluster and
buildInboundPassthroughCluster, listener_address.go (InboundPassthroughBindIpv4 127.0.0.6),
pilot/pkg/xds/filters/filters.go (filter names and TypedStruct type URLs).
Not modelled: policies (JWT, RBAC), STRICT chains' Sidecar-resource ingress, dual stack, HBONE, and
the ALPN the downstream TLS contexts advertise.

    InboundPort        one port of the pod: number, protocol (HTTP, TCP or auto-detected), service hostname
    WasmPhases         the Wasm extensions to reference, an ordered list of names per phase
    VIRTUAL_INBOUND, INBOUND_PASSTHROUGH_CLUSTER, INBOUND_PORT, ...   Istio's names and the capture port
    inbound_cluster_name  ``inbound|<port>||``
    http_filters       the inbound HCM's HTTP filters, Wasm references placed by phase
    virtual_inbound    the listener, with each port's chains and the passthrough chains
    inbound_clusters   the ports' clusters and InboundPassthroughCluster
    build_inbound      the pod's inbound resources of one type URL, by name
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import address_pb2, base_pb2, config_source_pb2
from envoy.config.listener.v3 import listener_components_pb2 as lc_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.config.route.v3 import route_components_pb2, route_pb2
from envoy.extensions.filters.http.cors.v3 import cors_pb2
from envoy.extensions.filters.http.fault.v3 import fault_pb2
from envoy.extensions.filters.http.grpc_stats.v3 import config_pb2 as grpc_stats_pb2
from envoy.extensions.filters.http.router.v3 import router_pb2
from envoy.extensions.filters.listener.http_inspector.v3 import http_inspector_pb2
from envoy.extensions.filters.listener.original_dst.v3 import original_dst_pb2
from envoy.extensions.filters.listener.tls_inspector.v3 import tls_inspector_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import http_connection_manager_pb2 as hcm_pb2
from envoy.extensions.filters.network.tcp_proxy.v3 import tcp_proxy_pb2
from envoy.extensions.transport_sockets.tls.v3 import common_pb2, secret_pb2, tls_pb2
from google.protobuf import any_pb2, duration_pb2, struct_pb2, wrappers_pb2
from udpa.type.v1 import typed_struct_pb2

from meshlab.xds.resources import CLUSTER, ENDPOINT, LISTENER, ROUTE, packed

VIRTUAL_INBOUND = "virtualInbound"  # pilot/pkg/model: VirtualInboundListenerName
CATCHALL_HTTP_CHAIN = "virtualInbound-catchall-http"  # model.VirtualInboundCatchAllHTTPFilterChainName
BLACKHOLE_CHAIN = "virtualInbound-blackhole"  # model.VirtualInboundBlackholeFilterChainName
BLACKHOLE_CLUSTER = "BlackHoleCluster"  # networking/util: BlackHoleCluster
INBOUND_PASSTHROUGH_CLUSTER = "InboundPassthroughCluster"  # networking/util: InboundPassthroughCluster
INBOUND_PORT = 15006  # MeshConfig proxyInboundListenPort's default; istio-iptables -z
PASSTHROUGH_BIND_IPV4 = "127.0.0.6"  # listener_address.go InboundPassthroughBindIpv4
TLS, RAW_BUFFER = "tls", "raw_buffer"  # xds/filters: TLSTransportProtocol, RawBufferTransportProtocol
# listener.go: the ALPN lists the inbound chains match on
PLAINTEXT_HTTP_ALPNS = ("http/1.0", "http/1.1", "h2c")
MTLS_HTTP_ALPNS = ("istio-http/1.0", "istio-http/1.1", "istio-h2")
ALL_ISTIO_MTLS_ALPNS = ("istio", "istio-peer-exchange", "istio-http/1.0", "istio-http/1.1", "istio-h2")
MTLS_TCP_WITH_MXC_ALPNS = ("istio-peer-exchange", "istio")
METADATA_EXCHANGE = "istio.metadata_exchange"  # xds/filters: MxFilterName
STATS = "istio.stats"  # pkg/config/xds: StatsFilterName
HTTP_CONNECTION_MANAGER = "envoy.filters.network.http_connection_manager"
TCP_PROXY = "envoy.filters.network.tcp_proxy"
ROUTER = "envoy.filters.http.router"
PHASES = ("AUTHN", "AUTHZ", "STATS", "UNSPECIFIED_PHASE")  # istio.io/api extensions/v1alpha1 PluginPhase
# pkg/config/xds/filters.go: what an ECDS reference to a Wasm extension accepts
ECDS_TYPE_URLS = ("type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
                  "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC")
PROTOCOLS = ("HTTP", "HTTP2", "GRPC", "TCP", "AUTO")
MODES = ("PERMISSIVE", "STRICT", "DISABLE")
SDS_CERTIFICATE, SDS_ROOT = "default", "ROOTCA"  # pkg/security: WorkloadKeyCertResourceName, RootCertReqResourceName


@dataclass(frozen=True)
class InboundPort:
    """One port of the pod (a Service's targetPort). ``protocol`` as Istio reads it from the port's
    name or appProtocol: HTTP, HTTP2 and GRPC get an HTTP connection manager, TCP a tcp_proxy, AUTO
    (unnamed: protocol sniffing) both, told apart by what http_inspector finds."""

    port: int
    protocol: str = "HTTP"
    hostname: str = ""

    def __post_init__(self) -> None:
        if not 1 <= self.port <= 65535 or self.port == INBOUND_PORT:
            raise ValueError(f"inbound port {self.port}: accepted are 1-65535 except {INBOUND_PORT} (the capture port)")
        protocol = self.protocol.upper()
        if protocol not in PROTOCOLS:
            raise ValueError(f"inbound port {self.port}: protocol {self.protocol!r}; accepted are {', '.join(PROTOCOLS)}")
        object.__setattr__(self, "protocol", protocol)

    @property
    def listener_protocols(self) -> tuple[str, ...]:
        """istionetworking.ModelProtocolToListenerProtocol: which kinds of chain the port gets."""
        return {"TCP": ("TCP",), "AUTO": ("HTTP", "TCP")}.get(self.protocol, ("HTTP",))


@dataclass(frozen=True)
class WasmPhases:
    """The Wasm extensions this pod's inbound HCM references, already ordered within each phase by
    the caller (WasmPlugin priority is another module's); names are the ECDS resource names
    (Istio's ``<namespace>.<name>``)."""

    by_phase: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = sorted(set(self.by_phase) - set(PHASES))
        if unknown:
            raise ValueError(f"Wasm phase {unknown[0]!r}; accepted are {', '.join(PHASES)}")
        names = [name for phase in PHASES for name in self.by_phase.get(phase, ())]
        if len(set(names)) != len(names) or not all(names):
            raise ValueError(f"Wasm extension names must be non-empty and appear once: {names}")

    @classmethod
    def of(cls, plugins: Sequence[tuple[str, str]]) -> WasmPhases:
        """From (name, phase) pairs in the caller's order."""
        grouped: dict[str, list[str]] = {}
        for name, phase in plugins:
            grouped.setdefault(phase, []).append(name)
        return cls({phase: tuple(names) for phase, names in grouped.items()})


def inbound_cluster_name(port: int) -> str:
    """model.BuildInboundSubsetKey: ``inbound|<port>||``."""
    return f"inbound|{port}||"


def _typed_struct(type_url: str, fields: dict) -> any_pb2.Any:
    """Istio's protoconv.TypedStructWithFields: config for a filter Envoy knows but xds-protos do not."""
    value = struct_pb2.Struct()
    value.update(fields)
    return packed(typed_struct_pb2.TypedStruct(type_url=type_url, value=value))


def _ads() -> config_source_pb2.ConfigSource:
    """extension/extensionfilter.go defaultConfigSource: ADS, v3, wait for the config (timeout 0)."""
    return config_source_pb2.ConfigSource(ads=config_source_pb2.AggregatedConfigSource(), resource_api_version=config_source_pb2.V3,
                                          initial_fetch_timeout=duration_pb2.Duration(seconds=0))


def _ecds(name: str) -> hcm_pb2.HttpFilter:
    return hcm_pb2.HttpFilter(name=name, config_discovery=config_source_pb2.ExtensionConfigSource(config_source=_ads(), type_urls=list(ECDS_TYPE_URLS)))


def http_filters(wasm: WasmPhases | None = None, stats: bool = True) -> list[hcm_pb2.HttpFilter]:
    """The inbound HCM's filters, in the order Istio appends them (no authn or authz policy applied);
    ``stats``: a Telemetry metrics provider is on (prometheus, the default profile's), adding istio.stats."""
    wasm = wasm or WasmPhases()
    peer_metadata = {"downstream_discovery": [{"istio_headers": {}}, {"workload_discovery": {}}], "downstream_propagation": [{"istio_headers": {}}]}
    filters = [hcm_pb2.HttpFilter(name=METADATA_EXCHANGE, typed_config=_typed_struct("type.googleapis.com/io.istio.http.peer_metadata.Config", peer_metadata))]
    for phase in PHASES:
        filters.extend(_ecds(name) for name in wasm.by_phase.get(phase, ()))
    grpc_stats = grpc_stats_pb2.FilterConfig(emit_filter_state=True, stats_for_all_methods=wrappers_pb2.BoolValue(value=False))
    filters += [hcm_pb2.HttpFilter(name="envoy.filters.http.grpc_stats", typed_config=packed(grpc_stats)),
                hcm_pb2.HttpFilter(name="envoy.filters.http.fault", typed_config=packed(fault_pb2.HTTPFault())),
                hcm_pb2.HttpFilter(name="envoy.filters.http.cors", typed_config=packed(cors_pb2.Cors()))]
    if stats:
        filters.append(hcm_pb2.HttpFilter(name=STATS, typed_config=_stats_config()))
    return filters + [hcm_pb2.HttpFilter(name=ROUTER, typed_config=packed(router_pb2.Router()))]


def _stats_config() -> any_pb2.Any:
    return _typed_struct("type.googleapis.com/stats.PluginConfig", {})


def _route_config(cluster: str, port: int, hostname: str, grpc: bool) -> route_pb2.RouteConfiguration:
    """buildSidecarInboundHTTPRouteConfig: one virtual host, every path to the inbound cluster
    (retried once reset before the request was sent, except for gRPC)."""
    no_timeout = duration_pb2.Duration(seconds=0)
    action = route_components_pb2.RouteAction(
        cluster=cluster, timeout=no_timeout,
        max_stream_duration=route_components_pb2.RouteAction.MaxStreamDuration(max_stream_duration=no_timeout, grpc_timeout_header_max=no_timeout))
    if not grpc:
        action.retry_policy.CopyFrom(route_components_pb2.RetryPolicy(retry_on="reset-before-request", num_retries=wrappers_pb2.UInt32Value(value=2)))
    route = route_components_pb2.Route(name="default", match=route_components_pb2.RouteMatch(prefix="/"), route=action,
                                       decorator=route_components_pb2.Decorator(operation=f"{hostname or '*'}:{port}/*"))
    host = route_components_pb2.VirtualHost(name=f"inbound|http|{port}", domains=["*"], routes=[route])
    return route_pb2.RouteConfiguration(name=cluster, virtual_hosts=[host], validate_clusters=wrappers_pb2.BoolValue(value=False))


def _metadata_exchange_network() -> lc_pb2.Filter:
    return lc_pb2.Filter(name=METADATA_EXCHANGE, typed_config=_typed_struct("type.googleapis.com/envoy.tcp.metadataexchange.config.MetadataExchange",
                                                                              {"protocol": "istio-peer-exchange", "enable_discovery": True}))


def _network_filters(protocol: str, cluster: str, port: InboundPort | None, stat_prefix: str, wasm: WasmPhases, stats: bool) -> list[lc_pb2.Filter]:
    """An HTTP chain: metadata exchange, then the HCM; a TCP chain: metadata exchange, (istio.stats), tcp_proxy."""
    if protocol == "HTTP":
        manager = hcm_pb2.HttpConnectionManager(stat_prefix=stat_prefix, route_config=_route_config(cluster, port.port if port else 0, port.hostname if port else "",
                                                                                          port is not None and port.protocol == "GRPC"),
                                                http_filters=http_filters(wasm, stats))
        return [_metadata_exchange_network(), lc_pb2.Filter(name=HTTP_CONNECTION_MANAGER, typed_config=packed(manager))]
    return _tcp_filters(cluster, stats)


def _tcp_filters(cluster: str, stats: bool) -> list[lc_pb2.Filter]:
    proxy = lc_pb2.Filter(name=TCP_PROXY, typed_config=packed(tcp_proxy_pb2.TcpProxy(stat_prefix=cluster, cluster=cluster)))
    return [_metadata_exchange_network()] + ([lc_pb2.Filter(name=STATS, typed_config=_stats_config())] if stats else []) + [proxy]


def _downstream_tls() -> base_pb2.TransportSocket:
    """Istio mutual TLS as the sidecar terminates it: its SDS certificate, peers checked against ROOTCA."""
    common = tls_pb2.CommonTlsContext(
        tls_certificate_sds_secret_configs=[secret_pb2.SdsSecretConfig(name=SDS_CERTIFICATE, sds_config=_ads())],
        combined_validation_context=tls_pb2.CommonTlsContext.CombinedCertificateValidationContext(
            default_validation_context=common_pb2.CertificateValidationContext(),
            validation_context_sds_secret_config=secret_pb2.SdsSecretConfig(name=SDS_ROOT, sds_config=_ads())))
    context = tls_pb2.DownstreamTlsContext(common_tls_context=common, require_client_certificate=wrappers_pb2.BoolValue(value=True))
    return base_pb2.TransportSocket(name="envoy.transport_sockets.tls", typed_config=packed(context))


def _options(mode: str, protocols: tuple[str, ...]) -> list[tuple[str, str, tuple[str, ...], bool]]:
    """filterchain_options.go getFilterChainMatchOptions: (listener protocol, transport, ALPNs, terminates TLS)."""
    auto = len(protocols) == 2
    protocol = protocols[0]
    if mode == "STRICT":
        if auto:
            return [("HTTP", TLS, MTLS_HTTP_ALPNS, True), ("TCP", TLS, (), True)]
        return [(protocol, TLS, (), True)]
    if mode == "DISABLE":
        if auto:
            return [("HTTP", RAW_BUFFER, PLAINTEXT_HTTP_ALPNS, False), ("TCP", RAW_BUFFER, (), False)]
        return [(protocol, RAW_BUFFER, (), False)]
    if auto:
        return [("HTTP", TLS, MTLS_HTTP_ALPNS, True), ("HTTP", RAW_BUFFER, PLAINTEXT_HTTP_ALPNS, False),
                ("TCP", TLS, MTLS_TCP_WITH_MXC_ALPNS, True), ("TCP", RAW_BUFFER, (), False), ("TCP", TLS, (), False)]
    if protocol == "HTTP":
        return [("HTTP", TLS, ALL_ISTIO_MTLS_ALPNS, True), ("HTTP", RAW_BUFFER, (), False)]
    return [("TCP", TLS, ALL_ISTIO_MTLS_ALPNS, True), ("TCP", TLS, (), False), ("TCP", RAW_BUFFER, (), False)]


def _chains(port: InboundPort | None, protocols: tuple[str, ...], mode: str, cluster: str, wasm: WasmPhases, stats: bool) -> list[lc_pb2.FilterChain]:
    """inboundChainForOpts: one chain per match option; the passthrough (no port) matches any port."""
    chains = []
    for protocol, transport, alpns, terminates in _options(mode, protocols):
        match = lc_pb2.FilterChainMatch(transport_protocol=transport, application_protocols=list(alpns))
        if port:
            match.destination_port.value = port.port
            name = f"0.0.0.0_{port.port}"
        else:
            name = CATCHALL_HTTP_CHAIN if protocol == "HTTP" else VIRTUAL_INBOUND
        stat_prefix = f"inbound_{name}" if port else cluster  # inboundChainConfig.StatPrefix
        chain = lc_pb2.FilterChain(name=name, filter_chain_match=match, filters=_network_filters(protocol, cluster, port, stat_prefix, wasm, stats))
        if terminates:
            chain.transport_socket.CopyFrom(_downstream_tls())
        chains.append(chain)
    return chains


def _blackhole(stats: bool) -> lc_pb2.FilterChain:
    return lc_pb2.FilterChain(name=BLACKHOLE_CHAIN, filter_chain_match=lc_pb2.FilterChainMatch(destination_port=wrappers_pb2.UInt32Value(value=INBOUND_PORT)),
                              filters=_tcp_filters(BLACKHOLE_CLUSTER, stats))


def _check(ports: Sequence[InboundPort], mode: str) -> None:
    if mode not in MODES:
        raise ValueError(f"PeerAuthentication mode {mode!r}; accepted are {', '.join(MODES)}")
    numbers = [p.port for p in ports]
    if len(set(numbers)) != len(numbers):
        raise ValueError(f"inbound ports {numbers}: each port once (Istio keeps the first of two services on one targetPort)")


def virtual_inbound(ports: Sequence[InboundPort], wasm: WasmPhases | None = None, mode: str = "PERMISSIVE", stats: bool = True) -> listener_pb2.Listener:
    """The pod's ``virtualInbound`` listener: blackhole and passthrough chains first, then each port's
    (``stats``: istio.stats in each chain, as with the default Telemetry)."""
    _check(ports, mode)
    wasm = wasm or WasmPhases()
    chains = [_blackhole(stats)] + _chains(None, ("HTTP", "TCP"), mode, INBOUND_PASSTHROUGH_CLUSTER, wasm, stats)
    for port in ports:
        chains += _chains(port, port.listener_protocols, mode, inbound_cluster_name(port.port), wasm, stats)
    built = listener_pb2.Listener(name=VIRTUAL_INBOUND, address=address_pb2.Address(socket_address=address_pb2.SocketAddress(address="0.0.0.0", port_value=INBOUND_PORT)),
                                  filter_chains=chains, traffic_direction=base_pb2.INBOUND, use_original_dst=wrappers_pb2.BoolValue(value=True),
                                  continue_on_listener_filters_timeout=True)
    built.listener_filters.extend(_listener_filters(chains))
    return built


def _listener_filters(chains: list[lc_pb2.FilterChain]) -> list[lc_pb2.ListenerFilter]:
    """populateListenerFilters: original_dst; tls_inspector where some chain needs TLS; http_inspector
    where some chain matches plaintext HTTP ALPNs (each disabled on the ports that need it not)."""
    tls_ports: dict[int, bool] = {}
    http_ports: dict[int, bool] = {}
    for chain in chains:
        port = chain.filter_chain_match.destination_port.value
        tls_ports[port] = tls_ports.get(port, False) or chain.filter_chain_match.transport_protocol == TLS
        http_ports[port] = http_ports.get(port, False) or any(a in ("http/1.1", "h2c") for a in chain.filter_chain_match.application_protocols)
    filters = [lc_pb2.ListenerFilter(name="envoy.filters.listener.original_dst", typed_config=packed(original_dst_pb2.OriginalDst()))]
    if any(tls_ports.values()):
        filters.append(_inspector("envoy.filters.listener.tls_inspector", packed(tls_inspector_pb2.TlsInspector()), tls_ports, tls_ports.get(0, False)))
    if any(http_ports.values()):
        filters.append(_inspector("envoy.filters.listener.http_inspector", packed(http_inspector_pb2.HttpInspector()), http_ports, True))
    return filters


def _inspector(name: str, config: any_pb2.Any, needed: dict[int, bool], default: bool) -> lc_pb2.ListenerFilter:
    """buildTLSInspector / buildHTTPInspector: ``default`` on, disable it on the ports that need it
    not (port 0 counts for the HTTP inspector, not for the TLS one); off, enable it only on the ports
    that need it."""
    ports = sorted(p for p, need in needed.items() if need != default and (p or name.endswith("http_inspector")))
    inspector = lc_pb2.ListenerFilter(name=name, typed_config=config)
    if not ports:
        return inspector
    rules = [lc_pb2.ListenerFilterChainMatchPredicate(destination_port_range={"start": p, "end": p + 1}) for p in ports]
    rule = rules[0] if len(rules) == 1 else lc_pb2.ListenerFilterChainMatchPredicate(or_match=lc_pb2.ListenerFilterChainMatchPredicate.MatchSet(rules=rules))
    inspector.filter_disabled.CopyFrom(rule if default else lc_pb2.ListenerFilterChainMatchPredicate(not_match=rule))
    return inspector


def _original_dst_cluster(name: str) -> cluster_pb2.Cluster:
    bind = address_pb2.BindConfig(source_address=address_pb2.SocketAddress(address=PASSTHROUGH_BIND_IPV4, port_value=0))
    return cluster_pb2.Cluster(name=name, type=cluster_pb2.Cluster.ORIGINAL_DST, lb_policy=cluster_pb2.Cluster.CLUSTER_PROVIDED, upstream_bind_config=bind)


def inbound_clusters(ports: Sequence[InboundPort]) -> list[cluster_pb2.Cluster]:
    """One ORIGINAL_DST cluster per port (to the pod's own address, from 127.0.0.6; its idle hosts
    kept as long as a Duration holds: cleanup_interval maxSecondsValue), and InboundPassthroughCluster."""
    _check(ports, "PERMISSIVE")
    clusters = []
    for port in ports:
        built = _original_dst_cluster(inbound_cluster_name(port.port))
        built.cleanup_interval.seconds = 315576000000  # cluster_builder.go maxSecondsValue
        clusters.append(built)
    return clusters + [_original_dst_cluster(INBOUND_PASSTHROUGH_CLUSTER)]


def build_inbound(type_url: str, ports: Sequence[InboundPort], wasm: WasmPhases | None = None, mode: str = "PERMISSIVE") -> dict[str, any_pb2.Any]:
    """The pod's inbound resources of ``type_url`` by name: LDS virtualInbound, CDS its clusters;
    none for RDS (the routes are inline) or EDS (ORIGINAL_DST clusters have no endpoints)."""
    if type_url == LISTENER:
        return {VIRTUAL_INBOUND: packed(virtual_inbound(ports, wasm, mode))}
    if type_url == CLUSTER:
        return {c.name: packed(c) for c in inbound_clusters(ports)}
    if type_url in (ROUTE, ENDPOINT):
        return {}
    raise ValueError(f"unknown type URL {type_url!r}; accepted are {LISTENER}, {ROUTE}, {CLUSTER}, {ENDPOINT}")
