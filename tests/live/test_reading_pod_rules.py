"""Reading a pod's rules whichever iptables backend wrote them: the shell line the kind stage runs on a
node (and in a debug container) finds Istio's chains in a real network namespace, nft or legacy."""

from __future__ import annotations

import subprocess

import pytest

from meshlab.intercept import build_rules
from meshlab.intercept.compare import compare
from meshlab.kind.observe import save_any_backend
from meshlab.lab.spec import DEFAULT_CAPTURE

pytestmark = pytest.mark.live


@pytest.mark.parametrize("restore", ["iptables-nft-restore", "iptables-legacy-restore"])
def test_the_rules_are_found_in_either_backend(pod_namespace, restore):
    expected = build_rules(DEFAULT_CAPTURE).restore_text(4)
    pod_namespace.run([restore, "--noflush"], stdin=expected)
    try:
        done = subprocess.run(save_any_backend("ip", "netns", "exec", pod_namespace.name), capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, done.stderr
        assert compare(expected, done.stdout) == []
    finally:
        pod_namespace.run([restore.replace("-restore", ""), "-t", "nat", "-F"], check=False)


def test_a_namespace_without_istio_rules_is_said_so(pod_namespace):
    done = subprocess.run(save_any_backend("ip", "netns", "exec", pod_namespace.name), capture_output=True, text=True, timeout=30)
    assert done.returncode == 3
    assert "no iptables backend shows ISTIO_ chains" in done.stderr
