# %% [markdown]
# # 06 · The control plane under load
#
# Every Deployment rollout changes endpoints; every edit of a routing rule changes configuration. If
# istiod pushed every change to every proxy at once, a busy cluster would keep it pushing forever. Istio
# batches changes (debounce), queues the work per proxy (the push queue, merging what piles up), and limits
# how many proxies it pushes to at once (the push throttle). This chapter runs Istio 1.30.3's algorithm on a
# simulated clock, where every millisecond is exact, and then on a real one against real xDS clients.
#
# **After this chapter you can**
# - predict when istiod pushes for a timeline of changes, given PILOT_DEBOUNCE_AFTER, PILOT_DEBOUNCE_MAX and
#   PILOT_ENABLE_EDS_DEBOUNCE;
# - explain the push queue's merge and re-queue rules and the automatic PILOT_PUSH_THROTTLE;
# - measure how Sidecar scoping and the number or size of istiod instances change propagation time;
# - check the usual tuning advice by simulation, and then live;
# - count a real istiod's debounced pushes in its metrics and check them against the simulator's prediction
#   for the same settings, on a kind cluster.

# %%
import matplotlib.pyplot as plt
import numpy as np

from meshlab.xds import DebounceOptions, push_throttle
from meshlab.xds.simulate import PushCost, churn, simulate_fleet, simulate_timeline
from meshlab.viz import interactive_figure, new_axes, plot_timeline, slider, use_book_style

use_book_style()

# %% [markdown]
# ## 1 · Model: debounce
#
# Istio's defaults (pilot/pkg/features/tuning.go, 1.30.3): PILOT_DEBOUNCE_AFTER = 100 ms of quiet before a
# batch goes out, PILOT_DEBOUNCE_MAX = 10 s at most for a batch, PILOT_ENABLE_EDS_DEBOUNCE = true. The rules
# (implemented once in `meshlab.xds.debounce`): the first event of a batch arms a timer; later events do not
# re-arm it; at each tick the batch goes out if it has been quiet long enough or is too old, otherwise the
# timer is re-armed for the rest of the quiet period; only one debounced push runs at a time, and when it
# finishes the check runs at once. A timeline, exactly:

# %%
EVENTS = [{"t_ms": t, "full": full, "configs": [name], "reason": reason} for t, full, name, reason in [
    (0, False, "Endpoints/reviews", "endpoint"), (40, False, "Endpoints/reviews", "endpoint"), (90, True, "VirtualService/reviews", "config"),
    (400, False, "Endpoints/ratings", "endpoint"), (460, False, "Endpoints/ratings", "endpoint"), (520, False, "Endpoints/ratings", "endpoint"),
    (580, False, "Endpoints/ratings", "endpoint"), (640, False, "Endpoints/ratings", "endpoint"), (1200, True, "DestinationRule/reviews", "config")]]


def timeline(after=100, maximum=10_000, eds=True, push_ms=50):
    return simulate_timeline({"debounce_after_ms": after, "debounce_max_ms": maximum, "enable_eds_debounce": eds, "push_ms": push_ms, "events": EVENTS})


for push in timeline()["pushes"]:
    print(push)


# %%
def draw(after=100, maximum=10_000, eds=True):
    pushes = timeline(after, maximum, eds)["pushes"]
    tracks = {"changes": [(e["t_ms"], "full" if e["full"] else "") for e in EVENTS], "pushes": [(p["start_ms"], str(p["merged_events"])) for p in pushes]}
    ax = plot_timeline(tracks, "time (ms)", f"DEBOUNCE_AFTER {after} ms, DEBOUNCE_MAX {maximum} ms: {len(pushes)} pushes",
                       spans={"pushes": [(p["start_ms"], p["end_ms"]) for p in pushes]})
    ax.set_xlim(-50, max([1500] + [p["end_ms"] + 50 for p in pushes]))  # every push in view, whatever the settings
    plt.show()


draw()

# %% [markdown]
# With DEBOUNCE_MAX at 200 ms the busy stretch is cut into several pushes; with EDS debounce off each
# endpoint change goes out at once. Try it:

# %% tags=["nbval-ignore-output"]
assert len(timeline(0)["pushes"]) > len(timeline(100)["pushes"]) > len(timeline(500)["pushes"]), "a longer debounce merges more"
interactive_figure(lambda after, maximum: draw(after, maximum), after=slider("DEBOUNCE_AFTER (ms)", 100, 0, 500, 10), maximum=slider("DEBOUNCE_MAX (ms)", 10_000, 100, 10_000, 100))

