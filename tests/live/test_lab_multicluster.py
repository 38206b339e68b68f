"""One mesh over two clusters on two networks, live: Istio's multi-primary, multi-network model on the
kernel. A call to a service that lives only in cluster2 leaves cluster1's sidecar as mutual TLS with
Istio's SNI to cluster2's east-west gateway, which passes it on by that SNI, still encrypted, to a pod
whose sidecar terminates it and sees the caller's SPIFFE ID: three proxies' records of one connection.
A service in both clusters stays at home until its home pods die, then fails over to the other
cluster through its gateway, and comes back. A VM outside every cluster is registered as istiod
would (WorkloadEntry) and reached from both clusters. Figures (latency, requests lost, seconds) are
printed; what must hold by the mechanism is asserted. Nothing is left behind."""

from __future__ import annotations

import socket
import ssl
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from live.host import cleanup_after_kill_9, leftovers
from meshlab.identity.authority import TrustDomainAuthority
from meshlab.identity.mtls import context as tls_context
from meshlab.identity.spiffeid import SpiffeId, TrustDomain
from meshlab.lab import LabUsageError
from meshlab.lab.multicluster import MultiClusterMesh
from meshlab.lab.netns import NetNS

pytestmark = pytest.mark.live

HELLO_SNI = "outbound_.9080_._.hello.default.svc.cluster.local"


def spiffe(sa: str, namespace: str = "default") -> str:
    return f"spiffe://cluster.local/ns/{namespace}/sa/{sa}"


@pytest.fixture(scope="module")
def mesh():
    with MultiClusterMesh("mlmc").up(clusters=2, pods=2) as running:
        yield running


def test_a_call_to_a_service_only_in_cluster2_crosses_the_east_west_gateway_in_mutual_tls(mesh):
    call = mesh.call("hello", "cluster1")
    assert call.answered_by == "cluster2-hello0" and call.crossed
    outbound, gateway, inbound = call.hops
    assert outbound["pod"] == "cluster1-sleep" and outbound["upstream"] == f"{mesh.edge_ip('cluster2')}:15443"
    assert outbound["upstream_cluster"] == "outbound|9080||hello.default.svc.cluster.local"
    assert outbound["sni"] == HELLO_SNI and outbound["peer_identity"] == spiffe("hello"), "the server proved who it is"
    assert gateway["pod"] == "cluster2-eastwest" and gateway["sni"] == HELLO_SNI
    assert gateway["upstream_cluster"] == HELLO_SNI and gateway["upstream"] == f"{mesh.pod('cluster2-hello0').ip}:8080"
    assert gateway["peer_identity"] is None, "AUTO_PASSTHROUGH: the gateway never terminated the TLS"
    assert inbound["pod"] == "cluster2-hello0" and inbound["peer_identity"] == spiffe("sleep"), "the caller's identity crossed the networks"
    assert inbound["downstream"].startswith(f"{mesh.pod('cluster2-eastwest').ip}:")
    print(f"\ncluster1 -> hello in cluster2: {call.latency_us:.0f} µs")


def test_a_service_in_both_clusters_is_answered_at_home(mesh):
    answers = [mesh.call("echo", "cluster1") for _ in range(6)]
    assert {call.answered_by for call in answers} == {"cluster1-echo0", "cluster1-echo1"}, "priority 0: round robin at home"
    assert not any(call.crossed for call in answers) and all(len(call.hops) == 2 for call in answers)
    outbound, inbound = answers[0].hops
    assert outbound["sni"] == "outbound_.9080_._.echo.default.svc.cluster.local" and inbound["peer_identity"] == spiffe("sleep")


