"""Envoy's /config_dump made from xDS resources, and istioctl's tables read from a dump (meshlab.envoy.configdump).

The tables are also checked against istioctl's own golden: a real Envoy's dump and what
``PrintEndpointsSummary`` prints for it (istioctl/pkg/writer/envoy/configdump/testdata/endpoint, read
from Go's module cache, never copied), and istioctl's describeRouteDomains table test
(route_test.go TestDescribeRouteDomains). The agreement with the real istioctl binary is
tests/test_upstream_proxy_config.py.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from meshlab.envoy import configdump
from meshlab.upstream import source
from meshlab.upstream.versions import ISTIO
from meshlab.xds import inbound, outbound
from meshlab.xds.resources import CLUSTER, ENDPOINT, LISTENER, ROUTE, packed

ADMIN = "type.googleapis.com/envoy.admin.v3."
SERVICE = outbound.ClusterIPService("web.default.svc.cluster.local", "default", "10.96.0.10", 80,
                                    (outbound.EdsEndpoint("10.1.0.5", 8080, locality="eu/a", tls_mode="istio"),))
PORTS = [inbound.InboundPort(8080, "HTTP", "web.default.svc.cluster.local")]


def pod_resources() -> dict:
    built = {}
    for type_url in (LISTENER, CLUSTER, ENDPOINT, ROUTE):
        found = dict(outbound.build(type_url, SERVICE))
        found.update(outbound.build_own(type_url))
        found.update(inbound.build_inbound(type_url, PORTS))
        built[type_url] = found
    return built


def test_the_dump_holds_envoys_config_types_in_envoys_order_and_endpoints_only_when_asked():
    without = configdump.config_dump(pod_resources())
    assert [c["@type"] for c in without["configs"]] == [ADMIN + "ClustersConfigDump", ADMIN + "ListenersConfigDump", ADMIN + "RoutesConfigDump"]
    with_eds = configdump.config_dump(pod_resources(), include_eds=True)
    assert [c["@type"].removeprefix(ADMIN) for c in with_eds["configs"]] == ["ClustersConfigDump", "EndpointsConfigDump", "ListenersConfigDump", "RoutesConfigDump"]


def test_each_resource_is_dynamic_and_active_with_its_version_and_arrival_time():
    dump = configdump.config_dump(pod_resources(), version_info="2026-01-01T00:00:00Z/7", last_updated=datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc))
    clusters = dump["configs"][0]["dynamic_active_clusters"]
    assert {c["cluster"]["name"] for c in clusters} == {"outbound|80||web.default.svc.cluster.local", "PassthroughCluster", "inbound|8080||",
                                                          "InboundPassthroughCluster"}
    assert {(c["version_info"], c["last_updated"]) for c in clusters} == {("2026-01-01T00:00:00Z/7", "2026-03-01T12:00:00Z")}
    listeners = dump["configs"][1]["dynamic_listeners"]
    assert sorted(item["name"] for item in listeners) == ["10.96.0.10_80", "virtualInbound", "virtualOutbound"]
    assert all(item["active_state"]["listener"]["@type"].endswith("envoy.config.listener.v3.Listener") for item in listeners)
    assert dump["configs"][2] == {"@type": ADMIN + "RoutesConfigDump"}  # the inbound route is inline in its listener, not RDS


@pytest.mark.parametrize("resources, message", [
    ({"type.googleapis.com/envoy.config.core.v3.Node": {}}, "accepted are"),
    ({CLUSTER: {"x": packed(outbound.virtual_outbound())}}, "resource 'x' under .*Cluster holds .*Listener"),
    ({LISTENER: {"x": "not an Any"}}, "holds str"),
], ids=["unknown type", "wrong type", "not an Any"])
def test_bad_resources_are_named(resources, message):
    with pytest.raises(ValueError, match=message):
        configdump.config_dump(resources)


def test_a_table_of_a_type_the_dump_lacks_says_so():
    with pytest.raises(ValueError, match="no EndpointsConfigDump .*include_eds"):
        configdump.eds_table(configdump.config_dump(pod_resources()))


def test_tabwriter_pads_each_column_block_to_its_widest_cell():
    # Go's text/tabwriter: a row with fewer cells ends the block of a column; a row's last cell is not padded
    rows = [["a", "b", "c"], ["aaaa", "x"], ["z"], ["q", "r"]]
    assert configdump.tabwriter(rows) == "a    b c\naaaa x\nz\nq r\n"
    assert configdump.tabwriter([["ab", "c"], ["a", "cd"]], padding=5) == "ab     c\na      cd\n"


@pytest.mark.parametrize("domains, expected", [
    ([], ""),
    (["example.com"], "example.com"),
    (["example.com", "example.com:8080"], "example.com"),
    (["example.com", "example.com:8080", "1.2.3.4", "1.2.3.4:8080"], "example.com, 1.2.3.4"),
    (["example.com", "example.com:8080", "[fd00:10:96::7fc7]", "[fd00:10:96::7fc7]:8080"], "example.com, [fd00:10:96::7fc7]"),
    (["example.com", "example.com:8080", "www.example.com", "www.example.com:8080", "[fd00:10:96::7fc7]", "[fd00:10:96::7fc7]:8080"],
     "example.com, www.example.com + 1 more..."),
    (["web.default", "web.default.svc", "web.default.svc.cluster.local"], "web.default"),
], ids=["no domain", "one domain", "with port", "ipv4", "ipv6", "more than two", "long forms of a listed short form dropped"])
def test_route_domains_are_shortened_as_istioctl_does(domains, expected):
    assert configdump._route_domains(domains) == expected


def test_the_inbound_listener_rows_read_as_istioctl_describes_them():
    table = configdump.listeners_table(configdump.config_dump(pod_resources())).splitlines()
    assert table[0].split() == ["ADDRESSES", "PORT", "MATCH", "DESTINATION"]
    inbound_rows = [line for line in table if " 15006 " in line]
    assert any(line.endswith("Cluster: inbound|8080||") and "Trans: raw_buffer; Addr: *:8080" in line for line in inbound_rows)
    assert any("Addr: *:15006" in line and line.endswith("Non-HTTP/Non-TCP") for line in inbound_rows)  # the blackhole is not a destination
    assert any("10.96.0.10" in line and line.endswith("Cluster: outbound|80||web.default.svc.cluster.local") for line in table)


def test_clusters_are_listed_by_hostname_with_their_direction():
    rows = [line.split() for line in configdump.clusters_table(configdump.config_dump(pod_resources())).splitlines()]
    assert rows[0] == ["SERVICE", "FQDN", "PORT", "SUBSET", "DIRECTION", "TYPE", "DESTINATION", "RULE"]
    assert rows[1:] == [["8080", "-", "inbound", "ORIGINAL_DST"], ["InboundPassthroughCluster", "-", "-", "-", "ORIGINAL_DST"],
                        ["PassthroughCluster", "-", "-", "-", "ORIGINAL_DST"], ["web.default.svc.cluster.local", "80", "-", "outbound", "EDS"]]


def _istio_golden(*parts: str):
    folder = source.cached_source(ISTIO)
    if folder is None:
        pytest.skip(f"{ISTIO.spec} is not in Go's module cache (fix: make upstream)")
    return folder.joinpath("istioctl", "pkg", "writer", "envoy", "configdump", "testdata", *parts)


def test_a_real_envoys_endpoints_print_as_istioctls_golden():
    dump = json.loads(_istio_golden("endpoint", "configdump.json").read_text())
    assert configdump.eds_table(dump) == _istio_golden("endpoint", "emptyfilter_output.txt").read_text()


def test_a_typed_config_of_a_type_unknown_here_does_not_stop_the_tables():
    dump = configdump.config_dump(pod_resources())
    listener = next(item for item in dump["configs"][1]["dynamic_listeners"] if item["name"] == "virtualOutbound")["active_state"]["listener"]
    listener["listener_filters"] = [{"name": "istio.custom", "typed_config": {"@type": "type.googleapis.com/istio.example.v1.Unknown", "field": 1}}]
    assert "PassthroughCluster" in configdump.listeners_table(dump)
