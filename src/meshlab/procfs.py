"""What /proc says about a process, read the same way by the live lab (to stop only the processes it
started) and by workload attestation (to refuse a reused PID).

    start_time   a process's start time in clock ticks since boot, None once it has exited
    status_field a field of /proc/PID/status (Uid, VmRSS, ...), None once the process has exited
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
