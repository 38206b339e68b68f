"""Start a lab's pod processes fast: import once, then fork one child per app and sidecar.

Starting a fresh Python per process costs a tenth of a second or more each; forking a process
that has already imported the sidecar and the app costs a millisecond. Each child starts a new
session, sends its output to its log file, enters its pod's network namespace (setns), and runs;
a sidecar then drops to uid 1337 itself (or, in a lab without root, marks its sockets instead). This process prints the children's PIDs as JSON and
exits; the children live on until the lab stops them.

Run as ``python -m meshlab.lab.kubelet`` with the spec on standard input:
``{"processes": [{"role": "app"|"sidecar"|"node-proxy"|"gateway"|"agent"|"collector", "pod", "netns", "log", "ports", "app", "uid", "gid",
"mark", "services", "cgroup", "config", "xds", "dataplane"}]}``
(an app is the HTTP echo app, or with ``"app": "grpc"`` the gRPC one: ``meshlab.xds.echo.serve``;
a gateway, meshlab's gateway proxy, reads its ``config`` file: ``meshlab.gateway.proxy.run``; a
sidecar with ``xds`` takes its configuration from a control plane, one with ``dataplane`` serves HTTP
by the listener in that file: ``meshlab.lab.sidecar.run``).

    launch       run the kubelet for some processes; the started ones, recorded by PID and start time
    wait_ready   until every process's log says it is ready (a traceback or the time limit: LabError)
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import time
import traceback
from pathlib import Path

from meshlab.ebpf.datapath import join_cgroup
from meshlab.lab import apps, hops, sidecar
from meshlab.lab.netns import Host, LabError, NetNS
from meshlab.lab.processes import ProcessRecord, record
from meshlab.lab.spec import READY_TIMEOUT_S


def launch(host: Host, processes: list[dict]) -> list[tuple[str, ProcessRecord]]:
    """Start ``processes`` (specs as above) with one kubelet run on ``host``; (pod, record) of each."""
    done = subprocess.run(host.argv([sys.executable, "-m", "meshlab.lab.kubelet"]), input=json.dumps({"processes": processes}),
                          capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise LabError(f"starting the pods' processes failed: {done.stderr.strip()[-1500:]}")
    return [(started["pod"], record(started["pid"], started["role"])) for started in json.loads(done.stdout)]


def wait_ready(processes: list[dict], where: Path, timeout: float = READY_TIMEOUT_S) -> None:
    """Wait until each process's log (its spec's ``log``) says it is listening."""
    deadline = time.monotonic() + timeout
    waiting = {(spec["pod"], spec["role"]): Path(spec["log"]) for spec in processes}
    while waiting:
        for (pod, role), log in list(waiting.items()):
            text = log.read_text() if log.exists() else ""
            if hops.started(text):
                del waiting[(pod, role)]
            elif failure := hops.start_failure(text):
                raise LabError(f"the {role} of pod {pod} failed to start:\n{failure}")
        if waiting and time.monotonic() > deadline:
            names = ", ".join(f"{role} of {pod}" for pod, role in sorted(waiting))
            raise LabError(f"not ready within {timeout:.0f} s: {names}; see their logs in {where}")
        if waiting:
            time.sleep(0.005)


def _child(spec: dict) -> None:
    os.setsid()
    log = os.open(spec["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    os.close(null)
    sys.stdout = os.fdopen(1, "w", buffering=1)
    if spec.get("cgroup"):  # the eBPF datapath's programs see only sockets of processes in its cgroup
        join_cgroup(spec["cgroup"])
    NetNS(spec["netns"]).enter()
    if spec["role"] == "app" and spec.get("app") == "grpc":
        from meshlab.xds.echo import serve  # imported by main() before the fork

        serve(spec["pod"], spec["ports"])
    elif spec["role"] == "app":
        apps.run(spec["pod"], spec["ports"])
    elif spec["role"] == "agent":  # pilot-agent runs as the proxy's uid, as in the istio-proxy container
        if spec["uid"] is not None:
            os.setgroups([])
            os.setgid(spec["gid"])
            os.setuid(spec["uid"])
        os.execve(spec["argv"][0], spec["argv"], {**os.environ, **spec.get("env", {})})
    elif spec["role"] == "collector":
        from meshlab.telemetry.collector import serve  # imported by main() before the fork

        serve()
    elif spec["role"] == "gateway":
        from meshlab.gateway import proxy  # imported by main() before the fork

        proxy.run(Path(spec["config"]), sidecar.new_event_loop)
    else:
        source = None if spec["role"] == "node-proxy" else sidecar.INBOUND_PASSTHROUGH_SOURCE
        services = Path(spec["services"]) if spec.get("services") else None
        dataplane = Path(spec["dataplane"]) if spec.get("dataplane") else None
        sidecar.run(spec["pod"], services, spec["uid"], spec["gid"], inbound_source=source, mark=spec.get("mark"), xds=spec.get("xds"),
                    dataplane=dataplane)


def main() -> int:
    specs = json.load(sys.stdin)["processes"]
    if any(spec["role"] == "gateway" for spec in specs):
        importlib.import_module("meshlab.gateway.proxy")  # once, before forking: each gateway starts without importing
    if any(spec.get("app") == "grpc" for spec in specs):
        importlib.import_module("meshlab.xds.echo")  # gRPC imported, not started, before the fork
    if any(spec.get("xds") for spec in specs):
        importlib.import_module("meshlab.lab.xdsclient")  # gRPC too: imported, not started, before the fork
    if any(spec.get("dataplane") for spec in specs):
        importlib.import_module("meshlab.lab.dataplane")  # the HTTP side: h11, protobuf, wasmtime
    if any(spec["role"] == "collector" for spec in specs):
        importlib.import_module("meshlab.telemetry.collector")
    started = []
    for spec in specs:
        if spec["role"] == "agent":  # the agent drains and ends its pod's proxy: it is told the sidecar's PID
            sidecar = next(s["pid"] for s in started if s["pod"] == spec["pod"] and s["role"] == "sidecar")
            spec = {**spec, "argv": [*spec["argv"], "--proxy-pid", str(sidecar)]}
        pid = os.fork()
        if pid == 0:
            try:
                _child(spec)
                os._exit(0)
            except BaseException:
                traceback.print_exc()
                sys.stdout.flush()
                os._exit(1)
        started.append({"pod": spec["pod"], "role": spec["role"], "pid": pid})
    json.dump(started, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
