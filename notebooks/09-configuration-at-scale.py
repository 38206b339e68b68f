# %% [markdown]
# # 09 · Configuration at scale: the Sidecar resource and lazy loading
#
# Chapter 06 ended on a fact: by default istiod tells every proxy about every service in the mesh, and
# pushes every change to everyone. A proxy that calls three services holds the configuration of a
# thousand; a change to any of them reaches every proxy. Istio's answer is scoping: the Sidecar resource
# says what one workload's proxy needs. Writing a Sidecar for every workload by hand is the catch, and
# NetEase's Slime automates it with lazy loading: proxies start knowing almost nothing, a global fallback
# proxy carries what they do not know, its access log reveals each workload's real dependencies, and a
# controller writes the Sidecars. This chapter builds both on meshlab's control plane, measures them on
# chapter 01's call graphs, and runs lazy loading live.
#
# **After this chapter you can**
# - write a Sidecar (egress hosts as `namespace/dnsName`, `.`, `*`, `~`; outboundTrafficPolicy) and say which
#   Sidecar applies to a workload;
# - compute what a proxy is sent under a set of Sidecars, and read Istio's validation messages for a bad one;
# - explain Slime's lazy loading (global sidecar, access-log learner, ServiceFence, Sidecar) and what the
#   first call to a new dependency costs;
# - compare unscoped, hand-written and lazy-loaded configuration as a mesh grows: size per proxy, push
#   bytes and push time per change, istiod's memory.

# %%
from meshlab.viz.architectures import lazy_loading

lazy_loading()

# %%
import os

import ipywidgets as widgets
import matplotlib.pyplot as plt

from meshlab.scoping import LazyLoading, PushContext, Service, Workload, analyze, parse_resources
from meshlab.scoping.sizes import mesh_model, measure
from meshlab.viz import new_axes, use_book_style
from meshlab.viz.architectures import lazy_path
from meshlab.viz.text import fit

use_book_style()
SEED = 9

# %% [markdown]
# ## 1 · What an unscoped proxy holds
#
# The model below is the mesh of chapter 01's call graph, grown to 1,000 services (seeded), ten services
# per namespace, each with replicas in the proportion of the mesh chapter 06 calibrated on (Huabing Zhao's:
# 466 instances for 325 services). With no Sidecar, every proxy is sent every service: a cluster per
# service port, its endpoints, its routes. Sizes are counted as chapter 06 counts them; Envoy's memory
# follows chapter 04's calibration; a change to one service is pushed to every proxy that holds it.

# %%
MESH = mesh_model(1000, seed=SEED)
FIGURES = {f.strategy: f for f in measure(MESH, seed=SEED)}
unscoped = FIGURES["unscoped"]
print(f"{len(MESH.services)} services, {unscoped.proxies} proxies; each service calls "
      f"{MESH.dependencies / len(MESH.services):.1f} others on average")
print(f"unscoped: {unscoped.services_per_proxy:.0f} services per proxy, {unscoped.resources_per_proxy:.0f} resources, "
      f"Envoy about {unscoped.envoy_mb:.0f} MB;\n          a change to one service pushes "
      f"{unscoped.push_bytes_per_change / 1e6:.0f} MB, to the last proxy in {unscoped.push_ms_per_change / 1000:.1f} s")
assert unscoped.services_per_proxy == len(MESH.services), "unscoped: every proxy holds every service"

# %% [markdown]
# ## 2 · The Sidecar resource
#
# A Sidecar (introduced in Istio 1.1 as `networking.istio.io/v1alpha3`; `v1` since Istio 1.22, when
# Istio's networking APIs were promoted) selects workloads by label (or, without a
# `workloadSelector`, applies to its whole namespace) and lists, per egress listener, the hosts its
# proxies may be told about, each as `namespace/dnsName`: `*` is any namespace, `.` the Sidecar's own,
# `~` none; the dnsName may be `*` or a wildcard such as `*.example.com`. One Sidecar without selector per
# namespace; one in the root namespace (`istio-system` by default) is the mesh-wide default for namespaces
# without their own. `outboundTrafficPolicy` says what happens to a host the proxy was not told about:
# `ALLOW_ANY` (the default) passes it through, `REGISTRY_ONLY` refuses it. Scoping is not a firewall:
# under ALLOW_ANY a call to an unlisted service still leaves the pod, just without the mesh's routing.
#
# A small shop: `productpage` calls `reviews` and `details`, `reviews` calls `ratings` in another
# namespace, everyone needs istiod.

