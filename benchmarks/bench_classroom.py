"""A classroom's figures: how long a student waits for their server, what one student with a live chapter
costs in memory, and how many such students this host holds.

Run as root from the checkout: ``.venv/bin/python benchmarks/bench_classroom.py [STUDENTS]`` (default 4).
One real classroom (``meshlab.classroom.hub``: accounts, JupyterHub, configurable-http-proxy):
1. ``classroom up``: accounts, homes, the labs' nbgrader course and the hub, timed;
2. each student's server started through the hub's API, one after the other, until the hub says it is
   ready (the wait a student has after logging in), median and max;
3. every student then runs chapter 02 at the same time, as themselves, in a kernel of their own, up to
   and including its live section (its lab of three pods stays up: the cells after ``lab.down()`` are
   not run); the memory each account then holds is the resident memory (RSS, /proc) of its processes
   (its JupyterLab, the kernel, the rootless lab's sidecars, apps and namespace holder), minus the
   script that drives the kernel (a browser does that in class). The host's MemAvailable before the
   classroom, divided by the largest per-student figure, is how many students it holds by memory; the
   load average while the chapters ran says how busy the two cores were.
Everything is removed at the end (``classroom down``).
"""

from __future__ import annotations

import os
import pwd
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from meshlab.classroom import accounts, hub
from meshlab.procfs import running_with, status_field

ROOT = Path(__file__).resolve().parents[1]
CHAPTER = "02-transparent-interception.ipynb"
#: Runs chapter 02 in a kernel of the student's, up to its ``lab.down()`` cell, says "ready" and waits:
#: the kernel, and the lab it started, live until stdin closes.
DRIVER = """
import sys, nbformat
from nbclient import NotebookClient
notebook = nbformat.read(sys.argv[1], as_version=4)
cells = notebook.cells[:next(i for i, c in enumerate(notebook.cells) if "lab.down()" in c.source)]
notebook.cells = cells
client = NotebookClient(notebook, timeout=300, kernel_name="python3")
with client.setup_kernel():
    for index, cell in enumerate(notebook.cells):
        client.execute_cell(cell, index)
    print("ready", flush=True)
    sys.stdin.read()
"""


def memory_available_mb() -> float:
    line = next(line for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemAvailable:"))
    return int(line.split()[1]) / 1024


def rss_mb(pids: list[int]) -> float:
    return sum(int(status_field(pid, "VmRSS") or 0) for pid in pids) / 1024


def main(students: int) -> int:
    if os.geteuid() != 0:
        print("run as root: a classroom makes system accounts", file=sys.stderr)
        return 2
    available = memory_available_mb()
    started = time.monotonic()
    room, _ = hub.up(students, 18765, "127.0.0.1", ROOT)
    up_s = time.monotonic() - started
    archive = Path(tempfile.mkdtemp(prefix="bench-classroom-")) / "class.tar.gz"
    drivers: list[subprocess.Popen] = []
    try:
        spawns = [hub.start_server(name) for name in room.students]
        bin_dir = Path(sys.executable).parent
        for name in room.students:
            home = pwd.getpwnam(name).pw_dir
            drivers.append(subprocess.Popen(
                ["runuser", "-u", name, "--", "env", f"HOME={home}", f"PATH={bin_dir}:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
                 str(sys.executable), "-c", DRIVER, f"{home}/book/{CHAPTER}"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd="/"))
        ran = time.monotonic()
        for driver, name in zip(drivers, room.students):
            line = driver.stdout.readline()
            if line.strip() != "ready":
                raise RuntimeError(f"{name}'s chapter 02 did not run: {driver.stderr.read()[-2000:]}")
        chapters_s = time.monotonic() - ran
        load = os.getloadavg()[0]
        per_student = {}
        for driver, name in zip(drivers, room.students):
            uid = pwd.getpwnam(name).pw_uid
            driving = {driver.pid, *running_with("PPid", driver.pid)}  # runuser and the driving python
            pids = [pid for pid in accounts.processes_of(uid) if pid not in driving]
            per_student[name] = (rss_mb(pids), len(pids))
    finally:
        for driver in drivers:
            driver.stdin.close()
            driver.wait(timeout=120)
        hub.down(archive)
        archive.unlink(missing_ok=True)
        archive.parent.rmdir()

    worst = max(mb for mb, _ in per_student.values())
    print(f"classroom of {students} students on {os.cpu_count()} cores, {available / 1024:.1f} GB available before it started")
    print(f"1. classroom up (accounts, homes, the labs' nbgrader course, hub ready): {up_s:.1f} s")
    print(f"2. a student's server, from the hub's start request to ready: median {statistics.median(spawns):.1f} s, "
          f"max {max(spawns):.1f} s (each started alone)")
    print(f"3. chapter 02 run to the end of its live section by all {students} at once: {chapters_s:.1f} s; "
          f"1-minute load average then {load:.1f}")
    for name, (mb, count) in per_student.items():
        print(f"   {name}: {mb:6.0f} MB resident in {count} processes (JupyterLab, kernel, rootless lab of 3 pods)")
    print(f"   by memory this host holds about {int(available // worst)} such students "
          f"({available:.0f} MB available / {worst:.0f} MB for the largest); the CPU is the tighter limit when "
          "many run live sections at once (see the load average)")
    return 0


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]) if len(sys.argv) > 1 else 4))
