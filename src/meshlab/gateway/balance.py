"""Load balancing as Envoy does it for a cluster that Envoy Gateway built from an HTTPRoute rule.

Envoy Gateway v1.9.0 puts every backendRef of a rule into one cluster, as one locality each, with the
backendRef's weight as the locality's ``loadBalancingWeight`` (internal/xds/translator/cluster.go:
``LocalityWeightedLbConfig`` by default, and the least-request policy inside a locality). Envoy then
picks in two steps: a locality, by an earliest-deadline-first (EDF) schedule over the localities'
*effective* weights, then a host inside it by the cluster's policy. The effective weight is the
weight times the locality's availability, ``min(1, overprovisioning factor x healthy share)``
(Envoy source/common/upstream/upstream_impl.cc, HostSetImpl::effectiveLocalityWeight; the factor is
140%, ClusterLoadAssignment.Policy.overprovisioning_factor in envoy/config/endpoint/v3/endpoint.proto):
so a locality keeps its whole weight until fewer than 1/1.4 (71.4%) of its hosts are healthy, and a
locality with no healthy host gets no traffic at all. When fewer than the healthy panic threshold
(50%, Cluster.CommonLbConfig.healthy_panic_threshold in cluster.proto) of the cluster's hosts are
healthy, Envoy gives up on health and balances over all hosts, localities aside ("panic mode":
ZoneAwareLoadBalancerBase::hostSourceToUse in source/extensions/load_balancing_policies/common/
load_balancer_impl.cc). Envoy sources cited here are its main branch; protos are go-control-plane
envoy v1.38.0's.

Envoy also starts each new EDF schedule after a random number of picks, so that a fleet of proxies
does not send its first requests to the same locality; here the schedule starts at its beginning,
which makes the split of a single proxy exact and repeatable.

    Host          one endpoint of a cluster: address, the Service it stands for, health flags, requests in flight
    EdfScheduler  Envoy's earliest-deadline-first schedule (source/common/upstream/edf_scheduler.h)
    LB_POLICIES   the policies that pick a host inside a locality: ROUND_ROBIN, LEAST_REQUEST, RANDOM
    Cluster       localities of hosts; choose() -> a Host, or None when none can be used
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from meshlab.gateway.envoy import Backend

#: ClusterLoadAssignment.Policy.overprovisioning_factor's default, in percent (endpoint.proto).
OVERPROVISIONING_FACTOR = 140
#: Cluster.CommonLbConfig.healthy_panic_threshold's default, in percent (cluster.proto).
HEALTHY_PANIC_THRESHOLD = 50.0
#: How many random hosts the least-request policy compares (LeastRequest.choice_count's default,
#: envoy/extensions/load_balancing_policies/least_request/v3/least_request.proto).
LEAST_REQUEST_CHOICE_COUNT = 2
LB_POLICIES = ("ROUND_ROBIN", "LEAST_REQUEST", "RANDOM")

Entry = TypeVar("Entry")


@dataclass(eq=False)
class Host:
    """One upstream host (Envoy's word for an endpoint of a cluster). It is used only while neither
    active health checking (``failed_active_hc``) nor the outlier detector (``failed_outlier_check``)
    has flagged it: the two flags are Envoy's Host::HealthFlag FAILED_ACTIVE_HC and FAILED_OUTLIER_CHECK."""

    address: tuple[str, int]
    backend: Backend
    failed_active_hc: bool = False
    failed_outlier_check: bool = False
    active_requests: int = 0

    @property
    def healthy(self) -> bool:
        return not (self.failed_active_hc or self.failed_outlier_check)

    def __str__(self) -> str:
        return f"{self.address[0]}:{self.address[1]}"


class EdfScheduler(Generic[Entry]):
    """Envoy's EDF scheduler: an entry added with weight w is due at now + 1/w; a pick takes the
    earliest due entry (ties: the one added first), moves the clock to its deadline and adds it
    again. Over many picks each entry is picked in proportion to its weight, evenly spread."""

    def __init__(self) -> None:
        self._queue: list[tuple[float, int, Entry]] = []
        self._order = itertools.count()
        self._now = 0.0

    def add(self, weight: float, entry: Entry) -> None:
        if weight <= 0:
            raise ValueError(f"an EDF entry needs a positive weight, got {weight}")
        heapq.heappush(self._queue, (self._now + 1.0 / weight, next(self._order), entry))

    def pick_and_add(self, weight_of: Callable[[Entry], float]) -> Entry | None:
        if not self._queue:
            return None
        deadline, _, entry = heapq.heappop(self._queue)
        self._now = deadline
        self.add(weight_of(entry), entry)
        return entry


@dataclass
class _Locality:
    backend: Backend
    hosts: list[Host]
    effective_weight: float = 0.0


@dataclass
class Cluster:
    """One cluster: a locality per Backend (its weight is the locality's), each with its hosts.
    ``refresh()`` must follow any change of a host's health flags (it rebuilds the locality
    schedule, as Envoy does on every host-set update)."""

    name: str
    localities: list[tuple[Backend, list[Host]]]
    lb_policy: str = "LEAST_REQUEST"
    overprovisioning_factor: int = OVERPROVISIONING_FACTOR
    healthy_panic_threshold: float = HEALTHY_PANIC_THRESHOLD
    seed: int = 0
    _localities: list[_Locality] = field(init=False, repr=False)
    _scheduler: EdfScheduler[_Locality] = field(init=False, repr=False)
    _random: random.Random = field(init=False, repr=False)
    _round_robin: dict[int, int] = field(init=False, repr=False, default_factory=dict)

    def __post_init__(self) -> None:
        if self.lb_policy not in LB_POLICIES:
            raise ValueError(f"cluster {self.name}: load balancing policy {self.lb_policy!r} is not one of {', '.join(LB_POLICIES)}")
        self._localities = [_Locality(backend, list(hosts)) for backend, hosts in self.localities]
        self._random = random.Random(self.seed)
        self.refresh()

    @property
    def hosts(self) -> list[Host]:
        return [host for locality in self._localities for host in locality.hosts]

    def refresh(self) -> None:
        """Recompute every locality's effective weight and start a new schedule over those above 0."""
        self._scheduler = EdfScheduler()
        for locality in self._localities:
            locality.effective_weight = effective_locality_weight(locality.backend.weight, locality.hosts, self.overprovisioning_factor)
            if locality.effective_weight > 0:
                self._scheduler.add(locality.effective_weight, locality)

    def in_panic(self) -> bool:
        """Fewer than the panic threshold's share of hosts are healthy: Envoy then ignores health."""
        hosts = self.hosts
        healthy = sum(host.healthy for host in hosts)
        return bool(hosts) and 100.0 * healthy / len(hosts) < self.healthy_panic_threshold

    def choose(self) -> Host | None:
        """The host for the next request: a locality by EDF over effective weights, then a healthy
        host in it by the policy; in panic mode, any host by the policy; None without hosts."""
        if self.in_panic():
            return self._pick(self.hosts, -1)
        locality = self._scheduler.pick_and_add(lambda entry: entry.effective_weight)
        if locality is None:
            return None
        return self._pick([host for host in locality.hosts if host.healthy], self._localities.index(locality))

    def _pick(self, hosts: Sequence[Host], source: int) -> Host | None:
        """A host of ``hosts`` (those of locality ``source``, or all of them, -1, in panic mode)."""
        if not hosts:
            return None
        if self.lb_policy == "ROUND_ROBIN":
            index = self._round_robin.get(source, 0)
            self._round_robin[source] = index + 1
            return hosts[index % len(hosts)]
        if self.lb_policy == "RANDOM" or len(hosts) == 1:
            return self._random.choice(hosts)
        # Least request with equal weights: the fewest requests in flight among a few random hosts
        # (Envoy's LeastRequestLoadBalancer::unweightedHostPick).
        candidates = [self._random.choice(hosts) for _ in range(LEAST_REQUEST_CHOICE_COUNT)]
        return min(candidates, key=lambda host: host.active_requests)


def effective_locality_weight(weight: int, hosts: Sequence[Host], overprovisioning_factor: int = OVERPROVISIONING_FACTOR) -> float:
    """A locality's weight scaled by its availability, min(1, factor/100 x healthy/total); 0 without hosts."""
    if not hosts:
        return 0.0
    healthy = sum(host.healthy for host in hosts)
    return weight * min(1.0, overprovisioning_factor / 100.0 * healthy / len(hosts))
