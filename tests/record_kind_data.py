"""Re-record the kind stage's test data (tests/data/kind/) from the real programs, so that no test
compares meshlab with meshlab. Run as root with the upstream stage built (make upstream):

    .venv/bin/python tests/record_kind_data.py

    pod-httpbin-sidecar.json       istioctl kube-inject (offline, Istio's injection template) of an httpbin pod,
                                   plus the fields the scheduler and kubelet would add (nodeName, containerStatuses)
    istio-init-1.25.log            the injected istio-init args run for real by pilot-agent istio-iptables in a
                                   network namespace: its own log (the format of Istio 1.25 and later)
    pod-iptables-save.txt          that namespace's iptables-save afterwards: what a debug container or nsenter reads
    istio-init-1.24.log            Istio 1.24's log lines around that same kernel state (the 1.24 format is older
                                   than the pinned programs, so its frame is kept from the file, the state replaced)
    ambient-pod-iptables-save.txt  istio-cni's own golden (cni/pkg/iptables/testdata/default.golden) loaded into a
                                   network namespace and read back
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from meshlab.kind import observe
from meshlab.lab.netns import MACHINE
from meshlab.upstream import build, source
from meshlab.upstream.injection import Injector
from meshlab.upstream.iptables import IstioIptables
from meshlab.upstream.versions import ISTIO, PROGRAMS

DATA = Path(__file__).parent / "data" / "kind"
POD = {"apiVersion": "v1", "kind": "Pod",
       "metadata": {"name": "httpbin-6d8c7b5f4-x2k9p", "namespace": "meshlab-sidecar", "labels": {"app": "httpbin"}},
       "spec": {"serviceAccountName": "httpbin", "containers": [{"name": "httpbin", "image": "mccutchen/go-httpbin:v2.15.0", "ports": [{"containerPort": 8080}]}]}}
#: What a scheduler and a kubelet write into a pod that the kind stage's parsers read.
RUNNING = {"nodeName": "meshlab-worker2"}
STATUS = {"phase": "Running", "containerStatuses": [
    {"name": "httpbin", "containerID": "containerd://4f1c2b7a9e0d4c3b8a7f6e5d4c3b2a1f0e9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b", "ready": True},
    {"name": "istio-proxy", "containerID": "containerd://9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b", "ready": True}]}


def main() -> int:
    with Injector(build.install(PROGRAMS["istioctl"]).path) as injector:
        pod = injector.inject(POD)
    pod["spec"].update(RUNNING)
    pod["status"] = STATUS
    (DATA / "pod-httpbin-sidecar.json").write_text(json.dumps(pod, indent=1) + "\n")
    config = observe.injected_capture(pod)
    with IstioIptables(build.install(PROGRAMS["pilot-agent"]).path, "mlrec") as real:
        applied = real.apply(config)
    if applied.returncode != 0:
        print(applied.log, file=sys.stderr)
        return 1
    (DATA / "istio-init-1.25.log").write_text(applied.log)
    (DATA / "pod-iptables-save.txt").write_text(applied.saved[4])
    old = (DATA / "istio-init-1.24.log").read_text().splitlines(keepends=True)
    frame = old[: max(i for i, line in enumerate(old) if "\tinfo\tCommand output: " in line) + 1]
    (DATA / "istio-init-1.24.log").write_text("".join(frame) + applied.saved[4])
    golden = source.source(ISTIO) / "cni" / "pkg" / "iptables" / "testdata" / "default.golden"
    rules = "".join(line for line in golden.read_text().splitlines(keepends=True) if line.strip() not in ("iptables-save", "ip6tables-save"))
    namespace = MACHINE.create("mlrec-ambient")
    try:
        namespace.run(["iptables-restore"], stdin=rules + "\n")
        (DATA / "ambient-pod-iptables-save.txt").write_text(namespace.run(["iptables-save"]).stdout)
    finally:
        MACHINE.delete(namespace.name)
    print(f"recorded {', '.join(sorted(p.name for p in DATA.glob('*.*')))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
