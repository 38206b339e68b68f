"""The multi-cluster mesh's figures: what crossing networks adds to a call, and how fast locality failover is.

Run as root: ``.venv/bin/python benchmarks/bench_multicluster.py``. One live mesh of two clusters on two
networks (``meshlab.lab.multicluster``: sidecars with mutual TLS, an east-west gateway per network).
Two measurements, each printed with how it was made:
1. latency: 200 calls from cluster1's sleep pod, each on a new connection (so each pays a TLS 1.3
   handshake), to ``echo`` answered at home (two proxies) and to ``hello`` answered in cluster2 (two
   proxies and the east-west gateway), alternating in rounds of 20 so both see the same machine; p50
   and p99 of each, and the cross-network p50 as a ratio of the home p50;
2. failover: three runs of ``failover`` (a request every 20 ms; cluster1's echo pods killed after 1 s,
   restarted 2 s later; outlier detection consecutive5xx 1, baseEjectionTime 5 s): requests lost, time
   from the kill to the first answer from cluster2, time from the restart to the first answer at home.
"""

from __future__ import annotations

import os
import statistics
import sys

from meshlab.lab.multicluster import MultiClusterMesh

ROUNDS, PER_ROUND, FAILOVERS = 10, 20, 3


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> None:
    if os.geteuid() != 0:
        sys.exit("bench_multicluster.py runs the live lab: run it as root")
    with MultiClusterMesh("mlbmc").up(clusters=2, pods=2, vm=False) as mesh:
        latencies: dict[str, list[float]] = {"echo": [], "hello": []}
        for _ in range(ROUNDS):
            for service in latencies:
                latencies[service] += [mesh.call(service, "cluster1").latency_us for _ in range(PER_ROUND)]
        home, across = (statistics.median(latencies[s]) for s in ("echo", "hello"))
        print(f"1. latency, {ROUNDS * PER_ROUND} new-connection calls each from cluster1-sleep (µs):")
        for label, service in (("home (echo, 2 proxies)", "echo"), ("across networks (hello, + gateway)", "hello")):
            print(f"   {label:<36} p50 {statistics.median(latencies[service]):7.0f}  p99 {percentile(latencies[service], 0.99):7.0f}")
        print(f"   crossing networks costs {across / home:.2f}x the home p50")
        runs = [mesh.failover("echo", "cluster1", before_s=1.0, down_s=2.0, after_s=6.0, pace_ms=20) for _ in range(FAILOVERS)]
        print(f"2. failover, {FAILOVERS} runs (a request every 20 ms, consecutive5xx 1, baseEjectionTime 5 s):")
        for k, run in enumerate(runs, 1):
            print(f"   run {k}: {run.requests_lost} lost of {len(run.samples)}, failed over after {run.failed_over_s * 1000:.0f} ms, "
                  f"home again {run.back_s:.2f} s after the restart")


if __name__ == "__main__":
    main()
