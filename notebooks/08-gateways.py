# %% [markdown]
# # 08 · Gateways: from Ingress to the Gateway API, and tiers across clusters
#
# A mesh's proxies carry calls between services; a gateway is the proxy at the edge, where requests from
# outside come in. Kubernetes gave the edge one resource, Ingress. Istio replaced it with its own Gateway
# and VirtualService. The Kubernetes community then wrote the Gateway API, now what Istio, Envoy Gateway
# and most others implement. This chapter follows that road, translates Gateway API resources into the
# listeners, routes and clusters an Envoy gets, checks the translation against Envoy Gateway's own
# translator, and ends at the edge of several clusters, where a tier-1 gateway splits traffic over each
# cluster's tier-2 gateway and fails over when one dies.
#
# **After this chapter you can**
# - say what NodePort, LoadBalancer and Ingress give and what Ingress cannot express;
# - name the Gateway API's three roles and the kind each owns, and read a route's status conditions;
# - predict which rule answers a request, by the Gateway API's precedence, and read the Envoy route
#   configuration a Gateway becomes;
# - put meshlab's translation beside Envoy Gateway's (`egctl experimental translate`) and find the difference;
# - explain tier-1/tier-2 gateways, Envoy's locality weights, health checks and outlier detection, and
#   measure a split and a failover on live gateways.

# %%
from meshlab.viz.architectures import gateway_api_roles

gateway_api_roles()

# %%
import json
import os
from pathlib import Path

import ipywidgets as widgets
import matplotlib.pyplot as plt
from IPython.display import display

import meshlab
from meshlab.gateway import Request, load, match, translate
from meshlab.gateway.ingress import to_gateway_api
from meshlab.viz import new_axes, use_book_style
from meshlab.viz.text import fit

use_book_style()
DATA = Path(meshlab.__file__).parent / "data"
SHOP, ROLES, PRECEDENCE, GRPC, TIER1 = (DATA / "gateway" / f"{name}.yaml" for name in ("shop", "roles", "precedence", "grpc", "tier1"))

# %% [markdown]
# ## 1 · How traffic gets in: NodePort, LoadBalancer, Ingress
#
# A Service of type **NodePort** opens one port on every node (from 30000-32767 by default) and sends what
# arrives there to the Service's pods; type **LoadBalancer** asks the cloud for an external load balancer in
# front of those node ports. Both work at layer 4: one port, one Service, no look at the request.
#
# **Ingress** (`networking.k8s.io/v1`, GA in Kubernetes 1.19) is the first layer-7 answer: rules of host and
# path, each to a Service port, and TLS. A controller (NGINX, HAProxy, Envoy-based ones) watches Ingresses
# and configures its proxy. The shop behind an Ingress:

# %%
INGRESS = DATA / "ingress" / "shop.yaml"
print(INGRESS.read_text())

# %% [markdown]
# Everything an Ingress can say is in that file: a host, a path with `pathType` Exact or Prefix (element by
# element: `/api` matches `/api` and `/api/cart`, not `/apis`) or ImplementationSpecific (the controller
# decides), a Service port, a TLS secret, a class. A canary by header, a split by weight, a rewrite, a
# timeout: none of them exist in the resource, so each controller invented annotations, different for each
# (`nginx.ingress.kubernetes.io/canary-by-header` is not HAProxy's). And one resource mixes what a platform
# team decides (which hosts, which certificates) with what an application team decides (which paths go
# where). The Kubernetes project has frozen Ingress: it stays, generally available and with no plan to
# remove it, but gets no new features; the project recommends the Gateway API instead (kubernetes.io,
# "Ingress").
#
# `meshlab.gateway.ingress` converts an Ingress into Gateway API resources, the migration a team makes; the
# converted routes must decide every request as the Ingress did:

# %%
converted = to_gateway_api(INGRESS.read_text())
print(converted.yaml)
print("\n".join(fit(f"note: {note}", indent="      ") for note in converted.notes))
migrated = translate(load(converted.yaml))
for path in ("/api", "/api/cart", "/apis", "/old-cart", "/old-cart/x", "/"):
    request = Request("shop.example.com", path)
    decision = match(migrated, request, port=80)
    backends = ", ".join(f"{b.namespace}/{b.name}:{b.port}" for b in decision.backends)
    print(f"{path:<11} Ingress -> {converted.ingress_backend(request):<17} Gateway API -> {backends:<17} (rule {decision.route.rsplit('/', 1)[1]})")
    assert converted.ingress_backend(request) in str(decision), "the migrated routes decide as the Ingress did"

