"""Start a lab's pod processes fast: import once, then fork one child per app and sidecar.

Starting a fresh Python per process costs a tenth of a second or more each; forking a process
that has already imported the sidecar and the app costs a millisecond. Each child starts a new
session, sends its output to its log file, enters its pod's network namespace (setns), and runs;
a sidecar then drops to uid 1337 itself (or, in a lab without root, marks its sockets instead). This process prints the children's PIDs as JSON and
exits; the children live on until the lab stops them.

Run as ``python -m meshlab.lab.kubelet`` with the spec on standard input:
``{"processes": [{"role": "app"|"sidecar"|"node-proxy", "pod", "netns", "log", "ports", "uid", "gid", "mark", "services", "cgroup"}]}``.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from pathlib import Path

from meshlab.ebpf.datapath import join_cgroup
from meshlab.lab import apps, sidecar
from meshlab.lab.netns import NetNS


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
    if spec["role"] == "app":
        apps.run(spec["pod"], spec["ports"])
    else:
        source = None if spec["role"] == "node-proxy" else sidecar.INBOUND_PASSTHROUGH_SOURCE
        sidecar.run(spec["pod"], Path(spec["services"]), spec["uid"], spec["gid"], inbound_source=source, mark=spec.get("mark"))


def main() -> int:
    specs = json.load(sys.stdin)["processes"]
    started = []
    for spec in specs:
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
