"""meshlab's istio-iptables against Istio's own (``pilot-agent istio-iptables --dry-run``, built from
the pinned istio.io/istio module): the same flags and environment to both, the same text out, for
Istio's 27 test configurations and for configurations drawn over every flag meshlab supports; and the
real program applied for real in a pod's namespace leaves there the rules meshlab renders.

Needs root (the real program reads the pod's address and resolv.conf, so it runs in scratch network
namespaces) and the upstream stage (the built pilot-agent)."""

from __future__ import annotations

import difflib
import json
import os
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from injection_cases import ANNOTATIONS, INJECTED
from upstream_programs import program_path

from meshlab.intercept import CaptureConfig, ConfigError, build_rules
from meshlab.intercept.compare import compare
from meshlab.upstream.iptables import IstioIptables, meshlab_rendering

pytestmark = [pytest.mark.live, pytest.mark.upstream,
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root: scratch namespaces with ip netns and their /etc/netns/<name>/resolv.conf")]

CASES = json.loads((Path(__file__).parent.parent / "data" / "istio-iptables" / "cases.json").read_text())


@pytest.fixture(scope="module")
def real():
    with IstioIptables(program_path("pilot-agent"), "mlup") as real:
        yield real


def same_text(real: IstioIptables, config: CaptureConfig) -> None:
    done = real.dry_run(config)
    assert done.returncode == 0, f"pilot-agent refused {config}: {done.log[-600:]}"
    ours = meshlab_rendering(config)
    assert ours == done.text, "".join(difflib.unified_diff(done.text.splitlines(True), ours.splitlines(True), "pilot-agent", "meshlab"))


@pytest.mark.parametrize("name", sorted(CASES["cases"]))
def test_istios_configurations_give_the_real_programs_text(real, name):
    same_text(real, CaptureConfig.from_istio_fields({**CASES["defaults"], **CASES["cases"][name]}))


@pytest.mark.parametrize(("annotations", "changes"), ANNOTATIONS, ids=[next(iter(a), "none") for a, _ in ANNOTATIONS])
def test_what_injected_pods_ask_for_gives_the_real_programs_text(real, annotations, changes):
    same_text(real, replace(INJECTED, **changes))


def test_a_different_rendering_would_be_caught(real):
    config = CaptureConfig(inbound_ports_include="*", outbound_ip_ranges_include="*")
    assert meshlab_rendering(config).replace("15001", "15002") != real.dry_run(config).text


ports = st.integers(1, 65535).map(str)
port_lists = st.lists(ports, max_size=3).map(",".join)
ids = st.lists(st.integers(0, 65535).map(str), min_size=1, max_size=3).map(",".join)
v4_cidrs = st.builds(lambda a, b, n: f"{a}.{b}.0.0/{n}", st.integers(1, 223), st.integers(0, 255), st.integers(8, 32))
v6_cidrs = st.builds(lambda a, n: f"2001:db8:{a:x}::/{n}", st.integers(0, 0xffff), st.integers(32, 128))
cidr_lists = st.lists(st.one_of(v4_cidrs, v6_cidrs), max_size=3).map(",".join)
interfaces = st.lists(st.from_regex(r"[a-z][a-z0-9]{0,8}", fullmatch=True), max_size=2, unique=True).map(",".join)
groups = st.lists(st.one_of(st.integers(0, 65535).map(str), st.sampled_from(["java", "ftp", "daemon"])), min_size=1, max_size=2).map(",".join)
v4_servers = st.lists(st.builds(lambda a, b: f"10.{a}.{b}.10", st.integers(0, 255), st.integers(0, 255)), max_size=2)
v6_servers = st.lists(st.builds(lambda a: f"2001:db8::{a:x}", st.integers(1, 0xffff)), max_size=2)


@st.composite
def configurations(draw) -> CaptureConfig:
    include_groups = draw(st.booleans())
    fields = {
        "proxy_port": draw(ports), "inbound_capture_port": draw(ports), "inbound_tunnel_port": draw(ports),
        "proxy_uid": draw(ids), "proxy_gid": draw(ids),
        "inbound_tproxy_mark": draw(st.integers(1, 65535).map(str)), "inbound_tproxy_route_table": draw(st.integers(1, 250).map(str)),
        "owner_groups_include": draw(groups) if include_groups else "*",
        "owner_groups_exclude": "" if include_groups else draw(st.one_of(st.just(""), groups)),
        "host_ipv4_loopback_cidr": f"127.0.0.1/{draw(st.integers(8, 32))}",
        "inbound_interception_mode": draw(st.sampled_from(["", "REDIRECT", "TPROXY"])),
        "inbound_ports_include": draw(st.one_of(st.just(""), st.just("*"), port_lists)),
        "inbound_ports_exclude": draw(port_lists),
        "outbound_ip_ranges_include": draw(st.one_of(st.just(""), st.just("*"), cidr_lists)),
        "outbound_ip_ranges_exclude": draw(cidr_lists),
        "outbound_ports_include": draw(port_lists), "outbound_ports_exclude": draw(port_lists),
        "reroute_virtual_interfaces": draw(interfaces), "exclude_interfaces": draw(interfaces),
        "enable_ipv6": draw(st.booleans()), "redirect_dns": draw(st.booleans()), "drop_invalid": draw(st.booleans()),
        "dns_servers_v4": tuple(draw(v4_servers)), "dns_servers_v6": tuple(draw(v6_servers)),
    }
    try:
        return CaptureConfig(**fields)
    except ConfigError:
        assume(False)


@settings(max_examples=500, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(config=configurations())
def test_drawn_configurations_give_the_real_programs_text(real, config):
    same_text(real, config)


@pytest.mark.parametrize("name", sorted(CASES["cases"]))
def test_the_real_program_applied_in_a_pod_leaves_meshlabs_rules_in_the_kernel(real, name):
    config = CaptureConfig.from_istio_fields({**CASES["defaults"], **CASES["cases"][name], "DryRun": False})
    for theirs, ours in {"java": "daemon", "ftp": "bin"}.items():  # iptables resolves group names on this machine
        config = replace(config, owner_groups_include=config.owner_groups_include.replace(theirs, ours),
                         owner_groups_exclude=config.owner_groups_exclude.replace(theirs, ours))
    applied = real.apply(config)
    assert applied.returncode == 0, applied.log[-800:]
    rules = build_rules(config)
    for family in (4, 6) if config.enable_ipv6 else (4,):
        assert "-A ISTIO_" in applied.saved[family]
        assert compare(rules.restore_text(family), applied.saved[family]) == [], f"IPv{family}"
