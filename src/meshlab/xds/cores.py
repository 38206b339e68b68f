"""istiod's cores, shared by the pushes in flight: processor sharing with a cost for contending.

Go's scheduler time-slices runnable goroutines over GOMAXPROCS threads, so n CPU-bound pushes on c
cores each progress at min(1, c/n) of a core. Past the cores, more concurrency finishes no work
sooner: it only spreads the same cores thinner. Pushes in flight also get in each other's way (the
locks of the push context and the endpoint index, the garbage collector working over every
response held in memory, caches evicted by the next goroutine), so past the cores each push costs
more: meshlab charges CONTENTION extra work per push in flight beyond the cores. That the cost
exists is reported by Istio's maintainers (istio/istio PR #48438, which lowered the automatic
PILOT_PUSH_THROTTLE in 1.21: "100 concurrent CPU-intensive operations on 1-2 cores is terrible");
its size is meshlab's assumption, not a published figure.

    CONTENTION   the assumed extra work per push in flight beyond the cores
    SharedCores  run(work_ms) as a simpy step; busy_ms (core time used) and work_ms (work asked)
"""

from __future__ import annotations

import heapq
import itertools

import simpy

#: Extra work, as a fraction of a push's own, for every push in flight beyond the cores: 100 pushes
#: on 2 cores cost 1 + 0.005 x 98 = 1.49 times their work. meshlab's assumption, kept mild: the
#: reports it stands for are far worse (istio/istio#44985, Istio 1.17.1, a 500-pod restart: with the
#: throttle at 100 endpoint updates took 25-30 minutes to reach the proxies, pushes waiting on a lock;
#: with PILOT_PUSH_THROTTLE=5 they arrived within the debounce and convergence times).
CONTENTION = 0.005


class SharedCores:
    """``cpus`` cores shared equally by the work in flight (``yield from cores.run(work_ms)``).

    Every job in flight receives work at the same rate, so one virtual clock (the work each has
    received) and a heap of the virtual times at which each job is done are the whole state.
    """

    def __init__(self, env: simpy.Environment, cpus: int, contention: float = CONTENTION) -> None:
        if isinstance(cpus, bool) or not isinstance(cpus, int) or cpus < 1:
            raise ValueError(f"cpus must be a whole number >= 1, got {cpus!r}")
        if contention < 0:
            raise ValueError(f"contention must be >= 0, got {contention!r}")
        self.env, self.cpus, self.contention = env, cpus, contention
        self.busy_ms = 0.0  # core time used, contention included
        self.work_ms = 0.0  # work asked for
        self._received = 0.0  # work each job in flight has received since the start (a virtual clock)
        self._since = 0.0
        self._done_at: list[tuple[float, int, simpy.Event]] = []
        self._order = itertools.count()
        self._generation = 0  # only the latest scheduled wake-up counts

    def speed(self, in_flight: int) -> float:
        """Work per millisecond that each of ``in_flight`` jobs receives."""
        share = min(1.0, self.cpus / in_flight)
        return share / (1.0 + self.contention * max(0, in_flight - self.cpus))

    def run(self, work_ms: float):
        """A simpy step: returns once ``work_ms`` of work has been done for this job."""
        if work_ms < 0:
            raise ValueError(f"work_ms must be >= 0, got {work_ms!r}")
        self._advance()
        done = self.env.event()
        self.work_ms += work_ms
        heapq.heappush(self._done_at, (self._received + work_ms, next(self._order), done))
        self._schedule()
        yield done

    def _advance(self) -> None:
        in_flight, elapsed = len(self._done_at), self.env.now - self._since
        if in_flight:
            self._received += elapsed * self.speed(in_flight)
            self.busy_ms += elapsed * min(in_flight, self.cpus)
        self._since = self.env.now

    def _schedule(self) -> None:
        self._generation += 1
        if self._done_at:
            generation = self._generation
            delay = max(0.0, (self._done_at[0][0] - self._received) / self.speed(len(self._done_at)))
            self.env.timeout(delay).callbacks.append(lambda _: self._wake(generation))

    def _wake(self, generation: int) -> None:
        if generation != self._generation:
            return  # the set of jobs changed since this wake-up was scheduled
        self._advance()
        tolerance = 1e-9 * max(1.0, self._received)
        while self._done_at and self._done_at[0][0] <= self._received + tolerance:
            heapq.heappop(self._done_at)[2].succeed()
        self._schedule()
