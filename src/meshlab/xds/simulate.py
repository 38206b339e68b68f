"""The push pipeline on simpy's clock: a timeline of changes in, pushes out; and a fleet at scale.

``simulate_timeline`` is what ``meshlab xds simulate`` runs: the Debouncer alone, each debounced
push taking ``push_ms``; times are exact simulated milliseconds. An event and a timer falling on
the same millisecond are taken event first.

``simulate_fleet`` adds what happens after a push is released: the request is enqueued for every
proxy, and PILOT_PUSH_THROTTLE senders deliver it. A delivery is CPU work in proportion to what the
proxy must be sent (its whole configuration for a full push, the changed services' endpoints for an
incremental one; a Sidecar resource shrinks the first), done on istiod's cores shared with every
other push in flight (``meshlab.xds.cores``), then a short wait on the network. It reports pushes,
events per push, the time from a change to the last proxy updated, istiod's busy fraction (core
time used over core time available), how much contention inflated the work, and queue depth. With a
``FleetScope`` (Sidecar resources, lazy loading: ``meshlab.scoping``) each proxy holds its own number
of resources, and a proxy a change does not concern is skipped at no cost, as Istio's ProxyNeedsPush
skips it after the dequeue.

    TimelineError     a bad timeline file, naming the field
    simulate_timeline the pushes for a timeline
    PushCost          per-proxy delivery cost, calibrated on Istio's own xDS benchmark
    FleetScope        per-proxy scoping: the resources each proxy holds, which changes concern it
    FleetResult       the metrics of a fleet simulation
    simulate_fleet    many proxies, many events
    churn             a seeded workload: config edits, endpoint churn, bursts
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import simpy

from meshlab.xds.clock import SimClock
from meshlab.xds.cores import CONTENTION, SharedCores
from meshlab.xds.debounce import DebounceOptions, Debouncer
from meshlab.xds.memory import HUABING_UNSCOPED
from meshlab.xds.pushqueue import SimPushQueue, push_throttle
from meshlab.xds.pushrequest import PushRequest


class TimelineError(ValueError):
    """A timeline that cannot be simulated; the message names the field and what is accepted."""


def _number(value, where: str, minimum: float = 0.0) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < minimum:
        raise TimelineError(f"{where}: {value!r} is not a number >= {minimum:g}")
    return float(value)


def _exact(ms: float) -> float | int:
    return int(ms) if float(ms).is_integer() else round(ms, 6)


def parse_timeline(data: dict) -> tuple[DebounceOptions, float, list[tuple[float, PushRequest]]]:
    if not isinstance(data, dict):
        raise TimelineError("a timeline is a JSON object with debounce_after_ms, debounce_max_ms, enable_eds_debounce, push_ms and events")
    for key in ("debounce_after_ms", "debounce_max_ms", "enable_eds_debounce", "push_ms", "events"):
        if key not in data:
            raise TimelineError(f"missing field {key!r}")
    if not isinstance(data["enable_eds_debounce"], bool):
        raise TimelineError(f"enable_eds_debounce: {data['enable_eds_debounce']!r} is not true or false")
    options = DebounceOptions(_number(data["debounce_after_ms"], "debounce_after_ms"), _number(data["debounce_max_ms"], "debounce_max_ms"), data["enable_eds_debounce"])
    push_ms = _number(data["push_ms"], "push_ms")
    if not isinstance(data["events"], list):
        raise TimelineError("events: expected a list of {t_ms, full, configs, reason}")
    events = []
    for index, event in enumerate(data["events"]):
        where = f"events[{index}]"
        if not isinstance(event, dict):
            raise TimelineError(f"{where}: expected an object with t_ms, full, configs, reason")
        for key in ("t_ms", "full"):
            if key not in event:
                raise TimelineError(f"{where}: missing field {key!r}")
        if not isinstance(event["full"], bool):
            raise TimelineError(f"{where}.full: {event['full']!r} is not true or false")
        configs = event.get("configs", [])
        if not isinstance(configs, list) or not all(isinstance(c, str) for c in configs):
            raise TimelineError(f"{where}.configs: expected a list of strings such as \"VirtualService/default/reviews\"")
        reason = event.get("reason") or ""
        if not isinstance(reason, str):
            raise TimelineError(f"{where}.reason: {reason!r} is not a string")
        t_ms = _number(event["t_ms"], f"{where}.t_ms")
        events.append((t_ms, PushRequest(event["full"], frozenset(configs), {reason: 1} if reason else {}, t_ms)))
    return options, push_ms, sorted(events, key=lambda e: e[0])


def simulate_timeline(data: dict) -> dict:
    """``{"pushes": [{"start_ms", "end_ms", "full", "configs", "reasons", "merged_events"}]}`` in start order."""
    options, push_ms, events = parse_timeline(data)
    env = simpy.Environment()
    clock = SimClock(env)
    pushes = []

    def push(request: PushRequest, merged: int, done) -> None:
        start = env.now
        pushes.append({"start_ms": _exact(start), "end_ms": _exact(start + push_ms), "full": request.full, "configs": sorted(request.configs or ()),
                       "reasons": dict(sorted(request.reasons.items())), "merged_events": merged})
        clock.call_later(push_ms, done)

    debouncer = Debouncer(clock, push, options)
    for t_ms, request in events:
        clock.call_later(t_ms, lambda r=request: debouncer.update(r))
    env.run()
    return {"pushes": pushes}


#: Istio's own xDS benchmark (pilot/pkg/xds/bench_test.go), as run by its maintainer in
#: istio/istio#25116 (June 2020, master between 1.6 and 1.7): BenchmarkClusterGeneration/empty, one
#: sidecar's CDS for 100 ServiceEntries of 4 ports each, 410 clusters (76 kB), took 1,495,860 ns per
#: generation, marshalling included. meshlab charges every resource of a push the same per-cluster
#: cost: about 3.65 us.
BENCHMARK_RESOURCES = 410
BENCHMARK_MS = 1.495860
PER_RESOURCE_MS = BENCHMARK_MS / BENCHMARK_RESOURCES

#: Time a delivery holds its throttle slot without using a core: writing the response into the
#: proxy's gRPC stream. meshlab's assumption (about 100 kB at 1 Gbit/s); a slow or distant proxy
#: holds its slot longer.
NETWORK_MS = 1.0


@dataclass(frozen=True)
class PushCost:
    """What one delivery costs istiod: ``per_resource_ms`` of CPU for every resource it must generate,
    then ``network_ms`` of waiting on the stream.

    A full push regenerates the proxy's whole configuration: ``resources``, what it holds
    (meshlab.xds.memory; by default Huabing Zhao's unscoped Envoy, 966 resources; a Sidecar-scoped
    one holds ``HUABING_SCOPED.resources``); an incremental one only the ClusterLoadAssignments of the services it names (in Istio
    1.30.3 a non-full request skips CDS, LDS and RDS, and EDS sends just the updated services:
    pilot/pkg/xds/cds.go, eds.go). No caching is modelled: Istio's xDS cache reuses generated
    resources across proxies, so real pushes cost less than this, never more.
    """

    per_resource_ms: float = PER_RESOURCE_MS
    network_ms: float = NETWORK_MS
    resources: int = HUABING_UNSCOPED.resources

    def __post_init__(self) -> None:
        if self.per_resource_ms < 0 or self.network_ms < 0:
            raise ValueError(f"per_resource_ms and network_ms must be >= 0, got {self.per_resource_ms!r} and {self.network_ms!r}")
        if self.resources < 1:
            raise ValueError(f"resources must be >= 1 (listeners, clusters and endpoints a proxy holds), got {self.resources!r}")

    def resources_for(self, request: PushRequest | None = None, held: int | None = None) -> int:
        """Resources generated for one proxy holding ``held`` (default ``resources``): all of them for a
        full push, one per named service otherwise."""
        held = self.resources if held is None else held
        if request is None or request.full or not request.configs:
            return held
        return min(len(request.configs), held)

    def cpu_ms(self, request: PushRequest | None = None, held: int | None = None) -> float:
        return self.per_resource_ms * self.resources_for(request, held)


class FleetScope(Protocol):
    """What scoping changes for ``simulate_fleet``: proxies are numbered 0..proxies-1."""

    def resources(self, proxy: int) -> int:
        """Listeners, clusters and endpoints the proxy holds (what a full push regenerates)."""

    def needs_push(self, proxy: int, request: PushRequest) -> bool:
        """Whether the request concerns the proxy (Istio 1.30.3 pilot/pkg/xds/proxy_dependencies.go)."""


@dataclass
class FleetResult:
    pushes: int
    events: int
    deliveries: int  # pushes to one proxy, after the push queue's merging
    propagation_ms: list[float] = field(repr=False)
    busy_fraction: float = 0.0
    cpu_cost_factor: float = 1.0
    queue_depth: list[tuple[float, int]] = field(default_factory=list, repr=False)
    push_starts: list[float] = field(default_factory=list, repr=False)

    @property
    def events_per_push(self) -> float:
        return self.events / self.pushes if self.pushes else 0.0

    def propagation_percentile(self, q: float) -> float:
        return float(np.percentile(self.propagation_ms, q)) if self.propagation_ms else 0.0

    def summary(self) -> dict:
        return {"pushes": self.pushes, "events": self.events, "events_per_push": round(self.events_per_push, 2), "deliveries": self.deliveries,
                "propagation_p50_ms": round(self.propagation_percentile(50), 1), "propagation_p99_ms": round(self.propagation_percentile(99), 1),
                "busy_fraction": round(self.busy_fraction, 3), "cpu_cost_factor": round(self.cpu_cost_factor, 3), "max_queue_depth": max((d for _, d in self.queue_depth), default=0)}


def churn(duration_ms: float, config_edits_per_s: float = 0.2, endpoint_changes_per_s: float = 5.0, bursts: int = 2, burst_size: int = 50, seed: int = 0) -> list[tuple[float, PushRequest]]:
    """A seeded workload: routing-rule edits (full pushes), endpoint churn from scaling and rolling
    updates (incremental), and bursts of endpoint changes (a deployment rolling all at once)."""
    rng = random.Random(seed)
    events = []
    for rate, full, kind in ((config_edits_per_s, True, "config"), (endpoint_changes_per_s, False, "endpoint")):
        t = 0.0
        while rate > 0:
            t += rng.expovariate(rate / 1000)
            if t >= duration_ms:
                break
            name = f"VirtualService/default/route-{rng.randrange(20)}" if full else f"ServiceEntry/default/svc-{rng.randrange(200)}"
            events.append((t, PushRequest(full, frozenset({name}), {kind: 1}, t)))
    for _ in range(bursts):
        start = rng.uniform(0, duration_ms * 0.9)
        for i in range(burst_size):
            t = start + i * rng.uniform(1, 20)
            events.append((t, PushRequest(False, frozenset({f"ServiceEntry/default/svc-{rng.randrange(200)}"}), {"endpoint": 1}, t)))
    return sorted(events, key=lambda e: e[0])


def busy_minute() -> list[tuple[float, PushRequest]]:
    """Chapter 06's saturated istiod (and lab 06's): a routing edit every 2 s, 20 endpoint changes a
    second and three rollouts of 80, for one minute."""
    return churn(60_000, config_edits_per_s=0.5, endpoint_changes_per_s=20, bursts=3, burst_size=80, seed=6)


def quiet_minute() -> list[tuple[float, PushRequest]]:
    """Chapter 06's idle cluster: one routing edit and a dozen endpoint changes in the minute."""
    return churn(60_000, config_edits_per_s=1 / 60, endpoint_changes_per_s=0.2, bursts=0, seed=4)


