"""The push pipeline on simpy's clock: a timeline of changes in, pushes out; and a fleet at scale.

``simulate_timeline`` is what ``meshlab xds simulate`` runs: the Debouncer alone, each debounced
push taking ``push_ms``; times are exact simulated milliseconds. An event and a timer falling on
the same millisecond are taken event first.

``simulate_fleet`` adds what happens after a push is released: the request is enqueued for every
proxy, and PUSH_THROTTLE senders deliver it, each delivery costing time in proportion to the
proxy's configuration size (which a Sidecar resource shrinks). It reports pushes, events per
push, the time from a change to the last proxy updated, istiod's busy fraction and queue depth.

    TimelineError     a bad timeline file, naming the field
    simulate_timeline the pushes for a timeline
    PushCost          per-proxy delivery cost, with Sidecar scoping
    FleetResult       the metrics of a fleet simulation
    simulate_fleet    many proxies, many events
    churn             a seeded workload: config edits, endpoint churn, bursts
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import numpy as np
import simpy

from meshlab.xds.clock import SimClock
from meshlab.xds.debounce import DebounceOptions, Debouncer
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


#: Sidecar scoping (Huabing Zhao, "How to reduce Envoy's memory overhead in an Istio mesh", 15 Nov 2019):
#: unscoped, 175 listeners, 325 clusters and 466 endpoints made a 105.9 MiB Envoy; a Sidecar resource
#: limiting its egress kept it under 15 MB, and
#: memory grows linearly with listeners and clusters. meshlab takes the resource count as the size of
#: a push and scales it by the memory ratio when scoped.
UNSCOPED_RESOURCES = 175 + 325 + 466
SCOPED_FRACTION = 15 / 106


@dataclass(frozen=True)
class PushCost:
    """Delivery time for one proxy: ``base_ms + per_resource_ms x resources`` (a meshlab assumption;
    no published per-resource cost exists), with ``resources`` shrunk by Sidecar scoping."""

    base_ms: float = 0.5
    per_resource_ms: float = 0.01
    resources: int = UNSCOPED_RESOURCES
    scoped: bool = False

    @property
    def config_resources(self) -> int:
        return round(self.resources * SCOPED_FRACTION) if self.scoped else self.resources

    def ms(self) -> float:
        return self.base_ms + self.per_resource_ms * self.config_resources


@dataclass
class FleetResult:
    pushes: int
    events: int
    propagation_ms: list[float] = field(repr=False)
    busy_fraction: float = 0.0
    queue_depth: list[tuple[float, int]] = field(default_factory=list, repr=False)
    push_starts: list[float] = field(default_factory=list, repr=False)

    @property
    def events_per_push(self) -> float:
        return self.events / self.pushes if self.pushes else 0.0

    def propagation_percentile(self, q: float) -> float:
        return float(np.percentile(self.propagation_ms, q)) if self.propagation_ms else 0.0

    def summary(self) -> dict:
        return {"pushes": self.pushes, "events": self.events, "events_per_push": round(self.events_per_push, 2),
                "propagation_p50_ms": round(self.propagation_percentile(50), 1), "propagation_p99_ms": round(self.propagation_percentile(99), 1),
                "busy_fraction": round(self.busy_fraction, 3), "max_queue_depth": max((d for _, d in self.queue_depth), default=0)}


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


def simulate_fleet(proxies: int, events: list[tuple[float, PushRequest]], options: DebounceOptions = DebounceOptions(), throttle: int = 0,
                   push_ms: float = 5.0, cost: PushCost = PushCost(), cpus: int = 2) -> FleetResult:
    """Debounce, enqueue for every proxy, deliver with PUSH_THROTTLE senders; measure."""
    if proxies < 1:
        raise ValueError(f"proxies must be >= 1, got {proxies}")
    env = simpy.Environment()
    clock = SimClock(env)
    queue = SimPushQueue(env)
    senders = push_throttle(throttle, cpus)
    delivery_ms = cost.ms()
    waiting: list[list[int]] = [[] for _ in range(proxies)]  # push ids each proxy has not received yet
    outstanding: dict[int, int] = {}
    covered: dict[int, list[float]] = {}  # push id -> event times it carries
    pending_events: list[float] = []
    propagation: list[float] = []
    push_starts: list[float] = []
    depth: list[tuple[float, int]] = []
    busy = {"active": 0, "since": 0.0, "total": 0.0}

    def busy_change(delta: int) -> None:
        if busy["active"] > 0:
            busy["total"] += env.now - busy["since"]
        busy["active"] += delta
        busy["since"] = env.now

    immediate: list[float] = []  # the event being pushed at once (EDS debounce off), if any

    def push(request: PushRequest, merged: int, done) -> None:
        push_id = len(push_starts)
        push_starts.append(env.now)
        if immediate:
            covered[push_id] = immediate[:]
        else:
            covered[push_id] = pending_events[:]
            pending_events.clear()
        busy_change(+1)

        def finish():
            outstanding[push_id] = proxies
            for proxy in range(proxies):
                waiting[proxy].append(push_id)
                queue.enqueue(proxy, request)
            depth.append((env.now, queue.pending()))
            busy_change(-1)
            done()

        clock.call_later(push_ms, finish)

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
            item = yield from queue.dequeue()
            proxy, _ = item
            ids, waiting[proxy] = waiting[proxy], []
            busy_change(+1)
            yield env.timeout(delivery_ms)
            busy_change(-1)
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
    busy_change(0)
    return FleetResult(len(push_starts), len(events), propagation, busy["total"] / env.now if env.now else 0.0, depth, push_starts)
