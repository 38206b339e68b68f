"""What the live tests must leave as they found it: the lab's leftovers by prefix, and the host's own
netfilter state. Read by the session check in conftest.py and by tests that check it themselves; and
the crash test every composition gets (``cleanup_after_kill_9``)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from meshlab.lab.rootless import HOLDER_NAME
from meshlab.lab.spec import STATE_ROOT
from meshlab.lab.state import read_state, state_dir
from meshlab.lab.teardown import cleanup

#: Every prefix the live tests use starts with "ml".
TEST_PREFIX = "ml"


def leftovers() -> list[str]:
    namespaces = Path("/run/netns")
    found = [f"namespace {path.name}" for path in namespaces.iterdir() if path.name.startswith(TEST_PREFIX)] if namespaces.is_dir() else []
    found += [f"state folder {path}" for path in STATE_ROOT.glob(f"{TEST_PREFIX}*")] if STATE_ROOT.exists() else []
    found += [f"rootless state folder {path}" for path in Path("/tmp").glob(f"meshlab-[0-9]*/{TEST_PREFIX}*")]
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    found += [f"link {line.split(':')[1].strip()}" for line in links.splitlines() if line.split(":")[1].strip().startswith(f"{TEST_PREFIX}-")]
    found += [f"mount {line.split()[1]}" for line in Path("/proc/mounts").read_text().splitlines() if line.split()[1].startswith(f"{STATE_ROOT}/{TEST_PREFIX}")]
    for hierarchy in (Path("/sys/fs/cgroup"), Path("/sys/fs/cgroup/unified")):
        found += [f"cgroup {path}" for path in hierarchy.glob(f"{TEST_PREFIX}*-pods")] if hierarchy.is_dir() else []
    programs = subprocess.run(["bpftool", "prog", "show"], capture_output=True, text=True).stdout if shutil.which("bpftool") else ""
    found += [f"BPF program {name}" for name in re.findall(r"name (mesh_\w+)", programs)]
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            argv = cmdline.read_bytes()
            if b"meshlab.lab.kubelet" in argv:
                found.append(f"process {cmdline.parent.name} (a pod's app or sidecar)")
            elif HOLDER_NAME.encode() in argv:
                found.append(f"process {cmdline.parent.name} (a rootless lab's namespace holder)")
        except OSError:
            pass
    return found


def host_ruleset() -> str:
    """The host's own netfilter state (this process's namespace), which no test may change."""
    tools = [["iptables-save"], ["ip6tables-save"], ["nft", "list", "ruleset"]]
    outputs = [subprocess.run(argv, capture_output=True, text=True).stdout for argv in tools if shutil.which(argv[0])]
    return "\n".join(line for output in outputs for line in output.splitlines() if not line.startswith("#"))


def cleanup_after_kill_9(build: str, prefix: str) -> None:
    """``build`` (Python that brings a composition up with ``prefix``) runs in a child that is killed with
    SIGKILL once up: its pods and processes must outlive it, and ``cleanup(prefix)`` must then stop every
    process the state file recorded and leave nothing of the prefix behind."""
    script = f"import time\n{build}\nprint('up', flush=True)\ntime.sleep(600)"
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "up", child.stderr.read()[-800:]
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=10)
        assert any(prefix in item for item in leftovers()), "the pods outlive the Python that built them"
        started = read_state(state_dir(prefix)).processes
        assert started and any(process.alive() for _, process in started)
        cleanup(prefix)
        assert [item for item in leftovers() if prefix in item] == [] and not any(process.alive() for _, process in started)
    finally:
        if child.poll() is None:
            child.kill()
        cleanup(prefix)
