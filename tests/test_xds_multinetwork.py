"""Across networks in Envoy's terms: what meshlab's control plane writes (EDS priorities and tlsMode,
Istio's transport-socket matches, the AUTO_PASSTHROUGH listener) and what the lab sidecar makes of it
(priority failover with outlier detection, mutual TLS with the cluster's SNI)."""

from __future__ import annotations

import pytest
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.extensions.transport_sockets.tls.v3 import tls_pb2

from meshlab.lab.xdsclient import OutboundTable, _endpoints
from meshlab.xds import outbound
from meshlab.xds.outbound import ClusterIPService, EdsEndpoint
from meshlab.xds.resources import CLUSTER, ENDPOINT, LISTENER

HOST = "echo.default.svc.cluster.local"
SNI = f"outbound_.9080_._.{HOST}"
HOME = (EdsEndpoint("10.244.0.12", 8080, 1, "region1/zone1", 0, "network1", "istio"),
        EdsEndpoint("10.244.0.13", 8080, 1, "region1/zone1", 0, "network1", "istio"))
GATEWAY = EdsEndpoint("10.250.0.12", 15443, 2, "region2/zone2", 1, "network2", "istio")
DETECTION = {"consecutive5xx": 1, "interval": "1s", "baseEjectionTime": "5s", "maxEjectionPercent": 100}
SERVICE = ClusterIPService(HOST, "default", "10.96.0.10", 9080, (*HOME, GATEWAY), DETECTION, "network1")


def unpacked(resources: dict, message):
    return {name: (lambda m: (any_.Unpack(m), m)[1])(message()) for name, any_ in resources.items()}


def test_eds_groups_endpoints_by_priority_and_locality_with_weights_and_tls_mode():
    (assignment,) = unpacked(outbound.build(ENDPOINT, SERVICE), endpoint_pb2.ClusterLoadAssignment).values()
    groups = [(g.priority, g.locality.region, g.locality.zone, g.load_balancing_weight.value, len(g.lb_endpoints)) for g in assignment.endpoints]
    assert groups == [(0, "region1", "zone1", 2, 2), (1, "region2", "zone2", 2, 1)]
    gateway = assignment.endpoints[1].lb_endpoints[0]
    assert gateway.load_balancing_weight.value == 2
    assert dict(gateway.metadata.filter_metadata["envoy.transport_socket_match"]) == {"tlsMode": "istio"}
    assert _endpoints(assignment) == SERVICE.endpoints, "what the sidecar reads back is what was sent"


def test_the_cluster_carries_istios_transport_socket_matches_and_the_outlier_detection():
    (cluster,) = unpacked(outbound.build(CLUSTER, SERVICE), cluster_pb2.Cluster).values()
    assert [m.name for m in cluster.transport_socket_matches] == ["tlsMode-istio", "tlsMode-disabled"]
    context = tls_pb2.UpstreamTlsContext()
    assert cluster.transport_socket_matches[0].transport_socket.typed_config.Unpack(context)
    assert (context.sni, list(context.common_tls_context.alpn_protocols)) == (SNI, ["istio"])
    assert dict(cluster.transport_socket_matches[1].match) == {}
    assert (cluster.outlier_detection.consecutive_5xx.value, cluster.outlier_detection.base_ejection_time.seconds) == (1, 5)


def test_a_plaintext_service_keeps_the_plain_cluster():
    (cluster,) = unpacked(outbound.build(CLUSTER, ClusterIPService(HOST, "default", "10.96.0.10", 9080, ("10.244.0.12:8080",))), cluster_pb2.Cluster).values()
    assert not cluster.transport_socket_matches and not cluster.HasField("outlier_detection")


def test_bad_endpoints_and_settings_are_refused_with_what_is_accepted():
    with pytest.raises(ValueError, match="endpoint '10.244.0.12' is not ip:port"):
        ClusterIPService(HOST, "default", "10.96.0.10", 9080, ("10.244.0.12",))
    with pytest.raises(ValueError, match="needs tls_mode 'istio' or 'disabled'"):
        ClusterIPService(HOST, "default", "10.96.0.10", 9080, (EdsEndpoint("10.244.0.12", 8080, tls_mode="strict"),))
    with pytest.raises(ValueError, match="outlierDetection: .*consecutive5xxErrors"):
        outbound.build(CLUSTER, ClusterIPService(HOST, "default", "10.96.0.10", 9080, HOME, {"consecutive5xxErrors": 1}))