# %% [markdown]
# ## 2 · Model: the push queue and the throttle
#
# A released push is enqueued for every connected proxy. The queue keeps one entry per proxy: a request for
# a proxy already waiting is merged into its entry (keeping its place); one for a proxy being pushed to is
# kept aside and puts it back at the tail when it is done. PILOT_PUSH_THROTTLE senders work the queue; 0 means
# automatic, min(15 + 5 × GOMAXPROCS, 100), since Istio 1.21 (it was 10 in 1.2, 100 in 1.3-1.20):

# %%
print({f"{cpus} CPUs": push_throttle(0, cpus) for cpus in (1, 2, 4, 8, 16, 32)})

# %% [markdown]
# A fleet of 2000 proxies under one minute of churn (routing edits, endpoint churn, three rollout bursts),
# seeded: how long until the last proxy has a change, and how deep the queue gets. Each delivery costs
# 0.5 ms plus 0.01 ms per resource in the proxy's configuration (a meshlab assumption; the shape, not the
# absolute numbers, is the point).

# %%
WORKLOAD = churn(60_000, config_edits_per_s=0.5, endpoint_changes_per_s=20, bursts=3, burst_size=80, seed=6)
baseline = simulate_fleet(2000, WORKLOAD)
print(f"{len(WORKLOAD)} changes:", baseline.summary())
times, depth = zip(*baseline.queue_depth)
ax = new_axes("Push queue depth, 2000 proxies", "time (s)", "proxies waiting")
ax.plot(np.array(times) / 1000, depth, lw=0.8)
plt.show()

# %% [markdown]
# ## 3 · Model: scoping and scaling
#
# A Sidecar resource that limits what a proxy sees shrinks its configuration. Huabing Zhao measured
# ("How to reduce Envoy's memory overhead in an Istio mesh", zhaohuabing.com, 15 Nov 2019) one unscoped
# Envoy holding 175 listeners, 325 clusters and 466 endpoints at 105.9 MiB; with 466 instances in that
# mesh, the sidecars alone took about 466 x 100 MB = 46.6 GB. Limited by a Sidecar resource to the
# services it calls, each Envoy stayed under 15 MB. Smaller configurations are also faster pushes.
# Scaling istiod: a bigger instance raises the automatic throttle; more instances split the proxies.

# %%
variants = {
    "1 istiod, 2 CPUs, unscoped": simulate_fleet(2000, WORKLOAD),
    "1 istiod, 2 CPUs, Sidecar-scoped": simulate_fleet(2000, WORKLOAD, cost=PushCost(scoped=True)),
    "1 istiod, 8 CPUs, unscoped": simulate_fleet(2000, WORKLOAD, cpus=8),
    "2 istiods (1000 proxies each), 2 CPUs": simulate_fleet(1000, WORKLOAD),
}
for name, result in variants.items():
    summary = result.summary()
    print(f"{name:<40} propagation p50 {summary['propagation_p50_ms']:>7} ms  p99 {summary['propagation_p99_ms']:>7} ms  busy {summary['busy_fraction']:.0%}")

# %% [markdown]
# ## 4 · Model: the tuning advice, checked
#
# The usual advice: an idle control plane can afford a shorter debounce and more concurrent pushes (changes
# arrive sooner); a saturated one needs a longer debounce (fewer, larger pushes). Two workloads, two debounce
# settings each:

# %%
quiet = churn(60_000, config_edits_per_s=0.05, endpoint_changes_per_s=0.5, bursts=0, seed=7)
lines = []
for name, workload in (("idle cluster", quiet), ("busy cluster", WORKLOAD)):
    for after in (10, 500):
        summary = simulate_fleet(2000, workload, DebounceOptions(debounce_after_ms=after, debounce_max_ms=2000)).summary()
        lines.append(f"{name:<13} DEBOUNCE_AFTER {after:>3} ms: {summary['pushes']:>5} pushes, p99 {summary['propagation_p99_ms']:>7} ms, busy {summary['busy_fraction']:.0%}")
print("\n".join(lines))

