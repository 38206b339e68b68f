"""The real control plane's figures (issue 20): etcd, kube-apiserver (with the EndpointSlice controller of
kube-controller-manager) and istiod on loopback.

Run: ``.venv/bin/python benchmarks/bench_controlplane.py`` (the upstream programs built first: ``make
upstream``). Four measurements, each printed with how it was made:
1. build: finding the five programs in meshlab's cache (warm), and building them into a new meshlab cache
   with Go's caches as they are (``--rebuild``; with ``--cold`` also new GOCACHE and GOMODCACHE, which
   downloads every module again);
2. start: from nothing to the API server's /readyz, then to istiod's /ready (CRDs and ConfigMaps from
   ``istioctl manifest generate`` applied with kubectl in between); and, as root, ``meshlab lab up --pods 2
   --control-plane istiod`` until it returns (the lab, the control plane, the pods registered and injected)
   and ``meshlab lab down``;
3. memory: resident set of etcd, kube-apiserver, kube-controller-manager and istiod, idle and after the
   pushes of 4 (target: etcd, the API server and istiod under 1.5 GB together; the controller-manager, which
   a lab served by istiod runs too, is counted with them);
4. a full push to 50 xDS subscriptions (5 gRPC client processes x 10 targets, each a ServiceEntry of 10
   endpoints, a subset each, weighted by a VirtualService), debounce 0, made by changing one VirtualService's
   weights (a config change: istiod pushes everything again) with one server-side-apply request to the API
   server (what ``kubectl apply --server-side`` sends, without kubectl's ~200 ms of starting and reading),
   from the request's start until istiod has recorded ``pilot_proxy_convergence_time`` for all 5 connections
   (istiod records it once a connection has been sent every type it watches, not when the client ACKs), 5
   rounds; against meshlab's control plane pushing the same shape (10 services of 10 weighted clusters of one
   endpoint each) to 5 x 10 clients from the ``set_services`` call until all have answered
   (bench_xds.full_push), in this run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import yaml
from bench_xds import collect_quietly, full_push

from meshlab.kind.observe import metric_value
from meshlab.procfs import status_field
from meshlab.upstream import build
from meshlab.upstream.istiod import Istiod, loopback_service
from meshlab.upstream.kube import KubeControlPlane
from meshlab.upstream.versions import PROGRAMS
from meshlab.xds.debounce import DebounceOptions
from meshlab.xds.echo import start_backend
from meshlab.xds.harness import run_clients
from meshlab.xds.server import bootstrap

NAMES = ("etcd", "kube-apiserver", "kubectl", "kube-controller-manager", "pilot-discovery")
TARGETS, ENDPOINTS, ROUNDS = 10, 10, 5


def builds(rebuild: bool, cold: bool) -> None:
    started = time.perf_counter()
    for name in (*NAMES, "istioctl"):
        if build.find(PROGRAMS[name]) is None:
            sys.exit(f"{name} is not built: make upstream first")
    print(f"1. build, warm (found in meshlab's cache): {(time.perf_counter() - started) * 1000:.0f} ms for {len(NAMES) + 1} programs")
    if not rebuild:
        return
    with tempfile.TemporaryDirectory(prefix="meshlab-bench-build-") as folder:
        os.environ["MESHLAB_UPSTREAM_CACHE"] = folder
        if cold:
            os.environ["GOCACHE"], os.environ["GOMODCACHE"] = f"{folder}/gocache", f"{folder}/gomodcache"
        for name in NAMES:
            started = time.perf_counter()
            build.install(PROGRAMS[name])
            print(f"   {name}: {time.perf_counter() - started:.0f} s ({'empty Go caches' if cold else 'Go caches as they were'}, new meshlab cache)")
    for variable in ("MESHLAB_UPSTREAM_CACHE", "GOCACHE", "GOMODCACHE"):
        os.environ.pop(variable, None)


def lab_up_with_istiod() -> None:
    if os.geteuid() != 0:
        print("2b. meshlab lab up --control-plane istiod: not measured (the live lab needs root here)")
        return
    command = [sys.executable, "-m", "meshlab.cli", "lab"]
    started = time.perf_counter()
    up = subprocess.run([*command, "up", "--prefix", "mlbcp", "--pods", "2", "--control-plane", "istiod"], capture_output=True, text=True, check=False)
    took = time.perf_counter() - started
    started = time.perf_counter()
    subprocess.run([*command, "down", "--prefix", "mlbcp"], capture_output=True, check=True)
    if up.returncode != 0:
        sys.exit(f"meshlab lab up --control-plane istiod failed: {up.stderr[-400:]}")
    print(f"2b. meshlab lab up --pods 2 --control-plane istiod: {took:.1f} s until it returned; lab down {time.perf_counter() - started:.1f} s")


def rss_mb(pid: int) -> float:
    return int(status_field(pid, "VmRSS").split()[0]) / 1024


def memory(label: str, kube: KubeControlPlane, istiod: Istiod) -> None:
    sizes = {process.role: rss_mb(process.pid) for process in (*kube.processes, *istiod.processes)}
    print(f"3. memory, {label}: " + ", ".join(f"{role} {mb:.0f} MB" for role, mb in sizes.items())
          + f"; together {sum(sizes.values()):.0f} MB (target < 1536 MB)")


def services(backends: dict[str, int], round_: int) -> list[dict]:
    """TARGETS services, each of the ENDPOINTS backends as a subset, weighted as meshlab's full_push weights
    its clusters in this round (1 + (round + i) % 3)."""
    weights = {name: 1 + (round_ + i) % 3 for i, name in enumerate(backends)}
    return [document for index in range(TARGETS)
            for document in loopback_service(f"svc{index:02d}.example.com", "mlbench", 7070, backends, weights)]


def server_side_apply(kube: KubeControlPlane, document: dict) -> None:
    """One PATCH of ``document`` as an apply patch (the API server stores it before answering)."""
    group, version = document["apiVersion"].split("/")
    meta = document["metadata"]
    url = (f"{kube.server}/apis/{group}/{version}/namespaces/{meta['namespace']}/{document['kind'].lower()}s/{meta['name']}"
           "?fieldManager=meshlab-bench&force=true")
    request = urllib.request.Request(url, json.dumps(document).encode(), method="PATCH",
                                     headers={"Authorization": f"Bearer {kube.token}", "Content-Type": "application/apply-patch+yaml"})
    trusted = ssl.create_default_context(cafile=str(kube.certificate))
    with urllib.request.urlopen(request, timeout=10, context=trusted) as answer:
        answer.read()


def converged(istiod: Istiod) -> int:
    return int(metric_value(istiod.metrics(), "pilot_proxy_convergence_time_count"))


def real_full_push(kube: KubeControlPlane, istiod: Istiod, folder: Path) -> list[float]:
    servers = {f"b{i}": start_backend(f"b{i}") for i in range(ENDPOINTS)}
    backends = {name: port for name, (_, port) in servers.items()}
    kube.kubectl("create", "namespace", "mlbench")
    kube.kubectl("apply", "-f", "-", stdin=yaml.safe_dump_all(services(backends, 0)))
    metadata = {"GENERATOR": "grpc", "NAMESPACE": "mlbench", "CLUSTER_ID": "Kubernetes", "ISTIO_VERSION": "1.30.3"}
    bootstrap(int(istiod.xds_address.rsplit(":", 1)[1]), node_id="sidecar~127.0.0.1~bench.mlbench~mlbench.svc.cluster.local",
              path=folder / "bootstrap.json", metadata=metadata)
    clients = run_clients(folder / "bootstrap.json", [f"svc{i:02d}.example.com:7070" for i in range(TARGETS)], 30, interval_ms=1000,
                          processes=5, wait=False)
    time.sleep(5.0)  # every client connected and served
    times, applies = [], []
    for round_ in range(ROUNDS):
        before = converged(istiod)
        started = time.monotonic()
        server_side_apply(kube, services(backends, round_ + 1)[2])  # one VirtualService: a full push
        applies.append((time.monotonic() - started) * 1000)
        while converged(istiod) < before + 5:
            if time.monotonic() - started > 30:
                sys.exit("istiod did not converge 5 connections within 30 s")
            time.sleep(0.005)
        times.append((time.monotonic() - started) * 1000)
        time.sleep(0.5)
    for process in clients:
        process.kill()
    collect_quietly(clients)  # killed on purpose: their output is not wanted
    for server, _ in servers.values():
        server.stop(grace=None)
    return times, applies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rebuild", action="store_true", help="also build the programs into a new meshlab cache")
    parser.add_argument("--cold", action="store_true", help="with --rebuild: empty Go caches too (downloads every module)")
    args = parser.parse_args()
    builds(args.rebuild or args.cold, args.cold)
    paths = {name: build.find(PROGRAMS[name]).path for name in (*NAMES, "istioctl")}
    folder = Path(tempfile.mkdtemp(prefix="meshlab-bench-cp-"))
    started = time.perf_counter()
    with KubeControlPlane(paths["kube-apiserver"], paths["etcd"], paths["kubectl"], folder / "kube",
                          controller_manager=paths["kube-controller-manager"]) as kube:
        api_ready = time.perf_counter() - started
        with Istiod(paths["pilot-discovery"], paths["istioctl"], kube, folder / "istiod", DebounceOptions(0, 10_000, True)) as istiod:
            istiod_ready = time.perf_counter() - started
            print(f"2. start: API server ready after {api_ready:.1f} s, istiod ready after {istiod_ready:.1f} s "
                  f"(CRDs and ConfigMaps applied in between)")
            memory("idle", kube, istiod)
            real, applies = real_full_push(kube, istiod, folder)
            memory("after the pushes", kube, istiod)
    lab_up_with_istiod()
    ours = full_push(0.0, ROUNDS)
    print(f"4. full push to 5 clients x {TARGETS} targets ({ENDPOINTS} endpoints each), debounce 0: istiod converged median "
          f"{statistics.median(real):.0f} ms (max {max(real):.0f}) after the write request started (the request itself: median "
          f"{statistics.median(applies):.0f} ms); meshlab's control plane median {statistics.median(ours):.0f} ms "
          f"(max {max(ours):.0f}) after set_services, every client answered")
    shutil.rmtree(folder)  # the clients' bootstrap file


if __name__ == "__main__":
    main()
