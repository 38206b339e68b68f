"""Split-horizon EDS and Istio's SNI names, against Istio's own test tables: ep_filters_test.go
(TestEndpointsByNetworkFilter, ..._WithConfig, ..._ProxyWithEmptyNetwork) and service_test.go
(TestParseSubsetKey, TestParseSubsetKeyHostname), Istio master of 2026-08-26."""

from __future__ import annotations

import pytest

from meshlab.multicluster.endpoints import EastWestGateway, Endpoint, parse_sni, sni_name, split_horizon
from meshlab.multicluster.locality import failover_priority_by_labels

# environment() and testShards() of pilot/pkg/xds/endpoints/ep_filters_test.go. The "foo.bar" hostname endpoint,
# which istiod filters out before the network filter, is not an Endpoint here; 10.0.0.3 is an HBONE endpoint
# (tunnel label, PreferHBONESend): its transport-socket metadata says tunnel, not tlsMode istio, so like a
# pod without a sidecar it is sent on its own network and never through a gateway: tls_mode "disabled".
ISTIO_GATEWAYS = [EastWestGateway("network1", "1.1.1.1", 80, "cluster1a"), EastWestGateway("network2", "2.2.2.2", 80, "cluster2a"),
                  EastWestGateway("network2", "2.2.2.20", 80, "cluster2b"), EastWestGateway("network2", "2.2.2.21", 80, "cluster2b"),
                  EastWestGateway("network3", "3.3.3.3", 443, "cluster3")]
ISTIO_SHARDS = [Endpoint("10.0.0.1", 8080, "cluster1a", "network1"), Endpoint("10.0.0.3", 8080, "cluster1a", "network1", tls_mode="disabled"),
                Endpoint("10.0.0.2", 8080, "cluster1b", "network1"), Endpoint("20.0.0.1", 8080, "cluster2a", "network2"),
                Endpoint("20.0.0.2", 8080, "cluster2b", "network2"), Endpoint("20.0.0.3", 8080, "cluster2b", "network2"),
                Endpoint("40.0.0.1", 8080, "cluster4", "network4")]
# networkFiltered's want: {address: weight}, the locality's weight, and wantWorkloadMetadata's cluster order.
NETWORK_FILTERED = {
    "network1": ({"10.0.0.1": 6, "10.0.0.2": 6, "10.0.0.3": 6, "2.2.2.2": 6, "2.2.2.20": 6, "2.2.2.21": 6, "40.0.0.1": 6}, 42,
                 ["cluster1a", "cluster1a", "cluster1b", "cluster4", "cluster2a", "cluster2b", "cluster2b"]),
    "network2": ({"20.0.0.1": 6, "20.0.0.2": 6, "20.0.0.3": 6, "1.1.1.1": 12, "40.0.0.1": 6}, 36,
                 ["cluster2a", "cluster2b", "cluster2b", "cluster4", "cluster1a"]),
    "network3": ({"1.1.1.1": 12, "2.2.2.2": 6, "2.2.2.20": 6, "2.2.2.21": 6, "40.0.0.1": 6}, 36,
                 ["cluster4", "cluster1a", "cluster2a", "cluster2b", "cluster2b"]),
    "network4": ({"40.0.0.1": 6, "1.1.1.1": 12, "2.2.2.2": 6, "2.2.2.20": 6, "2.2.2.21": 6}, 36,
                 ["cluster4", "cluster1a", "cluster2a", "cluster2b", "cluster2b"]),
}
# noCrossNetwork's want (TestEndpointsByNetworkFilter_WithConfig, every mtlsCases entry with IsMtlsDisabled).
NO_CROSS_NETWORK = {"network1": {"10.0.0.1", "10.0.0.2", "10.0.0.3", "40.0.0.1"}, "network2": {"20.0.0.1", "20.0.0.2", "20.0.0.3", "40.0.0.1"},
                    "network3": {"40.0.0.1"}, "network4": {"40.0.0.1"}}


def pods(network: str, count: int, locality: str = "r/z", tls_mode: str = "istio", first: int = 1) -> list[Endpoint]:
    return [Endpoint(f"10.0.{network[-1]}.{first + i}", 8080, f"c{network[-1]}", network, locality, tls_mode) for i in range(count)]


N1, N2 = EastWestGateway("network1", "1.1.1.1", cluster="c1"), EastWestGateway("network2", "2.2.2.2", cluster="c2")


def cluster_of(endpoint) -> str:
    return endpoint.gateway.cluster if endpoint.gateway else next(e.cluster for e in ISTIO_SHARDS if e.address == endpoint.address)