def test_each_control_plane_sends_split_horizon_eds_with_failover_priorities(mesh):
    from envoy.config.endpoint.v3 import endpoint_pb2

    from meshlab.xds.resources import ENDPOINT

    plane = mesh.control_plane_of("cluster1")
    connection = plane.call(lambda: next(c for c in plane.plane.connections.values() if c.node == "default/cluster1-sleep"))
    sent = plane.call(lambda: plane.plane.sent_to(connection, ENDPOINT))
    assignment = endpoint_pb2.ClusterLoadAssignment()
    sent["outbound|9080||echo.default.svc.cluster.local"].Unpack(assignment)
    groups = [(g.priority, g.locality.region, sorted(f"{e.endpoint.address.socket_address.address}:{e.endpoint.address.socket_address.port_value}"
                                                     f"x{e.load_balancing_weight.value}" for e in g.lb_endpoints)) for g in assignment.endpoints]
    home = sorted(f"{mesh.pod(p).ip}:8080x1" for p in ("cluster1-echo0", "cluster1-echo1"))
    assert groups == [(0, "region1", home), (1, "region2", [f"{mesh.edge_ip('cluster2')}:15443x2"])], \
        "cluster2's two pods are one endpoint, its east-west gateway, weight 2, at priority 1"


def test_when_the_home_pods_die_traffic_fails_over_to_the_other_cluster_and_comes_back(mesh):
    result = mesh.failover("echo", "cluster1", before_s=1.0, down_s=2.0, after_s=7.0, pace_ms=20)
    print(f"\n{result}")
    before = [x.cluster for x in result.samples if x.t < result.kill_at]
    assert len(before) > 10 and set(before[:-1]) == {"cluster1"}, "at home until the kill (the last may have been in flight)"
    assert result.failed_over_s is not None, "the other cluster answered after the kill"
    assert 1 <= result.requests_lost <= 3, "consecutive5xx 1: one failed connection per home pod (and one in flight) ejects them"
    ejections = [e for e in result.events if e.get("action") == "EJECT" and e.get("enforced")]
    assert {e["upstream_url"] for e in ejections} == {f"{mesh.pod(p).ip}:8080" for p in ("cluster1-echo0", "cluster1-echo1")}
    down = [x.cluster for x in result.samples if result.kill_at + result.failed_over_s <= x.t < result.restart_at]
    assert down and set(down) == {"cluster2"}, "while cluster1's pods are dead, every request is answered by cluster2"
    assert result.back_s is not None, "after the ejection time (5 s), traffic comes home"
    assert result.samples[-1].cluster == "cluster1"


def test_the_vm_is_registered_and_reached_from_both_clusters_and_reaches_them(mesh):
    (entry,) = mesh.registrar.entries.values()
    assert entry.name == "vmapp-10.250.0.50-network1" and entry.address == "10.250.0.50" and entry.network == "network1"
    assert entry.annotations["istio.io/autoRegistrationGroup"] == "vmapp"
    near = mesh.call("vmapp", "cluster1")
    assert near.answered_by == "vm" and not near.crossed and near.hops[-1]["peer_identity"] == spiffe("sleep")
    far = mesh.call("vmapp", "cluster2")
    assert far.answered_by == "vm" and far.crossed and far.hops[1]["pod"] == "cluster1-eastwest"
    assert far.hops[0]["sni"] == "outbound_.9080_._.vmapp.vm.svc.cluster.local"
    out = mesh.call("hello", "vm")
    assert out.answered_by == "cluster2-hello0" and out.crossed and out.hops[-1]["peer_identity"] == spiffe("vmapp", "vm")


