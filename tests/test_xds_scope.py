"""The live control plane scopes what it sends, as istiod does with Sidecars: against gRPC's own xDS
client (proxyless, subscribing by name) and against the lab sidecar's ADS client (grpcio and Envoy's
protos, subscribing by wildcard as Envoy does). A scoped client receives only its scope; a change
outside its scope pushes nothing to it; a new Sidecar applies to the proxies it selects at once."""

from __future__ import annotations

import json
import queue
import time

import grpc
import pytest
from envoy.config.core.v3 import base_pb2
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2

from meshlab.lab.xdsclient import AdsClient
from meshlab.scoping.sidecar import EgressListener, Sidecar
from meshlab.xds import DebounceOptions
from meshlab.xds.harness import Greeter, collect, run_clients
from meshlab.xds.outbound import ClusterIPService
from meshlab.xds.resources import LISTENER
from meshlab.xds.server import ControlPlaneThread, workload_of


def scoped_bootstrap(greeter: Greeter, node: str, labels: dict[str, str]):
    """A bootstrap whose node is a workload with labels (Istio's node metadata LABELS)."""
    path = greeter.folder / f"{node.replace('/', '-')}.json"
    config = json.loads(greeter.bootstrap.read_text())
    config["node"] = {**config["node"], "id": node, "metadata": {"LABELS": labels}}
    path.write_text(json.dumps(config))
    return path


@pytest.fixture
def greeter():
    running = Greeter(backends=("v1", "v2"))
    running.control_plane.set_services([running.service("greeter", {"v1": 1}), running.service("other", {"v2": 1})])
    yield running
    running.close()


def only_greeter(namespace: str = "default") -> Sidecar:
    return Sidecar("web", namespace, {"app": "web"}, (EgressListener(("./greeter",)),))


def test_a_scoped_grpc_client_gets_only_what_its_sidecar_imports(greeter):
    greeter.control_plane.set_sidecar(only_greeter())
    greeter.control_plane.wait_settled()
    (records,) = run_clients(scoped_bootstrap(greeter, "default/web", {"app": "web"}), ["greeter", "other"], 1)
    answered = {r["target"]: r.get("backend") or r.get("error") for r in records}
    assert answered["greeter"] == "v1"
    assert answered["other"] in ("UNAVAILABLE", "DEADLINE_EXCEEDED"), "the listener 'other' is not in its scope"
    listeners = [e for e in greeter.control_plane.exchanges if e["node"] == "default/web" and e["direction"] == "response" and e["type"] == "LDS"]
    assert listeners and all(e["resources"] in ([], ["greeter"]) for e in listeners)
    # an unselected client of the same namespace is not scoped by it
    (records,) = run_clients(scoped_bootstrap(greeter, "default/other-app", {"app": "shop"}), ["other"], 1)
    assert records[0].get("backend") == "v2"


def test_a_change_outside_a_scope_pushes_nothing_to_it(greeter):
    greeter.control_plane.set_sidecar(only_greeter())
    scoped = run_clients(scoped_bootstrap(greeter, "default/web", {"app": "web"}), ["greeter"], 300, interval_ms=5, wait=False)
    unscoped = run_clients(greeter.bootstrap, ["greeter"], 300, interval_ms=5, wait=False)
    greeter.control_plane.wait_for_clients(2)
    greeter.control_plane.wait_settled()
    sent_before = len([e for e in greeter.control_plane.exchanges if e["node"] == "default/web" and e["direction"] == "response"])
    greeter.control_plane.set_service(greeter.service("other", {"v1": 1}))
    greeter.control_plane.wait_settled()
    push = greeter.control_plane.pushes[-1]
    assert (push["configs"], push["clients"], push["pushed"]) == (["Service/other"], 2, 1), "only the unscoped client depends on 'other'"
    sent_after = len([e for e in greeter.control_plane.exchanges if e["node"] == "default/web" and e["direction"] == "response"])
    assert sent_after == sent_before
    greeter.control_plane.set_endpoints("greeter-v1", [greeter.address["v1"], greeter.address["v2"]])
    greeter.control_plane.wait_settled()
    assert greeter.control_plane.pushes[-1]["pushed"] == 2, "both depend on greeter's endpoints"
    records = collect(scoped + unscoped)
    assert all("error" not in r for client in records for r in client)


SERVICES = [ClusterIPService(f"{name}.default.svc.cluster.local", "default", f"10.96.0.{10 + i}", 9080, (f"10.244.0.{20 + i}:8080",))
            for i, name in enumerate(["details", "reviews", "ratings"])]


@pytest.fixture
def plane():
    running = ControlPlaneThread(DebounceOptions(debounce_after_ms=10))
    running.start()
    running.set_cluster_ip_services(SERVICES)
    yield running
    running.stop()