# %% [markdown]
# ## 2 · Istio's Gateway and VirtualService
#
# Istio did not wait. Its `networking.istio.io` API split the edge in two: a **Gateway** selects gateway
# pods by label (`istio: ingressgateway`) and says which ports, hosts and certificates they serve; a
# **VirtualService** bound to it (`gateways: [shop-gateway]`) holds the routes, with everything Ingress
# lacked: matches on headers, query parameters and methods, weights, retries, timeouts, fault injection,
# mirroring. The same VirtualService, bound to the `mesh` gateway, routes calls between sidecars: one
# routing API for the edge and the mesh. The proxy is the `istio-ingressgateway` Deployment: an Envoy
# with pilot-agent, configured by istiod over xDS like any sidecar.
#
# Istio's API was Istio's own. The Gateway API took its split of a gateway from its routes, made it
# portable, and added the roles. Istio followed: its Gateway API support for ingress went Beta in July 2022,
# Istio 1.20 (November 2023) supported the Gateway API's v1.0 in full, and 1.22 (May 2024) made its use for
# traffic inside the mesh stable; Istio says it intends the Gateway API to become its default API for
# traffic management (istio.io blog and release notes). For a Gateway of class `istio`, Istio creates the
# gateway's Deployment and Service itself, named `<gateway>-istio`.
#
# ## 3 · The Gateway API: three roles, three kinds
#
# The diagram at the top is the Gateway API's division of labour. The **infrastructure provider** defines a
# GatewayClass (which controller implements it). The **cluster operator** owns a Gateway: listeners
# (protocol, port, hostname, TLS) and which namespaces may attach routes (`allowedRoutes`). **Application
# developers** own HTTPRoutes (and GRPCRoutes) in their namespaces, attached to a Gateway by `parentRefs`.
# A route may send traffic to a Service in another namespace only if that namespace allows it with a
# ReferenceGrant. The controller writes the outcome back as **status conditions** on every resource, with
# types and reasons the API fixes, so a developer can see why a route is not served.
#
# In the file below the operator's Gateway in `infra` admits routes from namespaces labelled
# `shared-gateway-access=true`, for hosts under `*.example.com`. Four routes try to attach:

# %%
roles = translate(load(ROLES.read_text()))
for status in roles.statuses:
    if status.kind == "HTTPRoute":
        conditions = ", ".join(c.type if c.status == "True" else f"{c.type}=False ({c.reason})" for c in status.conditions)
        print(f"HTTPRoute {status.namespace + '/' + status.name:<19} {conditions}")
reasons = {(s.namespace, s.name): {c.type: c.reason for c in s.conditions} for s in roles.statuses if s.kind == "HTTPRoute"}
assert reasons[("sandbox", "experiment")]["Accepted"] == "NotAllowedByListeners"
assert reasons[("site", "blog")]["Accepted"] == "NoMatchingListenerHostname"
assert reasons[("site", "payments")]["ResolvedRefs"] == "RefNotPermitted"
assert reasons[("site", "site")]["ResolvedRefs"] == "ResolvedRefs", "the ReferenceGrant in store lets site's route use store/catalog"

# %% [markdown]
# `store` and `site` attach; `sandbox` is not labelled, so the listener does not allow it
# (NotAllowedByListeners); `blog.other.org` is outside the listener's `*.example.com`
# (NoMatchingListenerHostname); `payments` names `store/ledger`, which no ReferenceGrant in `store`
# allows (RefNotPermitted: the route is accepted, that rule answers 500). Each condition is the Gateway
# API's own type and reason (apis/v1/httproute_types.go, shared_types.go, v1.6.1).
#
# ## 4 · From routes to Envoy: translation and precedence
#
# A controller turns a Gateway and its routes into what Envoy needs: a **listener** per port, a **route
# configuration** per listener with one **virtual host** per hostname, **routes** in order (Envoy takes
# the first that matches), a **cluster** per rule with its endpoints. meshlab's translator writes them in
# Envoy's own terms, named as Envoy Gateway names them. The shop's route configuration:

