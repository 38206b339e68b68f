"""Upstream programs run as servers from a folder of their own (SPIRE, etcd and kube-apiserver,
istiod): started with their output in ``<folder>/<role>.log``, each recorded by PID and start time
(a live lab records them too, so its cleanup stops them, also after this process died), waited for
until ready, and on exit stopped (SIGTERM, SIGKILL after GRACE), last started first, reaped, and the
folder removed.

    NotReady  a program exited or did not become ready in time; says which and how its log ends
    Daemons   the base: ``setup()`` starts what a subclass runs, ``with`` undoes it all, also when setup fails
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Self

from meshlab.lab.processes import ProcessRecord, record

#: Seconds a program has to exit after SIGTERM before it is killed.
GRACE = 2.0


class NotReady(RuntimeError):
    """A program exited or did not become ready; the message names it and ends with its log."""


class Daemons:
    def __init__(self, folder: Path, on_start: Callable[[ProcessRecord], None] = lambda process: None) -> None:
        """``on_start`` hears of each process as it starts."""
        self.folder, self.on_start = Path(folder), on_start
        self.processes: list[ProcessRecord] = []
        self.children: list[subprocess.Popen] = []  # what exit stops, last started first, and reaps

    def setup(self) -> None:
        """Start the programs (a subclass's work); the folder exists."""
        raise NotImplementedError

    def start(self, role: str, argv: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.Popen:
        with (self.folder / f"{role}.log").open("w") as log:  # the child keeps its own copy of the handle
            process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=cwd, start_new_session=True)
        self.children.append(process)
        try:
            self.processes.append(record(process.pid, role))
        except ProcessLookupError:
            return process  # it exited at once: wait_ready says so, with its log
        self.on_start(self.processes[-1])
        return process

    def wait_ready(self, role: str, process: subprocess.Popen, ready: Callable[[], bool], timeout: float,
                   poll: float = 0.2, error: type[Exception] = NotReady) -> None:
        """Until ``ready()``; ``error`` (naming the program, ending with its log) if it exits or times out."""
        deadline = time.monotonic() + timeout
        while not ready():
            if process.poll() is not None or time.monotonic() > deadline:
                why = f"exited with {process.returncode}" if process.returncode is not None else f"not ready within {timeout:.0f} s"
                said = (self.folder / f"{role}.log").read_text(errors="replace")[-1500:]
                raise error(f"{role} {why}; its log ends:\n{said}")
            time.sleep(poll)

    def __enter__(self) -> Self:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            self.setup()
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc) -> None:
        for child in reversed(self.children):  # our own children: Popen knows them (a PID is not reused before it reaps)
            if child.poll() is None:
                child.terminate()
                try:
                    child.wait(timeout=GRACE)
                except subprocess.TimeoutExpired:
                    child.kill()
                    child.wait()
        self.processes.clear()
        self.children.clear()
        shutil.rmtree(self.folder, ignore_errors=True)
