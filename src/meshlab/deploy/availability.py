"""Proxies fail and restart; requests fail when a proxy on their path is down (simpy, seeded).

Every proxy alternates between up (exponentially distributed, mean ``3600 / failures_per_hour``
seconds) and down (``restart_s`` seconds). Requests arrive as a Poisson process, each along one of
the topology's calls, chosen in proportion to the call's rate; a request fails when any proxy on its
path is down at that moment. The same seed gives the same result.

    AvailabilityResult   failed fraction and the worst moment (most pods cut off at once)
    simulate             run the simulation for one model
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import simpy

from meshlab.deploy.models import path, proxies_for
from meshlab.deploy.topology import Topology


@dataclass(frozen=True)
class AvailabilityResult:
    model: str
    requests: int
    failed: int
    max_pods_cut_off: int

    @property
    def failed_fraction(self) -> float:
        return self.failed / self.requests if self.requests else 0.0


def simulate(model: str, topology: Topology, failures_per_hour: float = 0.5, restart_s: float = 30.0, duration_s: float = 7 * 24 * 3600,
             requests: int = 20_000, seed: int = 0, waypoint_namespaces: set[str] | None = None) -> AvailabilityResult:
    if failures_per_hour < 0 or restart_s < 0 or duration_s <= 0 or requests < 1:
        raise ValueError("failures_per_hour and restart_s must be >= 0, duration_s > 0 and requests >= 1")
    proxies = proxies_for(model, topology, waypoint_namespaces)
    calls = topology.calls()
    paths = [path(proxies, call) for call in calls]
    weights = [call.rps for call in calls]
    env = simpy.Environment()
    down: set[str] = set()
    worst = [0]
    counts = {"failed": 0, "sent": 0}

    def proxy_life(proxy, rng: random.Random):
        while failures_per_hour > 0:
            yield env.timeout(rng.expovariate(failures_per_hour / 3600))
            down.add(proxy.name)
            cut_off = set().union(*(p.pods for p in proxies if p.name in down))
            worst[0] = max(worst[0], len(cut_off))
            yield env.timeout(restart_s)
            down.discard(proxy.name)

    def traffic(rng: random.Random):
        rate = requests / duration_s
        while counts["sent"] < requests:
            yield env.timeout(rng.expovariate(rate))
            hops = rng.choices(paths, weights=weights)[0]
            counts["sent"] += 1
            counts["failed"] += any(proxy.name in down for proxy in hops)

    for index, proxy in enumerate(proxies):
        env.process(proxy_life(proxy, random.Random(f"{seed}/{index}")))
    env.process(traffic(random.Random(f"{seed}/traffic")))
    env.run(until=duration_s * 2)
    return AvailabilityResult(model, counts["sent"], counts["failed"], worst[0])
