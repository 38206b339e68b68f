"""The traversal counts of the request path (chapter 03's model)."""

from __future__ import annotations

import pytest

from meshlab.intercept.paths import request_segments, traversals


@pytest.mark.parametrize("same_node", [True, False])
def test_iptables_crosses_the_stack_six_times_and_iptables_four(same_node):
    assert traversals("iptables", same_node) == {"stack": 6, "iptables": 4, "stack_avoided": 0}


@pytest.mark.parametrize("mode", ["merbridge-2022", "merbridge-cni"])
def test_merbridge_skips_the_stack_and_iptables_on_one_node(mode):
    assert traversals(mode, same_node=True) == {"stack": 0, "iptables": 0, "stack_avoided": 6}


def test_merbridge_2022_across_nodes_avoids_the_two_loopback_traversals_of_four():
    assert traversals("merbridge-2022", same_node=False) == {"stack": 2, "iptables": 2, "stack_avoided": 4}
    middle = request_segments("merbridge-2022", same_node=False)[1]
    assert (middle.iptables, middle.redirected) == (2, False), "sidecar A's OUTPUT and pod B's PREROUTING remain"


def test_merbridge_cni_mode_leaves_no_iptables_traversal_across_nodes_but_the_wire():
    assert traversals("merbridge-cni", same_node=False) == {"stack": 2, "iptables": 0, "stack_avoided": 4}


def test_the_two_avoidable_iptables_traversals_are_the_loopback_segments():
    loopback = [s for s in request_segments("iptables", same_node=False) if "app" in s.name]
    assert sum(s.iptables for s in loopback) == 2 and all(s.local for s in loopback)


def test_this_labs_ebpf_datapath_keeps_istios_rules_for_inbound():
    assert traversals("ebpf-meshlab", same_node=True) == {"stack": 2, "iptables": 4, "stack_avoided": 4}


def test_unknown_datapath_is_named():
    with pytest.raises(ValueError, match="unknown datapath 'xdp'"):
        traversals("xdp", True)