def test_istios_sni_form_and_back():
    assert sni_name(9080, "reviews.default.svc.cluster.local") == "outbound_.9080_._.reviews.default.svc.cluster.local"
    assert sni_name(8080, "foo.example.org", "v1") == "outbound_.8080_.v1_.foo.example.org"
    assert parse_sni("outbound_.8080_.v1_.foo.example.org") == (8080, "v1", "foo.example.org")  # TestParseSubsetKey
    assert parse_sni("outbound_.80_._.test.local")[2] == "test.local"  # TestParseSubsetKeyHostname
    assert parse_sni(sni_name(15021, "a-b.c", "blue-2")) == (15021, "blue-2", "a-b.c")


@pytest.mark.parametrize("name", ["reviews.default", "inbound_.8080_.v1_.foo.example.org", "outbound|80|v1|example.com",
                                  "outbound_.x_._.reviews", "outbound_.9080_._.", "outbound_.80_._.a_.b"])
def test_names_that_are_not_istios_outbound_sni_are_refused(name):
    with pytest.raises(ValueError, match=r"is not Istio's outbound SNI.*expected outbound_.<port>_.<subset>_.<hostname>"):
        parse_sni(name)


def test_a_port_out_of_range_in_an_sni_is_named():
    with pytest.raises(ValueError, match="service port 70000 is not a number 1-65535; expected outbound_"):
        parse_sni("outbound_.70000_._.reviews.default")


@pytest.mark.parametrize("port, host, subset, message", [(0, "a.b", "", "port 0 is not a number 1-65535"), (True, "a.b", "", "port True"),
                                                         (80, "A_B", "", "hostname 'A_B' is not a DNS name"),
                                                         (80, "a.b", "v_1", "subset 'v_1' is not a DNS-1123 label")])
def test_bad_sni_parts_are_refused(port, host, subset, message):
    with pytest.raises(ValueError, match=message):
        sni_name(port, host, subset)


@pytest.mark.parametrize("network", sorted(NETWORK_FILTERED))
def test_istios_network_filter_table(network):
    """TestEndpointsByNetworkFilter: own-network pods as they are, network4 (no gateway) directly, network2's
    pods through their own cluster's gateways (two in cluster2b, so everything scales by lcm 6)."""
    weights, total, clusters = NETWORK_FILTERED[network]
    sent = split_horizon(ISTIO_SHARDS, network, ISTIO_GATEWAYS)
    assert {e.address: e.weight for e in sent} == weights
    assert sum(e.weight for e in sent) == total
    assert [cluster_of(e) for e in sent] == clusters


@pytest.mark.parametrize("network", sorted(NO_CROSS_NETWORK))
def test_without_mutual_tls_to_the_service_nothing_crosses_a_gateway(network):
    """TestEndpointsByNetworkFilter_WithConfig: a DestinationRule or PeerAuthentication disabling mTLS."""
    sent = split_horizon(ISTIO_SHARDS, network, ISTIO_GATEWAYS, mtls=False)
    assert {e.address for e in sent} == NO_CROSS_NETWORK[network]
    assert {e.weight for e in sent} == {6} and {e.tls_mode for e in sent} == {"disabled"}
    assert {e.tls_mode for e in split_horizon(ISTIO_SHARDS, network, ISTIO_GATEWAYS) if e.address != "10.0.0.3"} == {"istio"}


def test_a_proxy_without_a_network_goes_through_every_gateway_there_is():
    """TestEndpointsByNetworkFilter_ProxyWithEmptyNetwork, its cases 1-4."""
    gateways = [EastWestGateway("network-1", "1.1.1.1"), EastWestGateway("network-2", "2.2.2.2")]
    endpoints = [Endpoint("3.3.3.3", 8080, "Kubernetes", "network-without-gateway"), Endpoint("10.10.10.10", 8080, "Kubernetes", "network-1"),
                 Endpoint("", 8080, "Kubernetes", "network-2"), Endpoint("", 8080, "Kubernetes", "network-without-gateway")]
    assert [(e.address, e.weight) for e in split_horizon(endpoints, "", gateways)] == [("3.3.3.3", 1), ("1.1.1.1", 1), ("2.2.2.2", 1)]


def test_a_remote_endpoint_without_a_sidecar_is_dropped_and_a_local_one_kept():
    sent = split_horizon(pods("network2", 2) + pods("network2", 1, tls_mode="disabled", first=3), "network1", [N1, N2])
    assert [(e.address, e.port, e.weight, e.gateway) for e in sent] == [("2.2.2.2", 15443, 2, N2)]
    local_plain = split_horizon(pods("network1", 1, tls_mode="disabled"), "network1", [N1, N2])
    assert [(e.address, e.tls_mode) for e in local_plain] == [("10.0.1.1", "disabled")]


