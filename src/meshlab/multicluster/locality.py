"""Locality failover: which endpoints a proxy uses first, and when Envoy moves traffic to the next ones.

istiod sends a proxy a service's endpoints grouped by locality (region/zone/subzone) and gives each
group a **priority** relative to the proxy's own locality (Istio master of 2026-08-26, the book pins
1.30.3; pilot/pkg/networking/core/loadbalancer/loadbalancer.go applyLocalityFailover, with
pilot/pkg/networking/util/util.go LbPriority): 0 when region, zone and subzone all match, 1 when region
and zone do, 2 when the region does, 3 otherwise. With a DestinationRule's
``localityLbSetting.failover`` (from a region to a region), a locality in another region that is not
the ``to`` of the rule for the proxy's region gets 4. The priorities are then renumbered 0..N without
gaps ("Priorities should range from 0 (highest) to N (lowest) without skipping"): Istio's locality
failover task lists 0, 2, 3, 4 for its four localities, Envoy is sent 0, 1, 2, 3.

``localityLbSetting.failoverPriority`` ranks endpoints by labels instead (applyFailoverPriorities): with
N labels, an endpoint whose first j labels equal the proxy's, but not the (j+1)th, gets N - j; all N
equal gives 0; ``key=value`` compares the endpoint with that value instead of the proxy's; renumbered
likewise. (Istio can combine both, label priority x 5 + locality priority; not modelled here.)

istiod applies either only when the DestinationRule's traffic policy for that port (or subset) sets
``outlierDetection`` (pilot/pkg/xds/endpoints/endpoint_builder.go, BuildClusterLoadAssignment):
without it nothing marks a host unhealthy and Envoy would never leave priority 0, so every locality
stays at priority 0. Istio's validation warns about it; a Service's ``trafficDistribution``
(PreferSameZone, PreferSameNode) is the one case that forces failover without it (GetLocalityLbSetting).

Envoy then splits traffic over the priorities by their health (the priority load, Envoy's
source/extensions/load_balancing_policies/common/load_balancer_impl.cc, recalculatePerPriorityState;
docs arch_overview/upstream/load_balancing/priority): in whole percents, a level's health is
min(100, overprovisioning factor 140 x healthy hosts / hosts); the healths' sum capped at 100 is the
normalized total availability; each level takes min(what is left, health x 100 / normalized total),
and what rounding leaves goes to the first level with any health. A level therefore keeps all its
traffic until fewer than 100/140 (72%) of its hosts are healthy, and when the healths sum to less than
100 the loads are scaled up to 100. Envoy's panic mode (healthy panic threshold 50%: with every level
below it, load follows host counts, health ignored) is not modelled.

    Locality                     region/zone/subzone; Locality.parse("r/z/s")
    failover_priorities          each locality's priority for a proxy, as istiod computes it
    failover_priority_by_labels  each endpoint's priority by a DestinationRule's failoverPriority labels
    FAILOVER_NEEDS               what must hold for istiod to apply either, and where Istio says so
    priority_load                Envoy's share of traffic per priority level from each level's healthy share
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from numbers import Real

#: ClusterLoadAssignment.Policy.overprovisioning_factor's default, 140 percent (envoy/config/endpoint/v3/endpoint.proto).
OVERPROVISIONING = 1.4
#: Istio's validation warning, word for word (pkg/config/validation/agent/validation.go ValidateLocalityLbSetting).
FAILOVER_WARNING = "outlier detection policy must be provided for failover"
FAILOVER_NEEDS = ("Failover and failoverPriority need the DestinationRule's outlierDetection: istiod applies them only "
                  "when the traffic policy for the port or subset sets it (pilot/pkg/xds/endpoints/endpoint_builder.go), "
                  "because \"Failover needs outlier detection, otherwise Envoy will never drop down to a lower "
                  "priority\" (pilot/pkg/networking/core/loadbalancer/loadbalancer.go); istioctl validate warns: "
                  f"\"{FAILOVER_WARNING}\".")


@dataclass(frozen=True, order=True)
class Locality:
    """Where a workload runs: Kubernetes' topology.kubernetes.io/region and zone labels and Istio's
    topology.istio.io/subzone. ``Locality("")`` is an endpoint without one (istiod's empty Locality)."""

    region: str
    zone: str = ""
    subzone: str = ""

    def __post_init__(self) -> None:
        parts = (self.region, self.zone, self.subzone)
        if not all(isinstance(part, str) and "/" not in part for part in parts) or (self.subzone and not self.zone) \
                or (self.zone and not self.region):
            raise ValueError(f"locality {parts!r} is not region[/zone[/subzone]]: strings without '/', "
                             "a zone only with a region, a subzone only with a zone")

    @classmethod
    def parse(cls, text: str) -> Locality:
        """``"region/zone/subzone"`` (zone and subzone optional; ``""`` for none) as istiod splits it."""
        parts = text.split("/") if isinstance(text, str) else None
        if parts is None or len(parts) > 3 or (text and not all(parts)):
            raise ValueError(f"locality {text!r} is not region[/zone[/subzone]] (e.g. us-east1/us-east1-b), or '' for none")
        return cls(*parts)

    def __str__(self) -> str:
        return "/".join(part for part in (self.region, self.zone, self.subzone) if part)


def _locality(value: str | Locality) -> Locality:
    return value if isinstance(value, Locality) else Locality.parse(value)


def _check_failover(failover: Sequence[tuple[str, str]]) -> None:
    """Refuse what Istio's validation refuses, in its words (pkg/config/validation/agent/validation.go)."""
    for rule in failover:
        if not (isinstance(rule, (tuple, list)) and len(rule) == 2 and all(isinstance(region, str) and region for region in rule)):
            raise ValueError(f"failover rule {rule!r} is not a (from region, to region) pair of names")
        source, target = rule
        if source == target:
            raise ValueError(f"failover {source}->{target}: locality lb failover settings must specify different regions")
        if "/" in source + target:
            raise ValueError(f"failover {source}->{target}: locality lb failover only specify region")
        if "*" in source + target:
            raise ValueError(f"failover {source}->{target}: locality lb failover region should not contain '*' wildcard")


def _renumbered(raw: list[int]) -> list[int]:
    """0..N without gaps, keeping the order (both apply* functions end this way)."""
    rank = {level: index for index, level in enumerate(sorted(set(raw)))}
    return [rank[level] for level in raw]


def failover_priorities(proxy: str | Locality, localities: Iterable[str | Locality],
                        failover: Sequence[tuple[str, str]] = ()) -> dict[Locality, int]:
    """Each locality's priority for a proxy in ``proxy``; ``failover`` the DestinationRule's (from, to) regions."""
    home = _locality(proxy)
    _check_failover(failover)
    target = next((to for source, to in failover if source == home.region), None)  # the first rule from the proxy's region
    seen = list(dict.fromkeys(map(_locality, localities)))
    raw = []
    for locality in seen:
        if locality.region != home.region:
            raw.append(4 if target is not None and locality.region != target else 3)
        else:
            raw.append(2 if locality.zone != home.zone else 1 if locality.subzone != home.subzone else 0)
    return dict(zip(seen, _renumbered(raw)))


def _priority_labels(labels: Sequence[str]) -> list[tuple[str, str | None]]:
    if isinstance(labels, str) or not labels:
        raise ValueError(f"failoverPriority {labels!r} is not a non-empty list of label keys or key=value")
    parsed = []
    for label in labels:
        key, equals, value = label.partition("=") if isinstance(label, str) else ("", "", "")
        if not key or "=" in value:
            raise ValueError(f"failoverPriority label {label!r} is not a label key or key=value")
        parsed.append((key, value if equals else None))
    return parsed


def failover_priority_by_labels(proxy_labels: Mapping[str, str], endpoints_labels: Sequence[Mapping[str, str]],
                                labels: Sequence[str]) -> list[int]:
    """Each endpoint's priority by ``localityLbSetting.failoverPriority`` ``labels`` (keys, or key=value):
    how many leading labels it shares with the proxy decides; renumbered 0..N. Endpoint labels are istiod's,
    topology labels included (``meshlab.multicluster.endpoints.Endpoint.istio_labels``). A proxy without
    labels changes nothing: istiod returns early (applyFailoverPriorities), all stay 0."""
    wanted = _priority_labels(labels)
    if not proxy_labels:
        return [0] * len(endpoints_labels)
    raw = []
    for endpoint in endpoints_labels:
        mismatch = next((index for index, (key, value) in enumerate(wanted)
                         if (proxy_labels.get(key, "") if value is None else value) != endpoint.get(key, "")), None)
        raw.append(0 if mismatch is None else len(wanted) - mismatch)
    return _renumbered(raw)


def priority_load(healthy_shares: Sequence[float], overprovisioning: float = OVERPROVISIONING) -> list[float]:
    """The share of traffic each priority level gets, from the share of its hosts that are healthy,
    in Envoy's whole percents (so 2 of 3 healthy keeps 93%, not 93.3%)."""
    if isinstance(healthy_shares, str) or any(isinstance(s, bool) or not isinstance(s, Real) or not 0 <= s <= 1
                                              for s in healthy_shares):
        raise ValueError(f"healthy shares are fractions 0..1 (healthy hosts / hosts per level), got {healthy_shares!r}")
    factor = round(overprovisioning * 100) if isinstance(overprovisioning, Real) else 0
    if factor <= 0 or not math.isclose(overprovisioning * 100, factor):
        raise ValueError(f"overprovisioning {overprovisioning!r} is not a positive whole percentage (Envoy's default 1.4, 140%)")
    health = [min(100, math.floor(factor * Fraction(share).limit_denominator(10**6))) for share in healthy_shares]
    normalized = min(100, sum(health))
    if normalized == 0:
        return [0.0] * len(health)  # Envoy leaves this to its panic mode
    loads, left = [], 100
    for level in health:
        loads.append(min(left, level * 100 // normalized))
        left -= loads[-1]
    loads[next(index for index, level in enumerate(health) if level > 0)] += left
    return [load / 100 for load in loads]
