"""What /proc says about a process, read the same way by the live lab (to stop only the processes it
started) and by workload attestation (to refuse a reused PID).

    start_time   a process's start time in clock ticks since boot, None once it has exited
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
