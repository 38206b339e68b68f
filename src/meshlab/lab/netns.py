"""Network namespaces the lab owns: create, enter, run commands in, delete.

A pod is simply a network namespace with ``lo`` up and one veth to its node's bridge; a node is
a namespace holding that bridge. Every namespace the lab creates is named ``<prefix>-<name>``,
and nothing without the prefix is ever touched.

Where the namespaces live is a ``Host``: as root, this machine itself; without root, a user
namespace (with its own network and mount namespaces) that one holder process keeps open, which
every command enters with nsenter (``meshlab.lab.rootless``). The rest of the lab is the same.

    Host            where namespaces live: run(), argv(), create(), ip_batch(), delete(), with_prefix()
    NetNS           one named namespace: argv(), run(), enter() (for a thread or a forked child)
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
class Host:
    """The machine the lab's namespaces live on: this one (``holder`` None), or the user namespace
    held by process ``holder``, in which the calling user is root and the kernel lets them create
    namespaces, bridges and iptables rules without being root outside."""

    holder: int | None = None

    def argv(self, command: list[str]) -> list[str]:
        """``command`` run on this host: unchanged, or entered into the holder's user, mount and
        network namespaces. The caller keeps its credentials (the namespace maps its uid to 0, and
        refuses setgroups, which nsenter would otherwise call) and gains the namespace's capabilities."""
        if self.holder is None:
            return command
        return ["nsenter", f"--target={self.holder}", "--user", "--mount", "--net", "--preserve-credentials", "--", *command]

    def run(self, command: list[str], stdin: str | None = None, timeout: float = 30, check: bool = True) -> subprocess.CompletedProcess:
        return run(self.argv(command), stdin, timeout, check)

    def create(self, name: str) -> NetNS:
        """A new namespace with ``lo`` up (REDIRECT delivers to 127.0.0.1, so loopback must work)."""
        self.run(["ip", "netns", "add", name])
        self.ip_batch(name, ["link set lo up"])
        return NetNS(name, self)

    def ip_batch(self, namespace: str, commands: list[str]) -> None:
        """Several ``ip`` commands in one namespace with one process (``ip -n NS -batch -``)."""
        self.run(["ip", "-n", namespace, "-batch", "-"], stdin="\n".join(commands) + "\n")

    def delete(self, name: str) -> None:
        self.run(["ip", "netns", "delete", name], check=False)

    def with_prefix(self, prefix: str) -> list[str]:
        """Existing namespaces named ``<prefix>-...``."""
        if self.holder is None:
            names = [path.name for path in NETNS_DIR.iterdir()] if NETNS_DIR.is_dir() else []
        else:
            names = [line.split()[0] for line in self.run(["ip", "netns", "list"], check=False).stdout.splitlines() if line.strip()]
        return sorted(name for name in names if name.startswith(f"{prefix}-"))


#: This machine's own namespaces (what root uses).
MACHINE = Host()


@dataclass(frozen=True)
class NetNS:
    name: str
    host: Host = MACHINE

    def argv(self, command: list[str]) -> list[str]:
        """``command`` run inside this namespace."""
        return self.host.argv(["ip", "netns", "exec", self.name, *command])

    def run(self, command: list[str], stdin: str | None = None, timeout: float = 30, check: bool = True) -> subprocess.CompletedProcess:
        return run(self.argv(command), stdin, timeout, check)

    def enter(self) -> None:
        """Move the *calling thread* into this namespace (setns(2)); sockets it creates afterwards live here."""
        if self.host.holder is not None:
            raise LabError(f"{self.name} lives in a user namespace (a lab started without root): only processes started inside it can enter it")
        fd = os.open(NETNS_DIR / self.name, os.O_RDONLY)
        try:
            if _libc.setns(fd, CLONE_NEWNET) != 0:
                error = ctypes.get_errno()
                raise LabError(f"setns into {self.name} failed: {os.strerror(error)}")
        finally:
            os.close(fd)

    def pids(self) -> list[int]:
        """Processes whose network namespace is this one (PIDs as this machine numbers them: the
        lab makes no PID namespace)."""
        done = self.host.run(["ip", "netns", "pids", self.name], check=False)
        return [int(pid) for pid in done.stdout.split()]
