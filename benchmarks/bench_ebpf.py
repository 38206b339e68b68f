"""64-byte TCP ping-pong over loopback: the normal path vs sk_msg redirection, in one run.

Run as root: ``.venv/bin/python benchmarks/bench_ebpf.py``. A one-pod lab with the eBPF datapath;
``meshlab.ebpf.pingpong`` runs in the pod's namespace alternately outside the lab's cgroup (normal
TCP/IP path) and inside it (both sockets in the sockhash, every message redirected), both ends
pinned to one CPU (a cross-CPU wake-up on a small VM costs more than the path being measured).
Prints p50/p99 per round and the medians' ratio. Target: p50 at least 1.5x lower when redirected.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys

from meshlab.lab import Lab


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    results: dict[str, list[dict]] = {"normal": [], "redirected": []}
    with Lab("mlbe").up(1, datapath="ebpf") as lab:
        argv = [sys.executable, "-m", "meshlab.ebpf.pingpong", "--count", str(args.count), "--cpu", "0"]
        for _ in range(args.rounds):
            for path, command in (("normal", argv), ("redirected", lab.in_cgroup_argv(argv))):
                done = lab.exec("pod0", command)
                results[path].append(json.loads(done.stdout))
        redirected_messages = lab.ebpf_stats()["redirected_messages"]
    print(f"{args.rounds} rounds of {args.count} round trips each; {redirected_messages} messages redirected by sk_msg")
    for path, rounds in results.items():
        per_round = ", ".join(f"{r['p50_us']:.1f}" for r in rounds)
        print(f"{path:<11} p50 {statistics.median(r['p50_us'] for r in rounds):6.1f} µs   p99 {statistics.median(r['p99_us'] for r in rounds):6.1f} µs   (per round p50: {per_round})")
    normal, redirected = (statistics.median(r["p50_us"] for r in results[p]) for p in ("normal", "redirected"))
    p99 = [statistics.median(r["p99_us"] for r in results[p]) for p in ("normal", "redirected")]
    print(f"ratio normal / redirected: p50 {normal / redirected:.2f}x, p99 {p99[0] / p99[1]:.2f}x")


if __name__ == "__main__":
    main()