# %%
SHOP = [Service(f"{name}.{ns}.svc.cluster.local", ns) for ns, name in
        [("shop", "productpage"), ("shop", "reviews"), ("shop", "details"), ("rating", "ratings"), ("rating", "ratings-admin"),
         ("pay", "ledger"), ("pay", "fraud"), ("istio-system", "istiod")]]
PRODUCTPAGE = Workload("shop", "productpage-0", {"app": "productpage"}, ("productpage.shop.svc.cluster.local",))
REVIEWS = Workload("shop", "reviews-0", {"app": "reviews"}, ("reviews.shop.svc.cluster.local",))
SIDECARS = """
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: shop}
spec:
  egress:
  - hosts: ["./*", "istio-system/*"]
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: reviews, namespace: shop}
spec:
  workloadSelector: {labels: {app: reviews}}
  egress:
  - hosts: ["rating/ratings.rating.svc.cluster.local", "istio-system/*"]
  outboundTrafficPolicy: {mode: REGISTRY_ONLY}
"""
sidecars, _ = parse_resources(SIDECARS)
context = PushContext(SHOP, sidecars)
for workload in (PRODUCTPAGE, REVIEWS):
    scope = context.sidecar_scope(workload)
    hosts = ", ".join(sorted(h.split(".svc")[0] for h in scope.hostnames))
    print(fit(f"{workload.name:<14} Sidecar {context.sidecar_for(workload).name:<8} -> {hosts}", indent=" " * 36))
print(f"{'':<14} no Sidecar       -> all {len(PushContext(SHOP).sidecar_scope(PRODUCTPAGE).hostnames)} services")
assert context.sidecar_for(REVIEWS).name == "reviews", "a Sidecar that selects the workload wins over the namespace's"

# %% [markdown]
# The namespace's default gives `productpage` its own namespace and istiod; the `reviews` Sidecar selects
# `reviews` by label and wins over the namespace default, so it sees `ratings` in another namespace and
# nothing of its own. What it is sent, in Envoy's names (chapter 05): a cluster per service port
# (`outbound|PORT||HOST`), a route configuration per HTTP port, listeners.

# %%
scope = context.sidecar_scope(REVIEWS)
print(fit("clusters:  " + ", ".join(scope.clusters()), indent=" " * 11))
print(fit("routes:    " + "; ".join(f"{port}: {', '.join(hosts)}" for port, hosts in scope.routes().items()), indent=" " * 11))
print("listeners:", ", ".join(scope.listeners()))

# %% [markdown]
# Istio refuses a malformed Sidecar when it is applied (its validating webhook runs `ValidateSidecar`,
# pilot/pkg/config/validation, 1.30.3) and `istioctl analyze` reports the same as IST0106 errors and
# IST0133 warnings; its selector analyzer adds IST0111 when a namespace has two Sidecars without a
# selector (which one applies is then undefined). meshlab gives the same findings with the same words:

# %%
BAD = """
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: broken, namespace: shop}
spec:
  egress:
  - hosts: ["reviews.shop.svc.cluster.local", "shop/*", "*/*.example.com:80"]
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: second-default, namespace: shop}
spec:
  egress:
  - hosts: ["./*"]
"""
findings = analyze(parse_resources(BAD)[0] + sidecars)
for finding in findings:
    print(fit(str(finding), indent="    "))
assert any("namespace/dnsName" in f.message for f in findings), "a host without a namespace is refused"
assert {f.code for f in findings} == {"IST0106", "IST0111"}, "schema errors, and two Sidecars without selector in shop"

# %% [markdown]
# ## 3 · The same files through istioctl
#
# **Stage: upstream** (Go; `make upstream` builds Istio's `istioctl` from the istio.io/istio module,
# 1.30.3's release branch). `istioctl analyze --use-kube=false -A` reads the files offline; its schema
# findings must be meshlab's, line for line (the test suite does this for 29 Sidecars). Its selector
# analyzer needs the cluster's pods, so offline istioctl skips it and IST0111 is meshlab's alone here.

# %% tags=["nbval-ignore-output"]
from meshlab.upstream import build
from meshlab.upstream.versions import PROGRAMS

ISTIOCTL = build.find(PROGRAMS["istioctl"])
if ISTIOCTL is None:
    print(f"upstream stage: istioctl {PROGRAMS['istioctl'].version} is not built here (meshlab upstream install istioctl)")
    assert os.environ.get("MESHLAB_REQUIRE_UPSTREAM") != "1", "the upstream stage is required here"
