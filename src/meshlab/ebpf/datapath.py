"""Build, load, attach and remove meshlab's eBPF datapath (mesh.bpf.c) for one lab.

The lab owns everything here, under its state folder: a bpffs mount holding the pinned programs
and maps, a cgroup2 mount, and in it the cgroup ``<prefix>-pods`` that the pods' processes join
(cgroup programs only see sockets of processes in their cgroup). The object is compiled on first
use with ``clang -O2 -g -target bpf`` (``-g``: libbpf needs BTF for the maps) and loaded with
bpftool. Teardown works from whatever is left after a crash: removing the cgroup detaches its
programs, unmounting bpffs drops the pins, and with them the sockhash and its sk_msg program.

    COUNTERS        the counters map's entries, in order
    EbpfDatapath    up / down / stats / cgroup for one lab
    compile_object  mesh.bpf.c -> an object file, with the lab's CIDRs and ports
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import time
from importlib import resources
from pathlib import Path

COUNTERS = ("connect_rewrites", "sockhash_inserts", "redirected_messages", "passed_messages", "original_dst_answers")
#: program name (a function in mesh.bpf.c) -> bpftool cgroup attach type
CGROUP_PROGRAMS = {"mesh_connect4": "connect4", "mesh_sockops": "sock_ops", "mesh_getsockopt": "getsockopt"}


class EbpfError(RuntimeError):
    """A step of the eBPF datapath failed; the message names the step and what the tool said."""


def _run(argv: list[str], what: str) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    except FileNotFoundError:
        raise EbpfError(f"{what}: {argv[0]} is not installed (apt-get install clang libbpf-dev bpftool; meshlab doctor checks the ebpf stage)") from None
    if done.returncode != 0:
        said = "\n".join(line for line in (done.stderr or done.stdout).splitlines() if not line.startswith("Warning") and "libbpf strict" not in line)
        raise EbpfError(f"{what} failed: {' '.join(argv)}\n{said[-1500:]}")
    return done.stdout


def _ip_as_int(network: str) -> str:
    a, b, c, d = (int(part) for part in network.split("."))
    return hex((a << 24) | (b << 16) | (c << 8) | d)


def compile_object(output: Path, pod_net: str = "10.244.0.0", service_net: str = "10.96.0.0", proxy_uid: int = 1337, outbound_port: int = 15001) -> Path:
    """Compile mesh.bpf.c with the lab's /16 networks, proxy uid and outbound port."""
    source = resources.files("meshlab.ebpf") / "mesh.bpf.c"
    with resources.as_file(source) as path:
        _run(["clang", "-O2", "-g", "-target", "bpf", f"-I/usr/include/{platform.machine()}-linux-gnu",
              f"-DPOD_NET={_ip_as_int(pod_net)}", f"-DSERVICE_NET={_ip_as_int(service_net)}", f"-DPROXY_UID={proxy_uid}",
              f"-DOUTBOUND_PORT={outbound_port}", "-c", str(path), "-o", str(output)], "compiling mesh.bpf.c")
    return output


def _mounted(path: Path) -> bool:
    return subprocess.run(["mountpoint", "-q", str(path)], check=False).returncode == 0


