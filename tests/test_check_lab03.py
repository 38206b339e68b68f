"""Lab 03's checks: the traversal table and the counter predictions against the model, then against
the kernel in live labs; each wrong answer gets the usual mistake named."""

from __future__ import annotations

import pytest

from meshlab.check import CheckFailed, lab03
from meshlab.intercept.paths import DATAPATHS, traversals


def model_table():
    return {(d, same): {k: traversals(d, same)[k] for k in ("iptables", "stack")} for d in DATAPATHS for same in (True, False)}


def with_entry(datapath, same_node, **counts):
    table = model_table()
    table[(datapath, same_node)] = {**table[(datapath, same_node)], **counts}
    return lambda: table


def test_the_models_table_passes():
    lab03.check_traversals(model_table)


@pytest.mark.parametrize(
    ("table", "hint"),
    [
        (with_entry("merbridge-2022", False, iptables=0), "that is Merbridge's CNI mode"),
        (with_entry("merbridge-cni", False, iptables=2), "the CNI mode installs no iptables rules"),
        (with_entry("ebpf-meshlab", True, iptables=2), "keeps Istio's rules in the pods"),
        (with_entry("iptables", True, stack=3), "2 traversals per segment, 3 segments"),
        (with_entry("ebpf-meshlab", True, stack=0), "crosses the stack even on one node"),
        (with_entry("merbridge-2022", True, stack=2), r"merbridge-2022, one node: stack traversals 2, the model counts 0$"),
        (lambda: {("iptables", True): {"iptables": 4, "stack": 6}}, r"no entry for \('iptables', False\)"),
        (lambda: [4, 6], "must return a dict"),
    ],
)
def test_wrong_tables_name_the_mistake(table, hint):
    with pytest.raises(CheckFailed, match=hint):
        lab03.check_traversals(table)


def test_the_model_counts_four_nat_traversals_per_request_on_both_live_datapaths():
    for datapath, model_name in lab03.LIVE_DATAPATHS.items():
        for same_node in (True, False):
            counted = lab03.model_counters(datapath, same_node, 7)
            opened = counted["client OUTPUT"] + counted["server PREROUTING"] + counted["server OUTPUT"]
            assert opened == 7 * traversals(model_name, same_node)["iptables"] == 28
    assert lab03.model_counters("iptables", True, 7)["client REDIRECT 15001"] == 7
    assert lab03.model_counters("ebpf", False, 7)["client REDIRECT 15001"] == 0


def solution(datapath, same_node, n):
    ebpf = datapath == "ebpf"
    return {"client OUTPUT": 2 * n, "client REDIRECT 15001": 0 if ebpf else n, "server PREROUTING": n, "server REDIRECT 15006": n,
            "server OUTPUT": n, "connect_rewrites": n if ebpf else 0, "redirected_messages": 4 * n if ebpf else 0, "passed_messages": 2 * n if ebpf else 0}


def changed(name, value, datapath=None, same_node=None):
    """The solution with one counter changed (for one datapath and placement, or for all)."""
    def predict(d, s, n):
        counts = solution(d, s, n)
        if datapath in (None, d) and same_node in (None, s):
            counts[name] = value(n)
        return counts
    return predict


def test_the_solutions_counters_pass_on_the_model():
    lab03.check_counters(solution)


@pytest.mark.parametrize(
    ("predict", "hint"),
    [
        (changed("client OUTPUT", lambda n: n), "sidecar A's own connection to pod B starts in pod A too"),
        (changed("server PREROUTING", lambda n: 2 * n), "its trip over lo does not consult nat PREROUTING again"),
        (changed("client REDIRECT 15001", lambda n: n, "ebpf"), "connect4 rewrote the app's destination before the SYN existed"),
        (changed("server REDIRECT 15006", lambda n: 0, "ebpf", True), "leaves the sidecar-to-sidecar connection alone on one node"),
        (changed("redirected_messages", lambda n: 6 * n, "ebpf", True), "leaves the sidecar-to-sidecar connection alone on one node"),
        (changed("redirected_messages", lambda n: 2 * n, "ebpf", False), "a request and a reply: two sendmsg calls"),
        (changed("redirected_messages", lambda n: 2 * n, "ebpf", True), "a request and a reply: two sendmsg calls"),
        (changed("connect_rewrites", lambda n: n, "iptables"), "loads no eBPF programs"),
        (lambda d, s, n: {"client OUTPUT": 2 * n}, "must return a dict with the keys"),
    ],
)
def test_wrong_predictions_name_the_mistake(predict, hint):
    with pytest.raises(CheckFailed, match=hint):
        lab03.check_counters(predict)


def test_an_unknown_live_datapath_is_named():
    with pytest.raises(ValueError, match="'merbridge-2022' is not one of the live lab's: iptables, ebpf"):
        lab03.check_live(solution, ("merbridge-2022",))


def test_counters_are_read_from_iptables_save_output():
    saved = ("*nat\n[3:180] -A OUTPUT -j ISTIO_OUTPUT\n[0:0] -A ISTIO_OUTPUT -o lo -j RETURN\n"
             "[2:120] -A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001\nCOMMIT\n")
    assert lab03._packets(saved, "OUTPUT", "ISTIO_OUTPUT") == 3
    assert lab03._packets(saved, "ISTIO_REDIRECT", "REDIRECT") == 2
    assert lab03._packets(saved, "ISTIO_OUTPUT", "ISTIO_REDIRECT") == 0


@pytest.mark.live
@pytest.mark.ebpf
def test_the_kernel_counts_what_the_solution_predicts():
    rows = lab03.check_live(solution, n=6)
    assert [(row["datapath"], row["same_node"]) for row in rows] == [("iptables", True), ("iptables", False), ("ebpf", True), ("ebpf", False)]
    assert rows[0]["counted"]["client REDIRECT 15001"] == 6 and rows[3]["counted"]["redirected_messages"] == 24


@pytest.mark.live
def test_a_prediction_the_model_accepts_can_still_differ_from_the_kernel(monkeypatch):
    """If the model were wrong (here: claiming one fewer redirect), the kernel's count must catch it."""
    real = lab03.model_counters

    def wrong_model(datapath, same_node, n):
        return {**real(datapath, same_node, n), "server REDIRECT 15006": n - 1}

    monkeypatch.setattr(lab03, "model_counters", wrong_model)
    with pytest.raises(CheckFailed, match=r"iptables, one node, 5 requests: you predicted server REDIRECT 15006 = 4, the kernel counted 5"):
        lab03.check_live(lambda d, s, n: wrong_model(d, s, n), ("iptables",), n=5)