def simulate_fleet(proxies: int, events: list[tuple[float, PushRequest]], options: DebounceOptions = DebounceOptions(), throttle: int = 0,
                   push_ms: float = 5.0, cost: PushCost = PushCost(), cpus: int = 2, contention: float = CONTENTION,
                   scope: FleetScope | None = None) -> FleetResult:
    """Debounce, enqueue for every proxy, deliver with PUSH_THROTTLE senders on ``cpus`` shared cores; measure.

    ``push_ms`` is the CPU work of releasing a debounced push (building its push context) before it
    is enqueued; ``contention`` is the extra work per push in flight beyond the cores (0: pure sharing);
    ``scope``, if given, sizes each proxy and skips those a request does not concern (they are not
    counted as deliveries).
    """
    if proxies < 1:
        raise ValueError(f"proxies must be >= 1, got {proxies}")
    env = simpy.Environment()
    clock = SimClock(env)
    queue = SimPushQueue(env)
    cores = SharedCores(env, cpus, contention)
    senders = push_throttle(throttle, cpus)
    waiting: list[list[int]] = [[] for _ in range(proxies)]  # push ids each proxy has not received yet
    outstanding: dict[int, int] = {}
    covered: dict[int, list[float]] = {}  # push id -> event times it carries
    pending_events: list[float] = []
    propagation: list[float] = []
    push_starts: list[float] = []
    depth: list[tuple[float, int]] = []
    deliveries = [0]
    immediate: list[float] = []  # the event being pushed at once (EDS debounce off), if any

    def push(request: PushRequest, merged: int, done) -> None:
        push_id = len(push_starts)
        push_starts.append(env.now)
        if immediate:
            covered[push_id] = immediate[:]
        else:
            covered[push_id] = pending_events[:]
            pending_events.clear()

        def release():
            yield from cores.run(push_ms)
            outstanding[push_id] = proxies
            for proxy in range(proxies):
                waiting[proxy].append(push_id)
                queue.enqueue(proxy, request)
            depth.append((env.now, queue.pending()))
            done()

        env.process(release())

    debouncer = Debouncer(clock, push, options)

    def arrive(t_ms: float, request: PushRequest) -> None:
        if request.full or options.enable_eds_debounce:
            pending_events.append(t_ms)
            debouncer.update(request)
        else:
            immediate.append(t_ms)
            debouncer.update(request)
            immediate.clear()

    for t_ms, request in events:
        clock.call_later(t_ms, lambda t=t_ms, r=request: arrive(t, r))

    def sender():
        while True:
            proxy, request = yield from queue.dequeue()
            ids, waiting[proxy] = waiting[proxy], []
            if scope is None or scope.needs_push(proxy, request):
                yield from cores.run(cost.cpu_ms(request, None if scope is None else scope.resources(proxy)))
                yield env.timeout(cost.network_ms)
                deliveries[0] += 1
            for push_id in ids:
                outstanding[push_id] -= 1
                if outstanding[push_id] == 0:
                    propagation.extend(env.now - t for t in covered.pop(push_id))
            queue.mark_done(proxy)
            if len(depth) < 20000:
                depth.append((env.now, queue.pending()))

    for _ in range(senders):
        env.process(sender())
    env.run()  # until nothing is scheduled: every push delivered, senders waiting for work
    busy = cores.busy_ms / (cpus * env.now) if env.now else 0.0
    factor = cores.busy_ms / cores.work_ms if cores.work_ms else 1.0
    return FleetResult(len(push_starts), len(events), deliveries[0], propagation, busy, factor, depth, push_starts)
