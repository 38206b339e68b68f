"""Can this machine run the kind stage? Each probe either passes (and says what it found) or names
the problem and its exact fix; ``meshlab doctor`` shows them as the kind stage's line.

Probes: the architecture (kind's node images are amd64 and arm64), a reachable Docker daemon and what
it has (CPUs and memory as Docker sees them, which on Docker Desktop is its VM, not the host), kind,
kubectl and istioctl and their versions against the pins, and on Linux the inotify limits kind's
known-issues page asks for (too low, and pods such as istio-cni fail with "too many open files").
"""

from __future__ import annotations

import os
import platform
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from meshlab.doctor import probe
from meshlab.kind.runner import INSTALL
from meshlab.kind.versions import ISTIO_VERSION, KIND_VERSION, KUBERNETES_VERSION, parse_version

#: Istio's kind platform guide asks Docker for at least 8 GB and 4 CPUs.
MIN_CPUS = 4
MIN_MEMORY_GB = 8
#: kind's known issues ("Pod errors due to too many open files").
INOTIFY = {"max_user_watches": 524288, "max_user_instances": 512}
ARCHITECTURES = {"x86_64", "amd64", "aarch64", "arm64"}
INOTIFY_DIR = Path("/proc/sys/fs/inotify")


@dataclass(frozen=True)
class Finding:
    problem: str
    fix: str


def host_memory_gb() -> float:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30


def _docker(found: list[str], problems: list[Finding]) -> tuple[int, float, str]:
    """CPUs and memory as Docker sees them (or this machine's, when Docker cannot say), and whose."""
    cpus, memory = os.cpu_count() or 1, host_memory_gb()
    if shutil.which("docker") is None:
        problems.append(Finding("docker is not installed", INSTALL["docker"]))
        return cpus, memory, "on this machine"
    ok, said = probe(["docker", "info", "--format", "{{.ServerVersion}} {{.NCPU}} {{.MemTotal}}"], timeout=15)
    if not ok:
        problems.append(Finding(f"kind needs a running Docker daemon: docker info failed ({said})",
                                "start the Docker daemon (systemctl start docker, or open Docker Desktop); `docker info` must work as this user"))
        return cpus, memory, "on this machine"
    parts = said.split()
    found.append(f"Docker {parts[0] if parts else '?'}")
    if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
        return int(parts[1]), int(parts[2]) / 2**30, "for Docker"
    return cpus, memory, "on this machine"


def _version(tool: str, argv: list[str], pattern: str, problems: list[Finding], found: list[str]) -> tuple[int, ...] | None:
    if shutil.which(tool) is None:
        problems.append(Finding(f"{tool} is not installed", INSTALL[tool]))
        return None
    ok, said = probe(argv, whole=True)
    match = re.search(pattern, said) if ok else None
    if not match:
        problems.append(Finding(f"`{' '.join(argv)}` did not say a version ({said[:80]})", INSTALL[tool]))
        return None
    found.append(f"{tool} {match.group(1)}")
    return parse_version(match.group(1))


def check() -> tuple[list[Finding], list[str]]:
    """(problems, what was found); no problems means the kind stage can run here."""
    problems: list[Finding] = []
    found: list[str] = []
    machine = platform.machine().lower()
    if machine not in ARCHITECTURES:
        problems.append(Finding(f"architecture {machine}", "kind's node images exist for amd64 and arm64 only"))
    cpus, memory, whose = _docker(found, problems)
    kind = _version("kind", ["kind", "version"], r"v(\d+\.\d+\.\d+)", problems, found)
    if kind and kind < parse_version(KIND_VERSION):
        problems.append(Finding(f"kind {'.'.join(map(str, kind))} is older than v{KIND_VERSION}, whose node image the stage pins", INSTALL["kind"]))
    kubectl = _version("kubectl", ["kubectl", "version", "--client", "-o", "json"], r'"gitVersion":\s*"v(\d+\.\d+\.\d+)', problems, found)
    server_minor = parse_version(KUBERNETES_VERSION)[1]
    if kubectl and abs(kubectl[1] - server_minor) > 1:
        problems.append(Finding(f"kubectl 1.{kubectl[1]} is more than one minor version from the cluster's {KUBERNETES_VERSION} (kubectl's skew policy)", INSTALL["kubectl"]))
    istioctl = _version("istioctl", ["istioctl", "version", "--remote=false"], r"(\d+\.\d+\.\d+)", problems, found)
    if istioctl and istioctl[:2] != parse_version(ISTIO_VERSION)[:2]:
        problems.append(Finding(f"istioctl {'.'.join(map(str, istioctl))}; the book follows Istio {ISTIO_VERSION}", INSTALL["istioctl"]))
    if cpus < MIN_CPUS or memory < MIN_MEMORY_GB:
        problems.append(Finding(f"{cpus} CPUs and {memory:.0f} GB {whose}", f"give Docker >= {MIN_CPUS} CPUs and {MIN_MEMORY_GB} GB (Istio's kind guide); Docker Desktop: Settings > Resources"))
    else:
        found.append(f"{cpus} CPUs, {memory:.0f} GB")
    if platform.system() == "Linux" and INOTIFY_DIR.is_dir():
        limits = {name: int((INOTIFY_DIR / name).read_text()) for name in INOTIFY}
        low = {name: value for name, value in limits.items() if value < INOTIFY[name]}
        if low:
            problems.append(Finding(", ".join(f"fs.inotify.{n}={v}" for n, v in low.items()) + " is too low for kind",
                                    "sudo sysctl " + " ".join(f"fs.inotify.{n}={INOTIFY[n]}" for n in low) + " (and put it in /etc/sysctl.d/ to keep it)"))
    return problems, found

