"""The push pipeline's figures: the simulator at scale, and the live control plane against real gRPC clients.

Run: ``.venv/bin/python benchmarks/bench_xds.py``. Three measurements, each printed with how it was made:
1. simulator scale: 10,000 proxies, ~100,000 changes (Sidecar-scoped costs), wall time (target <= 30 s);
2. live full push to 50 xDS clients (5 processes x 10 targets) with 10 clusters each, debounce off, until
   every client has answered, repeated (target <= 100 ms);
3. live propagation against DEBOUNCE_AFTER: one endpoint change, time until every client has answered.
"""

from __future__ import annotations

import statistics
import time

from meshlab.xds import DebounceOptions
from meshlab.xds.harness import Greeter, collect, run_clients
from meshlab.xds.memory import HUABING_SCOPED
from meshlab.xds.simulate import PushCost, churn, simulate_fleet

CLUSTERS = 10


def simulator_scale() -> None:
    started = time.perf_counter()
    events = churn(120_000, config_edits_per_s=20, endpoint_changes_per_s=800, bursts=20, burst_size=100, seed=1)
    result = simulate_fleet(10_000, events, cost=PushCost(resources=HUABING_SCOPED.resources))
    wall = time.perf_counter() - started
    print(f"1. simulator: 10000 proxies, {len(events)} changes over 120 simulated s -> {result.summary()}; wall time {wall:.1f} s (target <= 30 s)")


def full_push(after_ms: float = 0.0, rounds: int = 5) -> list[float]:
    greeter = Greeter(DebounceOptions(debounce_after_ms=after_ms))
    targets = [f"svc{i:02d}" for i in range(10)]
    backends = [f"b{i}" for i in range(CLUSTERS)]
    for name in backends:
        greeter.add_backend(name)
    greeter.control_plane.set_services([greeter.service(target, {b: 1 for b in backends}) for target in targets])
    # the clients call once a second (they stay connected, their CPU stays mostly free for xDS)
    clients = run_clients(greeter.bootstrap, targets, 30, interval_ms=1000, processes=5, wait=False)
    time.sleep(3.0)  # all 50 xDS clients connected and settled
    times = []
    for round_ in range(rounds):
        started = time.monotonic()
        greeter.control_plane.set_services([greeter.service(target, {b: 1 + (round_ + i) % 3 for i, b in enumerate(backends)}) for target in targets])
        greeter.control_plane.wait_settled(timeout=30)
        times.append((time.monotonic() - started) * 1000)
        time.sleep(0.3)
    for process in clients:
        process.kill()
    collect_quietly(clients)
    greeter.close()
    return times


def collect_quietly(processes) -> None:
    for process in processes:
        process.communicate()


def main() -> None:
    simulator_scale()
    times = full_push()
    print(f"2. live full push, 50 clients x {CLUSTERS} clusters (LDS+RDS+CDS+EDS each), debounce off: until all answered "
          f"median {statistics.median(times):.0f} ms, max {max(times):.0f} ms over {len(times)} pushes (target <= 100 ms)")
    for after in (0, 50, 100, 200):
        greeter = Greeter(DebounceOptions(debounce_after_ms=after))
        greeter.control_plane.set_service(greeter.service("greeter", {"v1": 1}))
        clients = run_clients(greeter.bootstrap, ["greeter"], 200, interval_ms=20, processes=2, wait=False)
        time.sleep(2.0)
        samples = []
        for _ in range(5):
            started = time.monotonic()
            greeter.control_plane.set_endpoints("greeter-v1", [greeter.address["v1"]])
            greeter.control_plane.wait_settled()
            samples.append((time.monotonic() - started) * 1000)
        collect(clients)
        greeter.close()
        print(f"3. DEBOUNCE_AFTER {after:>3} ms: one endpoint change answered by both clients after median {statistics.median(samples):.0f} ms")


if __name__ == "__main__":
    main()