# %% [markdown]
# On the idle cluster the short debounce costs little and delivers sooner. On the busy one it still delivers
# sooner here, but only by pushing forty times as often with istiod busy all of the time: no headroom left
# for a burst, a reconnect storm or a new proxy's first push. The longer debounce batches the same changes
# into a few dozen pushes and leaves istiod idle two thirds of the time. "Saturated: debounce longer" is
# advice about headroom, bought with propagation time; the simulation shows both sides of the trade.
#
# ## 5 · Live: debounce and throttle against real xDS clients
#
# **Stage: live, on loopback.** meshlab's ADS control plane runs the *same* Debouncer and PushQueue objects on
# asyncio's clock. Forty xDS clients (two processes, twenty targets each: gRPC keeps one xDS client per
# target) are connected. Then a burst of 30 endpoint changes arrives within about 60 ms, and afterwards one
# full push (every service changed at once). We count the burst's pushes and time how long until every client
# has answered, for two debounce settings and, with the longer one, PUSH_THROTTLE 1 against the automatic 25.

# %% tags=["nbval-ignore-output"]
import time

from meshlab.xds.harness import Greeter, collect, run_clients

TARGETS = [f"svc{i:02d}" for i in range(20)]
live = {}
for after, throttle in ((0, 0), (100, 0), (100, 1)):
    greeter = Greeter(DebounceOptions(debounce_after_ms=after), throttle=throttle)
    greeter.control_plane.set_services([greeter.service(target, {"v1": 1}) for target in TARGETS])
    clients = run_clients(greeter.bootstrap, TARGETS, 8, interval_ms=1000, processes=2, wait=False)
    greeter.control_plane.wait_for_clients(2)
    before = len(greeter.control_plane.pushes)
    start = time.monotonic()
    for i in range(30):
        greeter.control_plane.set_endpoints(f"{TARGETS[i % 20]}-v1", [greeter.address["v1"]])
        time.sleep(0.002)
    greeter.control_plane.wait_settled(timeout=30)
    burst_ms = (time.monotonic() - start) * 1000
    pushes = len(greeter.control_plane.pushes) - before
    start = time.monotonic()
    greeter.control_plane.set_services([greeter.service(target, {"v1": 1}) for target in TARGETS])
    greeter.control_plane.wait_settled(timeout=30)
    full_ms = (time.monotonic() - start) * 1000
    results = collect(clients)
    greeter.close()
    errors = sum("error" in r for records in results for r in records)
    live[(after, throttle)] = pushes
    print(f"DEBOUNCE_AFTER {after:>3} ms, PUSH_THROTTLE {throttle or 'auto (25)':<9}: burst of 30 -> {pushes:>2} pushes, answered after {burst_ms:4.0f} ms; "
          f"full push to 40 clients answered after {full_ms:4.0f} ms; {errors} failed calls")
    assert errors == 0, "no call fails while the configuration changes"
assert live[(100, 0)] < live[(0, 0)], "debouncing batches the burst"

# %% [markdown]
# Without debounce the burst becomes one push per change (a push runs while the next changes arrive, so a
# few merge); with 100 ms it is one push. The full push's time includes the quiet period itself. With one
# sender instead of 25 the forty clients are served one after another: here each delivery is a few small
# protobuf messages, so the difference is tens of milliseconds; with Envoy-sized configurations (the model of
# section 3 above) it is what the throttle is for.

# %% [markdown]
# ## 6 · On a real cluster
#
# **Stage: kind** (Docker, kind >= v0.33.0, kubectl, istioctl 1.30.3; `meshlab doctor --stage kind`). A real
# istiod 1.30.3 is installed with PILOT_DEBOUNCE_AFTER=100ms and PILOT_DEBOUNCE_MAX=10s set as environment
# variables on its Deployment (`istioctl install --set values.pilot.env.PILOT_DEBOUNCE_AFTER=100ms ...`),
# and the settings are read back from the Deployment rather than assumed. Then config changes arrive:
# first 10 ServiceEntries in one `kubectl apply` (a burst a few milliseconds wide), then 5 more, one every
# 300 ms. istiod records `pilot_debounce_time` once for every debounced push it releases ("delay between
# the first config entering debouncing and the merged push request being queued", on :15014/metrics, read
# through the API server's pod proxy), so the growth of its `_count` is the number of pushes. The simulator
# gets the same settings and the moments the changes were applied, and predicts the same count. For
# those two timelines the prediction is:

# %%
from meshlab.kind import experiments, stage

