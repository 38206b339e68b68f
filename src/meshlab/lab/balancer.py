"""How the lab sidecar picks an endpoint of an EDS cluster: Envoy's priority levels, weights and outlier detection.

Envoy first picks a **priority level**: each level takes min(100%, overprovisioning x its healthy
share) of what the levels before it left (``meshlab.multicluster.locality.priority_load``), so a
cluster's traffic stays on priority 0 (the proxy's own locality, in Istio's locality failover) until
fewer than 1/1.4 of its hosts are healthy, then spills over to priority 1 (another cluster's hosts,
reached through its east-west gateway), and comes back when they recover. Inside the level it picks a
healthy host by weighted round robin (Envoy's EDF schedule, ``meshlab.gateway.balance.EdfScheduler``;
an east-west gateway's weight is the number of pods it stands for). A host is unhealthy while the
cluster's **outlier detector** (Envoy's, ``meshlab.gateway.health.OutlierDetector``; a DestinationRule's
outlierDetection) has ejected it: for TCP a failed connection counts as a 5xx (local-origin errors not
split, Envoy's default). Envoy's panic mode is left out: with every level's hosts ejected there is
no host, and the connection fails.

Host state outlives an EDS update for the hosts that stay (Envoy keeps its hosts by address), so an
ejection is not forgotten because the control plane pushed.

    ClusterBalancer   one cluster's hosts by priority: choose, connected, failed; updated() for new endpoints
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

from meshlab.gateway.balance import EdfScheduler, Host
from meshlab.gateway.envoy import Backend
from meshlab.gateway.health import OutlierDetection, OutlierDetector
from meshlab.multicluster.locality import priority_load
from meshlab.xds.outbound import EdsEndpoint


class ClusterBalancer:
    """One EDS cluster as the sidecar balances it. ``log`` receives the detector's outlier events;
    ``clock`` is seconds (the event loop's)."""

    def __init__(self, name: str, endpoints: tuple[EdsEndpoint, ...], detection: OutlierDetection | None, log: Callable[[dict], None],
                 clock: Callable[[], float], previous: ClusterBalancer | None = None) -> None:
        self.name, self.endpoints, self.detection, self.clock = name, endpoints, detection, clock
        kept = {host.address: host for host in previous.hosts} if previous is not None else {}
        self.hosts = [kept.get((e.address, e.port)) or Host((e.address, e.port), Backend("", name, e.port, e.weight)) for e in endpoints]
        self.endpoint_of = {id(host): endpoint for host, endpoint in zip(self.hosts, endpoints)}
        self.detector = None
        if detection is not None:
            self.detector = OutlierDetector(detection, name, self.hosts, lambda host, event: log({**event, "time": time.time()}))
            if previous is not None and previous.detector is not None:
                self.detector.monitors.update({key: monitor for key, monitor in previous.detector.monitors.items() if key in self.endpoint_of})
        self.levels = sorted({e.priority for e in endpoints})
        self._random = random.Random(0)
        self._schedules: dict[int, tuple[tuple[int, ...], EdfScheduler[Host]]] = {}
        self._swept = clock()

    def updated(self, endpoints: tuple[EdsEndpoint, ...], detection: OutlierDetection | None, log: Callable[[dict], None]) -> ClusterBalancer:
        """This cluster with new endpoints (or settings): hosts that stay keep their state."""
        return ClusterBalancer(self.name, endpoints, detection, log, self.clock, previous=self)

    def _level_hosts(self, level: int) -> list[Host]:
        return [host for host in self.hosts if self.endpoint_of[id(host)].priority == level]

    def choose(self) -> tuple[Host, EdsEndpoint] | None:
        """The host for a new connection, or None when no level has a healthy host."""
        now = self.clock()
        if self.detector is not None and now - self._swept >= self.detector.config.interval:
            self.detector.sweep(now)
            self._swept = now
        shares = []
        for level in self.levels:
            hosts = self._level_hosts(level)
            shares.append(sum(host.healthy for host in hosts) / len(hosts))
        loads = priority_load(shares)
        if not any(loads):
            return None
        level = self._random.choices(self.levels, weights=loads)[0]
        host = self._pick(level)
        return host, self.endpoint_of[id(host)]

    def _pick(self, level: int) -> Host:
        """Weighted round robin over the level's healthy hosts; a new schedule when the set changed."""
        healthy = [host for host in self._level_hosts(level) if host.healthy]
        key = tuple(id(host) for host in healthy)
        current = self._schedules.get(level)
        if current is None or current[0] != key:
            schedule: EdfScheduler[Host] = EdfScheduler()
            for host in healthy:
                schedule.add(host.backend.weight, host)
            self._schedules[level] = current = (key, schedule)
        return current[1].pick_and_add(lambda host: host.backend.weight)

    def connected(self, host: Host) -> None:
        if self.detector is not None:
            self.detector.responded(host, 200, self.clock())

    def failed(self, host: Host) -> None:
        if self.detector is not None:
            self.detector.failed(host, "connect_failed", self.clock())
