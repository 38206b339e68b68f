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
# - check the usual tuning advice by simulation (with push costs calibrated on Istio's own benchmark), and
#   say why a saturated istiod wants a longer debounce and the automatic or a lower throttle, then live;
# - count a real istiod's debounced pushes in its metrics and check them against the simulator's prediction
#   for the same settings, on a kind cluster or against istiod run out of cluster on a real API server.

# %%
from meshlab.viz.architectures import push_pipeline

push_pipeline()

# %%
import matplotlib.pyplot as plt
import numpy as np

from meshlab.xds import DebounceOptions, push_throttle
from meshlab.xds.simulate import PushCost, busy_minute, quiet_minute, simulate_fleet, simulate_timeline
from meshlab.viz import interactive_figure, new_axes, plot_timeline, slider, use_book_style
from meshlab.viz.text import fit, say

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
    say("push", push)


# %%
def draw(after=100, maximum=10_000, eds=True):
    pushes = timeline(after, maximum, eds)["pushes"]
    tracks = {"changes": [(e["t_ms"], "full" if e["full"] else "") for e in EVENTS], "pushes": [(p["start_ms"], str(p["merged_events"])) for p in pushes]}
    plot_timeline(tracks, "time (ms)", f"DEBOUNCE_AFTER {after} ms, DEBOUNCE_MAX {maximum} ms: {len(pushes)} pushes",
                       spans={"pushes": [(p["start_ms"], p["end_ms"]) for p in pushes]},
                       xlim=(-50, max([1500] + [p["end_ms"] + 50 for p in pushes])))  # every push in view, whatever the settings
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
# istiod CPU in proportion to the resources it sends, on 2 shared cores (calibrated on Istio's own
# benchmark: section 4).

# %%
WORKLOAD = busy_minute()  # a routing edit every 2 s, 20 endpoint changes a second, three rollouts of 80
baseline = simulate_fleet(2000, WORKLOAD)
say(f"{len(WORKLOAD)} changes", baseline.summary())
times, depth = zip(*baseline.queue_depth)
ax = new_axes("Push queue depth, 2000 proxies", "time (s)", "proxies waiting")
ax.plot(np.array(times) / 1000, depth, lw=0.8)
plt.show()

# %% [markdown]
# ## 3 · Model: scoping and scaling
#
# A proxy's memory follows the configuration it holds, not the requests it carries: Envoy keeps every
# listener, cluster and endpoint it was sent, and does not buffer what passes through (istio.io
# "Performance and Scalability": the 1.22 page says request rate does not affect memory; the 1.24 page,
# that memory depends on the total configuration state the proxy holds). A Sidecar resource that lists
# only what a workload calls shrinks that configuration. What the often-quoted numbers are:
#
# - Huabing Zhao's write-up ("如何降低Istio服务网格中Envoy的内存开销", *How to reduce Envoy's memory
#   overhead in an Istio mesh*, zhaohuabing.com, 15 Nov 2019, Istio 1.3): one Envoy of his mesh held 175
#   listeners, 325 clusters and 466 endpoints, and its container used **105.9 MiB** (`docker stats`); its
#   `/memory` showed 50.3 MB allocated by Envoy and a 102.6 MB heap reserved by tcmalloc. **466** is also
#   the number of instances in that mesh, each with its own Envoy: about **466 × 100 MB = 46.6 GB** of
#   sidecars. A Sidecar resource keeping about 5 outbound services kept each Envoy **within 15 MB**.
# - istio/istio#18954 is his issue of the day before (14 Nov 2019) about the same Envoy (175 listeners,
#   325 clusters): a **137 MB heap with 51 MB allocated**. The answer (John Howard): the Sidecar resource
#   can already list single services, which is what the post then did.
#
# So about 51 MB is what that configuration made Envoy allocate (both readings agree); the heap and the
# container also hold what tcmalloc kept, which differed by about 35 MB between the two readings.
# meshlab's one memory model (`meshlab.xds.memory`, also chapter 04's) charges a base plus the same cost
# for every listener, cluster and endpoint held, fitted to the post's two figures; as a check outside the
# fit, that cost times the share Envoy had allocated gives ~92 kB per listener-and-cluster pair, inside
# Envoy's own measurement of 90-135 kB (envoyproxy/envoy#4196, 2018).

# %%
from meshlab.xds.memory import ENVOY_ISTIO_1_3, ENVOY_ISTIO_1_24, HUABING_SCOPED, HUABING_UNSCOPED, MIB

