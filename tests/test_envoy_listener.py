"""Envoy's filter chain selection (meshlab.envoy.listener) and Istio's inbound listener (meshlab.xds.inbound).

The selection cases follow the FilterChainMatch comments of Envoy's API (go-control-plane envoy@v1.38.0
listener_components.pb.go). The inbound listener's chains and filters are checked against what Istio's
own tests expect (pilot/pkg/networking/core/listener_test.go verifyFilterChainMatch and
verifyInboundFilterChains, Istio 1.30 line), and every Any in it is checked to hold its type URL's message.
"""

from __future__ import annotations

import json

import pytest
from envoy.config.listener.v3 import listener_components_pb2 as lc_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import http_connection_manager_pb2 as hcm_pb2
from envoy.extensions.filters.network.tcp_proxy.v3 import tcp_proxy_pb2
from google.protobuf import any_pb2, descriptor_pool, json_format, message_factory
from google.protobuf.message import Message

from meshlab.envoy.listener import Connection, as_listener, hand_off, select_filter_chain
from meshlab.xds import inbound, outbound
from meshlab.xds.resources import packed


def chain(name: str, **match) -> lc_pb2.FilterChain:
    proxy = tcp_proxy_pb2.TcpProxy(stat_prefix=name, cluster=name)
    return lc_pb2.FilterChain(name=name, filter_chain_match=lc_pb2.FilterChainMatch(**match) if match else None,
                              filters=[lc_pb2.Filter(name="envoy.filters.network.tcp_proxy", typed_config=packed(proxy))])


def cidr(text: str) -> dict:
    address, length = text.split("/")
    return {"address_prefix": address, "prefix_len": {"value": int(length)}}


def listener(*chains: lc_pb2.FilterChain, default: str = "") -> listener_pb2.Listener:
    built = listener_pb2.Listener(name="l", filter_chains=list(chains))
    if default:
        built.default_filter_chain.CopyFrom(chain(default))
    return built


SELECTION = [
    ("a chain on the connection's port beats one without a port",
     listener(chain("any"), chain("p80", destination_port={"value": 80})), Connection("10.0.0.1", 80), "p80"),
    ("a chain on another port never matches, so the portless one takes it",
     listener(chain("any"), chain("p81", destination_port={"value": 81})), Connection("10.0.0.1", 80), "any"),
    ("the longest destination prefix wins",
     listener(chain("wide", prefix_ranges=[cidr("10.0.0.0/8")]), chain("narrow", prefix_ranges=[cidr("10.1.0.0/16")])), Connection("10.1.2.3", 80), "narrow"),
    ("a /0 range is still more specific than no range",
     listener(chain("none"), chain("zero", prefix_ranges=[cidr("0.0.0.0/0")])), Connection("10.1.2.3", 80), "zero"),
    ("an exact server name beats a wildcard",
     listener(chain("wild", server_names=["*.example.com"]), chain("exact", server_names=["www.example.com"])),
     Connection("10.0.0.1", 443, server_name="www.example.com", transport_protocol="tls"), "exact"),
    ("the longer wildcard beats the shorter one",
     listener(chain("com", server_names=["*.com"]), chain("example", server_names=["*.example.com"])),
     Connection("10.0.0.1", 443, server_name="a.b.example.com", transport_protocol="tls"), "example"),
    ("a server name matching no name falls to the chain without server names",
     listener(chain("none"), chain("other", server_names=["other.org"])), Connection("10.0.0.1", 443, server_name="www.example.com"), "none"),
    ("tls is told from raw_buffer by the transport protocol",
     listener(chain("tls", transport_protocol="tls"), chain("raw", transport_protocol="raw_buffer")), Connection("10.0.0.1", 80), "raw"),
    ("the first of the client's ALPN names that a chain lists wins",
     listener(chain("h2", application_protocols=["h2"]), chain("h11", application_protocols=["http/1.1"])),
     Connection("10.0.0.1", 443, transport_protocol="tls", application_protocols=("http/1.1", "h2")), "h11"),
    ("a connection from the host itself picks SAME_IP_OR_LOOPBACK",
     listener(chain("any"), chain("local", source_type=lc_pb2.FilterChainMatch.SAME_IP_OR_LOOPBACK)), Connection("10.0.0.1", 80, source_ip="10.0.0.1"), "local"),
    ("a connection from elsewhere picks EXTERNAL",
     listener(chain("local", source_type=lc_pb2.FilterChainMatch.SAME_IP_OR_LOOPBACK), chain("external", source_type=lc_pb2.FilterChainMatch.EXTERNAL)),
     Connection("10.0.0.1", 80, source_ip="10.0.0.9"), "external"),
    ("the longest source prefix wins, then the source port",
     listener(chain("src8", source_prefix_ranges=[cidr("10.0.0.0/8")]), chain("src24", source_prefix_ranges=[cidr("10.0.0.0/24")]),
              chain("src24port", source_prefix_ranges=[cidr("10.0.0.0/24")], source_ports=[5000])),
     Connection("10.9.9.9", 80, source_ip="10.0.0.7", source_port=5000), "src24port"),
    ("the direct source prefix is decided before the source type",
     listener(chain("direct", direct_source_prefix_ranges=[cidr("192.168.0.0/16")]), chain("local", source_type=lc_pb2.FilterChainMatch.SAME_IP_OR_LOOPBACK)),
     Connection("10.0.0.1", 80, source_ip="10.0.0.1", direct_source_ip="192.168.1.1"), "direct"),
    ("there is no going back: the port's chain wants tls, so raw_buffer gets the default, not the portless chain",
     listener(chain("any"), chain("p80tls", destination_port={"value": 80}, transport_protocol="tls"), default="fallback"),
     Connection("10.0.0.1", 80), "fallback"),
]