print("burst of 10 within 20 ms  ->", experiments.predict_pushes(stage.DEBOUNCE, [i * 20 / 9 for i in range(10)]), "push")
print("5 changes 300 ms apart    ->", experiments.predict_pushes(stage.DEBOUNCE, [i * 300.0 for i in range(5)]), "pushes")
print()
print("\n".join(stage.plan("06")))

# %% [markdown]
# Before anything is applied to a cluster, Istio's own analyzers can read it: `istioctl analyze
# --use-kube=false` (on the **upstream** stage, the pinned istioctl built from its module) checks the
# ServiceEntries this section applies, and, for contrast, a VirtualService that names a gateway and a
# subset that exist nowhere.

# %% tags=["nbval-ignore-output"]
import os

import yaml

from meshlab.kind.manifests import service_entries
from meshlab.upstream import build
from meshlab.upstream.versions import PROGRAMS

ISTIOCTL = build.find(PROGRAMS["istioctl"])
if ISTIOCTL is None:
    print("upstream stage: istioctl is not built here (meshlab upstream install istioctl)")
    assert os.environ.get("MESHLAB_REQUIRE_UPSTREAM") != "1", "the upstream stage is required here"
else:
    from meshlab.upstream.analyze import BROKEN_ROUTE, analyze

    clean = analyze(ISTIOCTL.path, yaml.safe_dump_all(service_entries(15, "meshlab-sidecar")))
    print(f"istioctl {ISTIOCTL.version} analyze, the 15 ServiceEntries: {[f.code for f in clean if f.level == 'Error'] or 'no errors'}")
    broken = analyze(ISTIOCTL.path, BROKEN_ROUTE)
    for finding in sorted(broken, key=lambda f: (f.level, f.message)):
        print(f"  {finding.level} {finding.code} {finding.resource}: {finding.message}")
    assert not [f for f in clean if f.level == "Error"] and {f.code for f in broken if f.level == "Error"} == {"IST0101"}

# %% tags=["nbval-ignore-output"]
KIND = stage.run("06")
print(KIND.text())
if KIND.ran:
    assert KIND.agreed, "istiod pushed a different number of times than the simulator predicts: see above"
else:
    assert KIND.agreed is None, "no verdict without a run"

# %% [markdown]
# The same metrics hold more: `pilot_xds_pushes` (by type: cds, lds, eds, rds) counts what was sent to the
# proxies, `pilot_proxy_convergence_time` how long a proxy took to get all of a push, and `pilot_push_triggers`
# why pushes were asked for. `istioctl proxy-status` shows each proxy's istiod and version.
#
# ## Stage of this chapter
#
# Sections 1-4 run on the **model** stage: Istio's algorithm on simpy's clock, exact and seeded. Section 5
# runs **live**: the same objects on asyncio's clock, against gRPC's real xDS clients. Section 6 runs on the
# **kind** stage: a real istiod's pushes, counted in its metrics, against the simulator's prediction.
#
# **Lab 06** (`labs/06-tuning-debounce.ipynb`): choose the settings that meet a propagation and push-rate
# objective for a given churn.
#
# ## What to remember
#
# - istiod debounces changes (PILOT_DEBOUNCE_AFTER quiet period, PILOT_DEBOUNCE_MAX cap), merges them, and
#   pushes through a queue worked by PILOT_PUSH_THROTTLE senders (automatic: min(15 + 5 x cores, 100)).
# - Scoping (the Sidecar resource) shrinks each proxy's configuration: smaller memory, cheaper pushes.
# - A longer debounce buys headroom with propagation time; the simulator shows both sides.
#
# ## Check yourself
#
# 1. Ten changes arrive 2 ms apart with DEBOUNCE_AFTER 100 ms. How many pushes?
#
#    <details><summary>Answer</summary>
#
#    One, released 100 ms after the last change.
#
#    </details>
#
# 2. Changes keep arriving every 50 ms with DEBOUNCE_AFTER 100 ms. What stops the debounce from waiting for ever?
#
#    <details><summary>Answer</summary>
#
#    DEBOUNCE_MAX: once that long has passed since the first change, the merged push is released.
#
#    </details>
#
# 3. Istio 1.21 changed the automatic throttle. Why?
#
#    <details><summary>Answer</summary>
#
#    100 concurrent CPU-heavy pushes on 1-2 cores was slow (istio/istio#48438): it became
#    min(15 + 5 x cores, 100), 25 on two cores.
#
#    </details>