print(f"fitted: {ENVOY_ISTIO_1_3.base_mb:.1f} MB + {ENVOY_ISTIO_1_3.per_resource_kb:.0f} kB per listener, cluster or endpoint held")
for label, config in (("unscoped", HUABING_UNSCOPED), ("scoped to 5 services", HUABING_SCOPED)):
    one = ENVOY_ISTIO_1_3.resident_mb(config)
    print(f"{label:<21} {config.listeners:>3} L {config.clusters:>3} C {config.endpoints:>3} E: {one:5.1f} MB ({one / MIB:5.1f} MiB) per Envoy, "
          f"466 of them {466 * ENVOY_ISTIO_1_3.resident_mb(config) / 1000:4.1f} GB")

# %% [markdown]
# The post's 46.6 GB rounds each Envoy to 100 MB; at 105.9 MiB the 466 come to 51.7 GB. The same cost on
# today's Envoy (Istio 1.24 publishes ~60 MB for a sidecar without saying what it held; meshlab reads it
# as an Envoy holding little and adds the fitted cost for what it holds). As the mesh grows, an unscoped
# sidecar holds every service (in the mix of Huabing Zhao's mesh); a scoped one only the 5 it calls:

# %%
print(f"{'services':>8} {'unscoped Envoy':>15} {'scoped Envoy':>13} {'2000 unscoped':>14} {'2000 scoped':>12}")
for services in (50, 325, 1000, 2000):
    unscoped, scoped = HUABING_UNSCOPED.for_services(services, HUABING_UNSCOPED.clusters), HUABING_SCOPED
    print(f"{services:>8} {ENVOY_ISTIO_1_24.resident_mb(unscoped):>12.0f} MB {ENVOY_ISTIO_1_24.resident_mb(scoped):>10.0f} MB "
          f"{2000 * ENVOY_ISTIO_1_24.resident_mb(unscoped) / 1000:>11.0f} GB {2000 * ENVOY_ISTIO_1_24.resident_mb(scoped) / 1000:>9.0f} GB")

# %% [markdown]
# Smaller configurations are also smaller pushes: a full push regenerates everything a proxy holds
# (section 4 costs it), 15 resources for the scoped proxy instead of 966. Scaling istiod: a bigger
# instance raises the automatic throttle; more instances split the proxies.

# %%
variants = {
    "1 istiod, 2 CPUs, unscoped": simulate_fleet(2000, WORKLOAD),
    "1 istiod, 2 CPUs, Sidecar-scoped": simulate_fleet(2000, WORKLOAD, cost=PushCost(resources=HUABING_SCOPED.resources)),
    "1 istiod, 8 CPUs, unscoped": simulate_fleet(2000, WORKLOAD, cpus=8),
    "2 istiods (1000 proxies each), 2 CPUs": simulate_fleet(1000, WORKLOAD),
}
for name, result in variants.items():
    summary = result.summary()
    print(f"{name:<40} propagation p50 {summary['propagation_p50_ms']:>7} ms  p99 {summary['propagation_p99_ms']:>7} ms  busy {summary['busy_fraction']:.0%}")

# %% [markdown]
# ## 4 · Model: the tuning advice, checked
#
# **What a push costs.** Istio's own xDS benchmark (`pilot/pkg/xds/bench_test.go`) generates one
# sidecar's configuration in a loop. Run by its maintainer in
# [istio/istio#25116](https://github.com/istio/istio/issues/25116) (June 2020, between 1.6 and 1.7),
# `BenchmarkClusterGeneration/empty` built the CDS for 100 ServiceEntries with 4 ports each, 410 clusters
# (76 kB), in 1,495,860 ns: about 3.65 µs of one core per resource, marshalling included. `PushCost`
# charges every resource that much. A full push regenerates all of a proxy's resources (here Huabing Zhao's
# unscoped 966); an endpoint-only push sends just the changed services' endpoints (in Istio 1.30.3 a non-full
# request skips CDS, LDS and RDS: `pilot/pkg/xds/cds.go`, `eds.go`). Two assumptions, stated: Istio's xDS
# cache, which reuses generated resources across proxies, is left out (real pushes cost less, not more);
# and each delivery then waits 1 ms writing to the proxy's stream, holding its throttle slot but no core.

# %%
cost = PushCost()
print(f"per resource {cost.per_resource_ms * 1000:.2f} µs; full push to one unscoped proxy "
      f"{cost.cpu_ms():.2f} ms of CPU, to 2000: {2000 * cost.cpu_ms() / 1000:.1f} core-seconds")

