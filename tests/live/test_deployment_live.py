"""Sidecars vs one shared proxy per node, live on two nodes: proxies' memory measured, one proxy
killed, and the pods that lose traffic are exactly those the deployment model predicts."""

from __future__ import annotations

import itertools

import pytest

from meshlab.deploy import proxies_for, topology_from_json
from meshlab.lab import Lab, LabError

pytestmark = pytest.mark.live


def topology_of(lab: Lab):
    """The lab as meshlab.deploy sees it: its nodes and pods (one namespace and account per pod)."""
    return topology_from_json({
        "nodes": [{"name": f"node{n}"} for n in range(lab.node_count)],
        "pods": [{"name": p.name, "node": f"node{p.node}", "namespace": "default", "service_account": p.name, "rps": 1} for p in lab.pods.values()],
    })


def reachable(lab: Lab) -> dict[tuple[str, str], bool]:
    result = {}
    for source, target in itertools.permutations(lab.pods, 2):
        try:
            lab.request(source, lab.pod(target).ip, 8080)
            result[(source, target)] = True
        except (OSError, LabError):
            result[(source, target)] = False
    return result


@pytest.mark.parametrize(("mode", "model", "killed"), [("sidecar", "sidecar", "pod0"), ("per-node", "per-node", "node0")])
def test_killing_one_proxy_cuts_off_the_pods_the_model_predicts(mode, model, killed):
    with Lab("mld").up(6, nodes=2, proxy_mode=mode) as lab:
        assert all(reachable(lab).values()), "every pod reaches every other pod through the proxies"
        hops = sum(len(lab.hops(proxy)) for proxy in lab.proxy_names())
        assert hops >= 30, "requests went through the proxies"
        memory = lab.proxy_memory()
        assert len(memory) == (6 if mode == "sidecar" else 2) and all(m["rss_kb"] > 1000 for m in memory.values())
        predicted = next(p for p in proxies_for(model, topology_of(lab)) if p.name.endswith(f"/{killed}")).pods
        lab.kill_proxy(killed)
        after = reachable(lab)
    cut_off = {pod for (source, target), ok in after.items() if not ok for pod in (source, target)} & predicted
    failing = {pair for pair, ok in after.items() if not ok}
    assert cut_off == set(predicted)
    assert failing == {pair for pair in after if set(pair) & predicted}, "exactly the pairs touching the cut-off pods fail"


def test_shared_proxies_use_less_memory_than_sidecars():
    totals = {}
    for mode in ("sidecar", "per-node"):
        with Lab("mld").up(6, nodes=2, proxy_mode=mode) as lab:
            totals[mode] = sum(m["rss_kb"] for m in lab.proxy_memory().values())
    assert totals["per-node"] * 2 < totals["sidecar"], totals
