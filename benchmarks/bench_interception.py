"""What interception costs, measured live: direct vs through two sidecars, and how fast the lab starts.

Run as root: ``.venv/bin/python benchmarks/bench_interception.py``. One lab, four pods: a client
and a server without sidecars (the baseline), and a client and a server with Istio's rules and
meshlab's sidecars. Requests go from each client to its server over one keep-alive connection
and over a new connection each; p50/p99 and the meshed/direct ratio are printed. Then a lab of
10 pods with sidecars is started and stopped several times and the start time printed.
Targets on the 2-core reference machine: 10 pods up in <= 1 s; keep-alive p50 ratio <= 2.0.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from meshlab.lab import Lab, PodSpec


def percentiles(replies) -> tuple[float, float]:
    latencies = np.array([reply.latency_us for reply in replies])
    return float(np.percentile(latencies, 50)), float(np.percentile(latencies, 99))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000, help="keep-alive requests per path")
    parser.add_argument("--connections", type=int, default=600, help="new-connection requests per path")
    parser.add_argument("--starts", type=int, default=5, help="10-pod lab starts to time")
    args = parser.parse_args()

    pods = [PodSpec("dclient", sidecar=False), PodSpec("dserver", sidecar=False), PodSpec("mclient"), PodSpec("mserver")]
    with Lab("mlb").up(pods) as lab:
        paths = {"direct": ("dclient", lab.pod("dserver").ip), "two sidecars": ("mclient", lab.pod("mserver").ip)}
        for client, server in paths.values():  # warm up both paths
            lab.requests(client, server, count=200)
        print(f"{'path':<14} {'keep-alive p50':>15} {'p99':>9} {'new-conn p50':>13} {'p99':>9}   (µs)")
        results = {}
        for name, (client, server) in paths.items():
            keepalive = percentiles(lab.requests(client, server, count=args.requests))
            fresh = percentiles(lab.requests(client, server, count=args.connections, keepalive=False))
            results[name] = (keepalive, fresh)
            print(f"{name:<14} {keepalive[0]:>15.1f} {keepalive[1]:>9.1f} {fresh[0]:>13.1f} {fresh[1]:>9.1f}")
        (direct_ka, direct_new), (mesh_ka, mesh_new) = results["direct"], results["two sidecars"]
        print(f"ratio two sidecars / direct: keep-alive p50 {mesh_ka[0] / direct_ka[0]:.2f}, p99 {mesh_ka[1] / direct_ka[1]:.2f}; "
              f"new-connection p50 {mesh_new[0] / direct_new[0]:.2f}, p99 {mesh_new[1] / direct_new[1]:.2f}")

    starts = []
    for _ in range(args.starts):
        started = time.perf_counter()
        lab = Lab("mlb").up(10)
        starts.append(time.perf_counter() - started)
        lab.down()
    print(f"10 pods with sidecars up: median {statistics.median(starts):.3f} s, max {max(starts):.3f} s over {args.starts} starts")


if __name__ == "__main__":
    main()
