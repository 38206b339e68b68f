"""What /proc says about a process, read the same way by the live lab (to stop only the processes it
started) and by workload attestation (to refuse a reused PID).

    start_time   a process's start time in clock ticks since boot, None once it has exited
    status_field a field of /proc/PID/status (Uid, VmRSS, ...), None once the process has exited
    running      whether a process has not ended (exited, or a zombie)
    running_with the running processes (not zombies) whose status field has a value: a user's, a parent's children
"""

from __future__ import annotations

from pathlib import Path


def start_time(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may contain spaces; fields after the last ')' are fixed.
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] == "Z":
        return None
    return int(fields[19])


def status_field(pid: int, name: str) -> str | None:
    """The first value of ``name`` in /proc/PID/status: ``Uid`` gives the real uid, ``VmRSS`` the resident
    memory in kB (absent for kernel threads and zombies)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith(f"{name}:"):
            return line.split()[1]
    return None


def running_with(name: str, value: int | str) -> list[int]:
    """PIDs of the running processes whose ``name`` field in /proc/PID/status is ``value`` (``Uid``: the real
    uid; ``PPid``: the children of a process). A zombie, ended and not yet reaped, holds nothing: left out."""
    return [int(entry.name) for entry in Path("/proc").iterdir()
            if entry.name.isdigit() and status_field(int(entry.name), name) == str(value) and running(int(entry.name))]


def running(pid: int) -> bool:
    """Whether ``pid`` is a process that has not ended (a zombie has)."""
    return status_field(pid, "State") not in (None, "Z")