class EbpfDatapath:
    def __init__(self, state_dir: Path, prefix: str) -> None:
        self.state_dir = state_dir
        self.bpffs = state_dir / "bpf"
        self.cgroup_mount = state_dir / "cgroup2"
        self.cgroup = self.cgroup_mount / f"{prefix}-pods"

    @property
    def programs(self) -> Path:
        return self.bpffs / "progs"

    @property
    def maps(self) -> Path:
        return self.bpffs / "maps"

    def up(self) -> None:
        """Compile, mount, create the cgroup, load and attach. Undone by down() (also half-way)."""
        obj = compile_object(self.state_dir / "mesh.bpf.o")
        for mount, kind in ((self.bpffs, "bpf"), (self.cgroup_mount, "cgroup2")):
            mount.mkdir(parents=True, exist_ok=True)
            _run(["mount", "-t", kind, kind, str(mount)], f"mounting {kind} at {mount}")
        self.cgroup.mkdir()
        _run(["bpftool", "prog", "loadall", str(obj), str(self.programs), "pinmaps", str(self.maps)], "loading the eBPF programs")
        for program, attach_type in CGROUP_PROGRAMS.items():
            _run(["bpftool", "cgroup", "attach", str(self.cgroup), attach_type, "pinned", str(self.programs / program)], f"attaching {program}")
        _run(["bpftool", "prog", "attach", "pinned", str(self.programs / "mesh_sk_msg"), "msg_verdict", "pinned", str(self.maps / "sock_pairs")], "attaching mesh_sk_msg")
        ids = [json.loads(_run(["bpftool", "-j", "prog", "show", "pinned", str(path)], "reading program ids"))["id"] for path in sorted(self.programs.iterdir())]
        self.ids_file.write_text(json.dumps(ids))

    @property
    def ids_file(self) -> Path:
        return self.state_dir / "ebpf-program-ids.json"

    def _wait_until_freed(self, timeout: float = 5.0) -> None:
        """The kernel frees detached programs asynchronously; wait so that "down" means gone."""
        try:
            ids = json.loads(self.ids_file.read_text())
        except (OSError, ValueError):
            return
        deadline = time.monotonic() + timeout
        while ids and time.monotonic() < deadline:
            ids = [i for i in ids if subprocess.run(["bpftool", "prog", "show", "id", str(i)], capture_output=True, check=False).returncode == 0]
            if ids:
                time.sleep(0.05)
        if ids:
            raise EbpfError(f"BPF programs {ids} are still loaded {timeout:.0f} s after the lab detached them")
        self.ids_file.unlink()

    def down(self) -> None:
        """Remove the cgroup (detaching its programs), the pins and both mounts; idempotent.
        Processes must have left the cgroup already (the lab stops them first)."""
        if self.cgroup.is_dir():
            self._remove_cgroup()
        for mount in (self.bpffs, self.cgroup_mount):
            if _mounted(mount):
                _run(["umount", str(mount)], f"unmounting {mount}")
            if mount.is_dir():
                mount.rmdir()
        self._wait_until_freed()

    def _remove_cgroup(self, timeout: float = 5.0) -> None:
        """rmdir once the cgroup is empty: processes that were just killed keep it busy until they are reaped."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.cgroup.rmdir()
                return
            except OSError as error:
                if time.monotonic() > deadline:
                    raise EbpfError(f"cannot remove cgroup {self.cgroup}: {error.strerror} (processes still in it: {self.cgroup_pids()})") from None
                time.sleep(0.05)

    def cgroup_pids(self) -> list[int]:
        try:
            return [int(pid) for pid in (self.cgroup / "cgroup.procs").read_text().split()]
        except OSError:
            return []

    def stats(self) -> dict[str, int]:
        """The counters map, by name."""
        dumped = json.loads(_run(["bpftool", "-j", "map", "dump", "pinned", str(self.maps / "counters")], "reading the counters"))
        values = {entry["formatted"]["key"]: entry["formatted"]["value"] for entry in dumped}
        return {name: int(values.get(index, 0)) for index, name in enumerate(COUNTERS)}

    def attached(self) -> list[str]:
        """Program names attached to the lab's cgroup (bpftool cgroup show)."""
        shown = json.loads(_run(["bpftool", "-j", "cgroup", "show", str(self.cgroup)], "listing the cgroup's programs") or "[]")
        return sorted(entry["name"] for entry in shown)


def join_cgroup(cgroup: str) -> None:
    """Move the calling process into ``cgroup`` (a forked pod process does this before it runs)."""
    with open(os.path.join(cgroup, "cgroup.procs"), "w") as procs:
        procs.write(str(os.getpid()))
