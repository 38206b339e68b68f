"""Chapter 04's ambient in-pod rules against Istio's own: every golden of istio-cni's rule builder
(cni/pkg/iptables/testdata, read at test time from the pinned istio.io/istio module in Go's module
cache, never copied here), byte for byte, for the configurations Istio's tests use."""

from __future__ import annotations

import pytest

from meshlab.deploy import inpod
from meshlab.upstream import source
from meshlab.upstream.versions import ISTIO

#: Istio's cni/pkg/iptables tests (GetCommonInPodTestCases): golden name -> meshlab's arguments.
#: constructTestConfig sets the IPv6 probe address below; RedirectDNS is per case.
V6_PROBE = "e9ac:1e77:90ca:399f:4d6d:ece2:2f9b:3164"
CASES = {
    "default": {"redirect_dns": True},
    "ingress": {"redirect_dns": False, "ingress_mode": True},
    "virtual_interfaces": {"redirect_dns": False, "virtual_interfaces": ("fake1s0f0", "fake1s0f1")},
    "ingress_and_virtual_interfaces": {"redirect_dns": False, "ingress_mode": True, "virtual_interfaces": ("fake1s0f0", "fake1s0f1")},
    "dns_pod_enabled_and_off_globally": {"redirect_dns": True},  # the pod's annotation turns DNS capture on
    "dns_pod_disabled_and_on_globally": {"redirect_dns": False},  # and off
}


def golden(name: str) -> str:
    folder = source.cached_source(ISTIO)
    assert folder is not None, f"{ISTIO.spec} is not in Go's module cache: make upstream"
    return (folder / "cni" / "pkg" / "iptables" / "testdata" / f"{name}.golden").read_text()


def as_golden(*restore_texts: str) -> str:
    """What Istio's DependenciesStub records: the state checks, then each restore input."""
    return "\n".join(["iptables-save", "ip6tables-save", *(text.rstrip("\n") for text in restore_texts)])


@pytest.mark.upstream
@pytest.mark.parametrize("ipv6", [False, True], ids=["ipv4", "ipv6"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_the_in_pod_rules_are_istio_cnis_byte_for_byte(case, ipv6):
    rules = inpod.inpod_ruleset(**CASES[case], ipv6=ipv6, probe_snat=(inpod.HOST_PROBE_SNAT, V6_PROBE))
    texts = [rules.restore_text(4)] + ([rules.restore_text(6)] if ipv6 else [])
    assert as_golden(*texts) == golden(case + ("_ipv6" if ipv6 else ""))


@pytest.mark.upstream
@pytest.mark.parametrize("ipv6", [False, True], ids=["ipv4", "ipv6"])
def test_the_nodes_probe_rule_is_istio_cnis(ipv6):
    rules = inpod.host_probe_rules(ipv6=ipv6)
    texts = [rules.restore_text(4)] + ([rules.restore_text(6)] if ipv6 else [])
    assert as_golden(*texts) == golden("hostprobe" + ("_ipv6" if ipv6 else ""))


def test_every_capturing_rule_spares_ztunnels_own_traffic():
    for rule in inpod.inpod_rules(redirect_dns=True, virtual_interfaces=("vm0",)):
        target = rule.params[rule.params.index("-j") + 1]
        if target == "REDIRECT" and "-i" not in rule.params:
            assert ("!", "--mark", inpod.ZTUNNEL_MARK) == rule.params[rule.params.index("--mark") - 1: rule.params.index("--mark") + 2], rule
        assert rule.why


def test_a_family_other_than_4_or_6_is_refused():
    with pytest.raises(ValueError, match="family must be 4 or 6"):
        inpod.inpod_rules(family=5)