# %%
shop = translate(load(SHOP.read_text()))
(config,) = shop.route_configs
print("route configuration", config["name"])
for host in config["virtualHosts"]:
    print(f"  virtual host {host['name']}  domains {host['domains']}")
    for route in host["routes"]:
        action = route.get("route", {}).get("cluster") or ("redirect " + json.dumps(route["redirect"]) if "redirect" in route else route.get("directResponse"))
        print(fit(f"    match {json.dumps(route['match'])}", indent="          "))
        print(f"      -> {action}")

# %% [markdown]
# Order is everything: Envoy stops at the first match. The Gateway API fixes the order a controller must
# produce, whatever order the rules were written in (apis/v1/httproute_types.go, v1.6.1): an exact path
# before any prefix; the longest prefix first; then a rule with a method; then the most header matches;
# then the most query parameter matches; across routes the oldest, then by namespace/name; within a route
# the first rule. Three teams wrote rules for `app.example.com`:

# %%
print(PRECEDENCE.read_text().split("---\napiVersion: v1\nkind: Service", 1)[0])

# %%
app = translate(load(PRECEDENCE.read_text()))
PUZZLE = [Request("app.example.com", "/login"), Request("app.example.com", "/login/help"), Request("app.example.com", "/api/v2/items"),
          Request("app.example.com", "/api/items", "POST", {"x-beta": "1"}), Request("app.example.com", "/api/items", headers={"x-beta": "1"}),
          Request("app.example.com", "/api/items?debug=1"), Request("app.example.com", "/apiary")]
for request in PUZZLE:
    headers = " ".join(f"{k}: {v}" for k, v in request.headers.items())
    print(f"{request.method:<5}{request.path:<19}{headers:<10}-> {match(app, request, port=80).answer}")

# %% [markdown]
# `POST /api/items` with `x-beta: 1` goes to the writer, not to beta: a method match outranks a header
# match. `/apiary` is not under `/api` (a path prefix matches whole segments) and falls to the frontend.
# Try other requests:

# %% tags=["nbval-ignore-output"]
HOSTS = ["shop.example.com", "app.example.com", "www.example.com"]
ROUTE_SETS = {"shop.example.com": shop, "app.example.com": app, "www.example.com": roles}


def decide(host, path, method, canary, beta):
    headers = {**({"x-canary": "true"} if canary else {}), **({"x-beta": "1"} if beta else {})}
    print(fit(match(ROUTE_SETS[host], Request(host, path, method, headers), port=80).answer))


widgets.interact(decide, host=widgets.Dropdown(options=HOSTS, value="shop.example.com", description="host"),
                 path=widgets.Text(value="/api/cart", description="path", continuous_update=False),
                 method=widgets.Dropdown(options=["GET", "POST", "DELETE"], value="GET", description="method"),
                 canary=widgets.Checkbox(value=True, description="x-canary: true"), beta=widgets.Checkbox(value=False, description="x-beta: 1"));
assert [b.name for b in match(shop, Request("shop.example.com", "/api/cart", headers={"x-canary": "true"}), port=80).backends] == ["api-canary"]

# %% [markdown]
# gRPC is HTTP/2 whose path is `/package.Service/Method`, so a GRPCRoute becomes ordinary Envoy routes on
# that path: a match on service and method is an exact path, on the service alone a prefix.

# %%
carts = translate(load(GRPC.read_text()))
for host in carts.route_configs[0]["virtualHosts"]:
    for route in host["routes"]:
        print(f"{json.dumps(route['match'], separators=(',', ':')):<42} -> {route['route']['cluster']}")

# %% [markdown]
# ## 5 · The same YAML through Envoy Gateway's translator
#
# **Stage: upstream** (Go; `make upstream` builds `egctl` from Envoy Gateway v1.9.0's module). `egctl
# experimental translate --from gateway-api --to xds` runs Envoy Gateway's real translators (Gateway API to
# its intermediate representation, then to xDS) in process on a file, with no cluster. First the shop's
# routes as egctl writes them, to set beside section 4's; then the chapter's route sets go through both
# translators, and many requests through both results, evaluated by one Envoy
# route-matching function (`meshlab.gateway.envoy`): the backends chosen, their shares, the redirects and
# the 404s must be the same. The test suite does this for about a hundred route sets (the chapter's, the
# Gateway API's own examples, generated ones) and about 5,000 requests, and compares every status condition
# egctl reports.

