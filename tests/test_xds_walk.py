"""meshlab.xds.walk: the chain a proxyless client walks, asked of meshlab's control plane (the real
istiod is asked in tests/test_upstream_istiod.py)."""

from __future__ import annotations

import grpc
import pytest

from meshlab.ports import free_port
from meshlab.xds.harness import Greeter
from meshlab.xds.walk import walk


@pytest.fixture
def greeter():
    plane = Greeter()
    yield plane
    plane.close()


def test_the_chain_runs_from_the_listener_to_the_endpoints_of_every_weighted_cluster(greeter):
    greeter.control_plane.set_service(greeter.service("greeter", {"v1": 3, "v2": 1}))
    greeter.control_plane.wait_settled()
    steps = walk(f"127.0.0.1:{greeter.port}", "meshlab-client", "greeter")
    assert [(step.kind, step.names) for step in steps] == [
        ("LDS", ("greeter",)), ("RDS", ("greeter",)), ("CDS", ("greeter-v1", "greeter-v2")), ("EDS", ("greeter-v1", "greeter-v2"))]
    assert steps[1].next_names == ("greeter-v1", "greeter-v2")
    assert sorted(steps[3].next_names) == sorted(greeter.address.values())
    assert len({step.version for step in steps}) == 1


def test_an_unknown_target_ends_the_chain_empty(greeter):
    greeter.control_plane.set_service(greeter.service("greeter", {"v1": 1}))
    greeter.control_plane.wait_settled()
    steps = walk(f"127.0.0.1:{greeter.port}", "meshlab-client", "nobody")
    assert steps[0].names == () and steps[1].names == ()


def test_no_server_is_a_grpc_error_within_the_timeout():
    with pytest.raises(grpc.RpcError):
        walk(f"127.0.0.1:{free_port()}", "meshlab-client", "greeter", timeout=1.0)
