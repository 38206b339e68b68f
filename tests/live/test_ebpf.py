"""The eBPF datapath for real: connect4 sends the app to its sidecar, getsockopt answers
SO_ORIGINAL_DST, sk_msg hands loopback data from socket to socket (tcpdump sees no payload), a
process outside the lab's cgroup keeps the normal path, and nothing stays attached afterwards."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import subprocess
import sys
import json

import pytest

from meshlab.lab import Lab, cleanup
from meshlab.lab.netns import MACHINE

pytestmark = [pytest.mark.live, pytest.mark.ebpf]


@pytest.fixture(scope="module")
def lab():
    with Lab("mleb").up(2, datapath="ebpf") as running:
        yield running


def test_programs_are_attached_to_the_labs_cgroup(lab):
    assert lab.status()["datapath"] == "ebpf"
    assert lab.ebpf.attached() == ["mesh_connect4", "mesh_getsockopt", "mesh_sockops"]


def test_connect4_sends_the_app_to_its_sidecar_and_getsockopt_tells_it_where_to(lab):
    before = lab.ebpf_stats()
    reply = lab.request("pod1", lab.pod("pod0").ip, 8080)
    assert reply.body["pod"] == "pod0" and reply.body["peer"].startswith("127.0.0.6:")
    hop, _ = lab.sidecar_hops(reply, "pod1", "pod0")
    assert hop["downstream"].startswith("127.0.0.1:"), "connect4 rewrote the app's destination to the sidecar on localhost"
    assert hop["original_dst"] == f"{lab.pod('pod0').ip}:8080", "getsockopt answered SO_ORIGINAL_DST from the map"
    after = lab.ebpf_stats()
    assert after["connect_rewrites"] == before["connect_rewrites"] + 1
    assert after["original_dst_answers"] == before["original_dst_answers"] + 1


def test_loopback_messages_are_redirected_socket_to_socket(lab):
    before = lab.ebpf_stats()["redirected_messages"]
    replies = lab.requests("pod1", lab.pod("pod0").ip, 8080, count=50)
    assert len(replies) == 50
    # each request and each reply crosses two loopback pairs (pod1: app-sidecar; pod0: sidecar-app)
    assert lab.ebpf_stats()["redirected_messages"] - before >= 4 * 50


def test_tcpdump_sees_no_payload_for_a_redirected_exchange(lab):
    target = lab.pod("pod0").ip
    packets, with_payload = lab.loopback_packets("pod0", 8080, lambda: lab.requests("pod1", target, 8080, count=20))
    assert packets > 0, "the handshakes and FINs are still seen on lo"
    assert with_payload == 0, "the sidecar -> app bytes went socket to socket, not through lo"
    # control: a client outside the cgroup talking to the same app over the same lo carries payload
    outside = [sys.executable, "-m", "meshlab.lab.client", "127.0.0.1", "8080", "--count", "20"]
    _, control_payload = lab.loopback_packets("pod0", 8080, lambda: lab.exec("pod0", outside))
    assert control_payload >= 20


def test_a_process_outside_the_cgroup_keeps_the_normal_path(lab):
    before = lab.ebpf_stats()
    done = lab.exec("pod1", [sys.executable, "-m", "meshlab.lab.client", lab.pod("pod0").ip, "8080"])
    assert done.returncode == 0 and "pod0" in done.stdout
    assert lab.ebpf_stats()["connect_rewrites"] == before["connect_rewrites"]
    # pod0's inbound capture (Istio's iptables rules) still applies; its sidecar accepted from pod1's
    # own address, not from pod1's sidecar: pod1's sidecar never saw the connection
    inbound = lab.wait_for_hop("pod0", direction="inbound", upstream_source=json.loads(done.stdout)[0]["body"]["peer"])
    assert inbound["downstream"].startswith(f"{lab.pod('pod1').ip}:")
    assert not [hop for hop in lab.hops("pod1") if hop["upstream_source"] == inbound["downstream"]]


def mesh_programs() -> int:
    return subprocess.run(["bpftool", "prog", "show"], capture_output=True, text=True).stdout.count("name mesh_")


def test_cleanup_after_a_crash_detaches_and_unmounts_everything():
    before = mesh_programs()
    lab = Lab("mlec").up(1, datapath="ebpf")
    state = lab.state_dir
    assert mesh_programs() == before + 4
    del lab  # as if the process had died: nothing but the prefix is known
    cleanup("mlec")
    assert mesh_programs() == before, "the lab's four programs are gone"
    assert str(state) not in open("/proc/mounts").read() and MACHINE.with_prefix("mlec") == [] and not state.exists()


CLIENT_FROM_PORT = """
import json, socket, sys, time
server, port = sys.argv[1], int(sys.argv[2])
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", port))  # the same source port in both pods
s.connect((server, 8080))
time.sleep(1.0)  # both connections open at once
s.sendall(b"GET /same-port HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n")
reply = b""
while b"}" not in reply:
    reply += s.recv(4096)
print(json.loads(reply.split(b"\\r\\n\\r\\n", 1)[1])["pod"])
"""


def test_two_pods_calling_from_the_same_source_port_at_once_stay_apart():
    """Each app connection is sent to its sidecar on a loopback address of its own, so the node-wide
    maps never hold two connections under one 4-tuple: both pairs are in the sockhash, and each app
    gets its own server's answer."""
    with Lab("mlsp").up(4, datapath="ebpf") as lab:
        before = lab.ebpf_stats()
        with ThreadPoolExecutor(2) as pool:
            answers = list(pool.map(lambda pair: lab.exec(pair[0], lab.in_cgroup_argv([sys.executable, "-c", CLIENT_FROM_PORT, lab.pod(pair[1]).ip, "40001"])),
                                    [("pod0", "pod2"), ("pod1", "pod3")]))
        assert [a.stdout.strip() for a in answers] == ["pod2", "pod3"], [a.stderr[-300:] for a in answers]
        after = lab.ebpf_stats()
        assert after["connect_rewrites"] - before["connect_rewrites"] == 2
        # per request, both ends of three connections: app -> sidecar, sidecar -> sidecar, sidecar -> app;
        # with one 4-tuple for both app -> sidecar connections, two of the twelve would be refused
        assert after["sockhash_inserts"] - before["sockhash_inserts"] == 12
