"""Which of the book's stages this machine can run, why not, and the exact fix.

The book runs on four stages (model, live lab, upstream, kind); the live lab has
two optional parts that need more than a Linux kernel (eBPF, and a browser for
the end-to-end test). ``diagnose()`` probes each one for real where a probe is
cheap (it starts a throw-away network namespace rather than reading sysctls),
so "available" means "was just seen working", not "should work".

    StageReport   available / reason / fix for one stage
    diagnose      probes every stage, in the book's order
    render_text   the table ``meshlab doctor`` prints
"""

from __future__ import annotations

import importlib.util
import os
import platform
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

STAGES = ("model", "live", "ebpf", "browser", "upstream", "kind")

#: Merbridge documents Linux >= 5.7 for its cgroup/connect4 + sockops + sk_msg datapath.
EBPF_MIN_KERNEL = (5, 7)
#: Debian's chromium; the browser test drives it with Playwright (never a downloaded browser).
DEFAULT_CHROMIUM = "/usr/bin/chromium"


@dataclass(frozen=True)
class StageReport:
    """What ``meshlab doctor`` says about one stage."""

    available: bool
    reason: str
    fix: str = ""

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def probe(argv: list[str], timeout: float = 20.0, whole: bool = False) -> tuple[bool, str]:
    """Run a probe; return (succeeded, the first line of what it said: its output on success, else its
    error). ``whole`` returns all of a successful probe's output (a version as JSON, say)."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except (FileNotFoundError, PermissionError) as error:
        return False, f"{argv[0]} not found" if isinstance(error, FileNotFoundError) else str(error)
    except subprocess.TimeoutExpired:
        return False, f"{' '.join(argv)} did not answer within {timeout:.0f} s"
    if done.returncode == 0 and whole:
        return True, done.stdout.strip()
    said = (done.stdout, done.stderr) if done.returncode == 0 else (done.stderr, done.stdout)
    text = (said[0].strip() or said[1].strip()).splitlines()
    return done.returncode == 0, text[0] if text else f"exit code {done.returncode}"


def _missing_commands(names: dict[str, str]) -> list[str]:
    """Names of commands not on PATH; ``names`` maps command -> Debian package."""
    return [command for command in names if shutil.which(command) is None]


def _is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def check_model() -> StageReport:
    """The model stage needs only the Python packages the chapters import."""
    needed = ("matplotlib", "networkx", "simpy", "ipywidgets", "numpy", "grpc", "envoy", "cryptography", "jwt", "spiffe")  # envoy: xds-protos; jwt: pyjwt
    missing = [name for name in needed if importlib.util.find_spec(name) is None]
    version = platform.python_version()
    if sys.version_info < (3, 11):
        return StageReport(False, f"Python {version} is older than 3.11", "use Python 3.11 or newer (make lab creates .venv)")
    if missing:
        return StageReport(False, f"missing Python packages: {', '.join(missing)}", "run make lab (it installs meshlab with its dependencies into .venv)")
    return StageReport(True, f"Python {version} with {', '.join(needed)}")


LIVE_COMMANDS = {"ip": "iproute2", "iptables": "iptables", "iptables-restore": "iptables", "xtables-monitor": "iptables", "unshare": "util-linux", "nsenter": "util-linux", "setpriv": "util-linux"}


def check_live() -> StageReport:
    """The live lab puts pods in network namespaces; probe one for real."""
    if platform.system() != "Linux":
        return StageReport(False, f"the live lab needs a Linux kernel; this is {platform.system()}", "use a Linux machine or VM; the model stage works here")
    missing = _missing_commands(LIVE_COMMANDS)
    if missing:
        packages = sorted({LIVE_COMMANDS[c] for c in missing})
        return StageReport(False, f"missing commands: {', '.join(missing)}", f"apt-get install {' '.join(packages)} (make test does this when run as root)")
    if not _is_root():
        from meshlab.lab import rootless

        if reason := rootless.unavailable():
            return StageReport(False, f"not root, and {reason}", rootless.FIX)
        return StageReport(True, "not root: the lab runs inside a user namespace, where its proxy marks its sockets (0x539) "
                                 "instead of running as uid 1337; the eBPF datapath needs root")
    ok, said = probe(["unshare", "--net", "true"])
    if not ok:
        return StageReport(False, f"cannot create a network namespace: unshare --net failed: {said}", "run as root on a Linux host or a privileged container (--privileged)")
    return StageReport(True, "network namespaces work as root; ip, iptables and xtables-monitor present")


EBPF_COMMANDS = {"clang": "clang", "bpftool": "bpftool"}
LIBBPF_HEADER = Path("/usr/include/bpf/bpf_helpers.h")
KERNEL_BTF = Path("/sys/kernel/btf/vmlinux")


def _kernel_version() -> tuple[int, int]:
    numbers = platform.release().split("-")[0].split(".")
    return int(numbers[0]), int(numbers[1]) if len(numbers) > 1 and numbers[1].isdigit() else 0


def check_ebpf() -> StageReport:
    """sock_ops, sk_msg and cgroup/connect4 need a recent kernel, BTF, a BPF toolchain and CAP_BPF."""
    if platform.system() != "Linux":
        return StageReport(False, "eBPF needs a Linux kernel", "use a Linux machine or VM (kernel >= 5.10 recommended)")
    problems, fixes = [], []
    kernel = _kernel_version()
    if kernel < EBPF_MIN_KERNEL:
        problems.append(f"kernel {platform.release()} is older than {EBPF_MIN_KERNEL[0]}.{EBPF_MIN_KERNEL[1]}")
        fixes.append("boot a kernel >= 5.10")
    if not KERNEL_BTF.exists():
        problems.append(f"{KERNEL_BTF} is missing (kernel built without BTF)")
        fixes.append("use a kernel with CONFIG_DEBUG_INFO_BTF=y")
    packages = sorted({EBPF_COMMANDS[c] for c in _missing_commands(EBPF_COMMANDS)})
    if not LIBBPF_HEADER.exists():
        packages.append("libbpf-dev")
    if packages:
        problems.append(f"missing {', '.join(packages)}")
        fixes.append(f"install bpftool and friends: apt-get install {' '.join(packages)}")
    if not _is_root():
        problems.append("loading BPF programs needs CAP_BPF and CAP_NET_ADMIN")
        fixes.append("run as root")
    if problems:
        return StageReport(False, "; ".join(problems), "; ".join(fixes))
    return StageReport(True, f"kernel {platform.release()} with BTF; clang, bpftool and libbpf headers present; root")


def chromium_path() -> str:
    """The browser the browser test drives: ``MESHLAB_CHROMIUM`` or Debian's chromium."""
    return os.environ.get("MESHLAB_CHROMIUM", DEFAULT_CHROMIUM)