else:
    from meshlab.upstream.analyze import analyze as istioctl_analyze

    theirs = istioctl_analyze(ISTIOCTL.path, BAD + "---" + SIDECARS, all_namespaces=True)
    print(f"istioctl {ISTIOCTL.version} analyze --use-kube=false -A:")
    print("\n".join(fit(str(f), indent="    ") for f in theirs))
    ours = {(f.level, f.code, f.resource, f.message) for f in findings if f.code != "IST0111"}
    assert {(f.level, f.code, f.resource, f.message) for f in theirs} == ours, "istioctl and meshlab find the same"

# %% [markdown]
# ## 4 · Lazy loading, as Slime does it
#
# Slime (slime-io/slime, modules/lazyload, read at commit 043e38df) fences a service (label
# `slime.io/serviceFenced: "true"` on the Service or its namespace, or `defaultFence` for the mesh): its
# pods get a Sidecar that imports only the mesh's own namespaces (Istio's and Slime's). A call to any other
# host matches none of the proxy's routes and takes the fallback route, which an EnvoyFilter points at the
# **global sidecar**: a proxy with the full configuration that forwards the call to its original
# destination and logs it. The **lazyload controller** reads that access log every 10 s, records the
# caller's new dependency in its **ServiceFence**, and rewrites its Sidecar (`*/<host>` added); istiod
# pushes, and the next call goes direct. The first call succeeds, one hop longer: the diagram at the top,
# lit for a first call:

# %%
lazy_loading().lit(*lazy_path(first=True), title="The first call to a service: a detour, and the lesson")

# %% [markdown]
# On the model (`meshlab.scoping.lazyload`, Slime's semantics on a simulated clock): `productpage` calls
# `reviews` and `details` every second from t = 1 s; `reviews` calls `ratings` from t = 12 s.

# %%
WORKLOADS = {"10.0.0.1": PRODUCTPAGE, "10.0.0.2": REVIEWS,
             "10.0.0.3": Workload("shop", "details-0", {"app": "details"}, ("details.shop.svc.cluster.local",)),
             "10.0.0.4": Workload("rating", "ratings-0", {"app": "ratings"}, ("ratings.rating.svc.cluster.local",))}
GLOBAL = Service("global-sidecar.mesh-operator.svc.cluster.local", "mesh-operator")
lazy = LazyLoading(SHOP + [GLOBAL], WORKLOADS)
PLAN = [(t, "shop/productpage-0", "reviews.shop.svc.cluster.local") for t in range(1, 31)]
PLAN += [(t + 0.5, "shop/productpage-0", "details.shop.svc.cluster.local") for t in range(1, 31)]
PLAN += [(t + 0.2, "shop/reviews-0", "ratings.rating.svc.cluster.local") for t in range(12, 31)]
calls = [lazy.call(t, source, host) for t, source, host in sorted(PLAN)]
for source, host in sorted({(c.source, c.destination) for c in calls}):
    mine = [c for c in calls if (c.source, c.destination) == (source, host)]
    detours = [c for c in mine if c.via == "global-sidecar"]
    print(f"{source:<19} -> {host.split('.svc')[0]:<15} {len(detours):>2} of {len(mine)} calls through the global sidecar, "
          f"direct from {min(c.time_s for c in mine if c.via == 'direct'):.1f} s")
print("Sidecars written:", ", ".join(f"{s.namespace}/{s.name} at {t:.0f} s" for t, s in lazy.written if t > 0))
assert all(c.via == "direct" for c in calls if c.time_s > 21), "after two refreshes every dependency is learned"

# %% [markdown]
# The detours last until the controller's next refresh (every 10 s) plus istiod's push: the first calls
# are not lost, but each takes the global sidecar's extra hop, and the global sidecar, holding the whole
# mesh's configuration, is itself as big as an unscoped proxy and is pushed every change. A new workload,
# or an old one calling something new, pays again.
#
# ## 5 · Measured as the mesh grows
#
# The same three ways to run the mesh of section 1, at 100 to 5,000 services: no Sidecar; hand-written
# Sidecars (one per namespace, as platform teams write them: `./*`, `istio-system/*` and every namespace
# its services call); lazy loading after every dependency was called once. Push time is from a change to
# the last proxy updated, on chapter 06's simulator (2 cores, automatic throttle, default debounce).