def wait_for(client: AdsClient, predicate, what: str, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while not predicate(client.table):
        if time.monotonic() > deadline:
            raise AssertionError(f"the ADS client did not get {what} within {timeout:.0f} s: {client.table}")
        time.sleep(0.01)


def test_a_wildcard_client_gets_its_scope_and_a_new_sidecar_shrinks_it(plane):
    log: list[dict] = []
    client = AdsClient(f"127.0.0.1:{plane.plane.port}", "default/product", {"app": "product"}, log.append)
    client.start()
    try:
        wait_for(client, lambda t: len(t.endpoints) == 3, "three services' endpoints")
        plane.wait_settled()
        assert client.table.listeners == {("10.96.0.10", 9080): "outbound|9080||details.default.svc.cluster.local",
                                          ("10.96.0.11", 9080): "outbound|9080||reviews.default.svc.cluster.local",
                                          ("10.96.0.12", 9080): "outbound|9080||ratings.default.svc.cluster.local"}
        assert client.table.default_cluster == "PassthroughCluster"
        sent = plane.last_sent("default/product")
        assert {kind: len(names) for kind, names in sent.items()} == {"LDS": 4, "CDS": 4, "EDS": 3}
        assert "virtualOutbound" in sent["LDS"] and "PassthroughCluster" in sent["CDS"]

        plane.set_sidecar(Sidecar("product", "default", {"app": "product"}, (EgressListener(("./reviews.default.svc.cluster.local",)),)))
        wait_for(client, lambda t: len(t.endpoints) == 1, "its scope shrunk to one service")
        plane.wait_settled()
        assert plane.last_sent("default/product") == {"LDS": ["10.96.0.11_9080", "virtualOutbound"],
                                                      "CDS": ["PassthroughCluster", "outbound|9080||reviews.default.svc.cluster.local"],
                                                      "EDS": ["outbound|9080||reviews.default.svc.cluster.local"]}
        assert client.table.upstream("10.96.0.11", 9080).host == "10.244.0.21"
        unknown = client.table.upstream("10.96.0.10", 9080)
        assert (unknown.host, unknown.cluster) == ("10.96.0.10", "PassthroughCluster"), "out of scope: passed through"

        before = len(plane.exchanges)
        plane.set_cluster_ip_services([ClusterIPService("details.default.svc.cluster.local", "default", "10.96.0.10", 9080, ("10.244.0.30:8080",))])
        plane.wait_settled()
        assert plane.pushes[-1]["pushed"] == 0 and len(plane.exchanges) == before, "details is outside its scope"

        plane.set_fallback("outbound|9080||reviews.default.svc.cluster.local")
        wait_for(client, lambda t: t.default_cluster != "PassthroughCluster", "the fallback")
        fallback = client.table.upstream("10.96.0.10", 9080)
        assert (fallback.host, fallback.port, fallback.proxy_protocol) == ("10.244.0.21", 8080, True)
        assert any(record.get("type") == "EDS" for record in log) and not any("nack" in record or "error" in record for record in log)
    finally:
        client.stop()


def test_a_node_names_its_workload_and_labels():
    from envoy.config.core.v3 import base_pb2
    from google.protobuf import struct_pb2

    metadata = struct_pb2.Struct()
    metadata.update({"LABELS": {"app": "web", "version": "v1"}})
    workload = workload_of(base_pb2.Node(id="shop/web-0", metadata=metadata))
    assert (workload.namespace, workload.name, workload.labels) == ("shop", "web-0", {"app": "web", "version": "v1"})
    assert workload_of(base_pb2.Node(id="meshlab-client")).namespace == "default"
    metadata.update({"LABELS": {"app": 3}})
    with pytest.raises(ValueError, match="LABELS must map label names to strings"):
        workload_of(base_pb2.Node(id="shop/web-0", metadata=metadata))



def test_an_ack_that_names_nothing_keeps_a_wildcard_subscription(plane):
    """Envoy subscribes to every listener with a request naming nothing and ACKs the same way: the ACK
    must stay an ACK, not turn the subscription into one to nothing (which would push an empty set)."""
    plane.wait_settled()  # the services are in the snapshot the first response carries
    requests: queue.Queue = queue.Queue()
    node = base_pb2.Node(id="default/web")
    with grpc.insecure_channel(f"127.0.0.1:{plane.plane.port}") as channel:
        responses = ads_pb2_grpc.AggregatedDiscoveryServiceStub(channel).StreamAggregatedResources(iter(requests.get, None))
        requests.put(discovery_pb2.DiscoveryRequest(type_url=LISTENER, node=node))
        first = next(responses)
        requests.put(discovery_pb2.DiscoveryRequest(type_url=LISTENER, node=node, version_info=first.version_info, response_nonce=first.nonce))
        deadline = time.monotonic() + 10
        while not (acks := [r for r in plane.exchanges if r.get("kind", "").startswith("ACK")]) and time.monotonic() < deadline:
            time.sleep(0.01)
        requests.put(None)
    assert len(first.resources) == len(SERVICES) + 1, "every service's listener and Istio's virtualOutbound"
    assert [r["kind"] for r in acks] == ["ACK"], acks
