"""Lazy loading on the live lab, as Slime does it: sidecars configured over ADS by meshlab's control
plane; a fresh workload's first call to each of three services goes through the global sidecar and
succeeds; the controller learns from the global sidecar's log and writes the workload's Sidecar, which
the control plane pushes to that proxy alone; the next calls go direct; what that proxy was sent
shrinks (exact counts from the control plane's records). Latencies are measured and printed, never
asserted. Cleanup leaves nothing behind, also after kill -9."""

from __future__ import annotations

import pytest

from live.host import cleanup_after_kill_9, leftovers
from meshlab.lab import LabUsageError
from meshlab.lab.lazyload import DIRECT, GLOBAL_POD, VIA_FALLBACK, LazyLab
from meshlab.scoping.lazyload import GLOBAL_SIDECAR

pytestmark = pytest.mark.live

CALLED = ("details", "reviews", "ratings")
GLOBAL_CLUSTER = f"outbound|80||{GLOBAL_SIDECAR}"


def cluster(service: str) -> str:
    return f"outbound|9080||{service}.default.svc.cluster.local"


@pytest.fixture
def lab():
    with LazyLab("mlz").up() as running:
        yield running


def test_the_first_call_to_each_service_goes_through_the_global_sidecar_and_succeeds(lab):
    assert lab.unscoped == {"LDS": 9, "CDS": 9, "EDS": 8}, "no Sidecar yet: virtualOutbound and PassthroughCluster, and all 8 services"
    assert lab.resources() == {"LDS": 2, "CDS": 2, "EDS": 1}, "fenced: only the global sidecar's service"
    product, global_ip = lab.pod("product").ip, lab.pod(GLOBAL_POD).ip
    for service in CALLED:
        call = lab.call(service)
        assert call.via == VIA_FALLBACK and len(call.hops) == 3
        outbound, forwarded, inbound = call.hops
        assert outbound["upstream_cluster"] == GLOBAL_CLUSTER and outbound["upstream"] == f"{global_ip}:80"
        vip = lab.services[service]
        # the global sidecar learned the caller and the original destination from the PROXY line
        assert forwarded["source"].startswith(f"{product}:") and forwarded["original_dst"] == f"{vip.cluster_ip}:9080"
        assert forwarded["upstream_cluster"] == cluster(service) and inbound["downstream"].startswith(f"{global_ip}:")
    learned = [(e.source_address, e.authority, e.upstream_cluster) for e in lab.access_log()]
    assert learned == [(product, f"{s}.default.svc.cluster.local", "inbound|80||") for s in CALLED]


def test_after_the_controller_writes_the_sidecar_calls_go_direct_and_the_config_shrinks(lab):
    for service in CALLED:
        lab.call(service)
    pushes_before = len(lab.control_plane.pushes)
    (sidecar,) = lab.refresh()
    assert (sidecar.namespace, sidecar.name, sidecar.workload_selector) == ("default", "product", {"app": "product"})
    assert sidecar.egress[0].hosts == tuple(sorted([f"*/{s}.default.svc.cluster.local" for s in CALLED] + ["istio-system/*", "mesh-operator/*"]))
    push = lab.control_plane.pushes[pushes_before]
    assert (push["configs"], push["pushed"]) == (["Sidecar/default/product"], 1), "only the product's proxy depends on its Sidecar"
    assert lab.control_plane.last_sent(lab.node_id("product")) == {
        "LDS": ["10.96.0.11_80", "10.96.0.12_9080", "10.96.0.13_9080", "10.96.0.14_9080", "virtualOutbound"],
        "CDS": sorted(["PassthroughCluster", GLOBAL_CLUSTER, *(cluster(s) for s in CALLED)]),
        "EDS": sorted([GLOBAL_CLUSTER, *(cluster(s) for s in CALLED)]),
    }
    assert lab.resources() == {"LDS": 5, "CDS": 5, "EDS": 4} and lab.unscoped == {"LDS": 9, "CDS": 9, "EDS": 8}
    forwarded = len(lab.access_log())
    for service in CALLED:
        for _ in range(3):
            call = lab.call(service)
            assert call.via == DIRECT and len(call.hops) == 2 and call.hops[0]["upstream_cluster"] == cluster(service)
            assert call.hops[1]["downstream"].startswith(f"{lab.pod('product').ip}:")
    assert len(lab.access_log()) == forwarded, "the global sidecar saw none of the later calls"
    assert [entry["LDS"] for entry in lab.pushed()] == [9, 2, 5], "versions sent to the product's proxy: unscoped, fenced, learned"


def test_latencies_via_the_global_sidecar_and_direct_are_measured(lab):
    measured = lab.measure(("cart", "payment", "shipping"), repeats=5)
    print(f"\n{measured}")
    assert set(measured.medians()) == {"cart", "payment", "shipping"} and all(len(v) == 5 for v in measured.direct_us.values())
    assert measured.resources == {"unscoped": {"LDS": 9, "CDS": 9, "EDS": 8}, "fenced": {"LDS": 2, "CDS": 2, "EDS": 1},
                                  "learned": {"LDS": 5, "CDS": 5, "EDS": 4}}
    with pytest.raises(LabUsageError, match="already learned cart"):
        lab.measure(("cart",), 1)


def test_bad_input_is_refused_with_what_is_accepted(lab):
    with pytest.raises(LabUsageError, match="no service 'nosuch' to call from product; services are details, reviews"):
        lab.call("nosuch")
    with pytest.raises(LabUsageError, match="other than 'product' and 'global'"):
        LazyLab("mlzb").up(services=("product",))
    with pytest.raises(LabUsageError, match="already exists"):
        LazyLab("mlz").up()


def ours(prefix: str) -> list[str]:
    return [item for item in leftovers() if prefix in item or "a pod's app or sidecar" in item]


def test_down_leaves_nothing_behind():
    LazyLab("mlzd").up().down()
    assert ours("mlzd") == []


def test_cleanup_after_kill_9_leaves_nothing_behind():
    cleanup_after_kill_9("from meshlab.lab.lazyload import LazyLab; LazyLab('mlzk').up(refresh_s=0.5)", "mlzk")