def check_browser() -> StageReport:
    """The end-to-end test drives Debian's chromium through Python Playwright."""
    browser = chromium_path()
    if not Path(browser).exists():
        return StageReport(False, f"no chromium at {browser}", "apt-get install chromium (make test does this when run as root), or set MESHLAB_CHROMIUM")
    if importlib.util.find_spec("playwright") is None:
        return StageReport(False, "the Python package playwright is not installed", "pip install -e '.[test]' (make test does this)")
    ok, said = probe([browser, "--version"])
    if not ok:
        return StageReport(False, f"{browser} --version failed: {said}", "reinstall chromium: apt-get install --reinstall chromium")
    return StageReport(True, f"{said} and Playwright")


def check_upstream() -> StageReport:
    """The upstream stage: Go, Istio's module source in Go's cache (its goldens), and which of the
    upstream programs are built (each test that runs one says how to build it if it is missing)."""
    from meshlab.upstream import build, source
    from meshlab.upstream.versions import ISTIO, PROGRAMS

    try:
        ok, said = probe([source.go_command(), "version"])
        cached = source.cached_source(ISTIO)
    except source.UpstreamError as error:
        return StageReport(False, str(error), source.GO_FIX)
    if not ok:
        return StageReport(False, f"go version failed: {said}", source.GO_FIX)
    built = [name for name, program in PROGRAMS.items() if build.find(program)]
    missing = [name for name in PROGRAMS if name not in built]
    programs = f"programs built: {', '.join(built) or 'none'}" + (f"; not built: {', '.join(missing)} (meshlab upstream install)" if missing else "")
    if cached is None:
        return StageReport(False, f"{said}; {ISTIO.spec} (Istio {ISTIO.release}) is not in the Go module cache; {programs}",
                           "make upstream (or: meshlab upstream source istio.io/istio), with the Go module proxy reachable")
    return StageReport(True, f"{said}; {ISTIO.path} (Istio {ISTIO.release}) in the module cache; {programs}")


def check_kind() -> StageReport:
    """kind runs Kubernetes nodes as Docker containers, and Istio on top needs room: meshlab.kind.preflight."""
    from meshlab.kind import preflight

    problems, found = preflight.check()
    if problems:
        return StageReport(False, "; ".join(p.problem for p in problems), "; ".join(p.fix for p in problems))
    return StageReport(True, ", ".join(found))


CHECKS = {"model": check_model, "live": check_live, "ebpf": check_ebpf, "browser": check_browser, "upstream": check_upstream, "kind": check_kind}


def diagnose(stages: tuple[str, ...] = STAGES) -> dict[str, StageReport]:
    """Probe the given stages (all by default) and report on each."""
    unknown = [stage for stage in stages if stage not in CHECKS]
    if unknown:
        raise ValueError(f"unknown stage {unknown[0]!r}; stages are {', '.join(STAGES)}")
    return {stage: CHECKS[stage]() for stage in stages}


def render_text(reports: dict[str, StageReport]) -> str:
    """One line per stage, with the fix indented under stages that are not available."""
    lines = []
    for stage, report in reports.items():
        mark = "available" if report.available else "NOT available"
        lines.append(f"{stage:<8} {mark:<14} {report.reason}")
        if not report.available:
            lines.append(f"{'':<8} {'fix:':<14} {report.fix}")
    return "\n".join(lines)
