"""The eBPF datapath for real: connect4 sends the app to its sidecar, getsockopt answers
SO_ORIGINAL_DST, sk_msg hands loopback data from socket to socket (tcpdump sees no payload), a
process outside the lab's cgroup keeps the normal path, and nothing stays attached afterwards."""

from __future__ import annotations

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
