"""The embedded live lab: pods, Istio's rules, sidecars as uid 1337, services, the CLI, and cleanup."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace

import pytest

from live.host import host_ruleset
from meshlab.lab import Lab, LabError, LabUsageError, PodSpec
from meshlab.lab.spec import DEFAULT_CAPTURE, STATE_ROOT, InitContainer
from meshlab.lab.netns import MACHINE

pytestmark = pytest.mark.live


@pytest.fixture(scope="module")
def lab():
    pods = [
        PodSpec("pod0", capture=replace(DEFAULT_CAPTURE, inbound_ports_exclude="9090")),
        PodSpec("pod1"),
        PodSpec("plain", sidecar=False),
    ]
    with Lab("mll").up(pods) as running:
        yield running


def test_status_lists_the_pods(lab):
    status = lab.status()
    assert status["prefix"] == "mll" and status["datapath"] == "iptables"
    assert [(p["name"], p["ip"], p["app_port"], p["sidecar"]) for p in status["pods"]] == [
        ("pod0", "10.244.0.10", 8080, True), ("pod1", "10.244.0.11", 8080, True), ("plain", "10.244.0.12", 8080, False)]


def test_sidecars_run_as_uid_1337_and_apps_do_not(lab):
    uids = {}
    for pod, process in lab.processes:
        status = open(f"/proc/{process.pid}/status").read()
        uids[(pod, process.role)] = int(status.split("Uid:")[1].split()[0])
    assert uids == {("pod0", "app"): 0, ("pod0", "sidecar"): 1337, ("pod1", "app"): 0, ("pod1", "sidecar"): 1337, ("plain", "app"): 0}


def test_a_request_crosses_both_sidecars_and_the_app_sees_127_0_0_6(lab):
    reply = lab.request("pod1", "10.244.0.10", 8080, "/through-both")
    assert reply.body["pod"] == "pod0" and reply.body["path"] == "/through-both"
    assert reply.body["peer"].startswith("127.0.0.6:")
    outbound, inbound = lab.sidecar_hops(reply, "pod1", "pod0")
    assert (outbound["original_dst"], outbound["upstream"]) == ("10.244.0.10:8080", "10.244.0.10:8080")
    assert (inbound["original_dst"], inbound["upstream"]) == ("10.244.0.10:8080", "10.244.0.10:8080")
    assert lab.counters("pod1")["outbound_connections"] >= 1 and lab.counters("pod0")["inbound_connections"] >= 1
    assert lab.counters("pod1")["bytes_from_upstream"] >= len(json.dumps(reply.body))
    # the kernel counted the redirections: nat rules see each connection's first packet
    counters = lab.iptables_save("pod1")
    assert any(line.startswith("[") and not line.startswith("[0:") and "REDIRECT --to-ports 15001" in line for line in counters.splitlines())


def test_a_service_vip_goes_to_its_endpoint(lab):
    vip = lab.add_service("echo", 80, ["pod0"])
    assert vip.startswith("10.96.0.")
    reply = lab.request("pod1", vip, 80, "/via-vip")
    assert reply.body["pod"] == "pod0" and reply.body["local"] == "10.244.0.10:8080"
    hop, _ = lab.sidecar_hops(reply, "pod1", "pod0")
    assert (hop["original_dst"], hop["service"], hop["upstream"]) == (f"{vip}:80", f"{vip}:80", "10.244.0.10:8080")


def test_an_excluded_inbound_port_bypasses_the_sidecar(lab):
    reply = lab.request("pod1", "10.244.0.10", 9090, "/excluded")
    assert reply.body["local"] == "10.244.0.10:9090"
    assert reply.body["peer"].startswith("10.244.0.11:"), "the app saw pod1's sidecar directly, not 127.0.0.6"
    outbound = lab.wait_for_hop("pod1", direction="outbound", original_dst="10.244.0.10:9090")
    assert outbound["upstream_source"] == reply.body["peer"], "pod1's sidecar still captured its side"
    still = lab.request("pod1", "10.244.0.10", 8080, "/app")
    assert still.body["peer"].startswith("127.0.0.6:")
    lab.sidecar_hops(still, "pod1", "pod0")  # the 8080 request, sent after, has its inbound hop ...
    inbound = {hop["original_dst"] for hop in lab.hops("pod0") if hop["direction"] == "inbound"}
    assert "10.244.0.10:9090" not in inbound  # ... and 9090 never had one


def test_a_pod_without_sidecar_is_not_captured(lab):
    reply = lab.request("plain", "10.244.0.10", 9090)
    assert reply.body["peer"].startswith("10.244.0.12:")
    with pytest.raises(LabError, match="pod plain has no sidecar"):
        lab.logs("plain", "sidecar")


def test_a_second_lab_with_the_same_prefix_is_refused(lab):
    with pytest.raises(LabUsageError, match="a lab with prefix 'mll' already exists"):
        Lab("mll").up(1)


def test_a_failure_half_way_through_up_removes_what_was_created(monkeypatch):
    def broken(self, specs):
        raise LabError("simulated failure while starting processes")

    monkeypatch.setattr(Lab, "_start_processes", broken)
    with pytest.raises(LabError, match="simulated failure"):
        Lab("mlf").up(3)
    assert MACHINE.with_prefix("mlf") == [] and not (STATE_ROOT / "mlf").exists()


def test_a_pod_with_an_init_container_is_made_by_it_with_its_environment_and_its_log_kept():
    init = InitContainer(("sh", "-c", 'iptables -t nat -N MESHLAB_INIT && echo "$WHO made the rules"'), {"WHO": "the init container"})
    with Lab("mlin").up([PodSpec("web", init=init)]) as lab:
        saved = lab.iptables_save("web")
        assert ":MESHLAB_INIT" in saved and "ISTIO_" not in saved  # in place of meshlab's rendering, not beside it
        assert lab.logs("web", "init") == "the init container made the rules\n"


def test_a_failing_init_container_is_named_and_nothing_is_left():
    init = InitContainer(("sh", "-c", "echo 'no such table' >&2; exit 3"))
    with pytest.raises(LabError, match=r"pod web: its init container sh -c failed \(exit 3\): no such table"):
        Lab("mlif").up([PodSpec("web", init=init)])
    assert MACHINE.with_prefix("mlif") == [] and not (STATE_ROOT / "mlif").exists()


def meshlab(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "meshlab.cli", "lab", *args, "--prefix", "mlc"] if args[0] not in ("exec", "logs") else
                          [sys.executable, "-m", "meshlab.cli", "lab", args[0], "--prefix", "mlc", *args[1:]], capture_output=True, text=True, timeout=60)


def test_cli_round_trip_leaves_the_host_as_it_was():
    host_before = host_ruleset()
    assert meshlab("up", "--pods", "2").returncode == 0
    try:
        status = json.loads(meshlab("status", "--json").stdout)
        assert {"prefix", "datapath", "pods"} <= set(status) and status["datapath"] == "iptables"
        assert all({"name", "ip", "app_port", "sidecar"} <= set(pod) for pod in status["pods"]) and len(status["pods"]) == 2
        addresses = meshlab("exec", "pod1", "--", "ip", "-brief", "addr")
        assert addresses.returncode == 0 and "10.244.0.11/32" in addresses.stdout
        assert '"event": "ready"' in meshlab("logs", "pod0", "sidecar").stdout
        assert "ISTIO_OUTPUT" in meshlab("exec", "pod0", "--", "iptables-save", "-t", "nat").stdout
        bad = meshlab("exec", "nope", "--", "true")
        assert bad.returncode == 2 and "no pod 'nope'" in bad.stderr
    finally:
        assert meshlab("down").returncode == 0
    again = meshlab("down")
    assert again.returncode == 0, "down is idempotent"
    assert MACHINE.with_prefix("mlc") == [] and host_ruleset() == host_before


def test_applying_rules_is_refused_in_the_hosts_namespace_and_works_in_a_pods(lab):
    host = subprocess.run([sys.executable, "-m", "meshlab.cli", "intercept", "istio-iptables", "-i", "*"], capture_output=True, text=True, timeout=60)
    assert host.returncode == 2 and "would change the host's own iptables rules" in host.stderr
    applied = lab.exec("plain", [sys.executable, "-m", "meshlab.cli", "intercept", "istio-iptables", "-i", "10.96.0.0/12"])
    assert applied.returncode == 0, applied.stderr
    assert "-A ISTIO_OUTPUT -d 10.96.0.0/12 -j ISTIO_REDIRECT" in lab.iptables_save("plain")


def test_the_kernels_rules_are_exactly_what_the_generator_rendered(lab):
    """What the kind stage compares for a real pod: iptables-save output against meshlab's rendering."""
    from meshlab.intercept import CaptureConfig, build_rules
    from meshlab.intercept.compare import Difference, compare

    config = CaptureConfig.from_istio_fields(lab.pod("pod0").capture)
    saved = lab.pod("pod0").namespace.run(["iptables-save"]).stdout
    assert compare(build_rules(config).restore_text(4), saved) == []
    other = replace(config, inbound_ports_exclude="9090,9091")
    missing = compare(build_rules(other).restore_text(4), saved)
    assert missing == [Difference("nat", "ISTIO_INBOUND", missing[0].position, "-p tcp -m tcp --dport 9091 -j RETURN", None)]