# %%
SIZES = (100, 300, 1000, 3000, 5000)
GROWTH = {n: {f.strategy: f for f in measure(mesh_model(n, seed=SEED), seed=SEED)} for n in SIZES}
STRATEGIES = ("unscoped", "hand-written", "lazy loading")
COLOURS = {"unscoped": "#c0392b", "hand-written": "#3b6ea5", "lazy loading": "#4a9a5b"}
fig, axes = plt.subplots(1, 3, figsize=(8.7, 3.2))
for ax, (title, unit, value) in zip(axes, (("Configuration per proxy", "resources", lambda f: f.resources_per_proxy),
                                           ("Push per change", "MB", lambda f: f.push_bytes_per_change / 1e6),
                                           ("istiod memory", "MB", lambda f: f.istiod_mb))):
    new_axes(title, "services", unit, ax)
    for strategy in STRATEGIES:
        ax.plot(SIZES, [value(GROWTH[n][strategy]) for n in SIZES], "o-", color=COLOURS[strategy], label=strategy, markersize=4)
    ax.set_xscale("log")
    ax.set_yscale("log")
axes[0].legend(fontsize=9)
plt.show()
print(f"{'services':>8} {'strategy':<13} {'per proxy':>9} {'Envoy MB':>8} {'push MB':>9} {'push ms':>8} {'istiod MB':>9}")
for n in SIZES:
    for strategy in STRATEGIES:
        f = GROWTH[n][strategy]
        print(f"{n:>8} {strategy:<13} {f.services_per_proxy:>9.0f} {f.envoy_mb:>8.0f} {f.push_bytes_per_change / 1e6:>9.2f} "
              f"{f.push_ms_per_change:>8.0f} {f.istiod_mb:>9.0f}")
for n in SIZES:
    g = GROWTH[n]
    assert g["unscoped"].push_bytes_per_change > g["hand-written"].push_bytes_per_change > g["lazy loading"].push_bytes_per_change
assert GROWTH[5000]["lazy loading"].services_per_proxy < 2 * GROWTH[100]["lazy loading"].services_per_proxy, "lazy loading stays flat"

# %% [markdown]
# Unscoped, what each proxy holds grows with the mesh and what a change costs grows with its square
# (every proxy holds every service, and every proxy is pushed every change). Hand-written Sidecars cut
# both by the fraction of namespaces a team calls. Lazy loading keeps each proxy at what it really calls,
# about six services here whatever the mesh's size. Pick a size:

# %% tags=["nbval-ignore-output"]
def at_size(services):
    g = GROWTH[services]
    fig, ax = plt.subplots(figsize=(6.5, 3))
    new_axes(f"{services} services: Envoy's memory per proxy", "", "MB", ax)
    ax.bar(STRATEGIES, [g[s].envoy_mb for s in STRATEGIES], color=[COLOURS[s] for s in STRATEGIES])
    plt.show()
    print(", ".join(f"{s}: {g[s].services_per_proxy:.0f} services per proxy" for s in STRATEGIES))


widgets.interact(at_size, services=widgets.SelectionSlider(options=SIZES, value=1000, description="services", continuous_update=False));
assert all(GROWTH[n]["unscoped"].envoy_mb > GROWTH[n]["hand-written"].envoy_mb > GROWTH[n]["lazy loading"].envoy_mb for n in SIZES)

# %% [markdown]
# ## 6 · Live: lazy loading on meshlab's control plane
#
# **Stage: live lab** (Linux, as root). `meshlab.lab.lazyload` starts pods whose sidecars get their
# configuration over ADS from meshlab's xDS control plane (chapter 05's server, now scoping each
# connection by the Sidecar that applies to its workload, and pushing a change only to the proxies whose
# scope depends on it, as istiod's ProxyNeedsPush does). A fresh workload, `product`, starts fenced: its
# Sidecar imports only Istio's and Slime's namespaces, and the control plane sends it a fallback route to
# the global sidecar, a pod with the whole configuration that forwards by original destination and logs
# each call. `product` calls three services: the first calls go through the global sidecar; one
# controller round reads its access log and writes `product`'s Sidecar; the control plane pushes it; the
# next calls go direct. Latencies are the lab's own (a Python proxy, not Envoy): compare them with each
# other, not with Envoy's.

# %% tags=["nbval-ignore-output"]
from meshlab import doctor

