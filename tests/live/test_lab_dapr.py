"""Dapr beside the mesh, for real: two pods each with an app and the real daprd (v1.14.0, the upstream
stage's build), driven from checkout by Dapr's own Python SDK. Invocation reaches orders with daprd's
headers naming the caller; state and pub/sub stay inside the daprd they were sent to (in-memory
components); the kernel's connections during one call are exactly the model's legs on all four
roads (direct, mesh, Dapr, Dapr in a mesh, and Dapr with its port excluded from the mesh).
Latencies are measured and printed, never asserted. Down, and cleanup after kill -9, stop every
daprd and app."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from upstream_programs import program_path

from meshlab.dapr import request_path
from meshlab.lab import LabUsageError
from meshlab.lab.dapr import CHECKOUT, ORDERS, DaprLab, hop_legs
from meshlab.lab.spec import STATE_ROOT
from meshlab.lab.teardown import cleanup
from meshlab.procfs import start_time

pytestmark = [pytest.mark.live, pytest.mark.upstream, pytest.mark.skipif(os.geteuid() != 0, reason="the Dapr lab needs root")]

TRACEPARENT = re.compile(r"00-[0-9a-f]{32}-[0-9a-f]{16}-01")


@pytest.fixture(scope="module")
def daprd():
    return program_path("daprd")


@pytest.fixture(scope="module")
def lab(daprd):
    with DaprLab(daprd, "mldp").up() as running:
        yield running


def test_invocation_through_the_sdk_reaches_orders_and_daprd_names_the_caller(lab):
    answer = lab.invoke("new", {"item": "book"})
    checkout = lab.lab.pod(CHECKOUT).ip
    assert answer["status"] == 200 and answer["body"]["pod"] == ORDERS and answer["body"]["path"] == "/new"
    assert answer["body"]["body"] == '{"item": "book"}'
    assert answer["body"]["peer"].startswith("127.0.0.1:"), "the orders app is called by its own daprd, not by checkout"
    headers = answer["body"]["headers"]
    assert (headers["dapr-caller-app-id"], headers["dapr-callee-app-id"], headers["x-forwarded-for"]) == (CHECKOUT, ORDERS, checkout)
    assert TRACEPARENT.fullmatch(headers["traceparent"])
    assert '"method":"POST /v1.0/invoke/orders/method/new"' in lab.logs(CHECKOUT), "checkout's daprd logged the API call"


def test_state_is_kept_by_the_daprd_it_was_saved_through(lab):
    lab.save_state("order-1", {"item": "book", "count": 2})
    saved = lab.get_state("order-1")
    assert saved["value"] == {"item": "book", "count": 2} and saved["etag"]
    (elsewhere,) = lab.sdk([{"call": "get_state", "store": "statestore", "key": "order-1"}], pod=ORDERS)
    assert elsewhere["value"] is None, "state.in-memory lives inside checkout's daprd: orders' has no such key"


def test_a_published_message_reaches_the_subscriber_behind_the_same_daprd(lab):
    lab.publish({"order": 7})
    (message,) = lab.wait_received(1)
    assert (message["source"], message["topic"], message["data"]) == (CHECKOUT, "orders", {"order": 7})
    assert TRACEPARENT.fullmatch(message["traceparent"]), "Dapr's trace context travels in the CloudEvent"
    assert lab.received(ORDERS) == [], "pubsub.in-memory is checkout's daprd's own: orders' app is never sent it"


@pytest.mark.parametrize("meshed, excluded", [(False, False), (True, False), (True, True)], ids=["no mesh", "mesh", "mesh, 50002 excluded"])
def test_the_kernels_connections_during_a_call_are_the_models_legs(daprd, meshed, excluded):
    with DaprLab(daprd, "mldq").up(meshed=meshed, dapr_port_excluded=excluded) as lab:
        app_path, dapr_path = lab.paths
        assert (app_path, dapr_path) == {(False, False): ("direct", "dapr"), (True, False): ("mesh", "dapr+mesh"), (True, True): ("mesh", "dapr")}[meshed, excluded]
        assert lab.legs(via_dapr=False) == hop_legs(request_path(app_path))
        assert lab.legs(via_dapr=True) == hop_legs(request_path(dapr_path))
        measured = lab.measure(repeats=100)
        print(f"\n{'meshed' if meshed else 'no mesh'}{', Dapr port excluded' if excluded else ''}:\n{measured}")
        assert len(measured.app_us) == len(measured.dapr_us) == 100


def test_wrong_requests_say_what_is_accepted(daprd, tmp_path):
    with pytest.raises(LabUsageError, match="dapr_port_excluded leaves Dapr's port out of the mesh's rules: it needs meshed=True"):
        DaprLab(daprd, "mldr").up(dapr_port_excluded=True)
    with pytest.raises(LabUsageError, match="is not an executable file .*meshlab upstream install daprd"):
        DaprLab(str(tmp_path / "daprd"), "mldr").up()


def dapr_processes(prefix: str) -> list[int]:
    """PIDs of processes working in the lab ``prefix``'s Dapr folders (its daprds and apps do)."""
    found = []
    for cwd in Path("/proc").glob("[0-9]*/cwd"):
        try:
            if os.readlink(cwd).startswith(f"{STATE_ROOT}/{prefix}/dapr/"):
                found.append(int(cwd.parent.name))
        except OSError:
            pass
    return found


STARTER = """
import sys, time
from meshlab.lab.dapr import DaprLab
lab = DaprLab(sys.argv[1], "mlds").up()
print(" ".join(f"{p.pid}:{p.start_time}" for _, p in lab.lab.processes if p.role in ("daprd", "dapr-app")), flush=True)
time.sleep(600)
"""


def test_cleanup_after_sigkill_stops_every_daprd_and_app(daprd):
    starter = subprocess.Popen([sys.executable, "-c", STARTER, daprd], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = starter.stdout.readline()
        assert line.strip(), starter.stderr.read()[-800:]
        started = [tuple(map(int, item.split(":"))) for item in line.split()]
        assert len(started) == 4 and sorted(dapr_processes("mlds")) == sorted(pid for pid, _ in started), "two daprds and two apps"
        starter.send_signal(signal.SIGKILL)
        starter.wait(timeout=10)
        assert all(start_time(pid) == ticks for pid, ticks in started), "they outlive the Python that started them"
        cleanup("mlds")
        assert not any(start_time(pid) == ticks for pid, ticks in started)
        assert dapr_processes("mlds") == []
    finally:
        if starter.poll() is None:
            starter.kill()
        cleanup("mlds")