# %% [markdown]
# istiod's cores are shared by every push in flight (`meshlab.xds.cores`): with more pushes than cores, each
# gets its share of a core, and each costs a little more for the contention (a meshlab assumption: 0.5%
# extra work per push in flight beyond the cores). istiod is *busy* for the share of its core time it uses.
#
# The usual advice: an idle control plane can afford a short debounce (changes arrive sooner); a saturated
# one needs a longer debounce (fewer, larger pushes). The idle cluster below has, in its minute, one routing
# edit and a dozen endpoint changes (seed 4 holds the average count); the busy one is section 2's workload.
# 2000 unscoped proxies, 2 cores, two debounce settings each:

# %%
quiet = quiet_minute()  # one routing edit, a dozen endpoint changes
print(f"idle: {sum(r.full for _, r in quiet)} routing edit, {sum(not r.full for _, r in quiet)} endpoint changes; "
      f"busy: {sum(r.full for _, r in WORKLOAD)} routing edits, {sum(not r.full for _, r in WORKLOAD)} endpoint changes")
tuning = {}
for name, workload in (("idle cluster", quiet), ("busy cluster", WORKLOAD)):
    for after in (10, 500):
        summary = simulate_fleet(2000, workload, DebounceOptions(debounce_after_ms=after, debounce_max_ms=2000)).summary()
        tuning[(name, after)] = summary
        print(f"{name} DEBOUNCE_AFTER {after:>3} ms: {summary['pushes']:>4} pushes, {summary['deliveries']:>6} deliveries, "
              f"p99 {summary['propagation_p99_ms']:>6} ms, busy {summary['busy_fraction']:.0%}")
assert tuning[("idle cluster", 10)]["busy_fraction"] < 0.1, "an idle cluster leaves istiod idle"

# %% [markdown]
# The idle istiod is busy 8% of the time whatever the debounce, nearly all of it the one routing edit's
# full push (7 core-seconds, over 3 s on 2 cores, which is also most of the p99); an endpoint change costs
# 2000 proxies a few milliseconds in all. So the short debounce costs nothing here and delivers sooner.
#
# On the busy cluster the short debounce releases hundreds of pushes, yet the deliveries grow only about five
# times, not thirty: the push queue already merges every request for a proxy still waiting in line. The
# longer debounce does less work (fewer pushes and deliveries, istiod less busy), headroom for a burst, a
# reconnect storm or a new proxy's first push, and pays for it in propagation time: that trade is what
# "saturated: debounce longer" buys.
#
# **The throttle.** The other usual advice, "raise PILOT_PUSH_THROTTLE for faster pushes" (its own
# description in `pilot/pkg/features/tuning.go` says so for larger machines), is about cores. Istio 1.21 went
# the other way: its automatic value replaced a default of 100, because 100 concurrent CPU-heavy pushes on
# 1-2 cores performed badly and lower values did much better (John Howard in istio/istio PR #48438, which
# also notes that 25 had been run internally for years). The saturated istiod, debounce 500 ms, for a range
# of throttles; then the same with no contention cost and no network wait, pure sharing of the cores:

# %%
THROTTLES = (1, 2, 8, 25, 100)
sweep = {"as modelled": {}, "pure sharing": {}}
for label, extra in (("as modelled", {}), ("pure sharing", {"contention": 0, "cost": PushCost(network_ms=0)})):
    for throttle in THROTTLES:
        sweep[label][throttle] = simulate_fleet(2000, WORKLOAD, DebounceOptions(500, 2000), throttle=throttle, **extra).summary()
for label, rows in sweep.items():
    print(label)
    for throttle, s in rows.items():
        print(f"  PUSH_THROTTLE {throttle:>3}{' (auto)' if throttle == push_throttle(0, 2) else '       '}: p50 {s['propagation_p50_ms']:>6} ms, "
              f"p99 {s['propagation_p99_ms']:>6} ms, busy {s['busy_fraction']:.0%}, CPU per unit of work x{s['cpu_cost_factor']:.2f}")
ax = new_axes("Saturated istiod, 2 cores: raising the throttle", "PILOT_PUSH_THROTTLE", "propagation p99 (s)")
for label, rows in sweep.items():
    ax.plot(THROTTLES, [rows[t]["propagation_p99_ms"] / 1000 for t in THROTTLES], marker="o", label=label)