# %% tags=["nbval-ignore-output"]
from meshlab.upstream import build
from meshlab.upstream.versions import PROGRAMS

EGCTL = build.find(PROGRAMS["egctl"])
if EGCTL is None:
    print(f"upstream stage: egctl {PROGRAMS['egctl'].version} is not built here (meshlab upstream install egctl)")
    assert os.environ.get("MESHLAB_REQUIRE_UPSTREAM") != "1", "the upstream stage is required here"
else:
    from meshlab.upstream.egctl import translate as egctl_translate
    from meshlab.upstream.egctl import xds_of
    from meshlab.upstream.egctl_compare import Probe, compare

    (theirs,) = xds_of(egctl_translate(EGCTL.path, SHOP.read_text(), add_missing_resources=False), "default/eg")["routes"]
    print(f"egctl {EGCTL.version}: route configuration {theirs['name']}, the shop's routes in Envoy's order")
    for host in theirs["virtualHosts"]:
        for route in host["routes"]:
            action = route.get("route", {}).get("cluster") or "redirect " + json.dumps(route.get("redirect"))
            print(fit(f"    match {json.dumps(route['match'])} -> {action}", indent="          "))
    ours = [(r["match"], r.get("route", {}).get("cluster")) for h in config["virtualHosts"] for r in h["routes"]]
    assert ours == [(r["match"], r.get("route", {}).get("cluster")) for h in theirs["virtualHosts"] for r in h["routes"]], "section 4's routes"
    print()
    SAMPLED = {SHOP: ("shop.example.com", ["/api", "/api/cart", "/apix", "/old-cart", "/old-cart/", "/", "/cart"], "default/eg"),
               PRECEDENCE: ("app.example.com", ["/login", "/login/x", "/api", "/api/v2", "/api/v2x", "/apiary", "/"], "default/eg"),
               TIER1: ("shop.example.com", ["/", "/anything"], "edge/tier1")}
    for path, (host, paths, gateway) in SAMPLED.items():
        probes = [Probe(gateway, 80, Request(name, p, method, headers)) for name in (host, "other.example.org") for p in paths
                  for method in ("GET", "POST") for headers in ({}, {"x-canary": "true"}, {"x-beta": "1"})]
        report = compare(EGCTL.path, path.read_text(), probes)
        print(f"{path.name:<16} {report}")
        assert report.agreed, report.differences

# %% [markdown]
# Where the two differ, it is on purpose and written down (`meshlab.gateway.precedence`): Envoy Gateway
# v1.9.0 counts a method match as one more header match, and breaks ties on exact header matches before the
# routes' age, where the Gateway API's text orders method before headers; meshlab follows the Gateway API by
# default and Envoy Gateway's order when compared with it (as here).
#
# One limit of the offline translator shows on the roles file: egctl's file loader keeps only a resource's
# name, namespace and spec (internal/gatewayapi/resource/load.go, v1.9.0), so namespace labels are lost and
# the `Selector` of `allowedRoutes` matches nothing; creation times are lost too, so "oldest route first"
# cannot be tried offline. In a cluster Envoy Gateway reads both from the API server.
#
# ## 6 · Tier-1 and tier-2 gateways
#
# With several clusters, each cluster keeps its own ingress gateway (tier-2), routing to its own
# services. In front of them a tier-1 gateway at the edge chooses a cluster. Tetrate Service Bridge names
# them so: its Tier1Gateway resource (`gateway.tsb.tetrate.io/v2`, now deprecated in favour of TSB's
# `Gateway`) lists, per host, the clusters and their weights; Tetrate's blog "Designing Traffic Flow via
# Tier-1 and Tier-2 Ingress Gateways" sends 75% of `service1.cx.example.com` to one cluster and 25% to
# another. The same intent in the Gateway API is an HTTPRoute whose weighted backends are the two tier-2
# gateways:

# %%
print(TIER1.read_text().split("---\napiVersion: v1\nkind: Service", 1)[0].split("---", 2)[2])
tier1 = translate(load(TIER1.read_text()))
print(match(tier1, Request("shop.example.com", "/"), port=80).answer)