def test_a_peer_without_the_meshs_trust_is_refused_at_the_sidecar(mesh):
    """A client with an SVID from another authority, from a namespace with no capture rules (the gateway's),
    straight to a pod: the pod's sidecar peeks, sees TLS, and the handshake fails on the certificate."""
    rogue = TrustDomainAuthority(TrustDomain("cluster.local"))
    svid = rogue.sign_x509_svid(SpiffeId(TrustDomain("cluster.local"), "/ns/default/sa/sleep"), __import__("datetime").timedelta(hours=1))
    chain, key = svid.pem_files()
    from cryptography.hazmat.primitives.serialization import Encoding
    context = tls_context(chain, key, b"".join(c.public_bytes(Encoding.PEM) for c in rogue.x509_bundle()), server_side=False)
    context.verify_mode = ssl.CERT_NONE  # the rogue does not care who answers: the refusal must be the sidecar's
    target = mesh.pod("cluster2-hello0").ip

    def attempt() -> str:
        with socket.create_connection((target, 8080), timeout=5) as raw:
            try:
                with context.wrap_socket(raw, server_hostname=HELLO_SNI) as tls:
                    tls.sendall(b"GET / HTTP/1.0\r\n\r\n")  # TLS 1.3: the server judges the client's certificate after this
                    answer = tls.recv(100)
                    return answer.decode(errors="replace") if answer else "refused: closed without an answer"
            except (ssl.SSLError, ConnectionError) as error:
                return f"refused: {error}"

    with ThreadPoolExecutor(1, initializer=NetNS(mesh.pod("cluster2-eastwest").netns, mesh.host).enter) as pool:
        outcome = pool.submit(attempt).result(timeout=30)
    assert outcome.startswith("refused"), outcome
    deadline = time.monotonic() + 5  # the sidecar logs the refusal as it closes, maybe after the client gave up
    while not (refusals := [hop for hop in mesh.hops("cluster2-hello0")
                            if hop["direction"] == "inbound" and (hop.get("error") or "").startswith("TLS handshake failed")]) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert refusals and "CERTIFICATE_VERIFY_FAILED" in refusals[-1]["error"], refusals
    assert refusals[-1]["downstream"].startswith(f"{mesh.pod('cluster2-eastwest').ip}:") and refusals[-1]["original_dst"] == f"{target}:8080"


def test_lab_status_reads_the_running_mesh_from_its_state_file(mesh):
    shown = subprocess.run([sys.executable, "-m", "meshlab.cli", "lab", "status", "--prefix", "mlmc"], capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines()[:2] == ["mesh mlmc: multi-primary, multi-network",
                                             f"  cluster1: network1, region1/zone1, east-west gateway {mesh.edge_ip('cluster1')}:15443, 4/4 pods running"]


def test_bad_input_is_refused_with_what_is_accepted(mesh):
    with pytest.raises(LabUsageError, match="2 to 4 clusters, not 1"):
        MultiClusterMesh("mlmb").up(clusters=1)
    with pytest.raises(LabUsageError, match="1 to 8 echo pods, not 0"):
        MultiClusterMesh("mlmb").up(pods=0)
    with pytest.raises(LabUsageError, match="no service 'nosuch'; services are echo, hello, vmapp"):
        mesh.call("nosuch")
    with pytest.raises(LabUsageError, match="no caller 'cluster9'; callers are cluster1, cluster2, vm"):
        mesh.call("hello", "cluster9")
    with pytest.raises(LabUsageError, match="already exists"):
        MultiClusterMesh("mlmc").up()
    assert not [item for item in leftovers() if "mlmb" in item]


def test_cleanup_after_kill_9_leaves_nothing_behind():
    cleanup_after_kill_9("from meshlab.lab.multicluster import MultiClusterMesh; MultiClusterMesh('mlmk').up()", "mlmk")


def test_the_cli_runs_a_mesh_shows_the_crossing_and_takes_it_down():
    done = subprocess.run([sys.executable, "-m", "meshlab.cli", "lab", "multicluster", "--prefix", "mlmcli", "--pods", "1"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "cluster1-sleep -> hello: answered by cluster2-hello0 across networks" in lines
    assert any("cluster2-eastwest" in line and "sni=outbound_.9080_._.hello.default.svc.cluster.local" in line for line in lines)
    assert lines[-1] == "mesh 'mlmcli' is down" and not [item for item in leftovers() if "mlmcli" in item]
    refused = subprocess.run([sys.executable, "-m", "meshlab.cli", "lab", "multicluster", "--clusters", "1"], capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2 and "--clusters: invalid choice: 1 (choose from 2, 3, 4)" in refused.stderr
