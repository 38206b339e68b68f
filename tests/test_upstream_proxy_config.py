"""The real ``istioctl proxy-config`` (Istio 1.30 line, built by the upstream stage) on a config dump that
meshlab makes from what its control plane sends a lab pod: the tables istioctl prints are the ones
meshlab.envoy.configdump renders, character for character, and istioctl reads every resource in the
dump (it unpacks each Any to its Go type, so a malformed resource would make it fail)."""

from __future__ import annotations

import json
import subprocess

import pytest
from upstream_programs import program_path

from meshlab.envoy import configdump
from meshlab.upstream import source
from meshlab.upstream.versions import ISTIO
from meshlab.xds import inbound, outbound, resources
from meshlab.xds.resources import CLUSTER, ENDPOINT, LISTENER, ROUTE

pytestmark = pytest.mark.upstream

SERVICES = [
    outbound.ClusterIPService("web.default.svc.cluster.local", "default", "10.96.0.10", 80,
                              (outbound.EdsEndpoint("10.1.0.5", 8080, locality="eu-west/a/rack1", tls_mode="istio"), "10.1.0.6:8080")),
    outbound.ClusterIPService("db.shop.svc.cluster.local", "shop", "10.96.0.11", 5432, ("10.1.0.7:5432",)),
]
PORTS = [inbound.InboundPort(8080, "HTTP", "web.default.svc.cluster.local"), inbound.InboundPort(5432, "TCP")]
# A third port makes virtualInbound 16 chains: past 12, Go's sort.Slice is no longer an insertion sort
# and orders chains with one destination its own way (pdqsort), which meshlab does not copy.
MORE_PORTS = PORTS + [inbound.InboundPort(9090, "auto")]
# Proxyless gRPC's resources (meshlab.xds.resources): the RDS route configurations the dump's routes table reads.
PROXYLESS = resources.MeshConfig({"greeter": resources.Service("greeter", {"greeter-v1": 90, "greeter-v2": 10}, {"greeter-v1": ["10.1.0.8:50051"], "greeter-v2": ["10.1.0.9:50051"]})})


def _pod_resources(ports: list[inbound.InboundPort] = PORTS) -> dict:
    built: dict = {}
    for type_url in (LISTENER, CLUSTER, ENDPOINT, ROUTE):
        found: dict = {}
        for service in SERVICES:
            found.update(outbound.build(type_url, service))
        found.update(outbound.build_own(type_url))
        found.update(inbound.build_inbound(type_url, ports, inbound.WasmPhases.of([("default.hello", "AUTHN")])))
        if type_url in (ROUTE, CLUSTER, ENDPOINT):
            found.update(resources.build(type_url, PROXYLESS))
        built[type_url] = found
    return built


@pytest.fixture(scope="module")
def dump_file(tmp_path_factory):
    dump = configdump.config_dump(_pod_resources(), include_eds=True)
    path = tmp_path_factory.mktemp("dump") / "config_dump.json"
    path.write_text(json.dumps(dump))
    return dump, path


def _istioctl(table: str, path) -> str:
    done = subprocess.run([program_path("istioctl"), "proxy-config", table, "--file", str(path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize("table, render", [
    ("listeners", configdump.listeners_table),
    ("clusters", configdump.clusters_table),
    ("routes", configdump.routes_table),
    ("eds", configdump.eds_table),
], ids=["listeners table", "clusters table", "routes table", "eds table"])
def test_istioctl_prints_the_table_meshlab_renders(dump_file, table, render):
    dump, path = dump_file
    printed = _istioctl(table, path)
    assert printed == render(dump)
    assert len(printed.splitlines()) > 1  # a header and rows: the comparison is not of two empty tables


def test_past_twelve_chains_the_listener_rows_agree_as_a_set_and_in_layout(tmp_path):
    dump = configdump.config_dump(_pod_resources(MORE_PORTS))
    path = tmp_path / "dump.json"
    path.write_text(json.dumps(dump))
    printed, rendered = _istioctl("listeners", path), configdump.listeners_table(dump)
    assert printed.splitlines()[0] == rendered.splitlines()[0]
    assert sorted(printed.splitlines()) == sorted(rendered.splitlines())
    rows = [line for line in printed.splitlines() if " 15006 " in line]
    assert len(rows) == len(inbound.virtual_inbound(MORE_PORTS).filter_chains)
    assert "Trans: tls; App: TCP TLS; Addr: *:9090" in printed  # istio-peer-exchange,istio is istioctl's "TCP TLS"
    assert "Trans: raw_buffer; App: HTTP; Addr: *:9090" in printed  # http/1.0,http/1.1,h2c is istioctl's "HTTP"
    assert "Cluster: inbound|8080||" in printed  # the inline route sends all to the inbound cluster


def test_endpoints_need_include_eds(tmp_path):
    path = tmp_path / "dump.json"
    path.write_text(json.dumps(configdump.config_dump(_pod_resources())))
    done = subprocess.run([program_path("istioctl"), "proxy-config", "eds", "--file", str(path)], capture_output=True, text=True, timeout=120)
    with pytest.raises(ValueError, match="include_eds"):
        configdump.eds_table(json.loads(path.read_text()))
    assert "web.default.svc.cluster.local" not in done.stdout


@pytest.mark.parametrize("table, render", [
    ("listeners", configdump.listeners_table),
    ("clusters", configdump.clusters_table),
    ("routes", configdump.routes_table),
], ids=["listeners table", "clusters table", "routes table"])
def test_a_real_envoys_dump_reads_as_istioctl_reads_it(table, render):
    """Istio's own test dump of a real Envoy (istioctl/pkg/proxyconfig/testdata, snake_case, with
    types meshlab never builds), read from Go's module cache."""
    folder = source.cached_source(ISTIO)
    if folder is None:
        pytest.skip(f"{ISTIO.spec} is not in Go's module cache (fix: make upstream)")
    path = folder / "istioctl" / "pkg" / "proxyconfig" / "testdata" / "config_dump.json"
    printed = _istioctl(table, path)
    assert printed == render(json.loads(path.read_text()))
    assert len(printed.splitlines()) > 1