def test_the_eastwest_gateway_matches_each_sni_and_keeps_its_own_networks_endpoints():
    hello = ClusterIPService("hello.default.svc.cluster.local", "default", "10.96.0.11", 9080, (GATEWAY,), None, "network1")
    (listener,) = unpacked(outbound.build_eastwest(LISTENER, [SERVICE, hello]), listener_pb2.Listener).values()
    assert listener.name == "0.0.0.0_15443" and listener.listener_filters[0].name == "envoy.filters.listener.tls_inspector"
    assert [list(c.filter_chain_match.server_names) for c in listener.filter_chains] == [[SNI], ["outbound_.9080_._.hello.default.svc.cluster.local"]]
    assignments = unpacked(outbound.build_eastwest(ENDPOINT, [SERVICE, hello]), endpoint_pb2.ClusterLoadAssignment)
    assert [len(g.lb_endpoints) for g in assignments[SNI].endpoints] == [2], "only network1's pods: a gateway does not pass on to another"
    assert not assignments["outbound_.9080_._.hello.default.svc.cluster.local"].endpoints
    table = OutboundTable().with_listeners([listener])
    assert table.sni_routes[SNI] == SNI
    with pytest.raises(LookupError, match="no filter chain matches SNI"):
        table.by_sni("outbound_.80_._.nothing.default.svc.cluster.local")


def table_for(service: ClusterIPService, events: list) -> OutboundTable:
    (listener,) = unpacked(outbound.build(LISTENER, service), listener_pb2.Listener).values()
    (cluster,) = unpacked(outbound.build(CLUSTER, service), cluster_pb2.Cluster).values()
    (assignment,) = unpacked(outbound.build(ENDPOINT, service), endpoint_pb2.ClusterLoadAssignment).values()
    return OutboundTable(log=events.append).with_listeners([listener]).with_clusters([cluster]).with_endpoints([assignment])


def test_traffic_stays_at_priority_0_then_fails_over_as_hosts_are_ejected_with_tls_and_sni():
    events: list[dict] = []
    table = table_for(SERVICE, events)
    picks = [table.upstream("10.96.0.10", 9080) for _ in range(4)]
    assert sorted({p.host for p in picks}) == ["10.244.0.12", "10.244.0.13"] and all(p.sni == SNI for p in picks)
    for pick in picks[:2]:  # both home pods refuse one connection each: consecutive5xx 1 ejects each
        pick.report("connect_failed")
    assert [e["action"] for e in events] == ["EJECT", "EJECT"]
    away = [table.upstream("10.96.0.10", 9080) for _ in range(3)]
    assert {(p.host, p.port, p.sni) for p in away} == {("10.250.0.12", 15443, SNI)}, "priority 1: the other network's gateway"


def test_half_the_home_hosts_ejected_spills_thirty_percent_as_envoys_priority_load_says():
    events: list[dict] = []
    table = table_for(SERVICE, events)
    table.upstream("10.96.0.10", 9080).report("connect_failed")
    hosts = [table.upstream("10.96.0.10", 9080).host for _ in range(2000)]
    away = hosts.count("10.250.0.12") / len(hosts)
    assert 0.25 < away < 0.35, f"1 of 2 healthy x 1.4 = 70% stays at priority 0; {away:.0%} went away"


def test_an_endpoint_update_keeps_an_ejection():
    events: list[dict] = []
    table = table_for(SERVICE, events)
    pick = table.upstream("10.96.0.10", 9080)
    pick.report("connect_failed")
    grown = ClusterIPService(HOST, "default", "10.96.0.10", 9080, (*HOME, EdsEndpoint("10.244.0.14", 8080, 1, "region1/zone1", 0, "network1", "istio"),
                                                                      GATEWAY), DETECTION, "network1")
    (assignment,) = unpacked(outbound.build(ENDPOINT, grown), endpoint_pb2.ClusterLoadAssignment).values()
    moved = table.with_endpoints([assignment])
    hosts = {moved.upstream("10.96.0.10", 9080).host for _ in range(20)}
    assert "10.244.0.14" in hosts and pick.host not in hosts, "a new pod is used, the ejected one stays out"
