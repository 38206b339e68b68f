"""A classroom's system accounts: one per student and one for the instructor, made and removed by meshlab.

JupyterHub's local spawner starts each student's server as that student's own Linux user, so the kernel
enforces what one student may read of another: homes are made with mode 0700 (Debian's ``useradd -m``
would make them 0755, readable by every other student: classroom.md). Every account carries the prefix
``ml`` (``mlstudent01``.., ``mlinstructor``), and only accounts this classroom recorded are ever removed.

    STUDENT_PREFIX, INSTRUCTOR   the account names
    student_names     ``mlstudent01``.. for N students
    ClassroomAccountError  an account that cannot be made or is already there (another class's?)
    create            add a system user with a private home; refuses a name that exists
    remove            end the user's processes, then ``userdel -r`` (home and mail spool)
    processes_of      the PIDs of a user's processes (what ``remove`` ends, what status sums)
"""

from __future__ import annotations

import os
import pwd
import signal
import subprocess
import time
from pathlib import Path

from meshlab.procfs import running, running_with

STUDENT_PREFIX = "mlstudent"
INSTRUCTOR = "mlinstructor"
MAX_STUDENTS = 99  # two digits in the names; far beyond what one host holds (benchmarks/bench_classroom.py)
COMMENT = "meshlab classroom"  # the GECOS field: what makes an account recognisably the classroom's


class ClassroomAccountError(RuntimeError):
    """A system account that cannot be created or removed; the message says which and why."""


def student_names(count: int) -> list[str]:
    if not 1 <= count <= MAX_STUDENTS:
        raise ClassroomAccountError(f"--students {count}: a classroom has 1 to {MAX_STUDENTS} students")
    return [f"{STUDENT_PREFIX}{number:02d}" for number in range(1, count + 1)]


def exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def create(name: str) -> pwd.struct_passwd:
    """A system user with a shell, its own group and a home only it can read (HOME_MODE 0700)."""
    if exists(name):
        raise ClassroomAccountError(f"the account {name} already exists: another classroom's? "
                                    "`meshlab classroom down` removes a classroom's accounts; otherwise remove it with userdel -r")
    done = subprocess.run(["useradd", "--create-home", "--key", "HOME_MODE=0700", "--user-group", "--shell", "/bin/bash",
                           "--comment", COMMENT, name], capture_output=True, text=True)
    if done.returncode != 0:
        raise ClassroomAccountError(f"useradd {name} failed: {done.stderr.strip()}")
    account = pwd.getpwnam(name)
    Path(account.pw_dir).chmod(0o700)  # whatever login.defs says
    return account


def processes_of(uid: int) -> list[int]:
    """PIDs of the running processes whose real user is ``uid``."""
    return running_with("Uid", uid)


def remove(name: str, grace: float = 5.0) -> None:
    """End the account's processes (SIGTERM, then SIGKILL after ``grace`` seconds), then delete it with
    its home. Only a classroom account (its GECOS says so) is removed."""
    try:
        account = pwd.getpwnam(name)
    except KeyError:
        return
    if account.pw_gecos != COMMENT:
        raise ClassroomAccountError(f"{name} is not a meshlab classroom account (its comment is {account.pw_gecos!r}); left alone")
    _end(processes_of(account.pw_uid), grace)
    done = subprocess.run(["userdel", "--remove", name], capture_output=True, text=True)
    if done.returncode not in (0, 12):  # 12: the home could not be removed completely (reported below)
        raise ClassroomAccountError(f"userdel --remove {name} failed: {done.stderr.strip()}")
    if Path(account.pw_dir).exists():
        raise ClassroomAccountError(f"{account.pw_dir} is still there after userdel --remove {name}: {done.stderr.strip()}")


def _end(pids: list[int], grace: float) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + grace
        while (pids := [pid for pid in pids if running(pid)]) and time.monotonic() < deadline:
            time.sleep(0.05)
        if not pids:
            return