# %% [markdown]
# Envoy Gateway puts a rule's weighted backends into one cluster, one **locality** per backend with the
# backend's weight (section 5's output shows it). Envoy picks a locality with an earliest-deadline-first
# schedule over their *effective* weights, so 2,000 requests split 1,500 to 500, and a locality's
# effective weight is its weight times min(1, 1.4 x the healthy share of its hosts), 1.4 being Envoy's
# default overprovisioning factor: a locality keeps its full weight until fewer than 1/1.4 (about 71%)
# of its hosts are healthy, and one with no healthy host gets nothing (Envoy's locality_wrr.cc on main,
# HostSetImpl::effectiveLocalityWeight in upstream_impl.cc before it; endpoint.proto). Below 50%
# healthy hosts in the whole cluster, Envoy's panic threshold, it gives up on health and uses every host.
#
# Health comes from two sources. **Active health checks** ask each host every `interval` and mark it
# unhealthy after `unhealthyThreshold` failures, healthy again after `healthyThreshold` successes.
# **Outlier detection** is passive: after `consecutive5xx` errors in a row (5 by default) a host is ejected
# for `baseEjectionTime` (30 s) times the number of its ejections, but never more than
# `maxEjectionPercent` (10%) of the hosts at once (outlier_detection.proto). Envoy Gateway turns neither on
# by itself: a BackendTrafficPolicy's `healthCheck.active` and `healthCheck.passive` do. TSB's own
# Tier1Gateway, by its reference, fails over between clusters only when the weights are left out; the
# weighted split with health checks below is Envoy's behaviour under Envoy Gateway's translation.
#
# Three tier-2 gateways per cluster here; take some down and move the weight. The balancer is the one
# the live gateway runs (`meshlab.gateway.balance`):

# %% tags=["nbval-ignore-output"]
from meshlab.gateway.balance import Cluster, Host
from meshlab.gateway.envoy import Backend


def tier1(weight1, cluster1_up, cluster2_up):
    """The tier-1 gateway's cluster: a locality per cluster, three tier-2 gateways each, some down."""
    up = {"cluster1": cluster1_up, "cluster2": cluster2_up}
    backends = {"cluster1": Backend("edge", "cluster1-gateway", 80, weight1), "cluster2": Backend("edge", "cluster2-gateway", 80, 100 - weight1)}
    return Cluster("tier1", [(backend, [Host((f"10.250.0.{10 * c + i}", 80), backend, failed_active_hc=i >= up[name]) for i in range(3)])
                             for c, (name, backend) in enumerate(backends.items(), start=1)])


def picks(cluster, requests=2000):
    chosen = [cluster.choose().backend.name.removesuffix("-gateway") for _ in range(requests)]
    return {name: chosen.count(name) for name in ("cluster1", "cluster2")}


def split(weight1, cluster1_up, cluster2_up):
    cluster = tier1(weight1, cluster1_up, cluster2_up)
    counts = picks(cluster)
    ax = new_axes("2,000 requests through the tier-1 gateway", "", "requests", plt.subplots(figsize=(5.5, 3))[1])
    ax.bar([f"{name}\n{up}/3 gateways up" for name, up in zip(counts, (cluster1_up, cluster2_up))], list(counts.values()), color=["#3b6ea5", "#e08a2c"])
    ax.set_ylim(0, 2000)
    plt.show()
    panic = " (panic mode: fewer than half the hosts healthy, every host used)" if cluster.in_panic() else ""
    print(", ".join(f"{name} {count / 20:.1f}%" for name, count in counts.items()) + panic)


widgets.interact(split, weight1=widgets.IntSlider(value=75, min=5, max=95, step=5, description="cluster1 weight", continuous_update=False),
                 cluster1_up=widgets.IntSlider(value=3, min=0, max=3, description="cluster1 up", continuous_update=False),
                 cluster2_up=widgets.IntSlider(value=3, min=0, max=3, description="cluster2 up", continuous_update=False));
assert picks(tier1(75, 3, 3)) == {"cluster1": 1500, "cluster2": 500}, "EDF: exactly the weights"
assert abs(picks(tier1(75, 2, 3))["cluster1"] - 2000 * 70 / 95) <= 1, "2 of 3 up: 75 x min(1, 1.4 x 2/3) = 70 against 25"
assert picks(tier1(75, 0, 3)) == {"cluster1": 0, "cluster2": 2000} and tier1(75, 0, 1).in_panic()