ax.set_xscale("log")
ax.set_xticks(THROTTLES, [str(t) for t in THROTTLES])
ax.axvline(2, color="grey", lw=0.8, ls=":")
ax.text(2.1, ax.get_ylim()[1], "2 cores", va="top", fontsize=9)
ax.legend()
plt.show()

# %% [markdown]
# One sender leaves a core idle. Past the cores, pure sharing delivers no sooner: every push in flight gets
# a thinner slice, and the longer each proxy stays mid-push, the more proxies a new push catches there, to be
# pushed again after (the queue's re-queue rule). With the network wait, a few slots more than the cores keep
# them fed; past that, contention makes the same work cost more, and at 100 everything arrives later while
# istiod is busier. The automatic 25 is a safe middle, not the optimum for this workload.
#
# So a saturated istiod wants a **longer debounce** (less work) and the **automatic or a lower throttle**,
# never a higher one; to deliver sooner, give it cores (the throttle follows them) or fewer resources per
# proxy (section 3's scoping), or split the proxies over more istiods.
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
    greeter.control_plane.wait_for_clients(2 * len(TARGETS))  # one ADS stream per target in each process
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
    print(f"DEBOUNCE_AFTER {after:>3} ms, PUSH_THROTTLE {throttle or f'auto ({push_throttle(0, 2)})':<9}: burst of 30 -> {pushes:>2} pushes, answered after {burst_ms:4.0f} ms;")
    print(f"    then a full push to 40 clients, answered after {full_ms:4.0f} ms; {errors} failed calls")
    assert errors == 0, "no call fails while the configuration changes"
assert live[(100, 0)] < live[(0, 0)] <= 30, "debouncing batches the burst; each change is at most one push"

# %% [markdown]
# Without debounce the burst becomes one push per change: each change gets its own push, done before the
# next change arrives 2 ms later, so nothing merges (merging into a running push needs changes faster than
# a push; the stored run shows 30 pushes for 30 changes, a loaded machine may merge a few). With 100 ms it
# is one push. The full push's time includes the quiet period itself. With one
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
from meshlab.kind import stage
from meshlab.xds.pushcount import predict_pushes

print("burst of 10 within 20 ms  ->", predict_pushes(stage.DEBOUNCE, [i * 20 / 9 for i in range(10)]), "push")
print("5 changes 300 ms apart    ->", predict_pushes(stage.DEBOUNCE, [i * 300.0 for i in range(5)]), "pushes")
print()
print(stage.plan_script("06"))

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
        print(fit(f"  {finding.level} {finding.code} {finding.resource}: {finding.message}"))
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
# ## 7 · The real istiod, without a cluster
#
# **Stage: upstream** (Go; `meshlab upstream install kube-apiserver etcd kubectl pilot-discovery istioctl`).
# istiod needs a Kubernetes API server, not a cluster: it reads Pods, Services, EndpointSlices, Namespaces
# and Istio's resources through the API and never talks to a kubelet. So the upstream stage builds etcd
# 3.6.5, kube-apiserver and kubectl v1.35.4 and pilot-discovery (istiod) from their Go modules, runs the
# first two on loopback as controller-runtime's envtest does (no nodes, no scheduler), installs Istio's CRDs
# and ConfigMaps from `istioctl manifest generate`, and starts istiod out of cluster with `--kubeconfig`
# and the PILOT_DEBOUNCE_* settings as environment variables, read back from `/proc/PID/environ`.
#
# A ServiceEntry written with kubectl reaches istiod's ServiceEntry controller as a `service` update and an
# `endpoint` update (pilot/pkg/serviceregistry/serviceentry/controller.go); istiod's IP auto-allocator then
# writes an address into its status, which is one more update a few milliseconds later. Each update enters
# the debounce. Section 6's experiment runs here unchanged on five timelines, from a burst to a stream of
# changes longer than PILOT_DEBOUNCE_MAX. An event's time is when `kubectl apply` returned (the API server
# has stored the object; kubectl's own start-up takes about 90 ms before that).

# %% tags=["nbval-ignore-output"]
from meshlab.upstream.istiod import PROGRAM_NAMES
from meshlab.xds.pushcount import EXPERIMENT_LABEL, TIMELINES, burst

CONTROL_PLANE = {name: build.find(PROGRAMS[name]) for name in PROGRAM_NAMES}
MISSING = [name for name, program in CONTROL_PLANE.items() if program is None]
REAL = []
if MISSING:
    print(f"upstream stage: {', '.join(MISSING)} not built here (meshlab upstream install {' '.join(MISSING)})")
    assert os.environ.get("MESHLAB_REQUIRE_UPSTREAM") != "1", "the upstream stage is required here"