def test_without_any_gateway_multi_network_is_off_and_everything_is_sent():
    sent = split_horizon(pods("network1", 1) + pods("network2", 1, tls_mode="disabled"), "network1", [])
    assert [(e.address, e.weight, e.gateway) for e in sent] == [("10.0.1.1", 1, None), ("10.0.2.1", 1, None)]


def test_localities_come_sorted_and_each_keeps_its_own_gateway_entry():
    sent = split_horizon(pods("network2", 2, "r2/z2") + pods("network2", 1, "r1/z1", first=3) + pods("network1", 1, "r3/z3"), "network1", [N1, N2])
    assert [(e.locality, e.address, e.weight) for e in sent] == [("r1/z1", "2.2.2.2", 1), ("r2/z2", "2.2.2.2", 2), ("r3/z3", "10.0.1.1", 1)]


def test_an_endpoint_goes_through_its_own_clusters_gateways_if_its_network_has_some_there():
    """selectNetworkGateways: the gateways of the endpoint's network and cluster, else all of its network's.
    Scale: lcm of 2 gateways in network2 and 1 per (network2, cluster) = 2."""
    west, east = EastWestGateway("network2", "2.2.2.1", cluster="west"), EastWestGateway("network2", "2.2.2.9", cluster="east")
    endpoints = [Endpoint(f"10.0.2.{i}", 8080, "west", "network2") for i in range(3)] + [Endpoint("10.0.2.7", 8080, "east", "network2"),
                                                                                          Endpoint("10.0.2.8", 8080, "north", "network2")]
    assert [(e.address, e.weight) for e in split_horizon(endpoints, "network1", [west, east])] == [("2.2.2.1", 7), ("2.2.2.9", 3)]


def test_the_same_gateway_twice_counts_once():
    assert [e.weight for e in split_horizon(pods("network2", 3), "network1", [N2, N2])] == [3]


def test_the_labels_sent_let_failover_priority_prefer_the_own_network():
    """A gateway endpoint carries only its cluster and network (ep_filters.go AugmentLabels(nil, gw.Cluster,
    "", "", gw.Network)); failoverPriority [topology.istio.io/network] puts it after the own network's pods."""
    sent = split_horizon(pods("network1", 1, "r/z") + pods("network2", 2, "r/z"), "network1", [N1, N2])
    assert sent[1].labels == {"topology.istio.io/cluster": "c2", "topology.istio.io/network": "network2"}
    assert sent[0].labels["topology.kubernetes.io/zone"] == "z"
    proxy = pods("network1", 1, "r/z")[0].istio_labels
    assert failover_priority_by_labels(proxy, [e.labels for e in sent], ["topology.istio.io/network"]) == [0, 1]


def test_a_pods_own_network_label_wins_over_its_clusters():
    assert Endpoint("10.0.0.1", 80, "c1", "net-a", labels={"topology.istio.io/network": "net-b"}).istio_labels["topology.istio.io/network"] == "net-b"


@pytest.mark.parametrize("build, message", [
    (lambda: Endpoint("reviews", 80, "c1", "n1"), "endpoint address 'reviews' is not an IP address"),
    (lambda: Endpoint("10.0.0.1", 0, "c1", "n1"), "endpoint port 0 is not a number 1-65535"),
    (lambda: Endpoint("10.0.0.1", 80, "c1", "n1", tls_mode="strict"), "tls_mode 'strict' is not 'istio'"),
    (lambda: Endpoint("10.0.0.1", 80, "c1", "n1", locality="a//b"), "locality 'a//b' is not region"),
    (lambda: Endpoint("10.0.0.1", 80, "c1", "n1", labels={"app": 1}), "labels .* are not a mapping of strings"),
    (lambda: EastWestGateway("n1", "eastwest.example.com"), "gateway address 'eastwest.example.com' is not an IP address"),
    (lambda: EastWestGateway("", "1.1.1.1"), "gateway network '' must be the name"),
    (lambda: split_horizon([Endpoint("10.0.0.1", 80, "c1", "n1")], None, []), "proxy_network None must be a name"),
    (lambda: split_horizon(["10.0.0.1"], "n1", []), "takes a sequence of Endpoint"),
])
def test_bad_input_is_refused_with_what_is_accepted(build, message):
    with pytest.raises(ValueError, match=message):
        build()