LIVE = doctor.check_live()
RUN_LIVE = LIVE.available and os.geteuid() == 0
print("live stage:", "available" if RUN_LIVE else f"NOT available here: {LIVE.reason or 'the lazy-loading lab needs root'}")
assert RUN_LIVE or os.environ.get("MESHLAB_REQUIRE_LIVE") != "1", "the live stage is required here"
MEASURED = None
if RUN_LIVE:
    from meshlab.lab.lazyload import LazyLab

    with LazyLab("ml09").up(down_at_exit=True) as lab:
        MEASURED = lab.measure(services=("details", "reviews", "ratings"), repeats=20)
        sidecar = lab.sidecar_of("product")
    print(MEASURED)
    print(fit("product's Sidecar, written by the controller: " + ", ".join(h for listener in sidecar.egress if listener for h in listener.hosts)))
    learned, fenced, unscoped = (MEASURED.resources[k] for k in ("learned", "fenced", "unscoped"))
    assert sum(fenced.values()) < sum(learned.values()) < sum(unscoped.values()), "fenced < learned < unscoped"
    assert all(direct < via for via, direct in MEASURED.medians().values()), "the detour costs one more proxy hop"

# %% [markdown]
# The resource counts come from the control plane's own records of what it last sent `product`'s proxy
# (listeners, clusters, endpoint sets): everything with no Sidecar; once fenced, the global sidecar's
# service and Istio's own two (`virtualOutbound`, `PassthroughCluster`); once learned, those and the
# three services it called, nothing else. The global sidecar's detour shows as one more proxy
# hop on every call made before the controller's round.

# %% [markdown]
# ## Stage of this chapter
#
# Sections 1, 2, 4 and 5 run on the **model** stage: `meshlab.scoping` (Istio 1.30.3's Sidecar rules and
# validation, the scope istiod computes, Slime's lazy loading on a simulated clock) with chapter 06's
# costs and simulator. Section 3 runs on the **upstream** stage: Istio's own `istioctl analyze`. Section 6
# runs **live**: lab pods whose proxies get their configuration from meshlab's xDS control plane.
#
# **Lab 09** (`labs/09-scoping-a-sidecar.ipynb`): write the Sidecar for a stated workload (the check says
# what it is sent, what is missing and what is too broad), then predict what lazy loading learns from an
# access log.
#
# ## What to remember
#
# - Unscoped, every proxy holds every service and every change is pushed to every proxy: configuration
#   grows with the mesh, push work with its square.
# - A Sidecar lists the hosts a workload's proxies are told about, as `namespace/dnsName` (`*`, `.`, `~`);
#   one that selects the workload wins over its namespace's, which wins over the root namespace's.
#   Scoping trims configuration; it is not a firewall (ALLOW_ANY still lets unknown traffic out).
# - Hand-written Sidecars are as good as the people who keep them current. Slime's lazy loading learns
#   them from traffic: unknown calls go through a global sidecar whose access log feeds a controller that
#   writes each workload's Sidecar.
# - The price: the first call to each new dependency takes a detour until the next refresh and push; the
#   global sidecar holds everything and must scale with the traffic it carries.
#
# ## Check yourself
#
# 1. Namespace `shop` has a Sidecar without selector (`./*`, `istio-system/*`) and one selecting
#    `app: reviews` (`rating/*`). What is a `reviews` pod's proxy told about, and a `details` pod's?
#
#    <details><summary>Answer</summary>
#
#    `reviews`: only the services of namespace `rating` (the selecting Sidecar wins, and it does not list
#    `./*` or istiod). `details`: every service of `shop` and of `istio-system`.
#
#    </details>
#
# 2. Why does lazy loading's first call to a service succeed even though the caller's proxy knows nothing
#    about it, and what does it cost?
#
#    <details><summary>Answer</summary>
#
#    The proxy's fallback route sends traffic for unknown hosts to the global sidecar, which has the whole
#    mesh's configuration and forwards the call to its original destination. The cost is one more proxy
#    hop for every call made before the controller's next refresh and istiod's push.
#
#    </details>
#
# 3. A mesh doubles from 1,000 to 2,000 services; each service still calls about two others. Roughly how
#    does the push work per change move, unscoped and with lazy loading?
#
#    <details><summary>Answer</summary>
#
#    Unscoped, about fourfold: twice as many proxies each receive a configuration twice as big. With lazy
#    loading a change reaches only the proxies that call the service (and the global sidecar), each with a
#    small configuration: it grows with the global sidecar's share, far more slowly.
#
#    </details>
