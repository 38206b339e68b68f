"""Configuration at scale: the scope function's speed, and what scoping saves per push, in one run.

Run: ``.venv/bin/python benchmarks/bench_scale.py``. The mesh: chapter 01's call graph of 5,000 services
(seed 1; growing it is not timed), one proxy per service (5,000), namespaces of 10 services
(``meshlab.scoping.sizes``). Two measurements, each printed with how it was made:
1. scope computation: a PushContext built from the services and Sidecars, then ``sidecar_scope`` for
   every proxy, wall time, for no Sidecar, a Sidecar per namespace, and a Sidecar per workload (the
   ones lazy loading converges to, written by meshlab's fence controller); target < 10 s each;
2. push bytes per change: the mean, over a change to each service, of the bytes pushed to the proxies
   it concerns, scoped against unscoped in the same run, as a ratio.
"""

from __future__ import annotations

import time

from meshlab.scoping.lazyload import FenceController, ServiceFence
from meshlab.scoping.scope import PushContext
from meshlab.scoping.sizes import LAZYLOAD_SERVICES, ProxyScopes, handwritten_sidecars, mesh_model

SERVICES = 5_000


def per_workload_sidecars(model, services):
    """The Sidecar the fence controller writes for each service once it has learned its callees."""
    controller = FenceController(services)
    sidecars = []
    for caller, callees in model.calls.items():
        name, namespace = caller.split(".")[:2]
        fence = ServiceFence(namespace, name, metric_status={f'{{destination_service="{callee}"}}': "1" for callee in callees})
        controller.update_domains(fence, 0.0)
        sidecars.append(controller.sidecar(fence))
    return sidecars


def main() -> None:
    started = time.perf_counter()
    model = mesh_model(SERVICES, seed=1)
    proxies = list({w.services[0]: w for w in reversed(list(model.workloads.values()))}.values())  # one per service
    print(f"mesh: {SERVICES} services, {model.dependencies} dependencies, {len(proxies)} proxies (grown in {time.perf_counter() - started:.1f} s, not timed)")
    services = list(model.services) + list(LAZYLOAD_SERVICES)
    variants = {"no Sidecar": [], "a Sidecar per namespace": handwritten_sidecars(model), "a Sidecar per workload": per_workload_sidecars(model, services)}
    bytes_per_change = {}
    for label, sidecars in variants.items():
        started = time.perf_counter()
        context = PushContext(services, sidecars)
        scopes = [(w, context.sidecar_scope(w)) for w in proxies]
        wall = time.perf_counter() - started
        held = sum(len(scope.services) for _, scope in scopes)
        print(f"1. scope computation, {label:<24} ({len(sidecars):>4} Sidecars): {wall:5.2f} s for {len(proxies)} proxies, "
              f"{held / len(proxies):7.1f} services per proxy (target < 10 s)")
        bytes_per_change[label] = ProxyScopes(scopes).mean_push_bytes(list(model.services[:SERVICES]))
    baseline = bytes_per_change["no Sidecar"]
    for label, value in bytes_per_change.items():
        print(f"2. push bytes per change, {label:<24}: {value / 1e6:9.2f} MB, {value / baseline:.3g} of unscoped ({baseline / value:,.0f} times less)")


if __name__ == "__main__":
    main()