else:
    import tempfile
    from pathlib import Path

    from meshlab.upstream.istiod import Istiod
    from meshlab.upstream.kube import KubeControlPlane

    paths = {name: program.path for name, program in CONTROL_PLANE.items()}
    folder = Path(tempfile.mkdtemp(prefix="meshlab-istiod-"))
    with KubeControlPlane(paths["kube-apiserver"], paths["etcd"], paths["kubectl"], folder / "kube") as kube:
        kube.kubectl("create", "namespace", "mlburst")
        for settings in dict.fromkeys(row[1] for row in TIMELINES):  # one istiod per setting, in order
            with Istiod(paths["pilot-discovery"], paths["istioctl"], kube, folder / "istiod", settings) as istiod:
                for name, _, count, gap_ms in (row for row in TIMELINES if row[1] == settings):
                    entries = service_entries(count, "mlburst", prefix=f"b{count}x{gap_ms:g}", labels=EXPERIMENT_LABEL)
                    REAL.append((name, burst(istiod, entries, gap_ms)))
    folder.rmdir()
    for name, result in REAL:
        print(fit(f"{name}: {result.report()}"))
    assert all(result.agrees for _, result in REAL), "the real istiod and the simulator disagree: see above"

# %%
import textwrap

if REAL:
    ax = new_axes("The real istiod against the simulator", "", "debounced pushes")
    positions = np.arange(len(REAL))
    ax.bar(positions - 0.2, [r.measured_pushes for _, r in REAL], 0.4, label="istiod (pilot_debounce_time count)")
    ax.bar(positions + 0.2, [r.predicted_pushes for _, r in REAL], 0.4, label="meshlab's simulator")
    ax.set_xticks(positions, [textwrap.fill(name, 15) for name, _ in REAL], fontsize=8)
    ax.legend(loc="upper center")
    plt.show()

# %% [markdown]
# Five timelines, five agreements: the real istiod releases exactly as many pushes as the simulator predicts
# from the same settings and the moments the changes were stored. The auto-allocator's status write never
# changed a count here: it lands milliseconds after the change it follows, well inside the quiet period.
#
# ## Stage of this chapter
#
# Sections 1-4 run on the **model** stage: Istio's algorithm on simpy's clock, exact and seeded. Section 5
# runs **live**: the same objects on asyncio's clock, against gRPC's real xDS clients. Section 6 runs on the
# **kind** stage: a real istiod's pushes, counted in its metrics, against the simulator's prediction. Section 7
# runs the same experiment on the **upstream** stage: istiod itself against a real API server, no cluster.
#
# **Lab 06** (`labs/06-tuning-debounce.ipynb`): choose the settings that meet a propagation and push-rate
# objective for a given churn.
#
# ## What to remember
#
# - istiod debounces changes (PILOT_DEBOUNCE_AFTER quiet period, PILOT_DEBOUNCE_MAX cap), merges them, and
#   pushes through a queue worked by PILOT_PUSH_THROTTLE senders (automatic: min(15 + 5 x cores, 100)).
# - Scoping (the Sidecar resource) shrinks each proxy's configuration: smaller memory, cheaper pushes.
# - A push costs istiod CPU in proportion to what it sends (about 3.65 µs per resource in Istio's own
#   benchmark); an idle cluster leaves istiod idle, and there a short debounce delivers sooner for free.
# - On a saturated istiod a longer debounce does less work (the push queue already merges what waits), buying
#   headroom with propagation time; and raising PILOT_PUSH_THROTTLE past the cores delivers no sooner:
#   pushes only share the cores thinner and contend, so keep the automatic value or go lower.
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
# 3. istiod on 2 cores is saturated and propagation is slow. A colleague suggests PILOT_PUSH_THROTTLE=100.
#    What happens, and what did Istio 1.21 do about that default?
#
#    <details><summary>Answer</summary>
#
#    Nothing arrives sooner: 100 CPU-heavy pushes share 2 cores, each gets a thinner slice, contention makes
#    the same work cost more, and proxies held mid-push get pushed again; in section 4 p99 goes from 6.4 s
#    (automatic, 25) to 8.0 s. Istio 1.21 (istio/istio PR #48438) replaced the default of 100 by
#    min(15 + 5 x cores, 100), 25 on two cores, because 100 concurrent pushes on 1-2 cores did badly.
#    Debounce longer, and add cores, scoping or istiods instead.
#
#    </details>
