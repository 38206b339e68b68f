"""Chapter 04's ambient in-pod rules are rules the kernel accepts, and the kernel's own listing of
them compares as identical (CONNMARK, marks, CT zones and all), while a changed rule does not."""

from __future__ import annotations

import pytest

from meshlab.deploy.inpod import inpod_ruleset
from meshlab.intercept.compare import compare

pytestmark = pytest.mark.live


@pytest.mark.parametrize("redirect_dns", [True, False])
def test_the_kernel_holds_the_in_pod_rules_as_chapter_04_states_them(pod_namespace, redirect_dns):
    expected = inpod_ruleset(redirect_dns).restore_text(4)
    pod_namespace.run(["iptables-restore", "--noflush"], stdin=expected)
    saved = pod_namespace.run(["iptables-save"]).stdout
    assert "-s 169.254.7.127/32" in saved and ("--to-ports 15053" in saved) == redirect_dns  # the kernel's rewriting (/32) ...
    assert compare(expected, saved) == []  # ... undone by the comparison
    assert compare(expected, saved.replace("--mark 0x539/0xfff", "--mark 0x538/0xfff", 1)) != []
