"""The live lab without root: a user namespace in which the reader is root, holding the lab.

Linux lets an unprivileged user create a user namespace and, owned by it, network and mount
namespaces that the user administers (CAP_NET_ADMIN and CAP_SYS_ADMIN there, nothing outside).
One holder process (``unshare --user --map-root-user --net --mount``) keeps them open; it mounts a
tmpfs on /run, so that ``ip netns`` can keep its namespace files in /run/netns, and every lab
command enters it with nsenter (``meshlab.lab.netns.Host``). Nodes and pods are namespaces created
inside; nothing changes on the machine itself.

What differs without root, and why:

- Only the caller's own uid is mapped (to 0), so the proxy cannot become uid 1337, and Istio's
  ``-m owner --uid-owner 1337`` rules cannot even be loaded (the kernel answers "Invalid
  argument" for an unmapped uid). The proxy marks its own sockets instead (SO_MARK, which
  CAP_NET_ADMIN in the namespace allows) and the rules match ``-m mark --mark 0x539`` where Istio
  matches the owner: ``owner_as_mark``. The walk and the chains are otherwise Istio's.
- The eBPF datapath needs root outside (loading programs, the cgroup v2 hierarchy): iptables only.
- The lab's state folder is ``/tmp/meshlab-<uid>`` (private to the user) instead of /run/meshlab.

    PROXY_MARK       the mark the rootless proxy puts on its sockets (1337 = 0x539)
    unavailable      why this user cannot run a rootless lab here, or None (FIX: what to do)
    owner_as_mark    Istio's owner matches rewritten as matches on the proxy's mark
    start_holder     the holder process, recorded by PID and start time
    holder_of        the running holder recorded in a state folder, or None
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from meshlab.lab.netns import Host, LabError
from meshlab.lab.processes import ProcessRecord, record

PROXY_MARK = 1337
HOLDER_FILE = "holder.json"
HOLDER_NAME = "meshlab-lab-holder"
#: What the holder runs inside its new namespaces: /run becomes its own (for ip netns) and lo comes
#: up; it says so, then waits for a signal as a process whose command line names it.
_SETUP = "mount -t tmpfs -o mode=0755 meshlab-run /run && mkdir /run/netns && ip link set lo up"
_WAIT = f"exec {shlex.quote(sys.executable)} -c 'import signal; signal.pause()' {HOLDER_NAME}"
_SYSCTLS = ("user.max_user_namespaces", "kernel.unprivileged_userns_clone", "kernel.apparmor_restrict_unprivileged_userns")


#: What makes a rootless lab possible where ``unavailable`` says it is not.
FIX = ("run as root (sudo), or allow unprivileged user namespaces: sysctl user.max_user_namespaces > 0, and on "
       "Debian/Ubuntu kernels kernel.unprivileged_userns_clone=1 and kernel.apparmor_restrict_unprivileged_userns=0")


def unavailable() -> str | None:
    """Why a rootless lab cannot run for this user on this machine (None: it can), with the fix."""
    missing = [tool for tool in ("unshare", "nsenter", "ip", "iptables-restore", "sh", "mount") if shutil.which(tool) is None]
    if missing:
        return f"missing {', '.join(missing)} (Debian packages util-linux, iproute2, iptables)"
    done = subprocess.run(["unshare", "--user", "--map-root-user", "--net", "--mount", "--", "sh", "-c", _SETUP],
                          capture_output=True, text=True, timeout=30)
    if done.returncode == 0:
        return None
    settings = []
    for name in _SYSCTLS:
        path = Path("/proc/sys") / name.replace(".", "/")
        if path.exists():
            settings.append(f"{name}={path.read_text().strip()}")
    return f"this kernel refused an unprivileged user namespace ({done.stderr.strip() or 'exit ' + str(done.returncode)}); settings: {', '.join(settings) or 'none readable'}"


def owner_as_mark(restore_text: str, uids: list[str], gids: list[str], mark: int = PROXY_MARK) -> str:
    """Istio's rules with each match on the proxy's uid or gid (``-m owner [!] --uid-owner U``)
    replaced by the same match on the proxy's socket mark (``-m mark [!] --mark 0x539``).

    Only the proxy marks its sockets, so "owned by the proxy" and "carries the proxy's mark" select
    the same packets; every other rule, and the order of all rules, stays Istio's."""
    owners = "|".join(re.escape(value) for value in [*uids, *gids])

    def as_mark(match: re.Match) -> str:
        return f"-m mark {match.group(1) or ''}--mark {mark:#x}"

    return re.sub(rf"-m owner (! )?--(?:uid|gid)-owner (?:{owners})(?= |$)", as_mark, restore_text, flags=re.MULTILINE)


def start_holder(state_dir: Path) -> Host:
    """Start the process that holds the lab's user, mount and network namespaces; record it in
    ``state_dir`` (so ``cleanup`` finds it after a crash) and return the host it provides."""
    holder = subprocess.Popen(["unshare", "--user", "--map-root-user", "--net", "--mount", "--", "sh", "-c", f"{_SETUP} && echo ready && {_WAIT}"],
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    if holder.stdout.readline().strip() != "ready":
        holder.kill()
        raise LabError(f"the user namespace for a rootless lab could not be set up: {holder.communicate()[1].strip()}; "
                       f"meshlab doctor says what this machine allows")
    process = record(holder.pid, "holder")
    (state_dir / HOLDER_FILE).write_text(json.dumps({"pid": process.pid, "start_time": process.start_time}))
    return Host(process.pid)


def holder_of(state_dir: Path) -> ProcessRecord | None:
    """The holder recorded in ``state_dir``, if it is still the same running process."""
    try:
        saved = json.loads((state_dir / HOLDER_FILE).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    process = ProcessRecord(saved["pid"], saved["start_time"], "holder")
    return process if process.alive() else None
