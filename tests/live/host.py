"""What the live tests must leave as they found it: the lab's leftovers by prefix, and the host's own
netfilter state. Read by the session check in conftest.py and by tests that check it themselves."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from meshlab.lab.rootless import HOLDER_NAME
from meshlab.lab.spec import STATE_ROOT

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
