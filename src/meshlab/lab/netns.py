"""Network namespaces the lab owns: create, enter, run commands in, delete.

A pod is simply a network namespace with ``lo`` up and one veth to its node's bridge; a node is
a namespace holding that bridge. Every namespace the lab creates is named ``<prefix>-<name>``,
and nothing without the prefix is ever touched.

    NetNS           one named namespace: argv(), run(), enter() (for a thread or a forked child)
    create          ``ip netns add`` with ``lo`` up
    ip_batch        several ``ip`` commands inside one namespace, one process
    delete          ``ip netns delete`` (idempotent)
    with_prefix     names of existing namespaces that carry a prefix
    run             run a command, raising LabError with its stderr on failure
"""

from __future__ import annotations

import ctypes
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

NETNS_DIR = Path("/run/netns")
CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


class LabError(RuntimeError):
    """The live lab could not do what was asked; the message says what and what to check."""


class LabUsageError(LabError, ValueError):
    """The request itself was wrong (a bad prefix, an unknown pod, a lab that is not running)."""


def run(argv: list[str], stdin: str | None = None, timeout: float = 30, check: bool = True) -> subprocess.CompletedProcess:
    try:
        done = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=timeout, check=False)
    except FileNotFoundError:
        raise LabError(f"{argv[0]} not found; meshlab doctor says what the live lab needs") from None
    except subprocess.TimeoutExpired:
        raise LabError(f"{' '.join(argv)} did not finish within {timeout:.0f} s") from None
    if check and done.returncode != 0:
        raise LabError(f"{' '.join(argv)} failed (exit {done.returncode}): {done.stderr.strip() or done.stdout.strip()}")
    return done


@dataclass(frozen=True)
class NetNS:
    name: str

    @property
    def path(self) -> Path:
        return NETNS_DIR / self.name

    def argv(self, command: list[str]) -> list[str]:
        """``command`` run inside this namespace."""
        return ["ip", "netns", "exec", self.name, *command]

    def run(self, command: list[str], stdin: str | None = None, timeout: float = 30, check: bool = True) -> subprocess.CompletedProcess:
        return run(self.argv(command), stdin, timeout, check)

    def enter(self) -> None:
        """Move the *calling thread* into this namespace (setns(2)); sockets it creates afterwards live here."""
        fd = os.open(self.path, os.O_RDONLY)
        try:
            if _libc.setns(fd, CLONE_NEWNET) != 0:
                error = ctypes.get_errno()
                raise LabError(f"setns into {self.name} failed: {os.strerror(error)}")
        finally:
            os.close(fd)

    def pids(self) -> list[int]:
        """Processes whose network namespace is this one."""
        done = run(["ip", "netns", "pids", self.name], check=False)
        return [int(pid) for pid in done.stdout.split()]


def create(name: str) -> NetNS:
    """A new namespace with ``lo`` up (REDIRECT delivers to 127.0.0.1, so loopback must work)."""
    run(["ip", "netns", "add", name])
    ip_batch(name, ["link set lo up"])
    return NetNS(name)


def ip_batch(namespace: str, commands: list[str]) -> None:
    """Several ``ip`` commands in one namespace with one process (``ip -n NS -batch -``)."""
    run(["ip", "-n", namespace, "-batch", "-"], stdin="\n".join(commands) + "\n")


def delete(name: str) -> None:
    if (NETNS_DIR / name).exists():
        run(["ip", "netns", "delete", name], check=False)


def with_prefix(prefix: str) -> list[str]:
    """Existing namespaces named ``<prefix>-...``."""
    if not NETNS_DIR.is_dir():
        return []
    return sorted(path.name for path in NETNS_DIR.iterdir() if path.name.startswith(f"{prefix}-"))