# %% [markdown]
# With two of cluster1's three gateways up (67% < 71%) its weight shrinks to 75 x 1.4 x 2/3 = 70 against
# 25: 73.7% instead of 75%. With none up, cluster2 takes everything. With one left of six (17% < 50%),
# panic: Envoy spreads over all six hosts again, dead ones included.
#
# ## 7 · Live: two clusters, a split and a failover
#
# **Stage: live lab** (Linux, as root). `meshlab.lab.clusters` builds two clusters, each with its own node,
# pod network and two echo pods, and a tier-2 gateway (meshlab's gateway proxy, configured by the
# translator from an HTTPRoute) wired both to its cluster and to an edge network, where the tier-1 gateway
# and a client live. The two clusters number their pods alike (10.244.0.11, ...), as two kind clusters
# would; nothing routes to both, so it does not matter. The tier-1 gateway runs the route of section 6,
# health-checks the tier-2 gateways every second (`/healthz`, unhealthy after 2 failures, healthy after
# 1 success) and ejects one after 5 errors in a row; it sets `maxEjectionPercent` to 50, since Envoy's
# default 10% would never eject one of two hosts (`meshlab.lab.clusters.TIER1_OUTLIER_DETECTION`).
#
# First 2,000 requests over one connection; then the failover: the client sends a request every 2 ms,
# cluster1's tier-2 gateway is killed (SIGKILL) after a second, started again three seconds later.

# %% tags=["nbval-ignore-output"]
from meshlab import doctor
from meshlab.viz.architectures import tier_path, tiered_gateways

LIVE = doctor.check_live()
assert LIVE.available or os.environ.get("MESHLAB_REQUIRE_LIVE") != "1", LIVE.reason
RUN_LIVE = LIVE.available and os.geteuid() == 0
print("live stage:", "available" if RUN_LIVE else f"NOT available here: {LIVE.reason or 'two clusters need root'}")
assert RUN_LIVE or os.environ.get("MESHLAB_REQUIRE_LIVE") != "1", "the live stage is required here"
FAILOVER = None
if RUN_LIVE:
    from meshlab.lab.clusters import Clusters

    lab = Clusters("ml08").up(clusters=2, pods=2, down_at_exit=True)
    try:
        counts = lab.split(2000)
        print("2,000 requests:", ", ".join(f"{name} {count} ({count / 20:.1f}%)" for name, count in counts.items()))
        assert set(counts) == {"cluster1", "cluster2"} and abs(counts["cluster1"] / 2000 - 0.75) <= 0.03, counts
        FAILOVER = lab.failover(kill="cluster1")
        print(fit(str(FAILOVER)))
        events = [f"{e['t']:.2f} s {e['event']} {e.get('type') or e.get('action')}" for e in FAILOVER.events]
        print(fit("tier-1's health and outlier events: " + "; ".join(events)))
    finally:
        lab.down()
    during = [x for x in FAILOVER.samples if FAILOVER.kill_at + FAILOVER.time_to_no_failures_s < x.t < FAILOVER.restart_at]
    assert 0 < FAILOVER.requests_lost <= 5, "lost requests are bounded by consecutive5xx"
    assert during and all(x.cluster == "cluster2" for x in during), "once cluster1 is ejected, cluster2 answers every request"
    assert FAILOVER.recovery_s is not None, "cluster1 answers again once its gateway is back"

# %% [markdown]
# The requests lost are those sent to cluster1's dead gateway before the tier-1 gateway stopped sending
# there: at most `consecutive5xx` of them (each a refused connection, which Envoy's outlier detector
# counts as a 5xx from the host), or fewer if an active health check failed first. After that every
# request lands in cluster2, until cluster1's gateway listens again and passes one health check, within
# a second (the check's interval), which also ends its ejection (Envoy un-ejects a host whose active
# health check passes). Each request, coloured by the cluster that answered it:

