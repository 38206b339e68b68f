"""Live-lab tests leave nothing behind: checked once all of them have run."""

from __future__ import annotations

import pytest

from live.host import TEST_PREFIX, host_ruleset, leftovers
from meshlab.lab.netns import MACHINE


@pytest.fixture(scope="session", autouse=True)
def nothing_left_behind():
    before, rules = leftovers(), host_ruleset()
    yield
    after = [item for item in leftovers() if item not in before]
    assert not after, f"the live tests left these behind: {after}"
    assert host_ruleset() == rules, "a test changed the host's own iptables/nftables rules"


@pytest.fixture
def pod_namespace():
    """One bare network namespace (lo up) to load rules into, removed afterwards."""
    namespace = MACHINE.create(f"{TEST_PREFIX}rules-pod")
    try:
        yield namespace
    finally:
        MACHINE.delete(namespace.name)
