"""The live lab without root: the CLI and the Python API run by an unprivileged user (nobody).

The suite runs as root, so these tests drop to uid 65534 for real: its processes have no
capability on this machine, only inside the user namespace the lab makes. Its code is a copy of
meshlab's source in a folder that user can read (CI's checkout may sit under /root, mode 0700),
run by the system Python."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

import meshlab
from meshlab.lab.netns import MACHINE
from meshlab.lab.processes import start_time

from .conftest import host_ruleset

pytestmark = pytest.mark.live

NOBODY = 65534
PYTHON = "/usr/bin/python3.11"  # a Python every user can run
STATE = Path(f"/tmp/meshlab-{NOBODY}")


@pytest.fixture(scope="module")
def code():
    """A readable copy of meshlab's source for uid 65534; removed with the user's state folder."""
    had_state = STATE.exists()
    folder = Path(tempfile.mkdtemp(prefix="meshlab-rootless-"))
    folder.chmod(0o755)
    shutil.copytree(Path(meshlab.__file__).parent, folder / "meshlab", ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run(["chmod", "-R", "a+rX", str(folder)], check=True)
    yield folder
    shutil.rmtree(folder)
    if not had_state and STATE.is_dir() and not any(STATE.iterdir()):
        STATE.rmdir()


def as_nobody(code: Path, *argv: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    environment = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "PYTHONPATH": str(code), "HOME": "/tmp"}
    return subprocess.run([PYTHON, *argv], input=stdin, capture_output=True, text=True, timeout=120, cwd=code, env=environment,
                          user=NOBODY, group=NOBODY, extra_groups=[])


def lab_cli(code: Path, *argv: str) -> subprocess.CompletedProcess:
    return as_nobody(code, "-m", "meshlab.cli", "lab", *argv)


def real_uid(pid: int) -> int:
    return int(Path(f"/proc/{pid}/status").read_text().split("Uid:")[1].split()[0])


def test_doctor_says_the_live_stage_runs_without_root(code):
    done = as_nobody(code, "-m", "meshlab.cli", "doctor", "--json")
    live = json.loads(done.stdout)["stages"]["live"]
    assert live["available"] and live["reason"].startswith("not root: the lab runs inside a user namespace"), live


def test_cli_round_trip_without_root(code):
    rules = host_ruleset()
    up = lab_cli(code, "up", "--prefix", "mlu", "--pods", "2")
    assert up.returncode == 0, up.stderr
    try:
        state = json.loads((STATE / "mlu" / "state.json").read_text())
        holder = json.loads((STATE / "mlu" / "holder.json").read_text())
        # every process of the lab is the unprivileged user's, the holder included
        pids = [process["pid"] for process in state["processes"]] + [holder["pid"]]
        assert {real_uid(pid) for pid in pids} == {NOBODY}
        # the namespaces live in the user's own namespace, not on this machine
        assert MACHINE.with_prefix("mlu") == []
        status = json.loads(lab_cli(code, "status", "--prefix", "mlu", "--json").stdout)
        assert [(pod["name"], pod["ip"], pod["sidecar"]) for pod in status["pods"]] == [("pod0", "10.244.0.10", True), ("pod1", "10.244.0.11", True)]

        sent = lab_cli(code, "exec", "--prefix", "mlu", "pod1", "--", PYTHON, "-m", "meshlab.lab.client", "10.244.0.10", "8080", "--path", "/rootless")
        reply = json.loads(sent.stdout)[0]["body"]
        assert (reply["pod"], reply["path"]) == ("pod0", "/rootless")
        assert reply["peer"].startswith("127.0.0.6:"), "pod0's sidecar connected to its app from 127.0.0.6"

        sidecar_log = [json.loads(line) for line in lab_cli(code, "logs", "--prefix", "mlu", "pod1", "sidecar").stdout.splitlines()]
        ready = sidecar_log[0]
        assert (ready["event"], ready["uid"], ready["mark"]) == ("ready", 0, 1337), "uid 0 inside the namespace, marking its sockets"
        hops = [hop for hop in sidecar_log if hop["event"] == "hop"]
        assert [(hop["direction"], hop["original_dst"]) for hop in hops] == [("outbound", "10.244.0.10:8080")]

        saved = lab_cli(code, "exec", "--prefix", "mlu", "pod1", "--", "iptables-save", "-t", "nat").stdout
        assert "-m mark --mark 0x539 -j RETURN" in saved and "--uid-owner" not in saved
        assert host_ruleset() == rules
    finally:
        down = lab_cli(code, "down", "--prefix", "mlu")
    assert down.returncode == 0, down.stderr
    assert "3 namespaces deleted" in down.stdout
    assert [start_time(pid) for pid in pids] == [None] * len(pids), "every process of the lab has ended"
    assert not (STATE / "mlu").exists() and host_ruleset() == rules


PYTHON_API = """
import json
from meshlab.lab import Lab, PodSpec

with Lab("mlv").up([PodSpec("pod0"), PodSpec("pod1"), PodSpec("plain", sidecar=False)]) as lab:
    reply = lab.request("pod1", lab.pod("pod0").ip, 8080, "/api")
    outbound, inbound = lab.sidecar_hops(reply, "pod1", "pod0")
    plain = lab.request("plain", lab.pod("pod0").ip, 9090)
    plain_inbound = lab.wait_for_hop("pod0", direction="inbound", upstream_source=plain.body["peer"])
    keepalive = lab.requests("pod1", lab.pod("pod0").ip, 8080, count=20)
    print(json.dumps({"reply": reply.body, "outbound": outbound, "inbound": inbound, "plain_inbound": plain_inbound,
                      "keepalive": len(keepalive), "rootless": lab.rootless}))
"""


def test_python_api_without_root(code):
    done = as_nobody(code, "-c", PYTHON_API)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert seen["rootless"] and seen["reply"]["path"] == "/api"
    # the request crossed both sidecars: pod1's outbound, then pod0's inbound from 127.0.0.6
    assert (seen["outbound"]["direction"], seen["outbound"]["original_dst"]) == ("outbound", "10.244.0.10:8080")
    assert (seen["inbound"]["direction"], seen["inbound"]["upstream_source"]) == ("inbound", seen["reply"]["peer"])
    assert seen["reply"]["peer"].startswith("127.0.0.6:")
    # the proxy's own connection was not captured again: its mark matched, as uid 1337 would
    assert seen["outbound"]["upstream_source"] == seen["inbound"]["downstream"]
    # a pod without a sidecar: nothing marks or captures its side; pod0's sidecar accepted it as it came
    assert seen["plain_inbound"]["downstream"].startswith("10.244.0.12:")
    assert seen["keepalive"] == 20
    assert not (STATE / "mlv").exists()


def test_ebpf_without_root_is_refused_with_the_reason(code):
    done = lab_cli(code, "up", "--prefix", "mlw", "--datapath", "ebpf")
    assert done.returncode == 2
    assert "the eBPF datapath needs root" in done.stderr
    assert not (STATE / "mlw").exists()


def test_a_dead_holder_is_cleaned_up(code):
    assert lab_cli(code, "up", "--prefix", "mlx", "--pods", "1").returncode == 0
    holder = json.loads((STATE / "mlx" / "holder.json").read_text())
    os.kill(holder["pid"], 9)  # the process holding the user namespace dies (a crash)
    status = lab_cli(code, "status", "--prefix", "mlx")
    assert status.returncode == 1 and "lost the process holding its namespaces" in status.stderr
    cleaned = lab_cli(code, "cleanup", "--prefix", "mlx")
    assert cleaned.returncode == 0, cleaned.stderr
    assert not (STATE / "mlx").exists()
