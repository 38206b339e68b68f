"""Chapter 04's ambient in-pod rules are rules the kernel accepts, and the kernel's own listing of
them compares as identical (TPROXY, CONNMARK, marks and all), while a changed rule does not."""

from __future__ import annotations

import pytest

from meshlab.deploy.inpod import inpod_ruleset
from meshlab.intercept.compare import rule_differences

pytestmark = pytest.mark.live


@pytest.mark.parametrize("redirect_dns", [True, False])
def test_the_kernel_holds_the_in_pod_rules_as_chapter_04_states_them(pod_namespace, redirect_dns):
    expected = inpod_ruleset(redirect_dns).restore_text(4)
    pod_namespace.run(["iptables-restore", "--noflush"], stdin=expected)
    saved = pod_namespace.run(["iptables-save"]).stdout
    assert "--on-ip 0.0.0.0" in saved and "-s 169.254.7.127/32" in saved  # the kernel's rewriting is there ...
    assert rule_differences(saved, expected) == []  # ... and normalised away
    assert rule_differences(saved.replace("--mark 0x539/0xfff", "--mark 0x538/0xfff", 1), expected) != []
