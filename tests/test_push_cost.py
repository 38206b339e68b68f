"""The push cost model: calibrated on Istio's own benchmark, run on shared cores, checked against Istio's throttle.

The figures come from outside: the per-resource cost from istio/istio#25116 (BenchmarkClusterGeneration/
empty, 410 clusters in 1,495,860 ns), the automatic throttle from pilot/pkg/features/tuning.go of the
pinned istio.io/istio module, read at test time from Go's module cache (the upstream stage).
"""

from __future__ import annotations

import re

import pytest
import simpy

from meshlab.upstream import source
from meshlab.upstream.versions import ISTIO
from meshlab.xds import DebounceOptions, PushRequest, push_throttle
from meshlab.xds.cores import SharedCores
from meshlab.xds.memory import HUABING_SCOPED, HUABING_UNSCOPED
from meshlab.xds.simulate import PushCost, busy_minute, quiet_minute, simulate_fleet

#: The saturated istiod of chapter 06, section 4: 2000 unscoped proxies, 2 cores, a busy minute.
BUSY = busy_minute()
PATIENT = DebounceOptions(debounce_after_ms=500, debounce_max_ms=2000)


def test_a_full_push_costs_the_whole_configuration_and_an_endpoint_push_only_its_services():
    cost = PushCost()
    full = PushRequest(True, frozenset({"VirtualService/default/r"}))
    endpoints = PushRequest(False, frozenset({"ServiceEntry/default/a", "ServiceEntry/default/b"}))
    assert cost.resources_for(full) == HUABING_UNSCOPED.resources and cost.resources_for(endpoints) == 2
    assert cost.cpu_ms(endpoints) < cost.cpu_ms(full) / 400
    assert PushCost(resources=HUABING_SCOPED.resources).cpu_ms(full) < cost.cpu_ms(full) / 5, "a Sidecar resource shrinks a full push"


@pytest.mark.parametrize(("fields", "message"), [({"per_resource_ms": -1}, "per_resource_ms and network_ms must be >= 0"),
                                                 ({"resources": 0}, "resources must be >= 1")])
def test_bad_costs_are_refused_by_name(fields, message):
    with pytest.raises(ValueError, match=message):
        PushCost(**fields)


def finish_times(cpus, works, contention=0.0):
    env = simpy.Environment()
    cores = SharedCores(env, cpus, contention)
    done = {}

    def job(name, work):
        yield from cores.run(work)
        done[name] = env.now

    for name, work in enumerate(works):
        env.process(job(name, work))
    env.run()
    return done, cores


def test_jobs_up_to_the_cores_run_at_full_speed_and_more_share_them():
    done, cores = finish_times(2, [10, 10])
    assert done == {0: 10, 1: 10} and cores.busy_ms == 20
    done, cores = finish_times(2, [10, 10, 10, 10])  # four jobs on two cores: each at half speed
    assert done == {0: 20, 1: 20, 2: 20, 3: 20} and cores.busy_ms == 40
    done, _ = finish_times(1, [2, 10])  # the short job leaves; the long one then has the core to itself
    assert done == {0: 4, 1: 12}


def test_contention_makes_the_same_work_cost_more_core_time():
    done, cores = finish_times(2, [10] * 4, contention=0.1)  # 2 beyond the cores: each costs 1.2x
    assert done[0] == pytest.approx(24) and cores.busy_ms / cores.work_ms == pytest.approx(1.2)


def test_an_idle_cluster_leaves_istiod_idle():
    """One routing edit and a dozen endpoint changes in a minute, 2000 unscoped proxies on 2 cores."""
    quiet = quiet_minute()
    assert sum(r.full for _, r in quiet) == 1
    result = simulate_fleet(2000, quiet, DebounceOptions(debounce_after_ms=10))
    assert result.busy_fraction < 0.10


@pytest.mark.parametrize("contention", [0.0, 0.005])
def test_raising_the_throttle_beyond_the_cores_does_not_deliver_sooner_on_a_saturated_istiod(contention):
    """With CPU-bound deliveries (no network wait), every throttle above the 2 cores delivers no sooner
    than 2 senders, pure sharing included: each push in flight gets a thinner slice of the cores."""
    cpu_bound = PushCost(network_ms=0)
    p99 = {throttle: simulate_fleet(2000, BUSY, PATIENT, throttle=throttle, cost=cpu_bound, contention=contention).propagation_percentile(99)
           for throttle in (2, 4, 25, 100)}
    assert all(p99[throttle] >= p99[2] - 0.001 for throttle in (4, 25, 100)), p99  # 1 us: floating-point noise
    assert p99[100] > p99[2] * 1.05, f"at 100 in flight everything arrives later: {p99}"


def test_the_old_default_of_100_delivers_later_and_costs_more_than_the_automatic_throttle():
    automatic = simulate_fleet(2000, BUSY, PATIENT)
    old = simulate_fleet(2000, BUSY, PATIENT, throttle=100)
    assert old.propagation_percentile(99) > automatic.propagation_percentile(99)
    assert old.cpu_cost_factor > automatic.cpu_cost_factor > 1.0


def test_a_longer_debounce_does_less_work_on_a_saturated_istiod():
    short = simulate_fleet(2000, BUSY, DebounceOptions(debounce_after_ms=10, debounce_max_ms=2000))
    patient = simulate_fleet(2000, BUSY, PATIENT)
    assert patient.pushes < short.pushes / 10 and patient.deliveries < short.deliveries and patient.busy_fraction < short.busy_fraction


def istio_push_throttle_source() -> str:
    """The PushThrottle block of pilot/pkg/features/tuning.go in the pinned istio.io/istio module."""
    folder = source.cached_source(ISTIO)
    assert folder is not None, f"{ISTIO.spec} is not in Go's module cache: make upstream"
    tuning = (folder / "pilot" / "pkg" / "features" / "tuning.go").read_text()
    return tuning[tuning.index("PushThrottle = func() int {"):tuning.index("RequestLimit")]


@pytest.mark.upstream
def test_the_automatic_throttle_is_istios_formula_read_from_its_source():
    """tuning.go at the pinned 1.30.3: PILOT_PUSH_THROTTLE defaults to 0, and 0 means min(base + step x GOMAXPROCS, cap);
    its own comment lists a few values (1: 20, 2: 25, ...). meshlab's push_throttle must give all of them."""
    block = istio_push_throttle_source()
    assert re.search(r'"PILOT_PUSH_THROTTLE",\s*0,', block), "the default is 0 (automatic)"
    base, step, cap = map(int, re.search(r"return min\((\d+)\s*\+\s*(\d+)\s*\*\s*procs,\s*(\d+)\)", block).groups())
    listed = {int(cpus): int(value) for cpus, value in re.findall(r"//\s*(\d+):\s*(\d+)", block)}
    assert len(listed) >= 4
    for cpus, value in listed.items():
        assert push_throttle(0, cpus) == value
    for cpus in range(1, 65):
        assert push_throttle(0, cpus) == min(base + step * cpus, cap)


@pytest.mark.parametrize(("cpus", "expected"), [(1, 20), (2, 25), (4, 35), (16, 95), (17, 100), (32, 100), (64, 100)])
def test_a_set_throttle_is_used_as_it_is_and_zero_means_automatic(cpus, expected):
    assert push_throttle(0, cpus) == expected
    assert push_throttle(7, cpus) == 7
    with pytest.raises(ValueError, match="PILOT_PUSH_THROTTLE must be >= 0"):
        push_throttle(-1, cpus)
