"""Processes the lab started, remembered by PID *and* start time, so a reused PID is never killed.

    ProcessRecord   pid, start time (clock ticks since boot, /proc/PID/stat field 22) and role
    record          a ProcessRecord for a PID just started
    stop            SIGTERM, wait, then SIGKILL, only if the PID is still the same process
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass

from meshlab.procfs import start_time


@dataclass(frozen=True)
class ProcessRecord:
    pid: int
    start_time: int
    role: str

    def alive(self) -> bool:
        return start_time(self.pid) == self.start_time


def record(pid: int, role: str) -> ProcessRecord:
    started = start_time(pid)
    if started is None:
        raise ProcessLookupError(f"process {pid} ({role}) exited right after it started")
    return ProcessRecord(pid, started, role)


def stop(process: ProcessRecord, grace: float = 2.0) -> None:
    """End a process the lab started; a PID now used by another process is left alone."""
    if not process.alive():
        return
    os.kill(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not process.alive():
            return
        time.sleep(0.02)
    if process.alive():
        os.kill(process.pid, signal.SIGKILL)