@pytest.mark.parametrize("listener_, connection, expected", [case[1:] for case in SELECTION], ids=[case[0] for case in SELECTION])
def test_filter_chain_selection(listener_, connection, expected):
    chosen = select_filter_chain(listener_, connection)
    assert chosen is not None and chosen.name == expected
    assert chosen.network_filters == ("envoy.filters.network.tcp_proxy",)


def test_with_no_chain_matching_and_no_default_envoy_closes_the_connection():
    assert select_filter_chain(listener(chain("p81", destination_port={"value": 81})), Connection("10.0.0.1", 80)) is None


def test_the_default_chain_is_reported_as_such():
    chosen = select_filter_chain(listener(chain("p81", destination_port={"value": 81}), default="fallback"), Connection("10.0.0.1", 80))
    assert chosen is not None and (chosen.name, chosen.default) == ("fallback", True)


def test_a_listener_is_read_from_its_protojson_as_well():
    text = json_format.MessageToJson(listener(chain("p80", destination_port={"value": 80})))
    assert select_filter_chain(text, Connection("10.0.0.1", 80)).name == "p80"
    assert select_filter_chain(json.loads(text), Connection("10.0.0.1", 80)).name == "p80"


@pytest.mark.parametrize("make, message", [
    (lambda: Connection("10.0.0.1", 80, transport_protocol="quic"), "accepted are tls, raw_buffer"),
    (lambda: Connection("10.0.0.300", 80), "destination_ip '10.0.0.300' is not an IPv4 or IPv6 address"),
    (lambda: Connection("10.0.0.1", 70000), "destination_port 70000 is not a port"),
    (lambda: Connection("10.0.0.1", 80, application_protocols="h2"), "a list of ALPN names"),
    (lambda: as_listener("{not json"), "listener JSON"),
    (lambda: as_listener({"name": "l", "filterChains": "x"}), "Envoy's Listener in protojson"),
    (lambda: as_listener(42), "int given"),
    (lambda: select_filter_chain(listener(chain("a"), chain("b")), Connection("10.0.0.1", 80)), "filter chains 'a', 'b' have the same match"),
], ids=["unknown transport", "bad address", "bad port", "ALPN as a string", "broken JSON", "wrong field shape", "not a listener", "duplicate matches"])
def test_bad_input_is_named(make, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        make()


def test_virtual_outbound_hands_a_connection_to_the_listener_of_its_original_destination():
    service = outbound.ClusterIPService("web.default.svc.cluster.local", "default", "10.96.0.10", 80, ("10.1.0.5:8080",))
    wildcard = listener_pb2.Listener(name="0.0.0.0_9090")
    wildcard.address.socket_address.address, wildcard.address.socket_address.port_value = "0.0.0.0", 9090
    listeners = [outbound.virtual_outbound(), outbound.listener(service), wildcard]
    assert hand_off(listeners, "virtualOutbound", Connection("10.96.0.10", 80)).name == "10.96.0.10_80"
    assert hand_off(listeners, "virtualOutbound", Connection("10.96.0.99", 9090)).name == "0.0.0.0_9090"
    kept = hand_off(listeners, "virtualOutbound", Connection("93.184.216.34", 443))
    assert kept.name == "virtualOutbound"
    assert select_filter_chain(kept, Connection("93.184.216.34", 443)).network_filters == ("envoy.filters.network.tcp_proxy",)
    with pytest.raises(ValueError, match="no listener named 'nope'"):
        hand_off(listeners, "nope", Connection("10.96.0.10", 80))


# Istio's inbound listener ---------------------------------------------------------------------

PORTS = [inbound.InboundPort(8080, "HTTP", "web.default.svc.cluster.local"), inbound.InboundPort(5432, "TCP")]
# listener_test.go verifyFilterChainMatch (its test mesh has no Telemetry, so no istio.stats)
ISTIO_HTTP_FILTERS = ("istio.metadata_exchange", "envoy.filters.http.grpc_stats", "envoy.filters.http.fault", "envoy.filters.http.cors", "envoy.filters.http.router")
ISTIO_HTTP_NETWORK = ("istio.metadata_exchange", "envoy.filters.network.http_connection_manager")
ISTIO_TCP_NETWORK = ("istio.metadata_exchange", "envoy.filters.network.tcp_proxy")


def test_the_passthrough_chains_are_the_ones_istios_test_expects():
    built = inbound.virtual_inbound([], stats=False)
    got = [(c.name, c.filter_chain_match.transport_protocol, tuple(c.filter_chain_match.application_protocols)) for c in built.filter_chains]
    assert got == [  # verifyInboundFilterChains: blackhole, MTLSHTTP, PlainHTTP, MTLSTCP, PlainTCP, StandardTLS
        ("virtualInbound-blackhole", "", ()),
        ("virtualInbound-catchall-http", "tls", ("istio-http/1.0", "istio-http/1.1", "istio-h2")),
        ("virtualInbound-catchall-http", "raw_buffer", ("http/1.0", "http/1.1", "h2c")),
        ("virtualInbound", "tls", ("istio-peer-exchange", "istio")),
        ("virtualInbound", "raw_buffer", ()),
        ("virtualInbound", "tls", ())]
    assert built.filter_chains[0].filter_chain_match.destination_port.value == 15006
    for c in built.filter_chains[1:]:
        chosen_http = c.name == "virtualInbound-catchall-http"
        assert tuple(f.name for f in c.filters) == (ISTIO_HTTP_NETWORK if chosen_http else ISTIO_TCP_NETWORK)
        assert c.HasField("transport_socket") == (c.filter_chain_match.application_protocols[:1] in (["istio-http/1.0"], ["istio-peer-exchange"]))


CONNECTIONS = [
    ("a mesh peer's mTLS HTTP request reaches the port's HCM and its inline route",
     Connection("10.1.0.5", 8080, transport_protocol="tls", application_protocols=("istio-http/1.1",)), "0.0.0.0_8080", "inbound|8080||", True),
    ("a plaintext request to the HTTP port takes the raw_buffer chain (PERMISSIVE)",
     Connection("10.1.0.5", 8080, application_protocols=("http/1.1",)), "0.0.0.0_8080", "inbound|8080||", False),
    ("a mesh peer's mTLS TCP connection reaches the TCP port's tcp_proxy",
     Connection("10.1.0.5", 5432, transport_protocol="tls", application_protocols=("istio-peer-exchange", "istio")), "0.0.0.0_5432", "", True),
    ("plaintext HTTP to a port with no service takes the catch-all HTTP chain",
     Connection("10.1.0.5", 9999, application_protocols=("http/1.1",)), "virtualInbound-catchall-http", "InboundPassthroughCluster", False),
    ("a non-mesh TLS connection to an unknown port passes through without termination",
     Connection("10.1.0.5", 9999, transport_protocol="tls", application_protocols=("h2",)), "virtualInbound", "", False),
    ("a connection to 15006 itself is dropped by the blackhole chain",
     Connection("10.1.0.5", 15006), "virtualInbound-blackhole", "", False),
]


@pytest.mark.parametrize("connection, name, route, terminates", [c[1:] for c in CONNECTIONS], ids=[c[0] for c in CONNECTIONS])
def test_istios_inbound_chains_take_connections_as_envoy_would(connection, name, route, terminates):
    chosen = select_filter_chain(inbound.virtual_inbound(PORTS, stats=False), connection)
    assert (chosen.name, chosen.route_config, chosen.chain.HasField("transport_socket")) == (name, route, terminates)
    if route:
        assert chosen.http_filters == ISTIO_HTTP_FILTERS


def test_wasm_plugins_sit_in_their_phase_as_ecds_references():
    wasm = inbound.WasmPhases.of([("default.stats-b", "STATS"), ("default.authz", "AUTHZ"), ("default.authn", "AUTHN"), ("default.stats-a", "STATS"),
                                  ("default.any", "UNSPECIFIED_PHASE")])
    filters = inbound.http_filters(wasm)
    assert [f.name for f in filters] == ["istio.metadata_exchange", "default.authn", "default.authz", "default.stats-b", "default.stats-a", "default.any",
                                         "envoy.filters.http.grpc_stats", "envoy.filters.http.fault", "envoy.filters.http.cors", "istio.stats",
                                         "envoy.filters.http.router"]
    reference = filters[1]
    assert reference.WhichOneof("config_type") == "config_discovery"
    assert "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm" in reference.config_discovery.type_urls
    assert reference.config_discovery.config_source.HasField("ads")


def test_the_listener_filters_are_original_dst_then_the_inspectors():
    built = inbound.virtual_inbound(PORTS)
    assert [f.name for f in built.listener_filters] == ["envoy.filters.listener.original_dst", "envoy.filters.listener.tls_inspector",
                                                        "envoy.filters.listener.http_inspector"]
    assert built.use_original_dst.value and built.address.socket_address.port_value == 15006
    # http_inspector is off where no chain matches on http/1.1 or h2c: the blackhole, the TCP port, and the
    # declared HTTP port too (its plaintext chain matches raw_buffer alone: nothing to sniff)
    http_inspector = built.listener_filters[2]
    ranges = sorted(rule.destination_port_range.start for rule in http_inspector.filter_disabled.or_match.rules)
    assert ranges == [5432, 8080, 15006]
    sniffed = inbound.virtual_inbound([inbound.InboundPort(9090, "auto")]).listener_filters[2]
    assert sniffed.filter_disabled.destination_port_range.start == 15006  # one port: a single rule, no or_match


def test_inbound_clusters_are_original_dst_from_127_0_0_6():
    clusters = {c.name: c for c in inbound.inbound_clusters(PORTS)}
    assert sorted(clusters) == ["InboundPassthroughCluster", "inbound|5432||", "inbound|8080||"]
    for c in clusters.values():
        assert c.type == c.ORIGINAL_DST and c.lb_policy == c.CLUSTER_PROVIDED
        assert c.upstream_bind_config.source_address.address == "127.0.0.6"


@pytest.mark.parametrize("make, message", [
    (lambda: inbound.InboundPort(15006), "except 15006"),
    (lambda: inbound.InboundPort(80, "UDP"), "protocol 'UDP'; accepted are HTTP"),
    (lambda: inbound.WasmPhases({"LATE": ("x",)}), "Wasm phase 'LATE'"),
    (lambda: inbound.virtual_inbound(PORTS, mode="OPTIONAL"), "mode 'OPTIONAL'"),
    (lambda: inbound.virtual_inbound([inbound.InboundPort(80), inbound.InboundPort(80, "TCP")]), "each port once"),
], ids=["capture port", "protocol", "phase", "mode", "duplicate port"])
def test_bad_inbound_input_is_named(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def _anys(message: Message):
    for field, value in message.ListFields():
        if field.message_type is None:
            continue
        items = value if field.is_repeated else [value]
        if field.message_type.GetOptions().map_entry:
            items = list(value.values()) if field.message_type.fields_by_name["value"].message_type else []
        for item in items:
            if isinstance(item, any_pb2.Any):
                yield item
            elif isinstance(item, Message):
                yield from _anys(item)


def test_every_any_holds_a_message_of_its_type_url():
    resources = list(inbound.build_inbound("type.googleapis.com/envoy.config.listener.v3.Listener", PORTS, inbound.WasmPhases.of([("d.x", "AUTHN")])).values())
    resources += list(inbound.build_inbound("type.googleapis.com/envoy.config.cluster.v3.Cluster", PORTS).values())
    seen = set()
    pending = list(resources)
    while pending:
        packed_ = pending.pop()
        descriptor = descriptor_pool.Default().FindMessageTypeByName(packed_.type_url.split("/")[-1])
        inner = message_factory.GetMessageClass(descriptor)()
        inner.ParseFromString(packed_.value)
        stripped = type(inner)()
        stripped.CopyFrom(inner)
        stripped.DiscardUnknownFields()
        assert stripped.SerializeToString(deterministic=True) == inner.SerializeToString(deterministic=True), packed_.type_url
        seen.add(packed_.type_url)
        pending.extend(_anys(inner))
    assert {"type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
            "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
            "type.googleapis.com/udpa.type.v1.TypedStruct"} <= seen


def test_strict_mode_leaves_a_port_only_its_mtls_chain_so_plaintext_falls_to_nothing_there():
    built = inbound.virtual_inbound([inbound.InboundPort(8080, "HTTP")], mode="STRICT", stats=False)
    port_chains = [c for c in built.filter_chains if c.name == "0.0.0.0_8080"]
    assert [(c.filter_chain_match.transport_protocol, c.HasField("transport_socket")) for c in port_chains] == [("tls", True)]
    # filterchain_options.go: STRICT passthrough is Auto-protocol, tls only
    assert {c.filter_chain_match.transport_protocol for c in built.filter_chains if c.name.startswith("virtualInbound-catchall") or c.name == "virtualInbound"} == {"tls"}
    assert select_filter_chain(built, Connection("10.1.0.5", 8080, application_protocols=("http/1.1",))) is None


def test_the_inbound_route_retries_a_reset_before_the_request_except_for_grpc():
    def route_of(protocol: str):
        built = inbound.virtual_inbound([inbound.InboundPort(8080, protocol)])
        chosen = select_filter_chain(built, Connection("10.1.0.5", 8080))
        manager = hcm_pb2.HttpConnectionManager()
        chosen.chain.filters[-1].typed_config.Unpack(manager)
        return manager.route_config.virtual_hosts[0].routes[0].route
    assert (route_of("HTTP").retry_policy.retry_on, route_of("HTTP").retry_policy.num_retries.value) == ("reset-before-request", 2)
    assert not route_of("GRPC").HasField("retry_policy")
    assert route_of("GRPC").cluster == "inbound|8080||"
