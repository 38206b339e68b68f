"""The model's measurements: unscoped, hand-written Sidecars and lazy loading on chapter 01's call graphs,
with chapter 06's costs; and the simulator's per-proxy scoping (simulate_fleet with a FleetScope)."""

from __future__ import annotations

import pytest

from meshlab.scoping.scope import PushContext
from meshlab.scoping.sizes import ISTIOD, LAZYLOAD_SERVICES, ProxyScopes, handwritten_sidecars, measure, mesh_model, resources_for, warm_up
from meshlab.xds import DebounceOptions, PushRequest
from meshlab.xds.memory import HUABING_UNSCOPED
from meshlab.xds.simulate import simulate_fleet


@pytest.fixture(scope="module")
def model():
    return mesh_model(300, seed=3)


@pytest.fixture(scope="module")
def figures(model):
    return {f.strategy: f for f in measure(model, seed=3)}


def test_the_mesh_follows_the_call_graph_and_huabing_zhaos_replicas(model):
    assert len(model.services) == 301 and model.dependencies == 597  # 300 services called by up to 2 callers each, and istiod
    assert len(model.workloads) == round(300 * HUABING_UNSCOPED.endpoints / HUABING_UNSCOPED.clusters)
    assert {w.namespace for w in model.workloads.values()} == {f"team-{i:03d}" for i in range(30)}


def test_a_proxy_holding_the_whole_of_huabing_zhaos_mesh_holds_what_chapter_06_counts():
    assert resources_for(HUABING_UNSCOPED.clusters) == HUABING_UNSCOPED.resources == 966


def test_unscoped_every_proxy_holds_every_service(figures):
    assert figures["unscoped"].services_per_proxy == 301


def test_after_warm_up_lazy_loading_holds_exactly_the_dependencies_and_the_mesh_namespaces(model):
    lazy, detours = warm_up(model, seed=3)
    assert detours == model.dependencies, "every first call went through the global sidecar"
    own = {ISTIOD.hostname} | {s.hostname for s in LAZYLOAD_SERVICES}
    for workload in model.workloads.values():
        assert lazy.push_context.sidecar_scope(workload).hostnames == set(model.calls[workload.services[0]]) | own, workload.name


def test_scoping_shrinks_configuration_pushes_and_istiod(figures):
    unscoped, handwritten, lazy = figures["unscoped"], figures["hand-written"], figures["lazy loading"]
    for field in ("resources_per_proxy", "envoy_mb", "push_bytes_per_change", "push_ms_per_change", "istiod_mb"):
        assert getattr(unscoped, field) > getattr(handwritten, field) > getattr(lazy, field), field
    assert lazy.proxies == unscoped.proxies + 1, "the global sidecar is one more proxy, holding everything"


def test_the_mean_push_per_change_is_the_mean_over_a_change_to_each_service(model):
    context = PushContext(model.services, handwritten_sidecars(model))
    scopes = ProxyScopes([(w, context.sidecar_scope(w)) for w in model.workloads.values()])
    services = list(model.services[:-1])
    assert scopes.mean_push_bytes(services) == pytest.approx(sum(scopes.push_bytes(s) for s in services) / len(services))


def test_the_same_seed_gives_the_same_figures(model, figures):
    assert [f.as_dict() for f in measure(model, seed=3)] == [f.as_dict() for f in figures.values()]


def test_lazy_loadings_configuration_stays_flat_as_the_mesh_grows():
    small, large = (measure(mesh_model(n, seed=1), seed=1) for n in (100, 1000))
    assert large[0].resources_per_proxy > 9 * small[0].resources_per_proxy, "unscoped grows with the mesh"
    assert large[2].resources_per_proxy < 1.3 * small[2].resources_per_proxy, "lazy loading follows the dependencies"


def test_a_fleet_scope_pushes_only_to_the_proxies_a_change_concerns(model):
    context = PushContext(model.services, handwritten_sidecars(model))
    scopes = ProxyScopes([(w, context.sidecar_scope(w)) for w in model.workloads.values()])
    change = [(0.0, PushRequest(True, frozenset({ISTIOD.key}), {"config": 1}, 0.0))]
    everyone = simulate_fleet(len(scopes.proxies), change, DebounceOptions(debounce_after_ms=10), scope=scopes)
    assert everyone.deliveries == len(scopes.proxies), "every namespace Sidecar imports istio-system"
    leaf = next(s for s in model.services if not any(s.hostname in callees for callees in model.calls.values()) and s is not ISTIOD)
    concerned = sum(scopes.needs_push(p, PushRequest(True, frozenset({leaf.key}))) for p in range(len(scopes.proxies)))
    one = simulate_fleet(len(scopes.proxies), [(0.0, PushRequest(True, frozenset({leaf.key}), {"config": 1}, 0.0))], DebounceOptions(debounce_after_ms=10),
                         scope=scopes)
    assert 0 < one.deliveries == concerned < len(scopes.proxies) and one.propagation_ms[0] < everyone.propagation_ms[0]
