"""Workload attestation: who is calling the Workload API, told by the kernel, not by the caller.

The agent never asks a workload who it is. It takes the caller's credentials from the Unix socket
itself (SO_PEERCRED: PID, uid, gid, recorded by the kernel at connect), then reads the rest from
/proc about that PID: supplementary groups, the executable's path and SHA-256, its network
namespace. Two attestors turn that into selectors, as SPIRE's do:

- unix: ``uid``, ``user``, ``gid``, ``group``, ``supplementary_gid``, ``supplementary_group``, and only
  when the agent is configured with ``discover_workload_path`` (off by default, as in SPIRE v1.13.3's
  unix attestor, pkg/agent/plugin/workloadattestor/unix) ``path`` and ``sha256``;
- k8s (for live-lab pods): the pod whose network namespace the process is in, as a kubelet would
  list it: ``ns``, ``sa``, ``node-name``, ``pod-uid``, ``pod-name``, ``pod-label``,
  ``container-name``, ``container-image``.

PIDs are reused. A caller could connect, hand the socket to another process and exit, and its PID
could then belong to someone else by the time the agent looks at /proc. SPIRE guards against that
by remembering the process's start time at connect and refusing when it differs later; so does
``Caller.check``.

    PeerCredentials     pid, uid, gid of a connected Unix socket's peer (SO_PEERCRED)
    Caller              credentials plus the process start time seen at accept; check() guards PID reuse
    AttestationError    the caller could not be attested (gone, reused PID)
    unix_selectors      the unix attestor
    PodAttestor         what a k8s attestor offers the agent (the live lab's is meshlab.lab.identity.LabPods)
"""

from __future__ import annotations

import grp
import hashlib
import os
import pwd
import socket
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from meshlab.identity.entries import Selector
from meshlab.procfs import start_time



class AttestationError(RuntimeError):
    """The caller cannot be identified safely; the message says why."""


@dataclass(frozen=True)
class PeerCredentials:
    pid: int
    uid: int
    gid: int


def peer_credentials(sock: socket.socket) -> PeerCredentials:
    """The connecting process as the kernel recorded it at connect(2)."""
    pid, uid, gid = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i")))
    return PeerCredentials(pid, uid, gid)


@dataclass(frozen=True)
class Caller:
    credentials: PeerCredentials
    start_time: int | None

    @classmethod
    def at_accept(cls, sock: socket.socket) -> Caller:
        credentials = peer_credentials(sock)
        return cls(credentials, start_time(credentials.pid))

    def check(self) -> None:
        """Refuse when the PID no longer names the process that connected: it exited, or the PID
        was reused by another process (whose start time then differs)."""
        pid = self.credentials.pid
        now = start_time(pid)
        if self.start_time is None or now is None:
            raise AttestationError(f"the calling process {pid} has exited; its connection cannot be attested")
        if now != self.start_time:
            raise AttestationError(f"PID {pid} now belongs to another process (started at tick {now}, not {self.start_time}): possible PID reuse")


_digests: dict[tuple[int, int, int], str] = {}


def _sha256(path: Path) -> str:
    """The executable's SHA-256, cached per (device, inode, mtime): an interpreter is megabytes."""
    info = path.stat()
    key = (info.st_dev, info.st_ino, info.st_mtime_ns)
    if key not in _digests:
        _digests[key] = hashlib.sha256(path.read_bytes()).hexdigest()
    return _digests[key]


def unix_selectors(caller: Caller, discover_workload_path: bool = False) -> set[Selector]:
    """SPIRE's unix attestor: the caller's ids and names, its supplementary groups, and with
    ``discover_workload_path`` its executable's path and SHA-256 (SPIRE keeps those behind that switch
    because reading another process's executable needs permissions an agent may not have)."""
    credentials = caller.credentials
    selectors = {Selector("unix", f"uid:{credentials.uid}"), Selector("unix", f"gid:{credentials.gid}")}
    try:
        selectors.add(Selector("unix", f"user:{pwd.getpwuid(credentials.uid).pw_name}"))
    except KeyError:
        pass
    try:
        selectors.add(Selector("unix", f"group:{grp.getgrgid(credentials.gid).gr_name}"))
    except KeyError:
        pass
    proc = Path(f"/proc/{credentials.pid}")
    try:
        groups = next(line for line in (proc / "status").read_text().splitlines() if line.startswith("Groups:")).split()[1:]
        for gid in groups:
            selectors.add(Selector("unix", f"supplementary_gid:{gid}"))
            try:
                selectors.add(Selector("unix", f"supplementary_group:{grp.getgrgid(int(gid)).gr_name}"))
            except KeyError:
                pass
        if discover_workload_path:
            executable = Path(os.readlink(proc / "exe"))
            selectors |= {Selector("unix", f"path:{executable}"), Selector("unix", f"sha256:{_sha256(proc / 'exe')}")}
    except OSError as error:
        raise AttestationError(f"cannot read /proc for the calling process {credentials.pid}: {error.strerror}") from None
    return selectors


class PodAttestor(Protocol):
    """A k8s workload attestor: the selectors of the pod and container a caller runs in (none when
    the caller is in no pod it knows). The agent needs nothing else from wherever pods live."""

    def selectors(self, caller: Caller) -> set[Selector]: ...