# %% tags=["nbval-ignore-output"]
if FAILOVER is not None:
    fig, ax = plt.subplots(figsize=(8.5, 2.6))
    ax = new_axes("Failover at the tier-1 gateway: which cluster answered", "time since the first request (s)", "", ax)
    for row, (name, colour) in enumerate((("cluster1", "#3b6ea5"), ("cluster2", "#e08a2c"), (None, "#c0392b"))):
        times = [x.t for x in FAILOVER.samples if x.cluster == name]
        ax.plot(times, [row] * len(times), "|", color=colour, markersize=12)
    ax.set_yticks([0, 1, 2], ["cluster1", "cluster2", "failed"])
    for at, label in ((FAILOVER.kill_at, "killed"), (FAILOVER.ready_at, "back")):
        ax.axvline(at, color="#555555", linestyle="--", linewidth=1)
        ax.annotate(label, (at, 2.4), xytext=(4, 0), textcoords="offset points", fontsize=9)
    ax.set_ylim(-0.5, 2.8)
    plt.show()
    display(tiered_gateways().lit(*tier_path(FAILOVER.samples[-1].cluster), title="The path of the last request"))
    # requests fail only while cluster1's gateway is down; one sent just before the kill may die in flight
    assert all(x.t < FAILOVER.restart_at for x in FAILOVER.failed) and sum(x.t < FAILOVER.kill_at for x in FAILOVER.failed) <= 1

# %% [markdown]
# ## Stage of this chapter
#
# Sections 1-4 and 6 run on the **model** stage: `meshlab.gateway` loads, validates and translates the
# Gateway API (and converts an Ingress), and answers requests with Envoy's route matching. Section 5 runs
# on the **upstream** stage: Envoy Gateway v1.9.0's own translator, built from its Go module. Section 7
# runs **live**: two clusters of network namespaces, three gateway processes, real HTTP.
#
# **Lab 08** (`labs/08-writing-routes.ipynb`): write the HTTPRoutes for a canary by header, a 90/10 split
# and a redirect; the checks run them through meshlab and, where it is built, through Envoy Gateway's
# translator.
#
# ## What to remember
#
# - NodePort and LoadBalancer are layer 4; Ingress adds host and path rules and nothing more, the rest lives
#   in each controller's annotations. Ingress is frozen; the Gateway API is its successor.
# - The Gateway API splits the edge by role: GatewayClass (infrastructure provider), Gateway (cluster
#   operator: listeners, which namespaces may attach), HTTPRoute and GRPCRoute (developers), ReferenceGrant
#   for references across namespaces; status conditions say why a route is or is not served.
# - A controller writes Envoy's listeners, route configurations, clusters and endpoints. Envoy takes the
#   first route that matches, so the Gateway API fixes the order: exact path, longest prefix, method,
#   headers, query parameters, then the oldest route, then by name.
# - Envoy Gateway turns a rule's weighted backends into localities of one cluster; with health checks,
#   a dead locality's share moves to the others; below 50% healthy, Envoy's panic mode uses every host.
# - A tier-1 gateway chooses a cluster, each cluster's tier-2 gateway a pod. A failover costs the requests
#   sent before the failure is noticed: at most `consecutive5xx` with outlier detection.
#
# ## Check yourself
#
# 1. An HTTPRoute has a rule `PathPrefix /api` listed first and a rule `Exact /api/login` listed second.
#    Which answers `GET /api/login`, and why does the order of the rules not matter?
#
#    <details><summary>Answer</summary>
#
#    The exact rule. The Gateway API orders matches by kind and length before list order: an exact path
#    match outranks every prefix, so the controller writes the exact route first in Envoy's list.
#
#    </details>
#
# 2. A route in namespace `site` sends `/catalog` to Service `catalog` in namespace `store`. What must
#    exist for it to work, and what does the route's status say when it is missing?
#
#    <details><summary>Answer</summary>
#
#    A ReferenceGrant in `store` allowing HTTPRoutes from `site` to reach Services (or that Service).
#    Without it the route's `ResolvedRefs` condition is False with reason `RefNotPermitted`, and requests
#    for that rule get a 500.
#
#    </details>
#
# 3. A tier-1 gateway splits 75/25 over two clusters with one tier-2 gateway each, and uses Envoy's
#    default outlier detection. Cluster1's gateway dies. What happens, and what would you change?
#
#    <details><summary>Answer</summary>
#
#    Nothing is ejected: the default `maxEjectionPercent` of 10% allows no ejection in a cluster of two
#    hosts, so 75% of requests keep failing (no active health check is configured by default either).
#    Raise `maxEjectionPercent` (50 here), add an active health check, or run several gateways per cluster.
#
#    </details>
