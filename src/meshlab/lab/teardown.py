"""Removing a lab: what it recorded and what carries its prefix, nothing else (``down`` and, after a
crash, ``cleanup``: the same operation).

    cleanup   stop the prefix's processes, delete its namespaces, cgroup, BPF pins and state folder
"""

from __future__ import annotations

import os
import shutil

from meshlab.ebpf.datapath import EbpfDatapath, EbpfError
from meshlab.lab import rootless
from meshlab.lab.netns import MACHINE, Host, LabError, NetNS
from meshlab.lab.processes import ProcessRecord, record, stop
from meshlab.lab.spec import check_prefix
from meshlab.lab.state import read_state, state_dir


def cleanup(prefix: str, recorded: list[ProcessRecord] | None = None) -> dict:
    """Remove everything carrying ``prefix``: recorded processes (state file or ``recorded``), any
    process still inside the prefix's namespaces, the namespaces, the state folder and, for a lab
    without root, the process holding its user namespace (the namespaces go with it)."""
    folder = state_dir(check_prefix(prefix))
    processes = list(recorded or [])
    if state := read_state(folder):
        processes += [process for _, process in state.processes]
    holder = rootless.holder_of(folder)
    host = Host(holder.pid) if holder else MACHINE
    namespaces = host.with_prefix(prefix) if holder or os.geteuid() == 0 else []
    for name in namespaces:  # processes started inside our namespaces (e.g. by `lab exec`)
        for pid in NetNS(name, host).pids():
            try:
                processes.append(record(pid, "in-namespace"))
            except ProcessLookupError:
                pass
    stopped = 0
    for process in dict.fromkeys(processes):
        if process.pid != os.getpid() and process.alive():
            stop(process)
            stopped += 1
    if os.geteuid() == 0:
        try:
            EbpfDatapath(folder, prefix).down()  # after the processes: a cgroup can only go once it is empty
        except EbpfError as error:
            raise LabError(f"cleanup of {prefix!r}: {error}") from None
    for name in namespaces:
        host.delete(name)
    if holder:
        stop(holder)
    shutil.rmtree(folder, ignore_errors=True)
    return {"processes_stopped": stopped, "namespaces_deleted": namespaces}
