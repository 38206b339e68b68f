"""The live control plane against gRPC's own xDS client (grpcio), on loopback: the LDS -> RDS ->
CDS -> EDS chain, weighted routing, a live route shift, endpoint scaling as an incremental push, a
NACKed resource while the client keeps its last good configuration, and debouncing of a burst."""

from __future__ import annotations

import time
from collections import Counter

import pytest

from meshlab.xds import DebounceOptions
from meshlab.xds.harness import Greeter, collect, run_clients


@pytest.fixture
def greeter():
    running = Greeter()
    yield running
    running.close()
    assert not running.folder.exists(), "close() removes the bootstrap file and its folder"


def backends(records) -> Counter:
    return Counter(r.get("backend") or r.get("error") for r in records)


def test_the_client_walks_lds_rds_cds_eds_and_acks_each(greeter):
    greeter.control_plane.set_service(greeter.service("greeter", {"v1": 1}))
    (records,) = run_clients(greeter.bootstrap, ["greeter"], 5)
    assert backends(records) == {"v1": 5}
    exchanges = greeter.control_plane.exchanges
    subscribed = [e["type"] for e in exchanges if e["kind"] == "subscribe"]
    assert subscribed[:3] == ["LDS", "RDS", "CDS"] and "EDS" in subscribed
    assert {e["type"] for e in exchanges if e["kind"].startswith("ACK")} == {"LDS", "RDS", "CDS", "EDS"}


def test_weighted_routing_75_25(greeter):
    greeter.control_plane.set_service(greeter.service("greeter", {"v1": 75, "v2": 25}))
    (records,) = run_clients(greeter.bootstrap, ["greeter"], 1000)
    share = backends(records)["v1"] / len(records)
    assert 0.70 <= share <= 0.80, backends(records)


def test_a_live_route_shift_loses_no_request(greeter):
    greeter.control_plane.set_service(greeter.service("greeter", {"v1": 1}))
    (client,) = run_clients(greeter.bootstrap, ["greeter"], 400, interval_ms=5, wait=False)
    greeter.control_plane.wait_for_clients(1)
    greeter.control_plane.set_service(greeter.service("greeter", {"v2": 1}))
    greeter.control_plane.wait_settled()
    (records,) = collect([client])
    served = [r.get("backend") for r in records]
    assert "error" not in backends(records) and served[0] == "v1" and served[-1] == "v2"
    switch = served.index("v2")
    assert set(served[switch:]) == {"v2"}, "make-before-break: once on v2, always on v2"


def test_endpoint_scaling_is_an_incremental_push(greeter):
    greeter.control_plane.set_service(greeter.service("greeter", {"v1": 1}))
    (client,) = run_clients(greeter.bootstrap, ["greeter"], 400, interval_ms=5, wait=False)
    greeter.control_plane.wait_for_clients(1)
    second = greeter.add_backend("v1b")
    greeter.control_plane.set_endpoints("greeter-v1", [greeter.address["v1"], second])
    greeter.control_plane.wait_settled()
    (records,) = collect([client])
    assert set(backends(records)) == {"v1", "v1b"}
    last = greeter.control_plane.pushes[-1]
    assert last["full"] is False and last["configs"] == ["Endpoints/greeter-v1"]
    after = [e for e in greeter.control_plane.exchanges if e["direction"] == "response" and e["version"] == str(last["version"])]
    assert {e["type"] for e in after} == {"EDS"}, "an endpoint change pushes endpoints only"


def test_an_invalid_cluster_is_nacked_and_the_client_keeps_its_last_good_config(greeter):
    greeter.control_plane.set_service(greeter.service("greeter", {"v2": 1}))
    (client,) = run_clients(greeter.bootstrap, ["greeter"], 300, interval_ms=5, wait=False)
    greeter.control_plane.wait_for_clients(1)
    greeter.control_plane.set_service(greeter.service("greeter", {"v2": 1}, cluster_type="STATIC"))
    greeter.control_plane.wait_settled()
    (records,) = collect([client])
    assert backends(records) == {"v2": 300}, "requests kept flowing on the last good cluster"
    (nack,) = [e for e in greeter.control_plane.exchanges if e["kind"] == "NACK"]
    assert nack["type"] == "CDS" and "unknown discovery type" in nack["error"]
    assert nack["version"] == str(greeter.control_plane.pushes[-1]["version"] - 1), "a NACK carries the last version the client accepted"


def test_a_burst_of_changes_is_debounced_into_one_push():
    greeter = Greeter(DebounceOptions(debounce_after_ms=500))  # far longer than the burst, even on a loaded machine
    try:
        greeter.control_plane.set_service(greeter.service("greeter", {"v1": 1}))
        run_clients(greeter.bootstrap, ["greeter"], 2)
        before = len(greeter.control_plane.pushes)
        for _ in range(20):
            greeter.control_plane.set_endpoints("greeter-v1", [greeter.address["v1"]])
            time.sleep(0.002)
        greeter.control_plane.wait_settled()
        pushes = greeter.control_plane.pushes[before:]
        assert len(pushes) == 1 and pushes[0]["merged_events"] == 20
    finally:
        greeter.close()


def test_several_targets_per_process_are_separate_xds_clients(greeter):
    targets = [f"svc{i}" for i in range(5)]
    for target in targets:
        greeter.control_plane.set_service(greeter.service(target, {"v1": 1}))
    results = run_clients(greeter.bootstrap, targets, 3, processes=2)
    assert all(backends(records) == {"v1": 15} for records in results)
    connections = {e["connection"] for e in greeter.control_plane.exchanges}
    assert len(connections) == 10, "one ADS stream per target per process"


def test_collect_ends_every_client_when_one_does_not_finish():
    import subprocess
    import sys

    from meshlab.xds.harness import collect

    slow = [subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], stdout=subprocess.PIPE) for _ in range(2)]
    with pytest.raises(RuntimeError, match=r"did not finish within 0.5 s; all clients ended"):
        collect(slow, timeout=0.5)
    assert all(process.poll() is not None for process in slow)
