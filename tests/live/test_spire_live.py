"""SPIRE's own server and agent in the live lab: workloads in the lab's pods get their identities from
the real agent with the real ``spiffe`` client, and the lab's down or cleanup (also after the process
that started SPIRE was killed with SIGKILL) leaves no SPIRE process and no SPIRE file behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from upstream_programs import program_path

from meshlab.lab import Lab, cleanup
from meshlab.lab.spec import STATE_ROOT
from meshlab.procfs import start_time

pytestmark = [pytest.mark.live, pytest.mark.upstream, pytest.mark.skipif(os.geteuid() != 0, reason="SPIRE's programs are in root's cache")]

WEB, DB = "spiffe://meshlab.test/ns/shop/sa/web", "spiffe://meshlab.test/ns/shop/sa/db"


def wait_for(pod_fetch, expected, timeout=30.0):
    """The agent syncs entries every 5 s: ask until the answer is the expected one, or time is up."""
    deadline = time.monotonic() + timeout
    while (answer := pod_fetch()) != expected and time.monotonic() < deadline:
        time.sleep(0.5)
    return answer


ENTRIES = [(WEB, ["unix:gid:1101"]), (DB, ["unix:gid:1102"])]
#: (pod, gid of the workload): the callers both agents are asked about
CALLERS = [("pod0", 1101), ("pod1", 1102), ("pod1", 1103), ("pod0", 1102)]


def test_pods_get_the_same_identities_from_the_real_spire_agent_and_from_meshlabs():
    from meshlab.identity.agent import AgentThread, attested_agent
    from meshlab.identity.spiffeid import TrustDomain
    from meshlab.lab.identity import LabPods
    from meshlab.lab.spire import Issued, LabSpire, workload_ids

    with Lab("mlsr").up(2) as lab, LabSpire(lab, program_path("spire-server"), program_path("spire-agent")) as spire:
        for spiffe_id, selectors in ENTRIES:
            spire.create_entry(spiffe_id, selectors)
        assert wait_for(lambda: spire.fetch("pod0", 1101), Issued(frozenset({WEB}), WEB)) == Issued(frozenset({WEB}), WEB)
        real = {caller: spire.fetch(*caller) for caller in CALLERS}
        roles = sorted(process.role for _, process in Lab.attach("mlsr").processes if process.role.startswith("spire"))
        assert roles == ["spire-agent", "spire-server"], "the lab's state file knows SPIRE's processes"

        agent = attested_agent(TrustDomain("meshlab.test"), lab.state_dir / "meshlab-agent.sock",
                               [{"spiffe_id": i, "selectors": s, "ttl": 3600} for i, s in ENTRIES], LabPods(lab))
        running = AgentThread(agent).start()
        try:
            ours = {caller: workload_ids(lab, *caller, agent.socket_path) for caller in CALLERS}
        finally:
            running.stop()
    assert real == ours == {("pod0", 1101): Issued(frozenset({WEB}), WEB), ("pod1", 1102): Issued(frozenset({DB}), DB),
                            ("pod1", 1103): None, ("pod0", 1102): Issued(frozenset({DB}), DB)}


STARTER = """
import sys, time
from meshlab.lab import Lab
from meshlab.lab.spire import LabSpire
lab = Lab("mlsk").up(1)
spire = LabSpire(lab, sys.argv[1], sys.argv[2]).__enter__()
print(" ".join(str(p.pid) + ":" + str(p.start_time) for _, p in lab.processes if p.role.startswith("spire")), flush=True)
time.sleep(600)
"""


def test_cleanup_after_sigkill_stops_spire_and_removes_its_files():
    starter = subprocess.Popen([sys.executable, "-c", STARTER, program_path("spire-server"), program_path("spire-agent")],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = starter.stdout.readline()
        assert line.strip(), starter.stderr.read()[-800:]
        started = [tuple(map(int, item.split(":"))) for item in line.split()]
        assert len(started) == 2 and all(start_time(pid) == ticks for pid, ticks in started)
    finally:
        starter.send_signal(signal.SIGKILL)
        starter.wait(timeout=10)
    assert all(start_time(pid) == ticks for pid, ticks in started), "SIGKILL of the starter leaves SPIRE running"
    cleanup("mlsk")
    assert all(start_time(pid) != ticks for pid, ticks in started), "cleanup stopped SPIRE's server and agent"
    assert not (STATE_ROOT / "mlsk").exists()
